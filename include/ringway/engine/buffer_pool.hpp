// A worker's receive buffers: one provided-buffer ring (IORING_REGISTER_PBUF_RING) registered
// with the worker's io_uring, backed by one lazily-touched mmap region of `count` buffers of
// kSize bytes. A recv with IOSQE_BUFFER_SELECT takes a buffer only when data arrives, so an idle
// session holds none; the pool is the worker's hard memory cap for in-flight data.
//
// Why a free stack in front of the ring: the kernel consumes ring entries in ring order, so if
// every free buffer sat in the ring, one busy stream would cycle through all of them and touch
// the whole 64 MiB region. Instead the ring is kept topped up only to (recvs armed, at most
// kMaxOffered, + kSlack) buffers, taken from a LIFO stack of recycled buffers: the same few warm
// buffers are reused, resident memory follows the real demand, and a recv still never finds the
// ring empty unless the whole pool is held by queued data (then it gets -ENOBUFS and waits for a
// recycle).
//
// Bundles (RecvMode::Bundle): one recv completion may fill several buffers; the kernel takes them
// from consecutive ring entries and names only the first. The pool remembers at which ring
// position it offered each buffer, so the others are read back from the ring entries that
// follow. Those entries cannot have been overwritten yet: a position is reused only after
// `entries` more offers, while every buffer offered after the bundle's is still counted in
// in_ring_ (in the ring, or taken by a recv whose completion comes after the bundle's: the
// worker reaps completions in the order the kernel took buffers) and in_ring_ <= count <= entries.
#pragma once

#include <liburing.h>

#include <array>
#include <cassert>
#include <cstdint>
#include <memory>
#include <vector>

#include "ringway/core/result.hpp"

namespace ringway::engine {

class BufferPool {
 public:
  static constexpr uint32_t kSize = 32 * 1024;  // bytes per buffer (one recv at most)
  static constexpr uint32_t kMaxCount = 32768;  // the kernel's largest buffer ring
  static constexpr uint16_t kGroupId = 0;       // the buffer group id recvs select from
  static constexpr uint32_t kSlack = 8;         // extra buffers offered beyond the armed recvs
  // At most this many armed recvs are backed by a buffer in the ring. Thousands of idle sessions
  // each have a recv armed; backing every one would spread their occasional small reads over
  // thousands of buffers and make a page of each resident (measured: 4.7 KiB of RSS per idle
  // session with 5,000 sessions). Past the cap, a recv whose data finds the ring empty gets
  // -ENOBUFS and is re-armed on the next loop iteration from the warm free stack.
  static constexpr uint32_t kMaxOffered = 256;

  // Registers the ring with `ring` (which must outlive the pool); `count` buffers, 1..kMaxCount
  // (the worker derives it from settings.perWorkerBufferLimitBytes).
  static Result<std::unique_ptr<BufferPool>> create(io_uring* ring, uint32_t count,
                                                    uint32_t size = kSize);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  uint32_t buffer_size() const { return size_; }
  uint32_t count() const { return count_; }
  uint8_t* data(uint16_t bid) const { return base_ + static_cast<size_t>(bid) * size_; }

  // A recv with IOSQE_BUFFER_SELECT that may take up to `want` buffers (1 for a one-shot recv,
  // its cap for a bundle) is about to be submitted: offer the ring enough buffers.
  void on_recv_armed(uint32_t want = 1) {
    armed_ += want;
    top_up();
  }
  // How many buffers a recv completion filled: 0 without IORING_CQE_F_BUFFER; else 1 for a
  // one-shot recv (and for any completion without data), ceil(res / size) for a bundle.
  uint32_t buffers_taken(int res, uint32_t cqe_flags, bool bundle) const {
    if ((cqe_flags & IORING_CQE_F_BUFFER) == 0) return 0;
    if (!bundle || res <= static_cast<int>(size_)) return 1;
    return (static_cast<uint32_t>(res) + size_ - 1) / size_;
  }
  // The i-th buffer (0 = `first`, the one the CQE names) of a completion that took several.
  uint16_t bundle_buffer(uint16_t first, uint32_t i) const {
    return ring_->bufs[(ring_pos_[first] + i) & static_cast<uint32_t>(mask_)].bid;
  }
  // That recv (armed with `want`) completed having taken `taken` buffers (buffers_taken()):
  // the caller owns them and must recycle() each.
  void on_recv_done(uint32_t want, uint32_t taken) {
    armed_ -= want;
    in_ring_ -= taken;
  }
  // The most buffers one completion can have filled: only buffers in the ring can be taken, and
  // top_up() never keeps more than this many there.
  static constexpr uint32_t kMaxInRing = kMaxOffered + kSlack;
  using TakenIds = std::array<uint16_t, kMaxInRing>;
  // The same, and the ids of the buffers the completion filled, in data order, written to `ids`;
  // returns how many. Every id is read here, before the caller can recycle any of them: recycle()
  // re-offers at once, newest first, so a bundle's first buffer can be back in the ring at a new
  // position before its followers were read from the entries after its old one (seen as two
  // sessions sharing buffers when sessions closed with bundles in flight).
  uint32_t on_recv_done(uint32_t want, int res, uint32_t cqe_flags, bool bundle, TakenIds& ids) {
    const uint32_t taken = buffers_taken(res, cqe_flags, bundle);
    assert(taken <= kMaxInRing && taken <= in_ring_);
    const auto first = static_cast<uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
    // The ring entry the first buffer was offered at still names it: if it did not, the
    // following entries would not be this completion's buffers either.
    assert(taken <= 1 || bundle_buffer(first, 0) == first);
    for (uint32_t i = 0; i < taken; ++i)
      ids[i] = i == 0 ? first : bundle_buffer(first, i);
    on_recv_done(want, taken);
    return taken;
  }
  // The caller is done with `bid` (sent, or dropped with its session).
  void recycle(uint16_t bid) {
    stack_.push_back(bid);
    top_up();
  }
  // A free buffer for bytes that did not come from a recv (pending bytes of a session taken
  // over at a handover), or -1 when none is free outside the ring. Give it back with recycle().
  int32_t take() {
    if (stack_.empty()) return -1;
    const uint16_t bid = stack_.back();
    stack_.pop_back();
    return bid;
  }
  // Publishes buffers added since the last call: one io_uring_buf_ring_advance (a release
  // store of the tail). Called right before every submission.
  void flush() {
    if (pending_ == 0) return;
    io_uring_buf_ring_advance(ring_, static_cast<int>(pending_));
    pending_ = 0;
  }

  // Buffers not held by sessions (in the ring or on the free stack).
  uint32_t free_count() const { return in_ring_ + static_cast<uint32_t>(stack_.size()); }
  uint32_t in_ring() const { return in_ring_; }

 private:
  BufferPool() = default;
  void top_up() {
    const uint32_t target = (armed_ < kMaxOffered ? armed_ : kMaxOffered) + kSlack;
    while (in_ring_ < target && !stack_.empty()) {
      const uint16_t bid = stack_.back();
      stack_.pop_back();
      io_uring_buf_ring_add(ring_, data(bid), size_, bid, mask_, static_cast<int>(pending_));
      // The ring tail is 16 bits wide and wraps; so does the position (masked when read).
      ring_pos_[bid] = static_cast<uint16_t>(ring_->tail + pending_);
      ++pending_;
      ++in_ring_;
    }
  }

  io_uring* uring_ = nullptr;
  io_uring_buf_ring* ring_ = nullptr;
  size_t ring_bytes_ = 0;
  uint8_t* base_ = nullptr;
  size_t data_bytes_ = 0;
  uint32_t size_ = 0;
  uint32_t count_ = 0;
  int mask_ = 0;
  uint32_t armed_ = 0;              // buffers the recvs in flight may take (a bundle: its cap)
  uint32_t in_ring_ = 0;            // buffers offered to the kernel (published or pending)
  uint32_t pending_ = 0;            // added since the last flush()
  std::vector<uint16_t> stack_;     // free buffers not offered yet; LIFO keeps them warm
  std::vector<uint16_t> ring_pos_;  // ring position each buffer was last offered at (bundles)
};

}  // namespace ringway::engine
