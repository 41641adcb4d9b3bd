// Slowloris at L4: N connections (ci 2,000, full 10,000) each send one byte a second through an
// echo upstream for the whole run, while one normal session on the same gateway keeps doing
// 64-byte round trips right after each second's burst of N one-byte writes. Passes when every
// round trip is answered (within 1 s), every slow connection gets each of its bytes echoed,
// and the daemon's memory stays within N x (2 x buffer limit + 2 KiB) + 16 MiB (the R01 bound)
// without growing in the second half of the run. The round-trip percentiles are printed.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "proc_audit.hpp"
#include "scripted_peer.hpp"
#include "slow_fixture.hpp"

namespace ringway::test {
namespace {

// Above the number of sessions held, so the upstream's circuit breaker (default 1,024 like
// Envoy's) never closes one of them.
constexpr uint32_t kCircuitLimit = 20000;

constexpr uint32_t kBufferLimit = 64 * 1024;
constexpr size_t kPingBytes = 64;
constexpr int kPingsPerSecond = 10;

// Sends 64 bytes on a blocking socket and reads the echo; the round trip in ms, or -1 when the
// echo did not come back whole within `timeout`.
double ping(int fd, uint8_t tag, Millis timeout) {
  uint8_t out[kPingBytes];
  for (size_t i = 0; i < kPingBytes; ++i)
    out[i] = static_cast<uint8_t>(tag + i);
  auto start = Clock::now();
  if (!write_all(fd, out, sizeof(out), timeout)) return -1;
  uint8_t in[kPingBytes];
  size_t got = 0;
  while (got < sizeof(in)) {
    auto left = timeout - std::chrono::duration_cast<Millis>(Clock::now() - start);
    if (left.count() <= 0) return -1;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return -1;
    ssize_t n = ::recv(fd, in + got, sizeof(in) - got, 0);
    if (n <= 0) return -1;
    got += static_cast<size_t>(n);
  }
  if (std::memcmp(in, out, sizeof(in)) != 0) return -1;
  return ms_since(start);
}

// Reads whatever is waiting on a non-blocking socket; the byte count (0 when nothing).
size_t drain_ready(int fd) {
  size_t total = 0;
  char buf[256];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0) return total;
    total += static_cast<size_t>(n);
  }
}

class SlowlorisTest : public SlowTest {
 protected:
  PeerHost upstream_;
};

TEST_F(SlowlorisTest, OneByteASecondDoesNotSlowANormalSession) {
  const size_t conns = slow_pick<size_t>(2000, 10000);
  const int seconds = slow_pick(10, 30);
  std::string why = fd_limit_shortfall(2 * conns + 512);
  if (!why.empty()) GTEST_SKIP() << why;

  uint16_t port = upstream_.listen("127.0.0.1", PeerScript::Echo());
  ASSERT_NE(port, 0);
  GatewayConf gw;
  gw.buffer_limit = kBufferLimit;
  ASSERT_TRUE(start_proxy(make_config(
      {.workers = 2}, {gw},
      {UpstreamConf{.hosts = {{"127.0.0.1", port}}, .max_connections = kCircuitLimit}})));
  const int64_t rss_before = rss_kib(proxy().pid());

  // The slow connections, in batches the daemon accepts before the next (no SYN retries).
  std::vector<Fd> slow;
  slow.reserve(conns);
  constexpr size_t kBatch = 500;
  for (size_t i = 0; i < conns; ++i) {
    int err = 0;
    Fd fd = connect_tcp(gateway(), scaled(Millis(5000)), &err);
    ASSERT_TRUE(fd.valid()) << "connect " << i << ": " << std::strerror(err);
    slow.push_back(std::move(fd));
    if ((i + 1) % kBatch != 0 && i + 1 != conns) continue;
    ASSERT_TRUE(wait_metric("ringway_downstream_connections_active", kGw,
                            static_cast<double>(i + 1), scaled(Millis(10000))));
  }
  Fd normal = connect_tcp(gateway(), scaled(Millis(5000)));
  ASSERT_TRUE(normal.valid());

  std::vector<double> rtts;
  std::vector<size_t> echoed(conns, 0);
  int64_t peak_rss = 0;
  int64_t rss_mid = 0;
  size_t failed_pings = 0;
  auto tick = Clock::now();
  for (int s = 0; s < seconds; ++s) {
    const uint8_t byte = static_cast<uint8_t>('a' + s % 26);
    for (auto& fd : slow) {
      ASSERT_EQ(::send(fd.get(), &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT), 1)
          << "a slow connection was closed: " << std::strerror(errno);
    }
    // The normal session right behind the burst: this is when the daemon is busiest.
    for (int p = 0; p < kPingsPerSecond; ++p) {
      double rtt = ping(normal.get(), static_cast<uint8_t>(p), scaled(Millis(1000)));
      if (rtt < 0) {
        ++failed_pings;
      } else {
        rtts.push_back(rtt);
      }
    }
    for (size_t i = 0; i < conns; ++i)
      echoed[i] += drain_ready(slow[i].get());
    int64_t rss = rss_kib(proxy().pid());
    peak_rss = std::max(peak_rss, rss);
    if (s == seconds / 2) rss_mid = rss;
    tick += Millis(1000);
    std::this_thread::sleep_until(tick);  // one byte a second: the pacing is the scenario
  }
  const int64_t rss_end = rss_kib(proxy().pid());
  // Every byte of every slow connection comes back (bounded wait for the last ones).
  bool all_echoed = poll_until(
      [&] {
        bool all = true;
        for (size_t i = 0; i < conns; ++i) {
          echoed[i] += drain_ready(slow[i].get());
          all = all && echoed[i] == static_cast<size_t>(seconds);
        }
        return all;
      },
      scaled(Millis(5000)), Millis(50));
  size_t complete = 0;
  for (size_t n : echoed)
    complete += n == static_cast<size_t>(seconds);

  const size_t pings = rtts.size();
  figure("slowloris", "connections", static_cast<double>(conns), "none");
  figure("slowloris", "normal_session_rtt_p50_ms", percentile(rtts, 50), "none");
  figure("slowloris", "normal_session_rtt_p99_ms", percentile(rtts, 99), "none (anchor 50)");
  figure("slowloris", "normal_session_rtt_max_ms", percentile(rtts, 100),
         std::to_string(scaled(Millis(1000)).count()));
  figure("slowloris", "pings_unanswered", static_cast<double>(failed_pings), "0");
  EXPECT_EQ(failed_pings, 0u) << "of " << pings + failed_pings << " round trips";
  figure("slowloris", "connections_fully_echoed", static_cast<double>(complete),
         "== " + std::to_string(conns));
  EXPECT_TRUE(all_echoed);
  EXPECT_EQ(complete, conns);

  const double rss_delta = static_cast<double>(peak_rss - rss_before);
  const double rss_limit =
      static_cast<double>(conns) * (2.0 * kBufferLimit / 1024 + 2.0) + 16.0 * 1024;
  figure("slowloris", "rss_delta_kib", rss_delta, std::to_string(static_cast<int64_t>(rss_limit)));
  figure("slowloris", "rss_per_connection_kib", rss_delta / static_cast<double>(conns), "none");
  figure("slowloris", "rss_growth_second_half_kib", static_cast<double>(rss_end - rss_mid), "none");
  if (!built_with_asan()) {
    EXPECT_LE(rss_delta, rss_limit);
  }

  slow.clear();
  normal.reset();
  expect_no_leaks();
}

}  // namespace
}  // namespace ringway::test
