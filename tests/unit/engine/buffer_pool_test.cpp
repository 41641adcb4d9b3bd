// The provided-buffer pool on a real io_uring: registration, a real recv that selects a buffer,
// recycling, and -ENOBUFS when every buffer is held. Skipped when io_uring is unavailable.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "ringway/engine/buffer_pool.hpp"
#include "ringway/engine/ring.hpp"
#include "ringway/engine/user_data.hpp"

namespace ringway::engine {
namespace {

class BufferPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ring = Ring::create(RingSize{64, 128});
    if (!ring) GTEST_SKIP() << "io_uring unavailable: " << ring.error().message;
    ring_ = std::move(ring.value());
    auto pool = BufferPool::create(ring_->get(), 4, 4096);
    ASSERT_TRUE(pool) << pool.error().message;
    pool_ = std::move(pool.value());
    ring_->set_pre_submit([](void* p) { static_cast<BufferPool*>(p)->flush(); }, pool_.get());
    for (auto& p : pairs_)
      ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p), 0);
  }
  void TearDown() override {
    pool_.reset();
    ring_.reset();
    for (auto& p : pairs_) {
      if (p[0] >= 0) close(p[0]);
      if (p[1] >= 0) close(p[1]);
    }
  }

  void arm_recv(int fd, uint32_t id) {
    pool_->on_recv_armed();
    io_uring_sqe* sqe = ring_->get_sqe();
    ASSERT_NE(sqe, nullptr);
    io_uring_prep_recv(sqe, fd, nullptr, pool_->buffer_size(), 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BufferPool::kGroupId;
    io_uring_sqe_set_data64(sqe, tag(Op::Test, id));
  }

  // Waits (bounded) for one completion and consumes it.
  bool next(io_uring_cqe& out) {
    __kernel_timespec ts{2, 0};
    ring_->submit_and_wait(&ts);
    io_uring_cqe* cqe = nullptr;
    if (io_uring_peek_cqe(ring_->get(), &cqe) != 0 || cqe == nullptr) return false;
    out = *cqe;
    io_uring_cqe_seen(ring_->get(), cqe);
    return true;
  }

  std::unique_ptr<Ring> ring_;
  std::unique_ptr<BufferPool> pool_;
  int pairs_[5][2] = {{-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}};
};

TEST_F(BufferPoolTest, RecvTakesABufferAndRecycleReturnsIt) {
  EXPECT_EQ(pool_->free_count(), 4u);
  ASSERT_EQ(write(pairs_[0][1], "hello", 5), 5);
  arm_recv(pairs_[0][0], 0);
  io_uring_cqe cqe{};
  ASSERT_TRUE(next(cqe));
  ASSERT_EQ(cqe.res, 5);
  ASSERT_TRUE(cqe.flags & IORING_CQE_F_BUFFER);
  const auto bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
  ASSERT_LT(bid, 4);
  pool_->on_recv_done(true);
  EXPECT_EQ(std::memcmp(pool_->data(bid), "hello", 5), 0);
  EXPECT_EQ(pool_->free_count(), 3u);
  pool_->recycle(bid);
  EXPECT_EQ(pool_->free_count(), 4u);

  // The recycled buffer is usable again (the same warm buffer comes back first).
  ASSERT_EQ(write(pairs_[0][1], "again", 5), 5);
  arm_recv(pairs_[0][0], 1);
  ASSERT_TRUE(next(cqe));
  ASSERT_EQ(cqe.res, 5);
  pool_->on_recv_done(true);
  const auto bid2 = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
  EXPECT_EQ(std::memcmp(pool_->data(bid2), "again", 5), 0);
  pool_->recycle(bid2);
}

TEST_F(BufferPoolTest, EmptyPoolGivesEnobufsUntilABufferComesBack) {
  std::vector<uint16_t> held;
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(write(pairs_[i][1], "x", 1), 1);
    arm_recv(pairs_[i][0], static_cast<uint32_t>(i));
    io_uring_cqe cqe{};
    ASSERT_TRUE(next(cqe));
    ASSERT_EQ(cqe.res, 1);
    ASSERT_TRUE(cqe.flags & IORING_CQE_F_BUFFER);
    pool_->on_recv_done(true);
    held.push_back(static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT));
  }
  EXPECT_EQ(pool_->free_count(), 0u);
  std::sort(held.begin(), held.end());
  EXPECT_EQ(held, (std::vector<uint16_t>{0, 1, 2, 3})) << "a buffer was handed out twice";

  ASSERT_EQ(write(pairs_[4][1], "y", 1), 1);
  arm_recv(pairs_[4][0], 4);
  io_uring_cqe cqe{};
  ASSERT_TRUE(next(cqe));
  EXPECT_EQ(cqe.res, -ENOBUFS);
  const bool took = (cqe.flags & IORING_CQE_F_BUFFER) != 0;
  EXPECT_FALSE(took);
  pool_->on_recv_done(took);

  pool_->recycle(held.back());
  arm_recv(pairs_[4][0], 5);
  ASSERT_TRUE(next(cqe));
  ASSERT_EQ(cqe.res, 1);
  pool_->on_recv_done(true);
  EXPECT_EQ(static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT), held.back());
  EXPECT_EQ(*pool_->data(held.back()), 'y');
}

TEST_F(BufferPoolTest, RejectsACountThatIsNotAPowerOfTwo) {
  auto pool = BufferPool::create(ring_->get(), 3, 4096);
  EXPECT_FALSE(pool);
}

}  // namespace
}  // namespace ringway::engine
