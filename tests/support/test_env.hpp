// Environment of the integration tests: where the daemon is, how much to stretch every deadline
// (RINGWAY_TIMEOUT_SCALE, raised for sanitizer builds), and bounded polling instead of sleeps.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace ringway::test {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// RINGWAY_TIMEOUT_SCALE as a factor >= 1 (unset, empty or unparsable means 1).
double timeout_scale();

// `d` multiplied by the timeout scale. Every deadline in the tests goes through this.
Millis scaled(Millis d);

// RINGWAY_BIN (the daemon under test); empty when unset.
std::string ringway_bin();
// RINGWAY_SOURCE_ROOT (the checkout, for conf/ examples); empty when unset.
std::string source_root();

// True when the test binary itself was built with AddressSanitizer (memory figures differ).
bool built_with_asan();

// Calls `pred` every `interval` until it returns true or `timeout` (already scaled by the
// caller, or not: the caller decides) has passed. Returns the last result of `pred`, so a
// condition that becomes true exactly at the deadline still counts.
bool poll_until(const std::function<bool()>& pred, Millis timeout, Millis interval = Millis(20));

// Milliseconds elapsed since `start`, as a double for messages.
double ms_since(Clock::time_point start);

}  // namespace ringway::test
