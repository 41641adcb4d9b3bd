// GoogleTest entry point for the integration executables. When every selected test skipped
// (a missing capability: no root, no IPv6), the process exits 77 so meson reports a skip
// instead of a pass.
#include <gtest/gtest.h>
#include <sys/resource.h>

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  // A thousand sessions need about 4,000 fds between the test and the daemon (which inherits
  // this limit): raise the soft limit to the hard one.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  int rc = RUN_ALL_TESTS();
  const testing::UnitTest& unit = *testing::UnitTest::GetInstance();
  if (rc == 0 && unit.test_to_run_count() > 0 &&
      unit.skipped_test_count() == unit.test_to_run_count()) {
    return 77;
  }
  return rc;
}
