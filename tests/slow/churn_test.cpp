// R02, churn with zero leak: N sessions (ci 10,000, full 50,000) opened at no more than 400 per
// second from eight source addresses (127.0.0.2-9, so one address's ephemeral ports are not the
// limit), each moving 100 bytes and ending in one of three ways: the downstream closes first,
// the upstream closes first, or the downstream resets (10 %). Two identical waves, A and B.
// Passes when every session was byte-exact, the daemon's descriptor count is back to the EXACT
// baseline after a quiet period, the active gauge is 0, no stale completion was seen, and wave
// B grew the daemon's memory by at most 1 MiB over wave A.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <thread>

#include "proc_audit.hpp"
#include "scripted_peer.hpp"
#include "slow_fixture.hpp"
#include "stream_hash.hpp"

namespace ringway::test {
namespace {

constexpr uint64_t kBytes = 100;
constexpr uint64_t kUpstreamSeed = 77;
constexpr double kMaxRatePerSecond = 400;
constexpr size_t kChunk = 1000;  // sessions per client host: bounds the records each wait scans

enum class Ending { DownstreamFirst, UpstreamFirst, DownstreamReset };

uint64_t pattern_digest(uint64_t seed, uint64_t n) {
  std::vector<uint8_t> bytes(n);
  PatternStream(seed).fill(bytes);
  StreamHash h;
  h.update(bytes);
  return h.digest();
}

class ChurnTest : public SlowTest {
 protected:
  struct Tally {
    size_t exact = 0;
    size_t connect_errors = 0;
    size_t bad = 0;
  };

  // Runs `n` sessions at the paced rate; adds what happened to `tally`.
  void run_wave(size_t n, std::mt19937& rng, Tally& tally) {
    const auto sources = loopback_sources(8);
    const Endpoint echo_gw = gateway("default.echo");
    const Endpoint first_gw = gateway("default.first");
    const uint64_t upstream_digest = pattern_digest(kUpstreamSeed, kBytes);
    const auto spacing = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(1.0 / kMaxRatePerSecond));
    std::uniform_int_distribution<int> percent(0, 99);
    auto next_at = Clock::now();
    for (size_t done = 0; done < n;) {
      const size_t count = std::min(kChunk, n - done);
      PeerHost client;
      std::vector<Ending> endings;
      for (size_t i = 0; i < count; ++i, ++seed_) {
        int p = percent(rng);
        Ending e = p < 10   ? Ending::DownstreamReset
                   : p < 55 ? Ending::DownstreamFirst
                            : Ending::UpstreamFirst;
        endings.push_back(e);
        PeerScript s;
        if (e == Ending::DownstreamFirst) {
          s = PeerScript::Source(kBytes, seed_);
        } else if (e == Ending::UpstreamFirst) {
          s = PeerScript::Sink();
        } else {
          s = PeerScript::Source(kBytes, seed_);
          s.fin_after_send = false;
          s.rst_after = kBytes;  // the whole echo arrived: then reset
        }
        std::this_thread::sleep_until(next_at);  // pacing the rate, not waiting for an event
        next_at += spacing;
        client.connect(e == Ending::UpstreamFirst ? first_gw : echo_gw, s,
                       sources[seed_ % sources.size()]);
      }
      bool all_closed = client.wait(
          [&](auto& rs) {
            return std::all_of(rs.begin(), rs.end(), [](const ConnRecord& r) { return r.closed; });
          },
          scaled(Millis(20000)));
      auto rs = client.records();
      for (size_t i = 0; i < rs.size(); ++i) {
        const ConnRecord& r = rs[i];
        bool ok = false;
        switch (endings[i]) {
          case Ending::DownstreamFirst:
            ok = r.bytes_received == kBytes && r.recv_digest == r.sent_digest && r.eof && !r.reset;
            break;
          case Ending::UpstreamFirst:
            ok =
                r.bytes_received == kBytes && r.recv_digest == upstream_digest && r.eof && !r.reset;
            break;
          case Ending::DownstreamReset:
            ok = r.bytes_received == kBytes && r.recv_digest == r.sent_digest && r.closed;
            break;
        }
        tally.connect_errors += r.connect_errno != 0;
        if (ok) {
          ++tally.exact;
        } else if (tally.bad++ < 5) {
          ADD_FAILURE() << "session ending " << static_cast<int>(endings[i]) << ": " << describe(r);
        }
      }
      ASSERT_TRUE(all_closed) << "sessions of a chunk still open after 20 s";
      done += count;
    }
  }

  // The daemon's fds at the exact baseline, gauge 0, no CLOSE_WAIT: "" or what is wrong.
  std::string audit(Millis timeout) {
    return audit_leaks(proxy().pid(), baseline_fds_, admin_port(), timeout);
  }

  uint64_t seed_ = 5000;
  PeerHost echo_upstream_;
  PeerHost first_upstream_;
};

TEST_F(ChurnTest, SessionsChurnedLeaveNothingBehind) {
  const size_t sessions = slow_pick<size_t>(10000, 50000);
  for (const auto& src : loopback_sources(8)) {
    Fd probe = listen_tcp(src, 1, nullptr);
    if (!probe.valid()) GTEST_SKIP() << "cannot bind " << src << " (127.0.0.0/8 not on lo?)";
  }
  uint16_t echo_port = echo_upstream_.listen("127.0.0.1", PeerScript::Echo());
  uint16_t first_port =
      first_upstream_.listen("127.0.0.1", PeerScript::Source(kBytes, kUpstreamSeed));
  ASSERT_TRUE(echo_port != 0 && first_port != 0);
  GatewayConf echo_gw{.name = "echo", .upstream = "echo"};
  GatewayConf first_gw{.name = "first", .upstream = "first"};
  ASSERT_TRUE(start_proxy(
      make_config({.workers = 2}, {echo_gw, first_gw},
                  {UpstreamConf{.name = "echo", .hosts = {{"127.0.0.1", echo_port}}},
                   UpstreamConf{.name = "first", .hosts = {{"127.0.0.1", first_port}}}})));

  std::mt19937 rng(20261129);
  Tally tally;
  auto start = Clock::now();
  ASSERT_NO_FATAL_FAILURE(run_wave(sessions / 2, rng, tally));
  // R02: the counts are compared after 2 s without traffic.
  std::string problem_a = audit(scaled(Millis(2000)));
  EXPECT_EQ(problem_a, "") << "after wave A";
  const int64_t rss_a = rss_kib(proxy().pid());
  ASSERT_NO_FATAL_FAILURE(run_wave(sessions - sessions / 2, rng, tally));
  auto quiet_at = Clock::now();
  std::string problem = audit(scaled(Millis(2000)));
  const double ms_to_baseline = ms_since(quiet_at);
  const int64_t rss_b = rss_kib(proxy().pid());
  const double elapsed_s = ms_since(start) / 1000.0;

  figure("R02 churn", "sessions_per_s", static_cast<double>(sessions) / elapsed_s,
         "<= " + std::to_string(static_cast<int>(kMaxRatePerSecond)));
  figure("R02 churn", "sessions_byte_exact", static_cast<double>(tally.exact),
         "== N = " + std::to_string(sessions));
  figure("R02 churn", "connect_errors", static_cast<double>(tally.connect_errors), "0");
  figure("R02 churn", "fds_minus_baseline_after_quiet", fd_count(proxy().pid()) - baseline_fds_,
         "0 (exact)");
  figure("R02 churn", "ms_to_fd_baseline", ms_to_baseline, "2000");
  figure("R02 churn", "rss_growth_wave_b_over_a_kib", static_cast<double>(rss_b - rss_a), "1024");
  EXPECT_EQ(tally.exact, sessions);
  EXPECT_EQ(tally.connect_errors, 0u);
  EXPECT_EQ(problem, "");
  if (!built_with_asan()) {
    EXPECT_LE(rss_b - rss_a, 1024);
  }

  auto total = metric("ringway_downstream_connections_total");
  auto stale = metric("ringway_stale_completions_total");
  auto active = metric("ringway_downstream_connections_active");
  ASSERT_TRUE(total && stale && active);
  figure("R02 churn", "stale_completions_total", *stale, "0");
  EXPECT_EQ(*total, static_cast<double>(sessions));
  EXPECT_EQ(*active, 0);
  EXPECT_EQ(*stale, 0);
}

}  // namespace
}  // namespace ringway::test
