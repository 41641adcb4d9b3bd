// The entry points the worker will use for Gloo's weighted destinations, failover priorities,
// consistent hashing and host availability: DestinationChooser and HostPicker, plus weights
// honoured by least request and availability honoured by every policy.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "ringway/engine/balancer.hpp"
#include "ringway/engine/host_health.hpp"

namespace ringway::engine {
namespace {

using config::LoadBalancer;

TEST(DestinationChooser, WeightedSplitOfTenThousandSessionsWithinThreePercent) {
  const std::vector<uint32_t> weights = {90, 10, 0, 25};
  DestinationChooser chooser(weights, 42);
  std::vector<int> count(weights.size(), 0);
  for (int i = 0; i < 10000; ++i)
    ++count[chooser.pick()];
  EXPECT_EQ(count[2], 0) << "weight 0 is never chosen";
  const double total = 125.0;
  for (size_t d = 0; d < weights.size(); ++d) {
    const double want = weights[d] / total;
    std::printf("destination %zu: weight share %.4f, measured %.4f\n", d, want, count[d] / 1e4);
    EXPECT_NEAR(count[d] / 1e4, want, 0.03);
  }
  EXPECT_EQ(DestinationChooser({0, 0}, 1).pick(), kNoHost);
}

std::vector<HostPicker::Host> three_priorities() {
  return {
      {"p0-a:1", 1, 0}, {"p0-b:1", 1, 0},  // static.hosts
      {"p1-a:1", 1, 1},                    // failover priority 1
      {"p2-a:1", 3, 2}, {"p2-b:1", 1, 2},  // failover priority 2
  };
}

TEST(HostPicker, FailoverUsesAPriorityOnlyWhenEveryHigherHostIsUnavailable) {
  for (const auto policy :
       {LoadBalancer::RoundRobin, LoadBalancer::Random, LoadBalancer::LeastRequest,
        LoadBalancer::RingHash, LoadBalancer::Maglev}) {
    HostPicker picker(policy, {}, three_priorities(), 7);
    ASSERT_EQ(picker.priority_count(), 3u);
    const auto picks = [&](uint32_t n) {
      std::vector<int> count(5, 0);
      for (uint32_t i = 0; i < n; ++i)
        ++count[picker.pick(0x9e3779b97f4a7c15ULL * (i + 1))];
      return count;
    };
    auto c = picks(1000);
    EXPECT_EQ(c[2] + c[3] + c[4], 0) << "priority 0 is healthy";
    EXPECT_GT(c[0], 0);
    EXPECT_GT(c[1], 0);
    picker.set_available(0, false);
    c = picks(1000);
    EXPECT_EQ(c[1], 1000) << "one host of priority 0 left: it takes everything";
    picker.set_available(1, false);
    c = picks(1000);
    EXPECT_EQ(c[2], 1000) << "priority 0 gone: priority 1";
    picker.set_available(2, false);
    c = picks(4000);
    EXPECT_EQ(c[3] + c[4], 4000);
    std::printf("policy %d, priority 2 weights 3:1 -> %d / %d of 4000\n", static_cast<int>(policy),
                c[3], c[4]);
    if (policy != LoadBalancer::LeastRequest) {
      EXPECT_NEAR(c[3] / 4000.0, 0.75, 0.05);
    }
    picker.set_available(3, false);
    picker.set_available(4, false);
    EXPECT_EQ(picker.pick(1), kNoHost);
    picker.set_available(1, true);  // back: priority 0 again at once
    EXPECT_EQ(picker.pick(1), 1u);
  }
}

TEST(HostPicker, RingHashSticksPerSourceAndMovesOnlyTheUnavailableHostsSources) {
  std::vector<HostPicker::Host> hosts;
  for (int i = 0; i < 8; ++i)
    hosts.push_back({"10.1.0." + std::to_string(i) + ":80", 1, 0});
  HostPicker picker(LoadBalancer::RingHash, {}, hosts, 3);
  std::vector<uint32_t> before;
  for (uint64_t s = 0; s < 10000; ++s)
    before.push_back(picker.pick(s * 0x2545F4914F6CDD1DULL + 17));
  for (uint64_t s = 0; s < 50; ++s)
    for (int i = 0; i < 1000; ++i)
      ASSERT_EQ(picker.pick(s * 0x2545F4914F6CDD1DULL + 17), before[s]);
  picker.set_available(5, false);
  int moved = 0;
  for (uint64_t s = 0; s < 10000; ++s) {
    const uint32_t now = picker.pick(s * 0x2545F4914F6CDD1DULL + 17);
    if (now != before[s]) {
      ++moved;
      EXPECT_EQ(before[s], 5u) << "only sources of the unavailable host move";
    }
  }
  std::printf("ring hash via HostPicker: 1 of 8 hosts unavailable moved %.4f of sources\n",
              moved / 1e4);
  EXPECT_LE(moved / 1e4, 1.0 / 8 + 0.03);
}

TEST(HostPicker, EveryPolicyHonoursLoadBalancingWeight) {
  for (const auto policy : {LoadBalancer::RoundRobin, LoadBalancer::Random, LoadBalancer::RingHash,
                            LoadBalancer::Maglev}) {
    HostPicker picker(policy, {}, {{"a:1", 1, 0}, {"b:1", 4, 0}}, 11);
    int to_b = 0;
    for (uint64_t i = 0; i < 10000; ++i)
      to_b += picker.pick(i * 0x9E3779B97F4A7C15ULL) == 1 ? 1 : 0;
    std::printf("policy %d, weights 1:4: %.4f to the heavier host\n", static_cast<int>(policy),
                to_b / 1e4);
    EXPECT_NEAR(to_b / 1e4, 0.8, 0.03);
  }
}

TEST(Balancer, LeastRequestWeighsActiveByWeight) {
  Balancer b(LoadBalancer::LeastRequest, {1, 3}, 5);
  // Open sessions as the balancer chooses and never close them: at the end each host carries
  // sessions in proportion to its weight (within one pick's rounding).
  std::vector<int> open(2, 0);
  for (int i = 0; i < 4000; ++i) {
    const uint32_t h = b.pick();
    b.on_start(h);
    ++open[h];
  }
  std::printf("least request 1:3 weights: %d / %d active\n", open[0], open[1]);
  EXPECT_NEAR(open[1] / 4000.0, 0.75, 0.03);
}

TEST(Balancer, AvailabilityMaskForEveryPolicy) {
  for (const auto policy :
       {LoadBalancer::RoundRobin, LoadBalancer::Random, LoadBalancer::LeastRequest}) {
    Balancer b(policy, {1, 2, 1}, 9);
    const std::vector<uint8_t> mask = {1, 0, 1};
    std::vector<int> count(3, 0);
    for (int i = 0; i < 1000; ++i)
      ++count[b.pick(mask)];
    EXPECT_EQ(count[1], 0);
    EXPECT_GT(count[0], 300);
    EXPECT_GT(count[2], 300);
    EXPECT_EQ(b.pick(std::vector<uint8_t>{0, 0, 0}), kNoHost);
  }
}

TEST(HostPicker, HealthAndOutlierStateDriveAvailability) {
  // How the worker is meant to combine them: available = healthy && !ejected.
  HostPicker picker(LoadBalancer::RoundRobin, {}, {{"a:1", 1, 0}, {"b:1", 1, 0}}, 1);
  std::vector<HealthState> health(2, HealthState(1, 2));
  config::OutlierDetection od_config;
  od_config.split_external_local_origin_errors = true;
  od_config.consecutive_local_origin_failure = 2;
  od_config.max_ejection_percent = 50;
  OutlierDetector outliers(od_config, 2, 1);
  const auto refresh = [&] {
    for (uint32_t h = 0; h < 2; ++h)
      picker.set_available(h, health[h].healthy() && !outliers.ejected(h));
  };
  health[0].on_success();
  health[1].on_success();
  refresh();
  health[0].on_failure();
  health[0].on_failure();
  refresh();
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(picker.pick(0), 1u);
  health[0].on_success();
  outliers.on_local_origin_failure(1, std::chrono::seconds(0));
  outliers.on_local_origin_failure(1, std::chrono::seconds(0));
  refresh();
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(picker.pick(0), 0u);
  outliers.on_interval(std::chrono::seconds(30));
  refresh();
  std::vector<int> count(2, 0);
  for (int i = 0; i < 10; ++i)
    ++count[picker.pick(0)];
  EXPECT_EQ(count, (std::vector<int>{5, 5}));
}

}  // namespace
}  // namespace ringway::engine
