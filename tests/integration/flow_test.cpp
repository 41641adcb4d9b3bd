// Flow control and limits through the real daemon: a slow reader (memory bounded by the buffer
// limit, paused == resumed), an upstream that never reads (backpressure reaches the sender),
// the idle timeout, and the connection limit.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "fixture.hpp"
#include "proc_audit.hpp"
#include "scripted_peer.hpp"

namespace ringway::test {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint32_t kBufferLimit = 256 * 1024;

// The largest value of a tcp_rmem/tcp_wmem triple: what autotuning may grow a buffer to.
uint64_t tcp_mem_max(const char* name) {
  std::ifstream in(std::string("/proc/sys/net/ipv4/") + name);
  uint64_t lo = 0, def = 0, hi = 0;
  in >> lo >> def >> hi;
  return hi != 0 ? hi : 8 * kMiB;
}

// What the daemon may add to its resident memory for one session beyond the two per-direction
// queues: first use of the buffer pool, allocator arenas, thread stacks. A sanitizer build
// keeps freed memory in quarantine, so it gets more.
int64_t rss_slack_kib() {
  return built_with_asan() ? 32 * 1024 : 16 * 1024;
}

class FlowTest : public ProxyTest {
 protected:
  PeerHost upstream_;
  PeerHost client_;
};

// The upstream pushes 64 MiB at full speed; the downstream reads its first 4 MiB at 2 MiB/s,
// then at full speed. An unbounded proxy would absorb most of the 64 MiB during the slow phase;
// Ringway may hold at most one buffer limit per direction, so its RSS stays within
// 2 x 256 KiB + slack of what it was before the session.
TEST_F(FlowTest, SlowReaderKeepsProxyMemoryBounded) {
  uint16_t port = upstream_.listen("127.0.0.1", PeerScript::Source(64 * kMiB, 51));
  GatewayConf gw;
  gw.buffer_limit = kBufferLimit;
  ASSERT_TRUE(start_proxy(make_config({}, {gw}, {UpstreamConf{.hosts = {{"127.0.0.1", port}}}})));
  int64_t rss_before = rss_kib(proxy().pid());
  ASSERT_GT(rss_before, 0);
  size_t id = client_.connect(gateway(), PeerScript::SlowReader(2 * kMiB, 4 * kMiB));
  int64_t rss_peak = rss_before;
  // Sample every 50 ms through the slow phase (about 2 s) and until the session ends.
  bool done = poll_until(
      [&] {
        rss_peak = std::max(rss_peak, rss_kib(proxy().pid()));
        return client_.record(id).closed;
      },
      scaled(Millis(60000)), Millis(50));
  ConnRecord down = client_.record(id);
  ASSERT_TRUE(
      upstream_.wait([](auto& rs) { return !rs.empty() && rs[0].closed; }, scaled(Millis(5000))));
  ConnRecord up = upstream_.record(0);
  ASSERT_TRUE(done) << describe(down);
  EXPECT_EQ(down.bytes_received, 64 * kMiB);
  EXPECT_EQ(down.recv_digest, up.sent_digest);
  EXPECT_TRUE(down.eof && !down.reset) << describe(down);
  int64_t bound = 2 * kBufferLimit / 1024 + rss_slack_kib();
  note("rss_growth_kib", static_cast<double>(rss_peak - rss_before));
  EXPECT_LE(rss_peak - rss_before, bound)
      << "RSS grew " << (rss_peak - rss_before) << " KiB (before " << rss_before << " KiB)";
  auto paused = metric("ringway_reads_paused_total", kGw);
  auto resumed = metric("ringway_reads_resumed_total", kGw);
  ASSERT_TRUE(paused && resumed);
  EXPECT_GT(*paused, 0) << "a 64 MiB push into a slow reader never paused reading";
  EXPECT_EQ(*paused, *resumed);
  expect_no_leaks();
}

// The upstream accepts and never reads; the downstream tries to send 256 MiB. Its writes must
// stop: the proxy pauses reading at the buffer limit, so what the downstream could hand over
// is bounded by the socket buffers on the way (each at most what autotuning allows) plus the
// proxy's limit, far below 256 MiB; and the proxy's memory stays bounded meanwhile.
TEST_F(FlowTest, UpstreamThatNeverReadsBlocksTheDownstreamWriter) {
  uint16_t port = upstream_.listen("127.0.0.1", PeerScript::NeverRead(64 * 1024));
  GatewayConf gw;
  gw.buffer_limit = kBufferLimit;
  ASSERT_TRUE(start_proxy(make_config({}, {gw}, {UpstreamConf{.hosts = {{"127.0.0.1", port}}}})));
  int64_t rss_before = rss_kib(proxy().pid());
  size_t id = client_.connect(gateway(), PeerScript::Source(256 * kMiB, 52));
  uint64_t last = 0;
  int steady = 0;
  // A plateau: the downstream's count unchanged over three 200 ms samples in a row.
  bool plateau = poll_until(
      [&] {
        uint64_t now = client_.record(id).bytes_sent;
        steady = (now == last && now > 0) ? steady + 1 : 0;
        last = now;
        return steady >= 3;
      },
      scaled(Millis(20000)), Millis(200));
  EXPECT_TRUE(plateau) << "the downstream kept writing: " << describe(client_.record(id));
  uint64_t bound =
      tcp_mem_max("tcp_wmem") * 2 + tcp_mem_max("tcp_rmem") + 64 * 1024 + 2 * kBufferLimit;
  note("bytes_accepted_from_downstream", static_cast<double>(last));
  EXPECT_LT(last, bound) << "accepted " << last << " bytes from the downstream";
  EXPECT_LT(last, 256 * kMiB);
  int64_t rss_now = rss_kib(proxy().pid());
  note("rss_growth_kib", static_cast<double>(rss_now - rss_before));
  EXPECT_LE(rss_now - rss_before, static_cast<int64_t>(2 * kBufferLimit / 1024) + rss_slack_kib());
  auto paused = metric("ringway_reads_paused_total", kGw);
  ASSERT_TRUE(paused.has_value());
  EXPECT_GE(*paused, 1);
  client_.abort(id);
  EXPECT_TRUE(
      upstream_.wait([](auto& rs) { return !rs.empty() && rs[0].closed; }, scaled(Millis(5000))))
      << "the upstream was not closed after the downstream reset";
  expect_no_leaks();
}

// idleTimeout 1 s: after a short exchange nothing moves; the session is closed (both sides)
// between 1 and 2 s later, and counted.
TEST_F(FlowTest, IdleTimeoutClosesBothSides) {
  uint16_t port = upstream_.listen("127.0.0.1", PeerScript::Echo());
  GatewayConf gw;
  gw.idle_timeout = "1s";
  ASSERT_TRUE(start_proxy(make_config({}, {gw}, {UpstreamConf{.hosts = {{"127.0.0.1", port}}}})));
  PeerScript s = PeerScript::Source(1000, 53);
  s.fin_after_send = false;  // send, get the echo, then stay silent with the session open
  size_t id = client_.connect(gateway(), s);
  ASSERT_TRUE(
      client_.wait([&](auto& rs) { return rs.size() > id && rs[id].bytes_received == 1000; },
                   scaled(Millis(5000))));
  auto last_activity = Clock::now();
  ASSERT_TRUE(client_.wait([&](auto& rs) { return rs[id].closed; }, scaled(Millis(5000))))
      << "still open after " << ms_since(last_activity) << " ms";
  ConnRecord down = client_.record(id);
  double idle_ms = std::chrono::duration<double, std::milli>(down.ended_at - last_activity).count();
  note("idle_close_ms", idle_ms);
  EXPECT_GE(idle_ms, 900.0);  // our clock starts a little after the proxy's last activity
  EXPECT_LE(idle_ms, 2000.0 + 500.0 * (timeout_scale() - 1.0));
  EXPECT_TRUE(
      upstream_.wait([](auto& rs) { return !rs.empty() && rs[0].closed; }, scaled(Millis(2000))))
      << "upstream side not closed: " << describe(upstream_.record(0));
  EXPECT_TRUE(wait_metric("ringway_idle_timeouts_total", kGw, 1, scaled(Millis(2000))));
  expect_no_leaks();
}

// Writes `msg` and reads the same number of bytes back (through an echo upstream).
bool round_trip(int fd, const std::string& msg) {
  if (!write_all(fd, msg.data(), msg.size(), scaled(Millis(2000)))) return false;
  std::string got;
  auto deadline = Clock::now() + scaled(Millis(2000));
  char buf[256];
  while (got.size() < msg.size() && Clock::now() < deadline) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    if (n == 0) return false;
    if (n < 0) std::this_thread::sleep_for(Millis(5));
  }
  return got == msg;
}

// maxActiveConnections 2: the third connection is accepted and closed at once, and counted;
// the two sessions keep working; once one ends, a new connection is served again.
TEST_F(FlowTest, ConnectionLimitClosesTheExcess) {
  uint16_t port = upstream_.listen("127.0.0.1", PeerScript::Echo());
  GatewayConf gw;
  gw.max_active_connections = 2;
  ASSERT_TRUE(start_proxy(make_config({}, {gw}, {UpstreamConf{.hosts = {{"127.0.0.1", port}}}})));
  Fd a = connect_tcp(gateway(), scaled(Millis(2000)));
  Fd b = connect_tcp(gateway(), scaled(Millis(2000)));
  ASSERT_TRUE(a.valid() && b.valid());
  ASSERT_TRUE(round_trip(a.get(), "first"));
  ASSERT_TRUE(round_trip(b.get(), "second"));
  ASSERT_TRUE(wait_metric("ringway_downstream_connections_active", kGw, 2, scaled(Millis(2000))));
  Fd c = connect_tcp(gateway(), scaled(Millis(2000)));
  ASSERT_TRUE(c.valid()) << "the excess connection should be accepted, then closed";
  StreamEnd end = drain_until_end(c.get(), scaled(Millis(2000)));
  EXPECT_NE(end, StreamEnd::Timeout) << "the third connection was not closed";
  EXPECT_TRUE(
      wait_metric("ringway_downstream_connections_rejected_total", kGw, 1, scaled(Millis(2000))));
  EXPECT_TRUE(round_trip(a.get(), "still here"));
  a.reset();
  c.reset();
  ASSERT_TRUE(wait_metric("ringway_downstream_connections_active", kGw, 1, scaled(Millis(2000))));
  Fd d = connect_tcp(gateway(), scaled(Millis(2000)));
  ASSERT_TRUE(d.valid());
  EXPECT_TRUE(round_trip(d.get(), "room again"));
  b.reset();
  d.reset();
  expect_no_leaks();
}

}  // namespace
}  // namespace ringway::test
