// How a copying direction receives: the recv it arms and what its completion hands back. Two
// paths, chosen once per process (EngineShared::recv_mode, from the start-up probe and
// RINGWAY_RECV): one-shot, one provided buffer per completion; or bundle, where one completion
// fills several buffers (IORING_RECVSEND_BUNDLE, Linux 6.10+). Either way every buffer is queued
// on its own in the direction's FIFO, so sending, backpressure, the pool's fairness rules
// (worker_memory.cpp) and handover see exactly the same per-buffer state.
//
// Multishot recv (IORING_RECV_MULTISHOT) is not used: it keeps taking buffers until a cancel
// lands, so a direction at its hold limit would go on receiving for as long as the cancel is in
// flight, and the ENOBUFS that ends it when the ring runs dry (the ring is kept short on purpose,
// see buffer_pool.hpp) would need the same re-arming as the one-shot path anyway.
#include <algorithm>

#include "worker.hpp"

namespace ringway::engine {
namespace {

// A bundle takes at most this many buffers: what one sendmsg gathers (kMaxSendIov), so a bundle
// is sent in one call, and well inside the tag's aux field.
constexpr uint32_t kMaxBundleBuffers = kMaxSendIov;
static_assert(kMaxBundleBuffers <= Tag::kAuxMax);

}  // namespace

void Worker::arm_recv(uint32_t slot, Dir d) {
  Session& s = sessions_.at(slot);
  if (s.state != SessionState::Established) return;
  Direction& dd = s.dir(d);
  // The bundle cap: the buffers this direction may still take before its hold limit, so one
  // completion never carries a direction past what a series of one-shot recvs would have let
  // it hold. A cap of 1 is a one-shot recv (also when the fairness rule allows one buffer).
  // Many directions arm bundles at once, each before any of them fills: what they may take
  // beyond a one-shot's single buffer is reserved (bundle_extra_) against the pool's excess
  // budget (worker_memory.cpp, rule 1), or a thousand stalled downloads arming 8-buffer
  // bundles together would take every buffer the rule keeps for others (overload_test).
  uint32_t cap = 0;
  if (shared_.recv_mode == RecvMode::Bundle) {
    const uint32_t limit = hold_limit(dd);
    const uint32_t room = limit > dd.queued_count ? limit - dd.queued_count : 1;
    const uint32_t used = pool_->count() - pool_->free_count();
    const uint32_t committed = (used > holders_ ? used - holders_ : 0) + bundle_extra_;
    const uint32_t spare = excess_budget_ > committed ? excess_budget_ - committed : 0;
    cap = std::min({room, kMaxBundleBuffers, 1 + spare});
    if (cap < 2) cap = 0;
    if (cap != 0) bundle_extra_ += cap - 1;
  }
  io_uring_sqe* r = sqe(tag(Op::Recv, slot, s.generation, d, static_cast<uint8_t>(cap)));
  if (r == nullptr) {
    abort_session(slot, EndReason::InternalError, true, true);
    return;
  }
  // Recv with IOSQE_BUFFER_SELECT: the kernel picks a buffer from group kGroupId only when data
  // is there, so a session waiting for data holds no buffer.
  io_uring_prep_recv(r, s.src_fd(d), nullptr,
                     cap != 0 ? bundle_recv_len(cap, pool_->buffer_size()) : pool_->buffer_size(),
                     0);
  r->flags |= IOSQE_BUFFER_SELECT;
  r->buf_group = BufferPool::kGroupId;
  // BUNDLE: the length caps the buffers one completion fills (see bundle_recv_len for why it is
  // one byte more than cap buffers). On a kernel that still appended to a full bundle
  // (Features::recv_bundle_capped false) every buffer is queued and counted all the same and the
  // direction pauses at once past its hold limit: the accounting stays exact, and the overshoot
  // is bounded by the buffers offered in the ring (at most kMaxOffered + kSlack).
  if (cap != 0) r->ioprio |= kRecvSendBundle;
  // POLL_FIRST: unless the last recv said more data was waiting, the socket is most likely
  // empty (request/response traffic), so skip the recv attempt that would fail and go straight
  // to the poll the kernel arms anyway.
  if (!dd.src_nonempty) r->ioprio |= IORING_RECVSEND_POLL_FIRST;
  dd.recv_armed = true;
  ++s.inflight;
  pool_->on_recv_armed(std::max(cap, 1U));
}

uint32_t Worker::take_recv_buffers(Direction* dd, int res, uint32_t flags, uint8_t cap) {
  BufferPool::TakenIds ids;
  const uint32_t taken =
      pool_->on_recv_done(std::max<uint32_t>(cap, 1U), res, flags, cap != 0, ids);
  if (cap != 0) bundle_extra_ -= cap - 1U;
  if (taken == 0) return 0;
  if (res <= 0 || dd == nullptr) {
    for (uint32_t i = 0; i < taken; ++i)
      pool_->recycle(ids[i]);
    return 0;
  }
  if (dd->queued_count == 0) ++holders_;
  auto left = static_cast<uint32_t>(res);
  for (uint32_t i = 0; i < taken; ++i) {
    const uint32_t len = std::min(left, pool_->buffer_size());
    queues_->push(*dd, ids[i], len);
    left -= len;
  }
  return taken;
}

}  // namespace ringway::engine
