// Copy forwarding of one direction: recv into buffers of the worker's pool (the kernel picks
// them when data arrives; forward_recv.cpp arms the recv), queue them, send the queue to the
// destination; backpressure by not re-arming the recv; a watch poll on a source that is not read.
// With spliceMode AUTO, a burst (a full buffer with more data waiting) hands the direction to
// splice once its queue has drained (forward_splice.cpp). Sessions' other phases are in
// worker_session.cpp.
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "worker.hpp"

namespace ringway::engine {
namespace {

// sendmsg/send flags: MSG_NOSIGNAL, a peer that reset must give EPIPE, not kill the process
// with SIGPIPE; MSG_WAITALL, io_uring keeps sending until all bytes are queued (fewer short
// sends to resubmit).
constexpr int kSendFlags = MSG_NOSIGNAL | MSG_WAITALL;

}  // namespace

// While a direction does not read (paused or starved), nothing else may be watching its source
// socket: a RST from that peer would go unnoticed and the session would hang. A one-shot poll
// for POLLRDHUP (POLLERR and POLLHUP are always reported) catches it without taking a buffer.
void Worker::arm_watch(uint32_t slot, Dir d) {
  Session& s = sessions_.at(slot);
  Direction& dd = s.dir(d);
  if (dd.watch_armed || s.state != SessionState::Established) return;
  io_uring_sqe* p = sqe(tag(Op::Watch, slot, s.generation, d));
  if (p == nullptr) return;  // only a missed early warning: the next recv reports the error
  if (dd.watch_saw_fin) {
    // After FIN a one-shot poll cannot wait for errors alone: io_uring always adds POLLRDHUP to
    // a poll's events, and RDHUP stays set, so it would fire at once, be re-armed and fire
    // again, a loop that kept the worker busy for as long as the direction stayed paused. A
    // multishot poll reports the level once and then only on the socket's wake-ups that match
    // (a reset, a state change; not data or write space). It stays armed until the session
    // ends: abort_session and maybe_forward_fin cancel it.
    io_uring_prep_poll_multishot(p, s.src_fd(d), 0);
  } else {
    io_uring_prep_poll_add(p, s.src_fd(d), POLLRDHUP);
  }
  dd.watch_armed = true;
  ++s.inflight;
}

void Worker::on_watch(uint32_t slot, Dir d, int res, uint32_t flags) {
  Session& s = sessions_.at(slot);
  Direction& dd = s.dir(d);
  // IORING_CQE_F_MORE: the multishot watch stays armed (and counted in inflight).
  if ((flags & IORING_CQE_F_MORE) == 0) {
    --s.inflight;
    dd.watch_armed = false;
  }
  if (s.state == SessionState::Closing) {
    maybe_finish(slot);
    return;
  }
  if (res <= 0) return;
  if ((res & (POLLERR | POLLHUP)) == 0) {
    // FIN only: the data before it is read when the direction resumes. Keep watching for a
    // reset while the direction still does not read.
    dd.watch_saw_fin = true;
    if ((dd.paused || dd.starved) && !dd.recv_armed && !dd.src_poll_armed) arm_watch(slot, d);
    return;
  }
  // POLLHUP alone can also mean "FIN received after we shut down our side": not an error.
  int error = 0;
  socklen_t len = sizeof(error);
  if (::getsockopt(s.src_fd(d), SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
  if (error == 0 && (res & POLLERR) == 0) return;
  on_side_error(slot, d == Dir::DownToUp, error != 0 ? error : ECONNRESET);
}

void Worker::on_recv(uint32_t slot, Dir d, int res, uint32_t flags, uint8_t cap) {
  Session& s = sessions_.at(slot);
  Direction& dd = s.dir(d);
  --s.inflight;
  dd.recv_armed = false;
  dd.src_nonempty = (flags & IORING_CQE_F_SOCK_NONEMPTY) != 0;
  const bool closing = s.state == SessionState::Closing;
  // Queues the data's buffers (forward_recv.cpp); a completion without data, or for a session
  // that is ending, has its buffers recycled there.
  const uint32_t queued = take_recv_buffers(closing ? nullptr : &dd, res, flags, cap);
  if (closing) {
    maybe_finish(slot);
    return;
  }
  if (queued > 0) {
    dd.bytes_received += static_cast<uint64_t>(res);
    s.last_activity_ms = now_ms_;
    if (d == Dir::DownToUp) {
      gateway_stats_[s.gateway].add(GatewayStat::downstream_bytes_received_total, res);
    }
    start_send(slot, d);
    if (s.state != SessionState::Established) return;
    if (dd.auto_splice && static_cast<uint32_t>(res) >= pool_->buffer_size() && dd.src_nonempty) {
      // A burst (a full buffer, more data waiting): the rest goes through a pipe once what is
      // queued has been sent, so that bytes keep their order. Meanwhile the source is not read.
      dd.splice_wanted = true;
      return;
    }
    if (dd.queued_count >= hold_limit(dd)) {
      // Backpressure: stop reading; the peer's data waits in our socket's receive buffer and
      // TCP flow control slows the sender down.
      dd.paused = true;
      gateway_stats_[s.gateway].add(GatewayStat::reads_paused_total);
      arm_watch(slot, d);
    } else {
      arm_recv(slot, d);
    }
    return;
  }
  if (res == 0) {
    dd.eof = true;  // the source sent FIN
    maybe_forward_fin(slot, d);
    return;
  }
  if (res == -ENOBUFS) {
    // The pool is empty: wait in FIFO order for a recycled buffer (rearm_starved).
    worker_stats_.add(WorkerStat::buffer_pool_enobufs_total);
    dd.starved = true;
    starved_.push_back(Starved{tag(Op::Recv, slot, s.generation, d), now_ms_});
    arm_watch(slot, d);
    return;
  }
  if (res == -EINTR || res == -EAGAIN || res > 0) {
    arm_recv(slot, d);
    return;
  }
  on_side_error(slot, d == Dir::DownToUp, -res);
}

void Worker::start_send(uint32_t slot, Dir d) {
  Session& s = sessions_.at(slot);
  if (s.state != SessionState::Established) return;
  Direction& dd = s.dir(d);
  if (dd.send_inflight || dd.queued_count == 0) return;
  // Gather up to kMaxSendIov queued buffers; the first may be partly sent already.
  uint32_t n = 0;
  uint32_t total = 0;
  uint32_t offset = dd.head_offset;
  for (uint32_t bid = dd.head; bid != kNoBuffer && n < kMaxSendIov; bid = queues_->next(bid)) {
    dd.iov[n].iov_base = pool_->data(static_cast<uint16_t>(bid)) + offset;
    dd.iov[n].iov_len = queues_->len(bid) - offset;
    total += static_cast<uint32_t>(dd.iov[n].iov_len);
    offset = 0;
    ++n;
  }
  io_uring_sqe* w = sqe(tag(Op::Send, slot, s.generation, d));
  if (w == nullptr) {
    abort_session(slot, EndReason::InternalError, true, true);
    return;
  }
  if (n == 1) {
    io_uring_prep_send(w, s.dst_fd(d), dd.iov[0].iov_base, dd.iov[0].iov_len, kSendFlags);
  } else {
    // msghdr and iovecs live in the Direction (stable memory) until this send's completion.
    dd.msg = msghdr{};
    dd.msg.msg_iov = dd.iov;
    dd.msg.msg_iovlen = n;
    io_uring_prep_sendmsg(w, s.dst_fd(d), &dd.msg, kSendFlags);
  }
  dd.send_inflight = true;
  dd.send_bytes = total;
  ++s.inflight;
}

// Releases the `sent` bytes a send completion reports: whole buffers go back to the pool, and
// a short send leaves the rest at the head (head_offset) for the next send.
void Worker::release_sent(Session& s, Dir d, uint32_t sent) {
  Direction& dd = s.dir(d);
  uint32_t left = sent;
  while (left > 0 && dd.queued_count > 0) {
    const uint32_t avail = queues_->len(dd.head) - dd.head_offset;
    if (left >= avail) {
      left -= avail;
      pool_->recycle(queues_->pop(dd));
      if (dd.queued_count == 0) --holders_;
    } else {
      dd.head_offset += left;
      dd.queued_bytes -= left;
      left = 0;
    }
  }
  dd.bytes_sent += sent;
  if (d == Dir::UpToDown) {
    gateway_stats_[s.gateway].add(GatewayStat::downstream_bytes_sent_total, sent);
  }
}

void Worker::on_send(uint32_t slot, Dir d, int res) {
  Session& s = sessions_.at(slot);
  Direction& dd = s.dir(d);
  --s.inflight;
  dd.send_inflight = false;
  if (s.state == SessionState::Closing) {
    maybe_finish(slot);  // queued buffers are recycled in finish()
    return;
  }
  if (res == -EINTR || res == -EAGAIN) {
    start_send(slot, d);
    return;
  }
  if (res <= 0) {
    // A zero-byte completion for a non-empty send would loop forever: treat it as a broken pipe.
    on_side_error(slot, d == Dir::UpToDown, res < 0 ? -res : EPIPE);
    return;
  }
  release_sent(s, d, static_cast<uint32_t>(res));
  s.last_activity_ms = now_ms_;
  start_send(slot, d);
  if (s.state != SessionState::Established) return;
  if (dd.splice_wanted) {
    if (dd.queued_count == 0 && !dd.send_inflight && !start_splice(slot, d)) {
      arm_recv(slot, d);  // no pipe to be had: keep copying
    }
    return;
  }
  if (dd.paused && dd.queued_count <= dd.resume_at) {
    dd.paused = false;
    gateway_stats_[s.gateway].add(GatewayStat::reads_resumed_total);
    arm_recv(slot, d);
    if (s.state != SessionState::Established) return;
  }
  maybe_forward_fin(slot, d);
}

}  // namespace ringway::engine
