// What a finished session looks like to an access log: produced once per session by the worker
// that ran it, right before its sockets are closed, and handed to an optional sink (set with
// Engine::set_session_sink before start). Built only when a sink is set, so an engine without an
// access log pays nothing for it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>

#include "ringway/net/address.hpp"

namespace ringway::engine {

// How a session ended; to_string() gives the access-log word.
enum class EndReason : uint8_t {
  Normal,            // "normal": both sides half-closed (FIN each way), everything forwarded
  UpstreamRefused,   // "upstream_refused": the last connect attempt was refused
  ConnectTimeout,    // "connect_timeout": the last connect attempt hit connectTimeout
  ConnectError,      // "connect_error": the last connect attempt failed otherwise
  IdleTimeout,       // "idle_timeout": no byte either way for tcpProxySettings.idleTimeout
  DownstreamReset,   // "downstream_reset": downstream RST or socket error
  UpstreamReset,     // "upstream_reset": upstream RST or socket error
  KeepaliveTimeout,  // "keepalive_timeout": the kernel failed a socket with ETIMEDOUT
  DrainForceClosed,  // "drain_force_closed": still open at drainTimeout (or at a second signal)
  ConnectionLimit,   // "connection_limit": connectionLimit.maxActiveConnections reached
  CircuitOpen,       // "circuit_open": circuitBreakers.maxConnections reached
  InternalError,     // "internal_error": the worker could not submit an op (ring refused it)
  Overload,          // "overload": refused or reset because the worker's buffer memory was full
  // "proxy_protocol_error": missing or malformed PROXY header
  ProxyProtocolError,
  // "sni_no_match": no tcpHost for the ClientHello's server name, and no default
  SniNoMatch,
  // "client_hello_error": malformed or oversized TLS ClientHello
  ClientHelloError,
  // "listener_filter_timeout": the PROXY header / ClientHello took too long
  ListenerFilterTimeout,
};

constexpr std::string_view to_string(EndReason r) {
  switch (r) {
    case EndReason::Normal:
      return "normal";
    case EndReason::UpstreamRefused:
      return "upstream_refused";
    case EndReason::ConnectTimeout:
      return "connect_timeout";
    case EndReason::ConnectError:
      return "connect_error";
    case EndReason::IdleTimeout:
      return "idle_timeout";
    case EndReason::DownstreamReset:
      return "downstream_reset";
    case EndReason::UpstreamReset:
      return "upstream_reset";
    case EndReason::KeepaliveTimeout:
      return "keepalive_timeout";
    case EndReason::DrainForceClosed:
      return "drain_force_closed";
    case EndReason::ConnectionLimit:
      return "connection_limit";
    case EndReason::CircuitOpen:
      return "circuit_open";
    case EndReason::InternalError:
      return "internal_error";
    case EndReason::Overload:
      return "overload";
    case EndReason::ProxyProtocolError:
      return "proxy_protocol_error";
    case EndReason::SniNoMatch:
      return "sni_no_match";
    case EndReason::ClientHelloError:
      return "client_hello_error";
    case EndReason::ListenerFilterTimeout:
      return "listener_filter_timeout";
  }
  return "unknown";
}

struct SessionRecord {
  uint32_t worker = 0;
  std::string_view gateway;             // Gateway::id(); valid during the sink call only
  std::string_view upstream;            // Upstream::id(); valid during the sink call only
  net::SocketAddress downstream_peer;   // the client
  net::SocketAddress downstream_local;  // the gateway address it connected to
  net::SocketAddress upstream_host;     // the host of the last connect attempt (length 0: none)
  uint32_t connect_attempts = 0;
  uint64_t bytes_from_downstream = 0;           // received from downstream
  uint64_t bytes_to_upstream = 0;               // written to upstream
  uint64_t bytes_from_upstream = 0;             // received from upstream
  uint64_t bytes_to_downstream = 0;             // written to downstream
  std::chrono::system_clock::time_point start;  // when the downstream connection was accepted
  std::chrono::nanoseconds duration{0};
  EndReason reason = EndReason::Normal;
};

// Called on the worker thread that ran the session (several workers call it concurrently: a
// sink that shares state must lock). It must not block for long: it runs on the data path.
using SessionSink = std::function<void(const SessionRecord&)>;

}  // namespace ringway::engine
