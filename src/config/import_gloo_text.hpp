// import-gloo's toolkit (internal to src/config): one resource's TOML being written with its
// "not carried" notes, TOML text (quoting, inline values), and YAML lookups that never throw.
// Split from import_gloo.cpp, which holds the knowledge of Gloo's resources.
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "ringway/config/import_gloo.hpp"
#include "ringway/config/model.hpp"

namespace ringway::config::import_detail {

using YAML::Node;

inline constexpr std::string_view kNotYet = "not supported by Ringway yet";
inline constexpr std::string_view kHttpOnly = "HTTP only; Ringway forwards TCP";
inline constexpr std::string_view kUnknown = "not a field Ringway knows in Gloo's resource";
inline constexpr std::string_view kEnterprise = "Gloo Enterprise only, not supported by Ringway";

struct Reason {
  std::string_view key;
  std::string_view why;
};

// One resource being written: its scalar keys, then its sub-tables, and the notes that go at
// the top. Written out only when the resource is kept.
struct Resource {
  std::string name;
  std::string namespace_ = kDefaultNamespace;
  std::vector<std::string> upstream_refs;  // "namespace/name" of every upstream referred to
  std::vector<std::string> notes;
  std::string body;
  std::string tables;

  void not_carried(const std::string& path, std::string_view why);
};

// A TOML basic string, escaped.
std::string quote(std::string_view s);
// A bare key when it can be one, else a quoted key.
std::string toml_key(std::string_view k);
// A scalar as TOML: an integer when YAML wrote a plain (unquoted) integer, true/false for plain
// booleans, a string otherwise. Gloo's int64 fields are int-or-string, and the loader accepts
// decimal strings and symbolic names where Gloo does.
std::string scalar(const Node& n);
// Any YAML value as an inline TOML value ({} for null: Gloo writes `roundRobin: {}`).
std::string inline_value(const Node& n);
// Like inline_value, but every key named in `drop` (at any depth) is left out, with a note
// naming its path and reason. Keys not named are carried: the loader judges them.
std::string filtered_value(Resource& r, const Node& n, const std::string& path,
                           std::initializer_list<Reason> drop);

// The value of `key` in a mapping; an undefined node when absent or not a mapping.
Node get(const Node& map, std::string_view key);
bool has(const Node& map, std::string_view key);
// "FILE:LINE:COL" of a node.
std::string where(const ImportSource& source, const Node& n);
std::string index_path(const std::string& path, size_t i);

// Notes every key of `map` that is not in `handled`, with its reason from `reasons` (or
// kUnknown).
void note_rest(Resource& r, const Node& map, const std::string& path,
               std::initializer_list<std::string_view> handled,
               std::initializer_list<Reason> reasons = {});
// `key = value` lines for the listed keys of `map` that are present.
std::string lines(const Node& map, std::initializer_list<std::string_view> keys);
// An inline table of the listed keys of `map`; the other keys are noted.
std::string inline_table(Resource& r, const Node& map, const std::string& path,
                         std::initializer_list<std::string_view> keys,
                         std::initializer_list<Reason> reasons = {});

}  // namespace ringway::config::import_detail
