// Prometheus text rendering of an engine::StatsSnapshot (see prometheus.hpp).
#include "ringway/app/prometheus.hpp"

#include <fmt/format.h>

namespace ringway::app {
namespace {

void header(std::string& out, const engine::StatInfo& info) {
  fmt::format_to(std::back_inserter(out), "# HELP ringway_{} {}\n# TYPE ringway_{} {}\n", info.name,
                 info.help, info.name,
                 info.kind == engine::StatKind::Counter ? "counter" : "gauge");
}

// Label values are config ids (namespace.name); TOML strings may hold quotes or backslashes,
// which the exposition format requires escaped.
std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string prometheus_text(const engine::StatsSnapshot& stats, uint32_t workers) {
  std::string out;
  out.reserve(8192);
  out += "# HELP ringway_workers worker threads\n# TYPE ringway_workers gauge\n";
  fmt::format_to(std::back_inserter(out), "ringway_workers {}\n", workers);

  for (size_t i = 0; i < static_cast<size_t>(engine::GatewayStat::kCount); ++i) {
    header(out, engine::info(static_cast<engine::GatewayStat>(i)));
    for (const auto& g : stats.gateways)
      fmt::format_to(std::back_inserter(out), "ringway_{}{{gateway=\"{}\"}} {}\n",
                     engine::info(static_cast<engine::GatewayStat>(i)).name, escape(g.id),
                     g.gateway[i]);
  }
  for (size_t i = 0; i < static_cast<size_t>(engine::UpstreamStat::kCount); ++i) {
    header(out, engine::info(static_cast<engine::UpstreamStat>(i)));
    for (const auto& u : stats.upstreams)
      fmt::format_to(std::back_inserter(out), "ringway_{}{{upstream=\"{}\"}} {}\n",
                     engine::info(static_cast<engine::UpstreamStat>(i)).name, escape(u.id),
                     u.upstream[i]);
  }
  // Per host: active health (1 healthy, 0 unhealthy; always 1 without healthChecks), outlier
  // ejection, and how often each changed.
  struct HostMetric {
    const char* name;
    const char* kind;
    const char* help;
    int64_t (*value)(const engine::StatsSnapshot::Host&);
  };
  static constexpr HostMetric kHostMetrics[] = {
      {"upstream_host_healthy", "gauge",
       "1 when the host passes its active health checks (or has none), 0 when unhealthy",
       [](const engine::StatsSnapshot::Host& h) -> int64_t { return h.healthy ? 1 : 0; }},
      {"upstream_host_ejected", "gauge", "1 while outlier detection has ejected the host",
       [](const engine::StatsSnapshot::Host& h) -> int64_t { return h.ejected ? 1 : 0; }},
      {"upstream_host_unhealthy_transitions_total", "counter",
       "times the host's health checks turned it unhealthy",
       [](const engine::StatsSnapshot::Host& h) { return h.became_unhealthy; }},
      {"upstream_host_healthy_transitions_total", "counter",
       "times the host's health checks turned it healthy again",
       [](const engine::StatsSnapshot::Host& h) { return h.became_healthy; }},
      {"upstream_host_ejections_total", "counter", "times outlier detection ejected the host",
       [](const engine::StatsSnapshot::Host& h) { return h.ejections; }},
  };
  for (const auto& m : kHostMetrics) {
    fmt::format_to(std::back_inserter(out), "# HELP ringway_{} {}\n# TYPE ringway_{} {}\n", m.name,
                   m.help, m.name, m.kind);
    for (const auto& h : stats.hosts)
      fmt::format_to(std::back_inserter(out),
                     "ringway_{}{{upstream=\"{}\",host=\"{}\",priority=\"{}\"}} {}\n", m.name,
                     escape(h.upstream), escape(h.host), h.priority, m.value(h));
  }
  for (size_t i = 0; i < static_cast<size_t>(engine::WorkerStat::kCount); ++i) {
    header(out, engine::info(static_cast<engine::WorkerStat>(i)));
    for (size_t w = 0; w < stats.workers.size(); ++w)
      fmt::format_to(std::back_inserter(out), "ringway_{}{{worker=\"{}\"}} {}\n",
                     engine::info(static_cast<engine::WorkerStat>(i)).name, w, stats.workers[w][i]);
  }
  return out;
}

}  // namespace ringway::app
