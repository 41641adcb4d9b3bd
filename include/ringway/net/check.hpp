// Config checks that need the kernel: every listener and upstream socket option tried on a
// scratch socket at its state, and bind addresses parsed, so --check reports what the kernel
// would refuse, with the option's description and its line:col.
#pragma once

#include "ringway/config/diagnostic.hpp"
#include "ringway/config/model.hpp"

namespace ringway::net {

// Appends an error per refused option (never binds a real port: it binds port 0 on the
// gateway's address family loopback).
void check_config(const config::Config& config, config::Diagnostics& diagnostics);

}  // namespace ringway::net
