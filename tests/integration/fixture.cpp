// The integration fixture (see fixture.hpp).
#include "fixture.hpp"

#include <cstdio>
#include <sstream>

#include "proc_audit.hpp"

namespace ringway::test {

std::string make_config(const SettingsConf& settings, const std::vector<GatewayConf>& gateways,
                        const std::vector<UpstreamConf>& upstreams) {
  std::ostringstream t;
  t << "[settings]\n"
    << "workers = " << settings.workers << "\n"
    << "drainTimeout = \"" << settings.drain_timeout << "\"\n"
    << settings.extra << "admin = { bindAddress = \"127.0.0.1\", bindPort = 0 }\n\n";
  for (const auto& g : gateways) {
    t << "[[gateways]]\n"
      << "metadata = { name = \"" << g.name << "\", namespace = \"default\" }\n"
      << "bindAddress = \"" << g.bind_address << "\"\n"
      << "bindPort = 0\n";
    if (g.buffer_limit != 0) {
      t << "[gateways.options]\nperConnectionBufferLimitBytes = " << g.buffer_limit << "\n";
    }
    t << g.socket_options;
    t << "[gateways.tcpGateway.options.tcpProxySettings]\n"
      << "idleTimeout = \"" << g.idle_timeout << "\"\n"
      << "maxConnectAttempts = " << g.max_connect_attempts << "\n";
    if (g.max_active_connections > 0) {
      t << "[gateways.tcpGateway.options.connectionLimit]\n"
        << "maxActiveConnections = " << g.max_active_connections << "\n";
    }
    t << "[[gateways.tcpGateway.tcpHosts]]\n"
      << "name = \"" << g.name << "-route\"\n"
      << "destination.single.upstream = { name = \"" << g.upstream << "\" }\n\n";
  }
  for (const auto& u : upstreams) {
    t << "[[upstreams]]\n"
      << "metadata = { name = \"" << u.name << "\", namespace = \"default\" }\n"
      << "static.hosts = [";
    for (size_t i = 0; i < u.hosts.size(); ++i) {
      t << (i ? ", " : " ") << "{ addr = \"" << u.hosts[i].host << "\", port = " << u.hosts[i].port
        << " }";
    }
    t << " ]\n[upstreams.connectionConfig]\n"
      << "connectTimeout = \"" << u.connect_timeout << "\"\n";
    if (!u.tcp_keepalive.empty()) t << "tcpKeepalive = " << u.tcp_keepalive << "\n";
    if (u.max_connections != 0) {
      t << "[upstreams.circuitBreakers]\nmaxConnections = " << u.max_connections << "\n";
    }
    t << "\n";
  }
  return t.str();
}

std::string keepalive_socket_options(int idle, int interval, int count) {
  std::ostringstream t;
  auto opt = [&](const char* what, int level, int name, int value) {
    t << "[[gateways.options.socketOptions]]\n"
      << "description = \"" << what << "\"\n"
      << "level = " << level << "\nname = " << name << "\nintValue = " << value << "\n"
      << "state = \"STATE_PREBIND\"\n";
  };
  opt("enable keep-alive", 1, 9, 1);
  opt("idle time before first keep-alive probe is sent", 6, 4, idle);
  opt("keep-alive interval", 6, 5, interval);
  opt("keep-alive probes count", 6, 6, count);
  return t.str();
}

void ProxyTest::TearDown() {
  if (proxy_ && HasFailure()) {
    std::string err = proxy_->stderr_text();
    if (err.size() > 16384) err = "...\n" + err.substr(err.size() - 16384);
    std::cerr << "---- ringway stderr (config " << proxy_->config_path() << ") ----\n"
              << err << "---- end of ringway stderr ----\n";
  }
  proxy_.reset();  // SIGKILL if still running
}

testing::AssertionResult ProxyTest::start_proxy(const std::string& toml) {
  proxy_ = std::make_unique<RingwayProcess>();
  proxy_->set_fd_limit(proxy_fd_limit_);
  if (!proxy_->start(toml)) return testing::AssertionFailure() << proxy_->error();
  if (!proxy_->wait_ready(scaled(Millis(10000)))) {
    return testing::AssertionFailure() << proxy_->error() << "\nconfig:\n" << toml;
  }
  if (proxy_->admin_port() == 0) {
    return testing::AssertionFailure() << "no 'admin listening on' line in stderr";
  }
  // Baseline after one admin request, so the admin server's first-use fds are in it; then
  // wait until the count is stable across two reads.
  http_get(admin_port(), "/stats", scaled(Millis(2000)));
  int prev = -2;
  poll_until(
      [&] {
        int now = fd_count(proxy_->pid());
        bool stable = now == prev;
        prev = now;
        return stable;
      },
      scaled(Millis(2000)), Millis(50));
  baseline_fds_ = prev;
  return testing::AssertionSuccess();
}

std::optional<double> ProxyTest::metric(const std::string& name,
                                        const std::map<std::string, std::string>& labels) const {
  return fetch_metric(admin_port(), name, labels);
}

testing::AssertionResult ProxyTest::wait_metric(const std::string& name,
                                                const std::map<std::string, std::string>& labels,
                                                double value, Millis timeout) const {
  std::optional<double> last;
  bool ok = poll_until(
      [&] {
        last = metric(name, labels);
        return last.has_value() && *last == value;
      },
      timeout, Millis(25));
  if (ok) return testing::AssertionSuccess();
  return testing::AssertionFailure()
         << name << " expected " << value << " within " << timeout.count() << " ms, last "
         << (last ? std::to_string(*last) : std::string("(missing)"));
}

void ProxyTest::note(const std::string& key, double value) {
  RecordProperty(key, std::to_string(value));
  std::printf("[ measured ] %s = %.1f\n", key.c_str(), value);
}

void ProxyTest::expect_no_leaks() {
  ASSERT_TRUE(proxy_ && proxy_->running()) << "the daemon is not running for the leak audit";
  std::string problem =
      audit_leaks(proxy_->pid(), baseline_fds_, admin_port(), scaled(Millis(3000)));
  EXPECT_EQ(problem, "");
}

}  // namespace ringway::test
