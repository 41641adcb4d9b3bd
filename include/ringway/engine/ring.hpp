// One io_uring instance, owned by exactly one thread (the worker that created it): set-up with
// the flags the engine relies on and their fallbacks, the feature probe, getting SQEs (submitting
// when the SQ is full), and the batched wait. Everything here is data-path free of allocation.
#pragma once

#include <liburing.h>

#include <memory>

#include "ringway/core/result.hpp"
#include "ringway/engine/engine.hpp"

namespace ringway::engine {

// Kernel constants newer than the liburing 2.3 headers we build against, defined once here with
// their values from the kernel's include/uapi/linux/io_uring.h (6.10).
// IORING_RECVSEND_BUNDLE, in sqe->ioprio of a recv with IOSQE_BUFFER_SELECT: one completion may
// fill several buffers of the group, consecutive in ring order, the CQE naming the first.
inline constexpr uint16_t kRecvSendBundle = 1U << 4;
// IORING_FEAT_RECVSEND_BUNDLE in io_uring_params.features.
inline constexpr uint32_t kFeatRecvSendBundle = 1U << 14;

// The length of a bundle recv that may fill at most `cap` buffers of `size` bytes. Not
// cap * size: a bundle that filled exactly its length with more data queued is retried once by
// the kernel (6.14+), appending up to the socket's whole queue to the same completion. One byte
// more maps the cap's buffers and then finds the next one longer than what is left, which the
// kernel records as a partial map (it maps no part of that buffer) and never retries: the cap
// holds. The probe reports whether it did (Features::recv_bundle_capped).
constexpr uint32_t bundle_recv_len(uint32_t cap, uint32_t size) {
  return (cap * size) + 1;
}

struct RingSize {
  // 2048 SQEs: a loop iteration rarely prepares more; get_sqe() submits early when it does.
  unsigned sq_entries = 2048;
  // CQ sized for the worst case of ops in flight: a session has at most ~6 (recv and send per
  // direction, connect + link timeout or two cancels), so 32768 covers ~5000 sessions per
  // worker before the kernel has to use its (NODROP) overflow list, which we count.
  unsigned cq_entries = 32768;
};

class Ring {
 public:
  // Creates the ring in the calling thread (required by SINGLE_ISSUER: only this thread may
  // submit from now on). An Error with code EPERM or ENOSYS means io_uring is unavailable; its
  // message says why and what to change.
  static Result<std::unique_ptr<Ring>> create(RingSize size = {});
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  io_uring* get() { return &ring_; }
  const Features& features() const { return features_; }

  // Called right before every submission, so that buffers recycled into the provided-buffer ring
  // are published before a recv that may need them reaches the kernel.
  void set_pre_submit(void (*fn)(void*), void* context) {
    pre_submit_ = fn;
    pre_submit_context_ = context;
  }

  // An SQE, submitting what is queued first when the SQ is full. Returns nullptr only if the
  // kernel refuses the submission outright (then the caller treats the op as failed).
  io_uring_sqe* get_sqe();
  // Makes sure `n` SQEs can be taken without an intermediate submit: linked SQEs (connect +
  // link timeout) must reach the kernel in the same submission.
  bool reserve(unsigned n);
  int submit();
  // Submits and waits for at least one completion, at most `timeout` (nullptr: no limit).
  // -ETIME and -EINTR are normal returns.
  int submit_and_wait(__kernel_timespec* timeout);
  // Busy-poll (settings.busyPoll): submits what is queued, then spins until a completion is
  // ready or `budget_ns` has passed. True when one is ready (the caller then skips the wait).
  bool spin_for_completion(int64_t budget_ns);
  // Completions the kernel could not post to the CQ (kept on its overflow list thanks to
  // IORING_FEAT_NODROP): cumulative.
  uint32_t cq_overflow() const;

 private:
  Ring() = default;
  io_uring ring_{};
  Features features_;
  void (*pre_submit_)(void*) = nullptr;
  void* pre_submit_context_ = nullptr;
};

// Tries to create a ring with the engine's flags once (then closes it) and fills `features`:
// the start-up check that lets the server exit 69 before any thread starts.
Result<Features> probe_io_uring();

}  // namespace ringway::engine
