// A worker's side of a handover (reload or restart): export every live session at a quiet point
// (no op of ours in flight on its fds), import sessions exported by another process, and retire
// listen sockets whose options changed. See include/ringway/engine/handover.hpp for what travels.
//
// Quiet point: every armed recv, watch and send of the session is cancelled with one
// IORING_ASYNC_CANCEL_ALL per fd. A recv that raced the cancel and brought data is kept (its
// bytes join the pending queue); a send that raced it reports how much it wrote (io_uring
// completes a partly done send with its byte count, also when cancelled), so the bytes left in
// the queue are exactly the bytes the destination has not taken. A session still connecting is
// exported "fresh": its connect is cancelled and the importer connects again with its own config
// (nothing was read from its downstream yet, so nothing can be lost or doubled).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "ringway/core/log.hpp"
#include "ringway/net/socket_options.hpp"
#include "worker.hpp"

namespace ringway::engine {

std::string listener_address_key(const config::Gateway& gateway) {
  return fmt::format("{}|{}|", gateway.bind_address, gateway.bind_port);
}

std::string listener_key(const config::Gateway& gateway) {
  std::string key = listener_address_key(gateway);
  for (const auto& o : net::listener_options(gateway)) {
    if (o.state == config::SocketState::Listening) continue;
    key += fmt::format("{},{},{},", static_cast<int>(o.state), o.level, o.name);
    if (const auto* i = std::get_if<int32_t>(&o.value)) {
      key += fmt::format("i{};", *i);
    } else {
      // bufValue: hex, so the key stays printable in logs.
      for (unsigned char c : std::get<std::string>(o.value))
        key += fmt::format("{:02x}", c);
      key += ';';
    }
  }
  return key;
}

void close_fds(std::vector<SessionExport>& sessions) {
  for (auto& e : sessions) {
    for (int* fd : {&e.downstream_fd, &e.upstream_fd, &e.dirs[0].pipe_fd, &e.dirs[1].pipe_fd}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }
}

namespace {

uint32_t find_id(const std::vector<std::string>& ids, const std::string& id) {
  for (uint32_t i = 0; i < ids.size(); ++i) {
    if (ids[i] == id) return i;
  }
  return UINT32_MAX;
}

bool same_address(const net::SocketAddress& a, const net::SocketAddress& b) {
  return a.length == b.length && std::memcmp(&a.storage, &b.storage, a.length) == 0;
}

}  // namespace

// ---- export -------------------------------------------------------------------------------

void Worker::begin_handover(std::shared_ptr<HandoverRequest> request) {
  if (handing_over_ || draining_) {
    // Already exported (or stopping): answer with nothing rather than leave the caller waiting.
    std::lock_guard lock(request->mu);
    --request->remaining;
    request->cv.notify_all();
    return;
  }
  handing_over_ = true;
  handover_ = std::move(request);
  // The new process checks the hosts from now on; ours are cancelled (fds closed once their
  // ops complete) and start again if the handover fails (resume_accepting).
  stop_health_checks();
  // Listeners: accepting stops here; the fds stay open, unarmed, until this process stops
  // (settle_listener). The new process holds the same sockets, so their queues are its now.
  stop_accepting();
  for (uint32_t slot = 0; slot < sessions_.high_water(); ++slot) {
    const Session& s = sessions_.at(slot);
    if (s.state == SessionState::Connecting || s.state == SessionState::Established) {
      quiesce(slot);
    }
  }
  log::debug("worker {}: handing over, {} sessions quiescing", index_, quiescing_);
  maybe_deliver_handover();
}

void Worker::quiesce(uint32_t slot) {
  Session& s = sessions_.at(slot);
  s.handing_over = true;
  ++quiescing_;
  timers_.cancel(s.idle_timer);
  for (auto& dd : s.dirs) {
    // A paused or starved direction must not be re-armed by anyone now; the pause is balanced
    // here (as abort_session does) and counted again by the importer if still needed there.
    if (dd.paused) {
      dd.paused = false;
      gateway_stats_[s.gateway].add(GatewayStat::reads_resumed_total);
    }
    dd.starved = false;  // its entry in starved_ is skipped once the slot is freed
  }
  // Every op on either socket, splice polls included (the same sets abort_session() cancels).
  const auto [downstream_busy, upstream_busy] = busy_sockets(s);
  for (const auto& [busy, fd] :
       {std::pair{downstream_busy, s.downstream_fd}, std::pair{upstream_busy, s.upstream_fd}}) {
    if (!busy || fd < 0) continue;
    io_uring_sqe* c = sqe(tag(Op::Cancel, slot, s.generation));
    if (c == nullptr) {
      // No room to cancel: this session cannot reach a quiet point now. It stays here and is
      // drained with the rest (never dropped).
      s.handing_over = false;
      --quiescing_;
      log::warning("worker {}: io_uring refused a cancel; session kept by this process", index_);
      return;
    }
    io_uring_prep_cancel_fd(c, fd, IORING_ASYNC_CANCEL_ALL);
    ++s.inflight;
  }
  // A session waiting for a descriptor has nothing in flight: it leaves as a connecting one.
  timers_.cancel(s.retry_timer);
  if (s.waiting_descriptor) {
    s.waiting_descriptor = false;
    --waiting_descriptor_;
  }
  if (s.inflight == 0) export_session(slot);
}

void Worker::on_handover_completion(const Tag& t, int res, uint32_t flags) {
  const uint32_t slot = t.slot;
  const Op op = t.op;
  const Dir d = t.dir;
  Session& s = sessions_.at(slot);
  Direction& dd = s.dir(d);
  // A multishot watch that stays armed: its final completion comes with the cancel.
  if (op == Op::Watch && (flags & IORING_CQE_F_MORE) != 0) return;
  --s.inflight;
  int error = 0;  // a socket error seen while quiescing: the session ends here instead
  bool downstream_side = false;
  switch (op) {
    case Op::Recv: {
      dd.recv_armed = false;
      if (take_recv_buffers(&dd, res, flags, t.aux) > 0) {
        dd.bytes_received += static_cast<uint64_t>(res);
        if (d == Dir::DownToUp) {
          gateway_stats_[s.gateway].add(GatewayStat::downstream_bytes_received_total, res);
        }
      } else {
        if (res == 0) {
          dd.eof = true;
        } else if (res != -ECANCELED && res != -EINTR && res != -EAGAIN && res != -ENOBUFS) {
          error = -res;
          downstream_side = d == Dir::DownToUp;
        }
      }
      break;
    }
    case Op::Send: {
      dd.send_inflight = false;
      if (res > 0) {
        release_sent(s, d, static_cast<uint32_t>(res));
      } else if (res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
        error = res < 0 ? -res : EPIPE;
        downstream_side = d == Dir::UpToDown;
      }
      break;
    }
    case Op::Watch:
      dd.watch_armed = false;  // an error it saw is seen again by the importer's recv
      break;
    case Op::SpliceIn:
      dd.src_poll_armed = false;  // readiness only: the importer reads what is waiting
      break;
    case Op::SpliceOut:
      dd.dst_poll_armed = false;
      break;
    case Op::Preamble:
      s.preamble_armed = false;  // the importer peeks again
      break;
    case Op::Connect:
      --s.connect_pending;
      s.connect_res = res;
      break;
    case Op::ConnectTimeout:
      --s.connect_pending;
      break;
    default:  // Op::Cancel
      break;
  }
  if (error != 0 && s.state == SessionState::Established) {
    // The peer reset (or the socket failed) under our feet: end it here exactly as the normal
    // path would (RST passed on); the remaining completions find it Closing.
    s.handing_over = false;
    --quiescing_;
    on_side_error(slot, downstream_side, error);
    return;
  }
  if (s.inflight == 0) export_session(slot);
}

// Everything the session holds in this worker is released as finish() would, except that its
// fds are not closed: they leave with the export record.
void Worker::export_session(uint32_t slot) {
  Session& s = sessions_.at(slot);
  SessionExport e;
  e.worker = index_;
  e.gateway = shared_.gateway_ids[s.gateway];
  e.downstream_fd = s.downstream_fd;
  e.accepted_wall_ns = s.accepted_wall_ns;
  if (s.proxied) {
    // The PROXY header was consumed here: the real client travels with the session.
    e.proxied = true;
    e.client_source = proxied_[slot].source;
    e.client_destination = proxied_[slot].destination;
  }
  reset_rcvlowat(s);  // a session in the pre-connect phase: the importer peeks afresh
  if (s.upstream_fd >= 0)
    upstream_stats_[s.upstream].add(UpstreamStat::upstream_connections_active, -1);
  if (s.host_counted) pickers_[s.upstream].on_end(s.host);
  if (s.state == SessionState::Established) {
    e.upstream_fd = s.upstream_fd;
    e.upstream = shared_.upstream_ids[s.upstream];
    e.host = shared_.upstreams[s.upstream].hosts[s.host];
    e.attempts = s.attempts;
    for (int i = 0; i < 2; ++i) {
      Direction& dd = s.dirs[i];
      DirectionExport& de = e.dirs[i];
      de.pending.reserve(dd.queued_bytes + dd.pipe_bytes);
      if (dd.queued_count > 0) --holders_;
      while (dd.queued_count > 0) {
        const uint32_t bid = dd.head;
        const uint8_t* data = pool_->data(static_cast<uint16_t>(bid));
        de.pending.append(reinterpret_cast<const char*>(data) + dd.head_offset,
                          queues_->len(bid) - dd.head_offset);
        pool_->recycle(queues_->pop(dd));
      }
      if (dd.forwarding == Forwarding::Splice) {
        // A splicing direction's pending bytes are in its pipe (its FIFO is empty: it switched
        // only once that had drained). Read them out: exactly pipe_bytes are there, so the
        // blocking read cannot wait. They travel as plain pending bytes; the importer copies.
        size_t got = 0;
        std::string bytes(dd.pipe_bytes, '\0');
        while (got < bytes.size()) {
          const ssize_t n = ::read(dd.pipe_read, bytes.data() + got, bytes.size() - got);
          if (n <= 0) break;
          got += static_cast<size_t>(n);
        }
        de.pending.append(bytes.data(), got);
        dd.pipe_bytes -= static_cast<uint32_t>(got);
        stop_splice(dd);
      }
      de.eof = dd.eof;
      de.shut = dd.shut;
      de.bytes_received = dd.bytes_received;
      de.bytes_sent = dd.bytes_sent;
    }
  } else if (s.upstream_fd >= 0) {
    // Still connecting: the connect is abandoned; the importer connects anew.
    ::close(s.upstream_fd);
  }
  gateway_stats_[s.gateway].add(GatewayStat::downstream_connections_active, -1);
  if (s.limit_counted) shared_.gateway_active[s.gateway].fetch_sub(1, std::memory_order_relaxed);
  if (s.circuit_counted) {
    shared_.upstream_sessions[s.upstream].fetch_sub(1, std::memory_order_relaxed);
  }
  timers_.cancel(s.idle_timer);
  exported_.push_back(std::move(e));
  sessions_.free(slot);
  --quiescing_;
}

void Worker::export_fresh(uint32_t gateway, int fd) {
  SessionExport e;
  e.worker = index_;
  e.gateway = shared_.gateway_ids[gateway];
  e.downstream_fd = fd;
  e.accepted_wall_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  gateway_stats_[gateway].add(GatewayStat::downstream_connections_total);
  exported_.push_back(std::move(e));
}

// The answer goes out once every session is exported and no accept is in flight any more (an
// accept completing late still becomes a fresh export, so it must come before the answer).
void Worker::maybe_deliver_handover() {
  if (!handover_ || quiescing_ > 0 || worker_ops_ > 0) return;
  std::shared_ptr<HandoverRequest> request = std::move(handover_);
  handover_.reset();
  std::lock_guard lock(request->mu);
  for (auto& e : exported_)
    request->sessions.push_back(std::move(e));
  exported_.clear();
  --request->remaining;
  request->cv.notify_all();
}

// ---- import -------------------------------------------------------------------------------

void Worker::import_sessions(std::vector<SessionExport>& imports) {
  for (auto& e : imports) {
    if (e.upstream_fd < 0) {
      const uint32_t g = find_id(shared_.gateway_ids, e.gateway);
      if (g == UINT32_MAX || stopping_) {
        // Its gateway is gone from the config: there is nowhere to forward it.
        log::warning("worker {}: connection for gateway {} (no longer configured) closed", index_,
                     e.gateway);
        ::close(e.downstream_fd);
      } else {
        gateway_stats_[g].add(GatewayStat::downstream_connections_total, -1);  // counted at export
        on_new_connection(g, e.downstream_fd, &e);
      }
      e.downstream_fd = -1;
      continue;
    }
    import_established(e);
  }
  imports.clear();
}

void Worker::import_established(SessionExport& e) {
  const auto& config = *shared_.config;
  const uint32_t slot = sessions_.alloc();
  if (slot == UINT32_MAX || e.dirs[0].pipe_fd >= 0 || e.dirs[1].pipe_fd >= 0) {
    log::error("worker {}: cannot take over a session of gateway {} ({}); it is reset", index_,
               e.gateway, slot == UINT32_MAX ? "session table full" : "pipe state unsupported");
    if (slot != UINT32_MAX) sessions_.free(slot);
    // Reset, not FIN: the peers must not take a cut stream for a complete one.
    const linger rst{1, 0};
    for (int fd : {e.downstream_fd, e.upstream_fd})
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
    std::vector<SessionExport> one;
    one.push_back(std::move(e));
    close_fds(one);
    return;
  }
  Session& s = sessions_.at(slot);
  s.state = SessionState::Established;
  // A gateway or upstream that left the config: the session keeps its sockets (the upstream
  // connection is what matters) and is counted under the first gateway / the gateway's upstream.
  uint32_t g = find_id(shared_.gateway_ids, e.gateway);
  if (g == UINT32_MAX) g = 0;
  const auto& gw = config.gateways[g];
  uint32_t u = find_id(shared_.upstream_ids, e.upstream);
  if (u == UINT32_MAX) {
    u = static_cast<uint32_t>(gw.tcp_hosts.empty() ? 0 : gw.tcp_hosts[0].upstream_index);
  }
  s.gateway = g;
  s.upstream = u;
  s.downstream_fd = e.downstream_fd;
  s.upstream_fd = e.upstream_fd;
  e.downstream_fd = e.upstream_fd = -1;
  s.accepted_ms = s.last_activity_ms = now_ms_;
  s.accepted_wall_ns = e.accepted_wall_ns;
  const auto& hosts = shared_.upstreams[u].hosts;
  for (uint32_t h = 0; h < hosts.size(); ++h) {
    if (!same_address(hosts[h], e.host)) continue;
    s.host = h;
    s.attempts = std::max<uint8_t>(1, e.attempts);
    s.host_counted = true;
    pickers_[u].on_start(h);
    break;
  }
  if (shared_.sink) {
    if (downstream_peers_.size() <= slot) downstream_peers_.resize(slot + 1);
    auto peer = net::SocketAddress::peer_of(s.downstream_fd);
    downstream_peers_[slot] = peer ? *peer : net::SocketAddress{};
  }
  if (e.proxied) record_proxied(slot, e.client_source, e.client_destination);
  gateway_stats_[g].add(GatewayStat::downstream_connections_active, 1);
  upstream_stats_[u].add(UpstreamStat::upstream_connections_active, 1);
  // Limits count taken-over sessions, but never refuse one: it is already open.
  if (gw.max_active_connections) {
    shared_.gateway_active[g].fetch_add(1, std::memory_order_relaxed);
    s.limit_counted = true;
  }
  shared_.upstream_sessions[u].fetch_add(1, std::memory_order_relaxed);
  s.circuit_counted = true;

  // Backpressure limits from the new config, as on_new_connection() sets them.
  const auto& up = config.upstreams[u];
  const uint64_t limits[2] = {up.per_connection_buffer_limit_bytes,
                              gw.per_connection_buffer_limit_bytes};
  const uint32_t size = pool_->buffer_size();
  const config::SpliceMode mode = shared_.forced_splice_mode.value_or(gw.tcp_proxy.splice_mode);
  for (int d = 0; d < 2; ++d) {
    Direction& dd = s.dirs[d];
    const DirectionExport& de = e.dirs[d];
    // In 64 bits and capped at the pool, as on_new_connection() computes it.
    dd.pause_at = static_cast<uint32_t>(
        std::clamp<uint64_t>((limits[d] + size - 1) / size, 1, pool_->count()));
    dd.resume_at = dd.pause_at / 4;
    // Taken-over sessions copy first; AUTO moves a direction to splice on its next burst.
    dd.auto_splice = mode != config::SpliceMode::Never &&
                     static_cast<uint64_t>(dd.pause_at) * size >= PipePool::kPipeBytes;
    dd.eof = de.eof;
    dd.shut = de.shut;
    dd.bytes_received = de.bytes_received;
    dd.bytes_sent = de.bytes_sent;
    for (size_t off = 0; off < de.pending.size();) {
      const int32_t bid = pool_->take();
      if (bid < 0) {
        log::error("worker {}: buffer pool exhausted while taking over a session; it is reset",
                   index_);
        abort_session(slot, EndReason::InternalError, true, true);
        return;
      }
      const size_t n = std::min<size_t>(size, de.pending.size() - off);
      std::memcpy(pool_->data(static_cast<uint16_t>(bid)), de.pending.data() + off, n);
      if (dd.queued_count == 0) ++holders_;
      queues_->push(dd, static_cast<uint16_t>(bid), static_cast<uint32_t>(n));
      off += n;
    }
  }
  const int64_t idle_ms = gw.tcp_proxy.idle_timeout.count();
  if (idle_ms > 0) schedule_idle(slot, now_ms_ + idle_ms);
  // Pending bytes go out first; reading resumes where the old process stopped.
  for (Dir d : {Dir::DownToUp, Dir::UpToDown}) {
    if (s.state != SessionState::Established) return;
    Direction& dd = s.dir(d);
    if (!dd.eof) {
      if (dd.queued_count >= dd.pause_at) {
        dd.paused = true;
        gateway_stats_[g].add(GatewayStat::reads_paused_total);
        arm_watch(slot, d);
      } else {
        arm_recv(slot, d);
      }
    }
    if (s.state != SessionState::Established) return;
    start_send(slot, d);
    if (s.state != SessionState::Established) return;
    maybe_forward_fin(slot, d);
  }
}

// ---- listeners ----------------------------------------------------------------------------

// The handover failed: this process keeps serving. Its listeners stayed open (unarmed), so
// nothing was refused meanwhile; connections that queued while no accept was armed are taken
// at once by the first accept.
void Worker::resume_accepting() {
  if (!handing_over_) return;
  handing_over_ = false;
  if (!exported_.empty()) {
    // Only if this worker answered after hand_over() gave up waiting (wedged for a second):
    // these sessions never left, so they resume here rather than be lost with their fds.
    std::vector<SessionExport> back;
    back.swap(exported_);
    import_sessions(back);
  }
  for (uint32_t i = 0; i < listeners_.size(); ++i)
    settle_listener(i);
  // Health checks stopped with the export; this process goes on checking.
  if (!draining_ && checks_stopped_) start_health_checks();
  // The failed process was killed, but its ring is torn down asynchronously: for a moment its
  // accept polls may still sit on our listen sockets and swallow wake-ups (see
  // retire_listeners). Watch the queues until that is surely over.
  watch_accept_queues(kAcceptWatchMs);
  log::info("worker {}: handover failed; accepting again", index_);
}

// A connection can wait in an accept queue with an accept armed and nobody woken for it when
// the one exclusive wake-up went to another process's accept that then went away. For a
// while after a handover, each tick looks at every armed listener's queue (TCP_INFO on a
// listen socket reports its length in tcpi_unacked); a queue that was non-empty at two checks
// in a row with no accept completing in between is stranded, and re-arming the accept takes it.
void Worker::watch_accept_queues(int64_t for_ms) {
  accept_watch_until_ms_ = std::max(accept_watch_until_ms_, now_ms_ + for_ms);
  if (accept_watch_armed_) return;
  accept_watch_armed_ = true;
  timers_.insert(tick_at(now_ms_ + kTickMs), static_cast<uint64_t>(TimerKind::AcceptWatch) << 56);
}

void Worker::check_accept_queues() {
  for (uint32_t i = 0; i < listeners_.size(); ++i) {
    Listener& l = listeners_[i];
    if (l.fd < 0 || !l.armed || l.cancelling || l.paused || l.retire_now) {
      l.queue_seen = false;
      continue;
    }
    tcp_info info{};
    socklen_t len = sizeof(info);
    if (::getsockopt(l.fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) continue;
    bool queued = info.tcpi_unacked > 0;
    if (queued && l.queue_seen && l.accepted == l.accepted_at_check) {
      log::info(
          "worker {}: {} connections waited in the accept queue of {} with no wake-up; "
          "accepting them now",
          index_, info.tcpi_unacked, l.address.to_string());
      worker_stats_.add(WorkerStat::accept_rearms_total);
      cancel_accept(i);  // on_accept/settle_listener arm it again, which accepts at once
      queued = false;
    }
    l.queue_seen = queued;
    l.accepted_at_check = l.accepted;
  }
  if (now_ms_ < accept_watch_until_ms_) watch_accept_queues(0);
}

void Worker::retire_listeners() {
  for (uint32_t i = 0; i < listeners_.size(); ++i) {
    Listener& l = listeners_[i];
    if (!l.retiring && l.fd >= 0 && l.armed && !l.cancelling) {
      // A listen socket we share with the previous process: both rings waited on it, and the
      // kernel wakes only ONE waiter per connection for an accept (io_uring arms accept polls
      // exclusive). A wake-up that went to the previous process's accept just before it was
      // cancelled left that connection in the queue with nobody woken for it; it waited for the
      // next connection to arrive (seen in the reload test: one connection in ~3 runs sat in the
      // queue, Recv-Q 1 on the listener, until the client gave up). The previous process has
      // cancelled every accept by now (it sends the sessions only after), so cancelling ours and
      // arming it again makes the kernel try an accept at once and take whatever is queued.
      cancel_accept(i);
      watch_accept_queues(kAcceptWatchMs);
      continue;
    }
    if (!l.retiring || l.fd < 0) continue;
    l.retire_now = true;
    if (l.paused) {
      timers_.cancel(l.resume_timer);
      l.paused = false;
    }
    if (l.armed && !l.cancelling) cancel_accept(i);
    settle_listener(i);
  }
}

// No accept is in flight on it: take every connection already queued (closing the socket
// would reset them), then close. Connections that land in its queue between the last accept
// and close() are reset unless net.ipv4.tcp_migrate_req=1 moves them to the replacement.
void Worker::retire_listener(uint32_t li) {
  Listener& l = listeners_[li];
  const int flags = ::fcntl(l.fd, F_GETFL);
  if (flags >= 0) ::fcntl(l.fd, F_SETFL, flags | O_NONBLOCK);
  uint32_t taken = 0;
  for (;;) {
    const int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;
    }
    ++taken;
    if (stopping_ || draining_) {
      ::close(fd);
    } else {
      on_new_connection(l.gateway, fd);
    }
  }
  ::close(l.fd);
  l.fd = -1;
  log::info("worker {}: retired a listener of gateway {} on {} ({} queued connections taken)",
            index_, shared_.gateway_ids[l.gateway], l.address.to_string(), taken);
}

}  // namespace ringway::engine
