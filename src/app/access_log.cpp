// The access log: rendering session records in a fileSink's format (on the worker that ran the
// session) and the flusher thread that writes the per-file buffers out. See access_log.hpp for
// the threading contract and the rotation story.
#include "ringway/app/access_log.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <limits>

#include "ringway/core/log.hpp"

namespace ringway::app {
namespace {

using config::AccessLogCommand;

void append_number(uint64_t value, std::string& out) {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof(digits), value);
  out.append(digits, r.ptr);
}

// Zero-padded decimal of exactly `width` digits.
void append_padded(unsigned value, int width, std::string& out) {
  char digits[8];
  for (int i = width - 1; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out.append(digits, static_cast<size_t>(width));
}

// "2024-05-01T12:00:00.123Z". The date-and-seconds part is cached per thread: sessions that end
// in the same second (the common case under load) skip gmtime_r.
void append_start_time(std::chrono::system_clock::time_point t, std::string& out) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const int64_t total_ms = ms.count();
  int64_t seconds = total_ms / 1000;
  int64_t millis = total_ms % 1000;
  if (millis < 0) {  // before 1970: floor, so the fraction stays positive
    millis += 1000;
    seconds -= 1;
  }
  thread_local int64_t cached_second = std::numeric_limits<int64_t>::min();
  thread_local std::string cached_prefix;
  if (seconds != cached_second) {
    const time_t tt = static_cast<time_t>(seconds);
    tm parts{};
    gmtime_r(&tt, &parts);
    cached_prefix.clear();
    append_padded(static_cast<unsigned>(parts.tm_year + 1900), 4, cached_prefix);
    cached_prefix.push_back('-');
    append_padded(static_cast<unsigned>(parts.tm_mon + 1), 2, cached_prefix);
    cached_prefix.push_back('-');
    append_padded(static_cast<unsigned>(parts.tm_mday), 2, cached_prefix);
    cached_prefix.push_back('T');
    append_padded(static_cast<unsigned>(parts.tm_hour), 2, cached_prefix);
    cached_prefix.push_back(':');
    append_padded(static_cast<unsigned>(parts.tm_min), 2, cached_prefix);
    cached_prefix.push_back(':');
    append_padded(static_cast<unsigned>(parts.tm_sec), 2, cached_prefix);
    cached_second = seconds;
  }
  out.append(cached_prefix);
  out.push_back('.');
  append_padded(static_cast<unsigned>(millis), 3, out);
  out.push_back('Z');
}

// "1.2.3.4:80" / "[::1]:80", or the address alone ("1.2.3.4" / "::1") without the port.
// IPv4-mapped IPv6 addresses print as IPv4, as SocketAddress::to_string does. False (nothing
// appended) when there is no address.
bool append_address(const net::SocketAddress& a, bool with_port, std::string& out) {
  if (a.length == 0) return false;
  char text[INET6_ADDRSTRLEN] = {};
  bool v6 = false;
  if (a.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a.storage);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
  } else if (a.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a.storage);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], text, sizeof(text));
    } else {
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
      v6 = true;
    }
  } else {
    return false;
  }
  if (!with_port) {
    out.append(text);
    return true;
  }
  if (v6) out.push_back('[');
  out.append(text);
  if (v6) out.push_back(']');
  out.push_back(':');
  append_number(a.port(), out);
  return true;
}

// Envoy's response-flag codes for the end reasons that have one; the table and its reasoning
// are in access_log_format.hpp.
std::string_view response_flags(engine::EndReason reason) {
  using engine::EndReason;
  switch (reason) {
    case EndReason::UpstreamRefused:
    case EndReason::ConnectError:
    case EndReason::ConnectTimeout:
      return "UF";
    case EndReason::CircuitOpen:
    case EndReason::ConnectionLimit:
      return "UO";
    case EndReason::IdleTimeout:
      return "SI";
    case EndReason::Overload:
      return "OM";  // Envoy: the overload manager ended the stream
    case EndReason::DownstreamReset:
      return "DC";
    case EndReason::UpstreamReset:
      return "UC";
    case EndReason::SniNoMatch:
      return "NR";  // Envoy: no matching filter chain for a downstream connection
    case EndReason::Normal:
    case EndReason::KeepaliveTimeout:
    case EndReason::DrainForceClosed:
    case EndReason::InternalError:
    case EndReason::ProxyProtocolError:
    case EndReason::ClientHelloError:
    case EndReason::ListenerFilterTimeout:
      break;
  }
  return "-";
}

uint64_t duration_ms(const engine::SessionRecord& r) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(r.duration).count();
  return ms < 0 ? 0 : static_cast<uint64_t>(ms);
}

// Appends the value of one operator; false (nothing appended) when the value is not available.
bool append_command(AccessLogCommand c, const engine::SessionRecord& r, std::string& out) {
  switch (c) {
    case AccessLogCommand::StartTime:
      if (r.start.time_since_epoch().count() == 0) return false;
      append_start_time(r.start, out);
      return true;
    case AccessLogCommand::DownstreamRemoteAddress:
      return append_address(r.downstream_peer, true, out);
    case AccessLogCommand::DownstreamRemoteAddressWithoutPort:
      return append_address(r.downstream_peer, false, out);
    case AccessLogCommand::DownstreamLocalAddress:
      return append_address(r.downstream_local, true, out);
    case AccessLogCommand::UpstreamHost:
      return append_address(r.upstream_host, true, out);
    case AccessLogCommand::UpstreamCluster:
      if (r.upstream.empty()) return false;
      out.append(r.upstream);
      return true;
    case AccessLogCommand::BytesReceived:
      append_number(r.bytes_from_downstream, out);
      return true;
    case AccessLogCommand::BytesSent:
      append_number(r.bytes_to_downstream, out);
      return true;
    case AccessLogCommand::UpstreamWireBytesSent:
      append_number(r.bytes_to_upstream, out);
      return true;
    case AccessLogCommand::UpstreamWireBytesReceived:
      append_number(r.bytes_from_upstream, out);
      return true;
    case AccessLogCommand::DurationMs:
      append_number(duration_ms(r), out);
      return true;
    case AccessLogCommand::ResponseFlags:
      out.append(response_flags(r.reason));
      return true;
    case AccessLogCommand::ConnectionTerminationDetails:
      out.append(engine::to_string(r.reason));
      return true;
    case AccessLogCommand::kCount:
      break;
  }
  return false;
}

// Text rendering: literals as written, missing values as "-" (Envoy's convention).
void append_text(const config::ParsedFormat& f, const engine::SessionRecord& r, std::string& out) {
  for (const auto& piece : f.pieces) {
    if (!piece.command) {
      out.append(piece.literal);
    } else if (!append_command(*piece.command, r, out)) {
      out.push_back('-');
    }
  }
}

// A JSON string body (no quotes): '"', '\\' and control characters escaped; other bytes,
// UTF-8 included, as they are (TOML strings are valid UTF-8 already).
void append_json_escaped(std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default:
        if (c < 0x20) {
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(ch);
        }
    }
  }
}

void append_json_value(const config::ParsedFormat& f, const engine::SessionRecord& r,
                       std::string& out) {
  if (const auto sole = f.sole_command()) {
    if (config::command_is_numeric(*sole)) {
      append_command(*sole, r, out);  // numbers are always available
      return;
    }
    thread_local std::string value;
    value.clear();
    if (!append_command(*sole, r, value)) {
      out.append("null");
      return;
    }
    out.push_back('"');
    append_json_escaped(value, out);
    out.push_back('"');
    return;
  }
  thread_local std::string text;
  text.clear();
  append_text(f, r, text);
  out.push_back('"');
  append_json_escaped(text, out);
  out.push_back('"');
}

}  // namespace

// ---- AccessLogFormatter -----------------------------------------------------------------

Result<AccessLogFormatter> AccessLogFormatter::from_sink(const config::AccessLogFileSink& sink) {
  if (sink.format == config::AccessLogFileSink::Format::Text) {
    auto parsed = config::parse_format(config::effective_text_format(sink.string_format));
    if (!parsed.ok) {
      return Error{0, "stringFormat: " + parsed.error + " (at offset " +
                          std::to_string(parsed.offset) + ")"};
    }
    return text(std::move(parsed.format));
  }
  std::vector<std::pair<std::string, config::ParsedFormat>> fields;
  for (const auto& [key, value] : sink.json_format) {
    auto parsed = config::parse_format(value);
    if (!parsed.ok) {
      return Error{0, "jsonFormat." + key + ": " + parsed.error + " (at offset " +
                          std::to_string(parsed.offset) + ")"};
    }
    fields.emplace_back(key, std::move(parsed.format));
  }
  return json(std::move(fields));
}

AccessLogFormatter AccessLogFormatter::text(config::ParsedFormat format) {
  AccessLogFormatter f;
  f.text_ = std::move(format);
  return f;
}

AccessLogFormatter AccessLogFormatter::json(
    std::vector<std::pair<std::string, config::ParsedFormat>> fields) {
  AccessLogFormatter f;
  f.json_ = true;
  f.fields_ = std::move(fields);
  return f;
}

void AccessLogFormatter::render(const engine::SessionRecord& record, std::string& out) const {
  if (!json_) {
    append_text(text_, record, out);
    return;
  }
  out.push_back('{');
  bool first = true;
  for (const auto& [key, value] : fields_) {
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    append_json_escaped(key, out);
    out.append("\":");
    append_json_value(value, record, out);
  }
  out.append("}\n");
}

// ---- AccessLog --------------------------------------------------------------------------

Result<std::unique_ptr<AccessLog>> AccessLog::open(const config::Config& config) {
  std::unique_ptr<AccessLog> log(new AccessLog());
  for (const auto& gw : config.gateways) {
    if (gw.access_logs.empty()) continue;
    GatewaySinks entry;
    entry.gateway = gw.id();
    for (const auto& sink : gw.access_logs) {
      const std::string where = "gateway " + entry.gateway + ": access log " + sink.path;
      auto formatter = AccessLogFormatter::from_sink(sink);
      if (!formatter) return Error{0, where + ": " + formatter.error().message};
      // Two sinks naming the same path share one descriptor and one buffer, so their lines
      // never interleave mid-line.
      File* file = nullptr;
      for (auto& f : log->files_) {
        if (f->path == sink.path) file = f.get();
      }
      if (file == nullptr) {
        // O_APPEND: every write lands at the end even when logrotate's copytruncate shrinks
        // the file underneath. O_CLOEXEC: nothing we might exec inherits it. 0640: access logs
        // hold client addresses; readable by the service's group (adm) only.
        const int fd = ::open(sink.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) return system_error(errno, where + ": cannot open");
        auto f = std::make_unique<File>();
        f->path = sink.path;
        f->fd = fd;
        file = f.get();
        log->files_.push_back(std::move(f));
      }
      entry.sinks.push_back(Sink{std::move(formatter.value()), file});
    }
    log->gateways_.push_back(std::move(entry));
  }
  if (!log->files_.empty()) log->flusher_ = std::thread([l = log.get()] { l->flusher_loop(); });
  return log;
}

AccessLog::~AccessLog() {
  stop();
  flush_all(true);  // records that arrived after stop()
  for (auto& f : files_) {
    if (f->fd >= 0) ::close(f->fd);
  }
}

engine::SessionSink AccessLog::sink() {
  return [this](const engine::SessionRecord& r) { record(r); };
}

void AccessLog::record(const engine::SessionRecord& record) {
  const GatewaySinks* entry = nullptr;
  for (const auto& g : gateways_) {
    if (g.gateway == record.gateway) entry = &g;
  }
  if (entry == nullptr) return;
  // Rendered outside the lock into a per-thread scratch string (its capacity is kept), so the
  // critical section is one append.
  thread_local std::string line;
  bool want_flush = false;
  for (const auto& sink : entry->sinks) {
    line.clear();
    sink.formatter.render(record, line);
    File& file = *sink.file;
    std::lock_guard lock(file.mutex);
    if (file.buffer.size() + line.size() > kMaxBuffered) {
      ++file.dropped;
      dropped_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    file.buffer.append(line);
    want_flush |= file.buffer.size() >= kFlushThreshold;
  }
  if (want_flush) request_flush();
}

void AccessLog::request_flush() {
  // One wake-up per flush cycle: the flusher clears wake_pending_ before it writes, so the
  // workers that fill a buffer meanwhile do not all take the flusher's mutex.
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  {
    std::lock_guard lock(flusher_mutex_);
    wake_ = true;
  }
  flusher_cv_.notify_one();
}

void AccessLog::stop() {
  {
    std::lock_guard lock(flusher_mutex_);
    stopping_ = true;
  }
  flusher_cv_.notify_one();
  if (flusher_.joinable()) flusher_.join();
}

void AccessLog::flusher_loop() {
  std::unique_lock lock(flusher_mutex_);
  while (true) {
    flusher_cv_.wait_for(lock, kFlushInterval, [this] { return wake_ || stopping_; });
    const bool last = stopping_;
    wake_ = false;
    wake_pending_.store(false, std::memory_order_release);
    lock.unlock();
    flush_all(last);
    if (last) return;
    lock.lock();
  }
}

void AccessLog::flush_all(bool final) {
  for (auto& f : files_)
    flush(*f, final);
}

void AccessLog::flush(File& file, bool final) {
  uint64_t dropped = 0;
  {
    // Swap, not copy: the workers get the flusher's emptied buffer (capacity kept) back.
    std::lock_guard lock(file.mutex);
    file.in_flight.swap(file.buffer);
    dropped = file.dropped;
  }
  // At most one warning a second per file (the flusher runs ten times a second), and the
  // final count at stop.
  const auto now = std::chrono::steady_clock::now();
  if (dropped != file.dropped_reported &&
      (final || now - file.dropped_reported_at >= std::chrono::seconds(1))) {
    log::warning("access log {}: {} lines dropped so far: the file is not keeping up", file.path,
                 dropped);
    file.dropped_reported = dropped;
    file.dropped_reported_at = now;
  }
  size_t done = 0;
  while (done < file.in_flight.size()) {
    const ssize_t n = ::write(file.fd, file.in_flight.data() + done, file.in_flight.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // ENOSPC, EIO, EFBIG...: this batch is lost (holding it would only grow memory); say so
      // once, and again when writes work again.
      if (!file.write_failing) {
        log::error("access log {}: write failed, lines lost until it recovers: {}", file.path,
                   n < 0 ? std::strerror(errno) : "wrote nothing");
      }
      file.write_failing = true;
      file.in_flight.clear();
      return;
    }
    done += static_cast<size_t>(n);
  }
  if (file.write_failing && done > 0) {
    log::notice("access log {}: writing again", file.path);
    file.write_failing = false;
  }
  file.in_flight.clear();
}

}  // namespace ringway::app
