// The pre-connect read phase ("listener filters", as Envoy calls them): for a gateway with
// `options.proxyProtocol` or a tcpHost with `sslConfig`, a session reads the first bytes of its
// downstream before its tcpHost (and so its upstream) is chosen. Then, once connected, the
// upstream's PROXY header (`proxyProtocolVersion`) goes out ahead of every client byte.
//
// How the bytes are read: a POLLIN poll on the ring, then recv(MSG_PEEK | MSG_DONTWAIT) into one
// worker-wide scratch buffer. Nothing is consumed except a complete PROXY header (recv of
// exactly its length, already in the socket): the ClientHello, and anything else the client
// sent, stays in the kernel's socket buffer and is read by the forwarding path as the first
// bytes for the upstream, unchanged. So a session in this phase holds no pool buffer and no
// buffer of its own (1,000 silent clients cost 1,000 sockets and timer entries, nothing from
// the pool). A peek does not drain the socket, so a level-triggered poll would fire again at
// once: while a header is incomplete, SO_RCVLOWAT is set one byte above what was seen, and the
// poll fires only when more arrives (or FIN/RST). It is put back to 1 before forwarding.
//
// Deadline: gateway listenerFiltersTimeout on the timer wheel (the idle timer's slot, which is
// free until established()). Caps: the PROXY header's own (v1 107 bytes, v2 ParseLimits) and
// sniPassthrough.maxClientHelloBytes; the parsers check every length they read.
//
// Handover (handover.cpp): a session in this phase is Connecting and leaves "fresh". If its
// PROXY header was already consumed, the export carries the real client (SessionExport::proxied)
// and the importer resumes at the SNI stage; nothing else was consumed, so it peeks again.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "ringway/core/log.hpp"
#include "ringway/net/proxy_protocol.hpp"
#include "worker.hpp"

namespace ringway::engine {
namespace {

namespace pp = net::proxy_protocol;

constexpr int64_t kPreambleLogIntervalMs = 1000;  // at most one rejection log line per second

// v2's 12-byte signature, and v1's "PROXY " start.
constexpr uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr char kV1Start[] = "PROXY ";

// Whether `bytes` (at least one) start like a PROXY header of either version. With
// allowRequestsWithoutProxyProtocol, a stream that does not is passed through headerless,
// while one that does and is malformed is still refused (Envoy's behaviour).
bool looks_like_proxy_header(std::span<const uint8_t> bytes) {
  const size_t v2 = std::min(bytes.size(), sizeof(kV2Signature));
  if (std::memcmp(bytes.data(), kV2Signature, v2) == 0) return true;
  const size_t v1 = std::min(bytes.size(), sizeof(kV1Start) - 1);
  return std::memcmp(bytes.data(), kV1Start, v1) == 0;
}

bool has_sni_hosts(const config::Gateway& gw) {
  return std::any_of(gw.tcp_hosts.begin(), gw.tcp_hosts.end(),
                     [](const config::TcpHost& h) { return h.ssl.has_value(); });
}

// The tcpHost without sslConfig (the loader allows at most one), or -1.
int default_tcp_host(const config::Gateway& gw) {
  for (size_t i = 0; i < gw.tcp_hosts.size(); ++i) {
    if (!gw.tcp_hosts[i].ssl) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

bool Worker::needs_preamble(uint32_t gateway) const {
  const auto& gw = shared_.config->gateways[gateway];
  return gw.proxy_protocol.has_value() || has_sni_hosts(gw);
}

const net::tls::SniMatcher& Worker::sni_matcher(uint32_t gateway) {
  if (sni_matchers_.size() <= gateway) sni_matchers_.resize(shared_.config->gateways.size());
  auto& m = sni_matchers_[gateway];
  if (!m) {
    // Built once per worker and gateway, on its first ClientHello. The loader has already
    // checked the names (SniMatcher::build's rules), so this cannot fail for a loaded config;
    // if it did, an empty matcher sends every name to the default tcpHost.
    const auto& gw = shared_.config->gateways[gateway];
    std::vector<std::vector<std::string>> entries;
    entries.reserve(gw.tcp_hosts.size());
    for (const auto& h : gw.tcp_hosts)
      entries.push_back(h.ssl ? h.ssl->sni_domains : std::vector<std::string>{});
    auto built = net::tls::SniMatcher::build(entries);
    if (!built) log::error("gateway {}: sniDomains: {}", gw.id(), built.error().message);
    m = built ? std::move(*built) : net::tls::SniMatcher{};
  }
  return *m;
}

void Worker::record_proxied(uint32_t slot, const net::SocketAddress& source,
                            const net::SocketAddress& destination) {
  Session& s = sessions_.at(slot);
  if (proxied_.size() <= slot) proxied_.resize(slot + 1);
  proxied_[slot] = {source, destination};
  s.proxied = true;
  // The access log names the real client, not the load balancer.
  if (shared_.sink && slot < downstream_peers_.size()) downstream_peers_[slot] = source;
}

net::SocketAddress Worker::client_address(uint32_t slot) {
  const Session& s = sessions_.at(slot);
  if (s.proxied && slot < proxied_.size()) return proxied_[slot].source;
  auto peer = net::SocketAddress::peer_of(s.downstream_fd);
  return peer ? *peer : net::SocketAddress{};
}

net::SocketAddress Worker::client_destination(uint32_t slot) {
  const Session& s = sessions_.at(slot);
  if (s.proxied && slot < proxied_.size()) return proxied_[slot].destination;
  auto local = net::SocketAddress::local_of(s.downstream_fd);
  return local ? *local : net::SocketAddress{};
}

void Worker::begin_preamble(uint32_t slot, const SessionExport* proxied) {
  Session& s = sessions_.at(slot);
  const auto& gw = shared_.config->gateways[s.gateway];
  s.preamble = true;
  if (proxied != nullptr && proxied->proxied) {
    record_proxied(slot, proxied->client_source, proxied->client_destination);
  }
  const int64_t timeout_ms = gw.listener_filters_timeout.count();
  if (timeout_ms > 0) {
    const uint64_t payload = (static_cast<uint64_t>(TimerKind::Preamble) << 56) |
                             (static_cast<uint64_t>(s.generation) << 32) | slot;
    s.idle_timer = timers_.insert(tick_at(now_ms_ + timeout_ms), payload);
  }
  if (peek_buffer_.empty()) peek_buffer_.resize(config::kMaxClientHelloBytes);
  // The first bytes often arrive with (or right after) the handshake: look before polling.
  run_preamble(slot, false);
}

// Peeks at what the downstream has sent and moves the session on when it can: PROXY stage
// (consume the header), then SNI stage (choose the tcpHost), then begin_upstream().
void Worker::run_preamble(uint32_t slot, bool eof) {
  Session& s = sessions_.at(slot);
  const auto& gw = shared_.config->gateways[s.gateway];
  const bool proxy_stage = gw.proxy_protocol.has_value() && !s.proxied;
  const bool allow_headerless =
      proxy_stage && gw.proxy_protocol->allow_requests_without_proxy_protocol;
  // What the SNI stage may look at; the PROXY stage needs at most kV2DefaultMaxLength, unless
  // a headerless stream may turn out to be the ClientHello itself.
  const size_t cap =
      std::min<size_t>(gw.sni_passthrough.max_client_hello_bytes, peek_buffer_.size());
  const size_t peek = proxy_stage && !allow_headerless
                          ? pp::kV2DefaultMaxLength
                          : std::max<size_t>(cap, pp::kV2DefaultMaxLength);
  const ssize_t n = ::recv(s.downstream_fd, peek_buffer_.data(), peek, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    gateway_stats_[s.gateway].add(GatewayStat::downstream_resets_total);
    reject_preamble(slot, EndReason::DownstreamReset, false, nullptr);
    return;
  }
  if (n < 0 && !eof) {  // nothing yet
    wait_preamble(slot, 0);
    return;
  }
  if (n <= 0) {
    // FIN (recv 0, or the poll said so with nothing to read) before any byte: the client went away
    // (a load balancer's health check, a port scan); nothing to forward and nothing malformed.
    reject_preamble(slot, EndReason::Normal, false, nullptr);
    return;
  }
  const std::span<const uint8_t> bytes(peek_buffer_.data(), static_cast<size_t>(n));

  if (proxy_stage) {
    if (allow_headerless && !looks_like_proxy_header(bytes)) {
      s.proxied = false;  // headerless: the socket's peer is the client
    } else {
      const pp::ParseResult r = pp::parse(bytes);
      if (r.status == pp::Status::NeedMore) {
        if (eof) {
          reject_preamble(slot, EndReason::ProxyProtocolError, false, "truncated PROXY header");
        } else {
          wait_preamble(slot, bytes.size());
        }
        return;
      }
      if (r.status == pp::Status::Error) {
        reject_preamble(slot, EndReason::ProxyProtocolError, false, r.reason);
        return;
      }
      // Consume exactly the header: it is in the socket already (just peeked), so this recv
      // neither blocks nor comes up short.
      uint8_t header[pp::kV2DefaultMaxLength];
      const ssize_t got = ::recv(s.downstream_fd, header, r.length, MSG_DONTWAIT);
      if (got != static_cast<ssize_t>(r.length)) {
        reject_preamble(slot, EndReason::DownstreamReset, false, nullptr);
        return;
      }
      if (r.has_addresses) {
        record_proxied(slot, r.source, r.destination);
      } else {
        // v1 UNKNOWN / v2 LOCAL: the connection's own addresses stand (the spec's rule). Still
        // marked, so the stage is not run again.
        auto peer = net::SocketAddress::peer_of(s.downstream_fd);
        auto local = net::SocketAddress::local_of(s.downstream_fd);
        record_proxied(slot, peer ? *peer : net::SocketAddress{},
                       local ? *local : net::SocketAddress{});
      }
      if (!has_sni_hosts(gw)) {
        end_preamble(slot, 0);
        return;
      }
      // The ClientHello (if any) follows the header: peek again from the new start.
      run_preamble(slot, eof);
      return;
    }
  }

  if (!has_sni_hosts(gw)) {
    end_preamble(slot, 0);
    return;
  }
  const net::tls::PeekResult hello =
      net::tls::peek_client_hello(bytes.first(std::min(bytes.size(), cap)), cap);
  int host = -1;
  switch (hello.status) {
    case net::tls::Status::NeedMore:
      if (eof || bytes.size() >= cap) {
        reject_preamble(slot, EndReason::ClientHelloError, false,
                        eof ? "connection closed inside the ClientHello" : "ClientHello too large");
      } else {
        wait_preamble(slot, bytes.size());
      }
      return;
    case net::tls::Status::Error:
      reject_preamble(slot, EndReason::ClientHelloError, false, hello.reason);
      return;
    case net::tls::Status::NotTls:
    case net::tls::Status::NoSni:
      host = default_tcp_host(gw);
      break;
    case net::tls::Status::Done:
      host = sni_matcher(s.gateway).match(hello.server_name);
      if (host < 0) host = default_tcp_host(gw);
      break;
  }
  if (host < 0) {
    reject_preamble(slot, EndReason::SniNoMatch,
                    gw.sni_passthrough.on_no_match == config::SniNoMatch::Reset,
                    "no tcpHost matches the server name");
    return;
  }
  end_preamble(slot, static_cast<uint32_t>(host));
}

// Waits for more than `seen` bytes (or FIN, or an error) with a one-shot poll.
void Worker::wait_preamble(uint32_t slot, size_t seen) {
  Session& s = sessions_.at(slot);
  if (seen > 0 || s.rcvlowat_set) {
    // The bytes seen stay in the socket (peeked): without this the poll fires again at once.
    const int lowat = static_cast<int>(seen) + 1;
    ::setsockopt(s.downstream_fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
    s.rcvlowat_set = lowat > 1;
  }
  io_uring_sqe* p = sqe(tag(Op::Preamble, slot, s.generation));
  if (p == nullptr) {
    reject_preamble(slot, EndReason::InternalError, true, nullptr);
    return;
  }
  io_uring_prep_poll_add(p, s.downstream_fd, POLLIN | POLLRDHUP);
  s.preamble_armed = true;
  ++s.inflight;
}

void Worker::on_preamble_poll(uint32_t slot, int res) {
  Session& s = sessions_.at(slot);
  --s.inflight;
  s.preamble_armed = false;
  if (s.state == SessionState::Closing || !s.preamble) {
    maybe_finish(slot);
    return;
  }
  if (res < 0 || (res & POLLERR) != 0) {
    gateway_stats_[s.gateway].add(GatewayStat::downstream_resets_total);
    reject_preamble(slot, EndReason::DownstreamReset, false, nullptr);
    return;
  }
  s.last_activity_ms = now_ms_;
  run_preamble(slot, (res & (POLLRDHUP | POLLHUP)) != 0);
}

void Worker::on_preamble_timer(uint32_t slot, uint16_t generation) {
  Session* s = sessions_.find(slot, generation);
  if (s == nullptr || !s->preamble || s->state != SessionState::Connecting) return;
  s->idle_timer = {};
  reject_preamble(slot, EndReason::ListenerFilterTimeout, false,
                  "no complete PROXY header / ClientHello within listenerFiltersTimeout");
}

void Worker::reset_rcvlowat(Session& s) {
  if (!s.rcvlowat_set) return;
  const int one = 1;
  ::setsockopt(s.downstream_fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
  s.rcvlowat_set = false;
}

void Worker::end_preamble(uint32_t slot, uint32_t tcp_host) {
  Session& s = sessions_.at(slot);
  s.preamble = false;
  timers_.cancel(s.idle_timer);
  s.idle_timer = {};
  // The forwarding recv must not wait for more than one byte.
  reset_rcvlowat(s);
  s.tcp_host = tcp_host;
  begin_upstream(slot);
}

// Ends a session in the phase: counted per gateway, logged at most once a second per worker.
// `why` null: not the client's fault in a way worth a log line (it left, or reset).
void Worker::reject_preamble(uint32_t slot, EndReason reason, bool rst, const char* why) {
  Session& s = sessions_.at(slot);
  GatewayStats& gs = gateway_stats_[s.gateway];
  switch (reason) {
    case EndReason::ProxyProtocolError:
      gs.add(GatewayStat::proxy_protocol_errors_total);
      break;
    case EndReason::SniNoMatch:
      gs.add(GatewayStat::sni_no_match_total);
      break;
    case EndReason::ClientHelloError:
      gs.add(GatewayStat::client_hello_errors_total);
      break;
    case EndReason::ListenerFilterTimeout:
      gs.add(GatewayStat::listener_filters_timeouts_total);
      break;
    default:
      break;
  }
  if (why != nullptr && now_ms_ - last_preamble_log_ms_ >= kPreambleLogIntervalMs) {
    last_preamble_log_ms_ = now_ms_;
    auto peer = net::SocketAddress::peer_of(s.downstream_fd);
    log::warning("worker {}: gateway {}: connection from {} closed ({}): {}", index_,
                 shared_.gateway_ids[s.gateway], peer ? peer->to_string() : std::string("?"),
                 to_string(reason), why);
  }
  if (!rst && !peek_buffer_.empty()) {
    // close() on a socket with unread bytes sends RST, and everything the client sent so far
    // was only peeked. It is refused anyway: read it away (bounded) so the client sees the
    // FIN asked for. (Bytes arriving after this still turn the close into a RST.)
    for (int i = 0; i < 4; ++i) {
      if (::recv(s.downstream_fd, peek_buffer_.data(), peek_buffer_.size(), MSG_DONTWAIT) <= 0)
        break;
    }
  }
  s.preamble = false;
  timers_.cancel(s.idle_timer);
  s.idle_timer = {};
  // abort_session cancels the poll if one is in flight; finish() closes once it completes.
  abort_session(slot, reason, rst, false);
}

bool Worker::queue_proxy_header(uint32_t slot) {
  Session& s = sessions_.at(slot);
  const auto version = *shared_.config->upstreams[s.upstream].proxy_protocol_version;
  uint8_t header[pp::kMaxBuiltLength];
  const size_t len =
      pp::build(version == config::ProxyProtocolVersion::V1 ? pp::Version::V1 : pp::Version::V2,
                client_address(slot), client_destination(slot), header);
  const int32_t bid = len == 0 ? -1 : pool_->take();
  if (bid < 0) {
    abort_session(slot, len == 0 ? EndReason::InternalError : EndReason::Overload, true, true);
    return false;
  }
  std::memcpy(pool_->data(static_cast<uint16_t>(bid)), header, len);
  Direction& dd = s.dir(Dir::DownToUp);
  // Nothing was read from the downstream yet (reading starts after this), so it is the head.
  if (dd.queued_count == 0) ++holders_;
  queues_->push(dd, static_cast<uint16_t>(bid), static_cast<uint32_t>(len));
  return true;
}

}  // namespace ringway::engine
