// The per-worker timer wheel: expiry at the right tick, cancel, delays longer than one turn of
// the wheel, timers inserted from a callback.
#include <gtest/gtest.h>

#include <vector>

#include "ringway/engine/timer_wheel.hpp"

namespace ringway::engine {
namespace {

std::vector<uint64_t> advance(TimerWheel& w, TimerWheel::Tick now) {
  std::vector<uint64_t> fired;
  w.advance(now, [&](uint64_t p) { fired.push_back(p); });
  return fired;
}

TEST(TimerWheel, FiresAtItsTickNotBefore) {
  TimerWheel w(100);
  w.insert(105, 1);
  w.insert(103, 2);
  EXPECT_EQ(w.size(), 2u);
  EXPECT_TRUE(advance(w, 102).empty());
  EXPECT_EQ(advance(w, 103), std::vector<uint64_t>{2});
  EXPECT_TRUE(advance(w, 104).empty());
  EXPECT_EQ(advance(w, 105), std::vector<uint64_t>{1});
  EXPECT_TRUE(w.empty());
}

TEST(TimerWheel, PastExpiryFiresOnNextAdvance) {
  TimerWheel w(50);
  w.insert(10, 7);
  EXPECT_EQ(advance(w, 51), std::vector<uint64_t>{7});
}

TEST(TimerWheel, CancelRemovesAndIsIdempotent) {
  TimerWheel w(0);
  TimerId a = w.insert(5, 1);
  TimerId b = w.insert(5, 2);
  EXPECT_TRUE(w.cancel(a));
  EXPECT_FALSE(w.cancel(a));
  EXPECT_EQ(advance(w, 10), std::vector<uint64_t>{2});
  EXPECT_FALSE(w.cancel(b));  // already fired
  EXPECT_FALSE(w.cancel(TimerId{}));
}

TEST(TimerWheel, StaleIdDoesNotCancelAReusedNode) {
  TimerWheel w(0);
  TimerId a = w.insert(5, 1);
  ASSERT_TRUE(w.cancel(a));
  TimerId b = w.insert(6, 2);  // reuses a's node
  EXPECT_EQ(a.index, b.index);
  EXPECT_FALSE(w.cancel(a));
  EXPECT_EQ(advance(w, 6), std::vector<uint64_t>{2});
}

TEST(TimerWheel, DelaysLongerThanTheWheel) {
  TimerWheel w(0);
  const TimerWheel::Tick far = 3 * TimerWheel::kSlots + 17;
  w.insert(far, 42);
  w.insert(17, 43);  // same slot, first turn
  for (TimerWheel::Tick t = 1; t < far; ++t) {
    auto fired = advance(w, t);
    if (t == 17) {
      EXPECT_EQ(fired, std::vector<uint64_t>{43});
    } else {
      ASSERT_TRUE(fired.empty()) << "fired early at tick " << t;
    }
  }
  EXPECT_EQ(advance(w, far), std::vector<uint64_t>{42});
}

TEST(TimerWheel, BigJumpFiresEverythingDue) {
  TimerWheel w(0);
  for (uint64_t i = 1; i <= 100; ++i)
    w.insert(i * 37, i);
  auto fired = advance(w, 10 * TimerWheel::kSlots);
  EXPECT_EQ(fired.size(), 100u);
  EXPECT_TRUE(w.empty());
}

TEST(TimerWheel, CallbackMayInsertAndCancel) {
  TimerWheel w(0);
  TimerId later = w.insert(10, 2);
  w.insert(1, 1);
  std::vector<uint64_t> fired;
  w.advance(1, [&](uint64_t p) {
    fired.push_back(p);
    w.cancel(later);
    w.insert(1, 3);  // due now: fires on the next advance, not this one
  });
  EXPECT_EQ(fired, std::vector<uint64_t>{1});
  EXPECT_EQ(advance(w, 2), std::vector<uint64_t>{3});
  EXPECT_TRUE(advance(w, 20).empty());
}

}  // namespace
}  // namespace ringway::engine
