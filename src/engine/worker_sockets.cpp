// The /sockets answer of one worker: its listen sockets and up to N live sessions, with the
// keepalive options read back with getsockopt on this worker's own thread (no other thread
// ever touches a worker's fds).
#include <fmt/format.h>

#include "ringway/net/socket_options.hpp"
#include "worker.hpp"

namespace ringway::engine {
namespace {

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

// "SO_KEEPALIVE":1,"TCP_KEEPIDLE":60,... (the key names the integration tests parse).
std::string keepalive_fields(int fd) {
  const net::KeepaliveReadback k = net::read_keepalive(fd);
  return fmt::format(
      "\"SO_KEEPALIVE\":{},\"TCP_KEEPIDLE\":{},\"TCP_KEEPINTVL\":{},\"TCP_KEEPCNT\":{},"
      "\"TCP_USER_TIMEOUT\":{}",
      k.so_keepalive, k.tcp_keepidle, k.tcp_keepintvl, k.tcp_keepcnt, k.tcp_user_timeout);
}

std::string side(int fd) {
  auto peer = net::SocketAddress::peer_of(fd);
  return fmt::format("{{\"peer\":{},{}}}", json_string(peer ? peer->to_string() : std::string()),
                     keepalive_fields(fd));
}

}  // namespace

void Worker::answer_sockets(SocketsRequest& request) {
  std::vector<std::string> listeners;
  std::vector<std::string> sessions;
  for (const auto& l : listeners_) {
    if (l.fd < 0) continue;
    listeners.push_back(fmt::format("{{\"gateway\":{},\"worker\":{},\"address\":{},{}}}",
                                    json_string(shared_.gateway_ids[l.gateway]), index_,
                                    json_string(l.address.to_string()), keepalive_fields(l.fd)));
  }
  for (uint32_t slot = 0; slot < sessions_.high_water(); ++slot) {
    if (sessions.size() >= request.max_sessions) break;
    Session& s = sessions_.at(slot);
    if (s.state != SessionState::Established) continue;
    // Behind a load balancer sending PROXY headers, "peer" is the real client and "via" the
    // load balancer's connection (the socket's own peer).
    std::string downstream = side(s.downstream_fd);
    if (s.proxied) {
      auto via = net::SocketAddress::peer_of(s.downstream_fd);
      downstream = fmt::format(
          "{{\"peer\":{},\"via\":{},{}}}", json_string(client_address(slot).to_string()),
          json_string(via ? via->to_string() : std::string()), keepalive_fields(s.downstream_fd));
    }
    sessions.push_back(fmt::format(
        "{{\"gateway\":{},\"upstream_id\":{},\"worker\":{},\"downstream\":{},\"upstream\":{}}}",
        json_string(shared_.gateway_ids[s.gateway]), json_string(shared_.upstream_ids[s.upstream]),
        index_, downstream, side(s.upstream_fd)));
  }
  std::lock_guard lock(request.mu);
  for (auto& l : listeners)
    request.listeners.push_back(std::move(l));
  for (auto& s : sessions)
    request.sessions.push_back(std::move(s));
  --request.remaining;
  request.cv.notify_all();
}

}  // namespace ringway::engine
