// The slow tier's fixture (see slow_fixture.hpp).
#include "slow_fixture.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace ringway::test {

bool slow_full_size() {
  const char* v = std::getenv("RINGWAY_SLOW_SIZE");
  return v != nullptr && std::string(v) == "full";
}

const char* slow_size_name() {
  return slow_full_size() ? "full" : "ci";
}

uint64_t fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  return rl.rlim_cur;
}

std::string fd_limit_shortfall(uint64_t needed) {
  uint64_t have = fd_limit();
  if (have >= needed) return "";
  std::ostringstream why;
  why << "needs " << needed << " file descriptors but RLIMIT_NOFILE is " << have
      << " and cannot be raised (raising the hard limit needs CAP_SYS_RESOURCE; try "
         "`ulimit -Hn "
      << needed << "` as root)";
  return why.str();
}

double percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  // Nearest rank: never reports a value better than one actually seen at that rank.
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

std::vector<std::string> loopback_sources(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i)
    out.push_back("127.0.0." + std::to_string(2 + i));
  return out;
}

void SlowTest::figure(const std::string& scenario, const std::string& what, double value,
                      const std::string& limit) {
  RecordProperty(scenario + "." + what, std::to_string(value));
  // One line, flushed at once, so the soak script's grep sees it even if the test dies later.
  std::printf("[ figure ] %s: %s = %.6g (limit %s) [size %s]\n", scenario.c_str(), what.c_str(),
              value, limit.c_str(), slow_size_name());
  std::fflush(stdout);
}

}  // namespace ringway::test
