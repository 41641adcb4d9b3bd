// The `slow` tier's fixture: the integration fixture (real daemon, config next to the test, leak
// audit) plus what full-size scenarios need: one size knob (RINGWAY_SLOW_SIZE=ci|full), the
// process's descriptor limit, CPU time from /proc, and one grep-able line per measured figure
// that scripts/soak.sh collects into its table.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fixture.hpp"

namespace ringway::test {

// RINGWAY_SLOW_SIZE: "full" selects the sizes of the issue (soak), anything else CI size.
bool slow_full_size();
// `ci` or `full` according to the knob.
template <typename T>
T slow_pick(T ci, T full) {
  return slow_full_size() ? full : ci;
}
const char* slow_size_name();

// The calling process's RLIMIT_NOFILE soft limit (the daemon, a child, inherits it).
uint64_t fd_limit();
// "" when this process may open `needed` descriptors, else why not (for GTEST_SKIP).
std::string fd_limit_shortfall(uint64_t needed);

// The p-th percentile (0..100) of `values` (sorted in place); 0 for an empty vector.
double percentile(std::vector<double>& values, double p);

// "127.0.0.2".."127.0.0.(1+n)": the source addresses R02 spreads its connections over.
std::vector<std::string> loopback_sources(int n);

class SlowTest : public ProxyTest {
 protected:
  // Prints "[ figure ] <scenario>: <what> = <value> (limit <limit>)" and records it as a test
  // property. `limit` is the pass criterion as text ("none" when the figure is informative).
  void figure(const std::string& scenario, const std::string& what, double value,
              const std::string& limit);
};

}  // namespace ringway::test
