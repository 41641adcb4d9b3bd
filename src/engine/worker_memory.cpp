// A worker's buffer memory under pressure: who may hold how many of the pool's buffers, when
// new sessions are refused, and the last resort when the pool is held hostage anyway.
//
// The pool (settings.perWorkerBufferLimitBytes / 32 KiB buffers) is shared by every session of
// the worker. A direction whose destination stops reading keeps what it received until the
// destination reads again, so without a rule a few dozen such directions would hold the whole
// pool and freeze every other session of the worker (a recv finds no buffer). The rules:
//  1. one buffer each first: a direction may hold more than one buffer (up to its
//     perConnectionBufferLimitBytes) only while the buffers held beyond the first of each
//     direction, all directions together, stay under a quarter of the pool above the reserve.
//     Holding many buffers only happens when a destination is slower than its source, so this
//     mostly bites stalled and slow readers; a fast bulk stream's sends complete and its queue
//     stays short. The rest of the pool then has room for (pool - reserve) x 3/4 directions
//     that hold one buffer each: 1,344 stalled directions with the default 64 MiB;
//  2. admission: below `reserve_` free buffers, new sessions are accepted and closed at once
//     (counted, logged at most once a second), as Envoy's overload manager stops accepting;
//  3. last resort: if a direction has still waited for a buffer for kStarvedResetMs while the
//     pool is empty, the sessions holding the most buffers without moving any for kStalledMs
//     are reset (enough to serve every waiting direction and restore the reserve), as Envoy's
//     reset_high_memory_stream overload action does. Rules 1 and 2 make this rare (a burst of
//     sessions admitted together that all stall at once).
#include <algorithm>
#include <functional>
#include <utility>
#include <vector>

#include "ringway/core/log.hpp"
#include "worker.hpp"

namespace ringway::engine {
namespace {

constexpr int64_t kStarvedResetMs = 1000;  // a recv may wait this long for a buffer
constexpr int64_t kStalledMs = 1000;       // a session that moved no byte for this long is stalled
constexpr int64_t kLogIntervalMs = 1000;   // at most one overload log line per second per worker

}  // namespace

uint32_t Worker::hold_limit(const Direction& dd) const {
  // Every buffer not free is queued in some direction, so the pool's use splits into one
  // buffer per holding direction plus the excess beyond those first buffers.
  const uint32_t used = pool_->count() - pool_->free_count();
  const uint32_t excess = used > holders_ ? used - holders_ : 0;
  return excess < excess_budget_ ? dd.pause_at : 1;
}

bool Worker::refuse_when_overloaded(uint32_t slot) {
  if (pool_->free_count() >= reserve_) return false;
  Session& s = sessions_.at(slot);
  gateway_stats_[s.gateway].add(GatewayStat::downstream_connections_overload_total);
  if (now_ms_ - last_overload_log_ms_ >= kLogIntervalMs) {
    last_overload_log_ms_ = now_ms_;
    log::warning(
        "worker {}: buffer memory at its cap ({} of {} buffers of {} KiB held by {} sessions); "
        "new connections are closed until sessions drain: raise settings.perWorkerBufferLimitBytes "
        "or lower perConnectionBufferLimitBytes",
        index_, pool_->count() - pool_->free_count(), pool_->count(), pool_->buffer_size() / 1024,
        sessions_.live() - 1);
  }
  s.reason = EndReason::Overload;
  s.state = SessionState::Closing;
  finish(slot);
  return true;
}

void Worker::rearm_starved() {
  uint32_t budget = pool_->free_count();
  while (!starved_.empty() && budget > 0) {
    const Tag t = Tag::decode(starved_.front().tag);
    starved_.pop_front();
    Session* s = sessions_.find(t.slot, t.generation);
    if (s == nullptr || s->state != SessionState::Established) continue;
    Direction& dd = s->dir(t.dir);
    if (!dd.starved) continue;
    dd.starved = false;
    arm_recv(t.slot, t.dir);
    --budget;
  }
}

void Worker::relieve_starvation() {
  if (starved_.empty() || pool_->free_count() > 0) return;
  const int64_t waited = now_ms_ - starved_.front().since_ms;
  if (waited < kStarvedResetMs) return;
  if (now_ms_ - last_relief_ms_ < kStarvedResetMs) return;  // one round per period at most
  last_relief_ms_ = now_ms_;
  // Stalled sessions (no byte moved for kStalledMs) that hold buffers, largest holders first.
  std::vector<std::pair<uint32_t, uint32_t>> stalled;  // (buffers held, slot)
  for (uint32_t slot = 0; slot < sessions_.high_water(); ++slot) {
    const Session& s = sessions_.at(slot);
    if (s.state != SessionState::Established) continue;
    if (now_ms_ - s.last_activity_ms < kStalledMs) continue;
    const uint32_t held = s.dirs[0].queued_count + s.dirs[1].queued_count;
    if (held > 0) stalled.emplace_back(held, slot);
  }
  if (stalled.empty()) return;  // everyone moves: the shortage passes by itself
  std::sort(stalled.begin(), stalled.end(), std::greater<>());
  // Free enough for every direction waiting now plus the reserve, so that the waiting sessions
  // are served in this round (they are served in FIFO order, and stalled sessions' own
  // directions may be ahead of them) and admission opens again.
  const auto wanted = static_cast<uint32_t>(starved_.size()) + reserve_;
  uint32_t freed = 0;
  uint32_t victims = 0;
  for (const auto& [held, slot] : stalled) {
    if (freed >= wanted) break;
    freed += held;
    ++victims;
    worker_stats_.add(WorkerStat::overload_resets_total);
    // Its peers stopped reading: both sides see a reset, not a clean end that hides the loss.
    abort_session(slot, EndReason::Overload, true, true);
  }
  log::warning(
      "worker {}: buffer pool empty and a session starved for {} ms: reset {} stalled "
      "sessions holding {} buffers (of {}); raise settings.perWorkerBufferLimitBytes if "
      "this is legitimate load",
      index_, waited, victims, freed, pool_->count());
}

}  // namespace ringway::engine
