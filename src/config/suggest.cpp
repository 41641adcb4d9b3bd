// Edit distance, closest match and key spelling conversions (see suggest.hpp).
#include "ringway/config/suggest.hpp"

#include <algorithm>
#include <vector>

namespace ringway::config {
namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
bool is_upper(char c) {
  return c >= 'A' && c <= 'Z';
}
bool is_lower(char c) {
  return c >= 'a' && c <= 'z';
}

// Longer words are not compared: a config key is short, and this keeps a fuzzed 4 KiB key from
// costing a quadratic amount of work per candidate.
constexpr size_t kMaxCompared = 64;

}  // namespace

size_t edit_distance(std::string_view a, std::string_view b) {
  if (a.size() > kMaxCompared || b.size() > kMaxCompared) return std::max(a.size(), b.size());
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitute = diagonal + (lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

std::optional<std::string> closest(std::string_view word, std::span<const std::string> candidates) {
  std::optional<std::string> best;
  size_t best_distance = 0;
  for (const auto& candidate : candidates) {
    const size_t d = edit_distance(word, candidate);
    const size_t allowed = std::max<size_t>(2, candidate.size() / 4);
    if (d > allowed || d >= std::max(word.size(), candidate.size())) continue;
    if (!best || d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

std::string snake_to_camel(std::string_view snake) {
  std::string out;
  bool upper_next = false;
  for (const char c : snake) {
    if (c == '_') {
      upper_next = true;
      continue;
    }
    out.push_back(upper_next && is_lower(c) ? static_cast<char>(c - 'a' + 'A') : c);
    upper_next = false;
  }
  return out;
}

std::string camel_to_snake(std::string_view camel) {
  std::string out;
  for (const char c : camel) {
    if (is_upper(c)) {
      out.push_back('_');
      out.push_back(lower(c));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace ringway::config
