// Running the forwarder: resolve upstreams, start the engine, report readiness, handle
// SIGTERM/SIGINT (drain, then force-close at drainTimeout; a second signal stops at once).
#pragma once

#include "ringway/config/model.hpp"

namespace ringway::app {

// Runs until stopped; returns the process exit code (0 after a drain, 69 when io_uring is
// unavailable, 1 on other start-up failures such as a port in use).
int run_server(const config::Config& config);

}  // namespace ringway::app
