// The worker thread: pinning, ring set-up, the event loop, timers and commands from other
// threads. Accept and drain are in worker_accept.cpp; sessions (connect, forwarding, endings)
// in worker_session.cpp. See worker.hpp for the ownership rules.
#include "worker.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "ringway/core/log.hpp"

namespace ringway::engine {
namespace {

constexpr uint32_t kMaxSessionsPerWorker = 1U << 20;

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void flush_pool(void* context) {
  static_cast<BufferPool*>(context)->flush();
}

}  // namespace

Worker::Worker(const EngineShared& shared, uint32_t index, int cpu,
               std::vector<ListenerSpec> listeners)
    : shared_(shared), index_(index), cpu_(cpu), sessions_(kMaxSessionsPerWorker) {
  for (auto& spec : listeners) {
    Listener l;
    l.gateway = spec.gateway;
    l.fd = spec.fd;
    l.address = spec.address;
    l.retiring = spec.retiring;
    listeners_.push_back(l);
  }
  const auto& config = *shared_.config;
  gateway_stats_ = std::make_unique<GatewayStats[]>(config.gateways.size());
  upstream_stats_ = std::make_unique<UpstreamStats[]>(config.upstreams.size());
  init_host_choice();
}

Worker::~Worker() {
  join();
  for (auto& l : listeners_) {
    if (l.fd >= 0) ::close(l.fd);
  }
}

Result<void> Worker::start() {
  std::promise<Result<void>> ready;
  auto result = ready.get_future();
  thread_ = std::thread([this, &ready] { thread_main(&ready); });
  Result<void> r = result.get();
  if (!r) join();
  return r;
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::post(Command command) {
  {
    std::lock_guard lock(mailbox_mu_);
    if (mailbox_closed_) {
      // The worker has exited: answer what needs an answer, drop the rest.
      if (command.kind == Command::Kind::Sockets) {
        std::lock_guard rl(command.sockets->mu);
        --command.sockets->remaining;
        command.sockets->cv.notify_all();
      }
      if (command.kind == Command::Kind::HandOver) {
        std::lock_guard rl(command.handover->mu);
        --command.handover->remaining;
        command.handover->cv.notify_all();
      }
      // An Import that finds the worker gone closes its fds: nobody else can take them now.
      if (command.kind == Command::Kind::Import) close_fds(*command.imports);
      return;
    }
    mailbox_.push_back(std::move(command));
    // Written under the lock: the worker closes the eventfd only after closing the mailbox.
    // An 8-byte eventfd write does not fail short; EAGAIN (counter saturated) still wakes.
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }
}

void Worker::thread_main(std::promise<Result<void>>* ready) {
  {
    char name[16];
    std::snprintf(name, sizeof(name), "ringway-w%u", index_);
    pthread_setname_np(pthread_self(), name);
  }
  // Pin before the ring exists: io-wq threads (should any appear) inherit this affinity, and
  // the ring's memory is first touched from this CPU.
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu_, &set);
  if (int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set); err != 0) {
    log::warning("worker {}: cannot pin to CPU {}: {}", index_, cpu_, std::strerror(err));
  }
  Result<void> r = setup();
  if (!r) {
    close_mailbox();
    pool_.reset();
    ring_.reset();
    exited_.store(true, std::memory_order_release);
    ready->set_value(std::move(r));  // last touch of `ready`: start() may return right after
    return;
  }
  ready->set_value(Result<void>{});
  loop();
  close_mailbox();
  for (auto& l : listeners_) {
    if (l.fd >= 0) {
      ::close(l.fd);
      l.fd = -1;
    }
  }
  pipes_.reset();
  // The pool unregisters from the ring, so it goes first; the ring's exit cancels the one op
  // still armed (the eventfd poll), and only then is the eventfd closed.
  pool_.reset();
  ring_.reset();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  exited_.store(true, std::memory_order_release);
}

Result<void> Worker::setup() {
  auto ring = Ring::create();
  if (!ring) return ring.error();
  ring_ = std::move(ring.value());
  const uint64_t limit = shared_.config->settings.per_worker_buffer_limit_bytes;
  const auto count = static_cast<uint32_t>(
      std::clamp<uint64_t>(limit / BufferPool::kSize, 1, BufferPool::kMaxCount));
  auto pool = BufferPool::create(ring_->get(), count);
  if (!pool) return pool.error();
  pool_ = std::move(pool.value());
  ring_->set_pre_submit(flush_pool, pool_.get());
  queues_ = std::make_unique<BufferQueues>(pool_->count());
  // Two pool buffers' worth of kernel memory per pipe: splice may use as much again as the
  // pool, in the kernel, and no more.
  pipes_ = std::make_unique<PipePool>(std::max<uint32_t>(16, pool_->count() / 2));
  // An eighth of the pool (at least 8 buffers) stays for sessions that make progress, and a
  // quarter of the rest may be held beyond one buffer per direction: see worker_memory.cpp.
  reserve_ = std::min(pool_->count(), std::max<uint32_t>(8, pool_->count() / 8));
  excess_budget_ = (pool_->count() - reserve_) / 4;

  // Created here rather than in the constructor so post() before start() cannot race it; the
  // mailbox lock orders the store with post()'s read.
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return system_error(errno, "worker: eventfd failed");
  {
    std::lock_guard lock(mailbox_mu_);
    wake_fd_ = efd;
  }
  update_clock();
  heartbeat_ms_.store(now_ms_, std::memory_order_relaxed);  // alive from the start
  timers_ = TimerWheel(static_cast<TimerWheel::Tick>(now_ms_ / kTickMs));
  arm_wake();
  for (uint32_t i = 0; i < listeners_.size(); ++i)
    arm_accept(i);
  start_health_checks();
  for (uint32_t u = 0; u < shared_.config->upstreams.size(); ++u) {
    if (shared_.host_states[u]->outlier && u % shared_.worker_count == index_) {
      schedule_outlier_sweep(u);
    }
  }
  // Submitted before start() returns, so READY means accept really is armed everywhere.
  const int ret = ring_->submit();
  if (ret < 0) return system_error(-ret, "worker: first io_uring submit failed");
  return {};
}

void Worker::update_clock() {
  now_ms_ = steady_ms();
}

io_uring_sqe* Worker::sqe(uint64_t user_data) {
  io_uring_sqe* s = ring_->get_sqe();
  if (s == nullptr) return nullptr;
  io_uring_sqe_set_data64(s, user_data);
  return s;
}

bool Worker::finished() const {
  if (!draining_ || worker_ops_ != 0 || check_ops_ != 0 || sessions_.live() != 0) return false;
  for (const auto& l : listeners_) {
    if (l.fd >= 0) return false;
  }
  return true;
}

void Worker::loop() {
  while (!finished()) {
    update_clock();
    heartbeat_ms_.store(now_ms_, std::memory_order_relaxed);
    run_timers();
    rearm_starved();
    relieve_starvation();
    retry_worker_ops();
    worker_stats_.set(WorkerStat::buffer_pool_free, pool_->free_count());
    worker_stats_.set(WorkerStat::splice_pipes_in_use, pipes_->in_use());
    worker_stats_.set(WorkerStat::splice_pipes_idle, pipes_->idle());

    // Sleep until a completion arrives or, when timers are pending, until the next tick.
    __kernel_timespec ts{};
    __kernel_timespec* timeout = nullptr;
    if (!timers_.empty()) {
      const int64_t next = (now_ms_ / kTickMs + 1) * kTickMs;
      const int64_t wait_ms = std::max<int64_t>(1, next - now_ms_);
      ts.tv_sec = wait_ms / 1000;
      ts.tv_nsec = (wait_ms % 1000) * 1000000;
      timeout = &ts;
    } else if (shared_.max_wait_ms > 0) {
      // The watchdog is on: an idle worker must still turn to stamp its heartbeat.
      ts.tv_sec = shared_.max_wait_ms / 1000;
      ts.tv_nsec = (shared_.max_wait_ms % 1000) * 1000000;
      timeout = &ts;
    }
    int64_t spin_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(shared_.config->settings.busy_poll)
            .count();
    if (timeout != nullptr) {
      spin_ns = std::min<int64_t>(spin_ns, (ts.tv_sec * 1000000000LL) + ts.tv_nsec);
    }
    const bool ready = spin_ns > 0 && !draining_ && io_uring_cq_ready(ring_->get()) == 0 &&
                       ring_->spin_for_completion(spin_ns);
    const int ret = ready ? 0 : ring_->submit_and_wait(timeout);
    if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN) {
      log::error("worker {}: io_uring wait failed: {}", index_, std::strerror(-ret));
    }
    update_clock();
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(ring_->get(), head, cqe) {
      dispatch(cqe);
      ++seen;
    }
    // One CQ head update for the whole batch (a release store the kernel reads).
    io_uring_cq_advance(ring_->get(), seen);
    worker_stats_.set(WorkerStat::cq_overflow_total, ring_->cq_overflow());
    if (handover_) maybe_deliver_handover();
  }
}

void Worker::dispatch(const io_uring_cqe* cqe) {
  const Tag t = Tag::decode(cqe->user_data);
  const int res = cqe->res;
  const uint32_t flags = cqe->flags;
  switch (t.op) {
    case Op::Wake:
      on_wake(res, flags);
      return;
    case Op::Accept:
      on_accept(t.slot, res, flags);
      return;
    case Op::AcceptCancel:
      --worker_ops_;
      listeners_[t.slot].cancelling = false;
      settle_listener(t.slot);
      return;
    case Op::Connect:
    case Op::ConnectTimeout:
    case Op::Recv:
    case Op::Send:
    case Op::Cancel:
    case Op::Watch:
    case Op::SpliceIn:
    case Op::SpliceOut:
    case Op::Preamble:
      break;
    case Op::Test:
      return;
    case Op::CheckConnect:
    case Op::CheckSend:
    case Op::CheckRecv:
    case Op::CheckCancel:
      on_check_op(t.slot, t.generation, t.op, res);
      return;
  }
  if (sessions_.find(t.slot, t.generation) == nullptr) {
    // Should never happen (a slot is freed only with nothing in flight); dropped and counted,
    // but a buffer it carries is still returned to the pool.
    worker_stats_.add(WorkerStat::stale_completions_total);
    if (t.op == Op::Recv) take_recv_buffers(nullptr, res, flags, t.aux);
    return;
  }
  if (sessions_.at(t.slot).handing_over) {
    on_handover_completion(t, res, flags);
    return;
  }
  switch (t.op) {
    case Op::Connect:
    case Op::ConnectTimeout:
      on_connect_part(t.slot, t.op, res);
      return;
    case Op::Recv:
      on_recv(t.slot, t.dir, res, flags, t.aux);
      return;
    case Op::Send:
      on_send(t.slot, t.dir, res);
      return;
    case Op::Watch:
      on_watch(t.slot, t.dir, res, flags);
      return;
    case Op::SpliceIn:
    case Op::SpliceOut:
      on_splice_poll(t.slot, t.dir, t.op, res);
      return;
    case Op::Preamble:
      on_preamble_poll(t.slot, res);
      return;
    case Op::Cancel: {
      Session& s = sessions_.at(t.slot);
      --s.inflight;
      maybe_finish(t.slot);
      return;
    }
    default:
      return;
  }
}

// ---- timers ---------------------------------------------------------------------------------

void Worker::run_timers() {
  timers_.advance(static_cast<TimerWheel::Tick>(now_ms_ / kTickMs),
                  [this](uint64_t payload) { on_timer(payload); });
}

void Worker::on_timer(uint64_t payload) {
  const auto kind = static_cast<TimerKind>(payload >> 56);
  const auto a = static_cast<uint32_t>(payload);
  const auto generation = static_cast<uint16_t>(payload >> 32);
  switch (kind) {
    case TimerKind::Idle:
      on_idle_timer(a, generation);
      return;
    case TimerKind::AcceptResume:
      listeners_[a].paused = false;
      listeners_[a].resume_timer = {};
      settle_listener(a);
      return;
    case TimerKind::DrainDeadline:
      force_close_all();
      return;
    case TimerKind::AcceptWatch:
      accept_watch_armed_ = false;
      check_accept_queues();
      return;
    case TimerKind::Preamble:
      on_preamble_timer(a, generation);
      return;
    case TimerKind::ConnectRetry: {
      Session* s = sessions_.find(a, generation);
      if (s == nullptr || s->state != SessionState::Connecting) return;
      s->retry_timer = {};
      s->waiting_descriptor = false;
      --waiting_descriptor_;
      start_connect(a);
      return;
    }
    case TimerKind::HealthCheck:
      on_check_timer(a);
      return;
    case TimerKind::HealthTimeout:
      on_check_timeout(a, generation);
      return;
    case TimerKind::OutlierSweep:
      on_outlier_sweep(a);
      return;
  }
}

void Worker::schedule_idle(uint32_t slot, int64_t at_ms) {
  Session& s = sessions_.at(slot);
  const uint64_t payload = (static_cast<uint64_t>(TimerKind::Idle) << 56) |
                           (static_cast<uint64_t>(s.generation) << 32) | slot;
  s.idle_timer = timers_.insert(tick_at(at_ms), payload);
}

// ---- cross-thread commands ----------------------------------------------------------------

void Worker::arm_wake() {
  io_uring_sqe* s = sqe(tag(Op::Wake));
  if (s == nullptr) return;  // retried by retry_worker_ops() on the next loop turn
  // A multishot poll (not a read): poll never needs an io-wq thread, and one SQE serves every
  // wake-up until the kernel ends it (no IORING_CQE_F_MORE), when it is re-armed.
  io_uring_prep_poll_multishot(s, wake_fd_, POLLIN);
  wake_armed_ = true;
}

void Worker::on_wake(int res, uint32_t flags) {
  if ((flags & IORING_CQE_F_MORE) == 0) wake_armed_ = false;
  if (res >= 0) {
    uint64_t value;
    // Resets the counter so the next post() produces a new readiness edge.
    [[maybe_unused]] ssize_t n = ::read(wake_fd_, &value, sizeof(value));
  }
  handle_commands();
  if (!wake_armed_) arm_wake();
}

void Worker::handle_commands() {
  std::vector<Command> commands;
  {
    std::lock_guard lock(mailbox_mu_);
    commands.swap(mailbox_);
  }
  for (auto& c : commands) {
    switch (c.kind) {
      case Command::Kind::Drain:
        begin_drain(c.deadline);
        break;
      case Command::Kind::StopNow:
        stopping_ = true;
        begin_drain(std::chrono::steady_clock::now());
        break;
      case Command::Kind::Sockets:
        answer_sockets(*c.sockets);
        break;
      case Command::Kind::HandOver:
        begin_handover(std::move(c.handover));
        break;
      case Command::Kind::Import:
        import_sessions(*c.imports);
        break;
      case Command::Kind::Retire:
        retire_listeners();
        break;
      case Command::Kind::Resume:
        resume_accepting();
        break;
    }
  }
}

void Worker::close_mailbox() {
  std::vector<Command> left;
  {
    std::lock_guard lock(mailbox_mu_);
    mailbox_closed_ = true;
    left.swap(mailbox_);
  }
  for (auto& c : left) {
    if (c.kind == Command::Kind::Import) close_fds(*c.imports);
    if (c.kind == Command::Kind::HandOver) {
      std::lock_guard rl(c.handover->mu);
      --c.handover->remaining;
      c.handover->cv.notify_all();
    }
    if (c.kind != Command::Kind::Sockets) continue;
    std::lock_guard rl(c.sockets->mu);
    --c.sockets->remaining;
    c.sockets->cv.notify_all();
  }
}

// The worker's own ops must never be lost to a full submission queue: the wake-up poll carries
// every command (drain, stop, /sockets), and a drain waits for each accept's cancel. Both are
// re-tried here, once per loop turn, until the ring takes them.
void Worker::retry_worker_ops() {
  if (!wake_armed_) arm_wake();
  for (uint32_t i = 0; i < listeners_.size(); ++i) {
    const Listener& l = listeners_[i];
    if ((draining_ || l.pause_wanted) && l.armed && !l.cancelling) cancel_accept(i);
  }
}

}  // namespace ringway::engine
