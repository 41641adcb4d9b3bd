// Micro-benchmarks of the engine's per-operation bookkeeping: timer wheel insert/expire and
// insert/cancel, session slot alloc/free, user_data encode/decode, and a buffer's recycle into
// the provided-buffer ring (on a real io_uring; skipped with a message when unavailable).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "ringway/config/model.hpp"
#include "ringway/engine/buffer_pool.hpp"
#include "ringway/engine/ring.hpp"
#include "ringway/engine/session.hpp"
#include "ringway/engine/timer_wheel.hpp"
#include "ringway/engine/user_data.hpp"

namespace ringway::engine {
namespace {

// Idle-timer churn: N sessions each re-inserted at a random-ish future tick, the wheel advancing
// one tick per iteration and firing what is due.
void BM_TimerWheelInsertExpire(benchmark::State& state) {
  const auto timers = static_cast<uint64_t>(state.range(0));
  TimerWheel wheel(0);
  uint64_t tick = 0;
  uint64_t fired = 0;
  for (uint64_t i = 0; i < timers; ++i)
    wheel.insert(1 + (i * 7919) % 600, i);
  for (auto _ : state) {
    ++tick;
    wheel.advance(tick, [&](uint64_t payload) {
      ++fired;
      wheel.insert(tick + 1 + (payload * 7919 + tick) % 600, payload);
    });
  }
  state.counters["fired/s"] =
      benchmark::Counter(static_cast<double>(fired), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TimerWheelInsertExpire)->Arg(1000)->Arg(100000);

void BM_TimerWheelInsertCancel(benchmark::State& state) {
  TimerWheel wheel(0);
  uint64_t i = 0;
  for (auto _ : state) {
    TimerId id = wheel.insert(1 + (i % 3000), i);
    ++i;
    benchmark::DoNotOptimize(wheel.cancel(id));
  }
}
BENCHMARK(BM_TimerWheelInsertCancel);

void BM_SessionSlotAllocFree(benchmark::State& state) {
  SessionTable table(1U << 20);
  std::vector<uint32_t> held;
  for (int i = 0; i < 1000; ++i)
    held.push_back(table.alloc());  // a warm, non-empty table
  for (auto _ : state) {
    const uint32_t slot = table.alloc();
    table.at(slot).state = SessionState::Connecting;
    benchmark::DoNotOptimize(table.find(slot, table.at(slot).generation));
    table.free(slot);
  }
}
BENCHMARK(BM_SessionSlotAllocFree);

void BM_UserDataEncodeDecode(benchmark::State& state) {
  uint32_t slot = 0;
  uint64_t sum = 0;
  for (auto _ : state) {
    const uint64_t v = tag(Op::Recv, slot, static_cast<uint16_t>(slot), Dir::UpToDown);
    ++slot;
    benchmark::DoNotOptimize(v);
    const Tag t = Tag::decode(v);
    sum += t.slot + t.generation + static_cast<uint64_t>(t.op);
  }
  benchmark::DoNotOptimize(sum);
}
BENCHMARK(BM_UserDataEncodeDecode);

// recycle() + flush() of one buffer per iteration, as after each completed send.
void BM_BufferRecycle(benchmark::State& state) {
  auto ring = Ring::create(RingSize{64, 128});
  if (!ring) {
    state.SkipWithError(ring.error().message.c_str());
    return;
  }
  // The default per-worker pool: settings.perWorkerBufferLimitBytes / BufferPool::kSize.
  constexpr auto kCount =
      static_cast<uint32_t>(config::kDefaultPerWorkerBufferLimitBytes / BufferPool::kSize);
  auto pool = BufferPool::create((*ring)->get(), kCount);
  if (!pool) {
    state.SkipWithError(pool.error().message.c_str());
    return;
  }
  // Pretend many recvs are armed so every recycled buffer goes straight into the ring.
  for (int i = 0; i < 64; ++i)
    (*pool)->on_recv_armed();
  uint16_t bid = 0;
  for (auto _ : state) {
    // Take the buffer back out of our accounting as a completed recv would, then recycle it.
    (*pool)->on_recv_done(1, 1);
    (*pool)->on_recv_armed();
    (*pool)->recycle(bid);
    (*pool)->flush();
    bid = static_cast<uint16_t>((bid + 1) % kCount);
  }
}
BENCHMARK(BM_BufferRecycle);

}  // namespace
}  // namespace ringway::engine
