// `[[gateways]]`: Gloo's Gateway spec (bindAddress, bindPort, options, tcpGateway) into
// config::Gateway. Socket option entries are read by load_socket_option.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <tuple>

#include "reader.hpp"
#include "ringway/config/access_log_format.hpp"
#include "ringway/config/socket_names.hpp"
#include "ringway/config/suggest.hpp"
#include "ringway/config/values.hpp"

namespace ringway::config::detail {
namespace {

constexpr int64_t kUint32Max = std::numeric_limits<uint32_t>::max();

constexpr RefusedKey kGatewayRefused[] = {
    {"ssl", Refusal::NotYet},
    {"httpGateway", Refusal::NotYet, "Ringway implements tcpGateway"},
    {"hybridGateway", Refusal::NotYet, "Ringway implements tcpGateway"},
    {"routeOptions", Refusal::NotYet},
    {"namespacedStatuses", Refusal::NotYet},
    {"proxyNames", Refusal::NoEffect, "Ringway is the proxy"},
};
// proxyNames is not among the accepted keys: it is refused with a warning above.
constexpr std::string_view kGatewayKeys[] = {"metadata",    "apiVersion",   "kind",
                                             "bindAddress", "bindPort",     "options",
                                             "tcpGateway",  "useProxyProto"};

constexpr std::string_view kOptionsKeys[] = {
    "socketOptions",        "tcpKeepalive",  "perConnectionBufferLimitBytes",
    "accessLoggingService", "proxyProtocol", "listenerFiltersTimeout",
    "sniPassthrough"};
constexpr RefusedKey kOptionsRefused[] = {
    {"connectionBalanceConfig", Refusal::NotYet},
    {"listenerAccessLoggingService", Refusal::NotYet},
    {"tcpStats", Refusal::NotYet},
    {"extensions", Refusal::NotYet},
};
constexpr std::string_view kAccessLoggingKeys[] = {"accessLog"};
constexpr std::string_view kAccessLogKeys[] = {"fileSink"};
constexpr RefusedKey kAccessLogRefused[] = {
    {"grpcService", Refusal::NotYet},
    {"openTelemetryService", Refusal::NotYet},
    {"filter", Refusal::NotYet},
};
constexpr std::string_view kFileSinkKeys[] = {"path", "stringFormat", "jsonFormat"};
constexpr std::string_view kTcpGatewayKeys[] = {"tcpHosts", "options"};
constexpr std::string_view kTcpGatewayOptionsKeys[] = {"tcpProxySettings", "connectionLimit"};
constexpr RefusedKey kTcpGatewayOptionsRefused[] = {{"localRatelimit", Refusal::NotYet}};
constexpr std::string_view kTcpProxyKeys[] = {"idleTimeout", "maxConnectAttempts", "spliceMode"};
constexpr std::pair<std::string_view, SpliceMode> kSpliceModes[] = {
    {"AUTO", SpliceMode::Auto}, {"ALWAYS", SpliceMode::Always}, {"NEVER", SpliceMode::Never}};
constexpr RefusedKey kTcpProxyRefused[] = {
    {"tunnelingConfig", Refusal::NotYet},
    {"accessLogFlushInterval", Refusal::NotYet},
};
constexpr std::string_view kConnectionLimitKeys[] = {"maxActiveConnections"};
constexpr RefusedKey kConnectionLimitRefused[] = {{"delayBeforeClose", Refusal::NotYet}};

// ---- options ----------------------------------------------------------------------------

// An access-log format with an unknown or malformed %OPERATOR% is an error at load time, so
// --check reports it instead of the daemon refusing to start.
bool check_access_log_format(const std::string& format, const toml::node& node,
                             const std::string& path, Diagnostics& diagnostics) {
  const FormatParseResult parsed = parse_format(format);
  if (parsed.ok) return true;
  diagnostics.error(pos_of(node), path,
                    fmt::format("{} (at offset {} of the string)", parsed.error, parsed.offset));
  return false;
}

void load_file_sink(const toml::node& node, const std::string& path, Diagnostics& diagnostics,
                    SourcePos fallback, Gateway& gateway) {
  const toml::table* table = read_table(node, path, diagnostics);
  if (table == nullptr) return;
  const TableReader r(*table, path, {kFileSinkKeys}, diagnostics, pos_or(node, fallback));
  AccessLogFileSink sink;
  bool ok = true;
  if (const auto* n = r.get("path")) {
    auto s = read_name(*n, r.path("path"), diagnostics);
    ok = s.has_value();
    if (s) sink.path = *s;
  } else {
    diagnostics.error(r.pos(), r.path("path"), "is required (the file to append to)");
    ok = false;
  }
  const toml::node* string_format = r.get("stringFormat");
  const toml::node* json_format = r.get("jsonFormat");
  if (string_format != nullptr && json_format != nullptr) {
    diagnostics.error(pos_of(*json_format), r.path("jsonFormat"),
                      "stringFormat and jsonFormat are both set; use one");
    ok = false;
  } else if (string_format != nullptr) {
    auto s = read_string(*string_format, r.path("stringFormat"), diagnostics);
    ok = ok && s.has_value();
    if (s) {
      sink.string_format = *s;
      ok = check_access_log_format(*s, *string_format, r.path("stringFormat"), diagnostics) && ok;
    }
  } else if (json_format != nullptr) {
    sink.format = AccessLogFileSink::Format::Json;
    if (const auto* t = read_table(*json_format, r.path("jsonFormat"), diagnostics)) {
      // toml::table is a sorted map; the JSON keys are written in the file's order.
      std::vector<std::pair<const toml::key*, const toml::node*>> entries;
      for (auto&& [key, value] : *t)
        entries.emplace_back(&key, &value);
      std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        const SourcePos pa = pos_of(*a.first), pb = pos_of(*b.first);
        return std::tie(pa.line, pa.column) < std::tie(pb.line, pb.column);
      });
      for (const auto& [key, value] : entries) {
        const std::string value_path = join_path(r.path("jsonFormat"), key->str());
        auto s = read_string(*value, value_path, diagnostics);
        ok = ok && s.has_value();
        if (!s) continue;
        ok = check_access_log_format(*s, *value, value_path, diagnostics) && ok;
        sink.json_format.emplace_back(std::string(key->str()), *s);
      }
    } else {
      ok = false;
    }
  }
  if (ok) gateway.access_logs.push_back(std::move(sink));
}

void load_access_logging(const toml::node& node, const std::string& path, Diagnostics& diagnostics,
                         SourcePos fallback, Gateway& gateway) {
  const toml::table* table = read_table(node, path, diagnostics);
  if (table == nullptr) return;
  const TableReader r(*table, path, {kAccessLoggingKeys}, diagnostics, pos_or(node, fallback));
  const toml::node* logs = r.get("accessLog");
  if (logs == nullptr) return;
  const toml::array* array = read_table_array(*logs, r.path("accessLog"), diagnostics);
  if (array == nullptr) return;
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::table& entry = *array->get(i)->as_table();
    const std::string entry_path = index_path(r.path("accessLog"), i);
    const TableReader e(entry, entry_path, {kAccessLogKeys, kAccessLogRefused}, diagnostics,
                        pos_or(*array, r.pos()));
    if (const auto* sink = e.get("fileSink")) {
      load_file_sink(*sink, e.path("fileSink"), diagnostics, e.pos(), gateway);
    } else {
      diagnostics.error(e.pos(), e.path("fileSink"),
                        "is required: fileSink = { path = \"...\" } is the only sink Ringway "
                        "implements");
    }
  }
}

void load_options(const TableReader& gw, Diagnostics& diagnostics, Gateway& gateway) {
  const toml::node* node = gw.get("options");
  if (node == nullptr) return;
  const std::string path = gw.path("options");
  const toml::table* table = read_table(*node, path, diagnostics);
  if (table == nullptr) return;
  const TableReader r(*table, path, {kOptionsKeys, kOptionsRefused}, diagnostics, gw.pos());
  if (const auto* n = r.get("socketOptions")) {
    if (const auto* array = read_table_array(*n, r.path("socketOptions"), diagnostics)) {
      for (size_t i = 0; i < array->size(); ++i) {
        auto option =
            load_socket_option(*array->get(i)->as_table(), index_path(r.path("socketOptions"), i),
                               diagnostics, pos_or(*array, r.pos()));
        if (option) gateway.socket_options.push_back(std::move(*option));
      }
    }
  }
  if (const auto* n = r.get("tcpKeepalive")) {
    gateway.tcp_keepalive = load_tcp_keepalive(*n, r.path("tcpKeepalive"), diagnostics, r.pos());
  }
  if (const auto* n = r.get("perConnectionBufferLimitBytes")) {
    if (auto v =
            read_integer(*n, r.path("perConnectionBufferLimitBytes"), diagnostics, 1, kUint32Max)) {
      gateway.per_connection_buffer_limit_bytes = static_cast<uint32_t>(*v);
    }
  }
  if (const auto* n = r.get("accessLoggingService")) {
    load_access_logging(*n, r.path("accessLoggingService"), diagnostics, r.pos(), gateway);
  }
  load_listener_filters(r, diagnostics, gateway);
}

// options.tcpKeepalive expands to these raw options; one set both ways is ambiguous.
void check_keepalive_conflicts(const Gateway& gateway, const std::string& path,
                               Diagnostics& diagnostics) {
  if (!gateway.tcp_keepalive) return;
  const TcpKeepalive& k = *gateway.tcp_keepalive;
  std::vector<std::string_view> expanded = {"SO_KEEPALIVE"};
  if (k.keepalive_time_s) expanded.push_back("TCP_KEEPIDLE");
  if (k.keepalive_interval_s) expanded.push_back("TCP_KEEPINTVL");
  if (k.keepalive_probes) expanded.push_back("TCP_KEEPCNT");
  size_t index = 0;
  for (const auto& option : gateway.socket_options) {
    const auto* known = option_by_value(option.level, option.name);
    if (known != nullptr &&
        std::find(expanded.begin(), expanded.end(), known->name) != expanded.end()) {
      diagnostics.error(option.pos, index_path(join_path(path, "options.socketOptions"), index),
                        fmt::format("{} is also set by options.tcpKeepalive (line {}); set it in "
                                    "one place",
                                    known->name, k.pos.line));
    }
    ++index;
  }
}

// ---- tcpGateway -------------------------------------------------------------------------

// `sni_passthrough_node` / `timeout_node`: the extension settings under options, if written,
// for a warning when nothing on this gateway uses them.
void load_tcp_gateway(const TableReader& gw, Diagnostics& diagnostics, Gateway& gateway,
                      const toml::node* sni_passthrough_node, const toml::node* timeout_node) {
  const toml::node* node = gw.get("tcpGateway");
  const std::string path = gw.path("tcpGateway");
  if (node == nullptr) {
    diagnostics.error(gw.pos(), path,
                      "is required: Ringway implements TCP gateways (tcpGateway.tcpHosts = "
                      "[{ name, destination.single.upstream }])");
    return;
  }
  const toml::table* table = read_table(*node, path, diagnostics);
  if (table == nullptr) return;
  const TableReader r(*table, path, {kTcpGatewayKeys}, diagnostics, gw.pos());

  bool limited = false;
  if (const auto* n = r.get("options")) {
    if (const auto* t = read_table(*n, r.path("options"), diagnostics)) {
      const TableReader o(*t, r.path("options"),
                          {kTcpGatewayOptionsKeys, kTcpGatewayOptionsRefused}, diagnostics,
                          r.pos());
      if (const auto* p = o.get("tcpProxySettings")) {
        if (const auto* pt = read_table(*p, o.path("tcpProxySettings"), diagnostics)) {
          const TableReader ps(*pt, o.path("tcpProxySettings"), {kTcpProxyKeys, kTcpProxyRefused},
                               diagnostics, o.pos());
          if (const auto* v = ps.get("idleTimeout")) {
            if (auto d = read_duration(*v, ps.path("idleTimeout"), diagnostics)) {
              gateway.tcp_proxy.idle_timeout = *d;
              if (d->count() == 0) {
                diagnostics.warning(pos_of(*v), ps.path("idleTimeout"),
                                    "0s disables the idle timeout: sessions whose peer vanished "
                                    "without a FIN or RST may never close (leak); keepalive "
                                    "probes do not count as activity either way");
              }
            }
          }
          if (const auto* v = ps.get("maxConnectAttempts")) {
            if (auto i =
                    read_integer(*v, ps.path("maxConnectAttempts"), diagnostics, 1, kUint32Max)) {
              gateway.tcp_proxy.max_connect_attempts = static_cast<uint32_t>(*i);
            }
          }
          if (const auto* v = ps.get("spliceMode")) {
            if (auto m = read_string(*v, ps.path("spliceMode"), diagnostics)) {
              bool known = false;
              for (const auto& [name, mode] : kSpliceModes) {
                if (*m == name) {
                  gateway.tcp_proxy.splice_mode = mode;
                  known = true;
                }
              }
              if (!known) {
                diagnostics.error(pos_of(*v), ps.path("spliceMode"),
                                  fmt::format("unknown splice mode {}; allowed: \"AUTO\", "
                                              "\"ALWAYS\", \"NEVER\"",
                                              quoted(*m)));
              }
            }
          }
        }
      }
      if (const auto* c = o.get("connectionLimit")) {
        if (const auto* ct = read_table(*c, o.path("connectionLimit"), diagnostics)) {
          const TableReader cl(*ct, o.path("connectionLimit"),
                               {kConnectionLimitKeys, kConnectionLimitRefused}, diagnostics,
                               o.pos());
          if (const auto* v = cl.get("maxActiveConnections")) {
            limited = true;
            if (auto i =
                    read_integer(*v, cl.path("maxActiveConnections"), diagnostics, 1, kUint32Max)) {
              gateway.max_active_connections = static_cast<uint32_t>(*i);
            }
          }
        }
      }
    }
  }
  if (!limited) {
    diagnostics.warning(gw.pos(), join_path(path, "options.connectionLimit.maxActiveConnections"),
                        "not set: this gateway accepts any number of sessions");
  }

  const toml::node* hosts = r.get("tcpHosts");
  const std::string hosts_path = r.path("tcpHosts");
  const toml::array* array = hosts ? read_table_array(*hosts, hosts_path, diagnostics) : nullptr;
  if (hosts == nullptr || (array != nullptr && array->empty())) {
    diagnostics.error(hosts ? pos_of(*hosts) : r.pos(), hosts_path,
                      "at least one tcpHost is required ([[gateways.tcpGateway.tcpHosts]] with "
                      "destination.single.upstream)");
    return;
  }
  if (array == nullptr) return;
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::table& entry = *array->get(i)->as_table();
    const std::string entry_path = index_path(hosts_path, i);
    if (auto host = load_tcp_host(entry, entry_path, diagnostics, pos_or(*array, r.pos()))) {
      host->index = i;
      gateway.tcp_hosts.push_back(std::move(*host));
    }
  }
  check_tcp_hosts(gateway, hosts_path, diagnostics);
  const bool any_sni = std::any_of(gateway.tcp_hosts.begin(), gateway.tcp_hosts.end(),
                                   [](const TcpHost& h) { return h.ssl.has_value(); });
  if (!any_sni && sni_passthrough_node != nullptr) {
    diagnostics.warning(pos_of(*sni_passthrough_node),
                        join_path(gw.path("options"), "sniPassthrough"),
                        "has no effect: no tcpHost of this gateway has sslConfig.sniDomains");
  }
  if (!any_sni && !gateway.proxy_protocol && timeout_node != nullptr) {
    diagnostics.warning(pos_of(*timeout_node),
                        join_path(gw.path("options"), "listenerFiltersTimeout"),
                        "has no effect: this gateway reads neither a PROXY header nor a TLS "
                        "ClientHello before forwarding");
  }
}

}  // namespace

LoadedGateway load_gateway(const toml::table& table, size_t index, Diagnostics& diagnostics) {
  LoadedGateway out;
  Gateway& gateway = out.gateway;
  const std::string path = index_path("gateways", index);
  const TableReader r(table, path, {kGatewayKeys, kGatewayRefused}, diagnostics, {});
  gateway.pos = r.pos();
  check_api_version(r, "gateway.solo.io/v1", "Gateway", diagnostics);
  auto metadata = load_metadata(r, diagnostics);
  gateway.metadata = std::move(metadata.metadata);
  out.name_pos = metadata.pos;

  if (const auto* n = r.get("bindAddress")) {
    if (auto s = read_ip_literal(*n, r.path("bindAddress"), diagnostics)) gateway.bind_address = *s;
  } else {
    diagnostics.error(r.pos(), r.path("bindAddress"),
                      "is required (an IP literal such as \"::\" or \"127.0.0.1\")");
  }
  if (const auto* n = r.get("bindPort")) {
    if (auto v = read_integer(*n, r.path("bindPort"), diagnostics, 0, 65535)) {
      gateway.bind_port = static_cast<uint16_t>(*v);
    }
  } else {
    diagnostics.error(r.pos(), r.path("bindPort"),
                      "is required (0..65535; 0 lets the kernel pick a port)");
  }
  load_options(r, diagnostics, gateway);
  load_use_proxy_proto(r, diagnostics, gateway);
  check_keepalive_conflicts(gateway, path, diagnostics);
  // Either spelling of the key (the options reader already checked them).
  const auto option = [&](const char* camel, const char* snake) -> const toml::node* {
    const toml::node* o = r.get("options");
    if (o == nullptr || !o->is_table()) return nullptr;
    const toml::node* n = o->as_table()->get(camel);
    return n != nullptr ? n : o->as_table()->get(snake);
  };
  load_tcp_gateway(r, diagnostics, gateway, option("sniPassthrough", "sni_passthrough"),
                   option("listenerFiltersTimeout", "listener_filters_timeout"));
  return out;
}

}  // namespace ringway::config::detail
