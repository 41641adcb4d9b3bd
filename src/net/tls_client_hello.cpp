// ClientHello peek (RFC 8446 §4.1.2 framing, RFC 6066 §3 server_name) and the SNI matcher; the
// contract is in tls_client_hello.hpp. The bytes come from an unauthenticated client: every
// length is checked against the one that contains it, and nothing is read past `cap`.
#include "ringway/net/tls_client_hello.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace ringway::net::tls {
namespace {

constexpr uint8_t kContentHandshake = 22;
constexpr uint8_t kHandshakeClientHello = 1;
constexpr size_t kRecordHeader = 5;
constexpr size_t kMaxRecordPayload = 16384;  // 2^14: RFC 8446 §5.1
constexpr uint16_t kExtensionServerName = 0;
constexpr uint8_t kNameTypeHostName = 0;
constexpr size_t kMaxHostName = 255;
constexpr size_t kMaxSessionId = 32;

// Reads the handshake byte stream sequentially across record boundaries, checking each record
// header as it is reached. A read that fails leaves the reason in `status`.
class HandshakeReader {
 public:
  HandshakeReader(std::span<const uint8_t> bytes, size_t cap) : bytes_(bytes), cap_(cap) {}

  // Copies `n` bytes to `out`, or skips them when `out` is null.
  bool read(uint8_t* out, size_t n) {
    while (n > 0) {
      if (record_left_ == 0 && !next_record()) return false;
      const size_t take = std::min(n, record_left_);
      if (!available(take)) return false;
      if (out != nullptr) {
        std::memcpy(out, bytes_.data() + pos_, take);
        out += take;
      }
      pos_ += take;
      record_left_ -= take;
      n -= take;
    }
    return true;
  }
  bool skip(size_t n) { return read(nullptr, n); }
  bool u8(size_t& v) { return big_endian(1, v); }
  bool u16(size_t& v) { return big_endian(2, v); }
  bool u24(size_t& v) { return big_endian(3, v); }

  size_t position() const { return pos_; }
  Status status = Status::NeedMore;
  const char* reason = nullptr;

  bool fail(Status s, const char* why) {
    status = s;
    reason = why;
    return false;
  }

 private:
  bool big_endian(size_t size, size_t& v) {
    uint8_t b[3] = {};
    if (!read(b, size)) return false;
    v = 0;
    for (size_t i = 0; i < size; ++i)
      v = (v << 8) | b[i];
    return true;
  }

  // The cap is checked before availability, so a prefix of the stream and the whole stream
  // agree: a ClientHello that needs a byte at or past the cap is an error either way.
  bool available(size_t n) {
    if (pos_ + n > cap_) return fail(Status::Error, "ClientHello larger than the cap");
    if (pos_ + n > bytes_.size()) return fail(Status::NeedMore, nullptr);
    return true;
  }

  bool next_record() {
    const size_t have = std::min(bytes_.size() - pos_, kRecordHeader);
    const uint8_t* h = bytes_.data() + pos_;
    // Checked on whatever part of the header has arrived, so plain text (an HTTP request, an
    // SSH banner) is told apart from TLS on its first byte.
    if (have >= 1 && h[0] != kContentHandshake) {
      return first_ ? fail(Status::NotTls, "not a TLS handshake record")
                    : fail(Status::Error, "ClientHello interrupted by a non-handshake record");
    }
    if (have >= 2 && (h[1] != 3 || (have >= 3 && h[2] > 4))) {
      return first_ ? fail(Status::NotTls, "record version is not TLS 1.x")
                    : fail(Status::Error, "record version is not TLS 1.x");
    }
    if (!available(kRecordHeader)) return false;
    const size_t length = (static_cast<size_t>(h[3]) << 8) | h[4];
    if (length == 0 || length > kMaxRecordPayload) {
      return fail(Status::Error, "handshake record length is 0 or above 2^14");
    }
    pos_ += kRecordHeader;
    record_left_ = length;
    first_ = false;
    return true;
  }

  std::span<const uint8_t> bytes_;
  size_t cap_;
  size_t pos_ = 0;
  size_t record_left_ = 0;
  bool first_ = true;
};

// Letters, digits, '-', '_' (seen in real names), dots between non-empty labels, an optional
// trailing dot. Returned lowercased.
bool valid_host_name(const uint8_t* p, size_t n, std::string& out) {
  if (n == 0) return false;
  out.resize(n);
  bool label_empty = true;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t c = p[i];
    if (c == '.') {
      if (label_empty) return false;
      label_empty = true;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
      label_empty = false;
    } else if (c >= 'A' && c <= 'Z') {
      label_empty = false;
      out[i] = static_cast<char>(c - 'A' + 'a');
      continue;
    } else {
      return false;
    }
    out[i] = static_cast<char>(c);
  }
  return true;
}

// Parses the server_name extension body (`size` bytes): the first host_name entry, if any.
bool read_server_name(HandshakeReader& r, size_t size, PeekResult& result, bool& found) {
  size_t list = 0;
  if (size < 2 || !r.u16(list))
    return size < 2 ? r.fail(Status::Error, "short server_name") : false;
  if (list != size - 2 || list == 0) {
    return r.fail(Status::Error, "server_name list length does not match its extension");
  }
  while (list > 0) {
    size_t type = 0, length = 0;
    if (list < 3) return r.fail(Status::Error, "server_name entry cut short");
    if (!r.u8(type) || !r.u16(length)) return false;
    list -= 3;
    if (length > list) return r.fail(Status::Error, "server_name entry longer than its list");
    if (type == kNameTypeHostName && !found) {
      if (length > kMaxHostName) return r.fail(Status::Error, "host_name longer than 255");
      uint8_t name[kMaxHostName];
      if (!r.read(name, length)) return false;
      if (!valid_host_name(name, length, result.server_name)) {
        return r.fail(Status::Error, "host_name is not a valid DNS name");
      }
      found = true;
    } else if (!r.skip(length)) {
      return false;
    }
    list -= length;
  }
  return true;
}

// Reads a length-prefixed vector of `width` length bytes and skips it, checking it fits in
// `left` (the bytes remaining in the ClientHello) and its length is within [min, max].
bool skip_vector(HandshakeReader& r, size_t width, size_t min, size_t max, size_t& left,
                 const char* what) {
  size_t length = 0;
  if (left < width) return r.fail(Status::Error, what);
  if (!(width == 1 ? r.u8(length) : r.u16(length))) return false;
  left -= width;
  if (length < min || length > max || length > left) return r.fail(Status::Error, what);
  if (!r.skip(length)) return false;
  left -= length;
  return true;
}

bool parse_hello(HandshakeReader& r, PeekResult& result, bool& found) {
  size_t type = 0, left = 0;
  if (!r.u8(type)) return false;
  if (type != kHandshakeClientHello)
    return r.fail(Status::NotTls, "handshake is not a ClientHello");
  if (!r.u24(left)) return false;
  // legacy_version and random
  if (left < 34) return r.fail(Status::Error, "ClientHello shorter than version and random");
  if (!r.skip(34)) return false;
  left -= 34;
  if (!skip_vector(r, 1, 0, kMaxSessionId, left, "bad legacy_session_id length") ||
      !skip_vector(r, 2, 2, 0xFFFE, left, "bad cipher_suites length") ||
      !skip_vector(r, 1, 1, 0xFF, left, "bad compression_methods length")) {
    return false;
  }
  if (left == 0) return true;  // no extensions at all (pre-TLS 1.2 clients)
  size_t extensions = 0;
  if (left < 2) return r.fail(Status::Error, "extensions length cut short");
  if (!r.u16(extensions)) return false;
  if (extensions != left - 2) {
    return r.fail(Status::Error, "extensions length does not match the ClientHello length");
  }
  bool seen_server_name = false;
  while (extensions > 0) {
    size_t ext_type = 0, ext_size = 0;
    if (extensions < 4) return r.fail(Status::Error, "extension header cut short");
    if (!r.u16(ext_type) || !r.u16(ext_size)) return false;
    extensions -= 4;
    if (ext_size > extensions) return r.fail(Status::Error, "extension longer than the list");
    if (ext_type == kExtensionServerName) {
      if (seen_server_name) return r.fail(Status::Error, "two server_name extensions");
      seen_server_name = true;
      if (!read_server_name(r, ext_size, result, found)) return false;
    } else if (!r.skip(ext_size)) {
      return false;
    }
    extensions -= ext_size;
  }
  return true;
}

// Lowercased, without one trailing dot; false for names no SNI can carry.
bool normalize(std::string_view in, std::string& out) {
  if (!in.empty() && in.back() == '.') in.remove_suffix(1);
  if (in.empty() || in.size() > kMaxHostName) return false;
  out.assign(in);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return true;
}

int find(const std::vector<std::pair<std::string, int>>& sorted, std::string_view key) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), key,
                             [](const auto& e, std::string_view k) { return e.first < k; });
  return it != sorted.end() && it->first == key ? it->second : -1;
}

}  // namespace

PeekResult peek_client_hello(std::span<const uint8_t> bytes, size_t cap) {
  PeekResult result;
  HandshakeReader reader(bytes, cap);
  bool found = false;
  if (!parse_hello(reader, result, found)) {
    result.status = reader.status;
    result.reason = reader.reason;
    result.server_name.clear();
    return result;
  }
  result.hello_length = reader.position();
  result.status = found ? Status::Done : Status::NoSni;
  return result;
}

Result<SniMatcher> SniMatcher::build(const std::vector<std::vector<std::string>>& entries) {
  SniMatcher m;
  for (size_t i = 0; i < entries.size(); ++i) {
    for (const std::string& raw : entries[i]) {
      std::string name;
      if (!normalize(raw, name)) {
        return Error{0, fmt::format("server name \"{}\" is empty or longer than 255", raw)};
      }
      const bool wildcard = name.size() > 2 && name[0] == '*' && name[1] == '.';
      if (name == "*") {
        return Error{0,
                     "server name \"*\" alone is not supported: leave sniDomains out for "
                     "the tcpHost that takes every name"};
      }
      if (name.find('*', wildcard ? 1 : 0) != std::string::npos) {
        return Error{0, fmt::format("server name \"{}\": a wildcard is allowed only as a whole "
                                    "leftmost label (\"*.example.com\")",
                                    raw)};
      }
      auto& table = wildcard ? m.suffixes_ : m.exact_;
      std::string key = wildcard ? name.substr(1) : name;
      const int other = find(table, key);
      if (other >= 0 && other != static_cast<int>(i)) {
        return Error{
            0, fmt::format("server name \"{}\" is listed by entries {} and {}", raw, other, i)};
      }
      if (other < 0) {
        auto at = std::lower_bound(table.begin(), table.end(), key,
                                   [](const auto& e, const std::string& k) { return e.first < k; });
        table.emplace(at, std::move(key), static_cast<int>(i));
      }
    }
  }
  return m;
}

int SniMatcher::match(std::string_view server_name) const {
  if (!server_name.empty() && server_name.back() == '.') server_name.remove_suffix(1);
  if (server_name.empty() || server_name.size() > kMaxHostName) return -1;
  char lowered[kMaxHostName];
  for (size_t i = 0; i < server_name.size(); ++i) {
    const char c = server_name[i];
    lowered[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  const std::string_view name(lowered, server_name.size());
  if (const int hit = find(exact_, name); hit >= 0) return hit;
  // The leftmost dot gives the longest suffix, so the first hit is the most specific wildcard.
  // pos > 0 keeps at least one non-empty label in front of the suffix.
  for (size_t pos = name.find('.', 1); pos != std::string_view::npos;
       pos = name.find('.', pos + 1)) {
    if (const int hit = find(suffixes_, name.substr(pos)); hit >= 0) return hit;
  }
  return -1;
}

}  // namespace ringway::net::tls
