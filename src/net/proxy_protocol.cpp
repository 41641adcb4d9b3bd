// PROXY protocol v1/v2 parser and builder (contract in proxy_protocol.hpp). The input is
// untrusted bytes from the network: every length is checked before it is used, and the parser
// answers NeedMore only while the bytes so far are a valid prefix of a header.
#include "ringway/net/proxy_protocol.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace ringway::net::proxy_protocol {
namespace {

constexpr std::array<uint8_t, 12> kV2Signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view kV1Prefix = "PROXY ";

// v2 byte 13: version in the high nibble (must be 2), command in the low one.
constexpr uint8_t kCommandLocal = 0x0;
constexpr uint8_t kCommandProxy = 0x1;
// v2 byte 14: address family in the high nibble, transport protocol in the low one.
constexpr uint8_t kFamilyUnspec = 0x0;
constexpr uint8_t kFamilyInet = 0x1;
constexpr uint8_t kFamilyInet6 = 0x2;
constexpr uint8_t kFamilyUnix = 0x3;
constexpr uint8_t kProtocolStream = 0x1;
constexpr uint8_t kProtocolDgram = 0x2;
// Address block sizes per family (both addresses, plus both ports for IP).
constexpr size_t kInetBlock = 4 + 4 + 2 + 2;
constexpr size_t kInet6Block = 16 + 16 + 2 + 2;
constexpr size_t kUnixBlock = 108 + 108;
constexpr size_t kTlvHeader = 3;  // type, length high byte, length low byte

ParseResult need_more() {
  return ParseResult{};
}

ParseResult error(const char* reason) {
  ParseResult r;
  r.status = Status::Error;
  r.reason = reason;
  return r;
}

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

SocketAddress inet_address(const uint8_t* ip, uint16_t port) {
  SocketAddress a;
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage);
  sin->sin_family = AF_INET;
  std::memcpy(&sin->sin_addr, ip, 4);
  sin->sin_port = htons(port);
  a.length = sizeof(sockaddr_in);
  return a;
}

SocketAddress inet6_address(const uint8_t* ip, uint16_t port) {
  SocketAddress a;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  sin6->sin6_family = AF_INET6;
  std::memcpy(&sin6->sin6_addr, ip, 16);
  sin6->sin6_port = htons(port);
  a.length = sizeof(sockaddr_in6);
  return a;
}

// ---- v1 -------------------------------------------------------------------------------------

// A decimal number without leading zeros ("0" itself is fine), at most `max`.
bool parse_decimal(std::string_view text, uint32_t max, uint32_t& out) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > max) return false;
  out = value;
  return true;
}

// Exactly four decimal octets 0..255 without leading zeros, as the spec demands (inet_pton's
// rules differ between libcs, so this does not rely on it).
bool parse_v1_ipv4(std::string_view text, uint8_t out[4]) {
  for (int i = 0; i < 4; ++i) {
    const size_t dot = i < 3 ? text.find('.') : text.size();
    if (dot == std::string_view::npos) return false;
    uint32_t octet = 0;
    if (!parse_decimal(text.substr(0, dot), 255, octet)) return false;
    out[i] = static_cast<uint8_t>(octet);
    text.remove_prefix(i < 3 ? dot + 1 : dot);
  }
  return text.empty();
}

bool parse_v1_ipv6(std::string_view text, uint8_t out[16]) {
  // Longest textual form: 39 hex/colon characters, or 45 with a trailing dotted IPv4 part.
  char copy[INET6_ADDRSTRLEN] = {};
  if (text.empty() || text.size() >= sizeof(copy)) return false;
  std::memcpy(copy, text.data(), text.size());
  return inet_pton(AF_INET6, copy, out) == 1;
}

// Splits off the next token ending at a single space; false when there is none.
bool next_token(std::string_view& rest, std::string_view& token) {
  const size_t space = rest.find(' ');
  if (space == std::string_view::npos) return false;
  token = rest.substr(0, space);
  rest.remove_prefix(space + 1);
  return true;
}

// `line` is the header without its CRLF, already known to start with "PROXY ".
ParseResult parse_v1_line(std::string_view line, size_t length) {
  std::string_view rest = line.substr(kV1Prefix.size());
  ParseResult r;
  r.status = Status::Done;
  r.version = Version::V1;
  r.length = length;
  // UNKNOWN: whatever follows (if anything) must be ignored, and the connection's own
  // addresses used.
  if (rest == "UNKNOWN" || rest.substr(0, 8) == "UNKNOWN ") return r;

  std::string_view protocol, src, dst, src_port_text;
  if (!next_token(rest, protocol)) return error("PROXY v1: no address after the protocol");
  const bool v4 = protocol == "TCP4";
  if (!v4 && protocol != "TCP6") return error("PROXY v1: protocol is not TCP4, TCP6 or UNKNOWN");
  if (!next_token(rest, src) || !next_token(rest, dst) || !next_token(rest, src_port_text)) {
    return error("PROXY v1: fewer than four fields after the protocol");
  }
  uint32_t src_port = 0, dst_port = 0;
  if (!parse_decimal(src_port_text, 65535, src_port) || !parse_decimal(rest, 65535, dst_port)) {
    return error("PROXY v1: a port is not a decimal 0..65535 without leading zeros");
  }
  if (v4) {
    uint8_t s[4], d[4];
    if (!parse_v1_ipv4(src, s) || !parse_v1_ipv4(dst, d)) {
      return error("PROXY v1: TCP4 address is not a dotted quad without leading zeros");
    }
    r.source = inet_address(s, static_cast<uint16_t>(src_port));
    r.destination = inet_address(d, static_cast<uint16_t>(dst_port));
  } else {
    uint8_t s[16], d[16];
    if (!parse_v1_ipv6(src, s) || !parse_v1_ipv6(dst, d)) {
      return error("PROXY v1: TCP6 address is not an IPv6 address");
    }
    r.source = inet6_address(s, static_cast<uint16_t>(src_port));
    r.destination = inet6_address(d, static_cast<uint16_t>(dst_port));
  }
  r.has_addresses = true;
  return r;
}

ParseResult parse_v1(std::span<const uint8_t> bytes) {
  const size_t prefix = std::min(bytes.size(), kV1Prefix.size());
  if (std::memcmp(bytes.data(), kV1Prefix.data(), prefix) != 0) {
    return error("not a PROXY protocol header");
  }
  // Scan for CRLF inside the spec's bound; anything but printable ASCII before it is refused
  // at once, so garbage is rejected without waiting for 107 bytes.
  const size_t scan = std::min(bytes.size(), kV1MaxLength);
  for (size_t i = 0; i < scan; ++i) {
    const uint8_t c = bytes[i];
    if (c == '\r') {
      if (i + 1 >= kV1MaxLength) break;
      if (i + 1 == bytes.size()) return need_more();
      if (bytes[i + 1] != '\n') return error("PROXY v1: CR not followed by LF");
      const std::string_view line(reinterpret_cast<const char*>(bytes.data()), i);
      return parse_v1_line(line, i + 2);
    }
    if (c < 0x20 || c > 0x7E) return error("PROXY v1: a byte that is not printable ASCII");
  }
  if (bytes.size() >= kV1MaxLength) return error("PROXY v1: no CRLF within 107 bytes");
  return need_more();
}

// ---- v2 -------------------------------------------------------------------------------------

// The address block a family/protocol byte requires; false for values the spec says to reject.
bool v2_block_size(uint8_t family, uint8_t protocol, size_t& size) {
  if (protocol > kProtocolDgram) return false;
  switch (family) {
    case kFamilyUnspec:
      size = 0;
      return true;
    case kFamilyInet:
      size = protocol == 0 ? 0 : kInetBlock;
      return true;
    case kFamilyInet6:
      size = protocol == 0 ? 0 : kInet6Block;
      return true;
    case kFamilyUnix:
      size = protocol == 0 ? 0 : kUnixBlock;
      return true;
    default:
      return false;
  }
}

// TLVs are skipped, but each one must fit inside the header: a TLV that runs past the declared
// length means the sender and Ringway disagree about where downstream data starts.
bool v2_tlvs_fit(const uint8_t* p, size_t size) {
  while (size > 0) {
    if (size < kTlvHeader) return false;
    const size_t value = be16(p + 1);
    if (value > size - kTlvHeader) return false;
    p += kTlvHeader + value;
    size -= kTlvHeader + value;
  }
  return true;
}

ParseResult parse_v2(std::span<const uint8_t> bytes, const ParseLimits& limits) {
  const size_t prefix = std::min(bytes.size(), kV2Signature.size());
  if (std::memcmp(bytes.data(), kV2Signature.data(), prefix) != 0) {
    return error("not a PROXY protocol header");
  }
  if (bytes.size() > 12) {
    const uint8_t version = bytes[12] >> 4, command = bytes[12] & 0x0F;
    if (version != 2) return error("PROXY v2: version is not 2");
    if (command != kCommandLocal && command != kCommandProxy) {
      return error("PROXY v2: command is neither LOCAL nor PROXY");
    }
  }
  if (bytes.size() < kV2FixedLength) return need_more();

  const uint8_t command = bytes[12] & 0x0F;
  const uint8_t family = bytes[13] >> 4, protocol = bytes[13] & 0x0F;
  const size_t declared = be16(&bytes[14]);
  const size_t total = kV2FixedLength + declared;
  if (total > std::max(limits.v2_max_length, kV2FixedLength + kInet6Block)) {
    return error("PROXY v2: header longer than the configured cap");
  }
  size_t block = 0;
  // LOCAL: the spec says the family is ignored and the declared length only tells what to skip.
  if (command == kCommandProxy) {
    if (!v2_block_size(family, protocol, block)) {
      return error("PROXY v2: unknown address family or transport protocol");
    }
    if (declared < block) return error("PROXY v2: address block shorter than its family needs");
  }
  if (bytes.size() < total) return need_more();

  ParseResult r;
  r.status = Status::Done;
  r.version = Version::V2;
  r.length = total;
  if (command == kCommandLocal) return r;
  const uint8_t* addr = bytes.data() + kV2FixedLength;
  if (family != kFamilyUnspec && protocol != 0 && !v2_tlvs_fit(addr + block, declared - block)) {
    return error("PROXY v2: a TLV runs past the end of the header");
  }
  // Only TCP over IP is forwarded with its addresses; UDP, UNIX and UNSPEC fall back to the
  // connection's own addresses, as the spec allows a receiver to do.
  if (protocol != kProtocolStream) return r;
  if (family == kFamilyInet) {
    r.source = inet_address(addr, be16(addr + 8));
    r.destination = inet_address(addr + 4, be16(addr + 10));
    r.has_addresses = true;
  } else if (family == kFamilyInet6) {
    r.source = inet6_address(addr, be16(addr + 32));
    r.destination = inet6_address(addr + 16, be16(addr + 34));
    r.has_addresses = true;
  }
  return r;
}

// ---- build ----------------------------------------------------------------------------------

// An address as it goes on the wire: 4 or 16 bytes and a port; `family` 0 when not IP.
struct WireAddress {
  int family = 0;
  uint8_t ip[16] = {};
  uint16_t port = 0;
};

WireAddress to_wire(const SocketAddress& a) {
  WireAddress w;
  if (a.family() == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&a.storage);
    w.family = AF_INET;
    std::memcpy(w.ip, &sin->sin_addr, 4);
    w.port = ntohs(sin->sin_port);
  } else if (a.family() == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&a.storage);
    w.port = ntohs(sin6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
      w.family = AF_INET;
      std::memcpy(w.ip, &sin6->sin6_addr.s6_addr[12], 4);
    } else {
      w.family = AF_INET6;
      std::memcpy(w.ip, &sin6->sin6_addr, 16);
    }
  }
  return w;
}

void map_to_v6(WireAddress& w) {
  if (w.family != AF_INET) return;
  uint8_t v4[4];
  std::memcpy(v4, w.ip, 4);
  std::memset(w.ip, 0, 10);
  w.ip[10] = 0xFF;
  w.ip[11] = 0xFF;
  std::memcpy(&w.ip[12], v4, 4);
  w.family = AF_INET6;
}

size_t copy_out(const void* data, size_t size, std::span<uint8_t> out) {
  if (size > out.size()) return 0;
  std::memcpy(out.data(), data, size);
  return size;
}

size_t build_v1(const WireAddress& s, const WireAddress& d, std::span<uint8_t> out) {
  if (s.family == 0) return copy_out("PROXY UNKNOWN\r\n", 15, out);
  char src[INET6_ADDRSTRLEN] = {}, dst[INET6_ADDRSTRLEN] = {};
  inet_ntop(s.family, s.ip, src, sizeof(src));
  inet_ntop(d.family, d.ip, dst, sizeof(dst));
  char line[kV1MaxLength + 1];
  const int n = std::snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n",
                              s.family == AF_INET ? "TCP4" : "TCP6", src, dst, s.port, d.port);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof(line)) return 0;
  return copy_out(line, static_cast<size_t>(n), out);
}

size_t build_v2(uint8_t command, const WireAddress& s, const WireAddress& d,
                std::span<uint8_t> out) {
  uint8_t header[kV2FixedLength + kInet6Block];
  std::memcpy(header, kV2Signature.data(), kV2Signature.size());
  header[12] = static_cast<uint8_t>(0x20 | command);
  size_t block = 0;
  uint8_t* p = header + kV2FixedLength;
  if (command == kCommandProxy && s.family != 0) {
    const size_t ip = s.family == AF_INET ? 4 : 16;
    header[13] = static_cast<uint8_t>(((s.family == AF_INET ? kFamilyInet : kFamilyInet6) << 4) |
                                      kProtocolStream);
    std::memcpy(p, s.ip, ip);
    std::memcpy(p + ip, d.ip, ip);
    const uint16_t ports[2] = {htons(s.port), htons(d.port)};
    std::memcpy(p + 2 * ip, ports, sizeof(ports));
    block = 2 * ip + 4;
  } else {
    header[13] = static_cast<uint8_t>(kFamilyUnspec << 4);
  }
  header[14] = static_cast<uint8_t>(block >> 8);
  header[15] = static_cast<uint8_t>(block & 0xFF);
  return copy_out(header, kV2FixedLength + block, out);
}

}  // namespace

ParseResult parse(std::span<const uint8_t> bytes, const ParseLimits& limits) {
  if (bytes.empty()) return need_more();
  if (bytes[0] == kV2Signature[0]) return parse_v2(bytes, limits);
  if (bytes[0] == static_cast<uint8_t>(kV1Prefix[0])) return parse_v1(bytes);
  return error("not a PROXY protocol header");
}

size_t build(Version version, const SocketAddress& source, const SocketAddress& destination,
             std::span<uint8_t> out) {
  WireAddress s = to_wire(source), d = to_wire(destination);
  if (s.family == 0 || d.family == 0) {
    s.family = 0;  // one side unknown: say nothing about either
  } else if (s.family != d.family) {
    // A dual-stack listener can see an IPv4 client on an IPv6 local address; the header
    // has one family, so the IPv4 side is sent in its mapped IPv6 form.
    map_to_v6(s);
    map_to_v6(d);
  }
  return version == Version::V1 ? build_v1(s, d, out) : build_v2(kCommandProxy, s, d, out);
}

size_t build_v2_local(std::span<uint8_t> out) {
  return build_v2(kCommandLocal, WireAddress{}, WireAddress{}, out);
}

}  // namespace ringway::net::proxy_protocol
