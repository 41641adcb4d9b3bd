// The configuration model: plain structs mirroring the `spec` of Gloo Gateway's `Gateway`
// (gateway.solo.io/v1) and `Upstream` (gloo.solo.io/v1), plus Ringway's own `[settings]`.
// Field names follow Gloo's (camelCase there, snake_case here). Every default is defined once,
// in this file, next to the field it belongs to; the loader, --print-config, the docs and the
// engine all read it from here. Nothing in this layer touches a socket.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ringway::config {

using Duration = std::chrono::milliseconds;

// Where a value came from in the TOML file, for diagnostics raised after loading (for example
// when the kernel refuses a socket option at --check time).
struct SourcePos {
  uint32_t line = 0;
  uint32_t column = 0;
};

// ---- defaults (the one place they are defined) -------------------------------------------
inline constexpr const char* kDefaultNamespace = "default";
// Envoy's per_connection_buffer_limit_bytes default (listener_impl.cc, 1 MiB).
inline constexpr uint32_t kDefaultPerConnectionBufferLimitBytes = 1024 * 1024;
// Envoy's tcp_proxy idle_timeout default since 1.12; Gloo passes an unset value through.
inline constexpr Duration kDefaultIdleTimeout = std::chrono::hours(1);
inline constexpr uint32_t kDefaultMaxConnectAttempts = 1;
// Gloo's translator and Envoy both default connect_timeout to 5 s.
inline constexpr Duration kDefaultConnectTimeout = std::chrono::seconds(5);
// Envoy's circuit breaker default for max_connections.
inline constexpr uint32_t kDefaultMaxConnections = 1024;
inline constexpr uint32_t kDefaultWorkers = 0;  // 0 = one per CPU in the affinity mask
// More workers than this is a typo, not a machine: each worker is a thread with its own ring.
inline constexpr uint32_t kMaxWorkers = 1024;
inline constexpr Duration kDefaultDrainTimeout = std::chrono::seconds(30);
// A week: longer is a typo, and steady_clock::now() + the timeout must not overflow.
inline constexpr Duration kMaxDrainTimeout = std::chrono::hours(24 * 7);
// settings.perWorkerBufferLimitBytes (extension): the memory each worker may spend on data read
// but not yet written (its receive-buffer pool, 32 KiB buffers). 64 MiB holds 2,048 buffers.
// Resident memory follows the real demand; this is the cap.
inline constexpr uint64_t kDefaultPerWorkerBufferLimitBytes = 64ULL << 20;
inline constexpr uint64_t kMinPerWorkerBufferLimitBytes = 1ULL << 20;  // 32 buffers
inline constexpr uint64_t kMaxPerWorkerBufferLimitBytes = 1ULL << 30;  // 32,768 buffers: the
                                                                       // largest buffer ring
// settings.busyPoll (extension, like HAProxy's busy-polling): a worker with nothing ready spins
// on its ring this long before it sleeps, never past its next timer tick. Off by default; the
// CPU it burns is the price of the wake-up it saves (README "Busy-poll").
inline constexpr Duration kDefaultBusyPoll = Duration::zero();
inline constexpr Duration kMaxBusyPoll = std::chrono::seconds(1);
// settings.logLevel: "debug" | "info" | "notice" | "warning" | "error"; lines below it are dropped.
enum class LogLevel : uint8_t { Debug, Info, Notice, Warning, Error };
inline constexpr LogLevel kDefaultLogLevel = LogLevel::Info;
// Linux keepalive ranges (measured: 0 and 32768 / 128 give EINVAL).
inline constexpr uint32_t kKeepaliveSecondsMax = 32767;
inline constexpr uint32_t kKeepaliveProbesMax = 127;

// SNI passthrough (extension settings; Gloo leaves them to Envoy's built-in values).
// Envoy's listener_filters_timeout default: how long the PROXY header and the TLS ClientHello
// may take to arrive before the downstream is closed.
inline constexpr Duration kDefaultListenerFiltersTimeout = std::chrono::seconds(15);
// Bytes of ClientHello Ringway buffers at most while looking for SNI: one full TLS record.
inline constexpr uint32_t kDefaultMaxClientHelloBytes = 16384;
inline constexpr uint32_t kMinClientHelloBytes = 512;
inline constexpr uint32_t kMaxClientHelloBytes = 65536;

// Health checks (Envoy's HealthCheck defaults).
inline constexpr Duration kDefaultNoTrafficInterval = std::chrono::seconds(60);
inline constexpr bool kDefaultReuseConnection = true;

// Outlier detection (Envoy's OutlierDetection defaults).
inline constexpr uint32_t kDefaultConsecutive5xx = 5;
inline constexpr Duration kDefaultOutlierInterval = std::chrono::seconds(10);
inline constexpr Duration kDefaultBaseEjectionTime = std::chrono::seconds(30);
// Envoy v3's max_ejection_time default (Gloo's v2 shape cannot set it): an ejection never lasts
// longer than this, or than baseEjectionTime when that is larger.
inline constexpr Duration kDefaultMaxEjectionTime = std::chrono::seconds(300);
inline constexpr uint32_t kDefaultMaxEjectionPercent = 10;
inline constexpr uint32_t kDefaultEnforcingConsecutive5xx = 100;
inline constexpr uint32_t kDefaultConsecutiveGatewayFailure = 5;
inline constexpr uint32_t kDefaultEnforcingConsecutiveGatewayFailure = 0;
inline constexpr uint32_t kDefaultConsecutiveLocalOriginFailure = 5;
inline constexpr uint32_t kDefaultEnforcingConsecutiveLocalOriginFailure = 100;

// Ring hash (Envoy's RingHashLbConfig defaults and its 8M upper bound).
inline constexpr uint64_t kDefaultMinimumRingSize = 1024;
inline constexpr uint64_t kDefaultMaximumRingSize = 8 * 1024 * 1024;
inline constexpr uint64_t kMaxRingSize = 8 * 1024 * 1024;
// Maglev table size: Envoy's default, a prime (Gloo's `maglev {}` has no settings).
inline constexpr uint64_t kMaglevTableSize = 65537;

// ---- socket options ---------------------------------------------------------------------
// Gloo/Envoy SocketState: when an option is applied to a listen socket.
enum class SocketState : uint8_t {
  Prebind = 0,    // after socket(), before bind()
  Bound = 1,      // after bind(), before listen()
  Listening = 2,  // after listen()
};

// One raw setsockopt, as Gloo's `options.socketOptions[]` entry.
struct SocketOption {
  std::string description;
  int level = 0;
  int name = 0;
  // intValue (range-checked to int32 at load) or bufValue (decoded from base64).
  std::variant<int32_t, std::string> value = int32_t{0};
  SocketState state = SocketState::Prebind;
  SourcePos pos;  // of the entry; {0,0} for options Ringway generated (keepalive expansion)
};

// Gloo's `connectionConfig.tcpKeepalive`; presence alone means SO_KEEPALIVE=1. Unset fields are
// left to the OS (Linux: 7200 s idle, 75 s interval, 9 probes). Durations are rounded up to
// whole seconds at load time, as Gloo does.
struct TcpKeepalive {
  std::optional<uint32_t> keepalive_time_s;      // TCP_KEEPIDLE, 1..32767
  std::optional<uint32_t> keepalive_interval_s;  // TCP_KEEPINTVL, 1..32767
  std::optional<uint32_t> keepalive_probes;      // TCP_KEEPCNT, 1..127 (0 in TOML = OS default)
  SourcePos pos;
};

// ---- shared pieces ----------------------------------------------------------------------
struct Metadata {
  std::string name;
  std::string namespace_ = kDefaultNamespace;
};

// `{ name, namespace }`; an omitted namespace means the referring gateway's namespace.
struct ResourceRef {
  std::string name;
  std::string namespace_;
  SourcePos pos;
};

// `options.accessLoggingService.accessLog[].fileSink`.
struct AccessLogFileSink {
  std::string path;
  // stringFormat: an Envoy-style format with %COMMAND% operators; empty means Ringway's default
  // text line. jsonFormat: key -> operator, written as one JSON object per line.
  enum class Format : uint8_t { Text, Json } format = Format::Text;
  std::string string_format;
  std::vector<std::pair<std::string, std::string>> json_format;
};

// ---- Gateway ----------------------------------------------------------------------------
// One weighted entry of `destination.multi.destinations[]` or of an upstream group.
// weight 0 is accepted and means "never chosen" (a drained destination); Envoy would reject it.
struct WeightedDestination {
  ResourceRef upstream;  // destination.upstream
  uint32_t weight = 0;
  size_t upstream_index = 0;  // set when references resolve
  SourcePos pos;
};

// `tcpHosts[].sslConfig` without certificates: TLS passthrough chosen by SNI.
struct SslPassthrough {
  // Lowercase; exact names or "*.suffix" wildcards. Unique across the gateway's tcpHosts.
  std::vector<std::string> sni_domains;
  std::vector<SourcePos> sni_domain_pos;  // one per name, for duplicate diagnostics
  SourcePos pos;
};

struct TcpHost {
  std::string name;
  enum class Kind : uint8_t { Single, Multi, UpstreamGroup } kind = Kind::Single;
  // Single: the upstream. Multi/UpstreamGroup: the first destination with weight > 0, so that a
  // worker that does not choose per session yet still forwards somewhere sensible.
  ResourceRef upstream;
  size_t upstream_index = 0;  // index into Config::upstreams, set when references resolve
  // Multi: the destinations as written. UpstreamGroup: copied from the group when it resolves.
  std::vector<WeightedDestination> destinations;
  ResourceRef upstream_group;         // UpstreamGroup only
  std::optional<SslPassthrough> ssl;  // absent: the gateway's default (plaintext or no SNI match)
  size_t index = 0;  // position in tcpHosts[] as written (entries that failed to load are absent)
  SourcePos pos;
};

// Extension: what a gateway with SNI passthrough does with a ClientHello.
enum class SniNoMatch : uint8_t {
  Close,  // FIN: the client sees the connection closed
  Reset,  // RST (SO_LINGER 0)
};
inline constexpr SniNoMatch kDefaultSniNoMatch = SniNoMatch::Close;
struct SniPassthrough {
  uint32_t max_client_hello_bytes = kDefaultMaxClientHelloBytes;
  // When no tcpHost's sniDomains match and no tcpHost without sslConfig exists.
  SniNoMatch on_no_match = kDefaultSniNoMatch;
};

// `options.proxyProtocol`: expect a PROXY v1 or v2 header from a load balancer in front.
struct ProxyProtocolRule {
  uint32_t tlv_type = 0;  // 0..255
  std::string metadata_namespace;
  std::string key;
};
struct ProxyProtocol {
  std::vector<ProxyProtocolRule> rules;  // accepted; Ringway has no metadata to write them to
  bool allow_requests_without_proxy_protocol = false;  // Gloo honours true only in Enterprise
  bool from_deprecated_use_proxy_proto = false;        // set by `useProxyProto = true`
  SourcePos pos;
};

// tcpProxySettings.spliceMode (extension; Gloo has no such field, so it is named and valued
// the way Gloo names its enums): how a direction moves bytes. COPY reads into the worker's
// buffer pool and writes from it; SPLICE moves them socket -> pipe -> socket inside the kernel
// (no copy through user space); AUTO starts with COPY and switches a direction to SPLICE once it
// carries a burst, and back when its reads turn small. The default is NEVER because that is
// what the benchmark confirmed on this project's machines (loopback, doc/performance/
// 2026-11-29-splice-shared.md): copy cost 0.51 CPU-s/GiB on one stream, splice 0.82.
enum class SpliceMode : uint8_t { Auto, Always, Never };
inline constexpr SpliceMode kDefaultSpliceMode = SpliceMode::Never;

struct TcpProxySettings {
  Duration idle_timeout = kDefaultIdleTimeout;  // 0 disables
  uint32_t max_connect_attempts = kDefaultMaxConnectAttempts;
  SpliceMode splice_mode = kDefaultSpliceMode;
};

struct Gateway {
  Metadata metadata;
  std::string bind_address;  // IPv4 or IPv6 literal; "::" is dual-stack
  uint16_t bind_port = 0;    // 0: the kernel picks one port, shared by every worker
  // options
  std::vector<SocketOption> socket_options;   // raw, in file order
  std::optional<TcpKeepalive> tcp_keepalive;  // extension: downstream keepalive in one table
  uint32_t per_connection_buffer_limit_bytes = kDefaultPerConnectionBufferLimitBytes;
  std::vector<AccessLogFileSink> access_logs;
  std::optional<ProxyProtocol> proxy_protocol;  // absent = no PROXY header expected
  Duration listener_filters_timeout = kDefaultListenerFiltersTimeout;  // extension
  SniPassthrough sni_passthrough;                                      // extension
  // tcpGateway
  TcpProxySettings tcp_proxy;
  std::optional<uint32_t> max_active_connections;  // connectionLimit; unset = unlimited (warn)
  // At most one without sslConfig (the default); the others are told apart by sniDomains.
  std::vector<TcpHost> tcp_hosts;
  SourcePos pos;

  std::string id() const { return metadata.namespace_ + "." + metadata.name; }
};

// ---- Upstream ---------------------------------------------------------------------------
struct StaticHost {
  std::string addr;  // IP literal or hostname (resolved at start-up)
  uint16_t port = 0;
  uint32_t load_balancing_weight = 1;
  SourcePos pos;
};

// RingHash and Maglev hash the downstream source address (Gloo sets no hash policy on TCP, so
// there Envoy picks at random; Ringway does what the user means).
enum class LoadBalancer : uint8_t { RoundRobin, Random, LeastRequest, RingHash, Maglev };

struct RingHashConfig {
  uint64_t minimum_ring_size = kDefaultMinimumRingSize;
  uint64_t maximum_ring_size = kDefaultMaximumRingSize;
};

// `healthChecks[]` with `tcpHealthCheck` (the only checker a TCP forwarder can run).
struct HealthCheck {
  Duration timeout{0};   // required, > 0
  Duration interval{0};  // required, > 0
  Duration initial_jitter{0};
  Duration interval_jitter{0};
  uint32_t interval_jitter_percent = 0;
  uint32_t unhealthy_threshold = 0;  // required (Envoy requires it), >= 1
  uint32_t healthy_threshold = 0;    // required, >= 1
  bool reuse_connection = kDefaultReuseConnection;
  Duration no_traffic_interval = kDefaultNoTrafficInterval;
  std::optional<Duration> unhealthy_interval;       // unset: interval
  std::optional<Duration> unhealthy_edge_interval;  // unset: unhealthy_interval
  std::optional<Duration> healthy_edge_interval;    // unset: interval
  // tcpHealthCheck: bytes decoded from hex. Empty send = connect only; receive blocks must all
  // appear, in order, not necessarily contiguous.
  std::string send;
  std::vector<std::string> receive;
  SourcePos pos;
};

// `outlierDetection`: for TCP, connect failures and resets are local-origin errors. With
// splitExternalLocalOriginErrors = false (default) they count as 5xx (consecutive5xx) and as
// gateway failures; with true, consecutiveLocalOriginFailure applies.
struct OutlierDetection {
  uint32_t consecutive_5xx = kDefaultConsecutive5xx;
  Duration interval = kDefaultOutlierInterval;
  Duration base_ejection_time = kDefaultBaseEjectionTime;
  uint32_t max_ejection_percent = kDefaultMaxEjectionPercent;
  uint32_t enforcing_consecutive_5xx = kDefaultEnforcingConsecutive5xx;
  uint32_t consecutive_gateway_failure = kDefaultConsecutiveGatewayFailure;
  uint32_t enforcing_consecutive_gateway_failure = kDefaultEnforcingConsecutiveGatewayFailure;
  bool split_external_local_origin_errors = false;
  uint32_t consecutive_local_origin_failure = kDefaultConsecutiveLocalOriginFailure;
  uint32_t enforcing_consecutive_local_origin_failure =
      kDefaultEnforcingConsecutiveLocalOriginFailure;
  SourcePos pos;
};

// `failover.prioritizedLocalities[i]` is priority i + 1 (static.hosts are priority 0).
struct FailoverLocality {
  std::string region, zone, sub_zone;
  std::vector<StaticHost> hosts;  // lbEndpoints: address, port, loadBalancingWeight
};
struct FailoverPriority {
  std::vector<FailoverLocality> localities;
  SourcePos pos;
};

enum class ProxyProtocolVersion : uint8_t { V1, V2 };

struct Upstream {
  Metadata metadata;
  std::vector<StaticHost> hosts;  // static.hosts, at least one
  Duration connect_timeout = kDefaultConnectTimeout;
  std::optional<TcpKeepalive> tcp_keepalive;  // absent = keepalive off
  uint32_t per_connection_buffer_limit_bytes = kDefaultPerConnectionBufferLimitBytes;
  LoadBalancer load_balancer = LoadBalancer::RoundRobin;
  RingHashConfig ring_hash;                           // used when load_balancer == RingHash
  uint32_t max_connections = kDefaultMaxConnections;  // circuitBreakers.maxConnections
  std::optional<HealthCheck> health_check;            // healthChecks[0]; at most one (Envoy)
  std::optional<OutlierDetection> outlier_detection;
  std::vector<FailoverPriority> failover;                      // priorities 1..n
  std::optional<ProxyProtocolVersion> proxy_protocol_version;  // absent: no PROXY header sent
  SourcePos pos;

  std::string id() const { return metadata.namespace_ + "." + metadata.name; }
};

// ---- settings (extension) ---------------------------------------------------------------
struct Admin {
  std::string bind_address = "127.0.0.1";
  uint16_t bind_port = 0;  // 0: the kernel picks, logged at start-up
};

struct Settings {
  uint32_t workers = kDefaultWorkers;
  Duration drain_timeout = kDefaultDrainTimeout;
  uint64_t per_worker_buffer_limit_bytes = kDefaultPerWorkerBufferLimitBytes;
  std::optional<Admin> admin;  // absent = no admin endpoint
  LogLevel log_level = kDefaultLogLevel;
  Duration busy_poll = kDefaultBusyPoll;
};

// `[[upstreamGroups]]`: Gloo's UpstreamGroup (gloo.solo.io/v1), weighted destinations that
// tcpHosts reference with `destination.upstreamGroup = { name, namespace }`.
struct UpstreamGroup {
  Metadata metadata;
  std::vector<WeightedDestination> destinations;
  SourcePos pos;

  std::string id() const { return metadata.namespace_ + "." + metadata.name; }
};

struct Config {
  std::string source_path;  // the file it was loaded from, for messages
  Settings settings;
  std::vector<Gateway> gateways;
  std::vector<Upstream> upstreams;
  std::vector<UpstreamGroup> upstream_groups;
};

}  // namespace ringway::config
