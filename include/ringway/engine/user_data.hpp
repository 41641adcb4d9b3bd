// The 64-bit io_uring user_data tag: which session slot (and which incarnation of it) an
// operation belongs to, what the operation was and, for data ops, which direction. Completions are
// decoded here and nowhere else; no raw pointer ever travels through the kernel, so a completion
// that arrives after its session is gone can be recognised (generation mismatch) and dropped.
#pragma once

#include <cstdint>

namespace ringway::engine {

// Every kind of operation a worker submits. Session ops carry the session's slot and generation;
// worker ops (accept, wake-up) carry a listener index or nothing in the slot field.
enum class Op : uint8_t {
  Wake = 1,            // read on the worker's eventfd (commands from other threads)
  Accept = 2,          // multishot accept; slot = listener index
  AcceptCancel = 3,    // cancel of a multishot accept (drain or back-off); slot = listener index
  Connect = 4,         // upstream connect, linked to ...
  ConnectTimeout = 5,  // ... its LINK_TIMEOUT (connectTimeout)
  Recv = 6,            // recv with provided buffers: one-shot (aux 0) or a bundle (aux = cap)
  Send = 7,            // send / sendmsg of queued buffers
  Cancel = 8,          // cancel of every op on one of the session's fds (abort)
  Test = 9,            // unit tests' own operations
  Watch = 10,          // poll for RST/error on a source whose recv is not armed
  SpliceIn = 11,       // splice mode: POLLIN poll on the source (then splice(2) into the pipe)
  SpliceOut = 12,      // splice mode: POLLOUT poll on the destination (then splice out of it)
  // Active health checks: slot = checker index, generation = the check (worker_health.cpp).
  CheckConnect = 13,
  CheckSend = 14,
  CheckRecv = 15,
  CheckCancel = 16,  // cancel of a check's ops at its timeout or when the worker stops
  Preamble = 17,     // pre-connect phase: POLLIN poll on the downstream (then recv MSG_PEEK)
};

// Direction of a data op: what flows from which socket to which.
enum class Dir : uint8_t {
  DownToUp = 0,  // read downstream, write upstream
  UpToDown = 1,  // read upstream, write downstream
};

// Layout: slot:32 | generation:16 | aux:7 | dir:1 | op:8. The generation is 16 bits: a slot has
// to be reused 65,536 times while one stale completion is still queued for a mismatch to be
// missed, and the in-flight counting rule (a slot is freed only with 0 ops in flight) makes stale
// completions a should-never-happen safety net anyway. `aux` travels with ops that need to know
// at completion how they were submitted: a Recv's bundle cap in buffers (0 = one-shot recv), so
// that the pool's accounting of what recvs in flight may take is undone exactly even for a
// completion whose session is gone.
struct Tag {
  static constexpr uint32_t kAuxMax = 0x7F;
  uint32_t slot = 0;
  uint16_t generation = 0;
  Op op = Op::Wake;
  Dir dir = Dir::DownToUp;
  uint8_t aux = 0;  // 0..kAuxMax

  constexpr uint64_t encode() const {
    return (static_cast<uint64_t>(slot) << 32) | (static_cast<uint64_t>(generation) << 16) |
           (static_cast<uint64_t>(aux & kAuxMax) << 9) | (static_cast<uint64_t>(dir) << 8) |
           static_cast<uint64_t>(op);
  }
  static constexpr Tag decode(uint64_t v) {
    Tag t;
    t.slot = static_cast<uint32_t>(v >> 32);
    t.generation = static_cast<uint16_t>(v >> 16);
    t.dir = static_cast<Dir>((v >> 8) & 1U);
    t.aux = static_cast<uint8_t>((v >> 9) & kAuxMax);
    t.op = static_cast<Op>(v & 0xFFU);
    return t;
  }
};

constexpr uint64_t tag(Op op, uint32_t slot = 0, uint16_t generation = 0, Dir dir = Dir::DownToUp,
                       uint8_t aux = 0) {
  return Tag{slot, generation, op, dir, aux}.encode();
}

constexpr int index_of(Dir d) {
  return static_cast<int>(d);
}
constexpr Dir other(Dir d) {
  return d == Dir::DownToUp ? Dir::UpToDown : Dir::DownToUp;
}

}  // namespace ringway::engine
