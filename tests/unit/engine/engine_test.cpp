// The engine end to end on loopback, without the daemon: a config built in code, an echo
// upstream on a thread, real sockets. Byte-exact forwarding with half-close, a refused upstream,
// drain with a force-close, and the session records. Skipped when io_uring is unavailable.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "ringway/engine/engine.hpp"

namespace ringway::engine {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::chrono::milliseconds scaled(std::chrono::milliseconds ms) {
  const char* s = std::getenv("RINGWAY_TIMEOUT_SCALE");
  const double f = s != nullptr ? std::atof(s) : 1.0;
  return std::chrono::milliseconds(static_cast<int64_t>(ms.count() * (f > 0 ? f : 1.0)));
}

int listen_loopback(uint16_t& port, bool do_listen = true) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return -1;
  if (do_listen && listen(fd, 128) != 0) return -1;
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

int connect_loopback(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads until EOF or error, bounded by `deadline`; returns what it read and how it ended.
struct ReadResult {
  std::string data;
  bool eof = false;
  int error = 0;
};
ReadResult read_all(int fd, Clock::time_point deadline) {
  ReadResult r;
  char buf[65536];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      r.data.append(buf, static_cast<size_t>(n));
    } else {
      if (n == 0) r.eof = true;
      if (n < 0) r.error = errno;
      return r;
    }
  }
  return r;
}

// An echo upstream: each connection is echoed until EOF, then half-closed and closed.
class EchoServer {
 public:
  EchoServer() {
    fd_ = listen_loopback(port_);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        std::lock_guard lock(mu_);
        conns_.emplace_back([c] {
          char buf[65536];
          for (;;) {
            ssize_t n = recv(c, buf, sizeof(buf), 0);
            if (n <= 0) break;
            for (ssize_t off = 0; off < n;) {
              ssize_t w = send(c, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
              if (w <= 0) break;
              off += w;
            }
          }
          shutdown(c, SHUT_WR);
          close(c);
        });
      }
    });
  }
  ~EchoServer() {
    stop_ = true;
    thread_.join();
    for (auto& t : conns_)
      t.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::thread> conns_;
};

config::Config make_config(uint16_t upstream_port, uint32_t workers) {
  config::Config c;
  c.settings.workers = workers;
  config::Gateway g;
  g.metadata.name = "tcp";
  g.bind_address = "127.0.0.1";
  g.bind_port = 0;
  g.per_connection_buffer_limit_bytes = 64 * 1024;  // small, so backpressure is exercised
  config::TcpHost h;
  h.name = "echo";
  h.upstream.name = "echo";
  h.upstream_index = 0;
  g.tcp_hosts.push_back(h);
  c.gateways.push_back(g);
  config::Upstream u;
  u.metadata.name = "echo";
  u.hosts.push_back(config::StaticHost{"127.0.0.1", upstream_port, 1, {}});
  u.per_connection_buffer_limit_bytes = 64 * 1024;
  u.connect_timeout = 2s;
  c.upstreams.push_back(u);
  return c;
}

std::vector<ResolvedUpstream> resolve(const config::Config& c) {
  std::vector<ResolvedUpstream> out;
  for (const auto& u : c.upstreams) {
    ResolvedUpstream r;
    for (const auto& h : u.hosts) {
      r.hosts.push_back(net::SocketAddress::parse(h.addr, h.port).value());
      r.weights.push_back(h.load_balancing_weight);
    }
    out.push_back(r);
  }
  return out;
}

class EngineTest : public ::testing::Test {
 protected:
  // Creates and starts the engine; false (with GTEST_SKIP done) when io_uring is unavailable.
  void start(uint32_t workers = 1, std::chrono::milliseconds max_wait = 0ms) {
    config_ = make_config(upstream_port_ != 0 ? upstream_port_ : echo_.port(), workers);
    auto e = Engine::create(config_, resolve(config_));
    if (!e && (e.error().code == EPERM || e.error().code == ENOSYS)) {
      GTEST_SKIP() << e.error().message;
    }
    ASSERT_TRUE(e) << e.error().message;
    engine_ = std::move(e.value());
    if (max_wait.count() > 0) engine_->set_max_wait(max_wait);
    engine_->set_session_sink([this](const SessionRecord& r) {
      // The sink runs on the worker's thread: holding it here wedges that worker.
      if (hold_sink_.load()) {
        in_sink_ = true;
        const auto limit = Clock::now() + 30s;  // bounded even if a test forgets to release
        while (hold_sink_.load() && Clock::now() < limit)
          std::this_thread::sleep_for(5ms);
      }
      std::lock_guard lock(records_mu_);
      records_.push_back(r);
      records_.back().gateway = {};  // views die with the call
      records_.back().upstream = {};
    });
    ASSERT_TRUE(engine_->start());
    port_ = engine_->listeners().at(0).address.port();
  }
  void TearDown() override {
    hold_sink_ = false;
    if (engine_) {
      engine_->stop_now();
      engine_->join();
    }
  }
  int64_t gw(GatewayStat s) {
    return engine_->stats().gateways.at(0).gateway[static_cast<size_t>(s)];
  }
  int64_t up(UpstreamStat s) {
    return engine_->stats().upstreams.at(0).upstream[static_cast<size_t>(s)];
  }
  bool wait_for(const std::function<bool()>& f, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + scaled(limit);
    while (Clock::now() < deadline) {
      if (f()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return f();
  }

  EchoServer echo_;
  uint16_t upstream_port_ = 0;
  config::Config config_;
  std::unique_ptr<Engine> engine_;
  uint16_t port_ = 0;
  std::mutex records_mu_;
  std::vector<SessionRecord> records_;
  std::atomic<bool> hold_sink_{false};
  std::atomic<bool> in_sink_{false};
};

TEST_F(EngineTest, ForwardsBytesExactlyBothWaysWithHalfClose) {
  start(2);
  if (IsSkipped()) return;
  constexpr size_t kBytes = 8 << 20;
  std::string payload(kBytes, '\0');
  std::mt19937_64 rng(42);
  for (auto& ch : payload)
    ch = static_cast<char>(rng());

  int fd = connect_loopback(port_);
  ASSERT_GE(fd, 0);
  std::thread writer([&] {
    for (size_t off = 0; off < payload.size();) {
      ssize_t n = send(fd, payload.data() + off, payload.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    shutdown(fd, SHUT_WR);  // half-close: the echo must still come back in full
  });
  ReadResult r = read_all(fd, Clock::now() + scaled(20000ms));
  writer.join();
  close(fd);
  EXPECT_TRUE(r.eof) << "no FIN forwarded back, error " << r.error;
  ASSERT_EQ(r.data.size(), kBytes);
  EXPECT_TRUE(r.data == payload) << "bytes differ";

  ASSERT_TRUE(wait_for([&] { return engine_->stats().sessions_active == 0; }, 5000ms));
  EXPECT_EQ(gw(GatewayStat::downstream_bytes_received_total), static_cast<int64_t>(kBytes));
  EXPECT_EQ(gw(GatewayStat::downstream_bytes_sent_total), static_cast<int64_t>(kBytes));
  EXPECT_EQ(gw(GatewayStat::reads_paused_total), gw(GatewayStat::reads_resumed_total));
  EXPECT_EQ(up(UpstreamStat::upstream_connections_active), 0);
  std::lock_guard lock(records_mu_);
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].reason, EndReason::Normal);
  EXPECT_EQ(records_[0].bytes_from_downstream, kBytes);
  EXPECT_EQ(records_[0].bytes_to_downstream, kBytes);
}

// The systemd watchdog is pinged only while workers_alive() holds (src/app/server.cpp): an idle
// worker still turns its loop (max_wait), and a wedged one stops the answer within the window.
TEST_F(EngineTest, WorkersAliveTurnsFalseWhileAWorkerIsWedged) {
  start(2, 50ms);
  if (IsSkipped()) return;
  ASSERT_TRUE(wait_for([&] { return engine_->workers_alive(300ms); }, 2000ms));
  std::this_thread::sleep_for(500ms);  // idle: the loops still turn
  EXPECT_TRUE(engine_->workers_alive(300ms)) << "an idle worker stopped turning its loop";
  hold_sink_ = true;
  int fd = connect_loopback(port_);  // the session's end runs the sink on its worker
  ASSERT_GE(fd, 0);
  ASSERT_EQ(send(fd, "ping", 4, MSG_NOSIGNAL), 4);
  char buf[4];
  ASSERT_EQ(recv(fd, buf, 4, MSG_WAITALL), 4);
  close(fd);
  ASSERT_TRUE(wait_for([&] { return in_sink_.load(); }, 3000ms));
  const auto wedged_at = Clock::now();
  EXPECT_TRUE(wait_for([&] { return !engine_->workers_alive(300ms); }, 2000ms))
      << "a wedged worker still counts as alive";
  const auto noticed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - wedged_at).count();
  std::printf("[ measured ] wedged_worker_noticed_ms = %lld (window 300 ms)\n",
              static_cast<long long>(noticed_ms));
  hold_sink_ = false;
  EXPECT_TRUE(wait_for([&] { return engine_->workers_alive(300ms); }, 2000ms))
      << "the worker did not come back";
}

TEST_F(EngineTest, RefusedUpstreamClosesTheDownstreamAndCounts) {
  // Bound but not listening: a connect to it is refused.
  int closed_port_fd = listen_loopback(upstream_port_, false);
  ASSERT_GE(closed_port_fd, 0);
  start();
  if (IsSkipped()) return;
  int fd = connect_loopback(port_);
  ASSERT_GE(fd, 0);
  ReadResult r = read_all(fd, Clock::now() + scaled(3000ms));
  EXPECT_TRUE(r.eof || r.error != 0) << "downstream not closed";
  close(fd);
  close(closed_port_fd);
  ASSERT_TRUE(wait_for([&] { return engine_->stats().sessions_active == 0; }, 2000ms));
  EXPECT_EQ(up(UpstreamStat::upstream_connect_refused_total), 1);
  EXPECT_EQ(gw(GatewayStat::sessions_no_upstream_total), 1);
  std::lock_guard lock(records_mu_);
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].reason, EndReason::UpstreamRefused);
}

TEST_F(EngineTest, DrainForceClosesAtTheDeadlineAndStops) {
  start();
  if (IsSkipped()) return;
  int fd = connect_loopback(port_);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(send(fd, "ping", 4, MSG_NOSIGNAL), 4);
  char buf[4];
  ASSERT_EQ(recv(fd, buf, 4, MSG_WAITALL), 4);  // the session is established
  const auto t0 = Clock::now();
  engine_->begin_drain(t0 + 300ms);
  // New connections are no longer accepted once the listeners are closed.
  ASSERT_TRUE(wait_for(
      [&] {
        int c = connect_loopback(port_);
        if (c >= 0) close(c);
        return c < 0;
      },
      2000ms));
  ReadResult r = read_all(fd, Clock::now() + scaled(3000ms));
  const auto took = Clock::now() - t0;
  EXPECT_TRUE(r.eof || r.error == ECONNRESET);
  EXPECT_GE(took, 250ms) << "closed before the drain deadline";
  close(fd);
  ASSERT_TRUE(wait_for([&] { return engine_->stopped(); }, 3000ms));
  engine_->join();
  EXPECT_EQ(gw(GatewayStat::sessions_force_closed_total), 1);
  EXPECT_EQ(gw(GatewayStat::downstream_connections_active), 0);
}

}  // namespace
}  // namespace ringway::engine
