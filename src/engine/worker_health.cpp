// Active health checks (healthChecks[].tcpHealthCheck) on the worker's own ring: no thread per
// host. Host number k (counting the hosts of every health-checked upstream in config order) is
// checked by worker k % workers, one check at a time: socket with the upstream's options
// (tcpKeepalive, as sessions have) -> connect -> send `send` -> read until every `receive`
// block was seen in order -> close. A check that is not done within `timeout` has its ops
// cancelled and fails. Each result feeds the host's HealthState (thresholds), and its verdict
// goes to every worker through one atomic byte (UpstreamHostState::healthy).
//
// Ops carry the checker index as slot and the check's generation, so a completion of an older
// check can never be taken for the current one; a check's fd is closed only when none of its
// ops is in flight (the same rule sessions follow), and a worker that drains or hands over
// cancels its checks and exits only once check_ops_ is 0.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "ringway/core/log.hpp"
#include "ringway/net/upstream_socket.hpp"
#include "worker.hpp"

namespace ringway::engine {
namespace {

constexpr size_t kCheckBufferBytes = 4096;
constexpr const char* kStopped = "stopped";

uint64_t next_random(uint64_t& state) {
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1DULL;
}

}  // namespace

void Worker::start_health_checks() {
  checks_stopped_ = false;
  const auto& config = *shared_.config;
  if (checkers_.empty()) {
    check_rng_ = 0x94D049BB133111EBULL * (index_ + 1) | 1;
    uint64_t k = 0;
    for (uint32_t u = 0; u < config.upstreams.size(); ++u) {
      const auto& hc = config.upstreams[u].health_check;
      if (!hc) continue;
      for (uint32_t h = 0; h < shared_.upstreams[u].hosts.size(); ++h, ++k) {
        if (k % shared_.worker_count != index_) continue;
        HealthChecker& c = checkers_.emplace_back();
        c.upstream = u;
        c.host = h;
        c.state = HealthState(hc->healthy_threshold, hc->unhealthy_threshold);
      }
    }
  }
  for (uint32_t i = 0; i < checkers_.size(); ++i) {
    HealthChecker& c = checkers_[i];
    if (c.inflight > 0) continue;  // still finishing: conclude_check() schedules it
    // The first check at once, spread by initialJitter so that many hosts do not all connect
    // in the same tick.
    const auto& hc = *config.upstreams[c.upstream].health_check;
    const int64_t jitter = hc.initial_jitter.count();
    schedule_check(
        i,
        now_ms_ + (jitter > 0 ? static_cast<int64_t>(next_random(check_rng_) % (jitter + 1)) : 0));
  }
}

void Worker::stop_health_checks() {
  if (checks_stopped_) return;
  checks_stopped_ = true;
  for (uint32_t i = 0; i < checkers_.size(); ++i) {
    HealthChecker& c = checkers_[i];
    timers_.cancel(c.timer);
    c.timer = {};
    if (c.inflight > 0 && c.result == HealthChecker::Result::Pending) check_fail(i, kStopped);
  }
}

void Worker::schedule_check(uint32_t i, int64_t at_ms) {
  const uint64_t payload = (static_cast<uint64_t>(TimerKind::HealthCheck) << 56) | i;
  checkers_[i].timer = timers_.insert(tick_at(at_ms), payload);
}

void Worker::on_check_timer(uint32_t i) {
  HealthChecker& c = checkers_[i];
  c.timer = {};
  if (checks_stopped_) return;
  const auto& up = shared_.config->upstreams[c.upstream];
  const net::SocketAddress& addr = shared_.upstreams[c.upstream].hosts[c.host];
  ++c.generation;
  c.result = HealthChecker::Result::Pending;
  c.failure = "";
  c.sent = 0;
  c.next_block = 0;
  c.seen.clear();
  auto fd = net::open_upstream_socket(addr.family(), shared_.upstream_options[c.upstream]);
  if (!fd) {
    // A local shortage says nothing about the host: no verdict, try again next interval.
    log::debug("worker {}: health check of {}: {}", index_, addr.to_string(), fd.error().message);
    schedule_check(i, now_ms_ + up.health_check->interval.count());
    return;
  }
  c.fd = *fd;
  io_uring_sqe* e = sqe(tag(Op::CheckConnect, i, c.generation));
  if (e == nullptr) {
    ::close(c.fd);
    c.fd = -1;
    schedule_check(i, now_ms_ + up.health_check->interval.count());
    return;
  }
  io_uring_prep_connect(e, c.fd, addr.get(), addr.length);
  ++c.inflight;
  ++check_ops_;
  const uint64_t payload = (static_cast<uint64_t>(TimerKind::HealthTimeout) << 56) |
                           (static_cast<uint64_t>(c.generation) << 32) | i;
  c.timer = timers_.insert(tick_at(now_ms_ + up.health_check->timeout.count()), payload);
}

void Worker::on_check_timeout(uint32_t i, uint16_t generation) {
  HealthChecker& c = checkers_[i];
  if (c.generation != generation) return;
  c.timer = {};
  if (c.inflight == 0 || c.result != HealthChecker::Result::Pending) return;
  check_fail(i, "timeout");
}

// A failure: recorded once; ops still in flight are cancelled, and the check concludes when
// the last of them has completed.
void Worker::check_fail(uint32_t i, const char* why) {
  HealthChecker& c = checkers_[i];
  if (c.result != HealthChecker::Result::Pending) return;
  c.result = HealthChecker::Result::Failed;
  c.failure = why;
  if (c.inflight == 0) {
    conclude_check(i);
    return;
  }
  io_uring_sqe* e = sqe(tag(Op::CheckCancel, i, c.generation));
  if (e == nullptr) {
    ::shutdown(c.fd, SHUT_RDWR);  // completes the pending socket op without the ring
    return;
  }
  io_uring_prep_cancel_fd(e, c.fd, IORING_ASYNC_CANCEL_ALL);
  ++c.inflight;
  ++check_ops_;
}

void Worker::on_check_op(uint32_t i, uint16_t generation, Op op, int res) {
  if (i >= checkers_.size()) return;
  HealthChecker& c = checkers_[i];
  --check_ops_;
  --c.inflight;
  if (generation != c.generation) return;  // cannot happen: a check ends with its last op
  if (c.result != HealthChecker::Result::Pending || op == Op::CheckCancel) {
    if (c.inflight == 0) conclude_check(i);
    return;
  }
  const auto& hc = *shared_.config->upstreams[c.upstream].health_check;
  if (op == Op::CheckConnect) {
    if (res < 0)
      return check_fail(i, res == -ECONNREFUSED ? "connection refused" : "connect failed");
  } else if (op == Op::CheckSend) {
    if (res < 0) return check_fail(i, "send failed");
    c.sent += static_cast<size_t>(res);
  } else if (op == Op::CheckRecv) {
    if (res <= 0)
      return check_fail(i, res == 0 ? "closed before the expected reply" : "recv failed");
    c.seen.append(c.buffer.get(), static_cast<size_t>(res));
    // Every block must appear, in order, not necessarily adjacent (Envoy's tcp_health_check).
    while (c.next_block < hc.receive.size()) {
      const std::string& block = hc.receive[c.next_block];
      const size_t at = c.seen.find(block);
      if (at == std::string::npos) {
        // Keep only what could still begin the block, so `seen` stays bounded.
        if (!block.empty() && c.seen.size() >= block.size()) {
          c.seen.erase(0, c.seen.size() - (block.size() - 1));
        }
        break;
      }
      c.seen.erase(0, at + block.size());
      ++c.next_block;
    }
  }
  check_next_op(i);
}

void Worker::check_next_op(uint32_t i) {
  HealthChecker& c = checkers_[i];
  const auto& hc = *shared_.config->upstreams[c.upstream].health_check;
  io_uring_sqe* e = nullptr;
  if (c.sent < hc.send.size()) {
    e = sqe(tag(Op::CheckSend, i, c.generation));
    if (e == nullptr) return check_fail(i, "io_uring full");
    io_uring_prep_send(e, c.fd, hc.send.data() + c.sent, hc.send.size() - c.sent, MSG_NOSIGNAL);
  } else if (c.next_block < hc.receive.size()) {
    if (!c.buffer) c.buffer = std::make_unique<char[]>(kCheckBufferBytes);
    e = sqe(tag(Op::CheckRecv, i, c.generation));
    if (e == nullptr) return check_fail(i, "io_uring full");
    io_uring_prep_recv(e, c.fd, c.buffer.get(), kCheckBufferBytes, 0);
  } else {
    c.result = HealthChecker::Result::Passed;
    conclude_check(i);
    return;
  }
  ++c.inflight;
  ++check_ops_;
}

int64_t Worker::next_check_delay_ms(const HealthChecker& c, bool changed) {
  const auto& hc = *shared_.config->upstreams[c.upstream].health_check;
  const bool healthy = c.state.healthy();
  const config::Duration unhealthy_interval = hc.unhealthy_interval.value_or(hc.interval);
  config::Duration d = healthy ? hc.interval : unhealthy_interval;
  if (changed) {
    d = healthy ? hc.healthy_edge_interval.value_or(hc.interval)
                : hc.unhealthy_edge_interval.value_or(unhealthy_interval);
  }
  int64_t ms = d.count();
  // intervalJitter (absolute) and intervalJitterPercent (of the interval) both add a random
  // delay in [0, jitter], so checks of many hosts drift apart instead of bunching up.
  const int64_t jitter = hc.interval_jitter.count();
  if (jitter > 0) ms += static_cast<int64_t>(next_random(check_rng_) % (jitter + 1));
  const int64_t pct = ms * hc.interval_jitter_percent / 100;
  if (pct > 0) ms += static_cast<int64_t>(next_random(check_rng_) % (pct + 1));
  return std::max<int64_t>(ms, 1);
}

void Worker::conclude_check(uint32_t i) {
  HealthChecker& c = checkers_[i];
  if (c.fd >= 0) {
    ::close(c.fd);
    c.fd = -1;
  }
  timers_.cancel(c.timer);
  c.timer = {};
  if (c.failure == kStopped) {
    // Cut short by a drain or hand-over: no verdict. (Checks restarted meanwhile go on.)
    if (!checks_stopped_) schedule_check(i, now_ms_);
    return;
  }
  const bool passed = c.result == HealthChecker::Result::Passed;
  const bool changed = passed ? c.state.on_success() : c.state.on_failure();
  UpstreamHostState& state = *shared_.host_states[c.upstream];
  const uint8_t healthy = c.state.healthy() ? 1 : 0;
  const uint8_t was = state.healthy[c.host].exchange(healthy, std::memory_order_relaxed);
  if (was != healthy) {
    (healthy ? state.became_healthy : state.became_unhealthy)[c.host].fetch_add(
        1, std::memory_order_relaxed);
    const std::string host = shared_.upstreams[c.upstream].hosts[c.host].to_string();
    if (healthy) {
      log::notice("upstream {}: host {} is healthy ({} checks passed in a row)",
                  shared_.upstream_ids[c.upstream], host, c.state.successes_in_a_row());
    } else {
      log::warning("upstream {}: host {} is unhealthy ({} checks failed in a row, last: {})",
                   shared_.upstream_ids[c.upstream], host, c.state.failures_in_a_row(), c.failure);
    }
  }
  if (!checks_stopped_)
    schedule_check(i, now_ms_ + next_check_delay_ms(c, changed || was != healthy));
}

}  // namespace ringway::engine
