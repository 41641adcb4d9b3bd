// Health-state thresholds and outlier ejection as state machines driven by explicit time.
#include <gtest/gtest.h>

#include "ringway/engine/host_health.hpp"

namespace ringway::engine {
namespace {

using std::chrono::seconds;

TEST(HealthState, FirstSuccessMakesHealthyThenThresholdsApply) {
  HealthState h(/*healthy_threshold=*/2, /*unhealthy_threshold=*/3);
  EXPECT_FALSE(h.healthy());  // unknown until checked, as Envoy starts hosts
  EXPECT_TRUE(h.on_success());
  EXPECT_TRUE(h.healthy());
  EXPECT_FALSE(h.on_failure());
  EXPECT_FALSE(h.on_failure());
  EXPECT_TRUE(h.healthy());
  EXPECT_FALSE(h.on_success());  // resets the failure run
  EXPECT_FALSE(h.on_failure());
  EXPECT_FALSE(h.on_failure());
  EXPECT_TRUE(h.on_failure());  // third in a row
  EXPECT_FALSE(h.healthy());
  EXPECT_FALSE(h.on_success());  // one is not enough any more
  EXPECT_FALSE(h.healthy());
  EXPECT_FALSE(h.on_failure());
  EXPECT_FALSE(h.on_success());
  EXPECT_TRUE(h.on_success());  // two in a row
  EXPECT_TRUE(h.healthy());
}

TEST(HealthState, FailuresBeforeTheFirstSuccessKeepItUnhealthy) {
  HealthState h(3, 1);
  EXPECT_FALSE(h.on_failure());
  EXPECT_FALSE(h.healthy());
  EXPECT_FALSE(h.on_success());  // checked already: needs 3
  EXPECT_FALSE(h.on_success());
  EXPECT_TRUE(h.on_success());
  EXPECT_TRUE(h.on_failure());  // threshold 1
}

config::OutlierDetection split(uint32_t consecutive, uint32_t max_percent) {
  config::OutlierDetection c;
  c.split_external_local_origin_errors = true;
  c.consecutive_local_origin_failure = consecutive;
  c.max_ejection_percent = max_percent;
  c.base_ejection_time = seconds(30);
  c.interval = seconds(10);
  return c;
}

TEST(OutlierDetector, ConsecutiveFailuresEjectForBaseTimesEjections) {
  OutlierDetector od(split(3, 100), 4, 1);
  EXPECT_FALSE(od.on_local_origin_failure(0, seconds(0)));
  EXPECT_FALSE(od.on_local_origin_failure(0, seconds(1)));
  od.on_success(0);  // breaks the run
  EXPECT_FALSE(od.on_local_origin_failure(0, seconds(2)));
  EXPECT_FALSE(od.on_local_origin_failure(0, seconds(3)));
  EXPECT_TRUE(od.on_local_origin_failure(0, seconds(4)));
  EXPECT_TRUE(od.ejected(0));
  EXPECT_EQ(od.ejected_until(0), seconds(34));  // 30 s x 1
  EXPECT_TRUE(od.on_interval(seconds(30)).empty());
  EXPECT_EQ(od.on_interval(seconds(40)), std::vector<uint32_t>{0});
  EXPECT_FALSE(od.ejected(0));
  // Ejected again at once: the time doubles.
  for (int i = 0; i < 3; ++i)
    od.on_local_origin_failure(0, seconds(41));
  EXPECT_TRUE(od.ejected(0));
  EXPECT_EQ(od.times_ejected(0), 2u);
  EXPECT_EQ(od.ejected_until(0), seconds(101));  // 30 s x 2
}

TEST(OutlierDetector, MultiplierDecaysWhileTheHostServesAndTimeIsCapped) {
  auto c = split(1, 100);
  c.base_ejection_time = seconds(200);
  OutlierDetector od(c, 1, 1);
  EXPECT_TRUE(od.on_local_origin_failure(0, seconds(0)));
  EXPECT_EQ(od.on_interval(seconds(200)), std::vector<uint32_t>{0});
  EXPECT_TRUE(od.on_local_origin_failure(0, seconds(201)));
  // 200 s x 2 = 400 s, capped at max(300 s, base 200 s) = 300 s (Envoy's max_ejection_time).
  EXPECT_EQ(od.ejected_until(0), seconds(501));
  EXPECT_EQ(od.on_interval(seconds(501)), std::vector<uint32_t>{0});
  od.on_interval(seconds(511));  // a clean interval in service: multiplier 2 -> 1
  EXPECT_EQ(od.times_ejected(0), 1u);
}

TEST(OutlierDetector, MaxEjectionPercentButAlwaysOne) {
  OutlierDetector od(split(1, 10), 4, 1);  // 10 % of 4 hosts is 0.4: still one may go
  EXPECT_TRUE(od.on_local_origin_failure(0, seconds(0)));
  EXPECT_FALSE(od.on_local_origin_failure(1, seconds(0)));
  EXPECT_FALSE(od.ejected(1));
  EXPECT_EQ(od.ejected_count(), 1u);

  OutlierDetector half(split(1, 50), 4, 1);
  EXPECT_TRUE(half.on_local_origin_failure(0, seconds(0)));
  EXPECT_TRUE(half.on_local_origin_failure(1, seconds(0)));
  EXPECT_FALSE(half.on_local_origin_failure(2, seconds(0)));  // a third would be 75 %
  EXPECT_EQ(half.ejected_count(), 2u);
  half.on_interval(seconds(30));
  EXPECT_EQ(half.ejected_count(), 0u);
  EXPECT_TRUE(half.on_local_origin_failure(2, seconds(31)));
}

TEST(OutlierDetector, WithoutSplitLocalFailuresCountAs5xx) {
  config::OutlierDetection c;  // Envoy defaults: consecutive5xx 5, enforcing 100
  OutlierDetector od(c, 2, 1);
  for (int i = 0; i < 4; ++i)
    EXPECT_FALSE(od.on_local_origin_failure(1, seconds(i)));
  EXPECT_TRUE(od.on_local_origin_failure(1, seconds(5)));
  EXPECT_EQ(od.ejected_until(1), seconds(35));

  c.enforcing_consecutive_5xx = 0;  // detected, never enforced
  OutlierDetector never(c, 2, 1);
  for (int i = 0; i < 50; ++i)
    EXPECT_FALSE(never.on_local_origin_failure(0, seconds(i)));
}

TEST(OutlierDetector, EnforcingPercentIsAProbability) {
  auto c = split(1, 100);
  c.enforcing_consecutive_local_origin_failure = 30;
  int ejections = 0;
  for (uint64_t seed = 1; seed <= 2000; ++seed) {
    OutlierDetector od(c, 1, seed * 7919);
    ejections += od.on_local_origin_failure(0, seconds(0)) ? 1 : 0;
  }
  std::printf("enforcing 30%%: %d of 2000 detections ejected\n", ejections);
  EXPECT_NEAR(ejections / 2000.0, 0.30, 0.05);
}

}  // namespace
}  // namespace ringway::engine
