// `gateways.options.socketOptions[]`: one raw setsockopt as Gloo writes it. level and name take
// a number, a decimal string (the CRD's int-or-string) or a symbolic name; intValue must fit
// int32 (Envoy truncates silently, Ringway refuses) and the kernel's range when the option is
// known; bufValue is base64.
#include <sys/socket.h>

#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "reader.hpp"
#include "ringway/config/socket_names.hpp"
#include "ringway/config/suggest.hpp"
#include "ringway/config/values.hpp"

namespace ringway::config::detail {
namespace {

constexpr int64_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

constexpr std::string_view kSocketOptionKeys[] = {"description", "level",    "name",
                                                  "intValue",    "bufValue", "state"};

// A decimal integer in a string ("6", "-1"), as the CRD's int-or-string allows. nullopt when the
// text is not decimal; `overflow` set when it is but does not fit int64.
std::optional<int64_t> parse_decimal(std::string_view text, bool& overflow) {
  overflow = false;
  size_t i = 0;
  const bool negative = !text.empty() && text[0] == '-';
  if (negative) i = 1;
  if (i == text.size()) return std::nullopt;
  int64_t v = 0;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    const int d = text[i] - '0';
    // Accumulate negatively so that INT64_MIN itself is representable.
    if (v < (std::numeric_limits<int64_t>::min() + d) / 10) {
      overflow = true;
      return int64_t{0};
    }
    v = v * 10 - d;
  }
  if (!negative) {
    if (v == std::numeric_limits<int64_t>::min()) {
      overflow = true;
      return int64_t{0};
    }
    v = -v;
  }
  return v;
}

// An int32 given as a TOML integer or a decimal string. `what` names the field in messages.
// Returns nullopt with no diagnostic when the node is a non-decimal string (the caller may try
// a symbolic name).
std::optional<int32_t> read_int32(const toml::node& node, const std::string& path,
                                  Diagnostics& diagnostics, bool& reported) {
  reported = false;
  int64_t v = 0;
  if (const auto* i = node.as_integer()) {
    v = i->get();
  } else if (const auto* s = node.as_string()) {
    bool overflow = false;
    auto parsed = parse_decimal(s->get(), overflow);
    if (!parsed) return std::nullopt;
    if (overflow) {
      diagnostics.error(pos_of(node), path,
                        fmt::format("{} does not fit in 32 bits ({}..{}); Envoy would silently "
                                    "truncate it",
                                    s->get(), kInt32Min, kInt32Max));
      reported = true;
      return std::nullopt;
    }
    v = *parsed;
  } else {
    diagnostics.error(
        pos_of(node), path,
        fmt::format("expected an integer or a decimal string, got {}", type_name(node)));
    reported = true;
    return std::nullopt;
  }
  if (v < kInt32Min || v > kInt32Max) {
    diagnostics.error(pos_of(node), path,
                      fmt::format("{} does not fit in 32 bits ({}..{}); Envoy would silently "
                                  "truncate it",
                                  v, kInt32Min, kInt32Max));
    reported = true;
    return std::nullopt;
  }
  return static_cast<int32_t>(v);
}

std::string name_list(bool levels) {
  std::string out;
  if (levels) {
    for (const auto& l : socket_levels())
      out += (out.empty() ? "" : ", ") + std::string(l.name);
  } else {
    for (const auto& o : socket_option_names())
      out += (out.empty() ? "" : ", ") + std::string(o.name);
  }
  return out;
}

std::optional<int> read_level(const toml::node& node, const std::string& path,
                              Diagnostics& diagnostics) {
  bool reported = false;
  if (auto v = read_int32(node, path, diagnostics, reported)) return *v;
  if (reported) return std::nullopt;
  const std::string text = node.as_string()->get();
  if (auto v = level_by_name(text)) return *v;
  if (const auto* o = option_by_name(text)) {
    diagnostics.error(pos_of(node), path,
                      fmt::format("{} is an option name (it goes in `name`), not a level; its "
                                  "level is {}",
                                  text, level_to_string(o->level)));
    return std::nullopt;
  }
  std::vector<std::string> names;
  for (const auto& l : socket_levels())
    names.emplace_back(l.name);
  const auto best = closest(text, names);
  diagnostics.error(
      pos_of(node), path,
      fmt::format("unknown level {}{}; use a number or one of {}", quoted(text),
                  best ? fmt::format(" (did you mean '{}'?)", *best) : "", name_list(true)));
  return std::nullopt;
}

// `level` is the already-read level (nullopt when it was missing or wrong).
std::optional<int> read_option_name(const toml::node& node, const std::string& path,
                                    std::optional<int> level, Diagnostics& diagnostics) {
  bool reported = false;
  if (auto v = read_int32(node, path, diagnostics, reported)) return *v;
  if (reported) return std::nullopt;
  const std::string text = node.as_string()->get();
  if (const auto* o = option_by_name(text)) {
    if (level && *level != o->level) {
      std::string level_text = level_to_string(*level);
      if (level_text.rfind("level ", 0) == 0) level_text = std::to_string(*level);
      diagnostics.error(pos_of(node), path,
                        fmt::format("{} is an {} option; level is {}", o->name,
                                    level_to_string(o->level), level_text));
      return std::nullopt;
    }
    return o->value;
  }
  std::vector<std::string> names;
  for (const auto& o : socket_option_names())
    names.emplace_back(o.name);
  const auto best = closest(text, names);
  diagnostics.error(
      pos_of(node), path,
      fmt::format("unknown socket option name {}{}; use a number or one of {}", quoted(text),
                  best ? fmt::format(" (did you mean '{}'?)", *best) : "", name_list(false)));
  return std::nullopt;
}

std::optional<SocketState> read_state(const toml::node& node, const std::string& path,
                                      Diagnostics& diagnostics) {
  static constexpr std::pair<std::string_view, SocketState> kStates[] = {
      {"STATE_PREBIND", SocketState::Prebind},
      {"STATE_BOUND", SocketState::Bound},
      {"STATE_LISTENING", SocketState::Listening},
  };
  constexpr std::string_view kAllowed =
      "allowed: STATE_PREBIND, STATE_BOUND, STATE_LISTENING, or 0, 1, 2";
  if (const auto* i = node.as_integer()) {
    if (i->get() >= 0 && i->get() <= 2) return static_cast<SocketState>(i->get());
    diagnostics.error(pos_of(node), path, fmt::format("{} is not a state; {}", i->get(), kAllowed));
    return std::nullopt;
  }
  if (const auto* s = node.as_string()) {
    for (const auto& [name, state] : kStates)
      if (s->get() == name) return state;
    std::vector<std::string> names;
    for (const auto& [name, state] : kStates)
      names.emplace_back(name);
    const auto best = closest(s->get(), names);
    diagnostics.error(
        pos_of(node), path,
        fmt::format("unknown state {}{}; {}", quoted(s->get()),
                    best ? fmt::format(" (did you mean '{}'?)", *best) : "", kAllowed));
    return std::nullopt;
  }
  diagnostics.error(pos_of(node), path,
                    fmt::format("expected a state name or 0..2, got {}", type_name(node)));
  return std::nullopt;
}

bool is_keepalive_option(int level, int name) {
  const auto* o = option_by_value(level, name);
  if (o == nullptr) return false;
  return o->name == "SO_KEEPALIVE" || o->name == "TCP_KEEPIDLE" || o->name == "TCP_KEEPINTVL" ||
         o->name == "TCP_KEEPCNT";
}

}  // namespace

std::optional<SocketOption> load_socket_option(const toml::table& table, const std::string& path,
                                               Diagnostics& diagnostics, SourcePos fallback) {
  const TableReader r(table, path, {kSocketOptionKeys}, diagnostics, fallback);
  SocketOption option;
  option.pos = r.pos();
  bool ok = true;
  if (const auto* n = r.get("description")) {
    if (auto s = read_string(*n, r.path("description"), diagnostics)) {
      option.description = *s;
    } else {
      ok = false;
    }
  }
  std::optional<int> level;
  if (const auto* n = r.get("level")) {
    level = read_level(*n, r.path("level"), diagnostics);
  } else {
    diagnostics.error(r.pos(), r.path("level"),
                      "is required (a number or a name such as \"SOL_SOCKET\", \"IPPROTO_TCP\")");
  }
  std::optional<int> name;
  if (const auto* n = r.get("name")) {
    name = read_option_name(*n, r.path("name"), level, diagnostics);
  } else {
    diagnostics.error(r.pos(), r.path("name"),
                      "is required (a number or a name such as \"SO_KEEPALIVE\", "
                      "\"TCP_KEEPIDLE\")");
  }
  ok = ok && level && name;
  if (level) option.level = *level;
  if (name) option.name = *name;

  const toml::node* int_value = r.get("intValue");
  const toml::node* buf_value = r.get("bufValue");
  if (int_value != nullptr && buf_value != nullptr) {
    diagnostics.error(pos_of(*buf_value), r.path("bufValue"),
                      "intValue and bufValue are both set; an option takes exactly one");
    ok = false;
  } else if (int_value == nullptr && buf_value == nullptr) {
    diagnostics.error(r.pos(), r.path("intValue"),
                      "one of intValue (an int32) or bufValue (base64 bytes) is required");
    ok = false;
  } else if (int_value != nullptr) {
    bool reported = false;
    auto v = read_int32(*int_value, r.path("intValue"), diagnostics, reported);
    if (!v && !reported) {
      diagnostics.error(pos_of(*int_value), r.path("intValue"),
                        fmt::format("{} is not a decimal integer; expected an int32",
                                    quoted(int_value->as_string()->get())));
    }
    if (v && level && name) {
      const auto* known = option_by_value(*level, *name);
      if (known != nullptr &&
          ((known->min && *v < *known->min) || (known->max && *v > *known->max))) {
        diagnostics.error(
            pos_of(*int_value), r.path("intValue"),
            fmt::format("{} is outside {}'s range {}..{}", *v, known->name,
                        known->min.value_or(kInt32Min), known->max.value_or(kInt32Max)));
        v.reset();
      }
    }
    if (v) {
      option.value = *v;
    } else {
      ok = false;
    }
  } else {
    auto s = read_string(*buf_value, r.path("bufValue"), diagnostics);
    std::optional<std::string> bytes;
    if (s) {
      bytes = base64_decode(*s);
      if (!bytes) {
        diagnostics.error(pos_of(*buf_value), r.path("bufValue"),
                          fmt::format("{} is not valid base64; use the standard alphabet "
                                      "(A-Z a-z 0-9 + /) with '=' padding to a multiple of 4",
                                      quoted(*s)));
      }
    }
    if (bytes && level && name && *level == SOL_SOCKET && *name == SO_LINGER &&
        bytes->size() >= sizeof(struct linger)) {
      struct linger l {};
      std::memcpy(&l, bytes->data(), sizeof(l));
      if (l.l_onoff != 0 && l.l_linger > 0) {
        // Accepted sockets inherit it, and close() of such a socket waits up to l_linger
        // seconds for unsent data: in Ringway that would block a worker thread and every
        // session on it.
        diagnostics.error(pos_of(*buf_value), r.path("bufValue"),
                          fmt::format("SO_LINGER {{on, {} s}} would make every close() wait up "
                                      "to {} s and block the worker thread with all its "
                                      "sessions; allowed: off ({{0, 0}}, \"AAAAAAAAAAA=\") or "
                                      "reset on close ({{1, 0}}, \"AQAAAAAAAAA=\")",
                                      l.l_linger, l.l_linger));
        bytes.reset();
      }
    }
    if (bytes) {
      option.value = std::move(*bytes);
    } else {
      ok = false;
    }
  }
  if (const auto* n = r.get("state")) {
    if (auto s = read_state(*n, r.path("state"), diagnostics)) {
      option.state = *s;
      if (*s == SocketState::Listening && level && name && is_keepalive_option(*level, *name)) {
        diagnostics.warning(
            pos_of(*n), r.path("state"),
            fmt::format("{} at STATE_LISTENING: Envoy >= 1.17 ignored keepalive options at this "
                        "state; Ringway applies it and Linux accepted sockets inherit it (use "
                        "STATE_PREBIND for the same effect under Envoy)",
                        option_to_string(*level, *name)));
      }
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return option;
}

}  // namespace ringway::config::detail
