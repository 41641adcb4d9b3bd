// Connection set-up shared by the stream, rr and hold workers (see client.hpp).
#include "client.hpp"

#include <errno.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "run.hpp"

namespace ringway::load {

std::vector<int> connect_share(const WorkerContext& context, ThreadCounters& counters,
                               const RunControl& control) {
  const Options& o = *context.options;
  const int count = share_of(o.connections, context.workers, context.worker);
  const int first = first_of(o.connections, context.workers, context.worker);
  constexpr int kMaxInFlight = 256;  // more SYNs at once only overflows the target's backlog
  const auto timeout_ns = static_cast<uint64_t>(o.timeout_s * 1e9);

  std::vector<int> connected;
  connected.reserve(static_cast<size_t>(count));
  int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) {
    counters.add_error(ErrorCause::Other);
    return connected;
  }
  struct Pending {
    int fd;
    uint64_t deadline;
  };
  std::vector<Pending> pending;  // small: a linear scan per event is cheaper than a map
  int next = 0;
  epoll_event events[64];
  // Bounded: every connection is started once and each round either finishes one or waits at
  // most 10 ms; the deadline check ends stragglers.
  while ((next < count || !pending.empty()) && !control.stopping()) {
    while (next < count && static_cast<int>(pending.size()) < kMaxInFlight) {
      int fd = start_connect(*context.spec, static_cast<uint64_t>(first + next));
      ++next;
      if (fd < 0) {
        counters.add_error(connect_error_cause(-fd));
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLOUT;  // writable = the handshake finished, one way or the other
      ev.data.fd = fd;
      ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
      pending.push_back({fd, now_ns() + timeout_ns});
    }
    int n = ::epoll_wait(epoll_fd, events, 64, 10);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
      auto it = std::find_if(pending.begin(), pending.end(),
                             [fd](const Pending& p) { return p.fd == fd; });
      if (it != pending.end()) pending.erase(it);
      int error = connect_result(fd);
      if (error != 0) {
        counters.add_error(connect_error_cause(error));
        ::close(fd);
        continue;
      }
      connected.push_back(fd);
      counters.established.fetch_add(1, std::memory_order_relaxed);
    }
    uint64_t now = now_ns();
    for (size_t i = 0; i < pending.size();) {
      if (pending[i].deadline <= now) {
        counters.add_error(ErrorCause::ConnectTimeout);
        ::close(pending[i].fd);  // close() also drops it from the epoll set
        pending[i] = pending.back();
        pending.pop_back();
      } else {
        ++i;
      }
    }
  }
  // Still connecting when the run ended: that is a connect that did not finish in time.
  for (const Pending& p : pending) {
    counters.add_error(ErrorCause::ConnectTimeout);
    ::close(p.fd);
  }
  ::close(epoll_fd);
  return connected;
}

void wait_for_start(const RunControl& control) {
  for (int i = 0; i < 3'600'000 && control.phase.load() == Phase::Setup; ++i) {
    timespec ts{0, 1'000'000};
    ::nanosleep(&ts, nullptr);
  }
}

void close_connection(int fd, ThreadCounters& counters) {
  ::close(fd);
  counters.established.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace ringway::load
