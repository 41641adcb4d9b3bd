// Self-test of the test support, without the daemon: scripted peers talking to each other
// directly, byte-exact hashing, EOF versus RST, the refusing port and the connect blackhole.
// If these fail, the integration tests' verdicts mean nothing.
#include <gtest/gtest.h>

#include "scripted_peer.hpp"
#include "sockets.hpp"
#include "stream_hash.hpp"

namespace ringway::test {
namespace {

bool all_closed(const std::vector<ConnRecord>& rs, size_t n) {
  if (rs.size() < n) return false;
  for (const auto& r : rs) {
    if (!r.closed) return false;
  }
  return true;
}

TEST(Harness, PatternAndHashAreDeterministicAcrossChunking) {
  std::vector<uint8_t> a(100000), b(100000);
  PatternStream(7).fill(a);
  PatternStream p(7);
  p.fill(std::span<uint8_t>(b.data(), 33));
  p.fill(std::span<uint8_t>(b.data() + 33, b.size() - 33));
  EXPECT_EQ(a, b);
  StreamHash h1, h2;
  h1.update(a);
  h2.update(std::span<const uint8_t>(a.data(), 5));
  h2.update(std::span<const uint8_t>(a.data() + 5, a.size() - 5));
  EXPECT_EQ(h1.digest(), h2.digest());
  std::vector<uint8_t> c(100000);
  PatternStream(8).fill(c);
  StreamHash h3;
  h3.update(c);
  EXPECT_NE(h1.digest(), h3.digest());
}

TEST(Harness, SourcesBothWaysAreByteExact) {
  PeerHost server, client;
  uint16_t port = server.listen("127.0.0.1", PeerScript::Source(3 << 20, 11));
  ASSERT_NE(port, 0);
  size_t id = client.connect(Endpoint{"127.0.0.1", port}, PeerScript::Source(5 << 20, 12));
  bool cdone = client.wait([&](auto& rs) { return all_closed(rs, id + 1); }, scaled(Millis(10000)));
  bool sdone = server.wait([](auto& rs) { return all_closed(rs, 1); }, scaled(Millis(10000)));
  ConnRecord c = client.record(id);
  ASSERT_TRUE(cdone && sdone) << describe(c) << " / " << describe(server.record(0));
  ConnRecord s = server.record(0);
  EXPECT_EQ(c.bytes_sent, 5u << 20);
  EXPECT_EQ(s.bytes_received, 5u << 20);
  EXPECT_EQ(c.sent_digest, s.recv_digest);
  EXPECT_EQ(s.bytes_sent, 3u << 20);
  EXPECT_EQ(c.bytes_received, 3u << 20);
  EXPECT_EQ(s.sent_digest, c.recv_digest);
  EXPECT_TRUE(c.eof && s.eof);
  EXPECT_FALSE(c.reset || s.reset);
}

TEST(Harness, EchoReturnsTheStream) {
  PeerHost server, client;
  uint16_t port = server.listen("127.0.0.1", PeerScript::Echo());
  size_t id = client.connect(Endpoint{"127.0.0.1", port}, PeerScript::Source(4 << 20, 3));
  ASSERT_TRUE(client.wait([&](auto& rs) { return all_closed(rs, id + 1); }, scaled(Millis(10000))));
  ConnRecord c = client.record(id);
  EXPECT_EQ(c.bytes_received, 4u << 20);
  EXPECT_EQ(c.recv_digest, c.sent_digest);
  EXPECT_TRUE(c.eof);
}

TEST(Harness, RstAfterIsSeenAsResetNotEof) {
  PeerHost server, client;
  uint16_t port = server.listen("127.0.0.1", PeerScript::RstAfter(100000));
  size_t id = client.connect(Endpoint{"127.0.0.1", port}, PeerScript::Source(64 << 20, 3));
  ASSERT_TRUE(client.wait([&](auto& rs) { return all_closed(rs, id + 1); }, scaled(Millis(10000))));
  ConnRecord c = client.record(id);
  EXPECT_TRUE(c.reset);
  EXPECT_FALSE(c.eof);
  EXPECT_LT(c.bytes_sent, 64u << 20);
}

TEST(Harness, SlowReaderIsSlowThenFast) {
  PeerHost server, client;
  // 256 KiB at 1 MiB/s takes ~250 ms, then 1 MiB more at full speed.
  uint16_t port = server.listen("127.0.0.1", PeerScript::SlowReader(1 << 20, 256 << 10));
  auto start = Clock::now();
  size_t id = client.connect(Endpoint{"127.0.0.1", port}, PeerScript::Source(5 << 18, 3));
  ASSERT_TRUE(server.wait([](auto& rs) { return all_closed(rs, 1); }, scaled(Millis(10000))));
  EXPECT_GE(ms_since(start), 200.0);
  EXPECT_EQ(server.record(0).recv_digest, client.record(id).sent_digest);
}

TEST(Harness, NeverReadBlocksTheWriter) {
  PeerHost server, client;
  uint16_t port = server.listen("127.0.0.1", PeerScript::NeverRead(64 << 10));
  size_t id = client.connect(Endpoint{"127.0.0.1", port}, PeerScript::Source(256 << 20, 3));
  // The writer's count stops growing once both socket buffers are full.
  uint64_t last = 0;
  bool plateau = poll_until(
      [&] {
        uint64_t now = client.record(id).bytes_sent;
        bool same = now == last && now > 0;
        last = now;
        return same;
      },
      scaled(Millis(5000)), Millis(200));
  EXPECT_TRUE(plateau);
  EXPECT_LT(last, 64u << 20);
}

TEST(Harness, RefusingPortRefuses) {
  RefusingPort refuse;
  ASSERT_NE(refuse.port(), 0);
  int err = 0;
  Fd fd = connect_tcp(Endpoint{"127.0.0.1", refuse.port()}, scaled(Millis(2000)), &err);
  EXPECT_FALSE(fd.valid());
  EXPECT_EQ(err, ECONNREFUSED);
}

TEST(Harness, BlackholeNeitherAcceptsNorRefuses) {
  ConnectBlackhole hole;
  ASSERT_TRUE(hole.ok()) << "could not fill the accept queue";
  int err = 0;
  Fd fd = connect_tcp(Endpoint{"127.0.0.1", hole.port()}, Millis(500), &err);
  EXPECT_FALSE(fd.valid());
  EXPECT_EQ(err, ETIMEDOUT);
}

}  // namespace
}  // namespace ringway::test
