// Socket options: the tcpKeepalive expansion, applying a config's raw setsockopt list at one
// socket state, and reading keepalive settings back (see socket_options.hpp).
#include "ringway/net/socket_options.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "ringway/config/socket_names.hpp"

namespace ringway::net {
namespace {

config::SocketOption generated(std::string description, int level, int name, int32_t value) {
  config::SocketOption option;
  option.description = std::move(description);
  option.level = level;
  option.name = name;
  option.value = value;
  // Keepalive belongs before bind(): on a listen socket Linux copies it into every accepted
  // socket, and on an upstream socket it then covers SYN-SENT too (as Envoy applies it).
  option.state = config::SocketState::Prebind;
  return option;  // pos stays {0,0}: generated, not an entry of the file
}

int read_int(int fd, int level, int name) {
  int value = 0;
  socklen_t length = sizeof(value);
  if (getsockopt(fd, level, name, &value, &length) != 0) return -1;
  return value;
}

}  // namespace

std::vector<config::SocketOption> expand_keepalive(const config::TcpKeepalive& keepalive,
                                                   std::string_view origin) {
  std::vector<config::SocketOption> options;
  // Gloo's semantics: the presence of tcpKeepalive alone turns SO_KEEPALIVE on; each unset field
  // is left to the kernel's sysctl default.
  options.push_back(generated(fmt::format("{} tcpKeepalive", origin), SOL_SOCKET, SO_KEEPALIVE, 1));
  if (keepalive.keepalive_time_s) {
    options.push_back(generated(fmt::format("{} tcpKeepalive.keepaliveTime", origin), IPPROTO_TCP,
                                TCP_KEEPIDLE, static_cast<int32_t>(*keepalive.keepalive_time_s)));
  }
  if (keepalive.keepalive_interval_s) {
    options.push_back(generated(fmt::format("{} tcpKeepalive.keepaliveInterval", origin),
                                IPPROTO_TCP, TCP_KEEPINTVL,
                                static_cast<int32_t>(*keepalive.keepalive_interval_s)));
  }
  if (keepalive.keepalive_probes) {
    options.push_back(generated(fmt::format("{} tcpKeepalive.keepaliveProbes", origin), IPPROTO_TCP,
                                TCP_KEEPCNT, static_cast<int32_t>(*keepalive.keepalive_probes)));
  }
  return options;
}

Result<void> apply_socket_options(int fd, std::span<const config::SocketOption> options,
                                  config::SocketState state) {
  for (const auto& option : options) {
    if (option.state != state) continue;
    int rc = 0;
    if (const auto* int_value = std::get_if<int32_t>(&option.value)) {
      // Envoy passes intValue as a C int with sizeof(int): kernels read exactly that many bytes
      // for integer options, and some (e.g. SO_KEEPALIVE) refuse a shorter optlen.
      const int value = *int_value;
      rc = setsockopt(fd, option.level, option.name, &value, sizeof(value));
    } else {
      // bufValue: raw bytes, length as given (struct linger, a device name, ...).
      const auto& bytes = std::get<std::string>(option.value);
      rc = setsockopt(fd, option.level, option.name, bytes.data(),
                      static_cast<socklen_t>(bytes.size()));
    }
    if (rc != 0) {
      const int code = errno;
      return system_error(
          code, fmt::format("setsockopt {} ({}/{} = level {}, name {}) failed",
                            option.description.empty() ? "(no description)" : option.description,
                            config::level_to_string(option.level),
                            config::option_to_string(option.level, option.name), option.level,
                            option.name));
    }
  }
  return {};
}

std::vector<config::SocketOption> listener_options(const config::Gateway& gateway) {
  // Raw options first, in file order, then the extension's expansion: the same order the
  // config lists them in, so a reader of the file can predict what the socket ends up with.
  std::vector<config::SocketOption> options = gateway.socket_options;
  if (gateway.tcp_keepalive) {
    auto keepalive = expand_keepalive(*gateway.tcp_keepalive, "gateway " + gateway.id());
    options.insert(options.end(), keepalive.begin(), keepalive.end());
  }
  return options;
}

std::vector<config::SocketOption> upstream_options(const config::Upstream& upstream) {
  // No tcpKeepalive means no keepalive at all (Gloo leaves upstream_connection_options unset),
  // not the OS defaults with SO_KEEPALIVE on.
  if (!upstream.tcp_keepalive) return {};
  return expand_keepalive(*upstream.tcp_keepalive, "upstream " + upstream.id());
}

std::string_view state_name(config::SocketState state) {
  switch (state) {
    case config::SocketState::Prebind:
      return "STATE_PREBIND";
    case config::SocketState::Bound:
      return "STATE_BOUND";
    case config::SocketState::Listening:
      return "STATE_LISTENING";
  }
  return "STATE_UNKNOWN";
}

KeepaliveReadback read_keepalive(int fd) {
  KeepaliveReadback r;
  r.so_keepalive = read_int(fd, SOL_SOCKET, SO_KEEPALIVE);
  r.tcp_keepidle = read_int(fd, IPPROTO_TCP, TCP_KEEPIDLE);
  r.tcp_keepintvl = read_int(fd, IPPROTO_TCP, TCP_KEEPINTVL);
  r.tcp_keepcnt = read_int(fd, IPPROTO_TCP, TCP_KEEPCNT);
  r.tcp_user_timeout = read_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT);
  return r;
}

}  // namespace ringway::net
