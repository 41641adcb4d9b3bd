// io_uring set-up with the engine's flags, the once-per-start feature probe, and the SQE/wait
// helpers every worker uses (see ring.hpp for the contract).
#include "ringway/engine/ring.hpp"

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace ringway::engine {
namespace {

// Opcodes a worker submits; a kernel lacking any of them cannot run the engine.
struct RequiredOp {
  int op;
  const char* name;
};
constexpr RequiredOp kRequiredOps[] = {
    {IORING_OP_ACCEPT, "ACCEPT"},
    {IORING_OP_CONNECT, "CONNECT"},
    {IORING_OP_LINK_TIMEOUT, "LINK_TIMEOUT"},
    {IORING_OP_RECV, "RECV"},
    {IORING_OP_SEND, "SEND"},
    {IORING_OP_SENDMSG, "SENDMSG"},
    {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
    {IORING_OP_READ, "READ"},
};

Error unavailable(int code) {
  if (code == EPERM) {
    return system_error(
        code,
        "io_uring is unavailable (io_uring_setup refused): it is disabled by the sysctl "
        "kernel.io_uring_disabled (set it to 0, or to 1 and add this user's group to "
        "kernel.io_uring_group) or blocked by a seccomp filter such as Docker's default profile "
        "(run with a seccomp profile that allows io_uring_setup, io_uring_enter and "
        "io_uring_register)");
  }
  if (code == ENOSYS) {
    return system_error(code,
                        "io_uring is unavailable (io_uring_setup does not exist): the kernel is "
                        "built without CONFIG_IO_URING or a seccomp filter hides the system call; "
                        "Ringway needs Linux 6.1 or later with io_uring enabled");
  }
  if (code == ENOMEM) {
    return system_error(code,
                        "io_uring set-up failed: not enough locked memory for the rings (raise "
                        "RLIMIT_MEMLOCK, e.g. LimitMEMLOCK= in the systemd unit)");
  }
  return system_error(code, "io_uring set-up failed");
}

// Registers a tiny provided-buffer ring and removes it again: the only reliable check that the
// kernel has IORING_REGISTER_PBUF_RING (5.19), which liburing 2.3 cannot probe otherwise.
bool can_register_buf_ring(io_uring* ring) {
  constexpr unsigned kEntries = 8;
  const size_t bytes = 4096;  // one page holds 8 * sizeof(io_uring_buf)
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return false;
  auto* br = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br);
  reg.ring_entries = kEntries;
  reg.bgid = 0x7ff;
  const bool ok = io_uring_register_buf_ring(ring, &reg, 0) == 0;
  if (ok) io_uring_unregister_buf_ring(ring, reg.bgid);
  munmap(mem, bytes);
  return ok;
}

// The bundle trial: a recv with IORING_RECVSEND_BUNDLE on a socketpair, selecting from a small
// provided-buffer ring whose buffer ids are deliberately not in ring order. It passes when one
// completion filled more than one buffer, names the first buffer offered, and the bytes sit in
// the ring's following buffers in order: what forward_recv.cpp relies on. Sets f.recv_bundle
// and f.recv_bundle_capped (see Features). Any failure leaves the one-shot path in use.
void probe_recv_bundle(io_uring* ring, Features& f) {
  constexpr unsigned kEntries = 8;
  constexpr unsigned kBufSize = 64;
  constexpr uint16_t kGroup = 0x7fe;
  constexpr uint16_t kOrder[kEntries] = {5, 2, 7, 0, 3, 6, 1, 4};  // ring position -> bid
  constexpr unsigned kCap = 3;     // buffers the recv may take (sqe->len)
  constexpr unsigned kSent = 200;  // > kCap buffers: more data waits behind the cap
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t bytes = page + kEntries * kBufSize;
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;
  auto* br = static_cast<io_uring_buf_ring*>(mem);
  auto* data = static_cast<uint8_t*>(mem) + page;
  io_uring_buf_ring_init(br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br);
  reg.ring_entries = kEntries;
  reg.bgid = kGroup;
  int fds[2] = {-1, -1};
  if (io_uring_register_buf_ring(ring, &reg, 0) != 0) {
    munmap(mem, bytes);
    return;
  }
  const int mask = io_uring_buf_ring_mask(kEntries);
  for (unsigned i = 0; i < kEntries; ++i) {
    io_uring_buf_ring_add(br, data + kOrder[i] * kBufSize, kBufSize, kOrder[i], mask,
                          static_cast<int>(i));
  }
  io_uring_buf_ring_advance(br, kEntries);
  // The trial itself; returns the bytes one bundle recv delivered in order, or -1.
  auto trial = [&]() -> int {
    uint8_t sent[kSent];
    for (unsigned i = 0; i < kSent; ++i)
      sent[i] = static_cast<uint8_t>(i * 7 + 1);
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return -1;
    if (::send(fds[0], sent, kSent, MSG_NOSIGNAL) != static_cast<ssize_t>(kSent)) return -1;
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    if (sqe == nullptr) return -1;
    io_uring_prep_recv(sqe, fds[1], nullptr, bundle_recv_len(kCap, kBufSize), 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kGroup;
    sqe->ioprio |= kRecvSendBundle;
    sqe->user_data = 0;
    io_uring_cqe* cqe = nullptr;
    if (io_uring_submit_and_wait(ring, 1) < 1 || io_uring_peek_cqe(ring, &cqe) != 0) return -1;
    const int res = cqe->res;
    const uint32_t flags = cqe->flags;
    io_uring_cqe_seen(ring, cqe);
    // One buffer or less proves nothing: an old kernel that ignored the flag looks the same.
    if (res <= static_cast<int>(kBufSize) || res > static_cast<int>(kSent)) return -1;
    if ((flags & IORING_CQE_F_BUFFER) == 0) return -1;
    if ((flags >> IORING_CQE_BUFFER_SHIFT) != kOrder[0]) return -1;
    for (int off = 0; off < res; ++off) {
      const auto o = static_cast<unsigned>(off);
      if (data[kOrder[o / kBufSize] * kBufSize + o % kBufSize] != sent[o]) return -1;
    }
    return res;
  };
  if (const int got = trial(); got > 0) {
    f.recv_bundle = true;
    f.recv_bundle_capped = got <= static_cast<int>(kCap * kBufSize);
  }
  if (fds[0] >= 0) ::close(fds[0]);
  if (fds[1] >= 0) ::close(fds[1]);
  io_uring_unregister_buf_ring(ring, kGroup);
  munmap(mem, bytes);
}

}  // namespace

std::string Features::describe() const {
  std::string out;
  auto add = [&out](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += ' ';
    out += name;
  };
  add(single_issuer, "single_issuer");
  add(defer_taskrun, "defer_taskrun");
  add(coop_taskrun, "coop_taskrun");
  add(ext_arg, "ext_arg");
  add(multishot_accept, "multishot_accept");
  add(provided_buffer_ring, "provided_buffer_ring");
  add(recvsend_bundle, "recvsend_bundle");
  add(recv_bundle, recv_bundle_capped ? "recv_bundle(capped)" : "recv_bundle(uncapped)");
  add(true, recv_mode == RecvMode::Bundle ? "recv=bundle" : "recv=oneshot");
  return out;
}

Result<std::unique_ptr<Ring>> Ring::create(RingSize size) {
  std::unique_ptr<Ring> r(new Ring());
  io_uring_params p{};
  // CQSIZE: the CQ is sized independently of the SQ (see RingSize), so bursts of completions
  //   from many sessions do not overflow it.
  // SUBMIT_ALL: keep submitting the rest of a batch when one SQE fails at submission time, so one
  //   bad op never silently drops its neighbours (each failed SQE still posts its own CQE).
  // SINGLE_ISSUER: only the creating worker thread submits; lets the kernel skip locking.
  // DEFER_TASKRUN: completion work runs only when this thread enters the kernel to wait, in one
  //   batch, instead of interrupting it with task-work IPIs; fits a loop that waits in one place.
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
            IORING_SETUP_DEFER_TASKRUN;
  p.cq_entries = size.cq_entries;
  int ret = io_uring_queue_init_params(size.sq_entries, &r->ring_, &p);
  if (ret == -EINVAL) {
    // Pre-6.1 kernels reject DEFER_TASKRUN (and pre-6.0 SINGLE_ISSUER). COOP_TASKRUN (5.19) is
    // the next best: task work waits for the next kernel entry instead of sending an IPI.
    p = io_uring_params{};
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
    p.cq_entries = size.cq_entries;
    ret = io_uring_queue_init_params(size.sq_entries, &r->ring_, &p);
    if (ret == 0) r->features_.coop_taskrun = true;
  } else if (ret == 0) {
    r->features_.single_issuer = true;
    r->features_.defer_taskrun = true;
  }
  if (ret < 0) return unavailable(-ret);

  Features& f = r->features_;
  f.ext_arg = (p.features & IORING_FEAT_EXT_ARG) != 0;
  f.recvsend_bundle = (p.features & kFeatRecvSendBundle) != 0;

  io_uring_probe* probe = io_uring_get_probe_ring(&r->ring_);
  if (probe == nullptr) {
    return Error{ENOSYS, "io_uring is too old: the kernel cannot report its opcodes (need 6.1+)"};
  }
  for (const auto& op : kRequiredOps) {
    if (!io_uring_opcode_supported(probe, op.op)) {
      io_uring_free_probe(probe);
      return Error{ENOSYS, fmt::format("io_uring lacks IORING_OP_{} (need Linux 6.1+)", op.name)};
    }
  }
  io_uring_free_probe(probe);
  f.provided_buffer_ring = can_register_buf_ring(&r->ring_);
  if (!f.provided_buffer_ring) {
    return Error{ENOSYS,
                 "io_uring lacks provided-buffer rings (IORING_REGISTER_PBUF_RING, Linux 5.19+)"};
  }
  // Multishot accept arrived in the same release (5.19) as buffer rings; there is no cheaper
  // probe for it than this.
  f.multishot_accept = true;
  if (!f.ext_arg) {
    return Error{ENOSYS, "io_uring lacks IORING_FEAT_EXT_ARG (need Linux 5.11+)"};
  }

  if (f.recvsend_bundle) probe_recv_bundle(&r->ring_, f);

  // The registered ring fd saves the fdget/fdput of every io_uring_enter (a table lookup that
  // is shared with other threads); a failure only costs that, so it is not fatal.
  (void)io_uring_register_ring_fd(&r->ring_);
  // A safety cap on io-wq threads: nothing in this design should be punted to them (sockets
  // are polled, never blocked on), so a runaway here would be a bug; bound its cost.
  unsigned iowq_max[2] = {2, 4};  // bounded, unbounded
  (void)io_uring_register_iowq_max_workers(&r->ring_, iowq_max);
  return r;
}

Ring::~Ring() {
  io_uring_queue_exit(&ring_);
}

io_uring_sqe* Ring::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe != nullptr) return sqe;
  submit();
  return io_uring_get_sqe(&ring_);
}

bool Ring::reserve(unsigned n) {
  if (io_uring_sq_space_left(&ring_) >= n) return true;
  submit();
  return io_uring_sq_space_left(&ring_) >= n;
}

int Ring::submit() {
  if (pre_submit_ != nullptr) pre_submit_(pre_submit_context_);
  int ret = io_uring_submit(&ring_);
  // -EBUSY/-EAGAIN: the CQ overflow list is full; completions must be reaped first. The loop
  // does that on its next wait, and the SQEs stay queued until then.
  return ret;
}

int Ring::submit_and_wait(__kernel_timespec* timeout) {
  if (pre_submit_ != nullptr) pre_submit_(pre_submit_context_);
  io_uring_cqe* cqe = nullptr;
  // With IORING_FEAT_EXT_ARG (required above) the timeout travels as an argument of
  // io_uring_enter: no timeout SQE, no extra completion.
  return io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, timeout, nullptr);
}

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}
}  // namespace

bool Ring::spin_for_completion(int64_t budget_ns) {
  if (pre_submit_ != nullptr) pre_submit_(pre_submit_context_);
  const auto start = std::chrono::steady_clock::now();
  // With DEFER_TASKRUN the kernel posts most socket completions (those that waited for a poll)
  // only while this thread is inside io_uring_enter with GETEVENTS. Every turn enters without
  // waiting (min_complete 0), the first one also submitting, before it looks at the CQ: a
  // turn that returned on completions posted inline at submission alone would starve the
  // deferred ones for as long as each turn produced another inline completion (seen as a
  // session that stalled with busyPoll on).
  (void)io_uring_submit_and_get_events(&ring_);
  for (;;) {
    if (io_uring_cq_ready(&ring_) > 0) return true;
    cpu_relax();
    (void)io_uring_get_events(&ring_);
    if (std::chrono::steady_clock::now() - start >= std::chrono::nanoseconds(budget_ns)) {
      return false;
    }
  }
}

uint32_t Ring::cq_overflow() const {
  return ring_.cq.koverflow != nullptr ? io_uring_smp_load_acquire(ring_.cq.koverflow) : 0;
}

Result<Features> probe_io_uring() {
  auto ring = Ring::create(RingSize{64, 128});
  if (!ring) return ring.error();
  return (*ring)->features();
}

}  // namespace ringway::engine
