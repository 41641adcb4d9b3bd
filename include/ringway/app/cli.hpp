// The command line: `ringway -c FILE` runs the forwarder; --check validates (exit 0 / 78),
// --print-config prints the effective config, --version, --help.
#pragma once

namespace ringway::app {

// EX_CONFIG from sysexits.h: the config is invalid.
inline constexpr int kExitConfigInvalid = 78;

int cli_main(int argc, char** argv);

}  // namespace ringway::app
