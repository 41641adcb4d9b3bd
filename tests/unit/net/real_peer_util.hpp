// Helpers for the net unit tests that capture bytes from real programs (openssl s_client,
// HAProxy): find a program on PATH, run it in the background with its output in a file, stop
// it by its pid, and read what a connection sent until a predicate says it is complete.
// Header-only, like net_test_util.hpp.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "../../support/child_process.hpp"
#include "net_test_util.hpp"

namespace ringway::net::testing {

// The full path of `name` on PATH, or "" when it is not installed.
inline std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin:/usr/sbin:/sbin";
  dirs += ":/usr/sbin:/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (end > start && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

// A whole file (a program's log) for a failure message; "" when unreadable.
inline std::string read_file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A program started in the background, stopped by its pid (shared with the integration tests).
using Child = ::ringway::test::Child;

// Reads from `fd` until `complete(bytes)` is true, the peer closes, or `timeout_ms` (scaled)
// passes. Returns what arrived.
inline std::vector<uint8_t> read_until(
    int fd, const std::function<bool(const std::vector<uint8_t>&)>& complete,
    int timeout_ms = 5000) {
  std::vector<uint8_t> bytes;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(scaled_ms(timeout_ms));
  while (!complete(bytes)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) != 1) break;
    uint8_t chunk[4096];
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) break;
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  return bytes;
}

// A loopback listener on an ephemeral port.
inline Fd listen_loopback(SocketAddress& bound, const char* ip = "127.0.0.1") {
  auto address = SocketAddress::parse(ip, 0);
  Fd fd(::socket(address->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid() || ::bind(fd.get(), address->get(), address->length) != 0 ||
      ::listen(fd.get(), 16) != 0) {
    return Fd();
  }
  bound = *SocketAddress::local_of(fd.get());
  return fd;
}

// A port that was free a moment ago, for programs that need a port number in their config
// (HAProxy cannot be told to bind port 0 and report it).
inline uint16_t free_port(const char* ip = "127.0.0.1") {
  SocketAddress bound;
  Fd fd = listen_loopback(bound, ip);
  return fd.valid() ? bound.port() : 0;
}

}  // namespace ringway::net::testing
