// Value syntaxes the config shares with Gloo's YAML: durations (protobuf-JSON "60s"/"0.5s" and
// Go "1m30s"/"500ms"), base64 for `bufValue` (protobuf JSON encodes bytes that way), and the
// printing side of both for --print-config. Pure functions, no TOML.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ringway/config/model.hpp"
#include "ringway/core/result.hpp"

namespace ringway::config {

// Parses a duration into nanoseconds: one or more `<number><unit>` parts, the number decimal
// with an optional fraction (at most 9 digits), the unit one of ns, us (µs), ms, s, m, h; a bare
// "0" is accepted as Go does. Rejects empty, negative, unit-less, unknown units and anything
// beyond int64 nanoseconds (~292 years). A fraction that does not land on a whole nanosecond
// rounds up, so a non-zero duration never becomes zero. Error::message says what is wrong,
// without the input (the caller quotes it).
Result<int64_t> parse_duration_ns(std::string_view text);

// Nanoseconds -> the model's milliseconds, and -> whole seconds, both rounded up (as Gloo
// rounds keepalive durations up to whole seconds).
Duration ceil_to_duration(int64_t ns);
int64_t ceil_to_seconds(int64_t ns);

// "3600s", "0.5s", "0.001s": seconds with the fraction trimmed, which parse_duration_ns reads
// back to the same value (the --print-config form).
std::string format_duration(Duration d);

// Standard alphabet, '=' padding required, no whitespace. nullopt when invalid.
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);
// Envoy's health-check Payload.text: hex digits (either case), two per byte. nullopt on an odd
// length or a non-hex character.
std::optional<std::string> hex_decode(std::string_view text);
std::string hex_encode(std::string_view bytes);  // lowercase

// `text` in double quotes with quotes, backslashes and control bytes escaped, for messages.
std::string quoted(std::string_view text);

}  // namespace ringway::config
