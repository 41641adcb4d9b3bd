// Durations, base64 and quoting for the config layer (see values.hpp).
#include "ringway/config/values.hpp"

#include <fmt/format.h>

#include <array>
#include <limits>

namespace ringway::config {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int kMaxFractionDigits = 9;  // protobuf Duration's precision: nanoseconds

struct Unit {
  std::string_view name;
  int64_t ns;
};
constexpr Unit kUnits[] = {
    {"ns", 1},
    {"us", 1'000},
    {"\xC2\xB5s", 1'000},  // U+00B5 MICRO SIGN, as Go accepts
    {"\xCE\xBCs", 1'000},  // U+03BC GREEK SMALL LETTER MU, as Go accepts
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60'000'000'000},
    {"h", 3'600'000'000'000},
};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

Error bad(std::string message) {
  return Error{0, std::move(message)};
}

int64_t pow10(int n) {
  int64_t p = 1;
  for (int i = 0; i < n; ++i)
    p *= 10;
  return p;
}

}  // namespace

Result<int64_t> parse_duration_ns(std::string_view text) {
  if (text.empty()) return bad("it is empty");
  if (text[0] == '-') return bad("negative durations are not allowed");
  if (text == "0") return int64_t{0};
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    int64_t whole = 0;
    bool any_digit = false;
    while (i < text.size() && is_digit(text[i])) {
      const int64_t d = text[i] - '0';
      if (whole > (kInt64Max - d) / 10) return bad("too large (at most about 292 years)");
      whole = whole * 10 + d;
      any_digit = true;
      ++i;
    }
    int64_t fraction = 0;
    int fraction_digits = 0;
    if (i < text.size() && text[i] == '.') {
      ++i;
      while (i < text.size() && is_digit(text[i])) {
        if (fraction_digits == kMaxFractionDigits)
          return bad("more than 9 fractional digits (nanosecond precision)");
        fraction = fraction * 10 + (text[i] - '0');
        ++fraction_digits;
        any_digit = true;
        ++i;
      }
    }
    if (!any_digit) {
      return bad(fmt::format("expected a number at {}", quoted(text.substr(start))));
    }
    const size_t unit_start = i;
    while (i < text.size() && !is_digit(text[i]) && text[i] != '.')
      ++i;
    const std::string_view unit_text = text.substr(unit_start, i - unit_start);
    if (unit_text.empty()) {
      return bad(fmt::format("missing unit after {}", quoted(text.substr(start, i - start))));
    }
    const Unit* unit = nullptr;
    for (const auto& u : kUnits)
      if (u.name == unit_text) unit = &u;
    if (unit == nullptr) return bad(fmt::format("unknown unit {}", quoted(unit_text)));
    if (whole > kInt64Max / unit->ns) return bad("too large (at most about 292 years)");
    int64_t part = whole * unit->ns;
    if (fraction != 0) {
      // fraction / 10^digits of a unit, rounded up to a whole nanosecond. Both branches stay
      // below 2^63: in the first, fraction < 10^digits; in the second, unit < 10^digits <= 10^9.
      const int64_t scale = pow10(fraction_digits);
      int64_t extra = 0;
      if (unit->ns % scale == 0) {
        extra = fraction * (unit->ns / scale);
      } else {
        const int64_t product = fraction * unit->ns;
        extra = product / scale + (product % scale != 0 ? 1 : 0);
      }
      if (part > kInt64Max - extra) return bad("too large (at most about 292 years)");
      part += extra;
    }
    if (total > kInt64Max - part) return bad("too large (at most about 292 years)");
    total += part;
  }
  return total;
}

Duration ceil_to_duration(int64_t ns) {
  return Duration(ns / 1'000'000 + (ns % 1'000'000 != 0 ? 1 : 0));
}

int64_t ceil_to_seconds(int64_t ns) {
  return ns / 1'000'000'000 + (ns % 1'000'000'000 != 0 ? 1 : 0);
}

std::string format_duration(Duration d) {
  const int64_t ms = d.count();
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  std::string fraction = fmt::format("{:03}", ms % 1000);
  while (fraction.back() == '0')
    fraction.pop_back();
  return fmt::format("{}.{}s", ms / 1000, fraction);
}

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    std::array<int, 4> v{};
    int padding = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=') {
        // Padding only at the end of the last quantum, and only in the last two places.
        if (!last || j < 2) return std::nullopt;
        ++padding;
        v[j] = 0;
        continue;
      }
      if (padding > 0) return std::nullopt;  // data after '='
      v[j] = base64_value(c);
      if (v[j] < 0) return std::nullopt;
    }
    const uint32_t bits = (static_cast<uint32_t>(v[0]) << 18) |
                          (static_cast<uint32_t>(v[1]) << 12) | (static_cast<uint32_t>(v[2]) << 6) |
                          static_cast<uint32_t>(v[3]);
    out.push_back(static_cast<char>((bits >> 16) & 0xFF));
    if (padding < 2) out.push_back(static_cast<char>((bits >> 8) & 0xFF));
    if (padding < 1) out.push_back(static_cast<char>(bits & 0xFF));
  }
  return out;
}

std::optional<std::string> hex_decode(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  const auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    const int hi = digit(text[i]), lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string hex_encode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t bits = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (n > 1) bits |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    if (n > 2) bits |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
    out.push_back(kAlphabet[(bits >> 18) & 0x3F]);
    out.push_back(kAlphabet[(bits >> 12) & 0x3F]);
    out.push_back(n > 1 ? kAlphabet[(bits >> 6) & 0x3F] : '=');
    out.push_back(n > 2 ? kAlphabet[bits & 0x3F] : '=');
  }
  return out;
}

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7F) {
      out += fmt::format("\\u{:04X}", static_cast<unsigned>(u));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace ringway::config
