// A worker's pipes for splice forwarding (socket -> pipe -> socket). A spliced direction holds
// one pipe while it is in splice mode; the pipe's pages are the direction's buffer, in the
// kernel. Empty pipes are kept for reuse (pipe2 + close cost two syscalls and a file each);
// a pipe that still holds bytes when its direction ends is closed, since those bytes belong to
// nobody. The pool's cap bounds the fds and the kernel memory splice can use per worker.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace ringway::engine {

class PipePool {
 public:
  struct Pipe {
    int read_fd = -1;
    int write_fd = -1;
  };
  // Pipes hold 64 KiB (the kernel's default of 16 pages; Ringway does not resize them, so it
  // never runs into fs.pipe-user-pages-soft as an unprivileged service).
  static constexpr uint32_t kPipeBytes = 64 * 1024;
  static constexpr uint32_t kMaxIdle = 64;  // empty pipes kept for reuse

  explicit PipePool(uint32_t max_pipes) : max_(max_pipes) {}
  ~PipePool();
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // An empty pipe (reused or new), or nullopt when max_pipes are in use or pipe2() fails.
  std::optional<Pipe> acquire();
  // Returns a pipe: kept for reuse when `empty` and the idle list has room, closed otherwise.
  void release(Pipe pipe, bool empty);

  uint32_t in_use() const { return in_use_; }
  uint32_t idle() const { return static_cast<uint32_t>(idle_.size()); }

 private:
  uint32_t max_;
  uint32_t in_use_ = 0;
  std::vector<Pipe> idle_;
};

}  // namespace ringway::engine
