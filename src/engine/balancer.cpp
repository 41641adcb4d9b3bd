// Per-worker host choice (see balancer.hpp for the policies).
#include "ringway/engine/balancer.hpp"

namespace ringway::engine {

Balancer::Balancer(config::LoadBalancer policy, std::vector<uint32_t> weights, uint64_t seed)
    : policy_(policy), weights_(std::move(weights)), rng_(seed | 1) {
  if (weights_.empty()) weights_.push_back(1);
  for (auto& w : weights_) {
    if (w == 0) w = 1;
    total_weight_ += w;
  }
  current_.assign(weights_.size(), 0);
  active_.assign(weights_.size(), 0);
}

uint64_t Balancer::next_random() {
  // xorshift64*: cheap, good enough to spread connections, and deterministic per seed.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 0x2545F4914F6CDD1DULL;
}

uint32_t Balancer::pick_round_robin() {
  // Smooth weighted round robin: every host gains its weight, the richest is chosen and pays
  // the total. Over total_weight picks each host is chosen exactly `weight` times, interleaved.
  uint32_t best = 0;
  for (uint32_t i = 0; i < weights_.size(); ++i) {
    current_[i] += weights_[i];
    if (current_[i] > current_[best]) best = i;
  }
  current_[best] -= static_cast<int64_t>(total_weight_);
  return best;
}

uint32_t Balancer::pick_weighted_random() {
  uint64_t r = next_random() % total_weight_;
  for (uint32_t i = 0; i < weights_.size(); ++i) {
    if (r < weights_[i]) return i;
    r -= weights_[i];
  }
  return static_cast<uint32_t>(weights_.size() - 1);
}

uint32_t Balancer::pick() {
  const auto n = static_cast<uint32_t>(weights_.size());
  if (n == 1) return 0;
  switch (policy_) {
    case config::LoadBalancer::RoundRobin:
      return pick_round_robin();
    case config::LoadBalancer::Random:
      return pick_weighted_random();
    case config::LoadBalancer::LeastRequest: {
      // Power of two choices: two distinct hosts at random, the one with fewer active
      // connections wins (ties go to the first), which avoids herding on one "least" host.
      const auto a = static_cast<uint32_t>(next_random() % n);
      auto b = static_cast<uint32_t>(next_random() % (n - 1));
      if (b >= a) ++b;
      return active_[b] < active_[a] ? b : a;
    }
  }
  return 0;
}

}  // namespace ringway::engine
