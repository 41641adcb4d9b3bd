// Line-at-a-time logging to stderr (see log.hpp for the contract).
#include "ringway/core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ringway/core/result.hpp"

namespace ringway {

Error system_error(int code, std::string message) {
  message += ": ";
  message += std::strerror(code);
  return Error{code, std::move(message)};
}

namespace log {
namespace {
std::atomic<Level> g_min_level{Level::Info};
std::atomic<bool> g_journal_prefix{false};

const char* level_word(Level level) {
  switch (level) {
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Notice:
      return "notice";
    case Level::Warning:
      return "warning";
    case Level::Error:
      return "error";
  }
  return "?";
}
}  // namespace

void set_min_level(Level level) {
  g_min_level.store(level, std::memory_order_relaxed);
}
Level min_level() {
  return g_min_level.load(std::memory_order_relaxed);
}

void init_from_environment() {
  const char* journal = std::getenv("JOURNAL_STREAM");
  g_journal_prefix.store(journal != nullptr && *journal != '\0', std::memory_order_relaxed);
}

void write(Level level, std::string_view message) {
  std::string line;
  line.reserve(message.size() + 24);
  if (g_journal_prefix.load(std::memory_order_relaxed)) {
    line += '<';
    line += static_cast<char>('0' + static_cast<int>(level));
    line += '>';
  } else {
    line += "ringway ";
    line += level_word(level);
    line += ": ";
  }
  line += message;
  line += '\n';
  // One write per line; a short write to a pipe of this size cannot happen except on error,
  // and there is nowhere left to report a failure to log.
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

}  // namespace log
}  // namespace ringway
