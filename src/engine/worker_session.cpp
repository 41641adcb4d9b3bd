// A session's life on its worker: accept -> upstream connect (host choice, link timeout,
// retries) -> forwarding both ways (forward_copy.cpp, forward_splice.cpp) -> endings (FIN forwarded
// as SHUT_WR, RST propagated, idle timeout, abort) -> close once no op is in flight. The rule that
// keeps this safe: an fd is closed and a slot freed only in finish(), and finish() runs only when
// the session's in-flight count is 0.
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

void set_linger_zero(int fd) {
  // SO_LINGER {on, 0 s}: close() sends RST instead of FIN. Used to pass a reset on.
  const linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

}  // namespace

void Worker::on_new_connection(uint32_t gateway, int fd, const SessionExport* proxied) {
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
  // Provisional, for a session that ends before begin_upstream() (its access-log line names
  // an upstream): the first tcpHost's.
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
  // A PROXY header or SNI passthrough: read the downstream's first bytes before choosing the
  // tcpHost (worker_preamble.cpp), which calls begin_upstream() once it is known.
  if (needs_preamble(gateway)) {
    begin_preamble(slot, proxied);
    return;
  }
  s.tcp_host = 0;
  begin_upstream(slot);
}

void Worker::begin_upstream(uint32_t slot) {
  Session& s = sessions_.at(slot);
  const auto& gw = shared_.config->gateways[s.gateway];
  const config::TcpHost& th = gw.tcp_hosts[s.tcp_host];
  s.upstream = static_cast<uint32_t>(th.upstream_index);
  // destination.multi / upstreamGroup: one weighted choice per session (host_choice.cpp).
  if (auto& chooser = destinations_[s.gateway][s.tcp_host]) {
    const uint32_t d = chooser->pick();
    if (d != kNoHost) s.upstream = static_cast<uint32_t>(th.destinations[d].upstream_index);
  }
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
    // Failover priorities, health checks, outlier ejection, hashing: host_choice.cpp.
    const uint32_t host = pick_host(slot);
    if (host == kNoHost) {
      // Every host of every priority is unhealthy or ejected.
      us.add(UpstreamStat::upstream_no_healthy_host_total);
      s.reason = EndReason::ConnectError;
      break;
    }
    s.host = host;
    ++s.attempts;
    const net::SocketAddress& addr = hosts[host];
    // socket() + the upstream's options (tcpKeepalive) BEFORE connect, so keepalive covers the
    // connection from its first packet.
    auto fd = net::open_upstream_socket(addr.family(), shared_.upstream_options[u]);
    if (!fd) {
      // A session waiting for a descriptor does nothing, so the gateway's idleTimeout bounds
      // the wait (0 disables it, as it does for idle sessions).
      const int64_t idle_ms = gw.tcp_proxy.idle_timeout.count();
      if (is_resource_error(fd.error().code) &&
          (idle_ms == 0 || now_ms_ - s.accepted_ms < idle_ms)) {
        --s.attempts;  // nothing reached the network: not an attempt
        wait_for_descriptor(slot, fd.error().code);
        return;
      }
      // Any other local failure would fail the same way on another host, and retrying at once
      // would spin, so the session ends here.
      us.add(UpstreamStat::upstream_connect_attempts_total);
      us.add(UpstreamStat::upstream_connect_errors_total);
      s.reason = EndReason::ConnectError;
      log::debug("worker {}: upstream {}: {}", index_, shared_.upstream_ids[u], fd.error().message);
      break;
    }
    us.add(UpstreamStat::upstream_connect_attempts_total);
    s.upstream_fd = *fd;
    us.add(UpstreamStat::upstream_connections_active, 1);
    pickers_[u].on_start(host);
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
  report_host_result(s.upstream, s.host, false);
  ::close(s.upstream_fd);
  s.upstream_fd = -1;
  us.add(UpstreamStat::upstream_connections_active, -1);
  pickers_[s.upstream].on_end(s.host);
  s.host_counted = false;
  start_connect(slot);  // next host, or closes the downstream when attempts are used up
}

void Worker::established(uint32_t slot) {
  Session& s = sessions_.at(slot);
  s.state = SessionState::Established;
  upstream_stats_[s.upstream].add(UpstreamStat::upstream_connections_total);
  report_host_result(s.upstream, s.host, true);
  s.last_activity_ms = now_ms_;
  const int64_t idle_ms = shared_.config->gateways[s.gateway].tcp_proxy.idle_timeout.count();
  if (idle_ms > 0) schedule_idle(slot, now_ms_ + idle_ms);
  // proxyProtocolVersion: the header goes out before any client byte, once per connection (a
  // retry's new connection gets its own, since only an established one gets here).
  const bool header = shared_.config->upstreams[s.upstream].proxy_protocol_version.has_value();
  if (header && !queue_proxy_header(slot)) return;
  // Reading starts only now: bytes the client sent early wait in the kernel's socket buffer.
  const config::SpliceMode mode = shared_.forced_splice_mode.value_or(
      shared_.config->gateways[s.gateway].tcp_proxy.splice_mode);
  for (const Dir d : {Dir::DownToUp, Dir::UpToDown}) {
    if (s.state != SessionState::Established) return;
    Direction& dd = s.dir(d);
    // A pipe holds PipePool::kPipeBytes: a direction whose limit is smaller only copies, so
    // splicing never holds more than perConnectionBufferLimitBytes.
    const bool fits =
        static_cast<uint64_t>(dd.pause_at) * pool_->buffer_size() >= PipePool::kPipeBytes;
    dd.auto_splice = fits && mode == config::SpliceMode::Auto;
    // A queued PROXY header is copied out first; the direction splices after its next burst.
    if (header && d == Dir::DownToUp) {
      dd.auto_splice = fits && mode != config::SpliceMode::Never;
      arm_recv(slot, d);
      start_send(slot, d);
      continue;
    }
    if (fits && mode == config::SpliceMode::Always && start_splice(slot, d)) continue;
    arm_recv(slot, d);
  }
}

// Half-close: once the source has sent FIN and everything it sent has been written, FIN goes
// to the destination (shutdown SHUT_WR) while the other direction keeps flowing. The session
// ends normally when both directions have done this.
void Worker::maybe_forward_fin(uint32_t slot, Dir d) {
  Session& s = sessions_.at(slot);
  Direction& dd = s.dir(d);
  if (!dd.eof || dd.shut || dd.send_inflight || dd.queued_count > 0 || dd.pipe_bytes > 0) return;
  // A plain shutdown(2): it does not block, and no op of ours on this fd depends on it.
  // An error (the destination already reset) surfaces on the other direction's ops.
  ::shutdown(s.dst_fd(d), SHUT_WR);
  dd.shut = true;
  if (s.dirs[0].shut && s.dirs[1].shut) {
    s.reason = EndReason::Normal;
    timers_.cancel(s.idle_timer);
    s.state = SessionState::Closing;
    // Both sources sent FIN, so every recv has ended; a watch may still be armed (the multishot
    // one armed after FIN never ends by itself): cancel it.
    for (const Dir w : {Dir::DownToUp, Dir::UpToDown}) {
      if (!s.dir(w).watch_armed) continue;
      io_uring_sqe* c = sqe(tag(Op::Cancel, slot, s.generation));
      if (c == nullptr) {
        // No SQE even after submitting (the ring is failing): shutdown(2) completes a one-shot
        // watch with POLLHUP. A multishot one reports it and stays armed, and nothing retries
        // the cancel: the session's slot and fds stay until the worker exits (known gap; the
        // worker's own ops are retried by retry_worker_ops, session cancels are not).
        ::shutdown(s.src_fd(w), SHUT_RDWR);
        continue;
      }
      io_uring_prep_cancel_fd(c, s.src_fd(w), IORING_ASYNC_CANCEL_ALL);
      ++s.inflight;
    }
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
    // A reset by the host is a local-origin error for outlier detection, as a refusal is.
    report_host_result(s.upstream, s.host, false);
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
  const auto [downstream_busy, upstream_busy] = busy_sockets(s);
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

std::pair<bool, bool> Worker::busy_sockets(const Session& s) {
  const Direction& down_up = s.dirs[index_of(Dir::DownToUp)];
  const Direction& up_down = s.dirs[index_of(Dir::UpToDown)];
  const bool downstream = down_up.recv_armed || down_up.watch_armed || down_up.src_poll_armed ||
                          up_down.send_inflight || up_down.dst_poll_armed || s.preamble_armed;
  const bool upstream = up_down.recv_armed || up_down.watch_armed || up_down.src_poll_armed ||
                        down_up.send_inflight || down_up.dst_poll_armed || s.connect_pending > 0;
  return {downstream, upstream};
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
    if (dd.forwarding == Forwarding::Splice) stop_splice(dd);
  }
  if (shared_.sink) emit_record(slot, s);
  if (s.upstream_fd >= 0) {
    if (s.rst_upstream) set_linger_zero(s.upstream_fd);
    ::close(s.upstream_fd);
    upstream_stats_[s.upstream].add(UpstreamStat::upstream_connections_active, -1);
  }
  if (s.host_counted) pickers_[s.upstream].on_end(s.host);
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
  timers_.cancel(s.retry_timer);
  if (s.waiting_descriptor) --waiting_descriptor_;
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
