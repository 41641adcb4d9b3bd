// Running the forwarder: resolve upstreams, start the engine, report readiness, handle
// SIGTERM/SIGINT (drain, then force-close at drainTimeout; a second signal stops at once),
// SIGHUP (reload: hand everything to a new process, see handover.hpp).
#pragma once

#include "ringway/app/handover.hpp"
#include "ringway/config/model.hpp"

namespace ringway::app {

// Runs until stopped; returns the process exit code (0 after a drain or a completed reload,
// 69 when io_uring is unavailable, 1 on other start-up failures such as a port in use).
// `self` says how to start a successor at SIGHUP, and whether this process is one.
int run_server(const config::Config& config, const handover::ProcessInfo& self);

}  // namespace ringway::app
