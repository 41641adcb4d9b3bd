// A worker's listeners: multishot accept with back-off on descriptor or memory shortage, the
// wait of a session for a descriptor, and how accepting stops at a drain or a handover. See
// worker.hpp for the ownership rules.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "ringway/core/log.hpp"
#include "worker.hpp"

namespace ringway::engine {
namespace {

// Accept errors that say "a limit was hit": retrying at once would spin, so accepting pauses.
// Accept errors about one connection only (it went away before we took it): accept again.
bool is_transient_accept_error(int error) {
  return error == ECONNABORTED || error == EINTR || error == EAGAIN || error == EPROTO ||
         error == EPERM || error == ENETDOWN || error == EHOSTUNREACH || error == ENETUNREACH;
}

}  // namespace

// ---- accept -------------------------------------------------------------------------------

void Worker::arm_accept(uint32_t li) {
  Listener& l = listeners_[li];
  io_uring_sqe* s = sqe(tag(Op::Accept, li));
  if (s == nullptr) {
    // The ring refused: try again after a back-off rather than lose the listener.
    l.pause_wanted = true;
    settle_listener(li);
    return;
  }
  // Multishot: one SQE keeps accepting (a CQE per connection, IORING_CQE_F_MORE while it stays
  // armed). SOCK_CLOEXEC: session sockets must not leak into exec'd children. No peer address
  // buffer: it would be shared by every completion; getpeername() is used when one is needed.
  if (now_ms_ < single_accept_until_ms_) {
    // Near the descriptor limit: one connection per SQE, so the next accept is armed only
    // after this session got its upstream socket (or waits for one, which pauses accepting).
    io_uring_prep_accept(s, l.fd, nullptr, nullptr, SOCK_CLOEXEC);
  } else {
    io_uring_prep_multishot_accept(s, l.fd, nullptr, nullptr, SOCK_CLOEXEC);
  }
  l.armed = true;
  ++worker_ops_;
}

void Worker::cancel_accept(uint32_t li) {
  Listener& l = listeners_[li];
  io_uring_sqe* s = sqe(tag(Op::AcceptCancel, li));
  if (s == nullptr) return;  // the accept stays armed; retry_worker_ops() tries again
  io_uring_prep_cancel64(s, tag(Op::Accept, li), 0);
  l.cancelling = true;
  ++worker_ops_;
}

void Worker::log_accept_limit(int error, const char* what) {
  const int cause = error == EMFILE ? 0 : error == ENFILE ? 1 : 2;
  // At most one line per second per cause: a sustained overload must not flood the log.
  if (now_ms_ - last_limit_log_ms_[cause] < 1000) return;
  last_limit_log_ms_[cause] = now_ms_;
  const char* advice =
      cause == 0   ? "the process is out of file descriptors: raise LimitNOFILE (ulimit -n)"
      : cause == 1 ? "the system file table is full: raise the sysctl fs.file-max"
                   : "the kernel is short of socket memory: add memory or lower the load";
  log::warning("worker {}: {} failed ({}); accepting paused for {} ms; {}", index_, what,
               std::strerror(error), kAcceptPauseMs, advice);
}

// The process is out of descriptors (or the kernel short of memory) for a session's upstream
// socket. Closing the client it already accepted would turn a passing shortage into a failed
// connection, so the session waits kAcceptPauseMs and tries again (for at most its gateway's
// idleTimeout); and accepting stays paused while any session waits, so descriptors freed by
// ending sessions go to sessions already accepted rather than to new clients that would hit the
// same wall.
void Worker::wait_for_descriptor(uint32_t slot, int error) {
  worker_stats_.add(WorkerStat::accept_pauses_total);
  single_accept_until_ms_ = now_ms_ + kSingleAcceptMs;
  log_accept_limit(error, "upstream socket()");
  for (uint32_t i = 0; i < listeners_.size(); ++i) {
    Listener& l = listeners_[i];
    if (l.fd < 0 || l.paused) continue;
    l.pause_wanted = true;
    if (l.armed && !l.cancelling) cancel_accept(i);
    settle_listener(i);
  }
  Session& s = sessions_.at(slot);
  if (!s.waiting_descriptor) {
    s.waiting_descriptor = true;
    ++waiting_descriptor_;
  }
  const uint64_t payload = (static_cast<uint64_t>(TimerKind::ConnectRetry) << 56) |
                           (static_cast<uint64_t>(s.generation) << 32) | slot;
  s.retry_timer = timers_.insert(tick_at(now_ms_ + kAcceptPauseMs), payload);
}

void Worker::on_accept(uint32_t li, int res, uint32_t flags) {
  Listener& l = listeners_[li];
  if ((flags & IORING_CQE_F_MORE) == 0) {
    l.armed = false;
    --worker_ops_;
  }
  if (res >= 0) {
    ++l.accepted;
    if (stopping_) {
      ::close(res);
    } else if (handing_over_) {
      export_fresh(l.gateway, res);  // accepted while the cancel was on its way
    } else {
      on_new_connection(l.gateway, res);
    }
  } else if (res != -ECANCELED) {
    const int error = -res;
    if (is_resource_error(error)) {
      worker_stats_.add(WorkerStat::accept_pauses_total);
      single_accept_until_ms_ = now_ms_ + kSingleAcceptMs;
      log_accept_limit(error, "accept");
      l.pause_wanted = true;
      if (l.armed && !l.cancelling) cancel_accept(li);
    } else if (!is_transient_accept_error(error)) {
      // Unknown and possibly persistent: back off rather than spin on it.
      log::warning("worker {}: accept failed: {}", index_, std::strerror(error));
      l.pause_wanted = true;
    }
  }
  settle_listener(li);
}

// Decides what a listener does next once nothing is in flight on it: close (draining), wait
// (back-off), or accept again.
void Worker::settle_listener(uint32_t li) {
  Listener& l = listeners_[li];
  if (l.fd < 0 || l.armed || l.cancelling || l.paused) return;
  if (l.retire_now) {
    retire_listener(li);
    return;
  }
  if (handing_over_) {
    // Handed over: the new process accepts on this same socket now, so its queue is not ours
    // to take. Ours stays open but unarmed until this process stops, so that if the handover
    // fails this process can accept again (resume_accepting) without a moment where the port
    // is closed, and so that a restart can still pass the socket to systemd's fd store after
    // the export.
    if (stopping_) {
      ::close(l.fd);
      l.fd = -1;
    }
    return;
  }
  if (draining_) {
    // No op references the fd any more, so closing it cannot race an accept. Connections the
    // kernel already completed wait in the accept queue, and close() would reset them: take
    // them first and serve them like any other session of the drain.
    accept_queued(li);
    ::close(l.fd);
    l.fd = -1;
    return;
  }
  // While sessions wait for a descriptor, accepting more clients would only give them the
  // descriptors those sessions need: stay paused until they have theirs.
  if (l.pause_wanted || waiting_descriptor_ > 0) {
    l.pause_wanted = false;
    l.paused = true;
    const uint64_t payload = (static_cast<uint64_t>(TimerKind::AcceptResume) << 56) | li;
    l.resume_timer = timers_.insert(tick_at(now_ms_ + kAcceptPauseMs), payload);
    return;
  }
  arm_accept(li);
}

// ---- drain --------------------------------------------------------------------------------

// Accepts, without blocking, every connection waiting in a listener's queue. Only called once
// no accept op is in flight on it (settle_listener), right before the listener is closed; a
// connection that completes its handshake between the last accept and close() is still reset
// unless net.ipv4.tcp_migrate_req moves it to another listener of the SO_REUSEPORT group.
void Worker::accept_queued(uint32_t li) {
  Listener& l = listeners_[li];
  const int flags = ::fcntl(l.fd, F_GETFL);
  if (flags < 0 || ::fcntl(l.fd, F_SETFL, flags | O_NONBLOCK) != 0) return;
  for (;;) {
    const int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN: the queue is empty; anything else: nothing more to take
    }
    if (stopping_) {
      ::close(fd);
    } else {
      on_new_connection(l.gateway, fd);
    }
  }
}

// Every listener stops accepting: its back-off is cut short, its accept cancelled, and
// settle_listener() closes it once nothing is in flight on it (draining_ or handing_over_ set).
void Worker::stop_accepting() {
  for (uint32_t i = 0; i < listeners_.size(); ++i) {
    Listener& l = listeners_[i];
    if (l.paused) {
      timers_.cancel(l.resume_timer);
      l.paused = false;
    }
    if (l.armed && !l.cancelling) cancel_accept(i);
    settle_listener(i);
  }
}

void Worker::begin_drain(std::chrono::steady_clock::time_point deadline) {
  const bool first = !draining_;
  draining_ = true;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
  drain_deadline_ms_ = std::min(drain_deadline_ms_, now_ms_ + std::max<int64_t>(0, left));
  if (first) {
    stop_accepting();
    stop_health_checks();
    log::debug("worker {}: draining, {} sessions open", index_, sessions_.live());
  }
  if (left <= 0) {
    // Sessions accepted later in this same batch of completions (or from the accept queue)
    // are cut in on_new_connection, since this loop cannot see them yet.
    force_close_all();
    return;
  }
  const uint64_t payload = static_cast<uint64_t>(TimerKind::DrainDeadline) << 56;
  timers_.insert(tick_at(now_ms_ + left), payload);
}

void Worker::force_close_all() {
  for (uint32_t slot = 0; slot < sessions_.high_water(); ++slot) {
    Session& s = sessions_.at(slot);
    if (s.state != SessionState::Connecting && s.state != SessionState::Established) continue;
    gateway_stats_[s.gateway].add(GatewayStat::sessions_force_closed_total);
    // RST both ways: the stream was cut short, and the peers should not take it for a clean end.
    abort_session(slot, EndReason::DrainForceClosed, true, true);
  }
}

}  // namespace ringway::engine
