// TLS ClientHello peek and SNI matching, for SNI passthrough (`tcpHosts[].sslConfig.sniDomains`
// without certificates): read the server name from the first bytes of a downstream connection
// without consuming them (the upstream gets every byte unchanged), then pick the tcpHost whose
// `sniDomains` match it. TLS is never terminated here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringway/config/model.hpp"
#include "ringway/core/result.hpp"

namespace ringway::net::tls {

// Default cap on the stream bytes examined (record headers included): the config's
// sniPassthrough.maxClientHelloBytes default, defined once in model.hpp. A ClientHello with
// post-quantum key shares is ~1.8 KB; one that does not end within the cap is refused rather
// than buffered.
inline constexpr size_t kDefaultClientHelloCap = config::kDefaultMaxClientHelloBytes;

enum class Status : uint8_t {
  NeedMore,  // a valid prefix of a ClientHello: read more (up to the cap), then peek again
  NotTls,    // the first bytes are not a TLS handshake record carrying a ClientHello
  NoSni,     // a complete, well-formed ClientHello without a server_name host_name
  Error,     // malformed (a length that does not fit, a bad name), or larger than the cap
  Done,      // `server_name` holds the host_name, lowercased
};

struct PeekResult {
  Status status = Status::NeedMore;
  const char* reason = nullptr;  // Error and NotTls: a static string saying why
  std::string server_name;       // Done only
  size_t hello_length = 0;       // NoSni/Done: stream bytes up to the ClientHello's last byte
};

// Looks at the first bytes of a connection. `bytes` may be any prefix of the stream and may hold
// the ClientHello in several handshake records; the answer for a prefix is NeedMore or the
// answer for the whole stream, never something else. At most `cap` bytes are examined. The
// whole ClientHello is checked (every nested length against its parent) before an answer.
PeekResult peek_client_hello(std::span<const uint8_t> bytes, size_t cap = kDefaultClientHelloCap);

// Picks the entry whose server names match a name, with Envoy's filter-chain semantics:
//  - an exact name ("a.example.com") beats any wildcard;
//  - "*.example.com" matches one or more labels before ".example.com" ("a.example.com",
//    "a.b.example.com") but not "example.com" itself;
//  - among wildcards the longest suffix wins ("*.b.example.com" before "*.example.com");
//  - names compare case-insensitively; a trailing dot is ignored.
// A pattern may appear in only one entry; "*" alone and partial wildcards ("*w.example.com",
// "a.*.com") are refused, as Envoy refuses them.
class SniMatcher {
 public:
  // entries[i] is the list of names of entry i (one tcpHost's sniDomains).
  static Result<SniMatcher> build(const std::vector<std::vector<std::string>>& entries);

  // The index of the matching entry, or -1.
  int match(std::string_view server_name) const;

 private:
  // Sorted by name, for lookups without allocating. Wildcards are stored as their suffix
  // including the leading dot (".example.com").
  std::vector<std::pair<std::string, int>> exact_;
  std::vector<std::pair<std::string, int>> suffixes_;
};

}  // namespace ringway::net::tls
