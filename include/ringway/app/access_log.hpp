// The access log: every gateway's `options.accessLoggingService.accessLog[].fileSink`, one line
// per finished session (text from an Envoy-style stringFormat, or one JSON object per line from
// jsonFormat).
//
// Workers hand records over through engine::SessionSink, concurrently and on the data path, so
// a record is rendered on the worker into a per-file memory buffer under a short mutex and a
// flusher thread writes buffers out every kFlushInterval, or sooner once one holds
// kFlushThreshold bytes. A worker never calls write(2). If the disk cannot keep up, a file's
// buffer stops growing at kMaxBuffered and further lines are dropped and counted (logged by the
// flusher) rather than blocking forwarding or growing memory without bound.
//
// Files are opened once at start-up (O_APPEND, created 0640). There is no reopen on SIGHUP: to
// rotate, restart the daemon (the listen sockets survive a restart with no lost connection), or
// let logrotate use `copytruncate` (O_APPEND writes then continue at the new end of file).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ringway/config/access_log_format.hpp"
#include "ringway/config/model.hpp"
#include "ringway/core/result.hpp"
#include "ringway/engine/session_record.hpp"

namespace ringway::app {

// Renders one session as one line (ending in '\n') in a fileSink's format. Immutable after
// construction, so workers share one instance without locking.
class AccessLogFormatter {
 public:
  // Parses the sink's stringFormat (empty: the default line; a missing final newline is added)
  // or jsonFormat values. The Error names the field and the operator when a format is invalid.
  static Result<AccessLogFormatter> from_sink(const config::AccessLogFileSink& sink);
  static AccessLogFormatter text(config::ParsedFormat format);
  static AccessLogFormatter json(std::vector<std::pair<std::string, config::ParsedFormat>> fields);

  // Appends the line for `record` to `out`. A value that is not available prints "-" in text;
  // in JSON a value that is exactly one operator is typed: a number for bytes and durations, a
  // string, or null when missing.
  void render(const engine::SessionRecord& record, std::string& out) const;

 private:
  AccessLogFormatter() = default;

  bool json_ = false;
  config::ParsedFormat text_;
  std::vector<std::pair<std::string, config::ParsedFormat>> fields_;
};

class AccessLog {
 public:
  static constexpr std::chrono::milliseconds kFlushInterval{100};
  static constexpr size_t kFlushThreshold = 64 * 1024;
  static constexpr size_t kMaxBuffered = 8 * 1024 * 1024;

  // Opens every gateway's file sinks and starts the flusher (only when there is at least one
  // sink). An Error names the gateway and the path that cannot be opened, so the server can
  // refuse to start.
  static Result<std::unique_ptr<AccessLog>> open(const config::Config& config);
  // Stops the flusher and writes out everything buffered.
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // True when no gateway has a file sink (the server then sets no session sink at all, so the
  // engine builds no records).
  bool empty() const { return gateways_.empty(); }

  // The callback for Engine::set_session_sink. It holds a pointer to this AccessLog: the engine
  // must be joined before the AccessLog is destroyed.
  engine::SessionSink sink();

  // Renders and buffers one record (what the sink calls). Safe from any thread.
  void record(const engine::SessionRecord& record);

  // Stops the flusher thread after a last flush of every buffer. Idempotent. Records that
  // arrive later are still buffered and written by the destructor.
  void stop();

  // Lines dropped because a file's buffer was full, over all files.
  uint64_t dropped_lines() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct File {
    std::string path;
    int fd = -1;
    std::mutex mutex;               // guards `buffer`
    std::string buffer;             // rendered lines waiting for the flusher
    std::string in_flight;          // the flusher's side of the swap (only the flusher touches it)
    uint64_t dropped = 0;           // guarded by `mutex`
    uint64_t dropped_reported = 0;  // flusher only
    std::chrono::steady_clock::time_point dropped_reported_at{};  // flusher only
    bool write_failing = false;  // flusher only: log a failure once, and the recovery
  };
  struct Sink {
    AccessLogFormatter formatter;
    File* file;
  };
  struct GatewaySinks {
    std::string gateway;  // Gateway::id()
    std::vector<Sink> sinks;
  };

  AccessLog() = default;
  void flusher_loop();
  // `final`: the last flush at stop, which reports a dropped-line count without rate limit.
  void flush_all(bool final);
  void flush(File& file, bool final);
  void request_flush();

  std::vector<std::unique_ptr<File>> files_;
  std::vector<GatewaySinks> gateways_;
  std::atomic<uint64_t> dropped_{0};

  std::mutex flusher_mutex_;  // guards wake_ and stopping_ for the condition variable
  std::condition_variable flusher_cv_;
  bool wake_ = false;
  bool stopping_ = false;
  std::atomic<bool> wake_pending_{false};  // a worker already asked for an early flush
  std::thread flusher_;
};

}  // namespace ringway::app
