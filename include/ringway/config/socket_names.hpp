// Symbolic names for setsockopt levels and option names, so a config may say "IPPROTO_TCP" /
// "TCP_KEEPIDLE" instead of 6 / 4, and messages can say which option failed. Pure data: the
// values are Linux's (x86_64 and arm64 agree on all of them).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ringway::config {

struct SocketOptionName {
  std::string_view name;  // e.g. "TCP_KEEPIDLE"
  int level;              // e.g. IPPROTO_TCP
  int value;              // e.g. TCP_KEEPIDLE
  // The range the kernel accepts for an intValue, where Ringway checks it at load time.
  std::optional<int64_t> min;
  std::optional<int64_t> max;
};

struct SocketLevelName {
  std::string_view name;  // e.g. "IPPROTO_TCP"
  int value;
};

std::span<const SocketLevelName> socket_levels();
std::span<const SocketOptionName> socket_option_names();

std::optional<int> level_by_name(std::string_view name);
// Looks the name up among every level's options; the caller checks that `level` matches.
const SocketOptionName* option_by_name(std::string_view name);
const SocketOptionName* option_by_value(int level, int value);

// "SOL_SOCKET" or "level 99"; "SO_KEEPALIVE" or "name 99".
std::string level_to_string(int level);
std::string option_to_string(int level, int name);

}  // namespace ringway::config
