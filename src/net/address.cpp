// Socket addresses: IP literal parsing, printing, getsockname/getpeername, and the start-up
// hostname resolution of upstream hosts (see address.hpp for the contract).
#include "ringway/net/address.hpp"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

namespace ringway::net {
namespace {

// True for ::ffff:a.b.c.d, which a dual-stack "::" listener reports for IPv4 peers. Printing it
// as IPv4 keeps logs and access logs in the form the operator knows the client by.
bool is_v4_mapped(const sockaddr_in6& a) {
  return IN6_IS_ADDR_V4MAPPED(&a.sin6_addr) != 0;
}

bool same_address(const SocketAddress& a, const SocketAddress& b) {
  return a.length == b.length && std::memcmp(&a.storage, &b.storage, a.length) == 0;
}

// Copies a getaddrinfo/getsockname result into a SocketAddress; false for families other than
// IPv4/IPv6 (a TCP forwarder has no use for them).
bool from_sockaddr(const sockaddr* sa, socklen_t length, SocketAddress& out) {
  if (sa->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    out = SocketAddress{};
    std::memcpy(&out.storage, sa, sizeof(sockaddr_in));
    out.length = sizeof(sockaddr_in);
    return true;
  }
  if (sa->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    out = SocketAddress{};
    std::memcpy(&out.storage, sa, sizeof(sockaddr_in6));
    out.length = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

using AddrInfoPtr = std::unique_ptr<addrinfo, decltype(&freeaddrinfo)>;

}  // namespace

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return 0;
}

std::string SocketAddress::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
    return fmt::format("{}:{}", text, port());
  }
  if (family() == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&storage);
    if (is_v4_mapped(*a)) {
      // The IPv4 address is the last 4 bytes of the 16.
      inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], text, sizeof(text));
      return fmt::format("{}:{}", text, port());
    }
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
    return fmt::format("[{}]:{}", text, port());
  }
  return fmt::format("<address family {}>", family());
}

Result<SocketAddress> SocketAddress::parse(std::string_view ip, uint16_t port) {
  // inet_pton wants a NUL-terminated string; an address longer than any literal is refused
  // before copying.
  if (ip.size() >= INET6_ADDRSTRLEN) {
    return Error{EINVAL, fmt::format("'{}' is not an IPv4 or IPv6 address", ip)};
  }
  char text[INET6_ADDRSTRLEN] = {};
  std::memcpy(text, ip.data(), ip.size());

  SocketAddress address;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address.storage);
  if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    address.length = sizeof(sockaddr_in);
    return address;
  }
  address = SocketAddress{};
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
  if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    address.length = sizeof(sockaddr_in6);
    return address;
  }
  return Error{EINVAL,
               fmt::format("'{}' is not an IPv4 or IPv6 address (IPv6 without brackets)", ip)};
}

Result<SocketAddress> SocketAddress::local_of(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return system_error(errno, fmt::format("getsockname on fd {}", fd));
  }
  SocketAddress address;
  if (!from_sockaddr(reinterpret_cast<const sockaddr*>(&storage), length, address)) {
    return Error{EAFNOSUPPORT, fmt::format("fd {} is not an IPv4 or IPv6 socket", fd)};
  }
  return address;
}

Result<SocketAddress> SocketAddress::peer_of(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return system_error(errno, fmt::format("getpeername on fd {}", fd));
  }
  SocketAddress address;
  if (!from_sockaddr(reinterpret_cast<const sockaddr*>(&storage), length, address)) {
    return Error{EAFNOSUPPORT, fmt::format("fd {} is not connected over IPv4 or IPv6", fd)};
  }
  return address;
}

Result<std::vector<SocketAddress>> resolve(const std::string& host, uint16_t port) {
  // Literals never touch the resolver: no /etc/hosts read, no DNS round trip at start-up.
  if (auto literal = SocketAddress::parse(host, port)) {
    return std::vector<SocketAddress>{std::move(literal).value()};
  }

  addrinfo hints{};
  // AF_UNSPEC without AI_ADDRCONFIG: AI_ADDRCONFIG ignores loopback addresses when deciding
  // whether a family is configured, which would drop "localhost" -> ::1 on a host whose only
  // IPv6 address is ::1. Connecting to an unreachable family fails cleanly anyway.
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;  // one entry per address instead of one per socket type
  addrinfo* raw = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &raw);
  if (rc != 0) {
    // EAI_SYSTEM carries its cause in errno; the other EAI_* codes are not errno values.
    const int code = rc == EAI_SYSTEM ? errno : 0;
    const char* why = rc == EAI_SYSTEM ? std::strerror(code) : gai_strerror(rc);
    return Error{code, fmt::format("cannot resolve host '{}': {}", host, why)};
  }
  AddrInfoPtr list(raw, &freeaddrinfo);

  std::vector<SocketAddress> v4;
  std::vector<SocketAddress> v6;
  for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    SocketAddress address;
    if (!from_sockaddr(ai->ai_addr, ai->ai_addrlen, address)) continue;
    if (address.family() == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&address.storage)->sin_port = htons(port);
    } else {
      reinterpret_cast<sockaddr_in6*>(&address.storage)->sin6_port = htons(port);
    }
    auto& bucket = address.family() == AF_INET ? v4 : v6;
    // /etc/hosts may list a name twice (127.0.0.1 and 127.0.1.1 lines naming the same host
    // with the same address, or duplicate lines): each address once, first occurrence wins.
    const bool seen = std::any_of(bucket.begin(), bucket.end(),
                                  [&](const SocketAddress& a) { return same_address(a, address); });
    if (!seen) bucket.push_back(address);
  }
  if (v4.empty() && v6.empty()) {
    return Error{0, fmt::format("cannot resolve host '{}': no IPv4 or IPv6 address", host)};
  }
  // IPv4 first: upstream hosts named in a config are most often reached over IPv4, and a fixed
  // order makes round robin over a name's addresses predictable.
  v4.insert(v4.end(), v6.begin(), v6.end());
  return v4;
}

}  // namespace ringway::net
