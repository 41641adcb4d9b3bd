// Internal to the config layer: a lexical pre-scan for inputs that crash toml++ 3.3 (the
// version Debian 12 ships) instead of making it return a parse error. The loader runs it before
// toml::parse and reports what it finds as an ordinary TOML error with line:col.
#pragma once

#include <optional>
#include <string_view>

#include "ringway/config/model.hpp"

namespace ringway::config::detail {

struct Hazard {
  SourcePos pos;
  std::string_view message;  // "invalid TOML: ..." (static storage)
};

// Inputs that crash toml++ 3.3 (Debian 12's), found by the fuzzer, so the loader reports them
// before toml++ sees them:
//  - a table header whose '[' is followed by neither a key nor ']' ("[~", "[#", "[\n"): an
//    assertion (an assumption, with NDEBUG under clang) in parse_key;
//  - a non-ASCII code point where toml++ asks "is this whitespace?": its generated
//    is_non_ascii_horizontal_whitespace() reaches __builtin_unreachable() for most code points
//    from U+00A1 to U+0499 and U+2CFE to U+30F7. It asks outside strings and comments, for
//    every character of a bare value (number, boolean, date: quotes do not end one), and in
//    multi-line basic strings right after a backslash (or a line-ending backslash);
//  - '}' where an array expects a value ("[ }", "[1, }"): an assertion in parse_value;
//  - a date-time value whose 'T' is not followed by a digit ("1980-05-27Tx"): an assertion in
//    parse_time.
// Every flagged input is invalid TOML 1.0 except one rare kind (a non-ASCII character just after
// a line-ending backslash), which no Ringway config needs. The scan skips strings and comments
// and tracks arrays and inline tables the way toml++ does up to its first error.
std::optional<Hazard> find_parser_hazard(std::string_view text);

}  // namespace ringway::config::detail
