// The per-worker session slot table (see session.hpp).
#include "ringway/engine/session.hpp"

namespace ringway::engine {

uint32_t SessionTable::alloc() {
  uint32_t slot;
  if (free_head_ != UINT32_MAX) {
    // LIFO reuse: the most recently freed slot is the one most likely still in cache.
    slot = free_head_;
    free_head_ = at(slot).next_free;
  } else {
    if (allocated_ >= max_) return UINT32_MAX;
    if (allocated_ % kChunk == 0) chunks_.push_back(std::make_unique<Session[]>(kChunk));
    slot = allocated_++;
  }
  ++live_;
  return slot;
}

void SessionTable::free(uint32_t slot) {
  Session& s = at(slot);
  const uint16_t generation = static_cast<uint16_t>(s.generation + 1);
  s = Session{};
  s.generation = generation;
  s.next_free = free_head_;
  free_head_ = slot;
  --live_;
}

}  // namespace ringway::engine
