// Byte-exact forwarding through the real daemon: 64 MiB each way over IPv4 and IPv6, the
// half-close matrix, RST propagation in both directions, and a thousand concurrent sessions.
// Every stream is hashed at both ends; every test ends with the leak audit.
#include <gtest/gtest.h>

#include "fixture.hpp"
#include "scripted_peer.hpp"

namespace ringway::test {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

bool closed(const std::vector<ConnRecord>& rs, size_t n) {
  if (rs.size() < n) return false;
  for (size_t i = 0; i < n; ++i) {
    if (!rs[i].closed) return false;
  }
  return true;
}

// "N connected, N closed, N refused/failed, N reset" for failure messages.
std::string summarize(const std::vector<ConnRecord>& rs) {
  size_t connected = 0, closed_n = 0, failed = 0, reset = 0, eof = 0;
  for (const auto& r : rs) {
    connected += r.connected;
    closed_n += r.closed;
    failed += r.connect_errno != 0;
    reset += r.reset;
    eof += r.eof;
  }
  return std::to_string(connected) + " connected, " + std::to_string(closed_n) + " closed, " +
         std::to_string(failed) + " connect errors, " + std::to_string(reset) + " reset, " +
         std::to_string(eof) + " EOF";
}

class ForwardingTest : public ProxyTest {
 protected:
  // Starts an upstream running `upstream_script` on `host`, the daemon in front of it, then
  // one downstream session running `client_script`; waits until both ends closed.
  void exchange(const std::string& host, const PeerScript& client_script,
                const PeerScript& upstream_script, Millis timeout,
                const SettingsConf& settings = {}) {
    uint16_t port = upstream_.listen(host, upstream_script);
    ASSERT_NE(port, 0);
    GatewayConf gw;
    gw.bind_address = host;
    ASSERT_TRUE(start_proxy(make_config(settings, {gw}, {UpstreamConf{.hosts = {{host, port}}}})));
    size_t id = client_.connect(gateway(), client_script);
    bool done = client_.wait([](auto& rs) { return closed(rs, 1); }, timeout) &&
                upstream_.wait([](auto& rs) { return closed(rs, 1); }, timeout);
    down_ = client_.record(id);
    up_ = upstream_.record(0);
    ASSERT_TRUE(done) << "downstream: " << describe(down_) << "\nupstream: " << describe(up_);
  }

  // Both directions arrived whole and in order, and both ends saw a FIN, not a RST.
  void expect_byte_exact(uint64_t down_bytes, uint64_t up_bytes) {
    EXPECT_EQ(down_.bytes_sent, down_bytes);
    EXPECT_EQ(up_.bytes_received, down_bytes);
    EXPECT_EQ(up_.recv_digest, down_.sent_digest) << "downstream -> upstream stream differs";
    EXPECT_EQ(up_.bytes_sent, up_bytes);
    EXPECT_EQ(down_.bytes_received, up_bytes);
    EXPECT_EQ(down_.recv_digest, up_.sent_digest) << "upstream -> downstream stream differs";
    EXPECT_TRUE(down_.eof && up_.eof) << describe(down_) << " / " << describe(up_);
    EXPECT_FALSE(down_.reset || up_.reset) << describe(down_) << " / " << describe(up_);
  }

  PeerHost upstream_;
  PeerHost client_;
  ConnRecord down_;
  ConnRecord up_;
};

TEST_F(ForwardingTest, SixtyFourMiBEachWayIpv4) {
  exchange("127.0.0.1", PeerScript::Source(64 * kMiB, 1), PeerScript::Source(64 * kMiB, 2),
           scaled(Millis(60000)));
  if (HasFatalFailure()) return;
  expect_byte_exact(64 * kMiB, 64 * kMiB);
  EXPECT_TRUE(wait_metric("ringway_downstream_bytes_received_total", kGw, 64.0 * kMiB,
                          scaled(Millis(2000))));
  EXPECT_TRUE(
      wait_metric("ringway_downstream_bytes_sent_total", kGw, 64.0 * kMiB, scaled(Millis(2000))));
  EXPECT_TRUE(wait_metric("ringway_upstream_connections_total", kUp, 1, scaled(Millis(2000))));
  expect_no_leaks();
}

TEST_F(ForwardingTest, SixtyFourMiBEachWayIpv6) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "::1 cannot be bound on this machine";
  exchange("::1", PeerScript::Source(64 * kMiB, 3), PeerScript::Source(64 * kMiB, 4),
           scaled(Millis(60000)));
  if (HasFatalFailure()) return;
  expect_byte_exact(64 * kMiB, 64 * kMiB);
  expect_no_leaks();
}

// settings.busyPoll: a worker that spins on the ring before sleeping must lose no completion,
// neither while data flows (the spin finds completions) nor across the quiet moments between
// (it gives up and sleeps): 16 MiB each way, then both half-closes, byte-exact.
TEST_F(ForwardingTest, BusyPollingWorkerForwardsByteExact) {
  SettingsConf settings;
  settings.extra = "busyPoll = \"1ms\"\n";
  exchange("127.0.0.1", PeerScript::Source(16 * kMiB, 11), PeerScript::Source(16 * kMiB, 12),
           scaled(Millis(30000)), settings);
  if (HasFatalFailure()) return;
  expect_byte_exact(16 * kMiB, 16 * kMiB);
  expect_no_leaks();
}

// The downstream sends 1 MiB and FIN; the upstream sees EOF only after every byte, then
// answers 4 MiB through the half-closed session and closes.
TEST_F(ForwardingTest, DownstreamHalfClosesFirst) {
  exchange("127.0.0.1", PeerScript::Source(1 * kMiB, 5), PeerScript::SinkThenSource(4 * kMiB, 6),
           scaled(Millis(20000)));
  if (HasFatalFailure()) return;
  expect_byte_exact(1 * kMiB, 4 * kMiB);
  expect_no_leaks();
}

TEST_F(ForwardingTest, UpstreamHalfClosesFirst) {
  exchange("127.0.0.1", PeerScript::SinkThenSource(4 * kMiB, 7), PeerScript::Source(1 * kMiB, 8),
           scaled(Millis(20000)));
  if (HasFatalFailure()) return;
  expect_byte_exact(4 * kMiB, 1 * kMiB);
  expect_no_leaks();
}

TEST_F(ForwardingTest, BothHalfCloseAtOnce) {
  exchange("127.0.0.1", PeerScript::Source(2 * kMiB, 9), PeerScript::Source(3 * kMiB, 10),
           scaled(Millis(20000)));
  if (HasFatalFailure()) return;
  expect_byte_exact(2 * kMiB, 3 * kMiB);
  expect_no_leaks();
}

// The upstream resets after 256 KiB while the downstream is still streaming: the downstream
// must see ECONNRESET (RST propagated), not an orderly EOF.
TEST_F(ForwardingTest, UpstreamResetMidStreamReachesDownstreamAsReset) {
  exchange("127.0.0.1", PeerScript::Source(256 * kMiB, 11), PeerScript::RstAfter(256 * 1024),
           scaled(Millis(20000)));
  if (HasFatalFailure()) return;
  EXPECT_TRUE(down_.reset) << describe(down_);
  EXPECT_FALSE(down_.eof) << "the downstream saw a FIN before the RST: " << describe(down_);
  EXPECT_LT(down_.bytes_sent, 256 * kMiB);
  EXPECT_TRUE(wait_metric("ringway_upstream_resets_total", kUp, 1, scaled(Millis(2000))));
  expect_no_leaks();
}

TEST_F(ForwardingTest, DownstreamResetMidStreamReachesUpstreamAsReset) {
  uint16_t port = upstream_.listen("127.0.0.1", PeerScript::Sink());
  ASSERT_TRUE(start_proxy(
      make_config({}, {GatewayConf{}}, {UpstreamConf{.hosts = {{"127.0.0.1", port}}}})));
  size_t id = client_.connect(gateway(), PeerScript::Source(256 * kMiB, 12));
  ASSERT_TRUE(
      upstream_.wait([](auto& rs) { return !rs.empty() && rs[0].bytes_received >= 256 * 1024; },
                     scaled(Millis(10000))))
      << describe(upstream_.record(0));
  client_.abort(id);
  ASSERT_TRUE(upstream_.wait([](auto& rs) { return closed(rs, 1); }, scaled(Millis(5000))))
      << describe(upstream_.record(0));
  up_ = upstream_.record(0);
  EXPECT_TRUE(up_.reset) << describe(up_);
  EXPECT_FALSE(up_.eof) << "the upstream saw a FIN instead of a RST: " << describe(up_);
  EXPECT_TRUE(wait_metric("ringway_downstream_resets_total", kGw, 1, scaled(Millis(2000))));
  expect_no_leaks();
}

// A thousand sessions open at the same time (the gauge shows them all), then each streams
// 32 KiB through an echo upstream; every session comes back byte-exact.
TEST_F(ForwardingTest, ThousandConcurrentSessionsByteExact) {
  constexpr size_t kSessions = 1000;
  constexpr uint64_t kBytes = 32 * 1024;
  uint16_t port = upstream_.listen("127.0.0.1", PeerScript::Echo());
  ASSERT_TRUE(start_proxy(make_config({.workers = 2}, {GatewayConf{}},
                                      {UpstreamConf{.hosts = {{"127.0.0.1", port}}}})));
  // Connect in batches of 100, each accepted upstream before the next, so a burst of SYNs
  // beyond the listen backlog does not turn into one-second SYN retries. Every session stays
  // open (waiting for go), so all 1,000 are concurrent when the data starts.
  constexpr size_t kBatch = 100;
  for (size_t i = 0; i < kSessions; ++i) {
    PeerScript s = PeerScript::Source(kBytes, 100 + i);
    s.wait_for_go = true;
    client_.connect(gateway(), s);
    if ((i + 1) % kBatch != 0) continue;
    ASSERT_TRUE(upstream_.wait([&](auto& rs) { return rs.size() == i + 1; }, scaled(Millis(10000))))
        << "upstream accepted " << upstream_.count() << " of " << i + 1 << "; downstream "
        << summarize(client_.records());
  }
  EXPECT_TRUE(
      wait_metric("ringway_downstream_connections_active", kGw, kSessions, scaled(Millis(5000))));
  client_.go();
  ASSERT_TRUE(client_.wait([&](auto& rs) { return closed(rs, kSessions); }, scaled(Millis(60000))));
  auto rs = client_.records();
  size_t bad = 0;
  for (const auto& r : rs) {
    bool ok = r.bytes_sent == kBytes && r.bytes_received == kBytes &&
              r.recv_digest == r.sent_digest && r.eof && !r.reset;
    if (!ok && bad++ < 5) ADD_FAILURE() << describe(r);
  }
  EXPECT_EQ(bad, 0u) << "sessions not byte-exact";
  EXPECT_TRUE(
      wait_metric("ringway_downstream_connections_total", kGw, kSessions, scaled(Millis(2000))));
  expect_no_leaks();
}

}  // namespace
}  // namespace ringway::test
