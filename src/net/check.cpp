// --check's kernel trial: every gateway's and upstream's socket options are set on a scratch
// socket at their state, so what the kernel refuses is reported with the option's line:col
// before the daemon runs, not as a failed start or a failed upstream connection.
#include "ringway/net/check.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ringway/config/socket_names.hpp"
#include "ringway/net/address.hpp"
#include "ringway/net/socket_options.hpp"
#include "scoped_fd.hpp"

namespace ringway::net {
namespace {

constexpr config::SocketState kStates[] = {config::SocketState::Prebind, config::SocketState::Bound,
                                           config::SocketState::Listening};

// Where an option came from in the file, for the diagnostic.
struct Origin {
  config::SourcePos pos;
  std::string path;
};

// The field of tcpKeepalive an expanded option stands for ("" for SO_KEEPALIVE, which the
// table's presence alone sets).
std::string keepalive_field(const config::SocketOption& option) {
  if (option.level != IPPROTO_TCP) return "";
  switch (option.name) {
    case TCP_KEEPIDLE:
      return ".keepaliveTime";
    case TCP_KEEPINTVL:
      return ".keepaliveInterval";
    case TCP_KEEPCNT:
      return ".keepaliveProbes";
    default:
      return "";
  }
}

// Tries each option of `state` on its own, so one refused option does not hide the next.
void try_state(int fd, std::span<const config::SocketOption> options,
               std::span<const Origin> origins, config::SocketState state,
               config::Diagnostics& diagnostics) {
  for (size_t i = 0; i < options.size(); ++i) {
    const auto& option = options[i];
    if (option.state != state) continue;
    auto applied = apply_socket_options(fd, options.subspan(i, 1), state);
    if (applied) continue;
    diagnostics.error(origins[i].pos, origins[i].path,
                      fmt::format("the kernel refused {} ({}/{}): {}",
                                  option.description.empty() ? "this option" : option.description,
                                  config::level_to_string(option.level),
                                  config::option_to_string(option.level, option.name),
                                  std::strerror(applied.error().code)));
  }
}

// The family's loopback with port 0: the real port may be held by the running daemon, and a
// scratch socket must never be reachable from outside the host.
SocketAddress scratch_address(int family) {
  auto parsed = SocketAddress::parse(family == AF_INET6 ? "::1" : "127.0.0.1", 0);
  return parsed.value();
}

// Binds the configured address itself with port 0, without listening (so it is never
// reachable): bind() tells whether the address is on this host before `systemctl restart` has
// stopped the running daemon. The PREBIND options go first, so IP_FREEBIND or IP_TRANSPARENT
// still allow an address that is not (yet) local.
void check_bind_address(const config::Gateway& gateway, const SocketAddress& address,
                        std::span<const config::SocketOption> options, size_t index,
                        config::Diagnostics& diagnostics) {
  ScopedFd fd(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return;  // reported by the caller's own socket()
  const int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  // Refusals are reported by try_state on the scratch socket; here they only must not stop us.
  for (const auto& option : options) {
    if (option.state == config::SocketState::Prebind) {
      (void)apply_socket_options(fd.get(), std::span(&option, 1), config::SocketState::Prebind);
    }
  }
  if (::bind(fd.get(), address.get(), address.length) == 0) return;
  const int error = errno;
  diagnostics.error(
      gateway.pos, fmt::format("gateways[{}].bindAddress", index),
      fmt::format("cannot bind {}: {}{}", gateway.bind_address, std::strerror(error),
                  error == EADDRNOTAVAIL ? " (the address is not on this host; add it to an "
                                           "interface, or set IP_FREEBIND at STATE_PREBIND)"
                                         : ""));
}

void check_gateway(const config::Gateway& gateway, size_t index, config::Diagnostics& diagnostics) {
  // An unparseable bindAddress has already been reported by the loader.
  auto bind_address = SocketAddress::parse(gateway.bind_address, 0);
  if (!bind_address) return;
  const int family = bind_address->family();

  const auto options = listener_options(gateway);
  std::vector<Origin> origins;
  origins.reserve(options.size());
  for (size_t j = 0; j < options.size(); ++j) {
    if (j < gateway.socket_options.size()) {
      origins.push_back(
          {options[j].pos, fmt::format("gateways[{}].options.socketOptions[{}]", index, j)});
    } else {
      origins.push_back(
          {gateway.tcp_keepalive->pos,
           fmt::format("gateways[{}].options.tcpKeepalive{}", index, keepalive_field(options[j]))});
    }
  }

  ScopedFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    diagnostics.error(
        gateway.pos, fmt::format("gateways[{}].bindAddress", index),
        fmt::format("cannot open a socket for {}: {}", gateway.bind_address, std::strerror(errno)));
    return;
  }
  // The same preparation open_listener does first, so options interact with it as they will in
  // the daemon (e.g. an explicit IPV6_V6ONLY after the implicit one).
  const int one = 1;
  const int zero = 0;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));

  try_state(fd.get(), options, origins, config::SocketState::Prebind, diagnostics);
  check_bind_address(gateway, *bind_address, options, index, diagnostics);
  const SocketAddress scratch = scratch_address(family);
  if (::bind(fd.get(), scratch.get(), scratch.length) != 0) {
    diagnostics.warning(gateway.pos, fmt::format("gateways[{}].options.socketOptions", index),
                        fmt::format("could not bind a scratch socket to {} ({}); STATE_BOUND and "
                                    "STATE_LISTENING options were not tried",
                                    scratch.to_string(), std::strerror(errno)));
    return;
  }
  try_state(fd.get(), options, origins, config::SocketState::Bound, diagnostics);
  // Backlog 1: the scratch socket only has to be in the LISTEN state; it never accepts.
  if (::listen(fd.get(), 1) != 0) {
    diagnostics.warning(gateway.pos, fmt::format("gateways[{}].options.socketOptions", index),
                        fmt::format("could not listen on a scratch socket ({}); STATE_LISTENING "
                                    "options were not tried",
                                    std::strerror(errno)));
    return;
  }
  try_state(fd.get(), options, origins, config::SocketState::Listening, diagnostics);
}

void check_upstream(const config::Upstream& upstream, size_t index,
                    config::Diagnostics& diagnostics) {
  const auto options = upstream_options(upstream);
  if (options.empty()) return;
  std::vector<Origin> origins;
  origins.reserve(options.size());
  for (const auto& option : options) {
    origins.push_back(
        {upstream.tcp_keepalive->pos, fmt::format("upstreams[{}].connectionConfig.tcpKeepalive{}",
                                                  index, keepalive_field(option))});
  }
  // The family of the first literal host; hostnames resolve later, and TCP-level options mean
  // the same on either family.
  int family = AF_INET;
  if (!upstream.hosts.empty()) {
    if (auto literal = SocketAddress::parse(upstream.hosts.front().addr, 0)) {
      family = literal->family();
    }
  }
  ScopedFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    diagnostics.error(upstream.pos, fmt::format("upstreams[{}]", index),
                      fmt::format("cannot open a scratch socket: {}", std::strerror(errno)));
    return;
  }
  // As open_upstream_socket: every state before connect, in state order.
  for (const auto state : kStates)
    try_state(fd.get(), options, origins, state, diagnostics);
}

}  // namespace

void check_config(const config::Config& config, config::Diagnostics& diagnostics) {
  for (size_t i = 0; i < config.gateways.size(); ++i) {
    check_gateway(config.gateways[i], i, diagnostics);
  }
  for (size_t k = 0; k < config.upstreams.size(); ++k) {
    check_upstream(config.upstreams[k], k, diagnostics);
  }
}

}  // namespace ringway::net
