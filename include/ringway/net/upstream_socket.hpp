// Upstream sockets: socket() with the upstream's options (tcpKeepalive expansion) applied, ready
// for an io_uring CONNECT. Applying them before connect covers SYN-SENT too, as Envoy does.
#pragma once

#include <span>

#include "ringway/config/model.hpp"
#include "ringway/core/result.hpp"

namespace ringway::net {

// A TCP socket of `family` (SOCK_CLOEXEC, blocking) with every option applied (all states are
// applied, in order: an upstream socket is never bound or listening). TCP_NODELAY is set, since
// a forwarder must not add Nagle delay to the bytes it relays.
Result<int> open_upstream_socket(int family, std::span<const config::SocketOption> options);

}  // namespace ringway::net
