// Upstream sockets: a TCP socket with the upstream's options applied, ready for the engine's
// io_uring connect (see upstream_socket.hpp).
#include "ringway/net/upstream_socket.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#include <fmt/format.h>

#include "ringway/net/socket_options.hpp"
#include "scoped_fd.hpp"

namespace ringway::net {

Result<int> open_upstream_socket(int family, std::span<const config::SocketOption> options) {
  // SOCK_CLOEXEC: never leak a session's socket into an exec'd child. Blocking on purpose:
  // io_uring's connect/recv/send wait for readiness themselves, and a blocking socket keeps the
  // kernel from completing them with EAGAIN.
  ScopedFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return system_error(errno, "upstream socket: socket() failed");

  // A forwarder relays bytes that were already batched by the sender; Nagle would only add a
  // delay of up to one RTT to the tail of each burst.
  const int one = 1;
  if (setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return system_error(errno, "upstream socket: setting TCP_NODELAY=1 failed");
  }

  // An upstream socket is never bound or listening, so every state's options apply now, before
  // connect, in state order (keepalive is PREBIND: it covers SYN-SENT too).
  for (const auto state :
       {config::SocketState::Prebind, config::SocketState::Bound, config::SocketState::Listening}) {
    if (auto r = apply_socket_options(fd.get(), options, state); !r) {
      return Error{r.error().code, "upstream socket: " + r.error().message};
    }
  }
  return fd.release();
}

}  // namespace ringway::net
