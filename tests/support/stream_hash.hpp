// Byte streams the fake peers send and the digests both ends compare. The hash is 64-bit FNV-1a
// over the stream in order, so it does not depend on how the stream was cut into reads and
// writes; it is a corruption/reordering check, not a cryptographic one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ringway::test {

class StreamHash {
 public:
  void update(std::span<const uint8_t> bytes) {
    uint64_t h = state_;
    for (uint8_t b : bytes) {
      h ^= b;
      h *= kPrime;
    }
    state_ = h;
    size_ += bytes.size();
  }
  uint64_t digest() const { return state_; }
  uint64_t size() const { return size_; }

 private:
  static constexpr uint64_t kOffsetBasis = 0xcbf29ce484222325ULL;
  static constexpr uint64_t kPrime = 0x100000001b3ULL;
  uint64_t state_ = kOffsetBasis;
  uint64_t size_ = 0;
};

// A deterministic pseudo-random byte stream (xorshift64*), different per seed, so a byte that
// arrives on the wrong session or in the wrong place changes the receiver's digest.
class PatternStream {
 public:
  explicit PatternStream(uint64_t seed) : state_(seed * 0x9e3779b97f4a7c15ULL + 1) {}

  // Fills `out` with the next out.size() bytes of the stream.
  void fill(std::span<uint8_t> out) {
    for (uint8_t& b : out) {
      if (avail_ == 0) {
        state_ ^= state_ >> 12;
        state_ ^= state_ << 25;
        state_ ^= state_ >> 27;
        word_ = state_ * 0x2545f4914f6cdd1dULL;
        avail_ = 8;
      }
      b = static_cast<uint8_t>(word_);
      word_ >>= 8;
      --avail_;
    }
  }

 private:
  uint64_t state_;
  uint64_t word_ = 0;
  int avail_ = 0;
};

}  // namespace ringway::test
