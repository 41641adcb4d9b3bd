// Splice forwarding of one direction: socket -> pipe -> socket with splice(2), so the bytes never
// enter user space (HAProxy's splice-request/splice-response). The worker drives it on
// readiness: a one-shot io_uring poll on the source (POLLIN) or the destination (POLLOUT), then
// non-blocking splice(2) calls from the worker thread.
//
// Why not IORING_OP_SPLICE: io_uring always hands a splice to an io-wq thread (io_splice()
// returns -EAGAIN for a non-blocking issue, and newer kernels mark it REQ_F_FORCE_ASYNC at
// prep), so every chunk would cost a thread hop and a wake-up; poll + splice(2) keeps the
// direction on its worker's CPU, as HAProxy's event loop does.
//
// The pipe is the direction's buffer (PipePool::kPipeBytes, 64 KiB): while it is full the source
// is not read, TCP flow control pushes back, and a watch poll still catches a reset. With
// spliceMode AUTO a direction comes here after a burst (forward_copy.cpp) and goes back to copy
// after kSmallReadsBeforeCopy small reads in a row, once the pipe is empty.
#include <fcntl.h>
#include <poll.h>

#include <cerrno>

#include "worker.hpp"

namespace ringway::engine {
namespace {

// SPLICE_F_NONBLOCK: never wait on the pipe (full or empty). SPLICE_F_MOVE: a hint to move the
// pages instead of copying them where the kernel can.
constexpr unsigned kSpliceFlags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE;
// AUTO: this many consecutive reads under kSmallRead send the direction back to copy, where a
// small message costs one recv and one send instead of two splices and two polls.
constexpr uint8_t kSmallReadsBeforeCopy = 8;
constexpr ssize_t kSmallRead = 4096;
// Rounds of (pipe -> destination, source -> pipe) per readiness event: enough to move a burst
// without going back to the ring, few enough that one session cannot hold the worker.
constexpr int kRoundsPerEvent = 4;

void set_nonblocking(int fd) {
  // Sockets carry only O_RDWR and O_NONBLOCK in their status flags, so no F_GETFL is needed.
  ::fcntl(fd, F_SETFL, O_RDWR | O_NONBLOCK);
}

}  // namespace

bool Worker::start_splice(uint32_t slot, Dir d) {
  Session& s = sessions_.at(slot);
  Direction& dd = s.dir(d);
  dd.splice_wanted = false;
  auto pipe = pipes_->acquire();
  if (!pipe) {
    // Every pipe of the worker is in use (or pipe2 failed): this burst is copied instead.
    worker_stats_.add(WorkerStat::splice_fallbacks_total);
    return false;
  }
  if (!s.nonblocking) {
    // O_NONBLOCK: a splice out of the pipe must never wait for the destination's send buffer,
    // and tcp_splice_read takes its wait from the socket's own flag (SPLICE_F_NONBLOCK covers
    // only the pipe). io_uring's recv and send on the same sockets (the other direction, when
    // it copies) still wait for data or room: io_uring arms its own poll whatever the flag.
    set_nonblocking(s.downstream_fd);
    set_nonblocking(s.upstream_fd);
    s.nonblocking = true;
  }
  dd.pipe_read = pipe->read_fd;
  dd.pipe_write = pipe->write_fd;
  dd.pipe_bytes = 0;
  dd.small_reads = 0;
  dd.forwarding = Forwarding::Splice;
  worker_stats_.add(WorkerStat::splice_switches_total);
  splice_pump(slot, d);
  return true;
}

void Worker::stop_splice(Direction& dd) {
  pipes_->release(PipePool::Pipe{dd.pipe_read, dd.pipe_write}, dd.pipe_bytes == 0);
  dd.pipe_read = dd.pipe_write = -1;
  dd.pipe_bytes = 0;
  dd.small_reads = 0;
  dd.forwarding = Forwarding::Copy;
}

void Worker::arm_splice_poll(uint32_t slot, Dir d, Op op) {
  Session& s = sessions_.at(slot);
  Direction& dd = s.dir(d);
  io_uring_sqe* p = sqe(tag(op, slot, s.generation, d));
  if (p == nullptr) {
    abort_session(slot, EndReason::InternalError, true, true);
    return;
  }
  // One-shot: each event is followed by splices that may drain the readiness, so a multishot
  // poll would only post completions we do not need.
  if (op == Op::SpliceIn) {
    io_uring_prep_poll_add(p, s.src_fd(d), POLLIN);
    dd.src_poll_armed = true;
  } else {
    io_uring_prep_poll_add(p, s.dst_fd(d), POLLOUT);
    dd.dst_poll_armed = true;
  }
  ++s.inflight;
}

void Worker::splice_pump(uint32_t slot, Dir d) {
  Session& s = sessions_.at(slot);
  Direction& dd = s.dir(d);
  for (int round = 0; round < kRoundsPerEvent && s.state == SessionState::Established; ++round) {
    bool moved = false;
    if (dd.pipe_bytes > 0 && !dd.dst_poll_armed) {
      const ssize_t n =
          ::splice(dd.pipe_read, nullptr, s.dst_fd(d), nullptr, dd.pipe_bytes, kSpliceFlags);
      if (n > 0) {
        dd.pipe_bytes -= static_cast<uint32_t>(n);
        dd.bytes_sent += static_cast<uint64_t>(n);
        s.last_activity_ms = now_ms_;
        if (d == Dir::UpToDown) {
          gateway_stats_[s.gateway].add(GatewayStat::downstream_bytes_sent_total, n);
        }
        moved = true;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        on_side_error(slot, d == Dir::UpToDown, errno);  // the destination failed
        return;
      }
    }
    const uint32_t room = PipePool::kPipeBytes - dd.pipe_bytes;
    if (!dd.eof && room > 0 && !dd.src_poll_armed) {
      const ssize_t n = ::splice(s.src_fd(d), nullptr, dd.pipe_write, nullptr, room, kSpliceFlags);
      if (n > 0) {
        dd.pipe_bytes += static_cast<uint32_t>(n);
        dd.bytes_received += static_cast<uint64_t>(n);
        s.last_activity_ms = now_ms_;
        if (d == Dir::DownToUp) {
          gateway_stats_[s.gateway].add(GatewayStat::downstream_bytes_received_total, n);
        }
        dd.small_reads = n < kSmallRead ? static_cast<uint8_t>(dd.small_reads + 1) : 0;
        if (dd.small_reads > kSmallReadsBeforeCopy) dd.small_reads = kSmallReadsBeforeCopy;
        moved = true;
      } else if (n == 0) {
        dd.eof = true;  // the source sent FIN
      } else if (errno != EAGAIN && errno != EINTR) {
        on_side_error(slot, d == Dir::DownToUp, errno);  // the source failed
        return;
      }
    }
    if (!moved) break;
  }
  if (s.state != SessionState::Established) return;

  // Whatever is still to do waits for readiness: the invariant after a pump is that every
  // pending step has its poll armed (a poll on a ready socket completes at once).
  const bool pipe_full = dd.pipe_bytes >= PipePool::kPipeBytes;
  if (dd.pipe_bytes > 0 && !dd.dst_poll_armed) arm_splice_poll(slot, d, Op::SpliceOut);
  if (s.state != SessionState::Established) return;
  if (!dd.eof && !pipe_full && !dd.src_poll_armed) arm_splice_poll(slot, d, Op::SpliceIn);
  if (s.state != SessionState::Established) return;
  // Backpressure, counted like copy's: a full pipe stops reading the source; a watch catches a
  // reset meanwhile.
  if (pipe_full && !dd.eof && !dd.paused) {
    dd.paused = true;
    gateway_stats_[s.gateway].add(GatewayStat::reads_paused_total);
    arm_watch(slot, d);
  } else if (!pipe_full && dd.paused) {
    dd.paused = false;
    gateway_stats_[s.gateway].add(GatewayStat::reads_resumed_total);
  }
  if (dd.eof && dd.pipe_bytes == 0) maybe_forward_fin(slot, d);
}

void Worker::on_splice_poll(uint32_t slot, Dir d, Op op, int res) {
  Session& s = sessions_.at(slot);
  Direction& dd = s.dir(d);
  --s.inflight;
  if (op == Op::SpliceIn) {
    dd.src_poll_armed = false;
  } else {
    dd.dst_poll_armed = false;
  }
  if (s.state != SessionState::Established) {
    maybe_finish(slot);
    return;
  }
  (void)res;  // errors and hang-ups are read from the next splice, which names the errno
  if (op == Op::SpliceIn && dd.auto_splice && dd.small_reads >= kSmallReadsBeforeCopy &&
      dd.pipe_bytes == 0 && !dd.dst_poll_armed) {
    // AUTO and the traffic turned small: back to copy, where the data now waiting is read.
    stop_splice(dd);
    arm_recv(slot, d);
    return;
  }
  splice_pump(slot, d);
}

}  // namespace ringway::engine
