// Helpers for the config unit tests: load a TOML snippet as "test.toml" and get every
// diagnostic as the exact line a user would read.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ringway/config/diagnostic.hpp"
#include "ringway/config/loader.hpp"

namespace ringway::config::testing {

inline LoadResult load(std::string_view toml) {
  return load_string(toml, "test.toml");
}

inline std::vector<std::string> messages(const LoadResult& result) {
  std::vector<std::string> out;
  for (const auto& d : result.diagnostics)
    out.push_back(format(d));
  return out;
}

inline std::vector<std::string> errors(const LoadResult& result) {
  std::vector<std::string> out;
  for (const auto& d : result.diagnostics)
    if (d.severity == Diagnostic::Severity::Error) out.push_back(format(d));
  return out;
}

// A complete, valid config (no warnings) that tests append to or take apart. Lines 1..13.
inline constexpr std::string_view kValid = R"toml([[gateways]]
metadata = { name = "tcp" }
bindAddress = "127.0.0.1"
bindPort = 8000
[gateways.tcpGateway.options.connectionLimit]
maxActiveConnections = 100
[[gateways.tcpGateway.tcpHosts]]
name = "one"
destination.single.upstream = { name = "echo" }
[[upstreams]]
metadata = { name = "echo" }
static.hosts = [{ addr = "127.0.0.1", port = 9000 }]
)toml";

}  // namespace ringway::config::testing
