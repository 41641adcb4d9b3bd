// GoogleTest entry point for the slow scenarios. Full-size scenarios hold tens of thousands of
// sockets between this process and the daemon (which inherits the limit), so the descriptor
// limit is raised as far as allowed first: the soft limit to the hard one, and, with
// CAP_SYS_RESOURCE, the hard limit too. A scenario that still lacks descriptors skips with the
// reason. When every selected test skipped, exit 77 so meson reports a skip, not a pass.
#include <gtest/gtest.h>
#include <sys/resource.h>

namespace {

// Enough for the full-size slowloris scenario: 10,000 downstream and 10,000 upstream sockets in
// this process, twice that in the daemon, with room for the peers' own descriptors.
constexpr rlim_t kWantedFds = 65536;

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_max < kWantedFds) {
    rlimit raised{kWantedFds, kWantedFds};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return;  // privileged: both raised
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  raise_fd_limit();
  int rc = RUN_ALL_TESTS();
  const testing::UnitTest& unit = *testing::UnitTest::GetInstance();
  if (rc == 0 && unit.test_to_run_count() > 0 &&
      unit.skipped_test_count() == unit.test_to_run_count()) {
    return 77;
  }
  return rc;
}
