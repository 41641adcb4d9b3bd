// Host choice for one upstream on one worker: round robin (smooth weighted, so weights 3:1 give
// A A B A rather than A A A B), weighted random, or least request with two random choices over
// this worker's own active counts. Per worker, so it needs no lock; the price is that workers
// balance independently (each one's sequence is fair on its own).
#pragma once

#include <cstdint>
#include <vector>

#include "ringway/config/model.hpp"

namespace ringway::engine {

class Balancer {
 public:
  // `weights` has one entry per host (loadBalancingWeight); 0 counts as 1.
  Balancer(config::LoadBalancer policy, std::vector<uint32_t> weights, uint64_t seed);

  // The host for the next connect attempt.
  uint32_t pick();
  // Connections this worker has open (or opening) to each host, for least request.
  void on_start(uint32_t host) { ++active_[host]; }
  void on_end(uint32_t host) { --active_[host]; }
  uint32_t active(uint32_t host) const { return active_[host]; }
  size_t host_count() const { return weights_.size(); }

 private:
  uint64_t next_random();
  uint32_t pick_round_robin();
  uint32_t pick_weighted_random();

  config::LoadBalancer policy_;
  std::vector<uint32_t> weights_;
  std::vector<int64_t> current_;  // smooth weighted round robin state
  std::vector<uint32_t> active_;
  uint64_t total_weight_ = 0;
  uint64_t rng_;
};

}  // namespace ringway::engine
