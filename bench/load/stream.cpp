// `stream`: N connections pushing bytes up (to a sink), down (from a source) or both ways (through
// an echo) for the duration. Edge-triggered epoll with a bounded burst per wake-up, so one fast
// connection cannot starve the others on its thread and the stop phase is seen within 100 ms.
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "client.hpp"

namespace ringway::load {
namespace {

constexpr int kBurst = 16;  // reads or writes per connection before it yields to the others

struct StreamConnection {
  int fd = -1;
  bool want_write = false;
  bool want_read = false;
  bool runnable = false;       // a burst ended without EAGAIN: continue without waiting for epoll
  uint64_t last_progress = 0;  // when a byte last moved: a stalled target is an error, not 0
};

// One burst in each wanted direction. Returns false when the connection died.
bool pump(StreamConnection& c, std::vector<char>& buffer, ThreadCounters& counters) {
  c.runnable = false;
  if (c.want_write) {
    for (int i = 0; i < kBurst; ++i) {
      ssize_t n = ::send(c.fd, buffer.data(), buffer.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN) break;
        if (errno == EINTR) continue;
        counters.add_error(io_error_cause(errno));
        return false;
      }
      counters.bytes_sent.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      c.last_progress = now_ns();
      if (i == kBurst - 1) c.runnable = true;
    }
  }
  if (c.want_read) {
    for (int i = 0; i < kBurst; ++i) {
      ssize_t n = ::recv(c.fd, buffer.data(), buffer.size(), 0);
      if (n < 0) {
        if (errno == EAGAIN) break;
        if (errno == EINTR) continue;
        counters.add_error(io_error_cause(errno));
        return false;
      }
      if (n == 0) {
        counters.add_error(ErrorCause::ClosedByPeer);
        return false;
      }
      counters.bytes_received.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      c.last_progress = now_ns();
      if (i == kBurst - 1) c.runnable = true;
    }
  }
  return true;
}

}  // namespace

void stream_worker(const WorkerContext& context, ThreadCounters& counters, RunControl& control) {
  const Options& o = *context.options;
  std::vector<int> fds = connect_share(context, counters, control);
  control.ready_workers.fetch_add(1);
  wait_for_start(control);

  std::vector<char> buffer(o.size, 'r');
  std::vector<StreamConnection> connections(fds.size());
  int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  for (size_t i = 0; i < fds.size(); ++i) {
    StreamConnection& c = connections[i];
    c.fd = fds[i];
    c.want_write = o.direction != Direction::Down;
    c.want_read = o.direction != Direction::Up;
    c.runnable = true;
    c.last_progress = now_ns();
    epoll_event ev{};
    // Edge-triggered: a wake-up means "new room or new data"; pump() runs until EAGAIN or marks
    // the connection runnable, so no edge is lost.
    ev.events = EPOLLET | (c.want_write ? EPOLLOUT : 0u) | (c.want_read ? EPOLLIN : 0u);
    ev.data.u64 = i;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c.fd, &ev);
  }
  // In "up" mode nothing is read; a peer that closes only shows up as a failed send.
  size_t alive = connections.size();
  epoll_event events[64];
  const auto timeout_ns = static_cast<uint64_t>(o.timeout_s * 1e9);
  uint64_t next_scan = now_ns() + 100'000'000;
  while (!control.stopping() && alive > 0) {
    bool any_runnable = false;
    for (auto& c : connections)
      any_runnable = any_runnable || (c.fd >= 0 && c.runnable);
    int n = ::epoll_wait(epoll_fd, events, 64, any_runnable ? 0 : 100);
    for (int i = 0; i < n; ++i)
      connections[events[i].data.u64].runnable = true;
    for (auto& c : connections) {
      if (c.fd < 0 || !c.runnable) continue;
      if (!pump(c, buffer, counters)) {
        close_connection(c.fd, counters);
        c.fd = -1;
        --alive;
      }
    }
    // A connection that moved nothing for --timeout is stuck (a forwarder that stopped
    // forwarding): counted as a timeout and closed, so the stall shows up in the errors.
    uint64_t now = now_ns();
    if (now < next_scan) continue;
    next_scan = now + 100'000'000;
    for (auto& c : connections) {
      if (c.fd >= 0 && now - c.last_progress > timeout_ns) {
        counters.add_error(ErrorCause::Timeout);
        close_connection(c.fd, counters);
        c.fd = -1;
        --alive;
      }
    }
  }
  for (auto& c : connections) {
    if (c.fd >= 0) close_connection(c.fd, counters);
  }
  ::close(epoll_fd);
}

}  // namespace ringway::load
