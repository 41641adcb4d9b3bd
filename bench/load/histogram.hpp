// Latency histogram of ringway-load: log-linear buckets (the HdrHistogram idea, written small).
// Recording is one branch and an increment, so every request can be recorded on the hot path and
// percentiles never come from averages. Values are nanoseconds; relative error is below 1/64.
#pragma once

#include <array>
#include <cstdint>

namespace ringway::load {

class Histogram {
 public:
  // 64 linear sub-buckets per power of two keep the bucket width under 1.6% of the value.
  static constexpr int kSubBits = 6;
  static constexpr uint64_t kSubCount = uint64_t{1} << kSubBits;
  // Values up to 2^40 ns (about 18 minutes) are bucketed; longer ones land in the last bucket.
  static constexpr int kMaxExponent = 40 - kSubBits;
  static constexpr int kBucketCount = (kMaxExponent + 2) * static_cast<int>(kSubCount);

  void record(uint64_t value_ns) {
    ++counts_[index_of(value_ns)];
    ++total_;
    if (value_ns > max_) max_ = value_ns;
    sum_ += value_ns;
  }
  void merge(const Histogram& other);
  void clear() { *this = Histogram{}; }

  uint64_t count() const { return total_; }
  uint64_t max() const { return max_; }
  double mean() const {
    return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0;
  }
  // The smallest recorded-bucket upper bound at or below which `percentile` (0..100) of the
  // values fall; 0 when empty. Capped at the exact maximum so p100 is never above max().
  uint64_t percentile(double percentile) const;

  static int index_of(uint64_t value);
  // Highest value that maps to bucket `index` (what a percentile reports: never optimistic).
  static uint64_t upper_bound_of(int index);

 private:
  std::array<uint64_t, kBucketCount> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
  uint64_t sum_ = 0;
};

}  // namespace ringway::load
