// `tcpHosts[]` of a TCP gateway: name, sslConfig (SNI passthrough: sniDomains only, TLS is never
// terminated), and the destination (single upstream, weighted multi, or an upstream group),
// plus `[[upstreamGroups]]`, which share the weighted-destination shape.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <tuple>

#include "reader.hpp"
#include "ringway/config/values.hpp"

namespace ringway::config::detail {
namespace {

constexpr int64_t kUint32Max = std::numeric_limits<uint32_t>::max();

constexpr std::string_view kTcpHostKeys[] = {"name", "destination", "sslConfig"};
constexpr std::string_view kSslConfigKeys[] = {"sniDomains"};
// Everything else of Gloo's SslConfig configures TLS termination, which Ringway never does.
constexpr std::string_view kNoTermination =
    "Ringway forwards TLS without terminating it; keep only sslConfig.sniDomains to route by SNI "
    "(passthrough) and let the upstream hold the certificate";
constexpr RefusedKey kSslConfigRefused[] = {
    {"secretRef", Refusal::Never, kNoTermination},
    {"sslFiles", Refusal::Never, kNoTermination},
    {"sds", Refusal::Never, kNoTermination},
    {"verifySubjectAltName", Refusal::Never, kNoTermination},
    {"parameters", Refusal::Never, kNoTermination},
    {"alpnProtocols", Refusal::Never, kNoTermination},
    {"oneWayTls", Refusal::Never, kNoTermination},
    {"disableTlsSessionResumption", Refusal::Never, kNoTermination},
    {"transportSocketConnectTimeout", Refusal::Never, kNoTermination},
    {"ocspStaplePolicy", Refusal::Never, kNoTermination},
};
constexpr std::string_view kDestinationKeys[] = {"single", "multi", "upstreamGroup"};
constexpr RefusedKey kDestinationRefused[] = {
    {"forwardSniClusterName", Refusal::NotYet},
};
constexpr std::string_view kSingleKeys[] = {"upstream"};
constexpr RefusedKey kSingleRefused[] = {
    {"kube", Refusal::NotYet},
    {"consul", Refusal::NotYet},
    {"destinationSpec", Refusal::NotYet},
    {"subset", Refusal::NotYet},
};
constexpr std::string_view kMultiKeys[] = {"destinations"};
constexpr std::string_view kWeightedKeys[] = {"weight", "destination"};
constexpr RefusedKey kWeightedRefused[] = {{"options", Refusal::NotYet}};
constexpr std::string_view kGroupKeys[] = {"metadata", "apiVersion", "kind", "destinations"};
constexpr RefusedKey kGroupRefused[] = {{"namespacedStatuses", Refusal::NotYet}};

// `{ upstream = { name, namespace } }`: the Destination shape of single and of weighted entries.
std::optional<ResourceRef> load_upstream_destination(const toml::node& node,
                                                     const std::string& path,
                                                     Diagnostics& diagnostics, SourcePos fallback) {
  const toml::table* table = read_table(node, path, diagnostics);
  if (table == nullptr) return std::nullopt;
  const TableReader s(*table, path, {kSingleKeys, kSingleRefused}, diagnostics,
                      pos_or(node, fallback));
  const toml::node* upstream = s.get("upstream");
  if (upstream == nullptr) {
    if (s.table().empty()) {
      diagnostics.error(s.pos(), s.path("upstream"), "is required: upstream = { name = \"...\" }");
    }
    return std::nullopt;
  }
  return read_resource_ref(*upstream, s.path("upstream"), diagnostics, s.pos());
}

// Lowercase; an exact DNS name or "*." and one. Returns nullopt with a diagnostic otherwise.
std::optional<std::string> read_sni_domain(const toml::node& node, const std::string& path,
                                           Diagnostics& diagnostics) {
  auto s = read_name(node, path, diagnostics);
  if (!s) return std::nullopt;
  std::string name = *s;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::string_view rest =
      name.rfind("*.", 0) == 0 ? std::string_view(name).substr(2) : std::string_view(name);
  if (!is_hostname(rest)) {
    diagnostics.error(pos_of(node), path,
                      fmt::format("{} is not a server name; use a DNS name such as "
                                  "\"db.example.com\" or a wildcard \"*.example.com\" (\"*\" only "
                                  "as the whole first label)",
                                  quoted(*s)));
    return std::nullopt;
  }
  return name;
}

std::optional<SslPassthrough> load_ssl_config(const toml::node& node, const std::string& path,
                                              Diagnostics& diagnostics, SourcePos fallback) {
  const toml::table* table = read_table(node, path, diagnostics);
  if (table == nullptr) return std::nullopt;
  const TableReader r(*table, path, {kSslConfigKeys, kSslConfigRefused}, diagnostics,
                      pos_or(node, fallback));
  SslPassthrough ssl;
  ssl.pos = r.pos();
  const toml::node* domains = r.get("sniDomains");
  const toml::array* array = domains ? domains->as_array() : nullptr;
  if (domains != nullptr && array == nullptr) {
    diagnostics.error(
        pos_of(*domains), r.path("sniDomains"),
        fmt::format("expected an array of server names, got {}", type_name(*domains)));
    return std::nullopt;
  }
  if (array == nullptr || array->empty()) {
    diagnostics.error(domains ? pos_of(*domains) : r.pos(), r.path("sniDomains"),
                      "at least one server name is required: Ringway uses sslConfig only to "
                      "route TLS by SNI (sniDomains = [\"a.example.com\", \"*.example.org\"])");
    return std::nullopt;
  }
  bool ok = true;
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string item_path = index_path(r.path("sniDomains"), i);
    auto name = read_sni_domain(*array->get(i), item_path, diagnostics);
    if (!name) {
      ok = false;
      continue;
    }
    if (std::find(ssl.sni_domains.begin(), ssl.sni_domains.end(), *name) != ssl.sni_domains.end()) {
      diagnostics.error(pos_or(*array->get(i), r.pos()), item_path,
                        fmt::format("{} is listed twice", quoted(*name)));
      ok = false;
      continue;
    }
    ssl.sni_domains.push_back(std::move(*name));
    ssl.sni_domain_pos.push_back(pos_or(*array->get(i), r.pos()));
  }
  if (!ok) return std::nullopt;
  return ssl;
}

}  // namespace

std::vector<WeightedDestination> load_weighted_destinations(const toml::node& node,
                                                            const std::string& path,
                                                            Diagnostics& diagnostics,
                                                            SourcePos fallback) {
  std::vector<WeightedDestination> out;
  const toml::array* array = read_table_array(node, path, diagnostics);
  if (array == nullptr) return out;
  if (array->empty()) {
    diagnostics.error(pos_or(node, fallback), path,
                      "at least one destination is required ({ weight = N, destination.upstream "
                      "= { name = \"...\" } })");
    return out;
  }
  bool ok = true;
  bool any_positive = false;
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string entry_path = index_path(path, i);
    const TableReader r(*array->get(i)->as_table(), entry_path, {kWeightedKeys, kWeightedRefused},
                        diagnostics, pos_or(*array, fallback));
    WeightedDestination d;
    d.pos = r.pos();
    if (const auto* w = r.get("weight")) {
      auto v = read_integer(*w, r.path("weight"), diagnostics, 0, kUint32Max);
      if (!v) {
        ok = false;
      } else {
        d.weight = static_cast<uint32_t>(*v);
        if (d.weight == 0) {
          diagnostics.warning(pos_of(*w), r.path("weight"),
                              "0: this destination is never chosen (Envoy would reject a zero "
                              "weight; Ringway treats it as drained)");
        }
      }
    } else {
      diagnostics.error(r.pos(), r.path("weight"),
                        "is required (0..4294967295; Gloo reads an unset weight as 0, which Envoy "
                        "rejects)");
      ok = false;
    }
    if (const auto* dest = r.get("destination")) {
      auto ref = load_upstream_destination(*dest, r.path("destination"), diagnostics, r.pos());
      if (ref) {
        d.upstream = std::move(*ref);
      } else {
        ok = false;
      }
    } else {
      diagnostics.error(r.pos(), r.path("destination"),
                        "is required: destination.upstream = { name = \"...\" }");
      ok = false;
    }
    any_positive = any_positive || d.weight > 0;
    out.push_back(std::move(d));
  }
  if (ok && !any_positive) {
    diagnostics.error(pos_or(node, fallback), path,
                      "every weight is 0: at least one destination needs a weight of 1 or more");
  }
  if (!ok || !any_positive) out.clear();
  return out;
}

std::optional<TcpHost> load_tcp_host(const toml::table& table, const std::string& path,
                                     Diagnostics& diagnostics, SourcePos fallback) {
  const TableReader r(table, path, {kTcpHostKeys}, diagnostics, fallback);
  TcpHost host;
  host.pos = r.pos();
  bool ok = true;
  if (const auto* n = r.get("name")) {
    auto s = read_string(*n, r.path("name"), diagnostics);
    ok = s.has_value();
    if (s) host.name = *s;
  }
  if (const auto* n = r.get("sslConfig")) {
    host.ssl = load_ssl_config(*n, r.path("sslConfig"), diagnostics, r.pos());
    ok = ok && host.ssl.has_value();
  }
  const toml::node* destination = r.get("destination");
  if (destination == nullptr) {
    diagnostics.error(r.pos(), r.path("destination"),
                      "is required: destination.single.upstream = { name = \"...\" }, "
                      "destination.multi.destinations or destination.upstreamGroup");
    return std::nullopt;
  }
  const toml::table* dt = read_table(*destination, r.path("destination"), diagnostics);
  if (dt == nullptr) return std::nullopt;
  const TableReader d(*dt, r.path("destination"), {kDestinationKeys, kDestinationRefused},
                      diagnostics, pos_or(*destination, r.pos()));
  // In file order, so that the second kind written is the one reported.
  std::vector<std::pair<std::string_view, const toml::node*>> kinds;
  for (const std::string_view key : kDestinationKeys)
    if (const toml::node* n = d.get(key)) kinds.emplace_back(key, n);
  std::sort(kinds.begin(), kinds.end(), [](const auto& a, const auto& b) {
    const SourcePos pa = pos_of(*a.second), pb = pos_of(*b.second);
    return std::tie(pa.line, pa.column) < std::tie(pb.line, pb.column);
  });
  std::string_view chosen;
  for (const auto& [key, n] : kinds) {
    if (!chosen.empty()) {
      diagnostics.error(pos_of(*n), d.path(key),
                        fmt::format("{} and {} are both set; a destination is one of single, "
                                    "multi, upstreamGroup",
                                    chosen, key));
      ok = false;
      continue;
    }
    chosen = key;
    if (key == "single") {
      host.kind = TcpHost::Kind::Single;
      auto ref = load_upstream_destination(*n, d.path(key), diagnostics, d.pos());
      ok = ok && ref.has_value();
      if (ref) host.upstream = std::move(*ref);
    } else if (key == "multi") {
      host.kind = TcpHost::Kind::Multi;
      const toml::table* mt = read_table(*n, d.path(key), diagnostics);
      if (mt == nullptr) {
        ok = false;
        continue;
      }
      const TableReader m(*mt, d.path(key), {kMultiKeys}, diagnostics, pos_or(*n, d.pos()));
      const toml::node* list = m.get("destinations");
      if (list == nullptr) {
        diagnostics.error(m.pos(), m.path("destinations"),
                          "is required: destinations = [{ weight = N, destination.upstream = "
                          "{ name = \"...\" } }]");
        ok = false;
        continue;
      }
      host.destinations =
          load_weighted_destinations(*list, m.path("destinations"), diagnostics, m.pos());
      ok = ok && !host.destinations.empty();
    } else {
      host.kind = TcpHost::Kind::UpstreamGroup;
      auto ref = read_resource_ref(*n, d.path(key), diagnostics, d.pos());
      ok = ok && ref.has_value();
      if (ref) host.upstream_group = std::move(*ref);
    }
  }
  if (chosen.empty()) {
    if (d.table().empty()) {
      diagnostics.error(d.pos(), d.path("single"),
                        "is required: single.upstream = { name = \"...\" } (or multi, "
                        "upstreamGroup)");
    }
    return std::nullopt;
  }
  if (!ok) return std::nullopt;
  return host;
}

void check_tcp_hosts(const Gateway& gateway, const std::string& hosts_path,
                     Diagnostics& diagnostics) {
  const TcpHost* first_default = nullptr;
  for (size_t i = 0; i < gateway.tcp_hosts.size(); ++i) {
    const TcpHost& h = gateway.tcp_hosts[i];
    if (h.ssl) continue;
    if (first_default == nullptr) {
      first_default = &h;
      continue;
    }
    diagnostics.error(h.pos, index_path(hosts_path, h.index),
                      fmt::format("a second tcpHost without sslConfig (the first is at line {}); "
                                  "at most one is the default, the others need "
                                  "sslConfig.sniDomains to be told apart",
                                  first_default->pos.line));
  }
  // One server name may select one tcpHost only, across the whole gateway.
  struct Seen {
    const std::string* name;
    uint32_t line;
  };
  std::vector<Seen> seen;
  for (size_t i = 0; i < gateway.tcp_hosts.size(); ++i) {
    const TcpHost& h = gateway.tcp_hosts[i];
    if (!h.ssl) continue;
    for (size_t j = 0; j < h.ssl->sni_domains.size(); ++j) {
      const std::string& name = h.ssl->sni_domains[j];
      const auto it =
          std::find_if(seen.begin(), seen.end(), [&](const Seen& s) { return *s.name == name; });
      if (it != seen.end()) {
        diagnostics.error(
            h.ssl->sni_domain_pos[j],
            index_path(join_path(index_path(hosts_path, h.index), "sslConfig.sniDomains"), j),
            fmt::format("{} already selects the tcpHost at line {}; a server name may appear in "
                        "one tcpHost only",
                        quoted(name), it->line));
        continue;
      }
      seen.push_back({&name, h.pos.line});
    }
  }
}

LoadedUpstreamGroup load_upstream_group(const toml::table& table, size_t index,
                                        Diagnostics& diagnostics) {
  LoadedUpstreamGroup out;
  UpstreamGroup& group = out.group;
  const TableReader r(table, index_path("upstreamGroups", index), {kGroupKeys, kGroupRefused},
                      diagnostics, {});
  group.pos = r.pos();
  check_api_version(r, "gloo.solo.io/v1", "UpstreamGroup", diagnostics);
  auto metadata = load_metadata(r, diagnostics);
  group.metadata = std::move(metadata.metadata);
  out.name_pos = metadata.pos;
  if (const auto* n = r.get("destinations")) {
    group.destinations =
        load_weighted_destinations(*n, r.path("destinations"), diagnostics, r.pos());
  } else {
    diagnostics.error(r.pos(), r.path("destinations"),
                      "is required: destinations = [{ weight = N, destination.upstream = "
                      "{ name = \"...\" } }]");
  }
  return out;
}

}  // namespace ringway::config::detail
