// Socket addresses: parse IP literals, resolve upstream hostnames at start-up (never on a
// worker), and print them. IPv4 and IPv6.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringway/core/result.hpp"

namespace ringway::net {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  uint16_t port() const;
  // "1.2.3.4:80" or "[::1]:80"; IPv4-mapped IPv6 addresses print as IPv4.
  std::string to_string() const;

  // An IPv4 or IPv6 literal (no brackets) and a port.
  static Result<SocketAddress> parse(std::string_view ip, uint16_t port);
  // The local address of a bound socket.
  static Result<SocketAddress> local_of(int fd);
  static Result<SocketAddress> peer_of(int fd);
};

// A literal, or a hostname resolved with getaddrinfo (blocking: start-up only). Returns every
// address, IPv4 first then IPv6, de-duplicated.
Result<std::vector<SocketAddress>> resolve(const std::string& host, uint16_t port);

}  // namespace ringway::net
