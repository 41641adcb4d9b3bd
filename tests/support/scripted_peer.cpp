// Fake peers driven by one epoll thread (see scripted_peer.hpp). Level-triggered epoll; each
// wake-up does a bounded number of reads and writes per connection so one busy connection
// cannot starve the others.
#include "scripted_peer.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "stream_hash.hpp"

namespace ringway::test {

namespace {
constexpr size_t kChunk = 64 * 1024;
constexpr size_t kEchoBufferCap = 1024 * 1024;  // stop reading while this much waits to be echoed
constexpr int kOpsPerWake = 16;
constexpr uint64_t kListenerTag = 1ULL << 63;
constexpr uint64_t kWakeTag = 1ULL << 62;
}  // namespace

std::string describe(const ConnRecord& r) {
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "port %u connected=%d connect_errno=%d sent=%llu (%016llx) received=%llu "
                "(%016llx) eof=%d reset=%d error=%d send_done=%d closed=%d",
                r.local_port, r.connected, r.connect_errno,
                static_cast<unsigned long long>(r.bytes_sent),
                static_cast<unsigned long long>(r.sent_digest),
                static_cast<unsigned long long>(r.bytes_received),
                static_cast<unsigned long long>(r.recv_digest), r.eof, r.reset, r.error,
                r.send_done, r.closed);
  return buf;
}

struct PeerHost::Conn {
  size_t id = 0;
  int fd = -1;
  PeerScript script;
  ConnRecord rec;
  PatternStream pattern{1};
  StreamHash recv_hash;
  StreamHash sent_hash;
  std::vector<uint8_t> out;  // bytes waiting to be written (echo data or a pattern chunk)
  size_t out_off = 0;
  bool connecting = false;
  bool read_closed = false;
  bool write_closed = false;
  uint32_t interest = 0;
  Clock::time_point read_start{};
  Clock::time_point next_read_at{};  // a rate-limited reader sleeps until then
};

struct PeerHost::Listener {
  int fd = -1;
  PeerScript script;
};

// Binds `fd` to `host` port 0. IP_BIND_ADDRESS_NO_PORT defers the port choice to connect(), so
// the port need only be unique per destination, not per source address.
static bool bind_source(int fd, const std::string& host, int* err) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!to_sockaddr(Endpoint{host, 0}, ss, len)) {
    *err = EINVAL;
    return false;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    *err = errno;
    return false;
  }
  return true;
}

PeerHost::PeerHost() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  thread_ = std::thread([this] { run(); });
}

PeerHost::~PeerHost() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  thread_.join();
  for (auto& c : conns_) {
    if (c && c->fd >= 0) ::close(c->fd);
  }
  for (auto& l : listeners_)
    ::close(l->fd);
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

void PeerHost::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

uint16_t PeerHost::listen(const std::string& host, const PeerScript& script, int backlog) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!to_sockaddr(Endpoint{host, 0}, ss, len)) return 0;
  Fd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return 0;
  if (script.rcvbuf > 0) {
    // Set on the listener so accepted sockets inherit it before the window is advertised.
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &script.rcvbuf, sizeof(script.rcvbuf));
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return 0;
  if (::listen(fd.get(), backlog) != 0) return 0;
  uint16_t port = local_port(fd.get());
  int raw = fd.release();
  post([this, raw, script] {
    auto l = std::make_unique<Listener>();
    l->fd = raw;
    l->script = script;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenerTag | listeners_.size();
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, raw, &ev);
    listeners_.push_back(std::move(l));
  });
  return port;
}

size_t PeerHost::connect(const Endpoint& ep, const PeerScript& script,
                         const std::string& source_host) {
  size_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = records_.size();
    records_.emplace_back();
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  int fd = -1;
  int err = EINVAL;
  if (to_sockaddr(ep, ss, len)) {
    fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    err = fd < 0 ? errno : 0;
    if (fd >= 0 && script.rcvbuf > 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &script.rcvbuf, sizeof(script.rcvbuf));
    }
    if (fd >= 0 && !source_host.empty() && !bind_source(fd, source_host, &err)) {
      ::close(fd);
      fd = -1;
    }
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 &&
        errno != EINPROGRESS) {
      err = errno;
      ::close(fd);
      fd = -1;
    }
  }
  if (fd < 0) {
    std::lock_guard<std::mutex> lock(mu_);
    records_[id].connect_errno = err;
    records_[id].closed = true;
    cv_.notify_all();
    return id;
  }
  post([this, id, fd, script] { add_conn(id, fd, script, true); });
  return id;
}

void PeerHost::go() {
  post([this] {
    go_ = true;
    for (auto& c : conns_) {
      if (c) step(*c, 0);
    }
  });
}

void PeerHost::abort(size_t id) {
  post([this, id] {
    if (id < conns_.size() && conns_[id] && conns_[id]->fd >= 0) finish(*conns_[id], true);
  });
}

void PeerHost::close(size_t id) {
  post([this, id] {
    if (id < conns_.size() && conns_[id] && conns_[id]->fd >= 0) finish(*conns_[id], false);
  });
}

std::vector<ConnRecord> PeerHost::records() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_;
}

ConnRecord PeerHost::record(size_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return id < records_.size() ? records_[id] : ConnRecord{};
}

size_t PeerHost::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_.size();
}

bool PeerHost::wait(const std::function<bool(const std::vector<ConnRecord>&)>& pred,
                    Millis timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return pred(records_); });
}

void PeerHost::publish(const Conn& c) {
  std::lock_guard<std::mutex> lock(mu_);
  records_[c.id] = c.rec;
  cv_.notify_all();
}

void PeerHost::add_conn(size_t id, int fd, const PeerScript& script, bool connecting) {
  auto c = std::make_unique<Conn>();
  c->id = id;
  c->fd = fd;
  c->script = script;
  c->pattern = PatternStream(script.seed);
  c->connecting = connecting;
  c->rec.connected = !connecting;
  c->rec.local_port = local_port(fd);
  c->read_start = Clock::now();
  if (conns_.size() <= id) conns_.resize(id + 1);
  Conn& ref = *c;
  conns_[id] = std::move(c);
  epoll_event ev{};
  ev.events = 0;
  ev.data.u64 = id;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  step(ref, 0);
}

void PeerHost::on_accept(Listener& l) {
  for (int i = 0; i < 64; ++i) {
    int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    size_t id = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      id = records_.size();
      records_.emplace_back();
    }
    add_conn(id, fd, l.script, false);
  }
}

void PeerHost::finish(Conn& c, bool abortive) {
  if (abortive) set_linger_zero(c.fd);
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  ::close(c.fd);
  c.fd = -1;
  c.rec.closed = true;
  c.out = {};  // the Conn itself stays (ids index conns_) until the host goes away
  publish(c);
}

static void note_end(ConnRecord& rec) {
  if (rec.ended_at == Clock::time_point{}) rec.ended_at = Clock::now();
}

void PeerHost::step_read(Conn& c, bool ignore_rate) {
  const PeerScript& s = c.script;
  for (int i = 0; i < kOpsPerWake && !c.read_closed && c.fd >= 0; ++i) {
    size_t want = kChunk;
    if (s.echo && c.out.size() - c.out_off >= kEchoBufferCap) return;
    if (s.read_rate > 0 && c.rec.bytes_received < s.slow_read_bytes && !ignore_rate) {
      // Token bucket: the bytes allowed so far are rate x elapsed (plus a 4 KiB start).
      auto now = Clock::now();
      double secs = std::chrono::duration<double>(now - c.read_start).count();
      auto allowed = static_cast<uint64_t>(secs * static_cast<double>(s.read_rate)) + 4096;
      if (allowed <= c.rec.bytes_received) {
        auto wait_s = static_cast<double>(c.rec.bytes_received + 4096 - allowed) /
                      static_cast<double>(s.read_rate);
        c.next_read_at = now + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(wait_s));
        return;
      }
      want = std::min<uint64_t>(want, allowed - c.rec.bytes_received);
    }
    if (c.rec.bytes_received < s.rst_after) {
      want = std::min<uint64_t>(want, s.rst_after - c.rec.bytes_received);
    }
    uint8_t buf[kChunk];
    ssize_t n = ::recv(c.fd, buf, want, MSG_DONTWAIT);
    if (n > 0) {
      std::span<const uint8_t> got(buf, static_cast<size_t>(n));
      c.recv_hash.update(got);
      c.rec.bytes_received = c.recv_hash.size();
      c.rec.recv_digest = c.recv_hash.digest();
      if (s.echo) {
        // Drop the already-written front first, so a long echo does not keep it forever.
        if (c.out_off > 0) {
          c.out.erase(c.out.begin(), c.out.begin() + static_cast<ptrdiff_t>(c.out_off));
          c.out_off = 0;
        }
        c.out.insert(c.out.end(), got.begin(), got.end());
      }
      if (c.rec.bytes_received >= s.rst_after) {
        finish(c, true);
        return;
      }
      continue;
    }
    if (n == 0) {
      c.rec.eof = true;
      note_end(c.rec);
      c.read_closed = true;
      return;
    }
    if (errno == EAGAIN || errno == EINTR) return;
    c.rec.reset = (errno == ECONNRESET || errno == EPIPE);
    if (!c.rec.reset) c.rec.error = errno;
    note_end(c.rec);
    finish(c, false);
    return;
  }
}

void PeerHost::step_write(Conn& c) {
  const PeerScript& s = c.script;
  if (c.write_closed) return;
  if (s.wait_for_go && !go_) return;
  if (s.send_after_eof && !c.rec.eof) return;
  for (int i = 0; i < kOpsPerWake; ++i) {
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
      if (s.echo || c.rec.bytes_sent >= s.send_bytes) break;
      size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, s.send_bytes - c.rec.bytes_sent));
      c.out.resize(n);
      c.pattern.fill(c.out);
    }
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n < 0) {
      c.rec.reset = (errno == ECONNRESET || errno == EPIPE);
      if (!c.rec.reset) c.rec.error = errno;
      note_end(c.rec);
      finish(c, false);
      return;
    }
    c.sent_hash.update(std::span<const uint8_t>(c.out.data() + c.out_off, static_cast<size_t>(n)));
    c.out_off += static_cast<size_t>(n);
    c.rec.bytes_sent = c.sent_hash.size();
    c.rec.sent_digest = c.sent_hash.digest();
  }
  if (c.out_off < c.out.size()) return;
  // A script that sends nothing keeps its side open until the peer's FIN (an idle client or a
  // sink must not half-close first); an echo finishes after the peer's FIN.
  bool all_sent = s.echo || s.send_bytes == 0 ? c.read_closed : c.rec.bytes_sent >= s.send_bytes;
  if (all_sent) {
    if (s.echo || s.fin_after_send) ::shutdown(c.fd, SHUT_WR);
    c.write_closed = true;
    c.rec.send_done = true;
  }
}

// True while there is something to write now: pending bytes, or pattern bytes still to
// generate once the script allows sending.
bool PeerHost::wants_write(const Conn& c) const {
  const PeerScript& s = c.script;
  if (c.write_closed) return false;
  if (c.out_off < c.out.size()) return true;
  if (s.echo || (s.wait_for_go && !go_) || (s.send_after_eof && !c.rec.eof)) return false;
  return c.rec.bytes_sent < s.send_bytes;
}

void PeerHost::update_interest(Conn& c) {
  uint32_t want = 0;
  if (c.connecting) {
    want = EPOLLOUT;
  } else {
    bool throttled = c.next_read_at > Clock::now();
    bool echo_full = c.script.echo && c.out.size() - c.out_off >= kEchoBufferCap;
    if (c.script.read && !c.read_closed && !throttled && !echo_full) want |= EPOLLIN;
    if (wants_write(c)) want |= EPOLLOUT;
  }
  if (want != c.interest) {
    epoll_event ev{};
    ev.events = want;
    ev.data.u64 = c.id;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
    c.interest = want;
  }
}

void PeerHost::step(Conn& c, uint32_t events) {
  if (c.fd < 0) return;
  if (c.connecting) {
    if (events == 0) {
      update_interest(c);
      return;
    }
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr != 0) {
      c.rec.connect_errno = soerr;
      finish(c, false);
      return;
    }
    c.connecting = false;
    c.rec.connected = true;
    c.rec.local_port = local_port(c.fd);
    c.read_start = Clock::now();
  }
  if (!c.script.read && (events & (EPOLLERR | EPOLLHUP)) != 0) {
    // A never-reading peer learns of the end only through the error state.
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr == 0) {
      c.rec.eof = true;  // a hang-up without error: both directions shut down in order
    } else if (soerr == ECONNRESET || soerr == EPIPE) {
      c.rec.reset = true;
    } else {
      c.rec.error = soerr;
    }
    note_end(c.rec);
    finish(c, false);
    return;
  }
  // An error or hang-up is read at once, even by a throttled reader, so it is not polled for.
  if (c.script.read) step_read(c, (events & (EPOLLERR | EPOLLHUP)) != 0);
  if (c.fd < 0) return;
  step_write(c);
  if (c.fd < 0) return;
  if (c.read_closed && c.write_closed) {
    finish(c, false);
    return;
  }
  update_interest(c);
  publish(c);
}

void PeerHost::run() {
  std::vector<epoll_event> events(256);
  for (;;) {
    std::vector<std::function<void()>> cmds;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      cmds.swap(commands_);
    }
    for (auto& fn : cmds)
      fn();

    // Sleep until the earliest rate-limited reader may read again (at most 50 ms).
    auto now = Clock::now();
    auto wake = now + Millis(50);
    for (auto& c : conns_) {
      if (c && c->fd >= 0 && c->next_read_at > now) wake = std::min(wake, c->next_read_at);
    }
    int timeout_ms = static_cast<int>(std::chrono::duration_cast<Millis>(wake - now).count() + 1);
    int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[static_cast<size_t>(i)].data.u64;
      if (tag == kWakeTag) {
        uint64_t v = 0;
        (void)!::read(wake_fd_, &v, sizeof(v));
      } else if ((tag & kListenerTag) != 0) {
        on_accept(*listeners_[tag & ~kListenerTag]);
      } else if (tag < conns_.size() && conns_[tag]) {
        step(*conns_[tag], events[static_cast<size_t>(i)].events);
      }
    }
    // Throttled readers whose time has come.
    now = Clock::now();
    for (auto& c : conns_) {
      if (c && c->fd >= 0 && c->next_read_at != Clock::time_point{} && c->next_read_at <= now) {
        c->next_read_at = Clock::time_point{};
        step(*c, 0);
      }
    }
  }
}

}  // namespace ringway::test
