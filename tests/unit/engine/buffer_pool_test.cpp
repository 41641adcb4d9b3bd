// The provided-buffer pool on a real io_uring: registration, a real recv that selects a buffer,
// recycling, -ENOBUFS when every buffer is held, and bundle recvs whose buffers are found in
// ring order. Skipped when io_uring (or, for bundles, the start-up bundle trial) is unavailable.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

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

  // A bundle recv on `fd` that may fill up to `cap` buffers (as forward_recv.cpp arms one).
  void arm_bundle(int fd, uint32_t cap, uint32_t id) {
    pool_->on_recv_armed(cap);
    io_uring_sqe* sqe = ring_->get_sqe();
    ASSERT_NE(sqe, nullptr);
    io_uring_prep_recv(sqe, fd, nullptr, bundle_recv_len(cap, pool_->buffer_size()), 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BufferPool::kGroupId;
    sqe->ioprio |= kRecvSendBundle;
    io_uring_sqe_set_data64(sqe, tag(Op::Test, id));
  }
  // `n` bytes of a counting pattern that continues from `counter`.
  static std::string pattern(size_t n, uint8_t& counter) {
    std::string out(n, '\0');
    for (auto& c : out)
      c = static_cast<char>(counter++);
    return out;
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
  pool_->on_recv_done(1, 1);
  EXPECT_EQ(std::memcmp(pool_->data(bid), "hello", 5), 0);
  EXPECT_EQ(pool_->free_count(), 3u);
  pool_->recycle(bid);
  EXPECT_EQ(pool_->free_count(), 4u);

  // The recycled buffer is usable again (the same warm buffer comes back first).
  ASSERT_EQ(write(pairs_[0][1], "again", 5), 5);
  arm_recv(pairs_[0][0], 1);
  ASSERT_TRUE(next(cqe));
  ASSERT_EQ(cqe.res, 5);
  pool_->on_recv_done(1, 1);
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
    pool_->on_recv_done(1, 1);
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
  pool_->on_recv_done(1, took ? 1 : 0);

  pool_->recycle(held.back());
  arm_recv(pairs_[4][0], 5);
  ASSERT_TRUE(next(cqe));
  ASSERT_EQ(cqe.res, 1);
  pool_->on_recv_done(1, 1);
  EXPECT_EQ(static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT), held.back());
  EXPECT_EQ(*pool_->data(held.back()), 'y');
}

// Bundles: one completion fills several buffers and names only the first; the rest are read
// back from the ring entries after it. Recycling in reverse order makes buffer ids and ring
// order disagree, and 40 rounds over a 4-entry ring wrap its positions many times: every byte
// must still come back in order.
TEST_F(BufferPoolTest, BundleBuffersComeBackInRingOrderAcrossWraps) {
  if (!ring_->features().recv_bundle) {
    GTEST_SKIP() << "this kernel's io_uring failed the recv bundle trial (needs Linux 6.10+)";
  }
  constexpr uint32_t kCap = 3;
  const uint32_t size = pool_->buffer_size();
  int capped = 0;
  int appended = 0;
  uint8_t next_byte = 0;  // the stream's byte counter: what the receiver expects next
  uint8_t sent_byte = 0;
  for (uint32_t round = 0; round < 40; ++round) {
    // More than the cap, so that more data waits behind it.
    const std::string chunk = pattern(kCap * size + 100, sent_byte);
    ASSERT_EQ(write(pairs_[0][1], chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
    size_t left = chunk.size();
    while (left > 0) {
      arm_bundle(pairs_[0][0], kCap, round);
      if (HasFatalFailure()) return;
      io_uring_cqe cqe{};
      ASSERT_TRUE(next(cqe));
      ASSERT_GT(cqe.res, 0) << "round " << round;
      const uint32_t taken = pool_->buffers_taken(cqe.res, cqe.flags, true);
      pool_->on_recv_done(kCap, taken);
      ASSERT_LE(taken, 4u);
      const auto first = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
      std::vector<uint16_t> bids;
      auto got = static_cast<uint32_t>(cqe.res);
      for (uint32_t i = 0; i < taken; ++i) {
        const uint16_t bid = pool_->bundle_buffer(first, i);
        if (i == 0) {
          EXPECT_EQ(bid, first);
        }
        EXPECT_EQ(std::count(bids.begin(), bids.end(), bid), 0) << "buffer taken twice";
        bids.push_back(bid);
        const uint32_t len = std::min(got, size);
        for (uint32_t b = 0; b < len; ++b) {
          ASSERT_EQ(pool_->data(bid)[b], next_byte) << "round " << round << " buffer " << i;
          ++next_byte;
        }
        got -= len;
      }
      if (left == chunk.size() && taken > 1) {
        if (static_cast<uint32_t>(cqe.res) <= kCap * size) {
          ++capped;
        } else {
          ++appended;
        }
      }
      left -= static_cast<size_t>(cqe.res);
      for (auto it = bids.rbegin(); it != bids.rend(); ++it)
        pool_->recycle(*it);
    }
  }
  EXPECT_EQ(pool_->free_count(), 4u);
  // The cap holds where the start-up trial said it does (the engine relies on the same).
  if (ring_->features().recv_bundle_capped) {
    EXPECT_EQ(appended, 0);
  }
  std::printf(
      "bundle recvs of a full cap with more data waiting: %d within the cap, %d with a "
      "retry appended\n",
      capped, appended);
}

// One buffer group per ring: a second pool on the same ring is refused (the fixture's pool
// holds group kGroupId), and the refusal is an error, not a crash.
TEST_F(BufferPoolTest, ASecondPoolOnTheSameRingIsRefused) {
  auto pool = BufferPool::create(ring_->get(), 4, 4096);
  ASSERT_FALSE(pool);
  EXPECT_NE(pool.error().message.find("io_uring_register_buf_ring"), std::string::npos)
      << pool.error().message;
}

// What a session that ends with a bundle in flight does: the completion's buffers go straight
// back, in data order. recycle() re-offers at once, newest first, so the bundle's first buffer
// is back in the ring at a new position before its followers are recycled; their ids must have
// been read before that (on_recv_done does). 5 buffers make an 8-entry ring, so an id read
// from the first buffer's new position would come from another lap's entries and show up as a
// buffer handed out twice or as bytes out of order.
TEST_F(BufferPoolTest, BundleIdsSurviveRecyclingInDataOrder) {
  if (!ring_->features().recv_bundle) {
    GTEST_SKIP() << "this kernel's io_uring failed the recv bundle trial (needs Linux 6.10+)";
  }
  pool_.reset();
  auto pool = BufferPool::create(ring_->get(), 5, 4096);
  ASSERT_TRUE(pool) << pool.error().message;
  pool_ = std::move(pool.value());
  ring_->set_pre_submit([](void* p) { static_cast<BufferPool*>(p)->flush(); }, pool_.get());
  constexpr uint32_t kCap = 3;
  const uint32_t size = pool_->buffer_size();
  uint8_t next_byte = 0;
  uint8_t sent_byte = 0;
  uint32_t bundles = 0;
  for (uint32_t round = 0; round < 30; ++round) {
    const std::string chunk = pattern(kCap * size, sent_byte);
    ASSERT_EQ(write(pairs_[0][1], chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
    size_t left = chunk.size();
    while (left > 0) {
      arm_bundle(pairs_[0][0], kCap, round);
      if (HasFatalFailure()) return;
      io_uring_cqe cqe{};
      ASSERT_TRUE(next(cqe));
      ASSERT_GT(cqe.res, 0) << "round " << round;
      BufferPool::TakenIds ids{};
      const uint32_t taken = pool_->on_recv_done(kCap, cqe.res, cqe.flags, true, ids);
      ASSERT_GE(taken, 1u);
      ASSERT_LE(taken, kCap);
      bundles += taken > 1 ? 1 : 0;
      auto got = static_cast<uint32_t>(cqe.res);
      for (uint32_t i = 0; i < taken; ++i) {
        EXPECT_EQ(std::count(ids.begin(), ids.begin() + i, ids[i]), 0) << "buffer taken twice";
        const uint32_t len = std::min(got, size);
        for (uint32_t b = 0; b < len; ++b) {
          ASSERT_EQ(pool_->data(ids[i])[b], next_byte) << "round " << round << " buffer " << i;
          ++next_byte;
        }
        got -= len;
      }
      left -= static_cast<size_t>(cqe.res);
      for (uint32_t i = 0; i < taken; ++i)
        pool_->recycle(ids[i]);
    }
  }
  EXPECT_GT(bundles, 0u) << "no completion filled more than one buffer: nothing was tested";
  EXPECT_EQ(pool_->free_count(), 5u);
}

}  // namespace
}  // namespace ringway::engine
