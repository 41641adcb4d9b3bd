// A worker's buffer memory under pressure (issue 10, defect 1): downloads whose clients never
// read must not freeze another session on the same worker. Checked through the real daemon with
// one worker: the fair share keeps a thousand stalled downloads from taking the pool; admission
// refuses new sessions once only the reserve is left; and when a burst of stalled sessions takes
// the pool anyway, the last resort resets the largest stalled one so a starved session moves.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "proc_audit.hpp"
#include "scripted_peer.hpp"

namespace ringway::test {
namespace {

constexpr uint64_t kKiB = 1024;

// SO_SNDBUF on the download gateway's listener (inherited by accepted sockets): fixes the
// kernel's share of each stalled download at a few KiB, so what the test fills is the proxy's
// own pool, and the kernel's TCP memory stays small with a thousand stalled sessions.
std::string small_sndbuf_option() {
  return "[[gateways.options.socketOptions]]\n"
         "description = \"small send buffer\"\n"
         "level = \"SOL_SOCKET\"\nname = \"SO_SNDBUF\"\nintValue = 16384\n"
         "state = \"STATE_PREBIND\"\n";
}

struct PingFigures {
  bool all_answered = true;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

// `count` round trips of 64 bytes on an established echo session, one at a time.
PingFigures ping(int fd, int count, Millis per_ping_timeout) {
  PingFigures f;
  std::vector<double> rtts;
  std::array<char, 64> out{}, in{};
  for (int i = 0; i < count; ++i) {
    std::memset(out.data(), 'a' + (i % 26), out.size());
    const auto start = Clock::now();
    if (!write_all(fd, out.data(), out.size(), per_ping_timeout)) {
      f.all_answered = false;
      break;
    }
    size_t got = 0;
    while (got < in.size()) {
      timeval tv{static_cast<time_t>(per_ping_timeout.count() / 1000),
                 static_cast<suseconds_t>((per_ping_timeout.count() % 1000) * 1000)};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      const ssize_t n = ::recv(fd, in.data() + got, in.size() - got, 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    if (got != in.size() || std::memcmp(in.data(), out.data(), in.size()) != 0) {
      f.all_answered = false;
      break;
    }
    rtts.push_back(ms_since(start));
  }
  if (rtts.empty()) return f;
  std::sort(rtts.begin(), rtts.end());
  f.p50_ms = rtts[rtts.size() / 2];
  f.p99_ms = rtts[std::min(rtts.size() - 1, rtts.size() * 99 / 100)];
  f.max_ms = rtts.back();
  return f;
}

class OverloadTest : public ProxyTest {
 protected:
  // Two gateways on the one worker: "dl" to a source that pushes `download_bytes` per session,
  // "echo" to an echo upstream.
  testing::AssertionResult start(uint64_t download_bytes, bool source_waits_for_go,
                                 const std::string& settings_extra) {
    PeerScript source = PeerScript::Source(download_bytes, 7);
    source.wait_for_go = source_waits_for_go;
    const uint16_t source_port = source_.listen("127.0.0.1", source);
    const uint16_t echo_port = echo_.listen("127.0.0.1", PeerScript::Echo());
    if (source_port == 0 || echo_port == 0) return testing::AssertionFailure() << "peer listen";
    GatewayConf dl{.name = "dl", .upstream = "source"};
    dl.socket_options = small_sndbuf_option();
    GatewayConf echo{.name = "echo", .upstream = "echo"};
    return start_proxy(
        make_config({.workers = 1, .extra = settings_extra}, {dl, echo},
                    {UpstreamConf{.name = "source", .hosts = {{"127.0.0.1", source_port}}},
                     UpstreamConf{.name = "echo", .hosts = {{"127.0.0.1", echo_port}}}}));
  }

  // Opens the echo session and checks it answers before the load starts.
  Fd open_echo() {
    Fd fd = connect_tcp(gateway("default.echo"), scaled(Millis(2000)));
    if (fd.valid() && !ping(fd.get(), 1, scaled(Millis(2000))).all_answered) fd.reset();
    return fd;
  }

  // Polls until the pool gauge has not moved for a second: the downloads have filled what they
  // are allowed to fill. Returns the smallest free count seen.
  double wait_pool_settled(Millis timeout) {
    double last = -1, lowest = 1e18;
    auto stable_since = Clock::now();
    poll_until(
        [&] {
          auto free = metric("ringway_buffer_pool_free");
          if (!free) return false;
          lowest = std::min(lowest, *free);
          if (*free != last) {
            last = *free;
            stable_since = Clock::now();
          }
          return ms_since(stable_since) >= 1000;
        },
        timeout, Millis(50));
    return lowest;
  }

  PeerHost source_, echo_, clients_;
};

// The figure: 1,000 downloads through one worker whose clients never read; an echo
// session on another gateway of the same worker must keep answering, and the daemon's memory
// must stay under the pool's cap. Before the fair share, about 300 such downloads held every
// buffer and the echo session got no answer at all.
TEST_F(OverloadTest, ThousandStalledDownloadsDoNotFreezeAnotherSession) {
  constexpr int kDownloads = 1000;
  constexpr uint64_t kPerDownload = 256 * kKiB;
  ASSERT_TRUE(start(kPerDownload, false, ""));
  Fd echo = open_echo();
  ASSERT_TRUE(echo.valid()) << "the echo session did not answer before the load";
  const int64_t rss_before = rss_kib(proxy().pid());

  for (int i = 0; i < kDownloads; ++i)
    clients_.connect(gateway("default.dl"), PeerScript::NeverRead(4096));
  ASSERT_TRUE(clients_.wait(
      [&](const auto& rs) {
        return std::all_of(rs.begin(), rs.end(),
                           [](const ConnRecord& r) { return r.connected || r.connect_errno; });
      },
      scaled(Millis(20000))));
  const double lowest_free = wait_pool_settled(scaled(Millis(30000)));
  const double refused = metric("ringway_downstream_connections_overload_total").value_or(-1);
  const double active =
      metric("ringway_downstream_connections_active", {{"gateway", "default.dl"}}).value_or(-1);

  const PingFigures f = ping(echo.get(), 100, scaled(Millis(1000)));
  const int64_t rss_growth = rss_kib(proxy().pid()) - rss_before;
  note("stalled_downloads_open", active);
  note("overload_resets", metric("ringway_overload_resets_total").value_or(-1));
  note("downloads_refused_overload", refused);
  note("pool_free_lowest", lowest_free);
  note("echo_p50_ms", f.p50_ms);
  note("echo_p99_ms", f.p99_ms);
  note("echo_max_ms", f.max_ms);
  note("rss_growth_kib", static_cast<double>(rss_growth));
  // A frozen worker answers nothing (before the fix: no answer for 5 s); the 10 ms p99 target is
  // a figure printed above, not asserted: wall-clock limits belong to benchmarks.
  EXPECT_TRUE(f.all_answered) << "the echo session stopped answering";
  EXPECT_LT(f.max_ms, 1000.0);
  EXPECT_GT(lowest_free, 0) << "the stalled downloads took every buffer";
  // The pool's cap (64 MiB by default) bounds what the downloads can make resident.
  EXPECT_LE(rss_growth, 64 * 1024 + (built_with_asan() ? 64 * 1024 : 16 * 1024));

  echo.reset();
  for (size_t i = 0; i < clients_.count(); ++i)
    clients_.abort(i);
  expect_no_leaks();
}

// A pool of 32 buffers (reserve 8) and 40 downloads admitted before any of them has data (their
// source waits for go), so the fair share cannot help: each stalled direction takes a buffer and
// the pool runs dry. The echo session's recv then starves; after a second the worker resets the
// stalled sessions holding the most buffers (enough for every waiting direction plus the
// reserve), and the echo session answers again. A connection
// that arrives while the pool is below its reserve is refused at once, and counted.
TEST_F(OverloadTest, PoolHeldHostageResetsTheLargestStalledSession) {
  if (const char* f = std::getenv("RINGWAY_FORWARDING");
      f != nullptr && (std::string(f) == "splice" || std::string(f) == "auto")) {
    GTEST_SKIP() << "RINGWAY_FORWARDING=" << f << ": the downloads hold pipes, not pool buffers";
  }
  ASSERT_TRUE(start(4 * 1024 * kKiB, true, "perWorkerBufferLimitBytes = 1048576\n"));
  Fd echo = open_echo();
  ASSERT_TRUE(echo.valid());
  constexpr int kDownloads = 40;
  for (int i = 0; i < kDownloads; ++i)
    clients_.connect(gateway("default.dl"), PeerScript::NeverRead(4096));
  ASSERT_TRUE(wait_metric("ringway_upstream_connections_total", {{"upstream", "default.source"}},
                          kDownloads, scaled(Millis(10000))));
  source_.go();
  // 40 stalled directions of at least one buffer each cannot fit in 32: the pool runs dry and
  // the directions that came last wait for a buffer.
  ASSERT_TRUE(poll_until(
      [&] {
        return metric("ringway_buffer_pool_free").value_or(-1) == 0 &&
               metric("ringway_buffer_pool_enobufs_total").value_or(0) > 0;
      },
      scaled(Millis(10000))))
      << "the downloads never emptied the pool";

  // Admission: refused while the pool is below its reserve.
  Fd late = connect_tcp(gateway("default.dl"), scaled(Millis(2000)));
  ASSERT_TRUE(late.valid());
  uint64_t late_bytes = 0;
  const StreamEnd late_end = drain_until_end(late.get(), scaled(Millis(5000)), &late_bytes);
  EXPECT_TRUE(late_end == StreamEnd::Eof || late_end == StreamEnd::Reset);
  EXPECT_EQ(late_bytes, 0u);
  EXPECT_TRUE(
      wait_metric("ringway_downstream_connections_overload_total", {}, 1, scaled(Millis(2000))));

  // The echo session's next recv finds no buffer; it waits about a second for the last resort,
  // then round trips work again.
  const PingFigures f = ping(echo.get(), 20, scaled(Millis(5000)));
  const double resets = metric("ringway_overload_resets_total").value_or(-1);
  note("overload_resets", resets);
  note("echo_max_ms", f.max_ms);
  EXPECT_TRUE(f.all_answered);
  EXPECT_GE(resets, 1) << "the echo session moved, yet nothing freed a buffer for it";
  EXPECT_LT(f.max_ms, 5000.0);
  // The reset sessions' peers saw a reset and the rest are still open (none ended cleanly).
  EXPECT_TRUE(wait_metric("ringway_downstream_connections_active", {{"gateway", "default.dl"}},
                          kDownloads - resets, scaled(Millis(2000))));

  echo.reset();
  late.reset();
  for (size_t i = 0; i < clients_.count(); ++i)
    clients_.abort(i);
  expect_no_leaks();
}

}  // namespace
}  // namespace ringway::test
