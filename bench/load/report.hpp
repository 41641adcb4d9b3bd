// Results of one ringway-load client run and their two renderings: the human table and JSON.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>

#include "common.hpp"
#include "proc_stats.hpp"

namespace ringway::load {

struct Totals {
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t requests = 0;
  uint64_t established = 0;
  std::array<uint64_t, kErrorCauseCount> errors{};
  uint64_t error_total() const;
};
Totals operator-(const Totals& a, const Totals& b);

struct Report {
  const Options* options = nullptr;
  int threads = 0;
  double elapsed_s = 0;  // the measured window
  Totals measured;       // counters over the measured window
  Totals whole_run;      // errors are reported over the whole run: nothing is hidden in warmup
  Histogram latency;     // the measured window
  // Target process (--pid), over the measured window.
  bool has_target = false;
  ProcessTreeSample target_start, target_end;
  uint64_t target_rss_max_kib = 0;  // sampled sum of VmRSS
  bool target_peak_reset = false;   // VmHWM was reset at the start of the window
  // hold: the target before any connection and once all were established.
  ProcessTreeSample hold_before, hold_after;
  uint64_t held = 0;  // established when the hold began

  double seconds() const { return elapsed_s > 0 ? elapsed_s : 1e-9; }
  double gbit_per_s() const;
  double requests_per_s() const { return static_cast<double>(measured.requests) / seconds(); }
};

void print_table(const Report& report, std::FILE* out);
void print_json(const Report& report, std::FILE* out);
std::string_view command_name(Command command);

}  // namespace ringway::load
