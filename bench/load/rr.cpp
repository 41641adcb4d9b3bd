// `rr` and `crr`: closed-loop request/response. rr keeps N connections and sends the next S-byte
// message as soon as the previous echo is complete; crr opens a connection per request (connect,
// send, read the echo, close), N in parallel. Latency is recorded per request while measuring.
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "client.hpp"
#include "run.hpp"

namespace ringway::load {
namespace {

constexpr int kPollMs = 100;  // longest wait before the stop phase and deadlines are checked

enum class Step { Idle, Connecting, Awaiting };

struct Exchange {
  int fd = -1;
  Step step = Step::Idle;
  uint64_t started = 0;  // request (rr) or connect (crr) start
  uint64_t deadline = 0;
  size_t received = 0;
};

// Sends the whole message. Small messages fit the socket buffer, so a short send means the peer
// stopped reading; it is treated as an error rather than queued.
bool send_message(int fd, const std::vector<char>& message, ThreadCounters& counters) {
  ssize_t n;
  do {
    n = ::send(fd, message.data(), message.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(message.size())) {
    counters.bytes_sent.fetch_add(message.size(), std::memory_order_relaxed);
    return true;
  }
  counters.add_error(n < 0 ? io_error_cause(errno) : ErrorCause::Other);
  return false;
}

// Reads what is there of the echo. Returns 1 when complete, 0 when more is due, -1 on failure
// (counted).
int receive_echo(Exchange& x, std::vector<char>& buffer, size_t size, ThreadCounters& counters) {
  ssize_t n = ::recv(x.fd, buffer.data(), size - x.received, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return 0;
    counters.add_error(io_error_cause(errno));
    return -1;
  }
  if (n == 0) {
    counters.add_error(ErrorCause::ShortRead);
    return -1;
  }
  counters.bytes_received.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  x.received += static_cast<size_t>(n);
  return x.received == size ? 1 : 0;
}

void complete(const Exchange& x, ThreadCounters& counters, const RunControl& control) {
  if (control.measuring()) counters.latency.record(now_ns() - x.started);
  counters.requests.fetch_add(1, std::memory_order_relaxed);
}

// One connection on this thread: blocking calls with a 100 ms socket timeout cost two syscalls
// per request instead of epoll's three, which matters for the single-connection figure.
void rr_blocking(int fd, const Options& o, ThreadCounters& counters, RunControl& control) {
  std::vector<char> message(o.size, 'q');
  std::vector<char> buffer(o.size);
  set_blocking(fd, true);
  set_io_timeout(fd, kPollMs);
  const auto timeout_ns = static_cast<uint64_t>(o.timeout_s * 1e9);
  while (!control.stopping()) {
    Exchange x{fd, Step::Awaiting, now_ns(), 0, 0};
    x.deadline = x.started + timeout_ns;
    if (!send_message(fd, message, counters)) break;
    int state = 0;
    while (state == 0 && !control.stopping()) {
      state = receive_echo(x, buffer, o.size, counters);
      if (state == 0 && now_ns() > x.deadline) {
        counters.add_error(ErrorCause::Timeout);
        state = -1;
      }
    }
    if (state != 1) break;
    complete(x, counters, control);
  }
  close_connection(fd, counters);
}

}  // namespace

void rr_worker(const WorkerContext& context, ThreadCounters& counters, RunControl& control) {
  const Options& o = *context.options;
  std::vector<int> fds = connect_share(context, counters, control);
  control.ready_workers.fetch_add(1);
  wait_for_start(control);
  if (fds.size() == 1) {
    rr_blocking(fds[0], o, counters, control);
    return;
  }

  std::vector<char> message(o.size, 'q');
  std::vector<char> buffer(o.size);
  const auto timeout_ns = static_cast<uint64_t>(o.timeout_s * 1e9);
  std::vector<Exchange> exchanges(fds.size());
  int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  size_t alive = 0;
  auto fail = [&](Exchange& x) {
    close_connection(x.fd, counters);  // close() also removes it from the epoll set
    x.fd = -1;
    --alive;
  };
  auto start = [&](Exchange& x) {
    x.started = now_ns();
    x.deadline = x.started + timeout_ns;
    x.received = 0;
    if (!send_message(x.fd, message, counters)) fail(x);
  };
  for (size_t i = 0; i < fds.size(); ++i) {
    exchanges[i].fd = fds[i];
    exchanges[i].step = Step::Awaiting;
    epoll_event ev{};
    ev.events = EPOLLIN;  // level-triggered: one recv per wake-up, no EAGAIN round trip
    ev.data.u64 = i;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fds[i], &ev);
    ++alive;
    start(exchanges[i]);
  }
  epoll_event events[256];
  uint64_t next_scan = now_ns() + kPollMs * 1'000'000ull;
  while (!control.stopping() && alive > 0) {
    int n = ::epoll_wait(epoll_fd, events, 256, kPollMs);
    for (int i = 0; i < n; ++i) {
      Exchange& x = exchanges[events[i].data.u64];
      if (x.fd < 0) continue;
      int state = receive_echo(x, buffer, o.size, counters);
      if (state < 0) {
        fail(x);
      } else if (state == 1) {
        complete(x, counters, control);
        start(x);
      }
    }
    uint64_t now = now_ns();
    if (now >= next_scan) {
      next_scan = now + kPollMs * 1'000'000ull;
      for (Exchange& x : exchanges) {
        if (x.fd >= 0 && now > x.deadline) {
          counters.add_error(ErrorCause::Timeout);
          fail(x);
        }
      }
    }
  }
  for (Exchange& x : exchanges) {
    if (x.fd >= 0) close_connection(x.fd, counters);
  }
  ::close(epoll_fd);
}

void crr_worker(const WorkerContext& context, ThreadCounters& counters, RunControl& control) {
  const Options& o = *context.options;
  const int slots = share_of(o.connections, context.workers, context.worker);
  control.ready_workers.fetch_add(1);
  wait_for_start(control);

  std::vector<char> message(o.size, 'q');
  std::vector<char> buffer(o.size);
  const auto timeout_ns = static_cast<uint64_t>(o.timeout_s * 1e9);
  std::vector<Exchange> exchanges(static_cast<size_t>(slots));
  int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  uint64_t sequence = 0;  // picks the source address: workers interleave over the list
  size_t idle = exchanges.size();

  auto finish = [&](Exchange& x) {
    if (x.fd >= 0) close_connection(x.fd, counters);
    x.fd = -1;
    x.step = Step::Idle;
    ++idle;
  };
  auto begin = [&](size_t slot) {
    Exchange& x = exchanges[slot];
    x.started = now_ns();
    x.deadline = x.started + timeout_ns;
    x.received = 0;
    int fd = start_connect(*context.spec, sequence++ * static_cast<uint64_t>(context.workers) +
                                              static_cast<uint64_t>(context.worker));
    if (fd < 0) {
      counters.add_error(connect_error_cause(-fd));
      return;  // stays idle; retried after a 1 ms epoll wait so a refusing target is not spun on
    }
    counters.established.fetch_add(1, std::memory_order_relaxed);
    x.fd = fd;
    x.step = Step::Connecting;
    --idle;
    epoll_event ev{};
    ev.events = EPOLLOUT;  // writable = handshake done (or failed: SO_ERROR tells)
    ev.data.u64 = slot;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
  };

  epoll_event events[256];
  uint64_t next_scan = now_ns() + kPollMs * 1'000'000ull;
  while (!control.stopping()) {
    if (idle > 0) {
      for (size_t s = 0; s < exchanges.size(); ++s) {
        if (exchanges[s].step == Step::Idle) begin(s);
      }
    }
    int n = ::epoll_wait(epoll_fd, events, 256, idle > 0 ? 1 : kPollMs);
    for (int i = 0; i < n; ++i) {
      size_t slot = events[i].data.u64;
      Exchange& x = exchanges[slot];
      if (x.fd < 0) continue;
      if (x.step == Step::Connecting) {
        int error = connect_result(x.fd);
        if (error != 0) {
          counters.add_error(connect_error_cause(error));
          finish(x);
          continue;
        }
        if (!send_message(x.fd, message, counters)) {
          finish(x);
          continue;
        }
        x.step = Step::Awaiting;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = slot;
        ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, x.fd, &ev);
        continue;
      }
      int state = receive_echo(x, buffer, o.size, counters);
      if (state == 1) complete(x, counters, control);
      if (state != 0) finish(x);
    }
    uint64_t now = now_ns();
    if (now >= next_scan) {
      next_scan = now + kPollMs * 1'000'000ull;
      for (Exchange& x : exchanges) {
        if (x.fd >= 0 && now > x.deadline) {
          counters.add_error(x.step == Step::Connecting ? ErrorCause::ConnectTimeout
                                                        : ErrorCause::Timeout);
          finish(x);
        }
      }
    }
  }
  for (Exchange& x : exchanges) {
    if (x.fd >= 0) finish(x);
  }
  ::close(epoll_fd);
}

}  // namespace ringway::load
