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
  double cpu_s = 0;      // utime + stime (+ reaped children's), all threads, whole tree
  uint64_t rss_kib = 0;  // sum of VmRSS: counts pages shared between processes more than once
  uint64_t hwm_kib = 0;  // sum of VmHWM (peak RSS since start or the last reset_peak_rss)
  uint64_t pss_kib = 0;  // sum of Pss: shared pages divided among sharers (only when asked)
  uint64_t fds = 0;      // open descriptors (only when asked)
};

// `pid` followed by all its descendants. Scans /proc, because /proc/PID/task/*/children needs a
// kernel option that is not always there.
std::vector<int> process_tree(int pid);
ProcessTreeSample sample_process_tree(int pid, bool with_pss, bool with_fds);
// Resets VmHWM of every process of the tree (clear_refs 5), so a peak belongs to one run.
// Returns false when the kernel or permissions refuse.
bool reset_peak_rss(int pid);

}  // namespace ringway::load
