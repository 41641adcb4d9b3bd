// Listen sockets: socket -> STATE_PREBIND options -> bind -> STATE_BOUND -> listen ->
// STATE_LISTENING, with SO_REUSEPORT so that every worker owns one socket on the same port.
#pragma once

#include <span>

#include "ringway/config/model.hpp"
#include "ringway/core/result.hpp"
#include "ringway/net/address.hpp"

namespace ringway::net {

inline constexpr int kListenBacklog = 4096;  // clamped by net.core.somaxconn

// Returns the listening fd (SOCK_CLOEXEC, blocking: io_uring's accept does not need
// O_NONBLOCK). An IPv6 "::" address accepts IPv4 too (IPV6_V6ONLY=0 unless an option sets it).
// SO_REUSEADDR and SO_REUSEPORT are set before the PREBIND options, so a user option can still
// override them. On failure nothing is left open.
Result<int> open_listener(const SocketAddress& address,
                          std::span<const config::SocketOption> options,
                          int backlog = kListenBacklog);

}  // namespace ringway::net
