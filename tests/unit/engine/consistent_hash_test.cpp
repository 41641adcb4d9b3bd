// Ring hash and Maglev keyed on the downstream source address: one source sticks to one
// host, removing one host of N moves about 1/N of the sources (measured and printed), and
// weights give proportionally more of the key space.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ringway/engine/consistent_hash.hpp"

namespace ringway::engine {
namespace {

std::vector<HashHost> hosts_of(int n, uint32_t weight = 1) {
  std::vector<HashHost> out;
  for (int i = 0; i < n; ++i)
    out.push_back({"10.0.0." + std::to_string(i + 1) + ":8080", weight});
  return out;
}

// The hash of 10.x.y.z (the i-th client), as a worker would compute it from accept().
uint64_t client(uint32_t i) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x0a000000u + 0x10000u + i);
  a.sin_port = htons(static_cast<uint16_t>(1024 + i % 50000));
  return hash_source_address(reinterpret_cast<const sockaddr*>(&a));
}

TEST(SourceHash, PortIsIgnoredAndMappedIpv4MatchesIpv4) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "192.0.2.7", &a.sin_addr);
  a.sin_port = htons(1000);
  sockaddr_in b = a;
  b.sin_port = htons(2000);
  sockaddr_in6 m{};
  m.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:192.0.2.7", &m.sin6_addr);
  const uint64_t ha = hash_source_address(reinterpret_cast<const sockaddr*>(&a));
  EXPECT_EQ(ha, hash_source_address(reinterpret_cast<const sockaddr*>(&b)));
  EXPECT_EQ(ha, hash_source_address(reinterpret_cast<const sockaddr*>(&m)));
  sockaddr_in c = a;
  inet_pton(AF_INET, "192.0.2.8", &c.sin_addr);
  EXPECT_NE(ha, hash_source_address(reinterpret_cast<const sockaddr*>(&c)));
}

// Fraction of 10,000 clients whose host (by key) changes when host `removed` of `n` goes.
template <typename Table, typename Build>
double moved_fraction(int n, int removed, Build build) {
  auto all = hosts_of(n);
  auto fewer = all;
  fewer.erase(fewer.begin() + removed);
  const Table before = build(all);
  const Table after = build(fewer);
  int moved = 0, on_removed = 0;
  for (uint32_t i = 0; i < 10000; ++i) {
    const std::string& a = all[before.pick(client(i))].key;
    const std::string& b = fewer[after.pick(client(i))].key;
    if (a == all[removed].key) ++on_removed;
    if (a != b) ++moved;
  }
  // Whoever was on the removed host must move; a consistent hash moves (almost) nobody else.
  EXPECT_GE(moved, on_removed);
  return moved / 10000.0;
}

TEST(RingHash, OneSourceSticksToOneHost) {
  const RingHash ring(hosts_of(5), 1024, 8 * 1024 * 1024);
  for (uint32_t c = 0; c < 20; ++c) {
    const uint32_t first = ring.pick(client(c));
    for (int i = 0; i < 1000; ++i)
      ASSERT_EQ(ring.pick(client(c)), first);
  }
}

TEST(RingHash, RemovingOneHostOfNMovesAboutOneNth) {
  for (const int n : {4, 10}) {
    const double moved = moved_fraction<RingHash>(
        n, 1, [](const std::vector<HashHost>& h) { return RingHash(h, 1024, 8 * 1024 * 1024); });
    std::printf("ring hash: removing 1 of %d hosts moved %.4f of 10000 sources (1/N = %.4f)\n", n,
                moved, 1.0 / n);
    EXPECT_LE(moved, 1.0 / n + 0.01);
  }
}

TEST(RingHash, SizeAndWeights) {
  const RingHash ring({{"a:1", 1}, {"b:1", 3}}, 1024, 8 * 1024 * 1024);
  // The lightest host gets minimumRingSize points, the other three times as many.
  EXPECT_EQ(ring.size(), 4096u);
  EXPECT_EQ(ring.points(0), 1024u);
  EXPECT_EQ(ring.points(1), 3072u);
  int to_b = 0;
  for (uint32_t i = 0; i < 10000; ++i)
    to_b += ring.pick(client(i)) == 1 ? 1 : 0;
  std::printf("ring hash 1:3 weights: %.4f of 10000 sources on the heavier host\n", to_b / 1e4);
  EXPECT_NEAR(to_b / 1e4, 0.75, 0.03);
  // The maximum bounds the ring even when the minimum asks for more.
  EXPECT_EQ(RingHash(hosts_of(3), 4096, 100).size(), 99u);  // 33 points each
  EXPECT_EQ(RingHash(hosts_of(3), 4096, 100).points(2), 33u);
}

TEST(RingHash, UnavailableHostIsSkippedClockwiseAndOnlyItsSourcesMove) {
  const RingHash ring(hosts_of(4), 1024, 8 * 1024 * 1024);
  std::vector<uint8_t> available(4, 1);
  available[2] = 0;
  for (uint32_t i = 0; i < 2000; ++i) {
    const uint32_t normal = ring.pick(client(i));
    const uint32_t now = ring.pick(client(i), available);
    EXPECT_NE(now, 2u);
    if (normal != 2) {
      EXPECT_EQ(now, normal);
    }
  }
  EXPECT_EQ(ring.pick(client(1), std::vector<uint8_t>(4, 0)), kNoHost);
}

TEST(Maglev, OneSourceSticksToOneHost) {
  const Maglev maglev(hosts_of(5));
  EXPECT_EQ(maglev.size(), config::kMaglevTableSize);
  for (uint32_t c = 0; c < 20; ++c) {
    const uint32_t first = maglev.pick(client(c));
    for (int i = 0; i < 1000; ++i)
      ASSERT_EQ(maglev.pick(client(c)), first);
  }
}

TEST(Maglev, RemovingOneHostOfNMovesAboutOneNth) {
  for (const int n : {4, 10}) {
    const double moved =
        moved_fraction<Maglev>(n, 1, [](const std::vector<HashHost>& h) { return Maglev(h); });
    std::printf("maglev: removing 1 of %d hosts moved %.4f of 10000 sources (1/N = %.4f)\n", n,
                moved, 1.0 / n);
    // Maglev trades a little disruption for even spread (the paper measures a few percent).
    EXPECT_LE(moved, 1.0 / n + 0.05);
  }
}

TEST(Maglev, SlotsFollowWeightsAndEverySlotIsFilled) {
  const Maglev maglev({{"a:1", 1}, {"b:1", 2}, {"c:1", 1}});
  const size_t a = maglev.slots(0), b = maglev.slots(1), c = maglev.slots(2);
  EXPECT_EQ(a + b + c, config::kMaglevTableSize);
  std::printf("maglev 1:2:1 weights: slots %zu / %zu / %zu\n", a, b, c);
  EXPECT_NEAR(static_cast<double>(b) / config::kMaglevTableSize, 0.5, 0.01);
  EXPECT_NEAR(static_cast<double>(a) / config::kMaglevTableSize, 0.25, 0.01);
  // Equal weights spread evenly (within 1 % of the table).
  const Maglev even(hosts_of(7));
  for (uint32_t h = 0; h < 7; ++h)
    EXPECT_NEAR(static_cast<double>(even.slots(h)) / config::kMaglevTableSize, 1.0 / 7, 0.01);
}

TEST(Maglev, UnavailableHostIsSkipped) {
  const Maglev maglev(hosts_of(3), 251);
  std::vector<uint8_t> available = {1, 0, 1};
  for (uint32_t i = 0; i < 1000; ++i) {
    const uint32_t normal = maglev.pick(client(i));
    const uint32_t now = maglev.pick(client(i), available);
    EXPECT_NE(now, 1u);
    if (normal != 1) {
      EXPECT_EQ(now, normal);
    }
  }
  EXPECT_EQ(maglev.pick(client(0), std::vector<uint8_t>(3, 0)), kNoHost);
}

}  // namespace
}  // namespace ringway::engine
