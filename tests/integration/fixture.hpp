// The integration fixture: builds a ringway config next to the test's assertions, starts the
// real daemon, reads its admin endpoint, and ends each test with the leak audit. On failure the
// daemon's stderr is printed, so a red test shows what the proxy said.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "admin_client.hpp"
#include "process.hpp"
#include "sockets.hpp"
#include "test_env.hpp"

namespace ringway::test {

struct SettingsConf {
  int workers = 1;
  std::string drain_timeout = "10s";
  std::string
      extra;  // raw TOML lines inside [settings], e.g. "perWorkerBufferLimitBytes = 1048576\n"
};

struct GatewayConf {
  std::string name = "tcp";
  std::string bind_address = "127.0.0.1";
  std::string upstream = "echo";
  std::string idle_timeout = "60s";
  int max_connect_attempts = 1;
  int max_active_connections = 0;  // 0: no connectionLimit table
  uint32_t buffer_limit = 0;       // 0: perConnectionBufferLimitBytes left at its default
  // Raw TOML appended inside the gateway, e.g. [[gateways.options.socketOptions]] entries.
  std::string socket_options;
};

struct UpstreamConf {
  std::string name = "echo";
  std::vector<Endpoint> hosts;
  std::string connect_timeout = "2s";
  // e.g. "{ keepaliveTime = 60, keepaliveInterval = 20, keepaliveProbes = 2 }"; "" = none
  std::string tcp_keepalive;
  uint32_t max_connections = 0;  // circuitBreakers.maxConnections; 0 = the default (1024)
};

// The whole TOML file; the admin endpoint is always on 127.0.0.1, port 0.
std::string make_config(const SettingsConf& settings, const std::vector<GatewayConf>& gateways,
                        const std::vector<UpstreamConf>& upstreams);

// [[gateways.options.socketOptions]] entries for the seed page's downstream keepalive recipe.
std::string keepalive_socket_options(int idle, int interval, int count);

class ProxyTest : public testing::Test {
 protected:
  void TearDown() override;

  // Starts the daemon and waits for its ready line; records the fd baseline.
  testing::AssertionResult start_proxy(const std::string& toml);
  RingwayProcess& proxy() { return *proxy_; }
  Endpoint gateway(const std::string& id = "default.tcp") const { return proxy_->gateway(id); }
  uint16_t admin_port() const { return proxy_->admin_port(); }

  // One metric from /stats, summed over samples matching `labels`; nullopt when missing.
  std::optional<double> metric(const std::string& name,
                               const std::map<std::string, std::string>& labels = {}) const;
  // Polls /stats until the metric equals `value`; the assertion message shows the last value.
  testing::AssertionResult wait_metric(const std::string& name,
                                       const std::map<std::string, std::string>& labels,
                                       double value, Millis timeout) const;

  // A figure the test measured: printed and recorded in the test's XML/JSON properties, so
  // the run's log carries the numbers behind each verdict.
  void note(const std::string& key, double value);

  // The leak audit every test ends with (see proc_audit.hpp).
  void expect_no_leaks();

  std::unique_ptr<RingwayProcess> proxy_;
  int baseline_fds_ = -1;
  // Non-zero: start_proxy starts the daemon under this RLIMIT_NOFILE (soft and hard).
  uint64_t proxy_fd_limit_ = 0;
};

inline const std::map<std::string, std::string> kGw{{"gateway", "default.tcp"}};
inline const std::map<std::string, std::string> kUp{{"upstream", "default.echo"}};

}  // namespace ringway::test
