// The engine's public face: N pinned workers, each with its own io_uring, its own SO_REUSEPORT
// listen socket per gateway, and every session handled end to end on the worker that accepted
// it. The app layer (server, admin endpoint, signals) drives it only through this interface.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringway/config/model.hpp"
#include "ringway/core/result.hpp"
#include "ringway/engine/handover.hpp"
#include "ringway/engine/session_record.hpp"
#include "ringway/engine/stats.hpp"
#include "ringway/net/address.hpp"

namespace ringway::engine {

// How a copying direction receives (forward_recv.cpp): one provided buffer per recv
// completion, or a bundle of consecutive ring buffers per completion (IORING_RECVSEND_BUNDLE).
enum class RecvMode : uint8_t { OneShot, Bundle };

// What the kernel's io_uring offers, probed once at start-up.
struct Features {
  bool single_issuer = false;  // IORING_SETUP_SINGLE_ISSUER (6.0)
  bool defer_taskrun = false;  // IORING_SETUP_DEFER_TASKRUN (6.1)
  bool coop_taskrun = false;   // fallback when DEFER_TASKRUN is refused
  bool ext_arg = false;        // IORING_FEAT_EXT_ARG: wait with a timeout, no timeout SQE
  bool multishot_accept = false;
  bool provided_buffer_ring = false;
  bool recvsend_bundle = false;  // IORING_FEAT_RECVSEND_BUNDLE (6.10): the feature bit only
  // A bundle recv on a socketpair with a provided-buffer ring filled several buffers, in ring
  // order, with the right bytes: the bit alone does not prove the op works on every kernel.
  bool recv_bundle = false;
  // Whether that trial's bundle stayed within the recv's byte cap (sqe->len) although more data
  // was waiting; newer kernels retry a full bundle once and append up to the socket's queue.
  bool recv_bundle_capped = false;
  // What copying directions use: set by the engine from the probe and RINGWAY_RECV.
  RecvMode recv_mode = RecvMode::OneShot;
  std::string describe() const;  // "single_issuer defer_taskrun ext_arg ..." for the start-up log
};

// An upstream with its hosts resolved (start-up, on the main thread; workers never resolve).
struct ResolvedUpstream {
  // One entry per host (first address it resolved to): static.hosts first, then the hosts of
  // failover.prioritizedLocalities in order, so a host index means the same on every worker.
  std::vector<net::SocketAddress> hosts;
  std::vector<uint32_t> weights;     // loadBalancingWeight per host
  std::vector<uint32_t> priorities;  // per host: 0 for static.hosts, p for failover priority p
};

// One listen socket as it is actually bound (port 0 resolved to the kernel's choice).
struct ListenerInfo {
  std::string gateway;  // Gateway::id()
  uint32_t worker = 0;
  net::SocketAddress address;
  int fd = -1;  // owned by the worker; only for handing the socket to a new process
};

// Summed over workers.
struct StatsSnapshot {
  struct Named {
    std::string id;  // gateway or upstream id
    std::array<int64_t, static_cast<size_t>(GatewayStat::kCount)> gateway{};
    std::array<int64_t, static_cast<size_t>(UpstreamStat::kCount)> upstream{};
  };
  std::vector<Named> gateways;   // .gateway filled, in config order
  std::vector<Named> upstreams;  // .upstream filled, in config order
  std::vector<std::array<int64_t, static_cast<size_t>(WorkerStat::kCount)>> workers;
  // Every host of every upstream: active health and outlier ejection (host_state.hpp).
  struct Host {
    std::string upstream;  // upstream id
    std::string host;      // "addr:port" as resolved
    uint32_t priority = 0;
    bool health_checked = false;  // the upstream has healthChecks
    bool healthy = true;
    bool ejected = false;
    int64_t became_unhealthy = 0, became_healthy = 0, ejections = 0;
  };
  std::vector<Host> hosts;
  int64_t sessions_active = 0;  // sum of downstream_connections_active
};

class Engine {
 public:
  // Exit code when io_uring cannot be set up (EX_UNAVAILABLE).
  static constexpr int kExitIoUringUnavailable = 69;

  // Probes io_uring (an Error with code EPERM/ENOSYS means it is disabled: sysctl
  // kernel.io_uring_disabled or a seccomp filter; the message says so and what to change).
  // `config` must outlive the engine; `upstreams` is indexed like config.upstreams.
  static Result<std::unique_ptr<Engine>> create(const config::Config& config,
                                                std::vector<ResolvedUpstream> upstreams);
  virtual ~Engine() = default;

  // Opens every worker's listen sockets (socket options applied at their states), starts the
  // pinned workers and returns once every worker has armed accept on every listener, so the
  // caller may report READY. On failure every worker started so far is stopped.
  virtual Result<void> start() = 0;

  // Receives a record of every finished session (for access logs), on the worker thread that
  // ran it. Call before start(); unset = no records are built.
  virtual void set_session_sink(SessionSink sink) = 0;

  // Listen sockets of the previous process (reload/restart). Call before start(). start()
  // takes the ones whose listener_key() matches a gateway instead of opening new ones; a
  // gateway whose options changed gets new sockets on the same port (bindPort 0: the port the
  // old sockets had), and the old ones keep accepting until retire_listeners().
  virtual void set_inherited_listeners(std::vector<InheritedListener> listeners) = 0;
  // Watchdog: bound every worker's wait to `max_wait` so idle workers still turn. Before start().
  virtual void set_max_wait(std::chrono::milliseconds max_wait) = 0;
  // True when every worker's loop has turned within `within` (and none has exited).
  virtual bool workers_alive(std::chrono::milliseconds within) const = 0;

  // Reload/restart, exporting side: every worker stops accepting (its listener fds closed),
  // brings each live session to a quiet point and exports it. Returns what the workers
  // exported by `timeout`; the caller owns every fd in the result. Sessions a worker could not
  // quiesce stay with it (they drain as usual).
  virtual std::vector<SessionExport> hand_over(std::chrono::milliseconds timeout) = 0;
  // Importing side (also the exporting side taking its sessions back after a failed handover):
  // spreads the records over the workers by their exporting worker's index; the workers own
  // the fds from here on.
  virtual void import_sessions(std::vector<SessionExport> sessions) = 0;
  // Once the previous process no longer accepts: drains and closes the inherited listeners
  // start() did not take (their options changed), and re-arms the accept on every shared one
  // so a connection whose wake-up went to the previous process is taken now.
  virtual void retire_listeners() = 0;
  // Exporting side, after a handover failed: accept again on the listeners hand_over() stopped
  // (they stay open through a handover for exactly this).
  virtual void resume_accepting() = 0;

  virtual const Features& features() const = 0;
  virtual uint32_t worker_count() const = 0;
  virtual std::vector<ListenerInfo> listeners() const = 0;

  // Graceful stop: every worker cancels accept and closes its listeners, sessions continue;
  // at `deadline` what remains is force-closed (counted in sessions_force_closed_total).
  virtual void begin_drain(std::chrono::steady_clock::time_point deadline) = 0;
  // Immediate stop: every session is closed now (second signal).
  virtual void stop_now() = 0;
  // Blocks until every worker has exited (after a drain finished or stop_now).
  virtual void join() = 0;
  // True once every worker has exited.
  virtual bool stopped() const = 0;

  virtual StatsSnapshot stats() const = 0;

  // The socket options read back with getsockopt from each listen socket and from up to
  // `max_sessions` live sessions per worker (downstream and upstream sockets), as JSON. Each
  // worker reads its own sockets on its own thread (no fd is touched by another thread); this
  // call waits for their answers, up to `timeout`.
  virtual std::string sockets_json(size_t max_sessions, std::chrono::milliseconds timeout) = 0;
};

}  // namespace ringway::engine
