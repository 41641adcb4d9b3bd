// A worker's pipes for splice forwarding (see pipe_pool.hpp).
#include "ringway/engine/pipe_pool.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace ringway::engine {

PipePool::~PipePool() {
  for (const Pipe& p : idle_) {
    ::close(p.read_fd);
    ::close(p.write_fd);
  }
}

std::optional<PipePool::Pipe> PipePool::acquire() {
  if (in_use_ >= max_) return std::nullopt;
  Pipe p;
  if (!idle_.empty()) {
    p = idle_.back();
    idle_.pop_back();
  } else {
    int fds[2];
    // O_CLOEXEC: never leak into exec'd children. Blocking on purpose: every splice passes
    // SPLICE_F_NONBLOCK, which is what makes the pipe side non-blocking.
    if (::pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;
    p = Pipe{fds[0], fds[1]};
  }
  ++in_use_;
  return p;
}

void PipePool::release(Pipe pipe, bool empty) {
  --in_use_;
  if (empty && idle_.size() < kMaxIdle) {
    idle_.push_back(pipe);
    return;
  }
  ::close(pipe.read_fd);
  ::close(pipe.write_fd);
}

}  // namespace ringway::engine
