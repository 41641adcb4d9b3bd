// Phase driver of ringway-load's client subcommands (see run.hpp). The main thread never touches
// a socket: it starts workers, waits for them to connect, flips phases, samples counters and the
// target once per tick, and reports.
#include "run.hpp"

#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <memory>
#include <thread>
#include <vector>

#include "proc_stats.hpp"
#include "report.hpp"

namespace ringway::load {
namespace {

constexpr uint64_t kTickNs = 250'000'000;  // sampling period of counters and the target
constexpr uint64_t kNsPerSecond = 1'000'000'000;

void sleep_ns(uint64_t ns) {
  timespec ts{static_cast<time_t>(ns / kNsPerSecond), static_cast<long>(ns % kNsPerSecond)};
  ::nanosleep(&ts, nullptr);
}

Totals sum(const std::vector<std::unique_ptr<ThreadCounters>>& counters) {
  Totals t;
  for (const auto& c : counters) {
    t.bytes_sent += c->bytes_sent.load(std::memory_order_relaxed);
    t.bytes_received += c->bytes_received.load(std::memory_order_relaxed);
    t.requests += c->requests.load(std::memory_order_relaxed);
    t.established += c->established.load(std::memory_order_relaxed);
    for (size_t i = 0; i < t.errors.size(); ++i) {
      t.errors[i] += c->errors[i].load(std::memory_order_relaxed);
    }
  }
  return t;
}

// One iperf3-like line per second on stderr.
void print_progress(const Options& o, const char* phase, double from_s, double to_s,
                    const Totals& delta, const Totals& now) {
  double span = to_s - from_s > 0 ? to_s - from_s : 1e-9;
  std::string what;
  switch (o.command) {
    case Command::Stream:
      what =
          fmt::format("{:8.3f} Gbit/s  (up {:.3f}, down {:.3f})",
                      static_cast<double>(delta.bytes_sent + delta.bytes_received) * 8 / span / 1e9,
                      static_cast<double>(delta.bytes_sent) * 8 / span / 1e9,
                      static_cast<double>(delta.bytes_received) * 8 / span / 1e9);
      break;
    case Command::Rr:
      what = fmt::format("{:10.0f} req/s", static_cast<double>(delta.requests) / span);
      break;
    case Command::Crr:
      what = fmt::format("{:10.0f} conn/s", static_cast<double>(delta.requests) / span);
      break;
    case Command::Hold:
    case Command::Serve:
      break;
  }
  fmt::print(stderr, "[{:6.1f}-{:6.1f} s] {:<7} {}  open {}  errors {}\n", from_s, to_s, phase,
             what, now.established, now.error_total());
}

// Tracks the target's peak RSS by sampling, backing off when the tree is large (10k socat
// children) so the measurement does not eat the CPU the load needs.
class TargetSampler {
 public:
  explicit TargetSampler(int pid) : pid_(pid) {}
  void maybe_sample(uint64_t now) {
    if (pid_ <= 0 || now < next_) return;
    uint64_t start = now_ns();
    ProcessTreeSample s = sample_process_tree(pid_, false, false);
    uint64_t cost = now_ns() - start;
    if (s.ok) max_rss_kib_ = std::max(max_rss_kib_, s.rss_kib);
    next_ = now + std::max<uint64_t>(kTickNs, cost * 20);  // at most ~5% of one CPU
  }
  uint64_t max_rss_kib() const { return max_rss_kib_; }

 private:
  int pid_;
  uint64_t next_ = 0;
  uint64_t max_rss_kib_ = 0;
};

// hold: waits until the target's descriptor count stops growing (it accepts and connects
// upstream asynchronously), bounded by `deadline`.
ProcessTreeSample settle_target(int pid, uint64_t deadline) {
  ProcessTreeSample last = sample_process_tree(pid, false, true);
  int stable = 0;
  for (int i = 0; i < 200 && now_ns() < deadline && stable < 3; ++i) {
    sleep_ns(100'000'000);
    ProcessTreeSample s = sample_process_tree(pid, false, true);
    stable = s.fds == last.fds ? stable + 1 : 0;
    last = s;
  }
  return sample_process_tree(pid, true, true);
}

}  // namespace

int share_of(int total, int workers, int worker) {
  return total / workers + (worker < total % workers ? 1 : 0);
}

int first_of(int total, int workers, int worker) {
  return worker * (total / workers) + std::min(worker, total % workers);
}

int run_client(const Options& o, int threads, const WorkerBody& body) {
  Report report;
  report.options = &o;
  report.threads = threads;
  report.has_target = o.pid > 0;
  if (report.has_target && !sample_process_tree(o.pid, false, false).ok) {
    fmt::print(stderr, "ringway-load: no process {} to measure\n", o.pid);
    report.has_target = false;
  }
  if (o.command == Command::Hold && report.has_target) {
    report.hold_before = sample_process_tree(o.pid, true, true);
  }

  RunControl control;
  std::vector<std::unique_ptr<ThreadCounters>> counters;
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i)
    counters.push_back(std::make_unique<ThreadCounters>());
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&, i] { body(i, *counters[i], control); });
  }

  // Setup: connecting thousands of connections through a proxy takes a while; allow the connect
  // timeout plus a generous per-connection budget, and show progress meanwhile.
  const uint64_t setup_start = now_ns();
  const uint64_t setup_deadline =
      setup_start + static_cast<uint64_t>((o.timeout_s + 5 + o.connections / 500.0) * 1e9);
  uint64_t next_line = setup_start + kNsPerSecond;
  while (control.ready_workers.load() < threads && now_ns() < setup_deadline) {
    sleep_ns(10'000'000);
    if (o.progress && now_ns() >= next_line) {
      Totals t = sum(counters);
      fmt::print(stderr, "[setup {:5.1f} s] open {}  errors {}\n",
                 static_cast<double>(now_ns() - setup_start) / 1e9, t.established, t.error_total());
      next_line += kNsPerSecond;
    }
  }
  if (control.ready_workers.load() < threads) {
    fmt::print(stderr, "ringway-load: setup did not finish in time; measuring what is open\n");
  }
  if (o.command == Command::Hold) {
    report.held = sum(counters).established;
    if (report.has_target) {
      report.hold_after = settle_target(o.pid, now_ns() + 5 * kNsPerSecond);
    }
  }

  TargetSampler sampler(o.pid);
  auto run_phase = [&](Phase phase, double seconds, const char* name, Totals& start_totals) {
    control.phase.store(phase);
    const uint64_t start = now_ns();
    const auto end = start + static_cast<uint64_t>(seconds * 1e9);
    start_totals = sum(counters);
    Totals last = start_totals;
    uint64_t last_at = start;
    while (true) {
      uint64_t now = now_ns();
      if (now >= end) break;
      sleep_ns(std::min(kTickNs, end - now));
      now = now_ns();
      if (phase == Phase::Measure) sampler.maybe_sample(now);
      if (now - last_at >= kNsPerSecond || now >= end) {
        Totals t = sum(counters);
        if (o.progress && now - last_at > kNsPerSecond / 10) {
          print_progress(o, name, static_cast<double>(last_at - start) / 1e9,
                         static_cast<double>(now - start) / 1e9, t - last, t);
        }
        last = t;
        last_at = now;
      }
    }
    return now_ns() - start;
  };

  Totals before_warmup;
  Totals measure_start;
  if (o.warmup_s > 0) run_phase(Phase::Warmup, o.warmup_s, "warmup", before_warmup);
  if (report.has_target) {
    report.target_peak_reset = reset_peak_rss(o.pid);
    report.target_start = sample_process_tree(o.pid, false, false);
  }
  uint64_t measured_ns = run_phase(Phase::Measure, o.duration_s, "", measure_start);
  Totals measure_end = sum(counters);
  if (report.has_target) report.target_end = sample_process_tree(o.pid, false, false);
  control.phase.store(Phase::Stop);
  for (auto& w : workers)
    w.join();

  report.elapsed_s = static_cast<double>(measured_ns) / 1e9;
  report.measured = measure_end - measure_start;
  report.whole_run = sum(counters);
  report.target_rss_max_kib = std::max(sampler.max_rss_kib(), report.target_end.rss_kib);
  for (const auto& c : counters)
    report.latency.merge(c->latency);

  if (o.json) {
    print_table(report, stderr);
    print_json(report, stdout);
  } else {
    print_table(report, stdout);
  }
  bool any = report.measured.bytes_sent + report.measured.bytes_received +
                 report.measured.requests + report.held >
             0;
  return any ? 0 : 1;
}

}  // namespace ringway::load
