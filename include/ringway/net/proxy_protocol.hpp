// PROXY protocol v1 (text) and v2 (binary), as specified in HAProxy's doc/proxy-protocol.txt:
// parse the header a load balancer in front puts at the start of a downstream connection, and
// build the header Ringway sends to an upstream. No allocation, no exceptions: this runs on the
// workers for every accepted connection of a gateway with `options.proxyProtocol`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "ringway/net/address.hpp"

namespace ringway::net::proxy_protocol {

// The longest v1 line the spec allows, CRLF included ("PROXY UNKNOWN" with two full IPv6
// addresses and two 5-digit ports). A line not ended within this many bytes is refused.
inline constexpr size_t kV1MaxLength = 107;
// The fixed part of a v2 header: 12-byte signature, version/command, family/protocol, length.
inline constexpr size_t kV2FixedLength = 16;
// The longest v2 header accepted by default: the fixed part plus the 16-bit declared length
// could reach 65,551 bytes, nearly all of it TLVs Ringway skips. 16 + 36 (TCP over IPv6) plus
// room for the usual TLVs (ALPN, authority, SSL, unique id, AWS/Azure/GCP ids) is far below
// this; a bigger header is refused rather than buffered.
inline constexpr size_t kV2DefaultMaxLength = 1024;
// Largest header build() writes: v1 TCP6 line with full addresses (104) or v2 IPv6 (52).
inline constexpr size_t kMaxBuiltLength = kV1MaxLength;

enum class Version : uint8_t { V1 = 1, V2 = 2 };

enum class Status : uint8_t {
  NeedMore,  // every byte so far is a valid start of a header: read more, then parse again
  Error,     // not a PROXY header, or a malformed one: close the connection
  Done,      // a complete header; `length` bytes belong to it, the rest is downstream data
};

struct ParseResult {
  Status status = Status::NeedMore;
  // Error only: a static string saying what was wrong (for the once-a-second log line).
  const char* reason = nullptr;
  // Done only.
  Version version = Version::V1;
  size_t length = 0;
  // False for v1 "UNKNOWN", v2 LOCAL, and v2 families/protocols Ringway does not forward
  // (AF_UNSPEC, AF_UNIX, UDP): the spec says to use the connection's own addresses then.
  bool has_addresses = false;
  SocketAddress source;
  SocketAddress destination;
};

struct ParseLimits {
  // Cap on a v2 header's total length (fixed part + declared length); at least 16 + 36.
  size_t v2_max_length = kV2DefaultMaxLength;
};

// Parses the start of a downstream byte stream. `bytes` may be any prefix of the stream: the
// answer is NeedMore until the header is complete, and never depends on bytes after the header.
// Every declared length is checked against the limits and the spec before it is used.
ParseResult parse(std::span<const uint8_t> bytes, const ParseLimits& limits = {});

// Writes the header that tells an upstream about a downstream connection from `source` to
// `destination` into `out` and returns its length, or 0 when `out` is too small (make it
// kMaxBuiltLength bytes). IPv4-mapped IPv6 addresses are sent as IPv4; an IPv4/IPv6 mix is sent
// as IPv6 with the IPv4 address mapped. Addresses of other families give v1 "PROXY UNKNOWN" and
// a v2 PROXY command with AF_UNSPEC and no address block.
size_t build(Version version, const SocketAddress& source, const SocketAddress& destination,
             std::span<uint8_t> out);

// A v2 LOCAL header (a connection the proxy made on its own behalf, such as a health check).
size_t build_v2_local(std::span<uint8_t> out);

}  // namespace ringway::net::proxy_protocol
