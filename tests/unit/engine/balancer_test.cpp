// Host choice: smooth weighted round robin order, weighted random shares, least request with
// two choices.
#include <gtest/gtest.h>

#include <vector>

#include "ringway/engine/balancer.hpp"

namespace ringway::engine {
namespace {

using config::LoadBalancer;

TEST(Balancer, RoundRobinEqualWeightsCycles) {
  Balancer b(LoadBalancer::RoundRobin, {1, 1, 1}, 1);
  std::vector<uint32_t> got;
  for (int i = 0; i < 6; ++i)
    got.push_back(b.pick());
  EXPECT_EQ(got, (std::vector<uint32_t>{0, 1, 2, 0, 1, 2}));
}

TEST(Balancer, RoundRobinWeightsAreInterleaved) {
  Balancer b(LoadBalancer::RoundRobin, {3, 1}, 1);
  std::vector<uint32_t> got;
  for (int i = 0; i < 8; ++i)
    got.push_back(b.pick());
  // Smooth weighted round robin spreads host 1 between host 0's picks.
  EXPECT_EQ(got, (std::vector<uint32_t>{0, 0, 1, 0, 0, 0, 1, 0}));
}

TEST(Balancer, RoundRobinExactSharesOverOneCycle) {
  Balancer b(LoadBalancer::RoundRobin, {5, 2, 3}, 1);
  std::vector<int> count(3, 0);
  for (int i = 0; i < 10 * 7; ++i)
    ++count[b.pick()];
  EXPECT_EQ(count, (std::vector<int>{35, 14, 21}));
}

TEST(Balancer, ZeroWeightCountsAsOne) {
  Balancer b(LoadBalancer::RoundRobin, {0, 1}, 1);
  std::vector<int> count(2, 0);
  for (int i = 0; i < 10; ++i)
    ++count[b.pick()];
  EXPECT_EQ(count, (std::vector<int>{5, 5}));
}

TEST(Balancer, WeightedRandomFollowsWeights) {
  Balancer b(LoadBalancer::Random, {1, 3}, 12345);
  std::vector<int> count(2, 0);
  for (int i = 0; i < 40000; ++i)
    ++count[b.pick()];
  // Expected 10000 / 30000; a fair generator stays well within 5 %.
  EXPECT_NEAR(count[0], 10000, 500);
  EXPECT_NEAR(count[1], 30000, 500);
}

TEST(Balancer, LeastRequestAvoidsTheBusyHost) {
  Balancer b(LoadBalancer::LeastRequest, {1, 1}, 7);
  for (int i = 0; i < 10; ++i)
    b.on_start(0);
  // With two hosts both choices are always made, so the idle host must always win.
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(b.pick(), 1u);
  for (int i = 0; i < 10; ++i)
    b.on_end(0);
  b.on_start(1);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(b.pick(), 0u);
}

TEST(Balancer, LeastRequestNeverPicksTheBusiestOfThree) {
  Balancer b(LoadBalancer::LeastRequest, {1, 1, 1}, 99);
  for (int i = 0; i < 5; ++i)
    b.on_start(2);
  b.on_start(1);
  std::vector<int> count(3, 0);
  for (int i = 0; i < 3000; ++i)
    ++count[b.pick()];
  EXPECT_EQ(count[2], 0) << "two distinct choices always include a less busy host than 2";
  EXPECT_GT(count[0], count[1]);
}

TEST(Balancer, SingleHost) {
  Balancer b(LoadBalancer::LeastRequest, {4}, 1);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(b.pick(), 0u);
}

}  // namespace
}  // namespace ringway::engine
