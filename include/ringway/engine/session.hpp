// A session's state (two directions of forwarding between a downstream and an upstream socket)
// and the per-worker table of session slots. Slots are addressed by index + generation (the
// user_data tag), never by pointer; a slot is reused only after its generation is bumped, which
// happens only when no op of the session is in flight. Sessions live in fixed-size chunks, so
// their addresses never move: a msghdr handed to the kernel stays valid.
#pragma once

#include <linux/time_types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "ringway/engine/session_record.hpp"
#include "ringway/engine/timer_wheel.hpp"
#include "ringway/engine/user_data.hpp"

namespace ringway::engine {

inline constexpr uint32_t kNoBuffer = UINT32_MAX;
// Buffers gathered into one sendmsg: 16 x 32 KiB = 512 KiB per send, enough to amortise the
// call; more would grow every session's state for little gain.
inline constexpr uint32_t kMaxSendIov = 16;

// How a direction moves its bytes right now (config::SpliceMode says which it may use):
// Copy: recv into the worker's buffer pool, send from it (forward_copy.cpp);
// Splice: socket -> pipe -> socket with splice(2), bytes never enter user space
// (forward_splice.cpp).
enum class Forwarding : uint8_t { Copy, Splice };

// One way of a session: bytes received from `src` wait until `dst` took them, in a FIFO of pool
// buffers (copy) or in a pipe (splice).
struct Direction {
  // FIFO of buffer ids, linked through the worker's per-buffer table (BufferQueues).
  uint32_t head = kNoBuffer;
  uint32_t tail = kNoBuffer;
  uint32_t queued_count = 0;
  uint32_t queued_bytes = 0;
  uint32_t head_offset = 0;  // bytes of the head buffer already sent (after a short send)
  // Backpressure, in buffers (each holds up to BufferPool::kSize bytes): stop receiving at
  // pause_at queued buffers, resume at resume_at or fewer.
  uint32_t pause_at = 1;
  uint32_t resume_at = 0;
  bool recv_armed = false;
  bool send_inflight = false;
  bool eof = false;            // src sent FIN (recv returned 0)
  bool shut = false;           // FIN forwarded: shutdown(dst, SHUT_WR) done
  bool paused = false;         // recv not re-armed: queue at its limit
  bool starved = false;        // recv got -ENOBUFS; waiting in the worker's FIFO for a buffer
  bool watch_armed = false;    // a poll watches src for an error while no recv is armed
  bool watch_saw_fin = false;  // the watch reported FIN: re-armed for errors only (no POLLRDHUP)
  bool src_nonempty = false;   // the last recv left data in src (IORING_CQE_F_SOCK_NONEMPTY)
  // Splice (forward_splice.cpp).
  Forwarding forwarding = Forwarding::Copy;
  bool auto_splice = false;     // spliceMode AUTO: switches either way with the traffic
  bool splice_wanted = false;   // copy saw a burst: switch once the FIFO has drained
  bool src_poll_armed = false;  // a POLLIN poll on src is in flight
  bool dst_poll_armed = false;  // a POLLOUT poll on dst is in flight
  uint8_t small_reads = 0;      // consecutive small splices (AUTO goes back to copy)
  int pipe_read = -1;
  int pipe_write = -1;
  uint32_t pipe_bytes = 0;  // read from src into the pipe, not yet written to dst
  uint32_t send_bytes = 0;
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  msghdr msg{};  // for sendmsg; lives here until the send's completion
  iovec iov[kMaxSendIov]{};
};

enum class SessionState : uint8_t {
  Free,
  Connecting,   // downstream accepted, upstream connect (+ link timeout) in flight
  Established,  // both directions forwarding
  Closing,      // ended; waiting for every in-flight op to complete before closing the fds
};

struct Session {
  uint16_t generation = 0;
  SessionState state = SessionState::Free;
  uint32_t gateway = 0;
  uint32_t tcp_host = 0;  // index into the gateway's tcpHosts, chosen before the upstream
  uint32_t upstream = 0;
  uint32_t host = 0;
  bool host_counted = false;     // balancer.on_start() done for `host` (undo on close)
  bool limit_counted = false;    // counted against the gateway's maxActiveConnections
  bool circuit_counted = false;  // counted against the upstream's maxConnections
  uint8_t connect_pending = 0;   // CQEs still expected for the connect + link timeout pair
  uint32_t attempts =
      0;  // as wide as maxConnectAttempts: a narrower counter wraps and retries forever
  bool nonblocking = false;     // both sockets O_NONBLOCK (set when a direction first splices)
  bool rst_downstream = false;  // close with SO_LINGER{1,0}: the peer sees RST, not FIN
  bool rst_upstream = false;
  bool handing_over = false;  // being brought to a quiet point for export (handover.cpp)
  // Pre-connect read phase (worker_preamble.cpp, state Connecting): the PROXY header and/or the
  // TLS ClientHello are read from the downstream before the tcpHost is chosen.
  bool preamble = false;
  bool preamble_armed = false;  // its readiness poll on the downstream is in flight
  bool rcvlowat_set = false;    // SO_RCVLOWAT raised on the downstream (reset before forwarding)
  bool proxied = false;  // a PROXY header named the real client: Worker::proxied_[slot] holds it
  EndReason reason = EndReason::Normal;
  int downstream_fd = -1;
  int upstream_fd = -1;
  uint32_t inflight = 0;  // ops submitted and not yet completed; the slot is freed only at 0
  int connect_res = 0;
  int timeout_res = 0;
  __kernel_timespec connect_timeout{};  // read by the kernel when the link timeout is submitted
  int64_t accepted_ms = 0;              // worker clock
  int64_t last_activity_ms = 0;         // worker clock, updated on every data completion
  int64_t accepted_wall_ns = 0;         // only when a session sink is set
  TimerId idle_timer;
  TimerId retry_timer;              // Connecting: waiting for a descriptor to try the connect again
  bool waiting_descriptor = false;  // counted in Worker::waiting_descriptor_
  Direction dirs[2];
  uint32_t next_free = UINT32_MAX;

  Direction& dir(Dir d) { return dirs[index_of(d)]; }
  int src_fd(Dir d) const { return d == Dir::DownToUp ? downstream_fd : upstream_fd; }
  int dst_fd(Dir d) const { return d == Dir::DownToUp ? upstream_fd : downstream_fd; }
};

class SessionTable {
 public:
  static constexpr uint32_t kChunk = 1024;

  explicit SessionTable(uint32_t max_sessions) : max_(max_sessions) {}

  // A free slot (state still Free: the caller sets it up), or UINT32_MAX when the table is full.
  uint32_t alloc();
  // Bumps the generation (tags of this incarnation no longer match) and recycles the slot.
  void free(uint32_t slot);
  Session& at(uint32_t slot) { return chunks_[slot / kChunk][slot % kChunk]; }
  // The session for a completion's tag, or nullptr when the slot was freed or reused since.
  Session* find(uint32_t slot, uint16_t generation) {
    if (slot >= allocated_) return nullptr;
    Session& s = at(slot);
    if (s.state == SessionState::Free || s.generation != generation) return nullptr;
    return &s;
  }
  uint32_t live() const { return live_; }
  uint32_t high_water() const { return allocated_; }  // slots ever used: iterate [0, this)

 private:
  uint32_t max_;
  uint32_t allocated_ = 0;
  uint32_t live_ = 0;
  uint32_t free_head_ = UINT32_MAX;
  std::vector<std::unique_ptr<Session[]>> chunks_;
};

// The FIFO links of the buffers queued in directions: a buffer is in at most one queue at a
// time, so one next/len pair per buffer id serves every session of the worker.
class BufferQueues {
 public:
  explicit BufferQueues(uint32_t buffers) : next_(buffers, kNoBuffer), len_(buffers, 0) {}

  void push(Direction& d, uint16_t bid, uint32_t len) {
    next_[bid] = kNoBuffer;
    len_[bid] = len;
    if (d.tail == kNoBuffer) {
      d.head = bid;
    } else {
      next_[d.tail] = bid;
    }
    d.tail = bid;
    ++d.queued_count;
    d.queued_bytes += len;
  }
  // Removes the head buffer and returns its id.
  uint16_t pop(Direction& d) {
    const auto bid = static_cast<uint16_t>(d.head);
    d.queued_bytes -= len_[bid] - d.head_offset;
    d.head_offset = 0;
    d.head = next_[bid];
    if (d.head == kNoBuffer) d.tail = kNoBuffer;
    --d.queued_count;
    return bid;
  }
  uint32_t next(uint32_t bid) const { return next_[bid]; }
  uint32_t len(uint32_t bid) const { return len_[bid]; }

 private:
  std::vector<uint32_t> next_;
  std::vector<uint32_t> len_;
};

}  // namespace ringway::engine
