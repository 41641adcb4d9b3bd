// Engine counters as Prometheus text exposition (version 0.0.4), for the admin endpoint.
#pragma once

#include <string>

#include "ringway/engine/engine.hpp"

namespace ringway::app {

// One HELP/TYPE block per stat; gateway stats labelled {gateway="ns.name"}, upstream stats
// {upstream="ns.name"}, worker stats {worker="N"}; plus ringway_workers.
std::string prometheus_text(const engine::StatsSnapshot& stats, uint32_t workers);

}  // namespace ringway::app
