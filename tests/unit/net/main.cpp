// The net unit tests' main: GoogleTest, plus the exit status meson understands for "skipped".
// Each meson test runs one group of tests that share a requirement (IPv6 loopback, a private
// network namespace, TCP Fast Open); when every test of the group skipped, the group exits 77
// so meson reports it as SKIP instead of hiding the skips inside an OK.
#include <gtest/gtest.h>

#include <cstdio>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  const auto* unit = ::testing::UnitTest::GetInstance();
  if (unit->test_to_run_count() == 0) {
    // A filter that matches nothing is a renamed test, not a pass.
    fprintf(stderr, "no test matched the filter\n");
    return 1;
  }
  if (rc == 0 && unit->skipped_test_count() == unit->test_to_run_count()) return 77;
  return rc;
}
