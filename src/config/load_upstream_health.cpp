// An upstream's health: active checks (`healthChecks[]` with `tcpHealthCheck`), passive
// ejection (`outlierDetection`), and what to fall back to (`failover`). Field names, shapes and
// defaults are Gloo's copy of Envoy's v2 HealthCheck / OutlierDetection and Gloo's Failover.
#include <fmt/format.h>

#include <limits>

#include "reader.hpp"
#include "ringway/config/values.hpp"

namespace ringway::config::detail {
namespace {

constexpr int64_t kUint32Max = std::numeric_limits<uint32_t>::max();

constexpr std::string_view kHealthCheckKeys[] = {"timeout",
                                                 "interval",
                                                 "initialJitter",
                                                 "intervalJitter",
                                                 "intervalJitterPercent",
                                                 "unhealthyThreshold",
                                                 "healthyThreshold",
                                                 "reuseConnection",
                                                 "noTrafficInterval",
                                                 "unhealthyInterval",
                                                 "unhealthyEdgeInterval",
                                                 "healthyEdgeInterval",
                                                 "tcpHealthCheck"};
constexpr RefusedKey kHealthCheckRefused[] = {
    {"httpHealthCheck", Refusal::HttpOnly, "use tcpHealthCheck"},
    {"grpcHealthCheck", Refusal::HttpOnly, "use tcpHealthCheck"},
    {"customHealthCheck", Refusal::NotYet, "use tcpHealthCheck"},
    {"eventLogPath", Refusal::NotYet},
    {"alwaysLogHealthCheckFailures", Refusal::NotYet},
};
constexpr std::string_view kTcpHealthCheckKeys[] = {"send", "receive"};
constexpr std::string_view kPayloadKeys[] = {"text"};
constexpr std::string_view kOutlierKeys[] = {"consecutive5xx",
                                             "interval",
                                             "baseEjectionTime",
                                             "maxEjectionPercent",
                                             "enforcingConsecutive5xx",
                                             "consecutiveGatewayFailure",
                                             "enforcingConsecutiveGatewayFailure",
                                             "splitExternalLocalOriginErrors",
                                             "consecutiveLocalOriginFailure",
                                             "enforcingConsecutiveLocalOriginFailure"};
constexpr RefusedKey kOutlierRefused[] = {
    {"enforcingSuccessRate", Refusal::NotYet},
    {"successRateMinimumHosts", Refusal::NotYet},
    {"successRateRequestVolume", Refusal::NotYet},
    {"successRateStdevFactor", Refusal::NotYet},
    {"enforcingLocalOriginSuccessRate", Refusal::NotYet},
};
constexpr std::string_view kFailoverKeys[] = {"prioritizedLocalities"};
constexpr std::string_view kPriorityKeys[] = {"localityEndpoints"};
constexpr std::string_view kLocalityEndpointsKeys[] = {"locality", "lbEndpoints"};
constexpr RefusedKey kLocalityEndpointsRefused[] = {
    {"loadBalancingWeight", Refusal::NoEffect,
     "locality-weighted balancing is Gloo Enterprise; the hosts of one priority share sessions "
     "by their own loadBalancingWeight"},
};
constexpr std::string_view kLocalityKeys[] = {"region", "zone", "subZone"};
constexpr std::string_view kLbEndpointKeys[] = {"address", "port", "loadBalancingWeight"};
constexpr RefusedKey kLbEndpointRefused[] = {
    {"healthCheckConfig", Refusal::NotYet},
    {"upstreamSslConfig", Refusal::NotYet},
};

// Envoy's Payload.text: hex, at least one byte ("000000FF").
std::optional<std::string> read_hex_payload(const toml::node& node, const std::string& path,
                                            Diagnostics& diagnostics, SourcePos fallback) {
  const toml::table* table = read_table(node, path, diagnostics);
  if (table == nullptr) return std::nullopt;
  const TableReader r(*table, path, {kPayloadKeys}, diagnostics, pos_or(node, fallback));
  const toml::node* text = r.get("text");
  if (text == nullptr) {
    diagnostics.error(r.pos(), r.path("text"),
                      "is required: the bytes as hex, e.g. text = \"50494e470d0a\"");
    return std::nullopt;
  }
  auto s = read_string(*text, r.path("text"), diagnostics);
  if (!s) return std::nullopt;
  auto bytes = hex_decode(*s);
  if (!bytes || bytes->empty()) {
    diagnostics.error(pos_of(*text), r.path("text"),
                      fmt::format("{} is not hex bytes; write an even number (at least 2) of hex "
                                  "digits 0-9 a-f, e.g. \"50494e470d0a\" for \"PING\\r\\n\"",
                                  quoted(*s)));
    return std::nullopt;
  }
  return bytes;
}

bool load_tcp_health_check(const toml::node& node, const std::string& path,
                           Diagnostics& diagnostics, SourcePos fallback, HealthCheck& check) {
  const toml::table* table = read_table(node, path, diagnostics);
  if (table == nullptr) return false;
  const TableReader r(*table, path, {kTcpHealthCheckKeys}, diagnostics, pos_or(node, fallback));
  bool ok = true;
  if (const auto* n = r.get("send")) {
    auto bytes = read_hex_payload(*n, r.path("send"), diagnostics, r.pos());
    ok = bytes.has_value();
    if (bytes) check.send = std::move(*bytes);
  }
  if (const auto* n = r.get("receive")) {
    const toml::array* array = read_table_array(*n, r.path("receive"), diagnostics);
    if (array == nullptr) return false;
    for (size_t i = 0; i < array->size(); ++i) {
      auto bytes = read_hex_payload(*array->get(i), index_path(r.path("receive"), i), diagnostics,
                                    pos_or(*array, r.pos()));
      ok = ok && bytes.has_value();
      if (bytes) check.receive.push_back(std::move(*bytes));
    }
  }
  return ok;
}

std::optional<HealthCheck> load_health_check(const toml::table& table, const std::string& path,
                                             Diagnostics& diagnostics, SourcePos fallback) {
  const TableReader r(table, path, {kHealthCheckKeys, kHealthCheckRefused}, diagnostics, fallback);
  HealthCheck check;
  check.pos = r.pos();
  bool ok = true;
  const auto duration = [&](std::string_view key, Duration& out, bool positive) {
    const toml::node* n = r.get(key);
    if (n == nullptr) return;
    auto d = positive ? read_positive_duration(*n, r.path(key), diagnostics)
                      : read_duration(*n, r.path(key), diagnostics);
    ok = ok && d.has_value();
    if (d) out = *d;
  };
  const auto optional_duration = [&](std::string_view key, std::optional<Duration>& out) {
    Duration d{0};
    if (r.get(key) == nullptr) return;
    const bool was_ok = ok;
    ok = true;
    duration(key, d, true);
    if (ok) out = d;
    ok = ok && was_ok;
  };
  const auto integer = [&](std::string_view key, uint32_t& out, int64_t min, int64_t max) {
    const toml::node* n = r.get(key);
    if (n == nullptr) return;
    auto v = read_integer(*n, r.path(key), diagnostics, min, max);
    ok = ok && v.has_value();
    if (v) out = static_cast<uint32_t>(*v);
  };
  for (const std::string_view key : {"timeout", "interval"}) {
    if (r.get(key) == nullptr) {
      diagnostics.error(r.pos(), r.path(key), "is required (a duration greater than 0s)");
      ok = false;
    }
  }
  duration("timeout", check.timeout, true);
  duration("interval", check.interval, true);
  duration("initialJitter", check.initial_jitter, false);
  duration("intervalJitter", check.interval_jitter, false);
  integer("intervalJitterPercent", check.interval_jitter_percent, 0, 100);
  for (const std::string_view key : {"unhealthyThreshold", "healthyThreshold"}) {
    if (r.get(key) == nullptr) {
      diagnostics.error(r.pos(), r.path(key),
                        "is required (1..4294967295 checks in a row; Envoy requires it)");
      ok = false;
    }
  }
  integer("unhealthyThreshold", check.unhealthy_threshold, 1, kUint32Max);
  integer("healthyThreshold", check.healthy_threshold, 1, kUint32Max);
  if (const auto* n = r.get("reuseConnection")) {
    auto b = read_bool(*n, r.path("reuseConnection"), diagnostics);
    ok = ok && b.has_value();
    if (b) check.reuse_connection = *b;
  }
  duration("noTrafficInterval", check.no_traffic_interval, true);
  optional_duration("unhealthyInterval", check.unhealthy_interval);
  optional_duration("unhealthyEdgeInterval", check.unhealthy_edge_interval);
  optional_duration("healthyEdgeInterval", check.healthy_edge_interval);
  if (const auto* n = r.get("tcpHealthCheck")) {
    ok = load_tcp_health_check(*n, r.path("tcpHealthCheck"), diagnostics, r.pos(), check) && ok;
  } else if (r.table().get("httpHealthCheck") == nullptr &&
             r.table().get("grpcHealthCheck") == nullptr &&
             r.table().get("http_health_check") == nullptr &&
             r.table().get("grpc_health_check") == nullptr) {
    diagnostics.error(r.pos(), r.path("tcpHealthCheck"),
                      "is required: tcpHealthCheck = {} connects only; add send/receive hex "
                      "payloads to check what the upstream answers");
    ok = false;
  } else {
    ok = false;  // the HTTP checker was refused above
  }
  if (!ok) return std::nullopt;
  return check;
}

}  // namespace

void load_health_checks(const TableReader& us, Diagnostics& diagnostics, Upstream& upstream) {
  const toml::node* node = us.get("healthChecks");
  if (node == nullptr) return;
  const std::string path = us.path("healthChecks");
  const toml::array* array = read_table_array(*node, path, diagnostics);
  if (array == nullptr) return;
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string entry_path = index_path(path, i);
    if (i > 0) {
      diagnostics.error(pos_or(*array->get(i), pos_of(*array)), entry_path,
                        "only one health check per upstream is supported (as in Envoy)");
      continue;
    }
    upstream.health_check = load_health_check(*array->get(i)->as_table(), entry_path, diagnostics,
                                              pos_or(*array, us.pos()));
  }
}

void load_outlier_detection(const TableReader& us, Diagnostics& diagnostics, Upstream& upstream) {
  const toml::node* node = us.get("outlierDetection");
  if (node == nullptr) return;
  const std::string path = us.path("outlierDetection");
  const toml::table* table = read_table(*node, path, diagnostics);
  if (table == nullptr) return;
  const TableReader r(*table, path, {kOutlierKeys, kOutlierRefused}, diagnostics, us.pos());
  OutlierDetection od;
  od.pos = r.pos();
  bool ok = true;
  const auto integer = [&](std::string_view key, uint32_t& out, int64_t min, int64_t max) {
    const toml::node* n = r.get(key);
    if (n == nullptr) return;
    auto v = read_integer(*n, r.path(key), diagnostics, min, max);
    ok = ok && v.has_value();
    if (v) out = static_cast<uint32_t>(*v);
  };
  const auto duration = [&](std::string_view key, Duration& out) {
    const toml::node* n = r.get(key);
    if (n == nullptr) return;
    auto d = read_positive_duration(*n, r.path(key), diagnostics);
    ok = ok && d.has_value();
    if (d) out = *d;
  };
  integer("consecutive5xx", od.consecutive_5xx, 1, kUint32Max);
  duration("interval", od.interval);
  duration("baseEjectionTime", od.base_ejection_time);
  integer("maxEjectionPercent", od.max_ejection_percent, 0, 100);
  integer("enforcingConsecutive5xx", od.enforcing_consecutive_5xx, 0, 100);
  integer("consecutiveGatewayFailure", od.consecutive_gateway_failure, 1, kUint32Max);
  integer("enforcingConsecutiveGatewayFailure", od.enforcing_consecutive_gateway_failure, 0, 100);
  if (const auto* n = r.get("splitExternalLocalOriginErrors")) {
    auto b = read_bool(*n, r.path("splitExternalLocalOriginErrors"), diagnostics);
    ok = ok && b.has_value();
    if (b) od.split_external_local_origin_errors = *b;
  }
  integer("consecutiveLocalOriginFailure", od.consecutive_local_origin_failure, 1, kUint32Max);
  integer("enforcingConsecutiveLocalOriginFailure", od.enforcing_consecutive_local_origin_failure,
          0, 100);
  if (!od.split_external_local_origin_errors) {
    for (const std::string_view key :
         {"consecutiveLocalOriginFailure", "enforcingConsecutiveLocalOriginFailure"}) {
      if (const auto* n = r.get(key)) {
        diagnostics.warning(pos_of(*n), r.path(key),
                            "has no effect unless splitExternalLocalOriginErrors = true (until "
                            "then connect failures and resets count as consecutive5xx)");
      }
    }
  }
  if (ok) upstream.outlier_detection = od;
}

namespace {

std::optional<StaticHost> load_lb_endpoint(const toml::table& table, const std::string& path,
                                           Diagnostics& diagnostics, SourcePos fallback) {
  const TableReader r(table, path, {kLbEndpointKeys, kLbEndpointRefused}, diagnostics, fallback);
  return read_host_fields(r, "address", diagnostics);
}

std::optional<FailoverLocality> load_locality_endpoints(const toml::table& table,
                                                        const std::string& path,
                                                        Diagnostics& diagnostics,
                                                        SourcePos fallback) {
  const TableReader r(table, path, {kLocalityEndpointsKeys, kLocalityEndpointsRefused}, diagnostics,
                      fallback);
  FailoverLocality locality;
  bool ok = true;
  if (const auto* n = r.get("locality")) {
    const toml::table* t = read_table(*n, r.path("locality"), diagnostics);
    if (t == nullptr) return std::nullopt;
    const TableReader l(*t, r.path("locality"), {kLocalityKeys}, diagnostics, r.pos());
    const std::pair<std::string_view, std::string*> fields[] = {
        {"region", &locality.region}, {"zone", &locality.zone}, {"subZone", &locality.sub_zone}};
    for (const auto& [key, out] : fields) {
      if (const auto* v = l.get(key)) {
        auto s = read_string(*v, l.path(key), diagnostics);
        ok = ok && s.has_value();
        if (s) *out = *s;
      }
    }
  }
  const toml::node* endpoints = r.get("lbEndpoints");
  const toml::array* array =
      endpoints ? read_table_array(*endpoints, r.path("lbEndpoints"), diagnostics) : nullptr;
  if (endpoints == nullptr || (array != nullptr && array->empty())) {
    diagnostics.error(endpoints ? pos_of(*endpoints) : r.pos(), r.path("lbEndpoints"),
                      "at least one endpoint is required ({ address = \"...\", port = N })");
    return std::nullopt;
  }
  if (array == nullptr) return std::nullopt;
  for (size_t i = 0; i < array->size(); ++i) {
    auto host = load_lb_endpoint(*array->get(i)->as_table(), index_path(r.path("lbEndpoints"), i),
                                 diagnostics, pos_or(*array, r.pos()));
    ok = ok && host.has_value();
    if (host) locality.hosts.push_back(std::move(*host));
  }
  if (!ok) return std::nullopt;
  return locality;
}

}  // namespace

void load_failover(const TableReader& us, Diagnostics& diagnostics, Upstream& upstream) {
  const toml::node* node = us.get("failover");
  if (node == nullptr) return;
  const std::string path = us.path("failover");
  const toml::table* table = read_table(*node, path, diagnostics);
  if (table == nullptr) return;
  const TableReader r(*table, path, {kFailoverKeys}, diagnostics, us.pos());
  const toml::node* list = r.get("prioritizedLocalities");
  const toml::array* array =
      list ? read_table_array(*list, r.path("prioritizedLocalities"), diagnostics) : nullptr;
  if (list == nullptr || (array != nullptr && array->empty())) {
    diagnostics.error(list ? pos_of(*list) : r.pos(), r.path("prioritizedLocalities"),
                      "at least one priority is required ([[upstreams.failover."
                      "prioritizedLocalities]] with localityEndpoints)");
    return;
  }
  if (array == nullptr) return;
  std::vector<FailoverPriority> priorities;
  bool ok = true;
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string entry_path = index_path(r.path("prioritizedLocalities"), i);
    const TableReader p(*array->get(i)->as_table(), entry_path, {kPriorityKeys}, diagnostics,
                        pos_or(*array, r.pos()));
    FailoverPriority priority;
    priority.pos = p.pos();
    const toml::node* eps = p.get("localityEndpoints");
    const toml::array* ea =
        eps ? read_table_array(*eps, p.path("localityEndpoints"), diagnostics) : nullptr;
    if (eps == nullptr || (ea != nullptr && ea->empty())) {
      diagnostics.error(eps ? pos_of(*eps) : p.pos(), p.path("localityEndpoints"),
                        "at least one locality is required ({ lbEndpoints = [{ address, port }] "
                        "})");
      ok = false;
      continue;
    }
    if (ea == nullptr) {
      ok = false;
      continue;
    }
    for (size_t j = 0; j < ea->size(); ++j) {
      auto locality = load_locality_endpoints(*ea->get(j)->as_table(),
                                              index_path(p.path("localityEndpoints"), j),
                                              diagnostics, pos_or(*ea, p.pos()));
      ok = ok && locality.has_value();
      if (locality) priority.localities.push_back(std::move(*locality));
    }
    priorities.push_back(std::move(priority));
  }
  if (!ok) return;
  if (!upstream.health_check && !upstream.outlier_detection) {
    diagnostics.warning(pos_or(*node, us.pos()), path,
                        "without healthChecks or outlierDetection no host is ever unavailable, "
                        "so the failover priorities are never used");
  }
  upstream.failover = std::move(priorities);
}

}  // namespace ringway::config::detail
