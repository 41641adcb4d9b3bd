// The handover wire (see handover.hpp): bundles over a SOCK_SEQPACKET socket, state in a memfd,
// fds with SCM_RIGHTS in batches; and the records' binary encoding (little-endian host order:
// both ends are the same machine, usually the same binary).
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "ringway/app/handover.hpp"

namespace ringway::app::handover {
namespace {

constexpr uint32_t kMagic = 0x52574831;  // "RWH1"
// Session records' optional trailer (encode_sessions) and its entry tags.
constexpr uint32_t kExtensionMagic = 0x52575831;  // "RWX1"
constexpr uint8_t kTagProxiedClient = 1;          // PROXY header's source and destination

struct Header {
  uint32_t magic = kMagic;
  uint32_t step = 0;
  uint64_t value = 0;
  uint64_t state_bytes = 0;
  uint32_t fd_count = 0;  // fds that follow in batches
  uint32_t has_memfd = 0;
};

Result<void> send_with_fds(int sock, const void* data, size_t len, const int* fds, size_t n) {
  iovec iov{const_cast<void*>(data), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (n > 0) {
    control.resize(CMSG_SPACE(sizeof(int) * n));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
  }
  for (;;) {
    if (::sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0) return {};
    if (errno != EINTR) return system_error(errno, "handover: sendmsg failed");
  }
}

// One message; its fds are appended to `fds`. Returns the payload length.
Result<size_t> recv_with_fds(int sock, void* data, size_t len, std::vector<int>& fds,
                             std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) return Error{ETIMEDOUT, "handover: the other process did not answer in time"};
    pollfd p{sock, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return system_error(errno, "handover: poll failed");
    if (r == 0) continue;
    break;
  }
  iovec iov{data, len};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kFdsPerMessage));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return system_error(errno, "handover: recvmsg failed");
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.push_back(fd);
    }
  }
  if (n == 0) return Error{EPIPE, "handover: the other process closed the handover socket"};
  if ((msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0) {
    return Error{EPROTO, "handover: a message was truncated"};
  }
  return static_cast<size_t>(n);
}

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) { out_.append(reinterpret_cast<const char*>(&v), sizeof(v)); }
  void u64(uint64_t v) { out_.append(reinterpret_cast<const char*>(&v), sizeof(v)); }
  void str(std::string_view s) {
    u64(s.size());
    out_.append(s);
  }
  // An fd travels as its index in the bundle; -1 stays -1.
  void fd(int fd, std::vector<int>& fds) {
    if (fd < 0) {
      u32(UINT32_MAX);
      return;
    }
    u32(static_cast<uint32_t>(fds.size()));
    fds.push_back(fd);
  }
  void address(const net::SocketAddress& a) {
    str(std::string_view(reinterpret_cast<const char*>(&a.storage), a.length));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(const std::string& in) : in_(in) {}
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ >= in_.size(); }
  uint8_t u8() { return get<uint8_t>(); }
  uint32_t u32() { return get<uint32_t>(); }
  uint64_t u64() { return get<uint64_t>(); }
  std::string str() {
    const uint64_t n = u64();
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return {};
    }
    std::string s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  // Takes the fd out of `fds` (so closing the rest does not close it).
  int fd(std::vector<int>& fds) {
    const uint32_t i = u32();
    if (i == UINT32_MAX) return -1;
    if (i >= fds.size() || fds[i] < 0) {
      ok_ = false;
      return -1;
    }
    return std::exchange(fds[i], -1);
  }
  net::SocketAddress address() {
    net::SocketAddress a;
    const std::string raw = str();
    if (raw.size() > sizeof(a.storage)) {
      ok_ = false;
      return a;
    }
    std::memcpy(&a.storage, raw.data(), raw.size());
    a.length = static_cast<socklen_t>(raw.size());
    return a;
  }

 private:
  template <typename T>
  T get() {
    T v{};
    if (!ok_ || sizeof(T) > in_.size() - pos_) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  const std::string& in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

void close_all(std::vector<int>& fds) {
  for (int& fd : fds) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  fds.clear();
}

Result<void> send_bundle(int sock, const Bundle& bundle) {
  Header h;
  h.step = static_cast<uint32_t>(bundle.step);
  h.value = bundle.value;
  h.state_bytes = bundle.state.size();
  h.fd_count = static_cast<uint32_t>(bundle.fds.size());
  int memfd = -1;
  if (!bundle.state.empty()) {
    // A memfd rather than the socket: session state with unsent bytes can be many MiB, more
    // than one datagram may carry, and the same file fits systemd's fd store at a restart.
    memfd = ::memfd_create("ringway-handover", MFD_CLOEXEC);
    if (memfd < 0) return system_error(errno, "handover: memfd_create failed");
    size_t off = 0;
    while (off < bundle.state.size()) {
      const ssize_t n = ::pwrite(memfd, bundle.state.data() + off, bundle.state.size() - off,
                                 static_cast<off_t>(off));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(memfd);
        return system_error(errno, "handover: writing the state memfd failed");
      }
      off += static_cast<size_t>(n);
    }
    h.has_memfd = 1;
  }
  auto sent = send_with_fds(sock, &h, sizeof(h), &memfd, memfd >= 0 ? 1 : 0);
  if (memfd >= 0) ::close(memfd);  // the message holds its own reference
  if (!sent) return sent;
  for (size_t i = 0; i < bundle.fds.size(); i += kFdsPerMessage) {
    const size_t n = std::min(kFdsPerMessage, bundle.fds.size() - i);
    const uint32_t first = static_cast<uint32_t>(i);
    if (auto r = send_with_fds(sock, &first, sizeof(first), bundle.fds.data() + i, n); !r) {
      return r;
    }
  }
  return {};
}

Result<Bundle> recv_bundle(int sock, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Header h;
  std::vector<int> memfds;
  auto got = recv_with_fds(sock, &h, sizeof(h), memfds, deadline);
  if (!got) {
    close_all(memfds);
    return got.error();
  }
  if (*got != sizeof(h) || h.magic != kMagic || memfds.size() != h.has_memfd) {
    close_all(memfds);
    return Error{EPROTO, "handover: unexpected message"};
  }
  Bundle b;
  b.step = static_cast<Step>(h.step);
  b.value = h.value;
  if (h.has_memfd) {
    b.state.resize(h.state_bytes);
    size_t off = 0;
    while (off < b.state.size()) {
      const ssize_t n =
          ::pread(memfds[0], b.state.data() + off, b.state.size() - off, static_cast<off_t>(off));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close_all(memfds);
    if (off != b.state.size()) return Error{EPROTO, "handover: the state memfd is short"};
  }
  while (b.fds.size() < h.fd_count) {
    uint32_t first = 0;
    const size_t before = b.fds.size();
    auto batch = recv_with_fds(sock, &first, sizeof(first), b.fds, deadline);
    if (!batch || *batch != sizeof(first) || first != before) {
      close_all(b.fds);
      return batch ? Error{EPROTO, "handover: fd batch out of order"} : batch.error();
    }
  }
  return b;
}

std::string encode_listeners(const std::vector<engine::InheritedListener>& listeners,
                             std::vector<int>& fds) {
  Writer w;
  w.u32(static_cast<uint32_t>(listeners.size()));
  for (const auto& l : listeners) {
    w.str(l.gateway);
    w.str(l.key);
    w.address(l.address);
    w.fd(l.fd, fds);
  }
  return w.take();
}

Result<std::vector<engine::InheritedListener>> decode_listeners(const std::string& state,
                                                                std::vector<int>& fds) {
  Reader r(state);
  std::vector<engine::InheritedListener> out;
  const uint32_t n = r.u32();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    engine::InheritedListener l;
    l.gateway = r.str();
    l.key = r.str();
    l.address = r.address();
    l.fd = r.fd(fds);
    out.push_back(std::move(l));
  }
  if (!r.ok()) {
    for (auto& l : out)
      if (l.fd >= 0) ::close(l.fd);
    return Error{EPROTO, "handover: malformed listener records"};
  }
  return out;
}

std::string encode_sessions(const std::vector<engine::SessionExport>& sessions,
                            std::vector<int>& fds) {
  Writer w;
  w.u32(static_cast<uint32_t>(sessions.size()));
  for (const auto& e : sessions) {
    w.fd(e.downstream_fd, fds);
    w.fd(e.upstream_fd, fds);
    w.u32(e.worker);
    w.str(e.gateway);
    w.str(e.upstream);
    w.address(e.host);
    w.u8(e.attempts);
    w.u64(static_cast<uint64_t>(e.accepted_wall_ns));
    for (const auto& d : e.dirs) {
      w.str(d.pending);
      w.fd(d.pipe_fd, fds);
      w.u32(d.pipe_bytes);
      w.u8(static_cast<uint8_t>((d.eof ? 1 : 0) | (d.shut ? 2 : 0)));
      w.u64(d.bytes_received);
      w.u64(d.bytes_sent);
    }
  }
  // Optional per-session fields, after every record, as tagged entries: a reader that predates
  // them stops after the records (it never looks further), one that does not know a tag skips
  // its payload, and a reader given an older bundle finds no trailer at all. So a reload
  // across versions in either direction keeps working.
  std::vector<std::pair<uint32_t, std::string>> proxied;
  for (uint32_t i = 0; i < sessions.size(); ++i) {
    if (!sessions[i].proxied) continue;
    Writer p;
    p.address(sessions[i].client_source);
    p.address(sessions[i].client_destination);
    proxied.emplace_back(i, p.take());
  }
  w.u32(kExtensionMagic);
  w.u32(static_cast<uint32_t>(proxied.size()));
  for (const auto& [index, payload] : proxied) {
    w.u32(index);
    w.u8(kTagProxiedClient);
    w.str(payload);
  }
  return w.take();
}

Result<std::vector<engine::SessionExport>> decode_sessions(const std::string& state,
                                                           std::vector<int>& fds) {
  Reader r(state);
  std::vector<engine::SessionExport> out;
  const uint32_t n = r.u32();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    engine::SessionExport e;
    e.downstream_fd = r.fd(fds);
    e.upstream_fd = r.fd(fds);
    e.worker = r.u32();
    e.gateway = r.str();
    e.upstream = r.str();
    e.host = r.address();
    e.attempts = r.u8();
    e.accepted_wall_ns = static_cast<int64_t>(r.u64());
    for (auto& d : e.dirs) {
      d.pending = r.str();
      d.pipe_fd = r.fd(fds);
      d.pipe_bytes = r.u32();
      const uint8_t flags = r.u8();
      d.eof = (flags & 1) != 0;
      d.shut = (flags & 2) != 0;
      d.bytes_received = r.u64();
      d.bytes_sent = r.u64();
    }
    out.push_back(std::move(e));
  }
  if (r.ok() && !r.at_end() && r.u32() == kExtensionMagic) {
    const uint32_t entries = r.u32();
    for (uint32_t i = 0; i < entries && r.ok(); ++i) {
      const uint32_t index = r.u32();
      const uint8_t tag = r.u8();
      const std::string payload = r.str();
      if (!r.ok() || index >= out.size() || tag != kTagProxiedClient) continue;  // unknown: skip
      Reader p(payload);
      engine::SessionExport& e = out[index];
      e.client_source = p.address();
      e.client_destination = p.address();
      e.proxied = p.ok();
    }
  }
  if (!r.ok()) {
    engine::close_fds(out);
    return Error{EPROTO, "handover: malformed session records"};
  }
  return out;
}

}  // namespace ringway::app::handover
