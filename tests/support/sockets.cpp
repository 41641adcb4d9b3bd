// Socket plumbing for the tests (see sockets.hpp).
#include "sockets.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ringway::test {

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

std::string Endpoint::str() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool to_sockaddr(const Endpoint& ep, sockaddr_storage& out, socklen_t& len) {
  std::memset(&out, 0, sizeof(out));
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET, ep.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(ep.port);
    len = sizeof(sockaddr_in);
    return true;
  }
  if (inet_pton(AF_INET6, ep.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(ep.port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

bool ipv6_loopback_available() {
  uint16_t port = 0;
  return listen_tcp("::1", 1, &port).valid();
}

uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

static Fd bound_socket(const std::string& host) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!to_sockaddr(Endpoint{host, 0}, ss, len)) return Fd();
  Fd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Fd();
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return Fd();
  return fd;
}

Fd listen_tcp(const std::string& host, int backlog, uint16_t* port_out) {
  Fd fd = bound_socket(host);
  if (!fd.valid() || ::listen(fd.get(), backlog) != 0) return Fd();
  if (port_out != nullptr) *port_out = local_port(fd.get());
  return fd;
}

void set_linger_zero(int fd) {
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

// Starts a non-blocking connect; returns the fd (connect in progress or done) or invalid.
static Fd start_connect(const Endpoint& ep, int* err) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!to_sockaddr(ep, ss, len)) {
    *err = EINVAL;
    return Fd();
  }
  Fd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) {
    *err = errno;
    return Fd();
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    *err = errno;
    return Fd();
  }
  *err = 0;
  return fd;
}

// Waits for a started connect; 0 when connected, else the errno (ETIMEDOUT at the deadline).
static int finish_connect(int fd, Millis timeout) {
  pollfd p{fd, POLLOUT, 0};
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n == 0) return ETIMEDOUT;
  if (n < 0) return errno;
  int soerr = 0;
  socklen_t sl = sizeof(soerr);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
  return soerr;
}

Fd connect_tcp(const Endpoint& ep, Millis timeout, int* errno_out) {
  int err = 0;
  Fd fd = start_connect(ep, &err);
  if (fd.valid()) err = finish_connect(fd.get(), timeout);
  if (errno_out != nullptr) *errno_out = err;
  if (err != 0) return Fd();
  // Back to blocking: the callers use plain read/write with poll-based deadlines.
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  return fd;
}

bool write_all(int fd, const void* data, size_t len, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  const auto* p = static_cast<const uint8_t*>(data);
  while (len > 0) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, POLLOUT, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

StreamEnd drain_until_end(int fd, Millis timeout, uint64_t* bytes_out) {
  const auto deadline = Clock::now() + timeout;
  uint64_t total = 0;
  char buf[65536];
  StreamEnd end = StreamEnd::Timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      total += static_cast<uint64_t>(n);
      continue;
    }
    if (n == 0) {
      end = StreamEnd::Eof;
      break;
    }
    if (errno == EAGAIN || errno == EINTR) continue;
    end = (errno == ECONNRESET || errno == EPIPE) ? StreamEnd::Reset : StreamEnd::OtherError;
    break;
  }
  if (bytes_out != nullptr) *bytes_out = total;
  return end;
}

RefusingPort::RefusingPort(const std::string& host) : fd_(bound_socket(host)) {
  if (fd_.valid()) port_ = local_port(fd_.get());
}

ConnectBlackhole::ConnectBlackhole(const std::string& host) {
  // Backlog 0 still admits one queued connection (the kernel's test is "queue > backlog").
  listener_ = listen_tcp(host, 0, &port_);
  if (!listener_.valid()) return;
  // Fill the accept queue: keep connecting until one connect does not complete quickly. A
  // handful is enough on Linux; the bound keeps this loop finite on a kernel that behaves
  // differently (ok() stays false and the test reports it).
  for (int i = 0; i < 8; ++i) {
    int err = 0;
    Fd fd = start_connect(Endpoint{host, port_}, &err);
    if (!fd.valid()) return;
    int result = finish_connect(fd.get(), Millis(200));
    fillers_.push_back(std::move(fd));
    if (result == ETIMEDOUT) {
      ok_ = true;
      return;
    }
  }
}

}  // namespace ringway::test
