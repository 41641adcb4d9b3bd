// Socket helpers of ringway-load (see sockets.hpp).
#include "sockets.hpp"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

namespace ringway::load {

int start_connect(const ConnectSpec& spec, uint64_t index) {
  int fd = ::socket(spec.target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (spec.nodelay) set_nodelay(fd);
  if (spec.keepalive) set_keepalive(fd);
  if (!spec.sources.empty() && spec.target.ss_family == AF_INET) {
    // Binding to port 0 would reserve a port per source address for good, regardless of the
    // destination; IP_BIND_ADDRESS_NO_PORT defers the choice to connect(), which may reuse a
    // port towards a different 4-tuple. That is what lets N source addresses give N times the
    // ephemeral ports.
    int one = 1;
    ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    sockaddr_in source{};
    source.sin_family = AF_INET;
    source.sin_addr = spec.sources[index % spec.sources.size()];
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&source), sizeof(source)) != 0) {
      int error = errno;
      ::close(fd);
      return -error;
    }
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&spec.target), spec.target_length) != 0 &&
      errno != EINPROGRESS) {
    int error = errno;
    ::close(fd);
    return -error;
  }
  return fd;
}

int connect_result(int fd) {
  int error = 0;
  socklen_t length = sizeof(error);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return errno;
  return error;
}

int listen_on(const sockaddr_storage& address, socklen_t length, int backlog) {
  int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0 ||
      ::listen(fd, backlog) != 0) {
    int error = errno;
    ::close(fd);
    return -error;
  }
  return fd;
}

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void set_keepalive(int fd) {
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

void set_blocking(int fd, bool blocking) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return;
  ::fcntl(fd, F_SETFL, blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK));
}

void set_io_timeout(int fd, int milliseconds) {
  timeval tv{};
  tv.tv_sec = milliseconds / 1000;
  tv.tv_usec = (milliseconds % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

}  // namespace ringway::load
