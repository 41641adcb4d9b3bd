// Per-host state of one upstream that every worker reads: whether the host passes its active
// health checks and whether outlier detection has ejected it. Each is one atomic byte per host:
// a worker consults them before each host choice (a relaxed load, no lock), so a verdict
// reached on one worker holds on all of them from the next session on.
//
// Health: each host's checker runs on exactly one worker (worker_health.cpp), the only writer
// of its byte. Outlier detection: ONE OutlierDetector per upstream, shared by the workers under
// a mutex. Why shared and not per worker: an ejection must hold across workers, and a per-worker
// detector would see only its share of the failures (with N workers, a refusing host would need
// N x consecutiveLocalOriginFailure failures before every worker stopped using it, and the
// workers would each eject and return it at different times). The mutex is taken only when a
// connect attempt ends (success or failure), on an upstream reset, and by the interval sweep,
// never per byte; upstreams without outlierDetection never take it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "ringway/engine/host_health.hpp"

namespace ringway::engine {

struct UpstreamHostState {
  explicit UpstreamHostState(size_t count)
      : hosts(count),
        healthy(std::make_unique<std::atomic<uint8_t>[]>(count)),
        ejected(std::make_unique<std::atomic<uint8_t>[]>(count)),
        became_unhealthy(std::make_unique<std::atomic<int64_t>[]>(count)),
        became_healthy(std::make_unique<std::atomic<int64_t>[]>(count)),
        ejections(std::make_unique<std::atomic<int64_t>[]>(count)) {
    // A host serves until its first check says otherwise: a just-started (or reloaded) process
    // must not refuse sessions while its first checks are still running.
    for (size_t i = 0; i < count; ++i)
      healthy[i].store(1, std::memory_order_relaxed);
  }

  bool available(size_t host) const {
    return healthy[host].load(std::memory_order_relaxed) != 0 &&
           ejected[host].load(std::memory_order_relaxed) == 0;
  }

  size_t hosts;
  std::unique_ptr<std::atomic<uint8_t>[]> healthy;  // 1 = passes active checks (or unchecked)
  std::unique_ptr<std::atomic<uint8_t>[]> ejected;  // 1 = ejected by outlier detection
  // Transition counters for /stats (written by the one worker that decides them).
  std::unique_ptr<std::atomic<int64_t>[]> became_unhealthy;
  std::unique_ptr<std::atomic<int64_t>[]> became_healthy;
  std::unique_ptr<std::atomic<int64_t>[]> ejections;
  std::mutex outlier_mu;
  std::unique_ptr<OutlierDetector> outlier;  // null without outlierDetection
};

}  // namespace ringway::engine
