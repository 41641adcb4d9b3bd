// Listen sockets for gateways: one per worker on the same address, with the gateway's socket
// options applied at the state each one names (see listener.hpp).
#include "ringway/net/listener.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#include <fmt/format.h>

#include "ringway/net/socket_options.hpp"
#include "scoped_fd.hpp"

namespace ringway::net {
namespace {

Result<void> set_int(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    return system_error(errno, fmt::format("setting {}={} failed", what, value));
  }
  return {};
}

// Prefixes a step's error with the listener it belongs to, keeping the errno.
Error for_listener(const SocketAddress& address, const Error& error) {
  return Error{error.code, fmt::format("listener {}: {}", address.to_string(), error.message)};
}

Result<void> apply_state(int fd, const SocketAddress& address,
                         std::span<const config::SocketOption> options, config::SocketState state) {
  auto applied = apply_socket_options(fd, options, state);
  if (!applied) {
    return Error{applied.error().code,
                 fmt::format("listener {}: {} option: {}", address.to_string(), state_name(state),
                             applied.error().message)};
  }
  return {};
}

}  // namespace

Result<int> open_listener(const SocketAddress& address,
                          std::span<const config::SocketOption> options, int backlog) {
  // SOCK_CLOEXEC: a listen socket must not leak into anything the daemon might exec.
  // Blocking on purpose: io_uring's accept waits for readiness itself.
  ScopedFd fd(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return system_error(errno, fmt::format("listener {}: socket() failed", address.to_string()));
  }

  // SO_REUSEADDR: a restart must be able to bind while connections of the previous process
  // still sit in TIME_WAIT on this port.
  if (auto r = set_int(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR"); !r) {
    return for_listener(address, r.error());
  }
  // SO_REUSEPORT: every worker binds its own socket on the same address and port, and the
  // kernel spreads incoming connections across them, so workers never share an accept queue.
  if (auto r = set_int(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT"); !r) {
    return for_listener(address, r.error());
  }
  // "::" is documented as dual-stack. The kernel default comes from net.ipv6.bindv6only, which a
  // distribution may set to 1; force 0 so the config means the same everywhere. Set before the
  // PREBIND options so an explicit IPV6_V6ONLY option still wins.
  if (address.family() == AF_INET6) {
    if (auto r = set_int(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY"); !r) {
      return for_listener(address, r.error());
    }
  }

  // TCP_NODELAY: accepted sockets inherit it from the listener (one setsockopt per listener
  // instead of one per connection). A proxy must not add Nagle's delay to a peer's small
  // writes: a response sent in two writes would otherwise wait for the client's delayed ACK
  // (up to 40 ms). nginx stream and HAProxy set it on both sides too. Set before the PREBIND
  // options, so an explicit TCP_NODELAY option in the config still wins.
  if (auto r = set_int(fd.get(), IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY"); !r) {
    return for_listener(address, r.error());
  }
  if (auto r = apply_state(fd.get(), address, options, config::SocketState::Prebind); !r) {
    return r.error();
  }
  if (::bind(fd.get(), address.get(), address.length) != 0) {
    return system_error(errno, fmt::format("listener {}: bind failed", address.to_string()));
  }
  if (auto r = apply_state(fd.get(), address, options, config::SocketState::Bound); !r) {
    return r.error();
  }
  // The kernel clamps backlog to net.core.somaxconn silently.
  if (::listen(fd.get(), backlog) != 0) {
    return system_error(errno, fmt::format("listener {}: listen failed", address.to_string()));
  }
  if (auto r = apply_state(fd.get(), address, options, config::SocketState::Listening); !r) {
    return r.error();
  }
  return fd.release();
}

}  // namespace ringway::net
