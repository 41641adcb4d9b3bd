// Registration and teardown of a worker's provided-buffer ring (see buffer_pool.hpp). liburing
// 2.3 has no io_uring_setup_buf_ring, so the ring memory is mapped and registered by hand.
#include "ringway/engine/buffer_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <bit>
#include <cerrno>

namespace ringway::engine {

Result<std::unique_ptr<BufferPool>> BufferPool::create(io_uring* ring, uint32_t count,
                                                       uint32_t size) {
  if (count == 0 || count > kMaxCount) {
    return Error{EINVAL, "buffer pool: the buffer count must be 1..32768"};
  }
  // The kernel wants a power-of-two ring; it may be larger than the pool, since the ring only
  // ever holds the buffers offered to it (at most kMaxOffered + kSlack).
  const uint32_t entries = std::bit_ceil(count);
  std::unique_ptr<BufferPool> pool(new BufferPool());
  pool->uring_ = ring;
  pool->size_ = size;
  pool->count_ = count;
  pool->mask_ = io_uring_buf_ring_mask(entries);

  // The ring itself: entries of 16 bytes, page aligned (mmap guarantees it), shared with the
  // kernel, which reads buffer addresses from it.
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  pool->ring_bytes_ = ((entries * sizeof(io_uring_buf)) + page - 1) / page * page;
  void* mem =
      mmap(nullptr, pool->ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    pool->ring_bytes_ = 0;
    return system_error(errno, "buffer pool: mmap of the buffer ring failed");
  }
  pool->ring_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(pool->ring_);

  // The buffers: reserved address space only (MAP_NORESERVE); a page becomes resident when the
  // kernel first writes received data into it.
  pool->data_bytes_ = static_cast<size_t>(count) * size;
  mem = mmap(nullptr, pool->data_bytes_, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    pool->data_bytes_ = 0;
    return system_error(errno, "buffer pool: mmap of the buffers failed");
  }
  pool->base_ = static_cast<uint8_t*>(mem);

  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(pool->ring_);
  reg.ring_entries = entries;
  reg.bgid = kGroupId;
  const int ret = io_uring_register_buf_ring(ring, &reg, 0);
  if (ret < 0) {
    pool->uring_ = nullptr;  // nothing to unregister
    return system_error(-ret, "buffer pool: io_uring_register_buf_ring failed");
  }

  // Every buffer starts on the free stack, highest id at the bottom, so the first buffers used
  // are the lowest ids (nice in traces, irrelevant otherwise).
  pool->ring_pos_.assign(count, 0);
  pool->stack_.reserve(count);
  for (uint32_t i = count; i > 0; --i)
    pool->stack_.push_back(static_cast<uint16_t>(i - 1));
  return pool;
}

BufferPool::~BufferPool() {
  if (uring_ != nullptr) io_uring_unregister_buf_ring(uring_, kGroupId);
  if (ring_ != nullptr) munmap(ring_, ring_bytes_);
  if (base_ != nullptr) munmap(base_, data_bytes_);
}

}  // namespace ringway::engine
