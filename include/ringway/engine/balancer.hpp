// Host choice for one upstream on one worker: round robin (smooth weighted, so weights 3:1 give
// A A B A rather than A A A B), weighted random, or least request with two choices over this
// worker's own active counts (weights honoured). Per worker, so it needs no lock; the price is
// that workers balance independently (each one's sequence is fair on its own).
//
// Beside it, the pieces the worker will use for the rest of Gloo's TCP surface:
//   DestinationChooser  destination.multi / upstreamGroup: which upstream, once per session;
//   HostPicker          every host of an upstream with its failover priority, any policy
//                       (ringHash and maglev keyed on the downstream source address), and
//                       per-host availability from health checks and outlier detection.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ringway/config/model.hpp"
#include "ringway/engine/consistent_hash.hpp"

namespace ringway::engine {

class Balancer {
 public:
  // `weights` has one entry per host (loadBalancingWeight); 0 counts as 1.
  Balancer(config::LoadBalancer policy, std::vector<uint32_t> weights, uint64_t seed);

  // The host for the next connect attempt. RingHash and Maglev have no key here and pick by
  // weight at random, as Envoy does on a TCP proxy without a hash policy; HostPicker hashes.
  uint32_t pick();
  // The same among the hosts whose byte in `available` is non-zero (one byte per host);
  // kNoHost when none is.
  uint32_t pick(std::span<const uint8_t> available);
  // Connections this worker has open (or opening) to each host, for least request.
  void on_start(uint32_t host) { ++active_[host]; }
  void on_end(uint32_t host) { --active_[host]; }
  uint32_t active(uint32_t host) const { return active_[host]; }
  size_t host_count() const { return weights_.size(); }

 private:
  uint64_t next_random();
  bool usable(std::span<const uint8_t> available, uint32_t host) const {
    return available.empty() || available[host] != 0;
  }
  uint32_t pick_round_robin(std::span<const uint8_t> available);
  // By weight among usable hosts other than `except` (kNoHost: none excluded).
  uint32_t pick_weighted_random(std::span<const uint8_t> available, uint32_t except);
  uint32_t pick_least_request(std::span<const uint8_t> available);

  config::LoadBalancer policy_;
  std::vector<uint32_t> weights_;
  std::vector<int64_t> current_;  // smooth weighted round robin state
  std::vector<uint32_t> active_;
  uint64_t total_weight_ = 0;
  bool equal_weights_ = true;
  uint64_t rng_;
};

// `destination.multi.destinations[]` or an upstream group: one upstream per session, at random
// in proportion to the weights (Envoy's weighted_clusters). Weight 0 is never chosen.
class DestinationChooser {
 public:
  DestinationChooser(std::vector<uint32_t> weights, uint64_t seed);
  // Index into the weights; kNoHost only if every weight is 0 (the loader rejects that).
  uint32_t pick();

 private:
  std::vector<uint32_t> weights_;
  uint64_t total_ = 0;
  uint64_t rng_;
};

// Every host of one upstream on one worker: priority 0 is static.hosts, priority p the hosts
// of failover.prioritizedLocalities[p - 1]. A session uses the highest priority (lowest
// number) that has at least one available host: priority p only when every host of every
// priority above it is unavailable. (Envoy spills load gradually with an overprovisioning
// factor of 1.4; Ringway fails over all at once, which is what the brief of issue 11 asks
// and easier to reason about.) Within the priority the upstream's policy chooses; ringHash
// and maglev hash `source_hash` (hash_source_address of the downstream).
class HostPicker {
 public:
  struct Host {
    std::string key;  // "addr:port", the identity consistent hashing uses
    uint32_t weight = 1;
    uint32_t priority = 0;
  };
  HostPicker(config::LoadBalancer policy, const config::RingHashConfig& ring,
             std::vector<Host> hosts, uint64_t seed);

  // Index into the hosts given to the constructor, or kNoHost when none is available.
  uint32_t pick(uint64_t source_hash);
  // Health checks and outlier detection report here; a host starts available.
  void set_available(uint32_t host, bool available) { available_[host] = available ? 1 : 0; }
  bool available(uint32_t host) const { return available_[host] != 0; }
  void on_start(uint32_t host);
  void on_end(uint32_t host);
  size_t host_count() const { return hosts_.size(); }
  size_t priority_count() const { return levels_.size(); }

 private:
  struct Level {
    std::vector<uint32_t> hosts;  // indices into hosts_
    std::unique_ptr<Balancer> balancer;
    std::unique_ptr<RingHash> ring;
    std::unique_ptr<Maglev> maglev;
    std::vector<uint8_t> available;  // scratch, one byte per level host
  };
  std::vector<Host> hosts_;
  std::vector<uint8_t> available_;
  std::vector<uint32_t> level_of_, index_in_level_;
  std::vector<Level> levels_;
};

}  // namespace ringway::engine
