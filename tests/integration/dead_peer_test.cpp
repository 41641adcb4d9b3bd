// A dead peer found by keepalive: the peer sits in a private network namespace behind a veth
// pair; after a session is established its link goes down, so it vanishes without FIN or RST.
// Only keepalive can notice; the proxy must then close the other side too. Needs root and
// `ip netns` (skipped otherwise).
#include <gtest/gtest.h>

#include "fixture.hpp"
#include "netns.hpp"
#include "scripted_peer.hpp"

namespace ringway::test {
namespace {

class DeadPeerTest : public ProxyTest {
 protected:
  void SetUp() override {
    std::string why;
    ns_ = TestNetns::create(&why);
    if (!ns_) GTEST_SKIP() << why;
  }
  // Declared before the peers so that the peers' sockets close before the namespace goes.
  std::unique_ptr<TestNetns> ns_;
  PeerHost upstream_;
  PeerHost client_;
};

// A session whose downstream stays open and silent after one exchange.
PeerScript open_silent_session() {
  PeerScript s = PeerScript::Source(1000, 90);
  s.fin_after_send = false;
  return s;
}

TEST_F(DeadPeerTest, DeadUpstreamClosesBothSides) {
  uint16_t port = 0;
  {
    NetnsScope inside(ns_->name());
    ASSERT_TRUE(inside.ok());
    port = upstream_.listen(ns_->inner_addr(), PeerScript::Echo());
  }
  ASSERT_NE(port, 0);
  GatewayConf gw;
  gw.idle_timeout = "0s";  // only keepalive may end this session
  ASSERT_TRUE(start_proxy(
      make_config({}, {gw},
                  {UpstreamConf{.hosts = {{ns_->inner_addr(), port}},
                                .tcp_keepalive = "{ keepaliveTime = 1, keepaliveInterval = 1, "
                                                 "keepaliveProbes = 2 }"}})));
  size_t id = client_.connect(gateway(), open_silent_session());
  ASSERT_TRUE(
      client_.wait([&](auto& rs) { return rs.size() > id && rs[id].bytes_received == 1000; },
                   scaled(Millis(5000))));
  ASSERT_TRUE(ns_->set_inner_link(false));
  auto down_at = Clock::now();
  // idle 1 s + 2 probes x 1 s: about 3 s; 5 s is the bound.
  EXPECT_TRUE(client_.wait([&](auto& rs) { return rs[id].closed; }, scaled(Millis(5000))))
      << "downstream still open " << ms_since(down_at)
      << " ms after the upstream vanished: " << describe(client_.record(id));
  note("closed_after_link_down_ms",
       std::chrono::duration<double, std::milli>(client_.record(id).ended_at - down_at).count());
  EXPECT_TRUE(wait_metric("ringway_downstream_connections_active", kGw, 0, scaled(Millis(2000))));
  EXPECT_TRUE(
      wait_metric("ringway_upstream_keepalive_timeouts_total", kUp, 1, scaled(Millis(2000))));
  expect_no_leaks();
}

TEST_F(DeadPeerTest, DeadDownstreamClosesBothSides) {
  uint16_t port = upstream_.listen("127.0.0.1", PeerScript::Echo());
  GatewayConf gw;
  gw.bind_address = ns_->outer_addr();  // the root side of the veth
  gw.idle_timeout = "0s";
  gw.socket_options = keepalive_socket_options(1, 1, 2);
  ASSERT_TRUE(start_proxy(make_config({}, {gw}, {UpstreamConf{.hosts = {{"127.0.0.1", port}}}})));
  size_t id = 0;
  {
    NetnsScope inside(ns_->name());
    ASSERT_TRUE(inside.ok());
    id = client_.connect(gateway(), open_silent_session());
  }
  ASSERT_TRUE(
      client_.wait([&](auto& rs) { return rs.size() > id && rs[id].bytes_received == 1000; },
                   scaled(Millis(5000))))
      << describe(client_.record(id));
  ASSERT_TRUE(ns_->set_inner_link(false));
  auto down_at = Clock::now();
  EXPECT_TRUE(
      upstream_.wait([](auto& rs) { return !rs.empty() && rs[0].closed; }, scaled(Millis(5000))))
      << "upstream still open " << ms_since(down_at)
      << " ms after the downstream vanished: " << describe(upstream_.record(0));
  note("closed_after_link_down_ms",
       std::chrono::duration<double, std::milli>(upstream_.record(0).ended_at - down_at).count());
  EXPECT_TRUE(wait_metric("ringway_downstream_connections_active", kGw, 0, scaled(Millis(2000))));
  EXPECT_TRUE(
      wait_metric("ringway_downstream_keepalive_timeouts_total", kGw, 1, scaled(Millis(2000))));
  expect_no_leaks();
}

}  // namespace
}  // namespace ringway::test
