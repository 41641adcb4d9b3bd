// Socket plumbing for the tests: an owning fd, loopback addresses, blocking helpers with
// deadlines, and the two "broken upstream" fixtures: a refusing port and a connect blackhole.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "test_env.hpp"

namespace ringway::test {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// An IP literal and port as sockaddr_storage ("127.0.0.1", "::1", "10.213.0.1").
struct Endpoint {
  std::string host;
  uint16_t port = 0;
  // "127.0.0.1:80" or "[::1]:80", as ringway logs addresses.
  std::string str() const;
};
bool to_sockaddr(const Endpoint& ep, sockaddr_storage& out, socklen_t& len);

// True when ::1 can be bound here (IPv6 tests skip otherwise).
bool ipv6_loopback_available();

// A listening socket on host:0 (the kernel picks the port). Returns an invalid Fd on failure.
Fd listen_tcp(const std::string& host, int backlog, uint16_t* port_out);
// The local port of a bound socket.
uint16_t local_port(int fd);

// Blocking connect with a deadline; an invalid Fd on failure (errno_out gets the cause).
Fd connect_tcp(const Endpoint& ep, Millis timeout, int* errno_out = nullptr);

// Abortive close: SO_LINGER {1, 0} makes close() send RST instead of FIN.
void set_linger_zero(int fd);

// Writes all of `data` or fails (false) at the deadline.
bool write_all(int fd, const void* data, size_t len, Millis timeout);

// How a read loop ended.
enum class StreamEnd { Eof, Reset, OtherError, Timeout };
// Reads and discards until EOF, an error or the deadline; `bytes_out` gets the byte count.
StreamEnd drain_until_end(int fd, Millis timeout, uint64_t* bytes_out = nullptr);

// A port nothing listens on: a socket bound to it (not listening) keeps the port reserved, so
// every connect to it is refused with RST by the kernel.
class RefusingPort {
 public:
  explicit RefusingPort(const std::string& host = "127.0.0.1");
  uint16_t port() const { return port_; }

 private:
  Fd fd_;
  uint16_t port_ = 0;
};

// A connect blackhole without root: a listener with backlog 0 that never accepts, its accept
// queue filled by our own connections, so the kernel drops further SYNs and a connect to it
// neither succeeds nor fails until the connector gives up.
class ConnectBlackhole {
 public:
  explicit ConnectBlackhole(const std::string& host = "127.0.0.1");
  uint16_t port() const { return port_; }
  // True when a probe connect was seen to hang (the queue really is full).
  bool ok() const { return ok_; }

 private:
  Fd listener_;
  std::vector<Fd> fillers_;
  uint16_t port_ = 0;
  bool ok_ = false;
};

}  // namespace ringway::test
