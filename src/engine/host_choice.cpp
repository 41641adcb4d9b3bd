// Which upstream and which host a session connects to: the weighted destinations of a tcpHost
// (destination.multi, upstreamGroup), then HostPicker over the upstream's hosts of every
// failover priority, with the availability that health checks and outlier detection publish
// (host_state.hpp). Outlier detection's bookkeeping (connect results, the interval sweep) is
// here too.
#include <algorithm>

#include "ringway/core/log.hpp"
#include "worker.hpp"

namespace ringway::engine {

void Worker::init_host_choice() {
  const auto& config = *shared_.config;
  for (size_t u = 0; u < config.upstreams.size(); ++u) {
    const auto& up = config.upstreams[u];
    const auto& resolved = shared_.upstreams[u];
    std::vector<HostPicker::Host> hosts;
    for (size_t h = 0; h < resolved.hosts.size(); ++h) {
      // The hash identity is the resolved address, the same on every worker and in every
      // process, so a reload keeps each source on its host.
      hosts.push_back({resolved.hosts[h].to_string(), std::max<uint32_t>(1, resolved.weights[h]),
                       resolved.priorities[h]});
    }
    // Seeded per worker and upstream so random choices differ between workers.
    pickers_.emplace_back(up.load_balancer, up.ring_hash, std::move(hosts),
                          0x9E3779B97F4A7C15ULL * (index_ + 1) + u);
  }
  for (size_t g = 0; g < config.gateways.size(); ++g) {
    auto& per_host = destinations_.emplace_back();
    for (const auto& th : config.gateways[g].tcp_hosts) {
      auto& chooser = per_host.emplace_back();
      if (th.kind == config::TcpHost::Kind::Single || th.destinations.empty()) continue;
      std::vector<uint32_t> weights;
      for (const auto& d : th.destinations)
        weights.push_back(d.weight);
      chooser.emplace(std::move(weights),
                      0xD1B54A32D192ED03ULL * (index_ + 1) + g * 977 + th.index);
    }
  }
}

net::SocketAddress Worker::source_address(uint32_t slot) {
  // A PROXY header's source is the real client (worker_preamble.cpp).
  if (sessions_.at(slot).proxied) return client_address(slot);
  // The access log keeps the peer read at accept; otherwise ask the socket (one getpeername,
  // only for the hashing policies).
  if (shared_.sink && slot < downstream_peers_.size()) return downstream_peers_[slot];
  auto peer = net::SocketAddress::peer_of(sessions_.at(slot).downstream_fd);
  return peer ? *peer : net::SocketAddress{};
}

uint32_t Worker::pick_host(uint32_t slot) {
  const Session& s = sessions_.at(slot);
  HostPicker& picker = pickers_[s.upstream];
  const UpstreamHostState& state = *shared_.host_states[s.upstream];
  for (uint32_t h = 0; h < picker.host_count(); ++h)
    picker.set_available(h, state.available(h));
  uint64_t source_hash = 0;
  const auto policy = shared_.config->upstreams[s.upstream].load_balancer;
  if (policy == config::LoadBalancer::RingHash || policy == config::LoadBalancer::Maglev) {
    const net::SocketAddress source = source_address(slot);
    source_hash = source.length > 0 ? hash_source_address(source.get()) : 0;
  }
  // A retry prefers another host than the one that just failed (for every policy: a hashing
  // policy would otherwise pick the same host again), and takes it again only when it is the
  // last one available.
  if (s.attempts > 0 && picker.available(s.host) && picker.host_count() > 1) {
    picker.set_available(s.host, false);
    const uint32_t other = picker.pick(source_hash);
    if (other != kNoHost) return other;
    picker.set_available(s.host, true);
  }
  return picker.pick(source_hash);
}

void Worker::report_host_result(uint32_t upstream, uint32_t host, bool ok) {
  UpstreamHostState& state = *shared_.host_states[upstream];
  if (!state.outlier) return;
  bool ejected = false;
  {
    std::lock_guard lock(state.outlier_mu);
    if (ok) {
      state.outlier->on_success(host);
    } else {
      ejected = state.outlier->on_local_origin_failure(host, config::Duration(now_ms_));
    }
  }
  if (!ejected) return;
  state.ejected[host].store(1, std::memory_order_relaxed);
  state.ejections[host].fetch_add(1, std::memory_order_relaxed);
  log::warning(
      "upstream {}: host {} ejected by outlier detection (consecutive connect failures "
      "or resets)",
      shared_.upstream_ids[upstream], shared_.upstreams[upstream].hosts[host].to_string());
}

// The sweep that returns ejected hosts runs on one worker per upstream (upstream % workers),
// every outlierDetection.interval, as Envoy's does.
void Worker::schedule_outlier_sweep(uint32_t upstream) {
  const auto& od = shared_.config->upstreams[upstream].outlier_detection;
  const int64_t interval = std::max<int64_t>(kTickMs, od->interval.count());
  const uint64_t payload = (static_cast<uint64_t>(TimerKind::OutlierSweep) << 56) | upstream;
  timers_.insert(tick_at(now_ms_ + interval), payload);
}

void Worker::on_outlier_sweep(uint32_t upstream) {
  if (draining_ || handing_over_) return;  // a stopping worker keeps no timer of its own
  UpstreamHostState& state = *shared_.host_states[upstream];
  std::vector<uint32_t> returned;
  {
    std::lock_guard lock(state.outlier_mu);
    returned = state.outlier->on_interval(config::Duration(now_ms_));
  }
  for (const uint32_t h : returned) {
    state.ejected[h].store(0, std::memory_order_relaxed);
    log::notice("upstream {}: host {} returns from outlier ejection",
                shared_.upstream_ids[upstream], shared_.upstreams[upstream].hosts[h].to_string());
  }
  schedule_outlier_sweep(upstream);
}

}  // namespace ringway::engine
