// Key checking and typed value readers shared by the config loaders (see reader.hpp), plus the
// pieces gateways and upstreams have in common: metadata, apiVersion/kind, tcpKeepalive.
#include "reader.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "ringway/config/socket_names.hpp"
#include "ringway/config/suggest.hpp"
#include "ringway/config/values.hpp"

namespace ringway::config::detail {

SourcePos pos_of(const toml::node& node) {
  return {node.source().begin.line, node.source().begin.column};
}

SourcePos pos_of(const toml::key& key) {
  return {key.source().begin.line, key.source().begin.column};
}

SourcePos pos_or(const toml::node& node, SourcePos fallback) {
  const SourcePos p = pos_of(node);
  return p.line == 0 ? fallback : p;
}

std::string_view type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string join_path(std::string_view base, std::string_view key) {
  if (base.empty()) return std::string(key);
  return fmt::format("{}.{}", base, key);
}

std::string index_path(std::string_view base, size_t index) {
  return fmt::format("{}[{}]", base, index);
}

namespace {

bool contains(std::span<const std::string_view> keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

// The camelCase key `written` stands for among `keys`: itself, or the key whose snake_case
// spelling it is. Empty when it is neither.
std::string_view canonical(std::span<const std::string_view> keys, std::string_view written) {
  if (contains(keys, written)) return *std::find(keys.begin(), keys.end(), written);
  if (written.find('_') == std::string_view::npos) return {};
  const std::string camel = snake_to_camel(written);
  if (camel_to_snake(camel) != written) return {};
  const auto it = std::find(keys.begin(), keys.end(), camel);
  return it == keys.end() ? std::string_view{} : *it;
}

std::string unknown_key_message(std::string_view written, const Schema& schema) {
  std::vector<std::string> candidates;
  const bool snake = written.find('_') != std::string_view::npos;
  for (const auto key : schema.keys) {
    const std::string alias = camel_to_snake(key);
    // Offer the spelling the user is writing in first, so ties go to it.
    if (snake && alias != key) candidates.push_back(alias);
    candidates.emplace_back(key);
    if (!snake && alias != key) candidates.push_back(alias);
  }
  if (auto best = closest(written, candidates)) {
    return fmt::format("unknown key; did you mean '{}'?", *best);
  }
  std::string allowed;
  for (const auto key : schema.keys)
    allowed += (allowed.empty() ? "" : ", ") + std::string(key);
  if (allowed.empty()) return "unknown key; this table takes no keys";
  return fmt::format("unknown key; allowed here: {}", allowed);
}

}  // namespace

TableReader::TableReader(const toml::table& table, std::string path, const Schema& schema,
                         Diagnostics& diagnostics, SourcePos fallback)
    : table_(table), path_(std::move(path)), pos_(pos_or(table, fallback)) {
  std::vector<std::string_view> refused_names;
  for (const auto& r : schema.refused)
    refused_names.push_back(r.name);

  struct Seen {
    std::string_view key;
    std::string_view written;
    SourcePos pos;
    const toml::node* node;
  };
  std::vector<Seen> seen;
  for (auto&& [key, node] : table) {
    const std::string_view written = key.str();
    const SourcePos key_pos = pos_of(key).line == 0 ? pos_ : pos_of(key);
    if (const auto known = canonical(schema.keys, written); !known.empty()) {
      seen.push_back({known, written, key_pos, &node});
      continue;
    }
    if (const auto name = canonical(refused_names, written); !name.empty()) {
      const auto& r = *std::find_if(schema.refused.begin(), schema.refused.end(),
                                    [&](const RefusedKey& k) { return k.name == name; });
      const std::string where = join_path(path_, written);
      const std::string detail = r.detail.empty() ? "" : fmt::format("; {}", r.detail);
      switch (r.why) {
        case Refusal::NotYet:
          diagnostics.error(key_pos, where,
                            fmt::format("{} is not supported yet{}", written, detail));
          break;
        case Refusal::HttpOnly:
          diagnostics.error(
              key_pos, where,
              fmt::format("{} applies to HTTP only; Ringway forwards TCP{}", written, detail));
          break;
        case Refusal::Never:
          diagnostics.error(key_pos, where,
                            fmt::format("{} is not supported: {}", written, r.detail));
          break;
        case Refusal::NoEffect:
          diagnostics.warning(key_pos, where,
                              fmt::format("{} has no effect: {}", written, r.detail));
          break;
      }
      continue;
    }
    diagnostics.error(key_pos, join_path(path_, written), unknown_key_message(written, schema));
  }
  // Both spellings of one key: the one written later in the file is the error.
  std::sort(seen.begin(), seen.end(), [](const Seen& a, const Seen& b) {
    return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
  });
  for (const auto& s : seen) {
    const auto first = std::find_if(entries_.begin(), entries_.end(),
                                    [&](const Entry& e) { return e.key == s.key; });
    if (first == entries_.end()) {
      entries_.push_back({s.key, s.node});
      continue;
    }
    const auto earlier =
        std::find_if(seen.begin(), seen.end(), [&](const Seen& o) { return o.key == s.key; });
    diagnostics.error(s.pos, join_path(path_, s.written),
                      fmt::format("both '{}' and '{}' are set (two spellings of one key); keep one",
                                  earlier->written, s.written));
  }
}

const toml::node* TableReader::get(std::string_view key) const {
  for (const auto& e : entries_)
    if (e.key == key) return e.node;
  return nullptr;
}

std::optional<std::string> read_string(const toml::node& node, const std::string& path,
                                       Diagnostics& diagnostics) {
  if (const auto* s = node.as_string()) return s->get();
  diagnostics.error(pos_of(node), path, fmt::format("expected a string, got {}", type_name(node)));
  return std::nullopt;
}

std::optional<std::string> read_name(const toml::node& node, const std::string& path,
                                     Diagnostics& diagnostics) {
  auto s = read_string(node, path, diagnostics);
  if (!s) return std::nullopt;
  if (s->empty()) {
    diagnostics.error(pos_of(node), path, "must not be empty");
    return std::nullopt;
  }
  if (s->find('\0') != std::string::npos) {
    diagnostics.error(pos_of(node), path, "must not contain a NUL character");
    return std::nullopt;
  }
  return s;
}

std::optional<int64_t> read_integer(const toml::node& node, const std::string& path,
                                    Diagnostics& diagnostics, int64_t min, int64_t max) {
  const auto* i = node.as_integer();
  if (i == nullptr) {
    diagnostics.error(pos_of(node), path,
                      fmt::format("expected an integer {}..{}, got {}", min, max, type_name(node)));
    return std::nullopt;
  }
  const int64_t v = i->get();
  if (v < min || v > max) {
    diagnostics.error(pos_of(node), path, fmt::format("{} is outside {}..{}", v, min, max));
    return std::nullopt;
  }
  return v;
}

namespace {

constexpr std::string_view kDurationHint =
    "use a number and a unit (ns, us, ms, s, m, h), e.g. \"60s\", \"0.5s\", \"1m30s\", \"500ms\"";

// The nanoseconds of a duration string, or an error naming the input and the accepted forms.
std::optional<int64_t> parse_duration_node(const toml::value<std::string>& s,
                                           const std::string& path, Diagnostics& diagnostics) {
  auto ns = parse_duration_ns(s.get());
  if (ns.ok()) return ns.value();
  diagnostics.error(pos_of(s), path,
                    fmt::format("{} is not a duration: {}; {}", quoted(s.get()), ns.error().message,
                                kDurationHint));
  return std::nullopt;
}

}  // namespace

std::optional<Duration> read_duration(const toml::node& node, const std::string& path,
                                      Diagnostics& diagnostics) {
  const auto* s = node.as_string();
  if (s == nullptr) {
    diagnostics.error(pos_of(node), path,
                      fmt::format("expected a duration string such as \"60s\" or \"1m30s\", got {}",
                                  type_name(node)));
    return std::nullopt;
  }
  auto ns = parse_duration_node(*s, path, diagnostics);
  if (!ns) return std::nullopt;
  return ceil_to_duration(*ns);
}

const toml::table* read_table(const toml::node& node, const std::string& path,
                              Diagnostics& diagnostics) {
  if (const auto* t = node.as_table()) return t;
  diagnostics.error(pos_of(node), path, fmt::format("expected a table, got {}", type_name(node)));
  return nullptr;
}

const toml::array* read_table_array(const toml::node& node, const std::string& path,
                                    Diagnostics& diagnostics) {
  const auto* a = node.as_array();
  if (a == nullptr) {
    diagnostics.error(pos_of(node), path,
                      fmt::format("expected an array of tables, got {}", type_name(node)));
    return nullptr;
  }
  bool ok = true;
  for (size_t i = 0; i < a->size(); ++i) {
    const toml::node& item = *a->get(i);
    if (!item.is_table()) {
      diagnostics.error(pos_or(item, pos_of(*a)), index_path(path, i),
                        fmt::format("expected a table, got {}", type_name(item)));
      ok = false;
    }
  }
  return ok ? a : nullptr;
}

bool refuse_link_local(const unsigned char* in6, const std::string& text, const toml::node& node,
                       const std::string& path, Diagnostics& diagnostics) {
  // fe80::/10 is only meaningful with a zone (an interface), which plain IP literals cannot
  // carry: bind() fails with EINVAL and every connect() fails, so it is refused here.
  if (in6[0] != 0xfe || (in6[1] & 0xc0) != 0x80) return false;
  diagnostics.error(pos_of(node), path,
                    fmt::format("{} is an IPv6 link-local address, which needs a zone (an "
                                "interface) that Ringway cannot take; use a global or "
                                "unique-local address, or a host name",
                                quoted(text)));
  return true;
}

std::optional<std::string> read_ip_literal(const toml::node& node, const std::string& path,
                                           Diagnostics& diagnostics) {
  auto s = read_name(node, path, diagnostics);
  if (!s) return std::nullopt;
  unsigned char buf[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET6, s->c_str(), buf) == 1 &&
      refuse_link_local(buf, *s, node, path, diagnostics)) {
    return std::nullopt;
  }
  if (inet_pton(AF_INET, s->c_str(), buf) == 1 || inet_pton(AF_INET6, s->c_str(), buf) == 1) {
    return s;
  }
  diagnostics.error(pos_of(node), path,
                    fmt::format("{} is not an IP address; use an IPv4 or IPv6 literal such as "
                                "\"127.0.0.1\", \"0.0.0.0\" or \"::\"",
                                quoted(*s)));
  return std::nullopt;
}

std::optional<bool> read_bool(const toml::node& node, const std::string& path,
                              Diagnostics& diagnostics) {
  if (const auto* b = node.as_boolean()) return b->get();
  diagnostics.error(pos_of(node), path,
                    fmt::format("expected true or false, got {}", type_name(node)));
  return std::nullopt;
}

std::optional<Duration> read_positive_duration(const toml::node& node, const std::string& path,
                                               Diagnostics& diagnostics) {
  auto d = read_duration(node, path, diagnostics);
  if (d && d->count() == 0) {
    diagnostics.error(pos_of(node), path, "must be greater than 0s");
    return std::nullopt;
  }
  return d;
}

bool is_hostname(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t label = 0;
  char previous = '.';
  for (const char c : s) {
    if (c == '.') {
      if (label == 0 || previous == '-') return false;
      label = 0;
    } else {
      const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (!alnum && !(c == '-' && label > 0)) return false;
      if (++label > 63) return false;
    }
    previous = c;
  }
  return previous != '-';
}

std::optional<std::string> read_host_address(const toml::node& node, const std::string& path,
                                             Diagnostics& diagnostics) {
  auto s = read_name(node, path, diagnostics);
  if (!s) return std::nullopt;
  unsigned char buf[sizeof(struct in6_addr)];
  const bool ip =
      inet_pton(AF_INET, s->c_str(), buf) == 1 || inet_pton(AF_INET6, s->c_str(), buf) == 1;
  if (!ip && !is_hostname(*s)) {
    diagnostics.error(pos_of(node), path,
                      fmt::format("{} is neither an IP address nor a host name", quoted(*s)));
    return std::nullopt;
  }
  if (inet_pton(AF_INET6, s->c_str(), buf) == 1 &&
      refuse_link_local(buf, *s, node, path, diagnostics)) {
    return std::nullopt;
  }
  return s;
}

namespace {

constexpr std::string_view kRefKeys[] = {"name", "namespace"};
constexpr std::string_view kMetadataKeys[] = {"name", "namespace"};
constexpr RefusedKey kMetadataRefused[] = {
    {"labels", Refusal::NoEffect, "Ringway does not select resources by label"},
    {"annotations", Refusal::NoEffect, "Ringway reads no annotations"},
};

}  // namespace

std::optional<ResourceRef> read_resource_ref(const toml::node& node, const std::string& path,
                                             Diagnostics& diagnostics, SourcePos fallback) {
  const toml::table* table = read_table(node, path, diagnostics);
  if (table == nullptr) return std::nullopt;
  const TableReader r(*table, path, {kRefKeys}, diagnostics, pos_or(node, fallback));
  ResourceRef ref;
  ref.pos = r.pos();
  if (const auto* n = r.get("name")) {
    auto v = read_name(*n, r.path("name"), diagnostics);
    if (!v) return std::nullopt;
    ref.name = *v;
  } else {
    diagnostics.error(r.pos(), r.path("name"), "is required (the resource's metadata.name)");
    return std::nullopt;
  }
  if (const auto* n = r.get("namespace")) {
    auto v = read_name(*n, r.path("namespace"), diagnostics);
    if (!v) return std::nullopt;
    ref.namespace_ = *v;
  }
  return ref;
}

LoadedMetadata load_metadata(const TableReader& entry, Diagnostics& diagnostics) {
  LoadedMetadata out;
  out.pos = entry.pos();
  const toml::node* node = entry.get("metadata");
  const std::string path = entry.path("metadata");
  if (node == nullptr) {
    diagnostics.error(entry.pos(), path,
                      "is required: metadata = { name = \"...\" } (namespace defaults to "
                      "\"default\")");
    return out;
  }
  out.pos = pos_or(*node, entry.pos());
  const toml::table* table = read_table(*node, path, diagnostics);
  if (table == nullptr) return out;
  const TableReader md(*table, path, {kMetadataKeys, kMetadataRefused}, diagnostics, out.pos);
  if (const auto* name = md.get("name")) {
    out.pos = pos_of(*name);
    if (auto s = read_name(*name, md.path("name"), diagnostics)) out.metadata.name = *s;
  } else {
    diagnostics.error(md.pos(), md.path("name"), "is required (a non-empty string)");
  }
  if (const auto* ns = md.get("namespace")) {
    if (auto s = read_name(*ns, md.path("namespace"), diagnostics)) out.metadata.namespace_ = *s;
  }
  return out;
}

void check_api_version(const TableReader& entry, std::string_view api_version,
                       std::string_view kind, Diagnostics& diagnostics) {
  if (const auto* node = entry.get("apiVersion")) {
    auto s = read_string(*node, entry.path("apiVersion"), diagnostics);
    if (s && *s != api_version) {
      diagnostics.error(pos_of(*node), entry.path("apiVersion"),
                        fmt::format("{} does not match this table; must be {} (optional)",
                                    quoted(*s), quoted(api_version)));
    }
  }
  if (const auto* node = entry.get("kind")) {
    auto s = read_string(*node, entry.path("kind"), diagnostics);
    if (s && *s != kind) {
      diagnostics.error(pos_of(*node), entry.path("kind"),
                        fmt::format("{} does not match this table; must be {} (optional)",
                                    quoted(*s), quoted(kind)));
    }
  }
}

namespace {

constexpr std::string_view kKeepaliveKeys[] = {"keepaliveTime", "keepaliveInterval",
                                               "keepaliveProbes"};

// keepaliveTime / keepaliveInterval: a duration string or bare integer seconds (Gloo's own
// keepalive page writes integers), rounded up to whole seconds, then 1..32767.
std::optional<uint32_t> read_keepalive_seconds(const toml::node& node, const std::string& path,
                                               std::string_view option, Diagnostics& diagnostics) {
  int64_t seconds = 0;
  if (const auto* i = node.as_integer()) {
    seconds = i->get();
    if (seconds < 0) {
      diagnostics.error(
          pos_of(node), path,
          fmt::format("{} is negative; allowed: 1..{} seconds", seconds, kKeepaliveSecondsMax));
      return std::nullopt;
    }
  } else if (const auto* s = node.as_string()) {
    auto ns = parse_duration_node(*s, path, diagnostics);
    if (!ns) return std::nullopt;
    seconds = ceil_to_seconds(*ns);
  } else {
    diagnostics.error(pos_of(node), path,
                      fmt::format("expected a duration such as \"60s\" or integer seconds, got {}",
                                  type_name(node)));
    return std::nullopt;
  }
  if (seconds == 0) {
    diagnostics.error(pos_of(node), path,
                      fmt::format("0s is not allowed: Envoy would fail every connection with "
                                  "EINVAL; allowed: 1..{} seconds (omit the key for the OS "
                                  "default)",
                                  kKeepaliveSecondsMax));
    return std::nullopt;
  }
  if (seconds > static_cast<int64_t>(kKeepaliveSecondsMax)) {
    diagnostics.error(pos_of(node), path,
                      fmt::format("{}s is outside {}'s range 1..{} seconds", seconds, option,
                                  kKeepaliveSecondsMax));
    return std::nullopt;
  }
  return static_cast<uint32_t>(seconds);
}

}  // namespace

std::optional<TcpKeepalive> load_tcp_keepalive(const toml::node& node, const std::string& path,
                                               Diagnostics& diagnostics, SourcePos fallback) {
  const toml::table* table = read_table(node, path, diagnostics);
  if (table == nullptr) return std::nullopt;
  const TableReader r(*table, path, {kKeepaliveKeys}, diagnostics, fallback);
  TcpKeepalive k;
  k.pos = r.pos();
  if (const auto* n = r.get("keepaliveTime")) {
    k.keepalive_time_s =
        read_keepalive_seconds(*n, r.path("keepaliveTime"), "TCP_KEEPIDLE", diagnostics);
  }
  if (const auto* n = r.get("keepaliveInterval")) {
    k.keepalive_interval_s =
        read_keepalive_seconds(*n, r.path("keepaliveInterval"), "TCP_KEEPINTVL", diagnostics);
  }
  if (const auto* n = r.get("keepaliveProbes")) {
    const auto* i = n->as_integer();
    if (i == nullptr) {
      diagnostics.error(pos_of(*n), r.path("keepaliveProbes"),
                        fmt::format("expected an integer 0..{} (0 = the OS default), got {}",
                                    kKeepaliveProbesMax, type_name(*n)));
    } else if (i->get() < 0 || i->get() > static_cast<int64_t>(kKeepaliveProbesMax)) {
      diagnostics.error(pos_of(*n), r.path("keepaliveProbes"),
                        fmt::format("{} is outside TCP_KEEPCNT's range 1..{} (0 = the OS default)",
                                    i->get(), kKeepaliveProbesMax));
    } else if (i->get() > 0) {
      k.keepalive_probes = static_cast<uint32_t>(i->get());
    }
  }
  if (k.keepalive_time_s && k.keepalive_interval_s && k.keepalive_probes) {
    const uint64_t probing = uint64_t{*k.keepalive_interval_s} * *k.keepalive_probes;
    if (*k.keepalive_time_s < probing) {
      diagnostics.warning(
          k.pos, path,
          fmt::format("keepaliveTime {}s is shorter than keepaliveInterval x keepaliveProbes "
                      "({}s x {} = {}s): a dead peer is detected {}s after the connection goes "
                      "idle",
                      *k.keepalive_time_s, *k.keepalive_interval_s, *k.keepalive_probes, probing,
                      *k.keepalive_time_s + probing));
    }
  }
  return k;
}

std::optional<StaticHost> read_host_fields(const TableReader& r, std::string_view address_key,
                                           Diagnostics& diagnostics) {
  const std::string key(address_key);
  StaticHost host;
  host.pos = r.pos();
  bool ok = true;
  if (const auto* n = r.get(key)) {
    auto s = read_host_address(*n, r.path(key), diagnostics);
    ok = s.has_value();
    if (s) host.addr = *s;
  } else {
    diagnostics.error(r.pos(), r.path(key), "is required (an IP address or a host name)");
    ok = false;
  }
  if (const auto* n = r.get("port")) {
    auto v = read_integer(*n, r.path("port"), diagnostics, 1, 65535);
    ok = ok && v.has_value();
    if (v) host.port = static_cast<uint16_t>(*v);
  } else {
    diagnostics.error(r.pos(), r.path("port"), "is required (1..65535)");
    ok = false;
  }
  if (const auto* n = r.get("loadBalancingWeight")) {
    auto v = read_integer(*n, r.path("loadBalancingWeight"), diagnostics, 1,
                          std::numeric_limits<uint32_t>::max());
    ok = ok && v.has_value();
    if (v) host.load_balancing_weight = static_cast<uint32_t>(*v);
  }
  if (!ok) return std::nullopt;
  return host;
}

}  // namespace ringway::config::detail
