// Per-worker host choice (see balancer.hpp for the policies).
#include "ringway/engine/balancer.hpp"

#include <algorithm>

namespace ringway::engine {
namespace {

// xorshift64*: cheap, good enough to spread connections, and deterministic per seed.
uint64_t xorshift(uint64_t& state) {
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1DULL;
}

}  // namespace

Balancer::Balancer(config::LoadBalancer policy, std::vector<uint32_t> weights, uint64_t seed)
    : policy_(policy), weights_(std::move(weights)), rng_(seed | 1) {
  if (weights_.empty()) weights_.push_back(1);
  for (auto& w : weights_) {
    if (w == 0) w = 1;
    total_weight_ += w;
    equal_weights_ = equal_weights_ && w == weights_.front();
  }
  current_.assign(weights_.size(), 0);
  active_.assign(weights_.size(), 0);
}

uint64_t Balancer::next_random() {
  return xorshift(rng_);
}

uint32_t Balancer::pick_round_robin(std::span<const uint8_t> available) {
  // Smooth weighted round robin: every host gains its weight, the richest is chosen and pays
  // the total. Over total_weight picks each host is chosen exactly `weight` times, interleaved.
  // Unavailable hosts neither gain nor pay, so the others keep their proportions.
  uint32_t best = kNoHost;
  int64_t total = 0;
  for (uint32_t i = 0; i < weights_.size(); ++i) {
    if (!usable(available, i)) continue;
    current_[i] += weights_[i];
    total += weights_[i];
    if (best == kNoHost || current_[i] > current_[best]) best = i;
  }
  if (best != kNoHost) current_[best] -= total;
  return best;
}

uint32_t Balancer::pick_weighted_random(std::span<const uint8_t> available, uint32_t except) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < weights_.size(); ++i)
    if (i != except && usable(available, i)) total += equal_weights_ ? 1 : weights_[i];
  if (total == 0) return kNoHost;
  uint64_t r = next_random() % total;
  for (uint32_t i = 0; i < weights_.size(); ++i) {
    if (i == except || !usable(available, i)) continue;
    const uint64_t w = equal_weights_ ? 1 : weights_[i];
    if (r < w) return i;
    r -= w;
  }
  return kNoHost;
}

uint32_t Balancer::pick_least_request(std::span<const uint8_t> available) {
  // Power of two choices: two distinct candidates, the less loaded wins (ties go to the
  // first), which avoids herding on one "least" host. With unequal weights the candidates are
  // drawn by weight and compared by active / weight, so a host of weight 2 carries twice the
  // sessions of a host of weight 1 at equal load (Envoy weighs by weight / (active + 1)).
  uint32_t a = kNoHost, b = kNoHost;
  if (available.empty() && equal_weights_) {
    const auto n = static_cast<uint32_t>(weights_.size());
    a = static_cast<uint32_t>(next_random() % n);
    b = static_cast<uint32_t>(next_random() % (n - 1));
    if (b >= a) ++b;
  } else {
    a = pick_weighted_random(available, kNoHost);
    if (a == kNoHost) return kNoHost;
    b = pick_weighted_random(available, a);
    if (b == kNoHost) return a;
  }
  // active[b] / w[b] < active[a] / w[a], without division.
  const uint64_t load_a = static_cast<uint64_t>(active_[a]) * weights_[b];
  const uint64_t load_b = static_cast<uint64_t>(active_[b]) * weights_[a];
  return load_b < load_a ? b : a;
}

uint32_t Balancer::pick(std::span<const uint8_t> available) {
  if (weights_.size() == 1) return usable(available, 0) ? 0 : kNoHost;
  switch (policy_) {
    case config::LoadBalancer::RoundRobin:
      return pick_round_robin(available);
    case config::LoadBalancer::Random:
    // Without a key (this entry point has none), hashing policies pick as Envoy does on a TCP
    // proxy with no hash policy: at random. HostPicker is the keyed entry point.
    case config::LoadBalancer::RingHash:
    case config::LoadBalancer::Maglev:
      return pick_weighted_random(available, kNoHost);
    case config::LoadBalancer::LeastRequest:
      return pick_least_request(available);
  }
  return kNoHost;
}

uint32_t Balancer::pick() {
  return pick(std::span<const uint8_t>());
}

DestinationChooser::DestinationChooser(std::vector<uint32_t> weights, uint64_t seed)
    : weights_(std::move(weights)), rng_(seed | 1) {
  for (const auto w : weights_)
    total_ += w;
}

uint32_t DestinationChooser::pick() {
  if (total_ == 0) return kNoHost;
  uint64_t r = xorshift(rng_) % total_;
  for (uint32_t i = 0; i < weights_.size(); ++i) {
    if (r < weights_[i]) return i;
    r -= weights_[i];
  }
  return kNoHost;
}

HostPicker::HostPicker(config::LoadBalancer policy, const config::RingHashConfig& ring,
                       std::vector<Host> hosts, uint64_t seed)
    : hosts_(std::move(hosts)) {
  available_.assign(hosts_.size(), 1);
  level_of_.resize(hosts_.size());
  index_in_level_.resize(hosts_.size());
  uint32_t max_priority = 0;
  for (const auto& h : hosts_)
    max_priority = std::max(max_priority, h.priority);
  // One level per priority that has hosts, in priority order.
  std::vector<std::vector<uint32_t>> by_priority(hosts_.empty() ? 0 : max_priority + 1);
  for (uint32_t i = 0; i < hosts_.size(); ++i)
    by_priority[hosts_[i].priority].push_back(i);
  for (auto& members : by_priority) {
    if (members.empty()) continue;
    Level level;
    level.hosts = std::move(members);
    std::vector<uint32_t> weights;
    std::vector<HashHost> keyed;
    for (uint32_t j = 0; j < level.hosts.size(); ++j) {
      const Host& h = hosts_[level.hosts[j]];
      level_of_[level.hosts[j]] = static_cast<uint32_t>(levels_.size());
      index_in_level_[level.hosts[j]] = j;
      weights.push_back(h.weight);
      keyed.push_back({h.key, h.weight});
    }
    level.balancer = std::make_unique<Balancer>(policy, weights, seed + levels_.size());
    if (policy == config::LoadBalancer::RingHash) {
      level.ring =
          std::make_unique<RingHash>(keyed, ring.minimum_ring_size, ring.maximum_ring_size);
    } else if (policy == config::LoadBalancer::Maglev) {
      level.maglev = std::make_unique<Maglev>(keyed);
    }
    level.available.resize(level.hosts.size());
    levels_.push_back(std::move(level));
  }
}

uint32_t HostPicker::pick(uint64_t source_hash) {
  for (Level& level : levels_) {
    bool any = false;
    for (size_t j = 0; j < level.hosts.size(); ++j) {
      level.available[j] = available_[level.hosts[j]];
      any = any || level.available[j] != 0;
    }
    if (!any) continue;
    uint32_t j = kNoHost;
    if (level.ring) {
      j = level.ring->pick(source_hash, level.available);
    } else if (level.maglev) {
      j = level.maglev->pick(source_hash, level.available);
    } else {
      j = level.balancer->pick(level.available);
    }
    if (j != kNoHost) return level.hosts[j];
  }
  return kNoHost;
}

void HostPicker::on_start(uint32_t host) {
  levels_[level_of_[host]].balancer->on_start(index_in_level_[host]);
}

void HostPicker::on_end(uint32_t host) {
  levels_[level_of_[host]].balancer->on_end(index_in_level_[host]);
}

}  // namespace ringway::engine
