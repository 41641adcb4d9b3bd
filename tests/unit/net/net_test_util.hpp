// Helpers shared by the net layer's unit tests: owned fds, bounded connect/accept on loopback,
// kernel defaults read from sysctl, and option builders. Header-only: the unit tests link only
// net_dep and this directory's sources.
#pragma once

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "ringway/config/model.hpp"
#include "ringway/net/address.hpp"

namespace ringway::net::testing {

// RINGWAY_TIMEOUT_SCALE multiplies every timeout (sanitizer builds run slower).
inline int scaled_ms(int base_ms) {
  const char* text = std::getenv("RINGWAY_TIMEOUT_SCALE");
  double scale = text != nullptr ? std::atof(text) : 1.0;
  if (scale < 1.0) scale = 1.0;
  return static_cast<int>(base_ms * scale);
}

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// A blocking connect bounded by SO_SNDTIMEO (which Linux applies to connect). On failure the
// Fd is invalid and errno says why.
inline Fd connect_to(const SocketAddress& address, int family = 0) {
  Fd fd(::socket(family != 0 ? family : address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fd;
  const int ms = scaled_ms(5000);
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd.get(), address.get(), address.length) != 0) {
    const int saved = errno;
    fd.reset();
    errno = saved;
  }
  return fd;
}

// Waits (bounded) for a pending connection and accepts it; invalid Fd on timeout or error.
inline Fd accept_within(int listen_fd, int timeout_ms = 5000) {
  pollfd p{listen_fd, POLLIN, 0};
  if (::poll(&p, 1, scaled_ms(timeout_ms)) != 1) return Fd();
  return Fd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
}

// True when an IPv6 socket can be bound to [::1] (false on hosts or containers without IPv6).
inline bool ipv6_loopback_available() {
  Fd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  auto address = SocketAddress::parse("::1", 0);
  return address && ::bind(fd.get(), address->get(), address->length) == 0;
}

// An integer sysctl such as /proc/sys/net/ipv4/tcp_keepalive_time (per network namespace).
inline std::optional<int> read_sysctl(const char* path) {
  std::ifstream in(path);
  int value = 0;
  if (!(in >> value)) return std::nullopt;
  return value;
}

// How many fds the process has open, to show that a failed setup leaves nothing behind.
inline int open_fd_count() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (::readdir(dir) != nullptr)
    ++count;
  ::closedir(dir);
  return count;
}

inline int get_int_option(int fd, int level, int name) {
  int value = -1;
  socklen_t length = sizeof(value);
  if (getsockopt(fd, level, name, &value, &length) != 0) return -1;
  return value;
}

inline config::SocketOption int_option(std::string description, int level, int name, int32_t value,
                                       config::SocketState state, config::SourcePos pos = {}) {
  config::SocketOption option;
  option.description = std::move(description);
  option.level = level;
  option.name = name;
  option.value = value;
  option.state = state;
  option.pos = pos;
  return option;
}

inline config::SocketOption buf_option(std::string description, int level, int name,
                                       std::string bytes, config::SocketState state,
                                       config::SourcePos pos = {}) {
  config::SocketOption option = int_option(std::move(description), level, name, 0, state, pos);
  option.value = std::move(bytes);
  return option;
}

// The four options of Gloo's TCP keepalive page (the seed page), verbatim: all STATE_PREBIND.
inline std::vector<config::SocketOption> seed_options() {
  using config::SocketState;
  return {
      int_option("enable keep-alive", SOL_SOCKET, SO_KEEPALIVE, 1, SocketState::Prebind),
      int_option("idle time before first keep-alive probe is sent", IPPROTO_TCP, TCP_KEEPIDLE, 60,
                 SocketState::Prebind),
      int_option("keep-alive interval", IPPROTO_TCP, TCP_KEEPINTVL, 20, SocketState::Prebind),
      int_option("keep-alive probes count", IPPROTO_TCP, TCP_KEEPCNT, 2, SocketState::Prebind),
  };
}

}  // namespace ringway::net::testing
