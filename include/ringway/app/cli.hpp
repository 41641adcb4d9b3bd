// The command line: `ringway -c FILE` runs the forwarder; --check validates (exit 0 / 78),
// --print-config prints the effective config, --version, --help; `import-gloo FILE...`
// converts Gloo YAML to TOML.
#pragma once

namespace ringway::app {

// EX_CONFIG from sysexits.h: the config is invalid.
inline constexpr int kExitConfigInvalid = 78;
// EX_DATAERR: import-gloo input that is not YAML, or holds nothing Ringway can carry.
inline constexpr int kExitDataError = 65;
// EX_NOINPUT: an input file cannot be read.
inline constexpr int kExitNoInput = 66;

int cli_main(int argc, char** argv);

}  // namespace ringway::app
