// TOML -> model. Parses, validates (types, ranges, references, duplicates, unsupported Gloo
// fields, unknown keys with a did-you-mean) and fills in every default from model.hpp.
// No sockets: the scratch-socket trial of socket options lives in net/ (net::check_config).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringway/config/diagnostic.hpp"
#include "ringway/config/model.hpp"

namespace ringway::config {

struct LoadResult {
  std::optional<Config> config;         // set when there are no errors
  std::vector<Diagnostic> diagnostics;  // errors and warnings, in file order
  bool ok() const { return config.has_value(); }
};

LoadResult load_file(const std::string& path);
// `source_name` is what messages call the file.
LoadResult load_string(std::string_view text, std::string_view source_name);

// The effective config as TOML, every default filled in, in the same shape the loader reads
// (so print -> load round-trips).
std::string to_toml(const Config& config);

// settings.logLevel spelling: "debug", "info", "notice", "warning", "error".
std::string_view log_level_name(LogLevel level);
std::optional<LogLevel> log_level_from_name(std::string_view name);
// sniPassthrough.onNoMatch spelling: "close", "reset".
std::string_view sni_no_match_name(SniNoMatch action);

}  // namespace ringway::config
