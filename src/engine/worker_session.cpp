// A session's life on its worker: accept -> upstream connect (host choice, link timeout,
// retries) -> forwarding both ways (provided-buffer recv, queued sends, backpressure, starvation)
// -> endings (FIN forwarded as SHUT_WR, RST propagated, idle timeout, abort) -> close once no op
// is in flight. The rule that keeps this safe: an fd is closed and a slot freed only in finish(),
// and finish() runs only when the session's in-flight count is 0.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ringway/core/log.hpp"
#include "ringway/net/socket_options.hpp"
#include "ringway/net/upstream_socket.hpp"
#include "worker.hpp"

namespace ringway::engine {
namespace {

// sendmsg/send flags: MSG_NOSIGNAL, a peer that reset must give EPIPE, not kill the process
// with SIGPIPE; MSG_WAITALL, io_uring keeps sending until all bytes are queued (fewer short
// sends to resubmit).
constexpr int kSendFlags = MSG_NOSIGNAL | MSG_WAITALL;

void set_linger_zero(int fd) {
  // SO_LINGER {on, 0 s}: close() sends RST instead of FIN. Used to pass a reset on.
  const linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

}  // namespace

void Worker::on_new_connection(uint32_t gateway, int fd) {
  const auto& gw = shared_.config->gateways[gateway];
  GatewayStats& gs = gateway_stats_[gateway];
  gs.add(GatewayStat::downstream_connections_total);

  const uint32_t slot = sessions_.alloc();
  if (slot == UINT32_MAX) {
    log::warning("worker {}: session table full ({} sessions); connection closed", index_,
                 sessions_.live());
    ::close(fd);
    return;
  }
  Session& s = sessions_.at(slot);
  s.state = SessionState::Connecting;
  s.gateway = gateway;
  s.upstream = static_cast<uint32_t>(gw.tcp_hosts.empty() ? 0 : gw.tcp_hosts[0].upstream_index);
  s.downstream_fd = fd;
  s.accepted_ms = s.last_activity_ms = now_ms_;
  if (shared_.sink) {
    if (downstream_peers_.size() <= slot) downstream_peers_.resize(slot + 1);
    auto peer = net::SocketAddress::peer_of(fd);
    downstream_peers_[slot] = peer ? *peer : net::SocketAddress{};
    s.accepted_wall_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  }
  gs.add(GatewayStat::downstream_connections_active, 1);

  // Backpressure limits, counted in buffers (what memory is really spent on): the bytes read
  // from downstream wait for the upstream, so they are bounded by the upstream's
  // perConnectionBufferLimitBytes, and the other way by the gateway's. Envoy likewise pauses
  // reading one side when the other side's write buffer is over its limit.
  const auto& up = shared_.config->upstreams[s.upstream];
  const uint64_t limits[2] = {up.per_connection_buffer_limit_bytes,
                              gw.per_connection_buffer_limit_bytes};
  for (int d = 0; d < 2; ++d) {
    // In 64 bits: a limit near 4 GiB plus a buffer's size would wrap in 32. A limit larger than
    // the pool means "as much as the pool gives", which hold_limit() bounds anyway.
    const uint64_t size = pool_->buffer_size();
    const auto pause_at = static_cast<uint32_t>(
        std::clamp<uint64_t>((limits[d] + size - 1) / size, 1, pool_->count()));
    s.dirs[d].pause_at = pause_at;
    s.dirs[d].resume_at = pause_at / 4;  // low watermark: resume at a quarter of the limit
  }

  if (draining_ && now_ms_ >= drain_deadline_ms_) {
    // Accepted after the drain deadline (same batch of completions, or taken from the accept
    // queue at close): force-closed like every other session still open at the deadline.
    gs.add(GatewayStat::sessions_force_closed_total);
    s.reason = EndReason::DrainForceClosed;
    s.rst_downstream = true;
    s.state = SessionState::Closing;
    finish(slot);
    return;
  }
  if (refuse_when_overloaded(slot)) return;

  if (gw.tcp_hosts.empty()) {  // the loader rejects this; never forward to nowhere
    s.reason = EndReason::ConnectError;
    s.state = SessionState::Closing;
    finish(slot);
    return;
  }
  // connectionLimit.maxActiveConnections, Envoy connection_limit style: the connection is
  // accepted (the kernel already completed the handshake) and closed at once, counted in
  // downstream_connections_rejected_total. The count is exact across workers (one atomic).
  if (gw.max_active_connections) {
    auto& active = shared_.gateway_active[gateway];
    const int64_t now_active = active.fetch_add(1, std::memory_order_relaxed) + 1;
    if (now_active > static_cast<int64_t>(*gw.max_active_connections)) {
      active.fetch_sub(1, std::memory_order_relaxed);
      gs.add(GatewayStat::downstream_connections_rejected_total);
      s.reason = EndReason::ConnectionLimit;
      s.state = SessionState::Closing;
      finish(slot);
      return;
    }
    s.limit_counted = true;
  }
  // circuitBreakers.maxConnections: a session holds one upstream connection (open or
  // connecting) at a time, so the breaker counts sessions from their first connect attempt.
  auto& open = shared_.upstream_sessions[s.upstream];
  if (open.fetch_add(1, std::memory_order_relaxed) >= static_cast<int64_t>(up.max_connections)) {
    open.fetch_sub(1, std::memory_order_relaxed);
    upstream_stats_[s.upstream].add(UpstreamStat::upstream_circuit_open_total);
    s.reason = EndReason::CircuitOpen;
    s.state = SessionState::Closing;
    finish(slot);
    return;
  }
  s.circuit_counted = true;
  start_connect(slot);
}

void Worker::start_connect(uint32_t slot) {
  Session& s = sessions_.at(slot);
  const uint32_t u = s.upstream;
  const auto& up = shared_.config->upstreams[u];
  const auto& hosts = shared_.upstreams[u].hosts;
  UpstreamStats& us = upstream_stats_[u];
  const auto& gw = shared_.config->gateways[s.gateway];
  const uint32_t max_attempts = std::max<uint32_t>(1, gw.tcp_proxy.max_connect_attempts);

  while (s.attempts < max_attempts && !hosts.empty()) {
    const uint32_t host = balancers_[u].pick();
    s.host = host;
    ++s.attempts;
    us.add(UpstreamStat::upstream_connect_attempts_total);
    const net::SocketAddress& addr = hosts[host];
    // socket() + the upstream's options (tcpKeepalive) BEFORE connect, so keepalive covers the
    // connection from its first packet.
    auto fd = net::open_upstream_socket(addr.family(), shared_.upstream_options[u]);
    if (!fd) {
      // A local failure (EMFILE, ENOBUFS...): another host would fail the same way, and
      // retrying at once would spin, so the session ends here.
      us.add(UpstreamStat::upstream_connect_errors_total);
      s.reason = EndReason::ConnectError;
      log::debug("worker {}: upstream {}: {}", index_, shared_.upstream_ids[u], fd.error().message);
      break;
    }
    s.upstream_fd = *fd;
    us.add(UpstreamStat::upstream_connections_active, 1);
    balancers_[u].on_start(host);
    s.host_counted = true;

    const int64_t timeout_ms = up.connect_timeout.count();
    const bool with_timeout = timeout_ms > 0;
    // Both SQEs must go to the kernel in the same submission: a link does not survive a
    // submit boundary, so make room for both before taking the first.
    io_uring_sqe* c =
        ring_->reserve(with_timeout ? 2 : 1) ? sqe(tag(Op::Connect, slot, s.generation)) : nullptr;
    if (c == nullptr) {
      log::error("worker {}: io_uring refused a connect; session closed", index_);
      s.reason = EndReason::InternalError;
      s.state = SessionState::Closing;
      finish(slot);
      return;
    }
    io_uring_prep_connect(c, s.upstream_fd, addr.get(), addr.length);
    s.connect_res = 0;
    s.timeout_res = 0;
    s.connect_pending = 1;
    ++s.inflight;
    if (with_timeout) {
      // IOSQE_IO_LINK ties the next SQE (the LINK_TIMEOUT) to this connect: if the connect is
      // still pending when the timeout expires, it is cancelled (-ECANCELED) and the timeout
      // completes with -ETIME; otherwise the timeout completes with -ECANCELED.
      c->flags |= IOSQE_IO_LINK;
      s.connect_timeout.tv_sec = timeout_ms / 1000;
      s.connect_timeout.tv_nsec = (timeout_ms % 1000) * 1000000;
      io_uring_sqe* t = sqe(tag(Op::ConnectTimeout, slot, s.generation));
      io_uring_prep_link_timeout(t, &s.connect_timeout, 0);
      ++s.connect_pending;
      ++s.inflight;
    }
    return;
  }
  // Every attempt failed before reaching the network.
  gateway_stats_[s.gateway].add(GatewayStat::sessions_no_upstream_total);
  s.state = SessionState::Closing;
  finish(slot);
}

void Worker::on_connect_part(uint32_t slot, Op op, int res) {
  Session& s = sessions_.at(slot);
  --s.inflight;
  --s.connect_pending;
  if (op == Op::Connect) {
    s.connect_res = res;
  } else {
    s.timeout_res = res;
  }
  if (s.state == SessionState::Closing) {
    maybe_finish(slot);
    return;
  }
  // Act only once both completions are in, whatever their order: then no op references the
  // upstream fd and it may be closed for a retry.
  if (s.connect_pending > 0) return;
  if (s.connect_res == 0) {
    established(slot);
    return;
  }
  UpstreamStats& us = upstream_stats_[s.upstream];
  if (s.timeout_res == -ETIME) {
    us.add(UpstreamStat::upstream_connect_timeouts_total);
    s.reason = EndReason::ConnectTimeout;
  } else if (s.connect_res == -ECONNREFUSED) {
    us.add(UpstreamStat::upstream_connect_refused_total);
    s.reason = EndReason::UpstreamRefused;
  } else {
    us.add(UpstreamStat::upstream_connect_errors_total);
    s.reason = EndReason::ConnectError;
  }
  log::debug("worker {}: connect to upstream {} host {} failed: {}", index_,
             shared_.upstream_ids[s.upstream],
             shared_.upstreams[s.upstream].hosts[s.host].to_string(),
             s.reason == EndReason::ConnectTimeout ? "timeout" : std::strerror(-s.connect_res));
  ::close(s.upstream_fd);
  s.upstream_fd = -1;
  us.add(UpstreamStat::upstream_connections_active, -1);
  balancers_[s.upstream].on_end(s.host);
  s.host_counted = false;
  start_connect(slot);  // next host, or closes the downstream when attempts are used up
}

void Worker::established(uint32_t slot) {
  Session& s = sessions_.at(slot);
  s.state = SessionState::Established;
  upstream_stats_[s.upstream].add(UpstreamStat::upstream_connections_total);
  s.last_activity_ms = now_ms_;
  const int64_t idle_ms = shared_.config->gateways[s.gateway].tcp_proxy.idle_timeout.count();
  if (idle_ms > 0) schedule_idle(slot, now_ms_ + idle_ms);
  // Reading starts only now: bytes the client sent early wait in the kernel's socket buffer.
  arm_recv(slot, Dir::DownToUp);
  arm_recv(slot, Dir::UpToDown);
}

// ---- forwarding -----------------------------------------------------------------------------

void Worker::arm_recv(uint32_t slot, Dir d) {
  Session& s = sessions_.at(slot);
  if (s.state != SessionState::Established) return;
  Direction& dd = s.dir(d);
  io_uring_sqe* r = sqe(tag(Op::Recv, slot, s.generation, d));
  if (r == nullptr) {
    abort_session(slot, EndReason::InternalError, true, true);
    return;
  }
  // One-shot recv with IOSQE_BUFFER_SELECT: the kernel picks a buffer from group kGroupId only
  // when data is there, so a session waiting for data holds no buffer; one buffer per
  // completion keeps each direction's memory exactly countable.
  io_uring_prep_recv(r, s.src_fd(d), nullptr, pool_->buffer_size(), 0);
  r->flags |= IOSQE_BUFFER_SELECT;
  r->buf_group = BufferPool::kGroupId;
  // POLL_FIRST: unless the last recv said more data was waiting, the socket is most likely
  // empty (request/response traffic), so skip the recv attempt that would fail and go straight
  // to the poll the kernel arms anyway.
  if (!dd.src_nonempty) r->ioprio |= IORING_RECVSEND_POLL_FIRST;
  dd.recv_armed = true;
  ++s.inflight;
  pool_->on_recv_armed();
}

// While a direction does not read (paused or starved), nothing else may be watching its source
// socket: a RST from that peer would go unnoticed and the session would hang. A one-shot poll
// for POLLRDHUP (POLLERR and POLLHUP are always reported) catches it without taking a buffer.
void Worker::arm_watch(uint32_t slot, Dir d) {
  Session& s = sessions_.at(slot);
  Direction& dd = s.dir(d);
  if (dd.watch_armed || s.state != SessionState::Established) return;
  io_uring_sqe* p = sqe(tag(Op::Watch, slot, s.generation, d));
  if (p == nullptr) return;  // only a missed early warning: the next recv reports the error
  // After the watch has seen FIN, POLLRDHUP would stay set and fire at once: watch for errors
  // only (POLLERR and POLLHUP are always reported), so a reset that follows the FIN is seen.
  io_uring_prep_poll_add(p, s.src_fd(d), dd.watch_saw_fin ? 0 : POLLRDHUP);
  dd.watch_armed = true;
  ++s.inflight;
}

void Worker::on_watch(uint32_t slot, Dir d, int res) {
  Session& s = sessions_.at(slot);
  Direction& dd = s.dir(d);
  --s.inflight;
  dd.watch_armed = false;
  if (s.state == SessionState::Closing) {
    maybe_finish(slot);
    return;
  }
  if (res <= 0) return;
  if ((res & (POLLERR | POLLHUP)) == 0) {
    // FIN only: the data before it is read when the direction resumes. Keep watching for a
    // reset while the direction still does not read.
    dd.watch_saw_fin = true;
    if ((dd.paused || dd.starved) && !dd.recv_armed) arm_watch(slot, d);
    return;
  }
  // POLLHUP alone can also mean "FIN received after we shut down our side": not an error.
  int error = 0;
  socklen_t len = sizeof(error);
  if (::getsockopt(s.src_fd(d), SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
  if (error == 0 && (res & POLLERR) == 0) return;
  on_side_error(slot, d == Dir::DownToUp, error != 0 ? error : ECONNRESET);
}

void Worker::on_recv(uint32_t slot, Dir d, int res, uint32_t flags) {
  Session& s = sessions_.at(slot);
  Direction& dd = s.dir(d);
  --s.inflight;
  dd.recv_armed = false;
  dd.src_nonempty = (flags & IORING_CQE_F_SOCK_NONEMPTY) != 0;
  const bool took = (flags & IORING_CQE_F_BUFFER) != 0;
  const auto bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
  pool_->on_recv_done(took);
  if (s.state == SessionState::Closing) {
    if (took) pool_->recycle(bid);
    maybe_finish(slot);
    return;
  }
  if (res > 0 && took) {
    if (dd.queued_count == 0) ++holders_;
    queues_->push(dd, bid, static_cast<uint32_t>(res));
    dd.bytes_received += static_cast<uint64_t>(res);
    s.last_activity_ms = now_ms_;
    if (d == Dir::DownToUp) {
      gateway_stats_[s.gateway].add(GatewayStat::downstream_bytes_received_total, res);
    }
    start_send(slot, d);
    if (s.state != SessionState::Established) return;
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
  if (took) pool_->recycle(bid);  // a completion without data may still carry a buffer
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
  // Release what went out; a short send leaves the rest at the head for the next send.
  auto left = static_cast<uint32_t>(res);
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
  dd.bytes_sent += static_cast<uint64_t>(res);
  s.last_activity_ms = now_ms_;
  if (d == Dir::UpToDown) {
    gateway_stats_[s.gateway].add(GatewayStat::downstream_bytes_sent_total, res);
  }
  start_send(slot, d);
  if (s.state != SessionState::Established) return;
  if (dd.paused && dd.queued_count <= dd.resume_at) {
    dd.paused = false;
    gateway_stats_[s.gateway].add(GatewayStat::reads_resumed_total);
    arm_recv(slot, d);
    if (s.state != SessionState::Established) return;
  }
  maybe_forward_fin(slot, d);
}

// Half-close: once the source has sent FIN and everything it sent has been written, FIN goes
// to the destination (shutdown SHUT_WR) while the other direction keeps flowing. The session
// ends normally when both directions have done this.
void Worker::maybe_forward_fin(uint32_t slot, Dir d) {
  Session& s = sessions_.at(slot);
  Direction& dd = s.dir(d);
  if (!dd.eof || dd.shut || dd.send_inflight || dd.queued_count > 0) return;
  // A plain shutdown(2): it does not block, and no op of ours on this fd depends on it.
  // An error (the destination already reset) surfaces on the other direction's ops.
  ::shutdown(s.dst_fd(d), SHUT_WR);
  dd.shut = true;
  if (s.dirs[0].shut && s.dirs[1].shut) {
    s.reason = EndReason::Normal;
    timers_.cancel(s.idle_timer);
    s.state = SessionState::Closing;
    maybe_finish(slot);
  }
}

// ---- endings ------------------------------------------------------------------------------

void Worker::on_side_error(uint32_t slot, bool downstream_side, int error) {
  Session& s = sessions_.at(slot);
  EndReason reason;
  if (error == ETIMEDOUT) {
    // The kernel gave up on the peer (keepalive probes unanswered, or TCP_USER_TIMEOUT):
    // keepalive is per hop, so the other side must be closed by us.
    if (downstream_side) {
      gateway_stats_[s.gateway].add(GatewayStat::downstream_keepalive_timeouts_total);
    } else {
      upstream_stats_[s.upstream].add(UpstreamStat::upstream_keepalive_timeouts_total);
    }
    reason = EndReason::KeepaliveTimeout;
  } else if (downstream_side) {
    gateway_stats_[s.gateway].add(GatewayStat::downstream_resets_total);
    reason = EndReason::DownstreamReset;
  } else {
    upstream_stats_[s.upstream].add(UpstreamStat::upstream_resets_total);
    reason = EndReason::UpstreamReset;
  }
  // The failure is passed on as a reset of the other side.
  abort_session(slot, reason, !downstream_side, downstream_side);
}

void Worker::abort_session(uint32_t slot, EndReason reason, bool rst_downstream,
                           bool rst_upstream) {
  Session& s = sessions_.at(slot);
  if (s.state == SessionState::Closing || s.state == SessionState::Free) return;
  s.reason = reason;
  s.state = SessionState::Closing;
  timers_.cancel(s.idle_timer);
  s.rst_downstream = s.rst_downstream || rst_downstream;
  s.rst_upstream = s.rst_upstream || rst_upstream;
  for (auto& dd : s.dirs) {
    // Every pause is matched by a resume, also when the session ends paused, so that
    // reads_paused_total == reads_resumed_total whenever no session is open.
    if (dd.paused) {
      dd.paused = false;
      gateway_stats_[s.gateway].add(GatewayStat::reads_resumed_total);
    }
  }
  // close() does not cancel io_uring ops (they hold their own file reference), so every op
  // still pending on either fd is cancelled; the fds are closed in finish(), after the last
  // completion.
  const bool downstream_busy =
      s.dirs[0].recv_armed || s.dirs[0].watch_armed || s.dirs[1].send_inflight;
  const bool upstream_busy = s.dirs[1].recv_armed || s.dirs[1].watch_armed ||
                             s.dirs[0].send_inflight || s.connect_pending > 0;
  for (const auto& [busy, fd] :
       {std::pair{downstream_busy, s.downstream_fd}, std::pair{upstream_busy, s.upstream_fd}}) {
    if (!busy || fd < 0) continue;
    io_uring_sqe* c = sqe(tag(Op::Cancel, slot, s.generation));
    if (c == nullptr) {
      // Cannot cancel through the ring: shutdown(2) completes pending socket ops instead.
      ::shutdown(fd, SHUT_RDWR);
      continue;
    }
    // IORING_ASYNC_CANCEL_ALL: every op matching the fd, not just the first one found.
    io_uring_prep_cancel_fd(c, fd, IORING_ASYNC_CANCEL_ALL);
    ++s.inflight;
  }
  maybe_finish(slot);
}

void Worker::maybe_finish(uint32_t slot) {
  Session& s = sessions_.at(slot);
  if (s.state == SessionState::Closing && s.inflight == 0) finish(slot);
}

void Worker::finish(uint32_t slot) {
  Session& s = sessions_.at(slot);
  for (auto& dd : s.dirs) {
    if (dd.queued_count > 0) --holders_;
    while (dd.queued_count > 0)
      pool_->recycle(queues_->pop(dd));
  }
  if (shared_.sink) emit_record(slot, s);
  if (s.upstream_fd >= 0) {
    if (s.rst_upstream) set_linger_zero(s.upstream_fd);
    ::close(s.upstream_fd);
    upstream_stats_[s.upstream].add(UpstreamStat::upstream_connections_active, -1);
  }
  if (s.host_counted) balancers_[s.upstream].on_end(s.host);
  if (s.downstream_fd >= 0) {
    if (s.rst_downstream) set_linger_zero(s.downstream_fd);
    ::close(s.downstream_fd);
  }
  gateway_stats_[s.gateway].add(GatewayStat::downstream_connections_active, -1);
  if (s.limit_counted) {
    shared_.gateway_active[s.gateway].fetch_sub(1, std::memory_order_relaxed);
  }
  if (s.circuit_counted) {
    shared_.upstream_sessions[s.upstream].fetch_sub(1, std::memory_order_relaxed);
  }
  timers_.cancel(s.idle_timer);
  sessions_.free(slot);
}

void Worker::on_idle_timer(uint32_t slot, uint16_t generation) {
  Session* s = sessions_.find(slot, generation);
  if (s == nullptr || s->state != SessionState::Established) return;
  s->idle_timer = {};
  const int64_t idle_ms = shared_.config->gateways[s->gateway].tcp_proxy.idle_timeout.count();
  // Lazy re-insertion: activity only stamps last_activity_ms; the single wheel entry checks
  // it when it fires and moves itself forward if there was traffic meanwhile. Keepalive probes
  // are invisible here, so they never keep a session alive.
  if (now_ms_ - s->last_activity_ms >= idle_ms) {
    gateway_stats_[s->gateway].add(GatewayStat::idle_timeouts_total);
    abort_session(slot, EndReason::IdleTimeout, false, false);
  } else {
    schedule_idle(slot, s->last_activity_ms + idle_ms);
  }
}

void Worker::emit_record(uint32_t slot, Session& s) {
  SessionRecord r;
  r.worker = index_;
  r.gateway = shared_.gateway_ids[s.gateway];
  r.upstream = shared_.upstream_ids[s.upstream];
  if (slot < downstream_peers_.size()) r.downstream_peer = downstream_peers_[slot];
  if (auto local = net::SocketAddress::local_of(s.downstream_fd)) r.downstream_local = *local;
  if (s.attempts > 0) r.upstream_host = shared_.upstreams[s.upstream].hosts[s.host];
  r.connect_attempts = s.attempts;
  r.bytes_from_downstream = s.dirs[0].bytes_received;
  r.bytes_to_upstream = s.dirs[0].bytes_sent;
  r.bytes_from_upstream = s.dirs[1].bytes_received;
  r.bytes_to_downstream = s.dirs[1].bytes_sent;
  r.start = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(s.accepted_wall_ns)));
  r.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::system_clock::now() - r.start);
  r.reason = s.reason;
  shared_.sink(r);
}

}  // namespace ringway::engine
