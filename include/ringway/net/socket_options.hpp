// Socket options: apply a config's raw options at a given socket state, expand `tcpKeepalive`
// into SO_KEEPALIVE + TCP_KEEPIDLE/INTVL/CNT, read options back for diagnostics.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringway/config/model.hpp"
#include "ringway/core/result.hpp"

namespace ringway::net {

// SO_KEEPALIVE=1, then TCP_KEEPIDLE/INTVL/CNT for the fields that are set, all at
// STATE_PREBIND, each with a description naming where it came from.
std::vector<config::SocketOption> expand_keepalive(const config::TcpKeepalive& keepalive,
                                                   std::string_view origin);

// Applies, in order, the options whose state is `state`. Stops at the first failure; the error
// names the option's description, its level and name (symbolic where known) and the errno.
Result<void> apply_socket_options(int fd, std::span<const config::SocketOption> options,
                                  config::SocketState state);

// Every option a gateway's listen sockets carry: the raw socketOptions, plus the expansion of
// options.tcpKeepalive (the loader has already rejected conflicts between the two).
std::vector<config::SocketOption> listener_options(const config::Gateway& gateway);
// Every option an upstream socket carries before connect (the tcpKeepalive expansion).
std::vector<config::SocketOption> upstream_options(const config::Upstream& upstream);

// "STATE_PREBIND", "STATE_BOUND" or "STATE_LISTENING", as the config spells the state.
std::string_view state_name(config::SocketState state);

// The keepalive-related options read back with getsockopt, for /sockets and tests.
struct KeepaliveReadback {
  int so_keepalive = -1;
  int tcp_keepidle = -1;
  int tcp_keepintvl = -1;
  int tcp_keepcnt = -1;
  int tcp_user_timeout = -1;
};
KeepaliveReadback read_keepalive(int fd);

}  // namespace ringway::net
