// systemd readiness without systemd: the test binds the unix datagram socket that
// NOTIFY_SOCKET names, as systemd does for Type=notify, and checks the protocol's promises:
// READY=1 only once the gateway accepts (a connect made the moment it arrives is forwarded),
// STATUS= lines while running, STOPPING=1 at SIGTERM, and exit 0 after the drain; watchdog
// pings from an idle daemon (every worker's loop turns); and the reload's hand-over of the
// main process (RELOADING=1, MAINPID=<new>, READY=1 from the new process).
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cstring>

#include "scripted_peer.hpp"
#include "service_util.hpp"

namespace ringway::test {
namespace {

constexpr const char* kConfig = R"(
[settings]
workers = 2
drainTimeout = "10s"

[[gateways]]
metadata = { name = "tcp" }
bindAddress = "127.0.0.1"
bindPort = 0

[[gateways.tcpGateway.tcpHosts]]
name = "one"
destination.single.upstream = { name = "echo" }

[[upstreams]]
metadata = { name = "echo" }
static.hosts = [{ addr = "127.0.0.1", port = {port} }]
)";

// The receiving end of NOTIFY_SOCKET: a bound AF_UNIX datagram socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = Fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (!fd_.valid() || path.size() >= sizeof(a.sun_path)) return;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    ok_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }

  // The next message, or "" at the deadline.
  std::string receive(Millis timeout) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
    char buf[4096];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }

  // Receives until a message containing the line `line` (exact, or a prefix when it ends in
  // '='), collecting every message into `seen`; false at the deadline.
  bool wait_for(const std::string& line, Millis timeout, std::vector<std::string>& seen) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
      std::string msg = receive(left);
      if (msg.empty()) continue;
      seen.push_back(msg);
      std::istringstream lines(msg);
      for (std::string l; std::getline(lines, l);) {
        if (l == line || (line.back() == '=' && l.rfind(line, 0) == 0)) return true;
      }
    }
    return false;
  }

 private:
  std::string path_;
  Fd fd_;
  bool ok_ = false;
};

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v)
    out += "[" + s + "] ";
  return out;
}

class NotifyServiceTest : public DaemonTest {
 protected:
  void TearDown() override {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    if (successor_ > 0) {
      ::kill(successor_, SIGKILL);  // the reload test's new process, by its pid
      ::waitpid(successor_, nullptr, 0);
    }
    DaemonTest::TearDown();
  }
  pid_t successor_ = -1;
  PeerHost upstream_;
};

TEST_F(NotifyServiceTest, ReadyMeansAcceptingThenStatusThenStoppingAndCleanExit) {
  NotifySocket notify(dir_.path() + "/notify.sock");
  ASSERT_TRUE(notify.ok()) << "cannot bind " << notify.path() << ": " << strerror(errno);
  const uint16_t up_port = upstream_.listen("127.0.0.1", PeerScript::Echo());
  ASSERT_NE(up_port, 0);

  // The child inherits the environment at fork; unset again in TearDown.
  ASSERT_EQ(setenv("NOTIFY_SOCKET", notify.path().c_str(), 1), 0);
  proxy_ = std::make_unique<RingwayProcess>();
  ASSERT_FALSE(ringway_bin().empty()) << "RINGWAY_BIN is not set";
  ASSERT_TRUE(proxy_->start(fill(kConfig, {{"port", std::to_string(up_port)}}))) << proxy_->error();

  std::vector<std::string> seen;
  ASSERT_TRUE(notify.wait_for("READY=1", scaled(Millis(10000)), seen))
      << "no READY=1; messages: " << joined(seen);
  // Right now, before anything else: the gateway must accept and forward. The listening line
  // is logged before READY=1 is sent, so the port is known without waiting.
  ASSERT_TRUE(proxy_->wait_ready(scaled(Millis(1000)))) << proxy_->error();
  const Endpoint gw = proxy_->gateway("default.tcp");
  ASSERT_NE(gw.port, 0);
  int err = 0;
  Fd session = connect_tcp(gw, scaled(Millis(2000)), &err);
  ASSERT_TRUE(session.valid()) << "connect right after READY=1 failed: " << strerror(err);
  const std::string ping = "ready-means-forwarding";
  ASSERT_TRUE(write_all(session.get(), ping.data(), ping.size(), scaled(Millis(2000))));
  std::string echoed;
  ASSERT_TRUE(read_exact(session.get(), echoed, ping.size(), scaled(Millis(5000))));
  EXPECT_EQ(echoed, ping);

  ASSERT_TRUE(notify.wait_for("STATUS=", scaled(Millis(5000)), seen))
      << "no STATUS= line; messages: " << joined(seen);

  // SIGTERM with the session still open: STOPPING=1 comes first, the daemon keeps running
  // while the session lives (drainTimeout is 10 s), and exits 0 once it ends.
  proxy_->signal(SIGTERM);
  ASSERT_TRUE(notify.wait_for("STOPPING=1", scaled(Millis(5000)), seen))
      << "no STOPPING=1; messages: " << joined(seen);
  EXPECT_TRUE(proxy_->running());
  ASSERT_TRUE(write_all(session.get(), ping.data(), ping.size(), scaled(Millis(2000))));
  ASSERT_TRUE(read_exact(session.get(), echoed, ping.size(), scaled(Millis(5000))))
      << "the session stopped forwarding during the drain";
  ::shutdown(session.get(), SHUT_WR);
  uint64_t tail = 0;
  EXPECT_EQ(drain_until_end(session.get(), scaled(Millis(5000)), &tail), StreamEnd::Eof);
  const auto code = proxy_->wait_exit(scaled(Millis(8000)));
  ASSERT_TRUE(code.has_value()) << "did not exit after the drain (signal " << proxy_->term_signal()
                                << ")";
  EXPECT_EQ(*code, 0);
  EXPECT_NE(proxy_->stderr_text().find("stopped: sessions force-closed 0"), std::string::npos);
}

// WatchdogSec=: pings come only when every worker's loop has turned within the interval. An
// idle daemon (no connection at all) must still ping: the workers' waits are bounded.
TEST_F(NotifyServiceTest, WatchdogPingsWhileIdle) {
  NotifySocket notify(dir_.path() + "/notify.sock");
  ASSERT_TRUE(notify.ok()) << "cannot bind " << notify.path() << ": " << strerror(errno);
  const uint16_t up_port = upstream_.listen("127.0.0.1", PeerScript::Echo());
  ASSERT_EQ(setenv("NOTIFY_SOCKET", notify.path().c_str(), 1), 0);
  ASSERT_EQ(setenv("WATCHDOG_USEC", "600000", 1), 0);  // ping every 300 ms
  proxy_ = std::make_unique<RingwayProcess>();
  ASSERT_TRUE(proxy_->start(fill(kConfig, {{"port", std::to_string(up_port)}}))) << proxy_->error();
  std::vector<std::string> seen;
  ASSERT_TRUE(notify.wait_for("READY=1", scaled(Millis(10000)), seen)) << joined(seen);
  const auto start = Clock::now();
  int pings = 0;
  while (Clock::now() - start < Millis(3000)) {
    std::vector<std::string> got;
    if (notify.wait_for("WATCHDOG=1", Millis(1000), got)) ++pings;
  }
  std::printf("[ measured ] watchdog_pings_in_3s = %d\n", pings);
  EXPECT_GE(pings, 6);
  EXPECT_EQ(proxy_->stderr_text().find("watchdog ping withheld"), std::string::npos);
  proxy_->signal(SIGTERM);
  EXPECT_EQ(proxy_->wait_exit(scaled(Millis(8000))), 0);
}

// A reload under Type=notify: the old process announces RELOADING=1 and names the new one as
// MAINPID, the new one sends READY=1 once it accepts, and the old one exits 0.
TEST_F(NotifyServiceTest, ReloadMakesTheNewProcessMain) {
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);  // the new process is re-parented to this test
  NotifySocket notify(dir_.path() + "/notify.sock");
  ASSERT_TRUE(notify.ok()) << "cannot bind " << notify.path() << ": " << strerror(errno);
  const uint16_t up_port = upstream_.listen("127.0.0.1", PeerScript::Echo());
  ASSERT_EQ(setenv("NOTIFY_SOCKET", notify.path().c_str(), 1), 0);
  proxy_ = std::make_unique<RingwayProcess>();
  ASSERT_TRUE(proxy_->start(fill(kConfig, {{"port", std::to_string(up_port)}}))) << proxy_->error();
  std::vector<std::string> seen;
  ASSERT_TRUE(notify.wait_for("READY=1", scaled(Millis(10000)), seen)) << joined(seen);
  ASSERT_TRUE(proxy_->wait_ready(scaled(Millis(1000))));
  const Endpoint gw = proxy_->gateway("default.tcp");
  Fd session = connect_tcp(gw, scaled(Millis(2000)));
  ASSERT_TRUE(session.valid());

  seen.clear();
  proxy_->signal(SIGHUP);
  ASSERT_TRUE(notify.wait_for("RELOADING=1", scaled(Millis(5000)), seen)) << joined(seen);
  ASSERT_TRUE(notify.wait_for("MAINPID=", scaled(Millis(20000)), seen)) << joined(seen);
  const std::string& last = seen.back();
  successor_ = static_cast<pid_t>(std::stol(last.substr(last.find("MAINPID=") + 8)));
  EXPECT_NE(successor_, proxy_->pid());
  ASSERT_TRUE(notify.wait_for("READY=1", scaled(Millis(5000)), seen)) << joined(seen);
  EXPECT_EQ(proxy_->wait_exit(scaled(Millis(5000))), 0);
  // The session opened before the reload is forwarded by the new process.
  const std::string ping = "moved";
  ASSERT_TRUE(write_all(session.get(), ping.data(), ping.size(), scaled(Millis(2000))));
  std::string echoed;
  ASSERT_TRUE(read_exact(session.get(), echoed, ping.size(), scaled(Millis(5000))));
  EXPECT_EQ(echoed, ping);
}

}  // namespace
}  // namespace ringway::test
