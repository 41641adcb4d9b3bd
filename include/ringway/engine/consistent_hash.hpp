// Consistent hashing for `loadBalancerConfig.ringHash` and `maglev`, keyed on the downstream
// source address: a ketama-style ring (weights give hosts proportionally more points) and
// Google's Maglev lookup table (weights give hosts proportionally more slots). Hosts are
// identified by a stable key ("addr:port"), not by their index, so removing one host of N
// moves only the clients that were on it (ring) or about 1/N plus a little (maglev).
// Plain data, no I/O; built once per upstream, then read-only and shareable by workers.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ringway/config/model.hpp"

namespace ringway::engine {

inline constexpr uint32_t kNoHost = UINT32_MAX;

// 64-bit hash of bytes: FNV-1a over the input, then a murmur3 finaliser so that keys differing
// in one low byte (IP addresses, "host_1", "host_2") land far apart.
uint64_t hash_bytes(const void* data, size_t size, uint64_t seed = 0);
// The key of a downstream: its IP address only (not the port, so every connection of one
// client maps alike). An IPv4-mapped IPv6 address hashes as the IPv4 address. 0 for other
// families.
uint64_t hash_source_address(const sockaddr* address);

struct HashHost {
  std::string key;      // stable identity, e.g. "10.0.0.5:1025"
  uint32_t weight = 1;  // loadBalancingWeight; 0 counts as 1
};

class RingHash {
 public:
  // The lightest host gets `min_ring_size` points, the others in proportion to their weight,
  // so the ring has at least min_ring_size points (Envoy's contract) and a host's points do not
  // change when other hosts come or go. A ring larger than `max_ring_size` is scaled down to
  // it (every host keeps at least one point).
  RingHash(const std::vector<HashHost>& hosts, uint64_t min_ring_size, uint64_t max_ring_size);

  // The host owning the first point at or after `hash` (wrapping). With `available` (one byte
  // per host, non-zero = may be chosen), unavailable hosts are skipped clockwise, so only
  // their clients move. kNoHost when no host is available.
  uint32_t pick(uint64_t hash, std::span<const uint8_t> available = {}) const;
  size_t size() const { return ring_.size(); }
  // Points owned by `host` (for tests of the weighting).
  size_t points(uint32_t host) const;

 private:
  struct Point {
    uint64_t hash;
    uint32_t host;
  };
  std::vector<Point> ring_;
  uint32_t hosts_ = 0;
};

class Maglev {
 public:
  // `table_size` must be a prime larger than the number of hosts (Envoy's default 65537).
  explicit Maglev(const std::vector<HashHost>& hosts,
                  uint64_t table_size = config::kMaglevTableSize);

  // table[hash % size]. With `available`, an unavailable entry continues to the following
  // slots (which belong to hosts in a pseudo-random order), so its clients spread out.
  uint32_t pick(uint64_t hash, std::span<const uint8_t> available = {}) const;
  size_t size() const { return table_.size(); }
  size_t slots(uint32_t host) const;

 private:
  std::vector<uint32_t> table_;
};

}  // namespace ringway::engine
