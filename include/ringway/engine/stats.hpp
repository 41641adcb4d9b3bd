// Engine counters, declared once (X-macro) and kept per worker, per gateway and per upstream.
// A worker is the only writer of its counters (relaxed atomic stores, no read-modify-write
// across threads); the admin thread and the main thread read and sum them.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace ringway::engine {

// X(name, kind, help). kind: counter (monotonic) or gauge (goes up and down).
// Names are exported as `ringway_<name>` in Prometheus text.
#define RINGWAY_GATEWAY_STATS(X)                                                              \
  X(downstream_connections_total, counter, "downstream connections accepted")                 \
  X(downstream_connections_active, gauge, "sessions open (downstream connections held)")      \
  X(downstream_connections_rejected_total, counter,                                           \
    "downstream connections closed at once because connectionLimit was reached")              \
  X(downstream_bytes_received_total, counter, "bytes read from downstream")                   \
  X(downstream_bytes_sent_total, counter, "bytes written to downstream")                      \
  X(downstream_resets_total, counter, "sessions ended by a downstream RST or error")          \
  X(downstream_keepalive_timeouts_total, counter,                                             \
    "downstream sockets failed by the kernel with ETIMEDOUT (keepalive or user timeout)")     \
  X(idle_timeouts_total, counter, "sessions closed by tcpProxySettings.idleTimeout")          \
  X(reads_paused_total, counter, "reads paused because a direction reached its buffer limit") \
  X(reads_resumed_total, counter, "paused reads resumed")                                     \
  X(sessions_force_closed_total, counter, "sessions force-closed at drainTimeout")            \
  X(sessions_no_upstream_total, counter,                                                      \
    "sessions closed because every upstream connect attempt failed")                          \
  X(proxy_protocol_errors_total, counter,                                                     \
    "downstream connections closed for a missing or malformed PROXY protocol header")         \
  X(sni_no_match_total, counter,                                                              \
    "downstream connections closed because no tcpHost matched the TLS server name")           \
  X(client_hello_errors_total, counter,                                                       \
    "downstream connections closed for a malformed or oversized TLS ClientHello")             \
  X(listener_filters_timeouts_total, counter,                                                 \
    "downstream connections closed at listenerFiltersTimeout (PROXY header or ClientHello)")  \
  X(downstream_connections_overload_total, counter,                                           \
    "downstream connections closed at once because the worker's buffer memory was at its cap")

#define RINGWAY_UPSTREAM_STATS(X)                                                                  \
  X(upstream_connections_total, counter, "upstream connections established")                       \
  X(upstream_connections_active, gauge, "upstream connections open or connecting")                 \
  X(upstream_connect_attempts_total, counter, "upstream connect attempts")                         \
  X(upstream_connect_refused_total, counter, "connect attempts refused (ECONNREFUSED)")            \
  X(upstream_connect_timeouts_total, counter, "connect attempts that hit connectTimeout")          \
  X(upstream_connect_errors_total, counter, "connect attempts that failed otherwise")              \
  X(upstream_circuit_open_total, counter, "connects not tried because maxConnections was reached") \
  X(upstream_resets_total, counter, "sessions ended by an upstream RST or error")                  \
  X(upstream_keepalive_timeouts_total, counter,                                                    \
    "upstream sockets failed by the kernel with ETIMEDOUT (keepalive or user timeout)")            \
  X(upstream_no_healthy_host_total, counter,                                                       \
    "connects not tried because every host was unhealthy or ejected")

#define RINGWAY_WORKER_STATS(X)                                                                \
  X(buffer_pool_enobufs_total, counter, "receives that found the worker's buffer pool empty")  \
  X(accept_pauses_total, counter, "accept paused for back-off (EMFILE/ENFILE/ENOBUFS/ENOMEM)") \
  X(accept_rearms_total, counter,                                                              \
    "accepts re-armed after a handover because connections waited with no wake-up")            \
  X(stale_completions_total, counter, "completions for a session slot already reused")         \
  X(cq_overflow_total, counter, "completion queue overflows reported by the kernel")           \
  X(buffer_pool_free, gauge, "free buffers in the worker's pool")                              \
  X(overload_resets_total, counter,                                                            \
    "stalled sessions reset to free buffers for sessions starved of one (last resort)")        \
  X(splice_switches_total, counter, "directions that started splicing (socket-pipe-socket)")   \
  X(splice_fallbacks_total, counter, "directions that copied because no pipe was available")   \
  X(splice_pipes_in_use, gauge, "pipes held by splicing directions")                           \
  X(splice_pipes_idle, gauge, "empty pipes kept for reuse (two fds each)")

enum class StatKind : uint8_t { Counter, Gauge };

#define RINGWAY_STAT_ENUM(name, kind, help) name,
enum class GatewayStat : uint16_t { RINGWAY_GATEWAY_STATS(RINGWAY_STAT_ENUM) kCount };
enum class UpstreamStat : uint16_t { RINGWAY_UPSTREAM_STATS(RINGWAY_STAT_ENUM) kCount };
enum class WorkerStat : uint16_t { RINGWAY_WORKER_STATS(RINGWAY_STAT_ENUM) kCount };
#undef RINGWAY_STAT_ENUM

struct StatInfo {
  std::string_view name;
  StatKind kind;
  std::string_view help;
};

// Name, kind and help of each stat, indexed by the enum's value.
const StatInfo& info(GatewayStat s);
const StatInfo& info(UpstreamStat s);
const StatInfo& info(WorkerStat s);

// A block of counters owned by one worker. add() is only ever called by the owning worker, so a
// relaxed load + store is enough and costs no locked instruction; readers see a recent value.
template <typename Enum>
class StatBlock {
 public:
  static constexpr size_t kSize = static_cast<size_t>(Enum::kCount);

  void add(Enum s, int64_t delta = 1) {
    auto& slot = values_[static_cast<size_t>(s)];
    slot.store(slot.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
  void set(Enum s, int64_t value) {
    values_[static_cast<size_t>(s)].store(value, std::memory_order_relaxed);
  }
  int64_t get(Enum s) const {
    return values_[static_cast<size_t>(s)].load(std::memory_order_relaxed);
  }

 private:
  std::array<std::atomic<int64_t>, kSize> values_{};
};

using GatewayStats = StatBlock<GatewayStat>;
using UpstreamStats = StatBlock<UpstreamStat>;
using WorkerStats = StatBlock<WorkerStat>;

}  // namespace ringway::engine
