// Names and help texts of the engine's counters, generated from the X-macro lists.
#include "ringway/engine/stats.hpp"

namespace ringway::engine {
namespace {
#define RINGWAY_STAT_INFO(name, kind, help) StatInfo{#name, StatKind::kind, help},
#define counter Counter
#define gauge Gauge
constexpr StatInfo kGatewayInfo[] = {RINGWAY_GATEWAY_STATS(RINGWAY_STAT_INFO)};
constexpr StatInfo kUpstreamInfo[] = {RINGWAY_UPSTREAM_STATS(RINGWAY_STAT_INFO)};
constexpr StatInfo kWorkerInfo[] = {RINGWAY_WORKER_STATS(RINGWAY_STAT_INFO)};
#undef counter
#undef gauge
#undef RINGWAY_STAT_INFO
}  // namespace

const StatInfo& info(GatewayStat s) {
  return kGatewayInfo[static_cast<size_t>(s)];
}
const StatInfo& info(UpstreamStat s) {
  return kUpstreamInfo[static_cast<size_t>(s)];
}
const StatInfo& info(WorkerStat s) {
  return kWorkerInfo[static_cast<size_t>(s)];
}

}  // namespace ringway::engine
