// GoogleTest entry point for the engine unit tests: exits 77 (meson's "skipped") when every
// selected test skipped itself, e.g. the io_uring tests on a kernel or container without it.
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  const auto* unit = ::testing::UnitTest::GetInstance();
  if (rc == 0 && unit->test_to_run_count() > 0 &&
      unit->skipped_test_count() == unit->test_to_run_count()) {
    return 77;
  }
  return rc;
}
