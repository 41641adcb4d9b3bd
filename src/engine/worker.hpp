// One engine worker: a pinned thread that owns an io_uring, a buffer pool, a session table, a
// timer wheel, one SO_REUSEPORT listener per gateway and its own counters, and runs every
// session it accepts from accept to close. Other threads talk to it only through post() (a
// mutex-guarded mailbox plus an eventfd watched by the ring) and by reading its counters.
// worker.cpp: thread, loop, accept, commands, drain. worker_session.cpp: connect, endings.
// forward_copy.cpp and forward_splice.cpp: the two ways one direction moves bytes (the copy's
// recv: forward_recv.cpp).
// worker_memory.cpp: the buffer pool under pressure. worker_sockets.cpp: the /sockets JSON.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "host_state.hpp"
#include "ringway/config/model.hpp"
#include "ringway/engine/balancer.hpp"
#include "ringway/engine/buffer_pool.hpp"
#include "ringway/engine/engine.hpp"
#include "ringway/engine/handover.hpp"
#include "ringway/engine/host_health.hpp"
#include "ringway/engine/pipe_pool.hpp"
#include "ringway/engine/ring.hpp"
#include "ringway/engine/session.hpp"
#include "ringway/engine/stats.hpp"
#include "ringway/engine/timer_wheel.hpp"
#include "ringway/net/tls_client_hello.hpp"

namespace ringway::engine {

inline constexpr int64_t kTickMs = 100;            // timer wheel resolution
inline constexpr int64_t kAcceptPauseMs = 100;     // back-off after EMFILE/ENFILE/ENOBUFS/ENOMEM
inline constexpr int64_t kSingleAcceptMs = 10000;  // one accept per SQE this long after a shortage
inline constexpr int64_t kAcceptWatchMs = 2000;    // stranded-accept watch after a handover

// The first tick at or after `ms`: a timer never fires early.
inline TimerWheel::Tick tick_at(int64_t ms) {
  return static_cast<TimerWheel::Tick>((ms + kTickMs - 1) / kTickMs);
}

// Read-only after start: what every worker needs to know about the config.
struct EngineShared {
  const config::Config* config = nullptr;
  std::vector<ResolvedUpstream> upstreams;
  std::vector<std::string> gateway_ids;
  std::vector<std::string> upstream_ids;
  std::vector<std::vector<config::SocketOption>> upstream_options;  // net::upstream_options
  // connectionLimit.maxActiveConnections and circuitBreakers.maxConnections are enforced
  // exactly across workers with one atomic counter per gateway / upstream, touched once when a
  // session starts and once when it ends, never per byte. (A per-worker share of the limit
  // would refuse sessions early: SO_REUSEPORT's hash never splits connections evenly, e.g.
  // 1000 sessions on 2 workers with the default 1024 gave one worker 522 > 512.)
  std::unique_ptr<std::atomic<int64_t>[]> gateway_active;
  std::unique_ptr<std::atomic<int64_t>[]> upstream_sessions;
  // Per upstream: health and ejection of each host, shared by every worker (host_state.hpp).
  std::vector<std::unique_ptr<UpstreamHostState>> host_states;
  uint32_t worker_count = 1;
  // RINGWAY_FORWARDING=copy|splice|auto overrides every gateway's spliceMode (tests and CI run
  // the same scenarios in each mode); unset = the config decides.
  std::optional<config::SpliceMode> forced_splice_mode;
  // How copying directions receive: the start-up probe's choice, or RINGWAY_RECV's.
  RecvMode recv_mode = RecvMode::OneShot;
  SessionSink sink;
  // When > 0, a worker never waits for completions longer than this (ms), so an idle worker
  // still turns its loop and stamps its heartbeat for the systemd watchdog.
  int64_t max_wait_ms = 0;
};

// A /sockets request shared by the workers that answer it.
struct SocketsRequest {
  std::mutex mu;
  std::condition_variable cv;
  size_t remaining = 0;
  size_t max_sessions = 0;
  std::vector<std::string> listeners;  // JSON objects
  std::vector<std::string> sessions;
};

// A hand-over request shared by the workers that answer it (handover.cpp).
struct HandoverRequest {
  std::mutex mu;
  std::condition_variable cv;
  size_t remaining = 0;
  std::vector<SessionExport> sessions;
};

struct Command {
  // HandOver: stop accepting, bring every session to a quiet point and export it.
  // Import: take over `imports` as sessions. Retire: drain and close retiring listeners.
  // Resume: accept again after a handover failed.
  enum class Kind : uint8_t {
    Drain,
    StopNow,
    Sockets,
    HandOver,
    Import,
    Retire,
    Resume
  } kind = Kind::Drain;
  std::chrono::steady_clock::time_point deadline{};
  std::shared_ptr<SocketsRequest> sockets;
  std::shared_ptr<HandoverRequest> handover;
  std::shared_ptr<std::vector<SessionExport>> imports;
};

// Errors that say "a limit was hit" (descriptors, file table, memory): retrying at once would
// spin, so the worker pauses accepting.
inline bool is_resource_error(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

class Worker {
 public:
  struct ListenerSpec {
    uint32_t gateway = 0;
    int fd = -1;  // owned by the worker from construction on
    net::SocketAddress address;
    // Inherited from the previous process with options that no longer match the config: it
    // accepts until Retire, then takes what is queued and closes (handover.cpp).
    bool retiring = false;
  };

  Worker(const EngineShared& shared, uint32_t index, int cpu, std::vector<ListenerSpec> listeners);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread; returns once it has armed accept on every listener, or its error.
  Result<void> start();
  // Thread-safe: queues a command and wakes the worker.
  void post(Command command);
  void join();
  bool exited() const { return exited_.load(std::memory_order_acquire); }

  const GatewayStats& gateway_stats(size_t i) const { return gateway_stats_[i]; }
  const UpstreamStats& upstream_stats(size_t i) const { return upstream_stats_[i]; }
  const WorkerStats& worker_stats() const { return worker_stats_; }
  // Steady-clock ms of the loop's last turn (the watchdog's proof of life).
  int64_t heartbeat_ms() const { return heartbeat_ms_.load(std::memory_order_relaxed); }

 private:
  struct Listener {
    uint32_t gateway = 0;
    int fd = -1;
    net::SocketAddress address;
    bool armed = false;       // a multishot accept is in flight
    bool cancelling = false;  // its cancel is in flight
    bool paused = false;      // back-off timer pending
    bool pause_wanted = false;
    bool retiring = false;    // see ListenerSpec::retiring
    bool retire_now = false;  // Retire received: drain the queue and close once settled
    TimerId resume_timer;
    // For the stranded-accept watch after a handover (handover.cpp): connections accepted so
    // far, and what the previous check saw.
    uint64_t accepted = 0;
    uint64_t accepted_at_check = 0;
    bool queue_seen = false;
  };
  // Until this worker-clock time, listeners accept one connection at a time (no multishot): a
  // descriptor shortage was seen, and a multishot accept would take every descriptor that
  // frees up, leaving accepted sessions none for their upstream sockets (a deadlock).
  int64_t single_accept_until_ms_ = 0;
  enum class TimerKind : uint8_t {
    Idle = 1,
    AcceptResume = 2,
    DrainDeadline = 3,
    ConnectRetry = 4,
    HealthCheck = 5,    // a = checker index: time for its next check
    HealthTimeout = 6,  // a = checker index, generation = its check: the check's timeout
    OutlierSweep = 7,   // a = upstream index: outlierDetection.interval
    AcceptWatch = 8,    // the stranded-accept watch after a handover (handover.cpp)
    Preamble = 9        // listenerFiltersTimeout of a session in its pre-connect read phase
  };
  // One host's active health checker (worker_health.cpp). It lives on worker host % workers,
  // runs one check at a time on this worker's ring, and publishes its verdict to every worker
  // through UpstreamHostState::healthy.
  struct HealthChecker {
    uint32_t upstream = 0;
    uint32_t host = 0;
    HealthState state{1, 1};
    int fd = -1;
    uint16_t generation = 0;  // tags this check's ops and timeout apart from earlier ones'
    uint32_t inflight = 0;    // io_uring ops of this check in flight (the fd stays open until 0)
    enum class Result : uint8_t { Pending, Passed, Failed } result = Result::Pending;
    const char* failure = "";  // why it failed, for the transition log line
    size_t sent = 0;           // bytes of `send` written so far
    size_t next_block = 0;     // first `receive` block not yet seen
    std::string seen;          // received bytes not yet matched (bounded)
    std::unique_ptr<char[]> buffer;
    TimerId timer;  // next check or this check's timeout
  };
  // Until this worker-clock time, check every tick for connections stranded in an accept
  // queue (handover.cpp watch_accept_queues).
  int64_t accept_watch_until_ms_ = 0;
  bool accept_watch_armed_ = false;

  // worker.cpp
  void thread_main(std::promise<Result<void>>* ready);
  Result<void> setup();
  void loop();
  void dispatch(const io_uring_cqe* cqe);
  void run_timers();
  void on_timer(uint64_t payload);
  void arm_wake();
  void on_wake(int res, uint32_t flags);
  void handle_commands();
  void arm_accept(uint32_t li);
  void on_accept(uint32_t li, int res, uint32_t flags);
  void cancel_accept(uint32_t li);
  void settle_listener(uint32_t li);
  void log_accept_limit(int error, const char* what);
  void wait_for_descriptor(uint32_t slot, int error);
  void begin_drain(std::chrono::steady_clock::time_point deadline);
  void stop_accepting();
  void accept_queued(uint32_t li);
  void retry_worker_ops();
  void force_close_all();
  bool finished() const;
  void answer_sockets(SocketsRequest& request);
  void close_mailbox();
  io_uring_sqe* sqe(uint64_t user_data);
  void update_clock();

  // worker_session.cpp: accept to connect, endings. `proxied`: a session taken over after its
  // PROXY header was consumed (handover.cpp): the PROXY stage is skipped.
  void on_new_connection(uint32_t gateway, int fd, const SessionExport* proxied = nullptr);
  // Once the session's tcpHost is known: its upstream, the backpressure limits that depend on
  // it, the circuit breaker, then the first connect.
  void begin_upstream(uint32_t slot);
  void start_connect(uint32_t slot);
  void on_connect_part(uint32_t slot, Op op, int res);
  void established(uint32_t slot);
  void maybe_forward_fin(uint32_t slot, Dir d);
  void on_side_error(uint32_t slot, bool downstream_side, int error);
  void abort_session(uint32_t slot, EndReason reason, bool rst_downstream, bool rst_upstream);
  void maybe_finish(uint32_t slot);
  // Whether any op is in flight on the downstream / upstream socket (what a cancel must cover).
  static std::pair<bool, bool> busy_sockets(const Session& s);
  void finish(uint32_t slot);
  void rearm_starved();
  uint32_t hold_limit(const Direction& dd) const;
  bool refuse_when_overloaded(uint32_t slot);
  void relieve_starvation();
  void schedule_idle(uint32_t slot, int64_t at_ms);
  void on_idle_timer(uint32_t slot, uint16_t generation);
  void emit_record(uint32_t slot, Session& s);

  // host_choice.cpp: weighted destinations, host choice, outlier detection
  void init_host_choice();
  // The downstream's source address: what ringHash/maglev hash (client_address(): the PROXY
  // header's source when one came, else the peer of the downstream fd).
  net::SocketAddress source_address(uint32_t slot);
  // The host for the session's next connect attempt, or kNoHost when none is available.
  uint32_t pick_host(uint32_t slot);
  // A connect attempt's outcome or an upstream reset, for outlier detection.
  void report_host_result(uint32_t upstream, uint32_t host, bool ok);
  void schedule_outlier_sweep(uint32_t upstream);
  void on_outlier_sweep(uint32_t upstream);

  // worker_health.cpp: active health checks of the hosts this worker owns
  void start_health_checks();
  void stop_health_checks();
  void schedule_check(uint32_t i, int64_t at_ms);
  void on_check_timer(uint32_t i);
  void on_check_timeout(uint32_t i, uint16_t generation);
  void on_check_op(uint32_t i, uint16_t generation, Op op, int res);
  void check_fail(uint32_t i, const char* why);
  void check_next_op(uint32_t i);
  void conclude_check(uint32_t i);
  int64_t next_check_delay_ms(const HealthChecker& c, bool changed);

  // worker_preamble.cpp: the pre-connect read phase (PROXY header in, SNI), PROXY header out
  struct ProxiedClient {
    net::SocketAddress source;       // the real client
    net::SocketAddress destination;  // the address it connected to
  };
  bool needs_preamble(uint32_t gateway) const;
  void begin_preamble(uint32_t slot, const SessionExport* proxied);
  void run_preamble(uint32_t slot, bool eof);
  void wait_preamble(uint32_t slot, size_t seen);
  void on_preamble_poll(uint32_t slot, int res);
  void on_preamble_timer(uint32_t slot, uint16_t generation);
  void end_preamble(uint32_t slot, uint32_t tcp_host);
  void reject_preamble(uint32_t slot, EndReason reason, bool rst, const char* why);
  void reset_rcvlowat(Session& s);
  const net::tls::SniMatcher& sni_matcher(uint32_t gateway);
  // The real client: the PROXY header's source when one was received, else the socket's peer.
  // What the access log, /sockets, the upstream PROXY header and source hashing use.
  net::SocketAddress client_address(uint32_t slot);
  // The address the client connected to: the PROXY header's destination, else the local end.
  net::SocketAddress client_destination(uint32_t slot);
  // Queues the upstream's PROXY header at the head of DownToUp; false: the session was ended.
  bool queue_proxy_header(uint32_t slot);
  void record_proxied(uint32_t slot, const net::SocketAddress& source,
                      const net::SocketAddress& destination);

  // handover.cpp
  void begin_handover(std::shared_ptr<HandoverRequest> request);
  void quiesce(uint32_t slot);
  void on_handover_completion(const Tag& t, int res, uint32_t flags);
  void export_session(uint32_t slot);
  void export_fresh(uint32_t gateway, int fd);
  void maybe_deliver_handover();
  void import_sessions(std::vector<SessionExport>& imports);
  void import_established(SessionExport& e);
  void retire_listeners();
  void resume_accepting();
  void watch_accept_queues(int64_t for_ms);
  void check_accept_queues();
  void retire_listener(uint32_t li);

  // forward_recv.cpp: the recv of a copying direction (one-shot or bundle)
  void arm_recv(uint32_t slot, Dir d);
  // Accounts a recv completion armed with bundle cap `cap` (the tag's aux) with the pool: with
  // data, queues each buffer it filled on `dd` in order; otherwise, or when `dd` is nullptr
  // (session gone or ending), recycles them. Returns the number of buffers queued.
  uint32_t take_recv_buffers(Direction* dd, int res, uint32_t flags, uint8_t cap);

  // forward_copy.cpp: one direction through the buffer pool
  void arm_watch(uint32_t slot, Dir d);
  void on_watch(uint32_t slot, Dir d, int res, uint32_t flags);
  void on_recv(uint32_t slot, Dir d, int res, uint32_t flags, uint8_t cap);
  void start_send(uint32_t slot, Dir d);
  void on_send(uint32_t slot, Dir d, int res);
  void release_sent(Session& s, Dir d, uint32_t sent);

  // forward_splice.cpp: one direction through a pipe
  bool start_splice(uint32_t slot, Dir d);  // false: no pipe, the caller keeps copying
  void stop_splice(Direction& dd);
  void arm_splice_poll(uint32_t slot, Dir d, Op op);
  void splice_pump(uint32_t slot, Dir d);
  void on_splice_poll(uint32_t slot, Dir d, Op op, int res);

  const EngineShared& shared_;
  const uint32_t index_;
  const int cpu_;
  std::vector<Listener> listeners_;
  std::unique_ptr<GatewayStats[]> gateway_stats_;
  std::unique_ptr<UpstreamStats[]> upstream_stats_;
  WorkerStats worker_stats_;

  // Owned by the worker thread from setup() on. Declaration order matters for destruction:
  // the pool must go before the ring it is registered with.
  std::unique_ptr<Ring> ring_;
  std::unique_ptr<BufferPool> pool_;
  std::unique_ptr<BufferQueues> queues_;
  std::unique_ptr<PipePool> pipes_;
  SessionTable sessions_;
  TimerWheel timers_;
  // Per upstream: its hosts (every priority) and this worker's choice among them.
  std::vector<HostPicker> pickers_;
  // Per gateway, per tcpHost: the weighted choice of upstream for Multi / UpstreamGroup
  // destinations (empty optional for a single upstream).
  std::vector<std::vector<std::optional<DestinationChooser>>> destinations_;
  std::vector<HealthChecker> checkers_;
  uint32_t check_ops_ = 0;  // health-check ops in flight: the worker exits only at 0
  bool checks_stopped_ = false;
  uint64_t check_rng_ = 0;  // jitter
  // Directions waiting for a buffer, oldest first: their tag (slot, generation, dir) and since
  // when they wait (worker clock), which tells a passing shortage from a pool held hostage.
  struct Starved {
    uint64_t tag;
    int64_t since_ms;
  };
  std::deque<Starved> starved_;
  // Buffers kept for sessions that make progress: below this many free buffers, new sessions
  // are refused (see worker_memory.cpp).
  uint32_t reserve_ = 0;
  uint32_t waiting_descriptor_ = 0;  // sessions waiting for a descriptor: accepting stays paused
  uint32_t holders_ = 0;             // directions holding at least one buffer (queued data)
  uint32_t excess_budget_ = 0;       // buffers all directions may hold beyond their first one
  uint32_t bundle_extra_ = 0;        // buffers armed bundles may take beyond one each
  int64_t last_overload_log_ms_ = -1000000;
  int64_t last_relief_ms_ = -1000000;
  int64_t drain_deadline_ms_ = INT64_MAX;  // worker clock; sessions accepted after it are cut
  // Downstream peer addresses by slot, kept only when an access log wants them: read at accept,
  // because by the time the session ends the peer may be gone and getpeername() fails. Kept
  // out of Session so that sessions without an access log stay small.
  std::vector<net::SocketAddress> downstream_peers_;
  // Real client addresses by slot, for sessions with Session::proxied (worker_preamble.cpp).
  std::vector<ProxiedClient> proxied_;
  // PROXY-header / ClientHello peeks land here (worker thread only), so a session in the
  // pre-connect phase holds no buffer of its own: its bytes wait in its socket.
  std::vector<uint8_t> peek_buffer_;
  std::vector<std::optional<net::tls::SniMatcher>> sni_matchers_;  // by gateway, built lazily
  int64_t last_preamble_log_ms_ = -1000000;
  int wake_fd_ = -1;
  uint32_t worker_ops_ = 0;  // accepts and accept cancels in flight
  bool wake_armed_ = false;
  bool draining_ = false;
  bool stopping_ = false;
  bool handing_over_ = false;                  // HandOver received: no more accepting
  uint32_t quiescing_ = 0;                     // sessions waiting for their quiet point
  std::shared_ptr<HandoverRequest> handover_;  // answered once quiescing_ reaches 0
  std::vector<SessionExport> exported_;
  std::atomic<int64_t> heartbeat_ms_{0};
  int64_t now_ms_ = 0;
  int64_t last_limit_log_ms_[3] = {-1000000, -1000000, -1000000};

  std::mutex mailbox_mu_;
  std::vector<Command> mailbox_;
  bool mailbox_closed_ = false;
  std::thread thread_;
  std::atomic<bool> exited_{false};
};

}  // namespace ringway::engine
