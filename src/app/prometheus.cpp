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
  for (size_t i = 0; i < static_cast<size_t>(engine::WorkerStat::kCount); ++i) {
    header(out, engine::info(static_cast<engine::WorkerStat>(i)));
    for (size_t w = 0; w < stats.workers.size(); ++w)
      fmt::format_to(std::back_inserter(out), "ringway_{}{{worker=\"{}\"}} {}\n",
                     engine::info(static_cast<engine::WorkerStat>(i)).name, w, stats.workers[w][i]);
  }
  return out;
}

}  // namespace ringway::app
