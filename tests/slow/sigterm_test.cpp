// SIGTERM under load (R13): N sessions (ci 200, full 500) each stream M bytes both ways (ci
// 4 MiB, full 8 MiB), the downstreams reading at 2 MiB/s so every session is mid-stream when
// SIGTERM arrives (half of all upstream bytes delivered). Passes when new connects are refused,
// every session completes byte-exact in both directions with FIN, not RST (0 bytes lost), and
// the daemon exits 0 before its drainTimeout.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include "scripted_peer.hpp"
#include "slow_fixture.hpp"

namespace ringway::test {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

class SigtermTest : public SlowTest {
 protected:
  PeerHost upstream_;
  PeerHost client_;
};

uint64_t total_received(const std::vector<ConnRecord>& rs) {
  uint64_t n = 0;
  for (const auto& r : rs)
    n += r.bytes_received;
  return n;
}

TEST_F(SigtermTest, SessionsStreamingAtSigtermLoseNoByte) {
  const size_t sessions = slow_pick<size_t>(200, 500);
  const uint64_t bytes = slow_pick<uint64_t>(4 * kMiB, 8 * kMiB);
  std::string why = fd_limit_shortfall(2 * sessions + 256);
  if (!why.empty()) GTEST_SKIP() << why;

  uint16_t port = upstream_.listen("127.0.0.1", PeerScript::Source(bytes, 7));
  ASSERT_NE(port, 0);
  ASSERT_TRUE(start_proxy(make_config({.workers = 2, .drain_timeout = "120s"}, {GatewayConf{}},
                                      {UpstreamConf{.hosts = {{"127.0.0.1", port}}}})));
  const Endpoint gw = gateway();
  for (size_t i = 0; i < sessions; ++i) {
    PeerScript s = PeerScript::Source(bytes, 700 + i);
    s.read_rate = 2 * kMiB;
    s.slow_read_bytes = kNoLimit;
    client_.connect(gw, s);
  }
  const uint64_t half = sessions * bytes / 2;
  ASSERT_TRUE(
      upstream_.wait([&](auto& rs) { return rs.size() == sessions && total_received(rs) >= half; },
                     scaled(Millis(60000))))
      << "upstreams received " << total_received(upstream_.records()) << " of " << 2 * half;
  proxy().signal(SIGTERM);
  auto term_at = Clock::now();
  size_t in_flight = 0;
  for (const auto& r : client_.records())
    in_flight += !r.closed && r.bytes_received < bytes;
  figure("sigterm", "sessions_mid_stream_at_sigterm", static_cast<double>(in_flight),
         "> 0 (of " + std::to_string(sessions) + ")");
  ASSERT_GT(in_flight, 0u) << "every session had finished before SIGTERM: nothing was tested";

  int err = 0;
  bool refused = poll_until(
      [&] {
        Fd fd = connect_tcp(gw, scaled(Millis(500)), &err);
        return !fd.valid() && err == ECONNREFUSED;
      },
      scaled(Millis(2000)), Millis(5));
  figure("sigterm", "ms_to_refuse_new_connects", ms_since(term_at), "2000 (anchor 100)");
  EXPECT_TRUE(refused) << "new connections still accepted after SIGTERM";

  auto all_closed = [&](const std::vector<ConnRecord>& rs) {
    return rs.size() >= sessions &&
           std::all_of(rs.begin(), rs.begin() + static_cast<ptrdiff_t>(sessions),
                       [](const ConnRecord& r) { return r.closed; });
  };
  ASSERT_TRUE(client_.wait(all_closed, scaled(Millis(120000))));
  // Every session's upstream must see its FIN too (a refusal probe accepted just before the
  // listener closed ends with a RST and does not count).
  ASSERT_TRUE(upstream_.wait(
      [&](auto& rs) {
        size_t finished = 0;
        for (const auto& r : rs)
          finished += (r.closed && r.eof && !r.reset) ? 1 : 0;
        return finished >= sessions;
      },
      scaled(Millis(30000))));
  figure("sigterm", "ms_from_sigterm_to_all_sessions_done", ms_since(term_at), "none");

  auto downs = client_.records();
  auto ups = upstream_.records();
  size_t exact = 0;
  uint64_t lost = 0;
  for (size_t i = 0; i < sessions; ++i) {
    const ConnRecord& d = downs[i];
    bool down_ok = d.bytes_received == bytes && d.eof && !d.reset;
    lost += bytes - std::min(bytes, d.bytes_received);
    // The upstream that carried this session: the one that received this client's stream.
    const ConnRecord* u = nullptr;
    for (const auto& cand : ups) {
      if (cand.recv_digest == d.sent_digest && cand.bytes_received == d.bytes_sent) u = &cand;
    }
    bool up_ok = u != nullptr && d.bytes_sent == bytes && u->sent_digest == d.recv_digest;
    if (u == nullptr) lost += bytes;
    if (down_ok && up_ok) {
      ++exact;
    } else if (i - exact < 5) {
      ADD_FAILURE() << "session " << i << ": " << describe(d)
                    << (u ? "\nupstream: " + describe(*u) : std::string("\nno matching upstream"));
    }
  }
  figure("sigterm", "sessions_byte_exact", static_cast<double>(exact),
         "== " + std::to_string(sessions));
  figure("sigterm", "bytes_lost", static_cast<double>(lost), "0");
  EXPECT_EQ(exact, sessions);
  EXPECT_EQ(lost, 0u);

  auto code = proxy().wait_exit(scaled(Millis(30000)));
  ASSERT_TRUE(code.has_value()) << "no exit (signal " << proxy().term_signal() << ")";
  figure("sigterm", "exit_code", *code, "0");
  EXPECT_EQ(*code, 0);
}

}  // namespace
}  // namespace ringway::test
