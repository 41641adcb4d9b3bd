// Defects found in issue 10, each checked through the real daemon: a large maxConnectAttempts
// ends (the attempt counter used to wrap at 256 and retry forever); a reset that follows a FIN
// on a paused direction is seen; connections waiting in the accept queue when a drain starts
// are served, not reset.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fixture.hpp"
#include "proc_audit.hpp"
#include "scripted_peer.hpp"

namespace ringway::test {
namespace {

class RobustnessTest : public ProxyTest {};

// 256 attempts to a refusing upstream: exactly 256 connects, then the downstream is closed.
// Before the fix the counter was a uint8_t: it wrapped to 0 and the session retried forever
// (160,006 connects in 3 s).
TEST_F(RobustnessTest, ManyConnectAttemptsToARefusingUpstreamEnd) {
  RefusingPort refuse;
  ASSERT_NE(refuse.port(), 0);
  GatewayConf gw;
  gw.max_connect_attempts = 256;
  ASSERT_TRUE(
      start_proxy(make_config({}, {gw}, {UpstreamConf{.hosts = {{"127.0.0.1", refuse.port()}}}})));
  Fd fd = connect_tcp(gateway(), scaled(Millis(2000)));
  ASSERT_TRUE(fd.valid());
  const auto start = Clock::now();
  const StreamEnd end = drain_until_end(fd.get(), scaled(Millis(5000)));
  note("downstream_closed_after_ms", ms_since(start));
  EXPECT_NE(end, StreamEnd::Timeout);
  EXPECT_TRUE(wait_metric("ringway_sessions_no_upstream_total", kGw, 1, scaled(Millis(2000))));
  EXPECT_TRUE(
      wait_metric("ringway_upstream_connect_attempts_total", kUp, 256, scaled(Millis(2000))));
  EXPECT_TRUE(
      wait_metric("ringway_upstream_connect_refused_total", kUp, 256, scaled(Millis(2000))));
  fd.reset();
  expect_no_leaks();
}

// The upstream sends 96 KiB and FIN, then resets. The downstream never reads and both of its
// buffers are tiny, and the gateway's limit is one buffer (32 KiB), so the proxy pauses reading
// the upstream with the rest of the data and the FIN in its receive queue: only the watch poll
// on the upstream socket can notice the reset. Its first event is the FIN alone; the watch must
// then be re-armed for errors, or the reset goes unseen and the session hangs until the idle
// timeout (60 s here).
TEST_F(RobustnessTest, ResetAfterFinOnAPausedDirectionIsSeen) {
  uint16_t port = 0;
  Fd listener = listen_tcp("127.0.0.1", 16, &port);
  ASSERT_TRUE(listener.valid());
  GatewayConf gw;
  gw.buffer_limit = 32 * 1024;
  gw.socket_options =
      "[[gateways.options.socketOptions]]\ndescription = \"tiny send buffer\"\n"
      "level = \"SOL_SOCKET\"\nname = \"SO_SNDBUF\"\nintValue = 4096\nstate = \"STATE_PREBIND\"\n";
  ASSERT_TRUE(start_proxy(make_config({}, {gw}, {UpstreamConf{.hosts = {{"127.0.0.1", port}}}})));

  // The downstream: a 4 KiB receive buffer, and it never reads.
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(client.valid());
  const int rcvbuf = 4096;
  ::setsockopt(client.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_storage ss{};
  socklen_t len = 0;
  ASSERT_TRUE(to_sockaddr(gateway(), ss, len));
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&ss), len), 0);

  // The upstream side: accept (bounded wait), send 96 KiB and FIN.
  pollfd pfd{listener.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, static_cast<int>(scaled(Millis(5000)).count())), 1);
  Fd upstream(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(upstream.valid());
  const std::vector<char> data(96 * 1024, 'x');
  ASSERT_TRUE(write_all(upstream.get(), data.data(), data.size(), scaled(Millis(5000))))
      << "the proxy did not take 96 KiB (its receive queue should hold it)";
  ASSERT_EQ(::shutdown(upstream.get(), SHUT_WR), 0);
  ASSERT_TRUE(wait_metric("ringway_reads_paused_total", kGw, 1, scaled(Millis(5000))))
      << "the proxy never paused reading the upstream";
  // Lets the FIN reach the proxy and its watch report it alone, before the reset follows. (Too
  // short a gap would only make the test pass for a wrong reason, never fail a right proxy.)
  // Meanwhile the proxy has nothing to do, and it must cost nothing: the watch re-armed after
  // FIN used to fire at once and be re-armed again, a worker busy for as long as the pause
  // lasted (a whole CPU, 0.5 s here; an idle proxy uses a few ms).
  const double cpu_before = cpu_seconds(proxy().pid());
  std::this_thread::sleep_for(Millis(500));
  const double idle_cpu = cpu_seconds(proxy().pid()) - cpu_before;
  note("paused_after_fin_cpu_ms", idle_cpu * 1000);
  EXPECT_LT(idle_cpu, 0.2) << "the proxy kept a CPU busy while a paused direction's source had "
                              "sent FIN (CPU seconds in 0.5 s)";
  set_linger_zero(upstream.get());
  upstream.reset();  // RST

  // The proxy must notice and pass the reset on: the downstream sees ECONNRESET (its unread
  // data is dropped with it), long before the 60 s idle timeout.
  const auto start = Clock::now();
  EXPECT_TRUE(wait_metric("ringway_upstream_resets_total", kUp, 1, scaled(Millis(5000))));
  EXPECT_TRUE(wait_metric("ringway_downstream_connections_active", kGw, 0, scaled(Millis(5000))));
  note("reset_seen_after_ms", ms_since(start));
  uint64_t bytes = 0;
  EXPECT_EQ(drain_until_end(client.get(), scaled(Millis(5000)), &bytes), StreamEnd::Reset);
  client.reset();
  expect_no_leaks();
}

// Connections that complete their handshake while the daemon is stopped (SIGSTOP) wait in the
// accept queue; SIGTERM arrives before the daemon runs again. Each of them must still be served
// to its end (echo byte-exact, FIN), not reset when the drain closes the listener.
TEST_F(RobustnessTest, ConnectionsQueuedAtDrainAreServed) {
  PeerHost echo;
  const uint16_t port = echo.listen("127.0.0.1", PeerScript::Echo());
  ASSERT_NE(port, 0);
  ASSERT_TRUE(start_proxy(make_config({.drain_timeout = "10s"}, {GatewayConf{}},
                                      {UpstreamConf{.hosts = {{"127.0.0.1", port}}}})));
  constexpr int kClients = 32;
  ASSERT_EQ(::kill(proxy().pid(), SIGSTOP), 0);
  std::vector<Fd> clients;
  for (int i = 0; i < kClients; ++i) {
    Fd fd = connect_tcp(gateway(), scaled(Millis(2000)));  // the kernel completes it alone
    if (!fd.valid()) break;
    const std::string hello = "hello " + std::to_string(i);
    if (!write_all(fd.get(), hello.data(), hello.size(), scaled(Millis(1000)))) break;
    ::shutdown(fd.get(), SHUT_WR);
    clients.push_back(std::move(fd));
  }
  proxy().signal(SIGTERM);
  ::kill(proxy().pid(), SIGCONT);
  ASSERT_EQ(clients.size(), static_cast<size_t>(kClients));
  int served = 0;
  for (int i = 0; i < kClients; ++i) {
    const std::string hello = "hello " + std::to_string(i);
    std::string got;
    char buf[64];
    for (;;) {
      timeval tv{static_cast<time_t>(scaled(Millis(5000)).count() / 1000), 0};
      ::setsockopt(clients[i].get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      const ssize_t n = ::recv(clients[i].get(), buf, sizeof(buf), 0);
      if (n <= 0) {
        EXPECT_EQ(n, 0) << "client " << i << ": " << std::strerror(errno);
        break;
      }
      got.append(buf, static_cast<size_t>(n));
    }
    EXPECT_EQ(got, hello) << "client " << i;
    if (got == hello) ++served;
  }
  note("queued_connections_served", served);
  auto code = proxy().wait_exit(scaled(Millis(15000)));
  ASSERT_TRUE(code.has_value()) << "the daemon did not exit after its drain";
  EXPECT_EQ(*code, 0);
}

// drainTimeout "0s" with connections completing in the same batch as the drain: the sessions
// accepted after the deadline must be force-closed too, and the daemon must exit. Before the
// fix they were never closed and the process never exited.
TEST_F(RobustnessTest, ZeroDrainTimeoutClosesLateSessionsAndExits) {
  PeerHost echo;
  const uint16_t port = echo.listen("127.0.0.1", PeerScript::Echo());
  ASSERT_NE(port, 0);
  ASSERT_TRUE(start_proxy(make_config({.drain_timeout = "0s"}, {GatewayConf{}},
                                      {UpstreamConf{.hosts = {{"127.0.0.1", port}}}})));
  constexpr int kClients = 16;
  ASSERT_EQ(::kill(proxy().pid(), SIGSTOP), 0);
  std::vector<Fd> clients;
  for (int i = 0; i < kClients; ++i) {
    Fd fd = connect_tcp(gateway(), scaled(Millis(2000)));
    if (!fd.valid()) break;
    clients.push_back(std::move(fd));
  }
  proxy().signal(SIGTERM);
  ::kill(proxy().pid(), SIGCONT);
  ASSERT_EQ(clients.size(), static_cast<size_t>(kClients));
  const auto start = Clock::now();
  auto code = proxy().wait_exit(scaled(Millis(5000)));
  note("exit_after_ms", ms_since(start));
  ASSERT_TRUE(code.has_value()) << "the daemon did not exit with drainTimeout 0s";
  EXPECT_EQ(*code, 0);
  for (auto& c : clients) {
    // Every client's connection ended (reset by the force-close, or closed by the exit).
    EXPECT_NE(drain_until_end(c.get(), scaled(Millis(2000))), StreamEnd::Timeout);
  }
}

}  // namespace
}  // namespace ringway::test
