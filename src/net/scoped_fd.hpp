// A file descriptor closed when it goes out of scope, so every early return in socket setup
// leaves nothing open. Private to the net layer: its public functions hand out plain fds.
#pragma once

#include <unistd.h>

namespace ringway::net {

class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Hands the fd to the caller, who now owns it.
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

}  // namespace ringway::net
