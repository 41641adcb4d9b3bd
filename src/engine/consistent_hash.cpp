// Ring hash and Maglev (see consistent_hash.hpp).
#include "ringway/engine/consistent_hash.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace ringway::engine {
namespace {

uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

}  // namespace

uint64_t hash_bytes(const void* data, size_t size, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ fmix64(seed + 0x9e3779b97f4a7c15ULL);
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return fmix64(h ^ size);
}

uint64_t hash_source_address(const sockaddr* address) {
  if (address == nullptr) return 0;
  if (address->sa_family == AF_INET) {
    in_addr a;
    std::memcpy(&a, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, sizeof a);
    return hash_bytes(&a, sizeof a);
  }
  if (address->sa_family == AF_INET6) {
    in6_addr a;
    std::memcpy(&a, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, sizeof a);
    // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; hash them as a.b.c.d so that
    // one client keeps its host whichever way it arrives.
    if (IN6_IS_ADDR_V4MAPPED(&a)) return hash_bytes(&a.s6_addr[12], 4);
    return hash_bytes(&a, sizeof a);
  }
  return 0;
}

RingHash::RingHash(const std::vector<HashHost>& hosts, uint64_t min_ring_size,
                   uint64_t max_ring_size)
    : hosts_(static_cast<uint32_t>(hosts.size())) {
  if (hosts.empty()) return;
  uint32_t min_weight = UINT32_MAX;
  double total_units = 0;  // weights in units of the lightest host's weight
  for (const auto& h : hosts)
    min_weight = std::min(min_weight, std::max<uint32_t>(h.weight, 1));
  for (const auto& h : hosts)
    total_units += static_cast<double>(std::max<uint32_t>(h.weight, 1)) / min_weight;
  // The lightest host gets min_ring_size points and every other host proportionally more, so
  // a host's points do not depend on how many other hosts there are: the ring of N - 1 hosts
  // is the ring of N minus one host's points, and removing a host moves only its own clients.
  // (Envoy spreads min_ring_size over all hosts instead, which rescales every host when one
  // goes.) Only when that would exceed max_ring_size is everything scaled down to fit.
  double per_unit = static_cast<double>(min_ring_size);
  if (per_unit * total_units > static_cast<double>(max_ring_size)) {
    per_unit = static_cast<double>(max_ring_size) / total_units;
  }
  for (uint32_t i = 0; i < hosts.size(); ++i) {
    const double units = static_cast<double>(std::max<uint32_t>(hosts[i].weight, 1)) / min_weight;
    const auto count = std::max<uint64_t>(1, static_cast<uint64_t>(std::floor(per_unit * units)));
    for (uint64_t n = 0; n < count; ++n) {
      const std::string point = hosts[i].key + "_" + std::to_string(n);
      ring_.push_back({hash_bytes(point.data(), point.size()), i});
    }
  }
  std::sort(ring_.begin(), ring_.end(), [](const Point& a, const Point& b) {
    return a.hash < b.hash || (a.hash == b.hash && a.host < b.host);
  });
}

uint32_t RingHash::pick(uint64_t hash, std::span<const uint8_t> available) const {
  if (ring_.empty()) return kNoHost;
  auto it = std::lower_bound(ring_.begin(), ring_.end(), hash,
                             [](const Point& p, uint64_t h) { return p.hash < h; });
  size_t at = it == ring_.end() ? 0 : static_cast<size_t>(it - ring_.begin());
  if (available.empty()) return ring_[at].host;
  // Walk clockwise past unavailable hosts; give up after one full turn.
  for (size_t step = 0; step < ring_.size(); ++step) {
    const uint32_t host = ring_[at].host;
    if (host < available.size() && available[host] != 0) return host;
    at = at + 1 == ring_.size() ? 0 : at + 1;
  }
  return kNoHost;
}

size_t RingHash::points(uint32_t host) const {
  return static_cast<size_t>(
      std::count_if(ring_.begin(), ring_.end(), [&](const Point& p) { return p.host == host; }));
}

Maglev::Maglev(const std::vector<HashHost>& hosts, uint64_t table_size) {
  if (hosts.empty() || table_size < 2) return;
  const uint64_t m = table_size;
  const size_t n = hosts.size();
  // Google's Maglev population (NSDI'16, §3.4), weighted as Envoy does: each round, a host
  // earns weight/max_weight of a slot and claims one whenever it has earned a whole one, so
  // slots end up in proportion to weights.
  std::vector<uint64_t> offset(n), skip(n), next(n, 0);
  std::vector<double> credit(n, 0.0);
  uint32_t max_weight = 1;
  for (const auto& h : hosts)
    max_weight = std::max(max_weight, std::max<uint32_t>(h.weight, 1));
  for (size_t i = 0; i < n; ++i) {
    offset[i] = hash_bytes(hosts[i].key.data(), hosts[i].key.size(), 1) % m;
    skip[i] = hash_bytes(hosts[i].key.data(), hosts[i].key.size(), 2) % (m - 1) + 1;
  }
  table_.assign(m, kNoHost);
  uint64_t filled = 0;
  while (filled < m) {
    for (size_t i = 0; i < n && filled < m; ++i) {
      credit[i] += static_cast<double>(std::max<uint32_t>(hosts[i].weight, 1)) / max_weight;
      while (credit[i] >= 1.0 && filled < m) {
        credit[i] -= 1.0;
        // The next slot of this host's permutation that nobody has claimed yet.
        uint64_t slot = (offset[i] + next[i] * skip[i]) % m;
        while (table_[slot] != kNoHost) {
          ++next[i];
          slot = (offset[i] + next[i] * skip[i]) % m;
        }
        table_[slot] = static_cast<uint32_t>(i);
        ++next[i];
        ++filled;
      }
    }
  }
}

uint32_t Maglev::pick(uint64_t hash, std::span<const uint8_t> available) const {
  if (table_.empty()) return kNoHost;
  size_t at = hash % table_.size();
  if (available.empty()) return table_[at];
  for (size_t step = 0; step < table_.size(); ++step) {
    const uint32_t host = table_[at];
    if (host < available.size() && available[host] != 0) return host;
    at = at + 1 == table_.size() ? 0 : at + 1;
  }
  return kNoHost;
}

size_t Maglev::slots(uint32_t host) const {
  return static_cast<size_t>(std::count(table_.begin(), table_.end(), host));
}

}  // namespace ringway::engine
