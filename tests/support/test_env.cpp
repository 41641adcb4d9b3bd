// Environment of the integration tests: timeout scaling, paths, bounded polling.
#include "test_env.hpp"

#include <cstdlib>
#include <thread>

namespace ringway::test {

double timeout_scale() {
  static const double scale = [] {
    const char* v = std::getenv("RINGWAY_TIMEOUT_SCALE");
    if (v == nullptr || *v == '\0') return 1.0;
    char* end = nullptr;
    double d = std::strtod(v, &end);
    return (end != v && d >= 1.0) ? d : 1.0;
  }();
  return scale;
}

Millis scaled(Millis d) {
  return Millis(static_cast<Millis::rep>(static_cast<double>(d.count()) * timeout_scale()));
}

static std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

std::string ringway_bin() {
  return env_or_empty("RINGWAY_BIN");
}
std::string source_root() {
  return env_or_empty("RINGWAY_SOURCE_ROOT");
}

bool built_with_asan() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

bool poll_until(const std::function<bool()>& pred, Millis timeout, Millis interval) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(interval);
  }
  return pred();
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace ringway::test
