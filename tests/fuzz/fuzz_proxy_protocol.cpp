// libFuzzer target for the PROXY protocol parser (src/net/proxy_protocol.cpp). Properties
// checked on every input:
//  - Done reports a length within the input and within the spec's bounds (107 bytes for v1,
//    the cap for v2); Error always carries a reason;
//  - a prefix of the input answers NeedMore or exactly what the whole input answers, so a
//    header split over several reads is parsed the same (the "never decide early" rule);
//  - the bytes after a header never change the answer;
//  - addresses that were parsed build into a v1 and a v2 header that parse back to them.
// Any violation aborts, which libFuzzer (or the replay driver) reports with the input.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "ringway/net/proxy_protocol.hpp"

namespace {

namespace pp = ringway::net::proxy_protocol;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_proxy_protocol: %s\n", what);
  std::abort();
}

bool same(const pp::ParseResult& a, const pp::ParseResult& b) {
  if (a.status != b.status) return false;
  if (a.status != pp::Status::Done) return true;
  return a.length == b.length && a.version == b.version && a.has_addresses == b.has_addresses &&
         (!a.has_addresses || (a.source.to_string() == b.source.to_string() &&
                               a.destination.to_string() == b.destination.to_string()));
}

void check_round_trip(const pp::ParseResult& r) {
  uint8_t out[pp::kMaxBuiltLength];
  for (pp::Version v : {pp::Version::V1, pp::Version::V2}) {
    const size_t n = pp::build(v, r.source, r.destination, out);
    if (n == 0) fail("build wrote nothing for parsed addresses");
    const pp::ParseResult back = pp::parse({out, n});
    if (back.status != pp::Status::Done || back.length != n || !back.has_addresses) {
      fail("a built header does not parse back");
    }
    if (back.source.port() != r.source.port() || back.destination.port() != r.destination.port()) {
      fail("ports changed in the round trip");
    }
    if (back.source.family() == r.source.family() &&
        back.source.to_string() != r.source.to_string()) {
      fail("source address changed in the round trip");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);
  // The first byte (when there is one) also picks a v2 cap, so small caps are explored too.
  const pp::ParseLimits limits{size > 0 ? 16 + size_t{data[size - 1]} * 8
                                        : pp::kV2DefaultMaxLength};
  const pp::ParseResult whole = pp::parse(input, limits);
  switch (whole.status) {
    case pp::Status::NeedMore:
      break;
    case pp::Status::Error:
      if (whole.reason == nullptr) fail("Error without a reason");
      break;
    case pp::Status::Done:
      if (whole.length == 0 || whole.length > size) fail("Done with a length outside the input");
      if (whole.version == pp::Version::V1 && whole.length > pp::kV1MaxLength) {
        fail("v1 header longer than 107 bytes");
      }
      if (whole.version == pp::Version::V2 &&
          whole.length > std::max<size_t>(limits.v2_max_length, 16 + 36)) {
        fail("v2 header longer than the cap");
      }
      // The header alone gives the same answer as the header plus data.
      if (!same(pp::parse(input.first(whole.length), limits), whole)) {
        fail("bytes after the header changed the answer");
      }
      if (whole.has_addresses) check_round_trip(whole);
      break;
  }
  // Prefixes: every length up to 128, then a few beyond.
  const size_t stop = whole.status == pp::Status::Done ? whole.length : size;
  for (size_t n = 0; n < stop; n += (n < 128 ? 1 : 61)) {
    const pp::ParseResult part = pp::parse(input.first(n), limits);
    if (part.status != pp::Status::NeedMore && !same(part, whole)) {
      fail("a prefix answered differently from the whole input");
    }
  }
  return 0;
}
