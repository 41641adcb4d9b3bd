// Log-linear histogram: bucket arithmetic and percentile queries (see histogram.hpp).
#include "histogram.hpp"

#include <bit>

namespace ringway::load {

int Histogram::index_of(uint64_t value) {
  // Below 2 * kSubCount every value has its own bucket. Above, a value keeps only its top
  // kSubBits + 1 bits (the mantissa, in [kSubCount, 2 * kSubCount)) and the shift that dropped
  // the rest; index = shift * kSubCount + mantissa, so consecutive ranges tile without gaps.
  if (value < 2 * kSubCount) return static_cast<int>(value);
  int msb = 63 - std::countl_zero(value);
  int exponent = msb - kSubBits;  // >= 1
  if (exponent > kMaxExponent) return kBucketCount - 1;
  uint64_t mantissa = value >> exponent;  // in [kSubCount, 2 * kSubCount)
  return static_cast<int>((static_cast<uint64_t>(exponent) + 1) * kSubCount + mantissa - kSubCount);
}

uint64_t Histogram::upper_bound_of(int index) {
  auto i = static_cast<uint64_t>(index);
  if (i < 2 * kSubCount) return i;
  uint64_t exponent = i / kSubCount - 1;
  uint64_t mantissa = i % kSubCount + kSubCount;
  return ((mantissa + 1) << exponent) - 1;
}

void Histogram::merge(const Histogram& other) {
  for (int i = 0; i < kBucketCount; ++i)
    counts_[i] += other.counts_[i];
  total_ += other.total_;
  sum_ += other.sum_;
  if (other.max_ > max_) max_ = other.max_;
}

uint64_t Histogram::percentile(double percentile) const {
  if (total_ == 0) return 0;
  if (percentile >= 100) return max_;
  // The rank is rounded up so p50 of {1, 2} is 1 and p99.9 of 1,000 values is the 999th.
  auto rank = static_cast<uint64_t>(percentile / 100.0 * static_cast<double>(total_) + 0.999999);
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      uint64_t bound = upper_bound_of(i);
      return bound < max_ ? bound : max_;
    }
  }
  return max_;
}

}  // namespace ringway::load
