// What a gateway reads from a downstream before choosing a tcpHost: a PROXY protocol header
// (Gloo's `options.proxyProtocol`, or the deprecated `useProxyProto`), and the TLS ClientHello
// for SNI passthrough (Ringway's extension settings `listenerFiltersTimeout`, `sniPassthrough`).
#include <fmt/format.h>

#include "reader.hpp"
#include "ringway/config/loader.hpp"
#include "ringway/config/values.hpp"

namespace ringway::config {

std::string_view sni_no_match_name(SniNoMatch action) {
  return action == SniNoMatch::Reset ? "reset" : "close";
}

}  // namespace ringway::config

namespace ringway::config::detail {
namespace {

constexpr std::string_view kProxyProtocolKeys[] = {"rules", "allowRequestsWithoutProxyProtocol"};
constexpr std::string_view kRuleKeys[] = {"tlvType", "onTlvPresent"};
constexpr std::string_view kKeyValuePairKeys[] = {"metadataNamespace", "key"};
constexpr std::string_view kSniPassthroughKeys[] = {"maxClientHelloBytes", "onNoMatch"};

constexpr std::pair<std::string_view, SniNoMatch> kNoMatchNames[] = {
    {"close", SniNoMatch::Close},
    {"reset", SniNoMatch::Reset},
};

std::optional<ProxyProtocolRule> load_rule(const toml::table& table, const std::string& path,
                                           Diagnostics& diagnostics, SourcePos fallback) {
  const TableReader r(table, path, {kRuleKeys}, diagnostics, fallback);
  ProxyProtocolRule rule;
  bool ok = true;
  if (const auto* n = r.get("tlvType")) {
    auto v = read_integer(*n, r.path("tlvType"), diagnostics, 0, 255);
    ok = v.has_value();
    if (v) rule.tlv_type = static_cast<uint32_t>(*v);
  } else {
    diagnostics.error(r.pos(), r.path("tlvType"), "is required (a TLV type, 0..255)");
    ok = false;
  }
  if (const auto* n = r.get("onTlvPresent")) {
    const toml::table* t = read_table(*n, r.path("onTlvPresent"), diagnostics);
    if (t == nullptr) return std::nullopt;
    const TableReader kv(*t, r.path("onTlvPresent"), {kKeyValuePairKeys}, diagnostics, r.pos());
    if (const auto* k = kv.get("key")) {
      auto s = read_name(*k, kv.path("key"), diagnostics);
      ok = ok && s.has_value();
      if (s) rule.key = *s;
    } else {
      diagnostics.error(kv.pos(), kv.path("key"), "is required (a non-empty string)");
      ok = false;
    }
    if (const auto* ns = kv.get("metadataNamespace")) {
      auto s = read_string(*ns, kv.path("metadataNamespace"), diagnostics);
      ok = ok && s.has_value();
      if (s) rule.metadata_namespace = *s;
    }
  }
  if (!ok) return std::nullopt;
  return rule;
}

void load_proxy_protocol(const toml::node& node, const std::string& path, Diagnostics& diagnostics,
                         SourcePos fallback, Gateway& gateway) {
  const toml::table* table = read_table(node, path, diagnostics);
  if (table == nullptr) return;
  const TableReader r(*table, path, {kProxyProtocolKeys}, diagnostics, pos_or(node, fallback));
  ProxyProtocol pp;
  pp.pos = r.pos();
  if (const auto* n = r.get("allowRequestsWithoutProxyProtocol")) {
    auto b = read_bool(*n, r.path("allowRequestsWithoutProxyProtocol"), diagnostics);
    if (!b) return;
    pp.allow_requests_without_proxy_protocol = *b;
    if (*b) {
      diagnostics.warning(pos_of(*n), r.path("allowRequestsWithoutProxyProtocol"),
                          "true: a client that connects directly may send a PROXY header of its "
                          "own and spoof its address; allow this only when every client is "
                          "trusted (Gloo honours it only in Enterprise)");
    }
  }
  if (const auto* n = r.get("rules")) {
    const toml::array* array = read_table_array(*n, r.path("rules"), diagnostics);
    if (array == nullptr) return;
    bool ok = true;
    for (size_t i = 0; i < array->size(); ++i) {
      auto rule = load_rule(*array->get(i)->as_table(), index_path(r.path("rules"), i), diagnostics,
                            pos_or(*array, r.pos()));
      ok = ok && rule.has_value();
      if (rule) pp.rules.push_back(std::move(*rule));
    }
    if (!ok) return;
    if (!pp.rules.empty()) {
      diagnostics.warning(pos_of(*n), r.path("rules"),
                          "have no effect: Ringway keeps no per-connection metadata for TLVs to "
                          "be written to (the PROXY header itself is still read)");
    }
  }
  gateway.proxy_protocol = std::move(pp);
}

void load_sni_passthrough(const toml::node& node, const std::string& path, Diagnostics& diagnostics,
                          SourcePos fallback, Gateway& gateway) {
  const toml::table* table = read_table(node, path, diagnostics);
  if (table == nullptr) return;
  const TableReader r(*table, path, {kSniPassthroughKeys}, diagnostics, pos_or(node, fallback));
  if (const auto* n = r.get("maxClientHelloBytes")) {
    if (auto v = read_integer(*n, r.path("maxClientHelloBytes"), diagnostics, kMinClientHelloBytes,
                              kMaxClientHelloBytes)) {
      gateway.sni_passthrough.max_client_hello_bytes = static_cast<uint32_t>(*v);
    }
  }
  if (const auto* n = r.get("onNoMatch")) {
    auto s = read_string(*n, r.path("onNoMatch"), diagnostics);
    if (!s) return;
    bool found = false;
    for (const auto& [name, value] : kNoMatchNames) {
      if (name == *s) {
        gateway.sni_passthrough.on_no_match = value;
        found = true;
      }
    }
    if (!found) {
      diagnostics.error(
          pos_of(*n), r.path("onNoMatch"),
          fmt::format("unknown action {}; allowed: \"close\" (FIN), \"reset\" (RST)", quoted(*s)));
    }
  }
}

}  // namespace

void load_listener_filters(const TableReader& options, Diagnostics& diagnostics, Gateway& gateway) {
  if (const auto* n = options.get("proxyProtocol")) {
    load_proxy_protocol(*n, options.path("proxyProtocol"), diagnostics, options.pos(), gateway);
  }
  if (const auto* n = options.get("listenerFiltersTimeout")) {
    if (auto d = read_positive_duration(*n, options.path("listenerFiltersTimeout"), diagnostics)) {
      gateway.listener_filters_timeout = *d;
    }
  }
  if (const auto* n = options.get("sniPassthrough")) {
    load_sni_passthrough(*n, options.path("sniPassthrough"), diagnostics, options.pos(), gateway);
  }
}

void load_use_proxy_proto(const TableReader& gw, Diagnostics& diagnostics, Gateway& gateway) {
  const toml::node* n = gw.get("useProxyProto");
  if (n == nullptr) return;
  auto b = read_bool(*n, gw.path("useProxyProto"), diagnostics);
  if (!b) return;
  if (gateway.proxy_protocol) {
    // Gloo: options.proxyProtocol overrides the deprecated flag, whichever way it is set.
    diagnostics.warning(pos_of(*n), gw.path("useProxyProto"),
                        fmt::format("is deprecated and overridden by options.proxyProtocol (line "
                                    "{}); remove it",
                                    gateway.proxy_protocol->pos.line));
    return;
  }
  if (!*b) return;  // Gloo's own examples write `useProxyProto: false`; it changes nothing
  diagnostics.warning(pos_of(*n), gw.path("useProxyProto"),
                      "is deprecated; read as options.proxyProtocol = {} (write that instead)");
  ProxyProtocol pp;
  pp.from_deprecated_use_proxy_proto = true;
  pp.pos = pos_of(*n);
  gateway.proxy_protocol = std::move(pp);
}

}  // namespace ringway::config::detail
