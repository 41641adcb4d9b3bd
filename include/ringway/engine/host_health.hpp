// Per-host health for one upstream, as plain state machines the host picker consults:
// HealthState follows active health-check results (Envoy's thresholds), OutlierDetector
// ejects hosts on consecutive local-origin failures (connect failures, resets) as Envoy's
// outlier detection does. Time is passed in (a monotonic Duration), never read here, so the
// machines are deterministic and the worker drives them from its own timers.
#pragma once

#include <cstdint>
#include <vector>

#include "ringway/config/model.hpp"

namespace ringway::engine {

// Active health of one host. As in Envoy, a host starts unhealthy and its first successful
// check makes it healthy at once ("during startup, only a single successful health check is
// required"); afterwards it takes `unhealthy_threshold` failures in a row to become
// unhealthy and `healthy_threshold` successes in a row to become healthy again.
class HealthState {
 public:
  HealthState(uint32_t healthy_threshold, uint32_t unhealthy_threshold);

  // Each returns true when this result changed healthy(), for the caller's log line.
  bool on_success();
  bool on_failure();
  bool healthy() const { return healthy_; }
  uint32_t successes_in_a_row() const { return successes_; }
  uint32_t failures_in_a_row() const { return failures_; }

 private:
  uint32_t healthy_threshold_;
  uint32_t unhealthy_threshold_;
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
  bool healthy_ = false;
  bool checked_ = false;  // no result yet: the first success counts as enough
};

// Passive ejection for the hosts of one upstream (all priorities together, as Envoy counts).
class OutlierDetector {
 public:
  // `seed` drives the enforcing* percentages (100 = always eject, 0 = never).
  OutlierDetector(const config::OutlierDetection& config, size_t hosts, uint64_t seed);

  // A connect failure or reset on `host` at `now`. Returns true when it ejected the host.
  // With splitExternalLocalOriginErrors it counts against consecutiveLocalOriginFailure;
  // without, as Envoy maps it to a 503, against consecutive5xx and consecutiveGatewayFailure.
  bool on_local_origin_failure(uint32_t host, config::Duration now);
  // A connection that succeeded: the host's consecutive counts start again.
  void on_success(uint32_t host);
  // The interval sweep (call every config.interval): returns the hosts whose ejection time
  // (baseEjectionTime x times ejected, capped) is over, now un-ejected. A host that stayed in
  // service for a whole interval has its ejection multiplier reduced by one (Envoy >= 1.19).
  std::vector<uint32_t> on_interval(config::Duration now);

  bool ejected(uint32_t host) const { return hosts_[host].ejected; }
  uint32_t times_ejected(uint32_t host) const { return hosts_[host].multiplier; }
  size_t ejected_count() const { return ejected_count_; }
  // When an ejected host returns (for tests and /stats).
  config::Duration ejected_until(uint32_t host) const { return hosts_[host].until; }

 private:
  struct Host {
    uint32_t consecutive_5xx = 0;
    uint32_t consecutive_gateway = 0;
    uint32_t consecutive_local = 0;
    uint32_t multiplier = 0;  // ejections so far, minus intervals served since
    bool ejected = false;
    bool failed_this_interval = false;
    config::Duration until{0};
  };
  bool roll(uint32_t percent);
  // Whether one more ejection keeps within maxEjectionPercent (one host is always allowed).
  bool may_eject() const;
  bool eject(Host& h, config::Duration now);

  config::OutlierDetection config_;
  std::vector<Host> hosts_;
  size_t ejected_count_ = 0;
  uint64_t rng_;
};

}  // namespace ringway::engine
