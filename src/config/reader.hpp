// Internal to the config layer: reading one TOML table against the keys Ringway knows
// (camelCase, plus the snake_case alias of each), and typed readers that report a diagnostic
// with the value's line:col and dotted path instead of failing. Only src/config includes this
// (and so toml++).
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringway/config/diagnostic.hpp"
#include "ringway/config/model.hpp"

namespace ringway::config::detail {

SourcePos pos_of(const toml::node& node);
SourcePos pos_of(const toml::key& key);
// `node`'s position, or `fallback` when toml++ has none (tables it created implicitly).
SourcePos pos_or(const toml::node& node, SourcePos fallback);
// "a string", "an integer", "a table", ... for "expected X, got Y".
std::string_view type_name(const toml::node& node);

std::string join_path(std::string_view base, std::string_view key);
std::string index_path(std::string_view base, size_t index);

// Why a key Gloo has is refused. Never silently ignored: a user who copies a Gloo resource
// learns which of its fields Ringway does not honour.
enum class Refusal : uint8_t {
  NotYet,    // "<key> is not supported yet"
  HttpOnly,  // "<key> applies to HTTP only; Ringway forwards TCP"
  NoEffect,  // warning: "<key> has no effect: <detail>"
  Never,     // "<key> is not supported: <detail>" (by design, not a gap to be filled later)
};
struct RefusedKey {
  std::string_view name;  // camelCase; the snake_case alias is refused the same way
  Refusal why;
  std::string_view detail = {};  // appended after "; " (NotYet, HttpOnly) or ": " (NoEffect)
};

struct Schema {
  std::span<const std::string_view> keys;  // camelCase; each also accepted in snake_case
  std::span<const RefusedKey> refused = {};
};

// One table: checks every key once on construction (unknown -> error with did-you-mean,
// refused -> error or warning, both spellings of one key -> error), then hands out values by
// their camelCase name.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string path, const Schema& schema,
              Diagnostics& diagnostics, SourcePos fallback);

  // The value under `key` (camelCase), whichever spelling the file used; nullptr if absent.
  const toml::node* get(std::string_view key) const;
  // Where the table starts (for "X is required" errors).
  SourcePos pos() const { return pos_; }
  const std::string& path() const { return path_; }
  std::string path(std::string_view key) const { return join_path(path_, key); }
  const toml::table& table() const { return table_; }

 private:
  struct Entry {
    std::string_view key;  // camelCase
    const toml::node* node;
  };
  const toml::table& table_;
  std::string path_;
  SourcePos pos_;
  std::vector<Entry> entries_;
};

// Typed readers: on a wrong type or value they report an error and return nullopt / nullptr.
std::optional<std::string> read_string(const toml::node& node, const std::string& path,
                                       Diagnostics& diagnostics);
// A non-empty string without NUL bytes (names, addresses, paths).
std::optional<std::string> read_name(const toml::node& node, const std::string& path,
                                     Diagnostics& diagnostics);
std::optional<int64_t> read_integer(const toml::node& node, const std::string& path,
                                    Diagnostics& diagnostics, int64_t min, int64_t max);
// A duration string, rounded up to milliseconds.
std::optional<Duration> read_duration(const toml::node& node, const std::string& path,
                                      Diagnostics& diagnostics);
const toml::table* read_table(const toml::node& node, const std::string& path,
                              Diagnostics& diagnostics);
// An array of tables (`[[x]]` or `x = [{...}]`); an empty array is fine.
const toml::array* read_table_array(const toml::node& node, const std::string& path,
                                    Diagnostics& diagnostics);
std::optional<bool> read_bool(const toml::node& node, const std::string& path,
                              Diagnostics& diagnostics);
// A duration that must be greater than zero (`what` says why, e.g. "a zero interval ...").
std::optional<Duration> read_positive_duration(const toml::node& node, const std::string& path,
                                               Diagnostics& diagnostics);
// `{ name, namespace }` (name required; an omitted namespace stays empty until resolved).
std::optional<ResourceRef> read_resource_ref(const toml::node& node, const std::string& path,
                                             Diagnostics& diagnostics, SourcePos fallback);
// RFC 1123 host name (letters, digits, '-', dot-separated labels of at most 63).
bool is_hostname(std::string_view s);
// An IP literal or a host name, as static.hosts[].addr takes.
std::optional<std::string> read_host_address(const toml::node& node, const std::string& path,
                                             Diagnostics& diagnostics);
// An IPv4 or IPv6 literal (checked with inet_pton, no socket involved).
// True (and reports it) when `in6` (16 bytes, parsed from `text`) is an IPv6 link-local address.
bool refuse_link_local(const unsigned char* in6, const std::string& text, const toml::node& node,
                       const std::string& path, Diagnostics& diagnostics);
std::optional<std::string> read_ip_literal(const toml::node& node, const std::string& path,
                                           Diagnostics& diagnostics);

// Shared by gateways and upstreams.
struct LoadedMetadata {
  Metadata metadata;
  SourcePos pos;  // of `metadata`, or of the entry when it is missing
};
LoadedMetadata load_metadata(const TableReader& entry, Diagnostics& diagnostics);
// `apiVersion` / `kind`, optional, must name the resource the table mirrors.
void check_api_version(const TableReader& entry, std::string_view api_version,
                       std::string_view kind, Diagnostics& diagnostics);
// `tcpKeepalive`: keepaliveTime/Interval (duration or integer seconds, rounded up, 1..32767),
// keepaliveProbes (0..127, 0 = OS default). Warns when the time is shorter than interval x probes.
std::optional<TcpKeepalive> load_tcp_keepalive(const toml::node& node, const std::string& path,
                                               Diagnostics& diagnostics, SourcePos fallback);

// One `socketOptions[]` entry; nullopt (with diagnostics) when any field is wrong.
std::optional<SocketOption> load_socket_option(const toml::table& table, const std::string& path,
                                               Diagnostics& diagnostics, SourcePos fallback);

// Per-entry results with the positions that cross-entry checks (duplicates, references) need.
struct LoadedGateway {
  Gateway gateway;
  SourcePos name_pos;
};
struct LoadedUpstream {
  Upstream upstream;
  SourcePos name_pos;
};
LoadedGateway load_gateway(const toml::table& table, size_t index, Diagnostics& diagnostics);
LoadedUpstream load_upstream(const toml::table& table, size_t index, Diagnostics& diagnostics);

// One `tcpHosts[]` entry (load_tcp_host.cpp): name, sslConfig (SNI passthrough), destination.
std::optional<TcpHost> load_tcp_host(const toml::table& table, const std::string& path,
                                     Diagnostics& diagnostics, SourcePos fallback);
// `destinations = [{ weight, destination.upstream }]` of multi and of upstream groups.
std::vector<WeightedDestination> load_weighted_destinations(const toml::node& node,
                                                            const std::string& path,
                                                            Diagnostics& diagnostics,
                                                            SourcePos fallback);
// The tcpHosts of one gateway together: one default at most, SNI names unique.
void check_tcp_hosts(const Gateway& gateway, const std::string& hosts_path,
                     Diagnostics& diagnostics);

// Gateway listener filters (load_listener_filters.cpp): options.proxyProtocol,
// options.listenerFiltersTimeout and options.sniPassthrough from the options table, and the
// deprecated top-level useProxyProto (read after options, which override it).
void load_listener_filters(const TableReader& options, Diagnostics& diagnostics, Gateway& gateway);
void load_use_proxy_proto(const TableReader& gw, Diagnostics& diagnostics, Gateway& gateway);

// A host entry's address (under `address_key`: static.hosts say "addr", failover lbEndpoints
// "address"), port and loadBalancingWeight, each checked; nullopt when any is wrong (reported).
std::optional<StaticHost> read_host_fields(const TableReader& r, std::string_view address_key,
                                           Diagnostics& diagnostics);

// The upstream's active and passive health and failover (load_upstream_health.cpp).
void load_health_checks(const TableReader& us, Diagnostics& diagnostics, Upstream& upstream);
void load_outlier_detection(const TableReader& us, Diagnostics& diagnostics, Upstream& upstream);
void load_failover(const TableReader& us, Diagnostics& diagnostics, Upstream& upstream);

struct LoadedUpstreamGroup {
  UpstreamGroup group;
  SourcePos name_pos;
};
LoadedUpstreamGroup load_upstream_group(const toml::table& table, size_t index,
                                        Diagnostics& diagnostics);

}  // namespace ringway::config::detail
