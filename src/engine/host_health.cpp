// Health-check thresholds and outlier ejection (see host_health.hpp).
#include "ringway/engine/host_health.hpp"

#include <algorithm>

namespace ringway::engine {

HealthState::HealthState(uint32_t healthy_threshold, uint32_t unhealthy_threshold)
    : healthy_threshold_(std::max<uint32_t>(healthy_threshold, 1)),
      unhealthy_threshold_(std::max<uint32_t>(unhealthy_threshold, 1)) {}

bool HealthState::on_success() {
  failures_ = 0;
  ++successes_;
  const bool first = !checked_;
  checked_ = true;
  if (healthy_) return false;
  if (first || successes_ >= healthy_threshold_) {
    healthy_ = true;
    return true;
  }
  return false;
}

bool HealthState::on_failure() {
  successes_ = 0;
  ++failures_;
  checked_ = true;
  if (!healthy_) return false;
  if (failures_ >= unhealthy_threshold_) {
    healthy_ = false;
    return true;
  }
  return false;
}

OutlierDetector::OutlierDetector(const config::OutlierDetection& config, size_t hosts,
                                 uint64_t seed)
    : config_(config), hosts_(hosts), rng_(seed | 1) {}

bool OutlierDetector::roll(uint32_t percent) {
  if (percent >= 100) return true;
  if (percent == 0) return false;
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return (rng_ * 0x2545F4914F6CDD1DULL) % 100 < percent;
}

bool OutlierDetector::may_eject() const {
  // Envoy: "will eject at least one host regardless of the value".
  if (ejected_count_ == 0) return true;
  return (ejected_count_ + 1) * 100 <=
         static_cast<uint64_t>(config_.max_ejection_percent) * hosts_.size();
}

bool OutlierDetector::eject(Host& h, config::Duration now) {
  h.consecutive_5xx = h.consecutive_gateway = h.consecutive_local = 0;
  if (!may_eject()) return false;
  ++h.multiplier;
  const config::Duration cap =
      std::max(config::kDefaultMaxEjectionTime, config_.base_ejection_time);
  h.until = now + std::min(config_.base_ejection_time * h.multiplier, cap);
  h.ejected = true;
  ++ejected_count_;
  return true;
}

bool OutlierDetector::on_local_origin_failure(uint32_t host, config::Duration now) {
  Host& h = hosts_[host];
  h.failed_this_interval = true;
  if (h.ejected) return false;  // late failures of sessions started before the ejection
  if (config_.split_external_local_origin_errors) {
    if (++h.consecutive_local >= config_.consecutive_local_origin_failure &&
        roll(config_.enforcing_consecutive_local_origin_failure)) {
      return eject(h, now);
    }
    return false;
  }
  const bool by_5xx =
      ++h.consecutive_5xx >= config_.consecutive_5xx && roll(config_.enforcing_consecutive_5xx);
  const bool by_gateway = ++h.consecutive_gateway >= config_.consecutive_gateway_failure &&
                          roll(config_.enforcing_consecutive_gateway_failure);
  if (by_5xx || by_gateway) return eject(h, now);
  return false;
}

void OutlierDetector::on_success(uint32_t host) {
  Host& h = hosts_[host];
  h.consecutive_5xx = h.consecutive_gateway = h.consecutive_local = 0;
}

std::vector<uint32_t> OutlierDetector::on_interval(config::Duration now) {
  std::vector<uint32_t> returned;
  for (uint32_t i = 0; i < hosts_.size(); ++i) {
    Host& h = hosts_[i];
    if (h.ejected) {
      if (now >= h.until) {
        h.ejected = false;
        --ejected_count_;
        returned.push_back(i);
      }
    } else if (!h.failed_this_interval && h.multiplier > 0) {
      --h.multiplier;
    }
    h.failed_this_interval = false;
  }
  return returned;
}

}  // namespace ringway::engine
