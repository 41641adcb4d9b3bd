// `hold`: opens N connections, proves each one reaches the backend (one S-byte echo, default
// 1 byte), then keeps them idle for the duration and counts any the other side closes. What it
// is for: the target's memory and descriptors per idle connection (measured by run_client).
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "client.hpp"
#include "run.hpp"

namespace ringway::load {
namespace {

enum class HoldStep { Closed, Connecting, Probing, Held };

struct HeldConnection {
  int fd = -1;
  HoldStep step = HoldStep::Closed;
  uint64_t deadline = 0;
  size_t received = 0;
};

void watch(int epoll_fd, int op, const HeldConnection& c, uint32_t events, size_t index) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = index;
  ::epoll_ctl(epoll_fd, op, c.fd, &ev);
}

}  // namespace

void hold_worker(const WorkerContext& context, ThreadCounters& counters, RunControl& control) {
  const Options& o = *context.options;
  const int count = share_of(o.connections, context.workers, context.worker);
  const int first = first_of(o.connections, context.workers, context.worker);
  constexpr int kMaxInFlight = 256;  // connects and probes outstanding at once
  const auto timeout_ns = static_cast<uint64_t>(o.timeout_s * 1e9);
  std::vector<char> probe(o.size, 'h');
  std::vector<char> buffer(o.size > 4096 ? o.size : 4096);
  std::vector<HeldConnection> held(static_cast<size_t>(count));
  int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);

  auto drop = [&](HeldConnection& c, ErrorCause cause) {
    counters.add_error(cause);
    close_connection(c.fd, counters);
    c.fd = -1;
    c.step = HoldStep::Closed;
  };

  // Setup: connect and probe, kMaxInFlight at a time.
  int next = 0;
  int in_flight = 0;
  epoll_event events[256];
  while ((next < count || in_flight > 0) && !control.stopping()) {
    while (next < count && in_flight < kMaxInFlight) {
      HeldConnection& c = held[static_cast<size_t>(next)];
      int fd = start_connect(*context.spec, static_cast<uint64_t>(first + next));
      if (fd < 0) {
        counters.add_error(connect_error_cause(-fd));
      } else {
        counters.established.fetch_add(1, std::memory_order_relaxed);
        c.fd = fd;
        c.step = HoldStep::Connecting;
        c.deadline = now_ns() + timeout_ns;
        watch(epoll_fd, EPOLL_CTL_ADD, c, EPOLLOUT, static_cast<size_t>(next));
        ++in_flight;
      }
      ++next;
    }
    int n = ::epoll_wait(epoll_fd, events, 256, 10);
    for (int i = 0; i < n; ++i) {
      size_t index = events[i].data.u64;
      HeldConnection& c = held[index];
      if (c.step == HoldStep::Connecting) {
        int error = connect_result(c.fd);
        if (error != 0) {
          drop(c, connect_error_cause(error));
          --in_flight;
          continue;
        }
        ssize_t sent = ::send(c.fd, probe.data(), probe.size(), MSG_NOSIGNAL);
        if (sent != static_cast<ssize_t>(probe.size())) {
          drop(c, sent < 0 ? io_error_cause(errno) : ErrorCause::Other);
          --in_flight;
          continue;
        }
        counters.bytes_sent.fetch_add(probe.size(), std::memory_order_relaxed);
        c.step = HoldStep::Probing;
        watch(epoll_fd, EPOLL_CTL_MOD, c, EPOLLIN, index);
      } else if (c.step == HoldStep::Probing) {
        ssize_t got = ::recv(c.fd, buffer.data(), probe.size() - c.received, 0);
        if (got <= 0) {
          if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
          drop(c, got == 0 ? ErrorCause::ShortRead : io_error_cause(errno));
          --in_flight;
          continue;
        }
        counters.bytes_received.fetch_add(static_cast<uint64_t>(got), std::memory_order_relaxed);
        c.received += static_cast<size_t>(got);
        if (c.received == probe.size()) {
          c.step = HoldStep::Held;
          // From now on only a close, a reset or stray bytes wake us up.
          watch(epoll_fd, EPOLL_CTL_MOD, c, EPOLLIN | EPOLLRDHUP, index);
          --in_flight;
        }
      }
    }
    uint64_t now = now_ns();
    for (size_t i = 0; i < held.size() && in_flight > 0; ++i) {
      HeldConnection& c = held[i];
      if ((c.step == HoldStep::Connecting || c.step == HoldStep::Probing) && now > c.deadline) {
        drop(c, c.step == HoldStep::Connecting ? ErrorCause::ConnectTimeout : ErrorCause::Timeout);
        --in_flight;
      }
    }
  }
  control.ready_workers.fetch_add(1);

  // Hold: idle until stop. A held connection that wakes us was closed or reset by the far side
  // (or got bytes nobody asked for, which are read and dropped).
  while (!control.stopping()) {
    int n = ::epoll_wait(epoll_fd, events, 256, 100);
    for (int i = 0; i < n; ++i) {
      HeldConnection& c = held[events[i].data.u64];
      if (c.fd < 0) continue;
      ssize_t got = ::recv(c.fd, buffer.data(), buffer.size(), 0);
      if (got > 0) continue;
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      drop(c, got == 0 ? ErrorCause::ClosedByPeer : io_error_cause(errno));
    }
  }
  for (HeldConnection& c : held) {
    if (c.fd < 0) continue;
    // Set-up cut short by the end of the run: those never became held connections.
    if (c.step == HoldStep::Connecting) counters.add_error(ErrorCause::ConnectTimeout);
    if (c.step == HoldStep::Probing) counters.add_error(ErrorCause::Timeout);
    close_connection(c.fd, counters);
  }
  ::close(epoll_fd);
}

}  // namespace ringway::load
