// Keepalive dead-peer detection at size: N sessions (ci 20, full 100) whose peer sits in a
// private network namespace behind a veth pair; once every session has exchanged data, the
// namespace's link goes down, so the peers vanish without FIN or RST. Passes when every session
// is closed on the other side within idle + interval x probes + 1 s of the link going down, the
// keepalive counter shows all of them, and nothing is left behind. Once for dead upstreams and
// once for dead downstreams. Needs root and `ip netns` (skipped otherwise).
#include <gtest/gtest.h>

#include <algorithm>
#include "netns.hpp"
#include "scripted_peer.hpp"
#include "slow_fixture.hpp"

namespace ringway::test {
namespace {

constexpr int kIdle = 2, kInterval = 1, kProbes = 2;
constexpr double kLimitMs = (kIdle + kInterval * kProbes + 1) * 1000.0;

class KeepaliveDeadPeerTest : public SlowTest {
 protected:
  void SetUp() override {
    std::string why;
    ns_ = TestNetns::create(&why);
    if (!ns_) GTEST_SKIP() << why;
  }

  // A session that exchanges 1,000 bytes and then stays open and silent.
  static PeerScript open_silent_session(uint64_t seed) {
    PeerScript s = PeerScript::Source(1000, seed);
    s.fin_after_send = false;
    return s;
  }

  // Takes the link down and waits for every connection of `survivor` (the side that stays up)
  // to be closed; prints the slowest detection and checks it against the limit.
  void expect_all_closed_in_time(const std::string& what, const PeerHost& survivor, size_t n) {
    ASSERT_TRUE(ns_->set_inner_link(false));
    auto down_at = Clock::now();
    const Millis wait_for(static_cast<int64_t>(kLimitMs) + scaled(Millis(2000)).count());
    bool closed = survivor.wait(
        [&](auto& rs) {
          return rs.size() >= n &&
                 std::all_of(rs.begin(), rs.end(), [](const ConnRecord& r) { return r.closed; });
        },
        wait_for);
    double slowest = 0;
    double fastest = 1e12;
    size_t open = 0;
    for (const auto& r : survivor.records()) {
      if (!r.closed) {
        ++open;
        continue;
      }
      double ms = std::chrono::duration<double, std::milli>(r.ended_at - down_at).count();
      slowest = std::max(slowest, ms);
      fastest = std::min(fastest, ms);
    }
    const std::string limit =
        std::to_string(static_cast<int>(kLimitMs)) + " (idle + interval x probes + 1 s)";
    figure("keepalive " + what, "sessions", static_cast<double>(n), "none");
    figure("keepalive " + what, "slowest_close_after_link_down_ms", slowest, limit);
    figure("keepalive " + what, "fastest_close_after_link_down_ms", fastest, "none");
    EXPECT_TRUE(closed) << open << " sessions still open";
    EXPECT_LE(slowest, kLimitMs);
  }

  // Declared before the peers so that the peers' sockets close before the namespace goes.
  std::unique_ptr<TestNetns> ns_;
  PeerHost upstream_;
  PeerHost client_;
};

bool all_exchanged(const std::vector<ConnRecord>& rs, size_t n) {
  return rs.size() >= n && std::all_of(rs.begin(), rs.end(), [](const ConnRecord& r) {
           return r.bytes_received == 1000;
         });
}

TEST_F(KeepaliveDeadPeerTest, DeadUpstreamsDetectedInTime) {
  const size_t sessions = slow_pick<size_t>(20, 100);
  uint16_t port = 0;
  {
    NetnsScope inside(ns_->name());
    ASSERT_TRUE(inside.ok());
    port = upstream_.listen(ns_->inner_addr(), PeerScript::Echo());
  }
  ASSERT_NE(port, 0);
  GatewayConf gw;
  gw.idle_timeout = "0s";  // only keepalive may end these sessions
  std::string ka = "{ keepaliveTime = " + std::to_string(kIdle) +
                   ", keepaliveInterval = " + std::to_string(kInterval) +
                   ", keepaliveProbes = " + std::to_string(kProbes) + " }";
  ASSERT_TRUE(start_proxy(make_config(
      {}, {gw}, {UpstreamConf{.hosts = {{ns_->inner_addr(), port}}, .tcp_keepalive = ka}})));
  for (size_t i = 0; i < sessions; ++i)
    client_.connect(gateway(), open_silent_session(900 + i));
  ASSERT_TRUE(
      client_.wait([&](auto& rs) { return all_exchanged(rs, sessions); }, scaled(Millis(10000))));
  ASSERT_NO_FATAL_FAILURE(expect_all_closed_in_time("dead upstream", client_, sessions));
  EXPECT_TRUE(wait_metric("ringway_upstream_keepalive_timeouts_total", kUp,
                          static_cast<double>(sessions), scaled(Millis(2000))));
  expect_no_leaks();
}

TEST_F(KeepaliveDeadPeerTest, DeadDownstreamsDetectedInTime) {
  const size_t sessions = slow_pick<size_t>(20, 100);
  uint16_t port = upstream_.listen("127.0.0.1", PeerScript::Echo());
  ASSERT_NE(port, 0);
  GatewayConf gw;
  gw.bind_address = ns_->outer_addr();  // the root side of the veth
  gw.idle_timeout = "0s";
  gw.socket_options = keepalive_socket_options(kIdle, kInterval, kProbes);
  ASSERT_TRUE(start_proxy(make_config({}, {gw}, {UpstreamConf{.hosts = {{"127.0.0.1", port}}}})));
  {
    NetnsScope inside(ns_->name());
    ASSERT_TRUE(inside.ok());
    for (size_t i = 0; i < sessions; ++i)
      client_.connect(gateway(), open_silent_session(950 + i));
  }
  ASSERT_TRUE(
      client_.wait([&](auto& rs) { return all_exchanged(rs, sessions); }, scaled(Millis(10000))));
  ASSERT_NO_FATAL_FAILURE(expect_all_closed_in_time("dead downstream", upstream_, sessions));
  EXPECT_TRUE(wait_metric("ringway_downstream_keepalive_timeouts_total", kGw,
                          static_cast<double>(sessions), scaled(Millis(2000))));
  expect_no_leaks();
}

}  // namespace
}  // namespace ringway::test
