// The hashed timer wheel (see timer_wheel.hpp for the contract).
#include "ringway/engine/timer_wheel.hpp"

namespace ringway::engine {

TimerId TimerWheel::insert(Tick expires, uint64_t payload) {
  uint32_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    index = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  // A past expiry goes to the next tick's slot so the next advance() visits it.
  const Tick effective = expires > current_ ? expires : current_ + 1;
  Node& n = nodes_[index];
  n.expires = effective;
  n.payload = payload;
  n.active = true;
  const uint32_t slot = static_cast<uint32_t>(effective % kSlots);
  n.prev = kNil;
  n.next = heads_[slot];
  if (n.next != kNil) nodes_[n.next].prev = index;
  heads_[slot] = index;
  ++size_;
  return TimerId{index + 1, n.generation};
}

bool TimerWheel::cancel(TimerId id) {
  if (!id.valid()) return false;
  const uint32_t index = id.index - 1;
  if (index >= nodes_.size()) return false;
  Node& n = nodes_[index];
  if (!n.active || n.generation != id.generation) return false;
  unlink(index);
  release(index);
  return true;
}

void TimerWheel::unlink(uint32_t index) {
  Node& n = nodes_[index];
  if (n.prev != kNil) {
    nodes_[n.prev].next = n.next;
  } else {
    heads_[static_cast<uint32_t>(n.expires % kSlots)] = n.next;
  }
  if (n.next != kNil) nodes_[n.next].prev = n.prev;
  n.prev = n.next = kNil;
}

void TimerWheel::release(uint32_t index) {
  Node& n = nodes_[index];
  n.active = false;
  ++n.generation;  // outstanding TimerIds for this node no longer match
  free_.push_back(index);
  --size_;
}

void TimerWheel::collect(Tick now) {
  if (now <= current_) return;
  // Visit each slot between the last advance and now once; a gap longer than the wheel visits
  // every slot once, which covers every timer.
  const Tick steps = now - current_ < kSlots ? now - current_ : kSlots;
  for (Tick s = 1; s <= steps; ++s) {
    const uint32_t slot = static_cast<uint32_t>((current_ + s) % kSlots);
    uint32_t index = heads_[slot];
    while (index != kNil) {
      const uint32_t next = nodes_[index].next;
      if (nodes_[index].expires <= now) {
        fired_.push_back(nodes_[index].payload);
        unlink(index);
        release(index);
      }
      index = next;
    }
  }
  current_ = now;
}

}  // namespace ringway::engine
