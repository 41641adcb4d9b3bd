// `serve`: the backend of every benchmark. Each thread has its own SO_REUSEPORT listener and
// epoll instance (no shared state, no locks). Modes: echo (send back what arrives), sink (read
// and drop) and source (send forever). Level-triggered with one read or write per wake-up keeps
// many connections fair without an EAGAIN round trip per event.
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "common.hpp"
#include "serve.hpp"
#include "sockets.hpp"

namespace ringway::load {
namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop.store(true);
}

constexpr uint64_t kListenerTag = ~uint64_t{0};

struct ServedConnection {
  std::vector<char> pending;  // echo: bytes read but not yet sent back
  size_t pending_offset = 0;
  bool open = false;
};

class ServeWorker {
 public:
  ServeWorker(const Options& options, int listen_fd) : options_(options), listen_fd_(listen_fd) {}
  void run();
  uint64_t accepted() const { return accepted_; }

 private:
  void accept_all();
  // Returns false when the connection is finished (closed by the peer or failed).
  bool on_event(int fd, uint32_t events);
  bool flush_pending(int fd, ServedConnection& c);
  void close_fd(int fd);

  const Options& options_;
  int listen_fd_;
  int epoll_fd_ = -1;
  // 128 KiB per read, as iperf3's server reads. With 256 KiB the calibration's split layout
  // (client and sink on different CPUs) measured 0.84x iperf3; with 128 KiB, 0.92x and 1.01x.
  std::vector<char> buffer_ = std::vector<char>(128 * 1024, 's');
  std::vector<ServedConnection> connections_;  // indexed by fd: fds are unique per process
  uint64_t accepted_ = 0;
};

void ServeWorker::run() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerTag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  epoll_event events[256];
  while (!g_stop.load(std::memory_order_relaxed)) {
    int n = ::epoll_wait(epoll_fd_, events, 256, 100);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kListenerTag) {
        accept_all();
        continue;
      }
      int fd = static_cast<int>(events[i].data.u64);
      if (!on_event(fd, events[i].events)) close_fd(fd);
    }
  }
  for (size_t fd = 0; fd < connections_.size(); ++fd) {
    if (connections_[fd].open) ::close(static_cast<int>(fd));
  }
  ::close(epoll_fd_);
}

void ServeWorker::accept_all() {
  // Bounded: a burst of at most 1024 accepts per wake-up; level-triggered epoll brings us back.
  for (int i = 0; i < 1024; ++i) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      // EMFILE and friends: the listener stays readable; a short pause avoids a busy loop.
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) ::usleep(1000);
      return;
    }
    ++accepted_;
    set_nodelay(fd);
    if (options_.keepalive) set_keepalive(fd);
    if (static_cast<size_t>(fd) >= connections_.size()) connections_.resize(fd + 1024);
    connections_[fd] = ServedConnection{};
    connections_[fd].open = true;
    epoll_event ev{};
    ev.events = options_.mode == ServeMode::Source ? EPOLLOUT : EPOLLIN;
    ev.data.u64 = static_cast<uint64_t>(fd);
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
}

bool ServeWorker::flush_pending(int fd, ServedConnection& c) {
  size_t left = c.pending.size() - c.pending_offset;
  ssize_t n = ::send(fd, c.pending.data() + c.pending_offset, left, MSG_NOSIGNAL);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  c.pending_offset += static_cast<size_t>(n);
  if (c.pending_offset == c.pending.size()) {
    c.pending.clear();
    c.pending_offset = 0;
    // Drained: read again, stop asking for room.
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<uint64_t>(fd);
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
  }
  return true;
}

bool ServeWorker::on_event(int fd, uint32_t events) {
  ServedConnection& c = connections_[fd];
  switch (options_.mode) {
    case ServeMode::Source: {
      ssize_t n = ::send(fd, buffer_.data(), buffer_.size(), MSG_NOSIGNAL);
      return n >= 0 || errno == EAGAIN || errno == EINTR;
    }
    case ServeMode::Sink: {
      // A few reads per wake-up: bulk data keeps arriving while we read, and every epoll_wait
      // saved is CPU the sender gets back when both share a core.
      for (int i = 0; i < 8; ++i) {
        ssize_t n = ::recv(fd, buffer_.data(), buffer_.size(), 0);
        if (n == 0) return false;
        if (n < 0) return errno == EAGAIN || errno == EINTR;
        if (static_cast<size_t>(n) < buffer_.size()) break;  // drained
      }
      return true;
    }
    case ServeMode::Echo:
      break;
  }
  if ((events & EPOLLOUT) != 0 && !c.pending.empty()) return flush_pending(fd, c);
  ssize_t n = ::recv(fd, buffer_.data(), buffer_.size(), 0);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  ssize_t sent = ::send(fd, buffer_.data(), static_cast<size_t>(n), MSG_NOSIGNAL);
  if (sent < 0 && errno != EAGAIN && errno != EINTR) return false;
  if (sent < 0) sent = 0;
  if (sent < n) {
    // Backpressure: keep the rest, stop reading until the client drains it.
    c.pending.assign(buffer_.data() + sent, buffer_.data() + n);
    c.pending_offset = 0;
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = static_cast<uint64_t>(fd);
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
  }
  return true;
}

void ServeWorker::close_fd(int fd) {
  connections_[fd] = ServedConnection{};
  ::close(fd);
}

}  // namespace

int run_serve(const Options& options) {
  sockaddr_storage address{};
  socklen_t length = 0;
  if (!parse_endpoint(options.target, address, length)) {
    fmt::print(stderr, "ringway-load: bad listen address '{}'\n", options.target);
    return 2;
  }
  int threads = options.threads > 0 ? options.threads : available_cpus();
  std::vector<int> listeners;
  for (int i = 0; i < threads; ++i) {
    int fd = listen_on(address, length, 4096);
    if (fd < 0) {
      fmt::print(stderr, "ringway-load: cannot listen on {}: {}\n", options.target,
                 std::strerror(-fd));
      return 1;
    }
    listeners.push_back(fd);
    // Port 0: the kernel picked a port for the first socket; the others must share it, or each
    // thread would listen somewhere else.
    if (i == 0) ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  }
  struct sigaction action {};
  action.sa_handler = on_signal;
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);

  std::vector<std::unique_ptr<ServeWorker>> workers;
  std::vector<std::thread> running;
  for (int fd : listeners)
    workers.push_back(std::make_unique<ServeWorker>(options, fd));
  for (auto& w : workers)
    running.emplace_back([&w] { w->run(); });
  const char* mode = options.mode == ServeMode::Echo   ? "echo"
                     : options.mode == ServeMode::Sink ? "sink"
                                                       : "source";
  char host[INET6_ADDRSTRLEN] = "?";
  const void* raw =
      address.ss_family == AF_INET6
          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&address)->sin6_addr)
          : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&address)->sin_addr);
  ::inet_ntop(address.ss_family, raw, host, sizeof(host));
  const uint16_t port =
      ntohs(address.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&address)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&address)->sin_port);
  // The actual address: with port 0 this is the only way a caller learns where to connect.
  fmt::print(stderr, "ringway-load: serve {} listening on {}{}{}:{} ({} threads)\n", mode,
             address.ss_family == AF_INET6 ? "[" : "", host,
             address.ss_family == AF_INET6 ? "]" : "", port, threads);
  const uint64_t end =
      options.duration_s > 0 ? now_ns() + static_cast<uint64_t>(options.duration_s * 1e9) : 0;
  while (!g_stop.load()) {
    ::usleep(50'000);
    if (end != 0 && now_ns() >= end) g_stop.store(true);
  }
  uint64_t accepted = 0;
  for (size_t i = 0; i < running.size(); ++i) {
    running[i].join();
    accepted += workers[i]->accepted();
    ::close(listeners[i]);
  }
  fmt::print(stderr, "ringway-load: serve stopped after {} connections\n", accepted);
  return 0;
}

}  // namespace ringway::load
