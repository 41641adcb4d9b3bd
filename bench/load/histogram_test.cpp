// Checks of ringway-load's latency histogram: buckets tile the value range without gaps or
// overlaps, and percentiles stay within the promised relative error of the exact answer.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "histogram.hpp"

namespace {

int failures = 0;

void check(bool ok, const char* what, unsigned long long a, unsigned long long b) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s (%llu vs %llu)\n", what, a, b);
    ++failures;
  }
}

}  // namespace

int main() {
  using ringway::load::Histogram;
  // Tiling: the bucket after i starts right after upper_bound_of(i), for every bucket.
  for (int i = 0; i + 1 < Histogram::kBucketCount; ++i) {
    uint64_t bound = Histogram::upper_bound_of(i);
    check(Histogram::index_of(bound) == i, "upper bound maps to its own bucket", bound,
          static_cast<unsigned long long>(i));
    check(Histogram::index_of(bound + 1) == i + 1, "next value maps to the next bucket", bound + 1,
          static_cast<unsigned long long>(i + 1));
  }
  // Percentiles of 1..100000: exact answers are known; allow the 1/64 bucket width.
  Histogram h;
  for (uint64_t v = 1; v <= 100000; ++v)
    h.record(v);
  const double points[] = {50, 90, 99, 99.9};
  for (double p : points) {
    auto exact = static_cast<uint64_t>(p * 1000);
    uint64_t got = h.percentile(p);
    check(got >= exact, "percentile is never optimistic", got, exact);
    check(got <= exact + exact / 64 + 1, "percentile within bucket width", got, exact);
  }
  check(h.percentile(100) == 100000, "p100 is the maximum", h.percentile(100), 100000);
  check(h.max() == 100000 && h.count() == 100000, "count and max", h.count(), h.max());
  // Merge adds counts; an empty histogram reports zeros.
  Histogram other;
  check(other.percentile(99) == 0, "empty histogram", other.percentile(99), 0);
  other.record(5'000'000);
  h.merge(other);
  check(h.count() == 100001 && h.max() == 5'000'000, "merge", h.count(), h.max());
  // Values beyond the range land in the last bucket instead of overflowing the array.
  Histogram huge;
  huge.record(~uint64_t{0});
  check(huge.count() == 1, "huge value recorded", huge.count(), 1);
  if (failures == 0) std::puts("histogram: all checks passed");
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
