// `[[upstreams]]`: Gloo's Upstream spec (static hosts, connectionConfig, loadBalancerConfig,
// circuitBreakers, proxyProtocolVersion) into config::Upstream; healthChecks, outlierDetection
// and failover are read by load_upstream_health.cpp. Every other upstream type and the HTTP-only
// fields are refused by name.
#include <fmt/format.h>

#include <limits>

#include "reader.hpp"
#include "ringway/config/values.hpp"

namespace ringway::config::detail {
namespace {

constexpr int64_t kUint32Max = std::numeric_limits<uint32_t>::max();

constexpr std::string_view kUpstreamKeys[] = {
    "metadata",        "apiVersion",          "kind",
    "static",          "connectionConfig",    "loadBalancerConfig",
    "circuitBreakers", "healthChecks",        "outlierDetection",
    "failover",        "proxyProtocolVersion"};
constexpr RefusedKey kUpstreamRefused[] = {
    {"kube", Refusal::NotYet, "Ringway implements static upstreams"},
    {"consul", Refusal::NotYet, "Ringway implements static upstreams"},
    {"aws", Refusal::NotYet, "Ringway implements static upstreams"},
    {"awsEc2", Refusal::NotYet, "Ringway implements static upstreams"},
    {"azure", Refusal::NotYet, "Ringway implements static upstreams"},
    {"pipe", Refusal::NotYet, "Ringway implements static upstreams"},
    {"gcp", Refusal::NotYet, "Ringway implements static upstreams"},
    {"ai", Refusal::NotYet, "Ringway implements static upstreams"},
    {"sslConfig", Refusal::NotYet},
    {"preconnectPolicy", Refusal::NotYet},
    {"ignoreHealthOnHostRemoval", Refusal::NotYet},
    {"respectDnsTtl", Refusal::NotYet},
    {"dnsRefreshRate", Refusal::NotYet},
    {"disableIstioAutoMtls", Refusal::NotYet},
    {"useHttp2", Refusal::HttpOnly},
    {"initialStreamWindowSize", Refusal::HttpOnly},
    {"initialConnectionWindowSize", Refusal::HttpOnly},
    {"maxConcurrentStreams", Refusal::HttpOnly},
    {"protocolSelection", Refusal::HttpOnly},
    {"httpProxyHostname", Refusal::HttpOnly},
    {"httpConnectSslConfig", Refusal::HttpOnly},
    {"httpConnectHeaders", Refusal::HttpOnly},
    {"overrideStreamErrorOnInvalidHttpMessage", Refusal::HttpOnly},
};
constexpr std::string_view kStaticKeys[] = {"hosts"};
constexpr RefusedKey kStaticRefused[] = {
    {"useTls", Refusal::NotYet},
    {"autoSniRewrite", Refusal::NotYet},
    {"serviceSpec", Refusal::NotYet},
};
constexpr std::string_view kHostKeys[] = {"addr", "port", "loadBalancingWeight"};
constexpr RefusedKey kHostRefused[] = {
    {"sniAddr", Refusal::NotYet},
    {"metadata", Refusal::NotYet},
    {"healthCheckConfig", Refusal::NotYet},
};
constexpr std::string_view kConnectionConfigKeys[] = {"connectTimeout", "tcpKeepalive",
                                                      "perConnectionBufferLimitBytes"};
constexpr RefusedKey kConnectionConfigRefused[] = {
    {"maxRequestsPerConnection", Refusal::HttpOnly},
    {"commonHttpProtocolOptions", Refusal::HttpOnly},
    {"http1ProtocolOptions", Refusal::HttpOnly},
};
constexpr std::string_view kLoadBalancerKeys[] = {"roundRobin", "random", "leastRequest",
                                                  "ringHash", "maglev"};
constexpr RefusedKey kLoadBalancerRefused[] = {
    {"healthyPanicThreshold", Refusal::NotYet},
    {"updateMergeWindow", Refusal::NotYet},
    {"localityWeightedLbConfig", Refusal::NotYet},
    {"useHostnameForHashing", Refusal::NotYet},
    {"closeConnectionsOnHostSetChange", Refusal::NotYet},
};
constexpr std::string_view kRingHashKeys[] = {"ringHashConfig"};
constexpr std::string_view kRingHashConfigKeys[] = {"minimumRingSize", "maximumRingSize"};
constexpr RefusedKey kPolicyRefused[] = {
    {"slowStartConfig", Refusal::NotYet},
    {"choiceCount", Refusal::NotYet},
};
constexpr std::string_view kCircuitBreakerKeys[] = {"maxConnections"};
constexpr RefusedKey kCircuitBreakerRefused[] = {
    {"maxPendingRequests", Refusal::NotYet},
    {"maxRequests", Refusal::NotYet},
    {"maxRetries", Refusal::NotYet},
    {"trackRemaining", Refusal::NotYet},
};

std::optional<StaticHost> load_host(const toml::table& table, const std::string& path,
                                    Diagnostics& diagnostics, SourcePos fallback) {
  const TableReader r(table, path, {kHostKeys, kHostRefused}, diagnostics, fallback);
  return read_host_fields(r, "addr", diagnostics);
}

void load_static(const TableReader& us, Diagnostics& diagnostics, Upstream& upstream) {
  const toml::node* node = us.get("static");
  const std::string path = us.path("static");
  if (node == nullptr) {
    diagnostics.error(us.pos(), path,
                      "is required: Ringway implements static upstreams (static.hosts = "
                      "[{ addr, port }])");
    return;
  }
  const toml::table* table = read_table(*node, path, diagnostics);
  if (table == nullptr) return;
  const TableReader r(*table, path, {kStaticKeys, kStaticRefused}, diagnostics, us.pos());
  const toml::node* hosts = r.get("hosts");
  const toml::array* array =
      hosts ? read_table_array(*hosts, r.path("hosts"), diagnostics) : nullptr;
  if (hosts == nullptr || (array != nullptr && array->empty())) {
    diagnostics.error(hosts ? pos_of(*hosts) : r.pos(), r.path("hosts"),
                      "at least one host is required ({ addr = \"...\", port = N })");
    return;
  }
  if (array == nullptr) return;
  for (size_t i = 0; i < array->size(); ++i) {
    auto host = load_host(*array->get(i)->as_table(), index_path(r.path("hosts"), i), diagnostics,
                          pos_or(*array, r.pos()));
    if (host) upstream.hosts.push_back(std::move(*host));
  }
}

void load_connection_config(const TableReader& us, Diagnostics& diagnostics, Upstream& upstream) {
  const toml::node* node = us.get("connectionConfig");
  if (node == nullptr) return;
  const std::string path = us.path("connectionConfig");
  const toml::table* table = read_table(*node, path, diagnostics);
  if (table == nullptr) return;
  const TableReader r(*table, path, {kConnectionConfigKeys, kConnectionConfigRefused}, diagnostics,
                      us.pos());
  if (const auto* n = r.get("connectTimeout")) {
    if (auto d = read_duration(*n, r.path("connectTimeout"), diagnostics)) {
      if (d->count() == 0) {
        diagnostics.error(pos_of(*n), r.path("connectTimeout"),
                          "must be greater than 0s (every connect would time out at once)");
      } else {
        upstream.connect_timeout = *d;
      }
    }
  }
  if (const auto* n = r.get("tcpKeepalive")) {
    upstream.tcp_keepalive = load_tcp_keepalive(*n, r.path("tcpKeepalive"), diagnostics, r.pos());
  }
  if (const auto* n = r.get("perConnectionBufferLimitBytes")) {
    if (auto v =
            read_integer(*n, r.path("perConnectionBufferLimitBytes"), diagnostics, 1, kUint32Max)) {
      upstream.per_connection_buffer_limit_bytes = static_cast<uint32_t>(*v);
    }
  }
}

void load_ring_hash_config(const TableReader& policy, const toml::node& node,
                           Diagnostics& diagnostics, Upstream& upstream) {
  const std::string path = policy.path("ringHashConfig");
  const toml::table* table = read_table(node, path, diagnostics);
  if (table == nullptr) return;
  const TableReader r(*table, path, {kRingHashConfigKeys}, diagnostics, policy.pos());
  RingHashConfig c;
  const auto* min = r.get("minimumRingSize");
  const auto* max = r.get("maximumRingSize");
  if (min != nullptr) {
    auto v = read_integer(*min, r.path("minimumRingSize"), diagnostics, 1, kMaxRingSize);
    if (!v) return;
    c.minimum_ring_size = static_cast<uint64_t>(*v);
  }
  if (max != nullptr) {
    auto v = read_integer(*max, r.path("maximumRingSize"), diagnostics, 1, kMaxRingSize);
    if (!v) return;
    c.maximum_ring_size = static_cast<uint64_t>(*v);
  }
  if (c.minimum_ring_size > c.maximum_ring_size) {
    diagnostics.error(min != nullptr ? pos_of(*min) : r.pos(), r.path("minimumRingSize"),
                      fmt::format("{} is larger than maximumRingSize {}", c.minimum_ring_size,
                                  c.maximum_ring_size));
    return;
  }
  upstream.ring_hash = c;
}

void load_proxy_protocol_version(const TableReader& us, Diagnostics& diagnostics,
                                 Upstream& upstream) {
  const toml::node* n = us.get("proxyProtocolVersion");
  if (n == nullptr) return;
  auto s = read_string(*n, us.path("proxyProtocolVersion"), diagnostics);
  if (!s) return;
  if (*s == "V1") {
    upstream.proxy_protocol_version = ProxyProtocolVersion::V1;
  } else if (*s == "V2") {
    upstream.proxy_protocol_version = ProxyProtocolVersion::V2;
  } else {
    diagnostics.error(pos_of(*n), us.path("proxyProtocolVersion"),
                      fmt::format("unknown version {}; allowed: \"V1\" (text header), \"V2\" "
                                  "(binary header)",
                                  quoted(*s)));
  }
}

void load_load_balancer(const TableReader& us, Diagnostics& diagnostics, Upstream& upstream) {
  const toml::node* node = us.get("loadBalancerConfig");
  if (node == nullptr) return;
  const std::string path = us.path("loadBalancerConfig");
  const toml::table* table = read_table(*node, path, diagnostics);
  if (table == nullptr) return;
  const TableReader r(*table, path, {kLoadBalancerKeys, kLoadBalancerRefused}, diagnostics,
                      us.pos());
  static constexpr std::pair<std::string_view, LoadBalancer> kPolicies[] = {
      {"roundRobin", LoadBalancer::RoundRobin},
      {"random", LoadBalancer::Random},
      {"leastRequest", LoadBalancer::LeastRequest},
      {"ringHash", LoadBalancer::RingHash},
      {"maglev", LoadBalancer::Maglev},
  };
  std::string_view chosen;
  for (const auto& [key, policy] : kPolicies) {
    const toml::node* n = r.get(key);
    if (n == nullptr) continue;
    const toml::table* t = read_table(*n, r.path(key), diagnostics);
    if (t == nullptr) continue;
    // The policies' own settings (slowStartConfig, choiceCount) are refused by name.
    const std::span<const std::string_view> own =
        policy == LoadBalancer::RingHash ? std::span<const std::string_view>(kRingHashKeys)
                                         : std::span<const std::string_view>();
    const TableReader p(*t, r.path(key), {own, kPolicyRefused}, diagnostics, r.pos());
    if (!chosen.empty()) {
      diagnostics.error(pos_of(*n), r.path(key),
                        fmt::format("{} and {} are both set; choose one policy", chosen, key));
      continue;
    }
    chosen = key;
    upstream.load_balancer = policy;
    if (const auto* c = p.get("ringHashConfig"))
      load_ring_hash_config(p, *c, diagnostics, upstream);
  }
}

void load_circuit_breakers(const TableReader& us, Diagnostics& diagnostics, Upstream& upstream) {
  const toml::node* node = us.get("circuitBreakers");
  if (node == nullptr) return;
  const std::string path = us.path("circuitBreakers");
  const toml::table* table = read_table(*node, path, diagnostics);
  if (table == nullptr) return;
  const TableReader r(*table, path, {kCircuitBreakerKeys, kCircuitBreakerRefused}, diagnostics,
                      us.pos());
  if (const auto* n = r.get("maxConnections")) {
    if (auto v = read_integer(*n, r.path("maxConnections"), diagnostics, 1, kUint32Max)) {
      upstream.max_connections = static_cast<uint32_t>(*v);
    }
  }
}

}  // namespace

LoadedUpstream load_upstream(const toml::table& table, size_t index, Diagnostics& diagnostics) {
  LoadedUpstream out;
  Upstream& upstream = out.upstream;
  const TableReader r(table, index_path("upstreams", index), {kUpstreamKeys, kUpstreamRefused},
                      diagnostics, {});
  upstream.pos = r.pos();
  check_api_version(r, "gloo.solo.io/v1", "Upstream", diagnostics);
  auto metadata = load_metadata(r, diagnostics);
  upstream.metadata = std::move(metadata.metadata);
  out.name_pos = metadata.pos;
  load_static(r, diagnostics, upstream);
  load_connection_config(r, diagnostics, upstream);
  load_load_balancer(r, diagnostics, upstream);
  load_circuit_breakers(r, diagnostics, upstream);
  load_health_checks(r, diagnostics, upstream);
  load_outlier_detection(r, diagnostics, upstream);
  load_failover(r, diagnostics, upstream);
  load_proxy_protocol_version(r, diagnostics, upstream);
  return out;
}

}  // namespace ringway::config::detail
