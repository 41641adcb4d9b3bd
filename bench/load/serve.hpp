// The backend subcommand of ringway-load (serve.cpp).
#pragma once

#include "common.hpp"

namespace ringway::load {

// Listens on options.target and serves until SIGINT/SIGTERM or options.duration_s (> 0).
int run_serve(const Options& options);

}  // namespace ringway::load
