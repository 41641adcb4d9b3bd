// Human table and JSON output of a ringway-load run (see report.hpp).
#include "report.hpp"

#include <fmt/format.h>

#include <string>

namespace ringway::load {

uint64_t Totals::error_total() const {
  uint64_t total = 0;
  for (uint64_t e : errors)
    total += e;
  return total;
}

Totals operator-(const Totals& a, const Totals& b) {
  Totals d;
  d.bytes_sent = a.bytes_sent - b.bytes_sent;
  d.bytes_received = a.bytes_received - b.bytes_received;
  d.requests = a.requests - b.requests;
  d.established = a.established;
  for (size_t i = 0; i < d.errors.size(); ++i)
    d.errors[i] = a.errors[i] - b.errors[i];
  return d;
}

std::string_view command_name(Command command) {
  switch (command) {
    case Command::Serve:
      return "serve";
    case Command::Stream:
      return "stream";
    case Command::Rr:
      return "rr";
    case Command::Crr:
      return "crr";
    case Command::Hold:
      return "hold";
  }
  return "?";
}

double Report::gbit_per_s() const {
  double bytes = static_cast<double>(measured.bytes_sent + measured.bytes_received);
  return bytes * 8 / seconds() / 1e9;
}

namespace {

double us(uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

// Per-connection growth of a target between two samples; 0 when nothing was held.
double per_connection(uint64_t after, uint64_t before, uint64_t held) {
  if (held == 0) return 0;
  return (static_cast<double>(after) - static_cast<double>(before)) / static_cast<double>(held);
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"";
}

std::string json_sample(const ProcessTreeSample& s) {
  return fmt::format(
      "{{\"ok\": {}, \"processes\": {}, \"threads\": {}, \"cpu_s\": {:.3f}, \"cpu_sched_s\": "
      "{:.4f}, "
      "\"rss_kib\": {}, "
      "\"hwm_kib\": {}, \"pss_kib\": {}, \"fds\": {}}}",
      s.ok, s.processes, s.threads, s.cpu_s, s.cpu_sched_s, s.rss_kib, s.hwm_kib, s.pss_kib, s.fds);
}

}  // namespace

void print_table(const Report& r, std::FILE* out) {
  const Options& o = *r.options;
  fmt::print(out, "\n{} -> {}  ({} connections, {} threads, {} B, {:.2f} s measured)\n",
             command_name(o.command), o.target, o.connections, r.threads, o.size, r.elapsed_s);
  fmt::print(out, "  {:<28} {}\n", "metric", "value");
  switch (o.command) {
    case Command::Stream:
      fmt::print(out, "  {:<28} {:.3f}\n", "Gbit/s total", r.gbit_per_s());
      fmt::print(out, "  {:<28} {:.3f}\n", "Gbit/s per connection",
                 r.gbit_per_s() / (o.connections > 0 ? o.connections : 1));
      fmt::print(out, "  {:<28} {}\n", "bytes sent", r.measured.bytes_sent);
      fmt::print(out, "  {:<28} {}\n", "bytes received", r.measured.bytes_received);
      break;
    case Command::Rr:
    case Command::Crr:
      fmt::print(out, "  {:<28} {:.0f}\n",
                 o.command == Command::Rr ? "requests/s" : "connections/s", r.requests_per_s());
      fmt::print(out, "  {:<28} {}\n", "completed", r.measured.requests);
      fmt::print(out, "  {:<28} {:.1f} / {:.1f} / {:.1f} / {:.1f}\n",
                 "latency p50/p90/p99/p99.9 us", us(r.latency.percentile(50)),
                 us(r.latency.percentile(90)), us(r.latency.percentile(99)),
                 us(r.latency.percentile(99.9)));
      fmt::print(out, "  {:<28} {:.1f} / {:.1f}\n", "latency mean/max us", r.latency.mean() / 1000,
                 us(r.latency.max()));
      break;
    case Command::Hold:
      fmt::print(out, "  {:<28} {} of {}\n", "connections held", r.held, o.connections);
      fmt::print(out, "  {:<28} {}\n", "still open at the end", r.measured.established);
      if (r.has_target) {
        fmt::print(out, "  {:<28} {} -> {} KiB ({:.2f} KiB/connection)\n", "target RSS",
                   r.hold_before.rss_kib, r.hold_after.rss_kib,
                   per_connection(r.hold_after.rss_kib, r.hold_before.rss_kib, r.held));
        fmt::print(out, "  {:<28} {} -> {} KiB ({:.2f} KiB/connection)\n", "target PSS",
                   r.hold_before.pss_kib, r.hold_after.pss_kib,
                   per_connection(r.hold_after.pss_kib, r.hold_before.pss_kib, r.held));
        fmt::print(out, "  {:<28} {} -> {} ({:.2f}/connection)\n", "target fds", r.hold_before.fds,
                   r.hold_after.fds, per_connection(r.hold_after.fds, r.hold_before.fds, r.held));
      }
      break;
    case Command::Serve:
      break;
  }
  if (r.has_target) {
    fmt::print(out, "  {:<28} {:.3f} s ({} processes, {} threads)\n", "target CPU",
               cpu_delta(r.target_start, r.target_end), r.target_end.processes,
               r.target_end.threads);
    fmt::print(out, "  {:<28} {} KiB sampled, {} KiB VmHWM{}\n", "target peak RSS",
               r.target_rss_max_kib, r.target_end.hwm_kib,
               r.target_peak_reset ? "" : " (since start: reset refused)");
  }
  fmt::print(out, "  {:<28} {}", "errors (whole run)", r.whole_run.error_total());
  for (int i = 0; i < kErrorCauseCount; ++i) {
    if (r.whole_run.errors[i] != 0) {
      fmt::print(out, "  {}={}", error_cause_name(static_cast<ErrorCause>(i)),
                 r.whole_run.errors[i]);
    }
  }
  fmt::print(out, "\n");
}

void print_json(const Report& r, std::FILE* out) {
  const Options& o = *r.options;
  std::string errors;
  for (int i = 0; i < kErrorCauseCount; ++i) {
    errors += fmt::format("{}\"{}\": {}", i ? ", " : "",
                          error_cause_name(static_cast<ErrorCause>(i)), r.whole_run.errors[i]);
  }
  std::string text = fmt::format(
      "{{\"command\": \"{}\", \"label\": {}, \"target\": {}, \"connections\": {}, \"threads\": {}, "
      "\"size\": {}, \"warmup_s\": {}, \"duration_s\": {:.3f}, \"bytes_sent\": {}, "
      "\"bytes_received\": {}, \"gbit_per_s\": {:.4f}, \"gbit_per_s_per_connection\": {:.4f}, "
      "\"requests\": {}, \"requests_per_s\": {:.1f}, \"established_at_end\": {}, ",
      command_name(o.command), json_string(o.label), json_string(o.target), o.connections,
      r.threads, o.size, o.warmup_s, r.elapsed_s, r.measured.bytes_sent, r.measured.bytes_received,
      r.gbit_per_s(), r.gbit_per_s() / (o.connections > 0 ? o.connections : 1), r.measured.requests,
      r.requests_per_s(), r.measured.established);
  const Histogram& h = r.latency;
  text += fmt::format(
      "\"latency_us\": {{\"count\": {}, \"mean\": {:.2f}, \"p50\": {:.2f}, \"p90\": {:.2f}, "
      "\"p99\": {:.2f}, \"p99_9\": {:.2f}, \"max\": {:.2f}}}, ",
      h.count(), h.mean() / 1000, us(h.percentile(50)), us(h.percentile(90)), us(h.percentile(99)),
      us(h.percentile(99.9)), us(h.max()));
  text +=
      fmt::format("\"errors\": {{{}}}, \"errors_total\": {}", errors, r.whole_run.error_total());
  if (o.command == Command::Hold) {
    text += fmt::format(
        ", \"hold\": {{\"requested\": {}, \"held\": {}, \"target_before\": {}, "
        "\"target_after\": {}, \"rss_kib_per_connection\": {:.3f}, "
        "\"pss_kib_per_connection\": {:.3f}, \"fds_per_connection\": {:.3f}}}",
        o.connections, r.held, json_sample(r.hold_before), json_sample(r.hold_after),
        per_connection(r.hold_after.rss_kib, r.hold_before.rss_kib, r.held),
        per_connection(r.hold_after.pss_kib, r.hold_before.pss_kib, r.held),
        per_connection(r.hold_after.fds, r.hold_before.fds, r.held));
  }
  if (r.has_target) {
    text += fmt::format(
        ", \"target_process\": {{\"pid\": {}, \"cpu_s\": {:.4f}, \"rss_max_kib\": {}, "
        "\"hwm_kib\": {}, \"peak_reset\": {}, \"start\": {}, \"end\": {}}}",
        o.pid, cpu_delta(r.target_start, r.target_end), r.target_rss_max_kib, r.target_end.hwm_kib,
        r.target_peak_reset, json_sample(r.target_start), json_sample(r.target_end));
  }
  text += "}\n";
  std::fputs(text.c_str(), out);
  std::fflush(out);
}

}  // namespace ringway::load
