// Logging: one line per event that matters, to stderr. When systemd's journal reads stderr
// (JOURNAL_STREAM is set) each line carries a "<N>" priority prefix so journald keeps the level.
// Library code logs at debug at most; the caller that decides what an error means logs it once.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace ringway::log {

enum class Level { Debug = 7, Info = 6, Notice = 5, Warning = 4, Error = 3 };

// Lines below this level are dropped. Set once at start-up (before workers start).
void set_min_level(Level level);
Level min_level();
// Decides the prefix style from JOURNAL_STREAM; called once at start-up, safe to call again.
void init_from_environment();

// Writes one whole line with a single write(2), so lines from workers never interleave.
void write(Level level, std::string_view message);

template <typename... Args>
void at(Level level, fmt::format_string<Args...> format, Args&&... args) {
  if (static_cast<int>(level) > static_cast<int>(min_level())) return;
  write(level, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... a) {
  at(Level::Debug, f, std::forward<Args>(a)...);
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... a) {
  at(Level::Info, f, std::forward<Args>(a)...);
}
template <typename... Args>
void notice(fmt::format_string<Args...> f, Args&&... a) {
  at(Level::Notice, f, std::forward<Args>(a)...);
}
template <typename... Args>
void warning(fmt::format_string<Args...> f, Args&&... a) {
  at(Level::Warning, f, std::forward<Args>(a)...);
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... a) {
  at(Level::Error, f, std::forward<Args>(a)...);
}

}  // namespace ringway::log
