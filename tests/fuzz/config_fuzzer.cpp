// libFuzzer target for the config loader. Properties checked on every input:
//  - invalid input yields at least one error, and every diagnostic names its file;
//  - valid input prints (--print-config) to TOML that loads again without errors and prints
//    identically (load -> print -> load -> print is a fixed point).
// Any violation aborts, which libFuzzer (or the replay driver) reports with the input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ringway/config/loader.hpp"

namespace {

using ringway::config::Diagnostic;
using ringway::config::LoadResult;

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "config_fuzzer: %s\n%s\n", what, detail.c_str());
  std::abort();
}

void check_diagnostics(const LoadResult& result) {
  bool any_error = false;
  for (const auto& d : result.diagnostics) {
    if (d.file.empty()) fail("a diagnostic without a file name", ringway::config::format(d));
    any_error = any_error || d.severity == Diagnostic::Severity::Error;
  }
  if (!result.ok() && !any_error) fail("rejected without an error diagnostic", "");
  if (result.ok() && any_error) fail("accepted despite an error diagnostic", "");
}

std::string all_messages(const LoadResult& result) {
  std::string out;
  for (const auto& d : result.diagnostics)
    out += ringway::config::format(d) + "\n";
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const LoadResult first = ringway::config::load_string(text, "fuzz.toml");
  check_diagnostics(first);
  if (!first.ok()) return 0;

  const std::string printed = ringway::config::to_toml(*first.config);
  const LoadResult second = ringway::config::load_string(printed, "printed.toml");
  check_diagnostics(second);
  if (!second.ok()) fail("the printed config does not load", printed + all_messages(second));
  const std::string reprinted = ringway::config::to_toml(*second.config);
  if (reprinted != printed) fail("print is not a fixed point", printed + "----\n" + reprinted);
  return 0;
}
