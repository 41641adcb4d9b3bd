// The table of symbolic socket option names (see socket_names.hpp).
#include "ringway/config/socket_names.hpp"

#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <fmt/format.h>

namespace ringway::config {
namespace {

constexpr SocketLevelName kLevels[] = {
    {"SOL_SOCKET", SOL_SOCKET},
    {"IPPROTO_TCP", IPPROTO_TCP},
    {"IPPROTO_IP", IPPROTO_IP},
    {"IPPROTO_IPV6", IPPROTO_IPV6},
};

constexpr int64_t kInt32Max = 2147483647;

// Ranges are the ones Linux enforces (EINVAL outside them), checked at load time so a typo is
// reported with its line instead of failing every connection.
const SocketOptionName kOptions[] = {
    {"SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE, 0, 1},
    {"SO_REUSEADDR", SOL_SOCKET, SO_REUSEADDR, 0, 1},
    {"SO_REUSEPORT", SOL_SOCKET, SO_REUSEPORT, 0, 1},
    {"SO_RCVBUF", SOL_SOCKET, SO_RCVBUF, 0, kInt32Max},
    {"SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, 0, kInt32Max},
    {"SO_LINGER", SOL_SOCKET, SO_LINGER, std::nullopt, std::nullopt},  // bufValue: struct linger
    {"SO_MARK", SOL_SOCKET, SO_MARK, std::nullopt, std::nullopt},
    {"SO_PRIORITY", SOL_SOCKET, SO_PRIORITY, 0, 6},  // 7 and above need CAP_NET_ADMIN
    {"TCP_NODELAY", IPPROTO_TCP, TCP_NODELAY, 0, 1},
    {"TCP_KEEPIDLE", IPPROTO_TCP, TCP_KEEPIDLE, 1, 32767},
    {"TCP_KEEPINTVL", IPPROTO_TCP, TCP_KEEPINTVL, 1, 32767},
    {"TCP_KEEPCNT", IPPROTO_TCP, TCP_KEEPCNT, 1, 127},
    {"TCP_USER_TIMEOUT", IPPROTO_TCP, TCP_USER_TIMEOUT, 0, kInt32Max},
    {"TCP_DEFER_ACCEPT", IPPROTO_TCP, TCP_DEFER_ACCEPT, 0, kInt32Max},
    {"TCP_FASTOPEN", IPPROTO_TCP, TCP_FASTOPEN, 0, kInt32Max},
    {"TCP_NOTSENT_LOWAT", IPPROTO_TCP, TCP_NOTSENT_LOWAT, 0, kInt32Max},
    {"TCP_MAXSEG", IPPROTO_TCP, TCP_MAXSEG, 0, 65535},
    {"IP_TOS", IPPROTO_IP, IP_TOS, 0, 255},
    {"IP_FREEBIND", IPPROTO_IP, IP_FREEBIND, 0, 1},
    {"IP_TRANSPARENT", IPPROTO_IP, IP_TRANSPARENT, 0, 1},
    {"IPV6_V6ONLY", IPPROTO_IPV6, IPV6_V6ONLY, 0, 1},
};

}  // namespace

std::span<const SocketLevelName> socket_levels() {
  return kLevels;
}
std::span<const SocketOptionName> socket_option_names() {
  return kOptions;
}

std::optional<int> level_by_name(std::string_view name) {
  for (const auto& l : kLevels)
    if (l.name == name) return l.value;
  return std::nullopt;
}

const SocketOptionName* option_by_name(std::string_view name) {
  for (const auto& o : kOptions)
    if (o.name == name) return &o;
  return nullptr;
}

const SocketOptionName* option_by_value(int level, int value) {
  for (const auto& o : kOptions)
    if (o.level == level && o.value == value) return &o;
  return nullptr;
}

std::string level_to_string(int level) {
  for (const auto& l : kLevels)
    if (l.value == level) return std::string(l.name);
  return fmt::format("level {}", level);
}

std::string option_to_string(int level, int name) {
  if (const auto* o = option_by_value(level, name)) return std::string(o->name);
  return fmt::format("name {}", name);
}

}  // namespace ringway::config
