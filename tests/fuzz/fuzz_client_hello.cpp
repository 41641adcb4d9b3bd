// libFuzzer target for the ClientHello peek and the SNI matcher (src/net/tls_client_hello.cpp).
// Properties checked on every input:
//  - Done carries a non-empty, lowercase name of at most 255 bytes; NoSni/Done report a
//    ClientHello length within the input and the cap; Error and NotTls carry a reason;
//  - a prefix answers NeedMore or exactly what the whole input answers (a ClientHello split
//    over reads gives the same server name), and bytes after the ClientHello change nothing;
//  - the name found, matched against a fixed set of exact and wildcard names, picks the entry
//    that a plain reference implementation of Envoy's rules picks.
// Any violation aborts, which libFuzzer (or the replay driver) reports with the input.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringway/net/tls_client_hello.hpp"

namespace {

namespace tls = ringway::net::tls;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_client_hello: %s\n", what);
  std::abort();
}

const std::vector<std::vector<std::string>> kEntries = {
    {"*.example.com"}, {"www.example.com", "a.example"}, {"*.b.example.com"}, {"*.com"}};

// Envoy's rule written the slow, obvious way: exact first, then "*." + every suffix from the
// longest down.
int reference_match(std::string name) {
  if (!name.empty() && name.back() == '.') name.pop_back();
  for (size_t i = 0; i < kEntries.size(); ++i)
    for (const auto& n : kEntries[i])
      if (n == name) return static_cast<int>(i);
  for (size_t dot = name.find('.', 1); dot != std::string::npos; dot = name.find('.', dot + 1)) {
    const std::string pattern = "*" + name.substr(dot);
    for (size_t i = 0; i < kEntries.size(); ++i)
      for (const auto& n : kEntries[i])
        if (n == pattern) return static_cast<int>(i);
  }
  return -1;
}

bool same(const tls::PeekResult& a, const tls::PeekResult& b) {
  return a.status == b.status && a.server_name == b.server_name && a.hello_length == b.hello_length;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto matcher = tls::SniMatcher::build(kEntries);
  if (!matcher) fail("the fixed matcher does not build");
  const std::span<const uint8_t> input(data, size);
  // Alternate between the default cap and a small one taken from the input, so the cap's
  // edge is explored without 16 KiB inputs.
  const size_t cap = (size > 0 && (data[0] & 1)) ? 64 + size / 2 : tls::kDefaultClientHelloCap;
  const tls::PeekResult whole = tls::peek_client_hello(input, cap);
  switch (whole.status) {
    case tls::Status::NeedMore:
      break;
    case tls::Status::NotTls:
    case tls::Status::Error:
      if (whole.reason == nullptr) fail("NotTls/Error without a reason");
      break;
    case tls::Status::Done:
    case tls::Status::NoSni:
      if (whole.hello_length == 0 || whole.hello_length > size || whole.hello_length > cap) {
        fail("ClientHello length outside the input or the cap");
      }
      if (!same(tls::peek_client_hello(input.first(whole.hello_length), cap), whole)) {
        fail("bytes after the ClientHello changed the answer");
      }
      if (whole.status == tls::Status::NoSni && !whole.server_name.empty()) {
        fail("NoSni with a name");
      }
      break;
  }
  if (whole.status == tls::Status::Done) {
    const std::string& name = whole.server_name;
    if (name.empty() || name.size() > 255) fail("server name empty or longer than 255");
    for (char c : name)
      if (c >= 'A' && c <= 'Z') fail("server name not lowercased");
    if (matcher->match(name) != reference_match(name)) fail("matcher disagrees with Envoy's rule");
  }
  const size_t stop = whole.hello_length > 0 ? whole.hello_length : size;
  for (size_t n = 0; n < stop; n += (n < 64 ? 1 : 97)) {
    const tls::PeekResult part = tls::peek_client_hello(input.first(n), cap);
    if (part.status != tls::Status::NeedMore && !same(part, whole)) {
      fail("a prefix answered differently from the whole input");
    }
  }
  // The matcher alone on the raw input as a name (any bytes): never crashes, agrees with the
  // reference for names without upper case (the reference does not lowercase).
  const std::string_view raw(reinterpret_cast<const char*>(data), std::min<size_t>(size, 300));
  bool lower = true;
  for (char c : raw)
    lower = lower && !(c >= 'A' && c <= 'Z');
  const int got = matcher->match(raw);
  if (lower && raw.size() <= 255 && got != reference_match(std::string(raw))) {
    fail("matcher disagrees with Envoy's rule on a raw name");
  }
  return 0;
}
