// import-gloo's toolkit: TOML text and YAML lookups (contract in import_gloo_text.hpp).
#include "import_gloo_text.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ringway::config::import_detail {

void Resource::not_carried(const std::string& path, std::string_view why) {
  notes.push_back(fmt::format("# not carried: {}: {}", path, why));
}

// ---- TOML text -------------------------------------------------------------------------------

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          out += fmt::format("\\u{:04X}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string toml_key(std::string_view k) {
  const bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  return bare ? std::string(k) : quote(k);
}

namespace {

bool is_integer(const std::string& s) {
  const size_t start = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  return s.size() > start && s.size() - start <= 18 &&
         std::all_of(s.begin() + static_cast<std::ptrdiff_t>(start), s.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

// A scalar as TOML: an integer when YAML wrote a plain (unquoted) integer, true/false for
// plain booleans, a string otherwise. Gloo's int64 fields are int-or-string, and the loader
// accepts decimal strings and symbolic names where Gloo does.
std::string scalar(const Node& n) {
  const std::string& s = n.Scalar();
  const bool plain = n.Tag() != "!";
  if (plain && is_integer(s)) return s[0] == '+' ? s.substr(1) : s;
  if (plain && (s == "true" || s == "false")) return s;
  return quote(s);
}

// Any YAML value as an inline TOML value ({} for null: Gloo writes `roundRobin: {}`).
std::string inline_value(const Node& n) {
  if (n.IsScalar()) return scalar(n);
  if (n.IsSequence()) {
    std::string out = "[";
    for (size_t i = 0; i < n.size(); ++i)
      out += (i == 0 ? " " : ", ") + inline_value(n[i]);
    return out + (n.size() > 0 ? " ]" : "]");
  }
  if (n.IsMap()) {
    std::string out = "{";
    bool first = true;
    for (const auto& kv : n) {
      out += (first ? " " : ", ") + toml_key(kv.first.Scalar()) + " = " + inline_value(kv.second);
      first = false;
    }
    return out + (first ? "}" : " }");
  }
  return "{}";
}

std::string filtered_value(Resource& r, const Node& n, const std::string& path,
                           std::initializer_list<Reason> drop) {
  if (n.IsSequence()) {
    std::string out = "[";
    for (size_t i = 0; i < n.size(); ++i)
      out += (i == 0 ? " " : ", ") + filtered_value(r, n[i], index_path(path, i), drop);
    return out + (n.size() > 0 ? " ]" : "]");
  }
  if (!n.IsMap()) return inline_value(n);
  std::string out = "{";
  bool first = true;
  for (const auto& kv : n) {
    const std::string& key = kv.first.Scalar();
    const auto it =
        std::find_if(drop.begin(), drop.end(), [&](const Reason& d) { return d.key == key; });
    if (it != drop.end()) {
      r.not_carried(path + "." + key, it->why);
      continue;
    }
    out += (first ? " " : ", ") + toml_key(key) + " = " +
           filtered_value(r, kv.second, path + "." + key, drop);
    first = false;
  }
  return out + (first ? "}" : " }");
}

// ---- YAML access -----------------------------------------------------------------------------

Node get(const Node& map, std::string_view key) {
  if (!map.IsMap()) return Node(YAML::NodeType::Undefined);
  for (const auto& kv : map)
    if (kv.first.Scalar() == key) return kv.second;
  return Node(YAML::NodeType::Undefined);
}

bool has(const Node& map, std::string_view key) {
  return get(map, key).IsDefined();
}

std::string where(const ImportSource& source, const Node& n) {
  const YAML::Mark m = n.Mark();
  return fmt::format("{}:{}:{}", source.name, m.line + 1, m.column + 1);
}

std::string index_path(const std::string& path, size_t i) {
  return fmt::format("{}[{}]", path, i);
}

// Notes every key of `map` that is not in `handled`, with its reason from `reasons`.
void note_rest(Resource& r, const Node& map, const std::string& path,
               std::initializer_list<std::string_view> handled,
               std::initializer_list<Reason> reasons) {
  if (!map.IsMap()) return;
  for (const auto& kv : map) {
    const std::string& key = kv.first.Scalar();
    if (std::find(handled.begin(), handled.end(), key) != handled.end()) continue;
    std::string_view why = kUnknown;
    for (const Reason& reason : reasons)
      if (reason.key == key) why = reason.why;
    r.not_carried(path + "." + key, why);
  }
}

// `key = value` lines for the listed keys of `map` that are present (scalars or inline values).
std::string lines(const Node& map, std::initializer_list<std::string_view> keys) {
  std::string out;
  for (std::string_view k : keys) {
    const Node v = get(map, k);
    if (v.IsDefined() && !v.IsNull()) out += fmt::format("{} = {}\n", k, inline_value(v));
  }
  return out;
}

// An inline table of the listed keys of `map`; the other keys are noted.
std::string inline_table(Resource& r, const Node& map, const std::string& path,
                         std::initializer_list<std::string_view> keys,
                         std::initializer_list<Reason> reasons) {
  note_rest(r, map, path, keys, reasons);
  std::string out = "{";
  bool first = true;
  for (std::string_view k : keys) {
    const Node v = get(map, k);
    if (!v.IsDefined() || v.IsNull()) continue;
    out += fmt::format("{}{} = {}", first ? " " : ", ", k, inline_value(v));
    first = false;
  }
  return out + (first ? "}" : " }");
}

}  // namespace ringway::config::import_detail
