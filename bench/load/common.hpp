// Shared vocabulary of ringway-load: the options every subcommand understands, error causes, the
// per-thread counters the workers bump and the reporter reads, and the run phases.
#pragma once

#include <netinet/in.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "histogram.hpp"

namespace ringway::load {

enum class Command { Serve, Stream, Rr, Crr, Hold };
enum class ServeMode { Echo, Sink, Source };
enum class Direction { Up, Down, Both };

struct Options {
  Command command = Command::Rr;
  std::string target = "127.0.0.1:9000";  // serve: the address to listen on
  int connections = 1;
  double duration_s = 10;  // measured time; serve: 0 = until SIGINT/SIGTERM
  double warmup_s = 0;     // load runs this long before measuring starts
  size_t size = 0;         // 0 = per-command default (64 B messages, 128 KiB stream writes)
  int threads = 0;         // 0 = CPUs in the affinity mask, never more than connections
  bool json = false;
  bool progress = true;
  std::string source_ips;  // "127.0.0.2-127.0.0.9" or a comma list
  ServeMode mode = ServeMode::Echo;
  Direction direction = Direction::Up;
  bool keepalive = false;
  int pid = 0;           // target process (and its children) to measure
  double timeout_s = 5;  // connect and per-response deadline
  std::string label;     // free text copied into the JSON (bench.sh puts the target name here)
};

// Why an operation failed. Every failure lands in exactly one bucket and is reported.
enum class ErrorCause {
  ConnectRefused,
  ConnectTimeout,
  AddressUnavailable,  // EADDRNOTAVAIL / EADDRINUSE: out of ephemeral ports or source addresses
  FdLimit,             // EMFILE / ENFILE
  Reset,               // ECONNRESET / EPIPE
  Timeout,             // no (complete) response within --timeout
  ShortRead,           // the peer closed before the whole response arrived
  ClosedByPeer,        // hold: an idle connection was closed by the other side
  Other,
  kCount,
};
constexpr int kErrorCauseCount = static_cast<int>(ErrorCause::kCount);
std::string_view error_cause_name(ErrorCause cause);
// The cause of a failed connect (errno), and of a failed read/write on an established socket.
ErrorCause connect_error_cause(int error);
ErrorCause io_error_cause(int error);

// Counters owned by one worker thread and read by the reporter while the thread runs. Each
// counter has one writer, so relaxed atomics are enough; the cache-line alignment keeps threads
// from sharing lines.
struct alignas(64) ThreadCounters {
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> bytes_received{0};
  std::atomic<uint64_t> requests{0};     // rr: responses complete; crr: connections complete
  std::atomic<uint64_t> established{0};  // connections currently open (hold, stream, rr)
  std::array<std::atomic<uint64_t>, kErrorCauseCount> errors{};
  Histogram latency;  // written by the worker only while measuring; read after join

  void add_error(ErrorCause cause) {
    errors[static_cast<size_t>(cause)].fetch_add(1, std::memory_order_relaxed);
  }
};

// Warmup: load runs, nothing is recorded into histograms. Measure: everything counts. Stop:
// workers finish what they are doing and return.
enum class Phase : int { Setup, Warmup, Measure, Stop };

struct RunControl {
  std::atomic<Phase> phase{Phase::Setup};
  std::atomic<int> ready_workers{0};  // workers that finished connecting
  bool measuring() const { return phase.load(std::memory_order_relaxed) == Phase::Measure; }
  bool stopping() const { return phase.load(std::memory_order_relaxed) == Phase::Stop; }
};

// Nanoseconds on the monotonic clock (vDSO, no syscall).
uint64_t now_ns();

// Source addresses to bind before connect, parsed from "a.b.c.d-a.b.c.e" or "a,b,c". Empty
// input gives an empty list (let the kernel choose). Returns false on a malformed list.
bool parse_source_ips(std::string_view text, std::vector<in_addr>& out);
// "host:port" with an IPv4 literal (or "localhost"), or "[v6]:port".
bool parse_endpoint(std::string_view text, sockaddr_storage& out, socklen_t& length);

// CPUs in this process's affinity mask (what --threads 0 means).
int available_cpus();

}  // namespace ringway::load
