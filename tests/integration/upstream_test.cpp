// Upstream connect failures through the real daemon: a refusing upstream (the downstream is
// closed at once and the refusal counted), a connect blackhole (closed at connectTimeout
// within 10 %), and the retry to the next host when the first refuses.
#include <gtest/gtest.h>

#include "fixture.hpp"
#include "scripted_peer.hpp"

namespace ringway::test {
namespace {

class UpstreamTest : public ProxyTest {};

TEST_F(UpstreamTest, RefusedUpstreamClosesDownstreamPromptly) {
  RefusingPort refuse;
  ASSERT_NE(refuse.port(), 0);
  ASSERT_TRUE(start_proxy(make_config(
      {}, {GatewayConf{}},
      {UpstreamConf{.hosts = {{"127.0.0.1", refuse.port()}}, .connect_timeout = "5s"}})));
  Fd fd = connect_tcp(gateway(), scaled(Millis(2000)));
  ASSERT_TRUE(fd.valid());
  auto start = Clock::now();
  // "Promptly": long before the 5 s connect timeout could have played a part.
  StreamEnd end = drain_until_end(fd.get(), scaled(Millis(1000)));
  double ms = ms_since(start);
  note("downstream_closed_after_ms", ms);
  EXPECT_NE(end, StreamEnd::Timeout) << "downstream still open after " << ms << " ms";
  EXPECT_TRUE(wait_metric("ringway_upstream_connect_refused_total", kUp, 1, scaled(Millis(2000))));
  EXPECT_TRUE(wait_metric("ringway_sessions_no_upstream_total", kGw, 1, scaled(Millis(2000))));
  EXPECT_TRUE(wait_metric("ringway_upstream_connections_total", kUp, 0, scaled(Millis(2000))));
  fd.reset();
  expect_no_leaks();
}

TEST_F(UpstreamTest, BlackholedConnectClosedAtConnectTimeout) {
  ConnectBlackhole hole;
  ASSERT_TRUE(hole.ok()) << "could not fill the blackhole's accept queue";
  ASSERT_TRUE(start_proxy(
      make_config({}, {GatewayConf{}},
                  {UpstreamConf{.hosts = {{"127.0.0.1", hole.port()}}, .connect_timeout = "1s"}})));
  Fd fd = connect_tcp(gateway(), scaled(Millis(2000)));
  ASSERT_TRUE(fd.valid());
  auto start = Clock::now();
  StreamEnd end = drain_until_end(fd.get(), scaled(Millis(5000)));
  double ms = ms_since(start);
  note("downstream_closed_after_ms", ms);
  EXPECT_NE(end, StreamEnd::Timeout);
  // connectTimeout 1 s +- 10 %; a slowed-down (sanitizer) build gets 200 ms more per unit of
  // RINGWAY_TIMEOUT_SCALE above 1 on the late side only.
  EXPECT_GE(ms, 900.0);
  EXPECT_LE(ms, 1100.0 + 200.0 * (timeout_scale() - 1.0));
  EXPECT_TRUE(wait_metric("ringway_upstream_connect_timeouts_total", kUp, 1, scaled(Millis(2000))));
  EXPECT_TRUE(wait_metric("ringway_sessions_no_upstream_total", kGw, 1, scaled(Millis(2000))));
  fd.reset();
  expect_no_leaks();
}

// Two hosts, the first refusing, maxConnectAttempts 2: every session reaches the echo host,
// and at least one of them got there by retrying after a refusal (round robin starts some
// sessions on the refusing host).
TEST_F(UpstreamTest, RetriesNextHostWhenFirstRefuses) {
  RefusingPort refuse;
  PeerHost upstream, client;
  uint16_t port = upstream.listen("127.0.0.1", PeerScript::Echo());
  GatewayConf gw;
  gw.max_connect_attempts = 2;
  ASSERT_TRUE(start_proxy(make_config(
      {}, {gw}, {UpstreamConf{.hosts = {{"127.0.0.1", refuse.port()}, {"127.0.0.1", port}}}})));
  constexpr size_t kSessions = 4;
  for (size_t i = 0; i < kSessions; ++i) {
    size_t id = client.connect(gateway(), PeerScript::Source(64 * 1024, 40 + i));
    ASSERT_TRUE(client.wait([&](auto& rs) { return rs.size() > id && rs[id].closed; },
                            scaled(Millis(5000))));
    ConnRecord r = client.record(id);
    EXPECT_TRUE(r.eof && !r.reset && r.bytes_received == 64 * 1024 &&
                r.recv_digest == r.sent_digest)
        << describe(r);
  }
  auto refused = metric("ringway_upstream_connect_refused_total", kUp);
  ASSERT_TRUE(refused.has_value());
  EXPECT_GE(*refused, 1.0);
  EXPECT_TRUE(
      wait_metric("ringway_upstream_connections_total", kUp, kSessions, scaled(Millis(2000))));
  EXPECT_TRUE(wait_metric("ringway_upstream_connect_attempts_total", kUp, kSessions + *refused,
                          scaled(Millis(2000))));
  EXPECT_TRUE(wait_metric("ringway_sessions_no_upstream_total", kGw, 0, scaled(Millis(2000))));
  expect_no_leaks();
}

}  // namespace
}  // namespace ringway::test
