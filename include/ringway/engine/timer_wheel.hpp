// A hashed timer wheel for one worker: idle timeouts, accept back-off and the drain deadline.
// Time is in ticks (the worker uses 100 ms); a timer lands in slot (expiry % kSlots) and is
// skipped on each pass until its expiry is reached, so any delay works with a fixed number of
// slots. Insert, cancel and firing are O(1) per timer; nodes are recycled, so after warm-up the
// wheel does not allocate. Single-threaded (owned by a worker).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringway::engine {

struct TimerId {
  uint32_t index = 0;       // node index + 1; 0 = no timer
  uint32_t generation = 0;  // guards against cancelling a node that was reused
  bool valid() const { return index != 0; }
};

class TimerWheel {
 public:
  using Tick = uint64_t;
  static constexpr uint32_t kSlots = 512;

  explicit TimerWheel(Tick now = 0) : current_(now) { heads_.assign(kSlots, kNil); }

  // Schedules `payload` to fire at `expires` (a tick already past fires on the next advance).
  TimerId insert(Tick expires, uint64_t payload);
  // False if the timer already fired or was cancelled.
  bool cancel(TimerId id);
  // Fires (calls fn(payload)) every timer whose expiry is <= now. A callback may insert or
  // cancel timers; a timer it inserts for a tick <= now fires on the next advance, not this one.
  template <typename Fn>
  void advance(Tick now, Fn&& fn) {
    collect(now);
    for (size_t i = 0; i < fired_.size(); ++i)
      fn(fired_[i]);
    fired_.clear();
  }

  Tick now() const { return current_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  static constexpr uint32_t kNil = UINT32_MAX;
  struct Node {
    Tick expires = 0;
    uint64_t payload = 0;
    uint32_t prev = kNil;
    uint32_t next = kNil;
    uint32_t generation = 0;
    bool active = false;
  };

  void collect(Tick now);
  void unlink(uint32_t index);
  void release(uint32_t index);

  Tick current_;
  size_t size_ = 0;
  std::vector<uint32_t> heads_;
  std::vector<Node> nodes_;
  std::vector<uint32_t> free_;
  std::vector<uint64_t> fired_;
};

}  // namespace ringway::engine
