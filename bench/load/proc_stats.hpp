// What a target process costs: CPU seconds, resident memory and open descriptors of a process
// and all its descendants (nginx workers, socat's forked children), read from /proc.
#pragma once

#include <cstdint>
#include <vector>

namespace ringway::load {

struct ProcessTreeSample {
  bool ok = false;  // false when the process is gone or /proc is unreadable
  int processes = 0;
  int threads = 0;
  double cpu_s = 0;  // utime + stime (+ reaped children's), all threads, whole tree
  // The same from the scheduler's nanosecond run times of live threads (schedstat). Tick-based
  // utime misses processes that run only microseconds per tick (256 socat children doing small
  // requests); schedstat misses threads that already exited. cpu_delta() takes the larger.
  double cpu_sched_s = 0;
  uint64_t rss_kib = 0;  // sum of VmRSS: counts pages shared between processes more than once
  uint64_t hwm_kib = 0;  // sum of VmHWM (peak RSS since start or the last reset_peak_rss)
  uint64_t pss_kib = 0;  // sum of Pss: shared pages divided among sharers (only when asked)
  uint64_t fds = 0;      // open descriptors (only when asked)
};

// CPU seconds the tree used between two samples (see cpu_sched_s).
double cpu_delta(const ProcessTreeSample& start, const ProcessTreeSample& end);

// `pid` followed by all its descendants. Scans /proc, because /proc/PID/task/*/children needs a
// kernel option that is not always there.
std::vector<int> process_tree(int pid);
ProcessTreeSample sample_process_tree(int pid, bool with_pss, bool with_fds);
// Resets VmHWM of every process of the tree (clear_refs 5), so a peak belongs to one run.
// Returns false when the kernel or permissions refuse.
bool reset_peak_rss(int pid);

}  // namespace ringway::load
