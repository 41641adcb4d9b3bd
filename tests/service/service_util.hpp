// Helpers shared by the service-level tests: a daemon started from a TOML text with its stderr
// shown on failure, files read line by line with a bounded wait, and a blocking echo exchange.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "process.hpp"
#include "sockets.hpp"
#include "test_env.hpp"

namespace ringway::test {

// Replaces every `{key}` in `text` (a tiny template, so each test keeps its TOML readable).
inline std::string fill(std::string text,
                        const std::vector<std::pair<std::string, std::string>>& values) {
  for (const auto& [key, value] : values) {
    const std::string token = "{" + key + "}";
    for (size_t at = text.find(token); at != std::string::npos; at = text.find(token, at)) {
      text.replace(at, token.size(), value);
      at += value.size();
    }
  }
  return text;
}

// The complete lines of a file (a trailing partial line is left out: the writer is not done).
inline std::vector<std::string> complete_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

// Polls until `path` holds at least `n` complete lines (the access log's flusher writes every
// 100 ms), then returns them; fewer on timeout.
inline std::vector<std::string> wait_lines(const std::string& path, size_t n, Millis timeout) {
  std::vector<std::string> lines;
  poll_until(
      [&] {
        lines = complete_lines(path);
        return lines.size() >= n;
      },
      timeout, Millis(20));
  return lines;
}

// Reads exactly `n` bytes or fails at the deadline (EOF or error also fail).
inline bool read_exact(int fd, std::string& out, size_t n, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  out.clear();
  char buf[4096];
  while (out.size() < n) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t got = ::read(fd, buf, std::min(sizeof(buf), n - out.size()));
    if (got <= 0) return false;
    out.append(buf, static_cast<size_t>(got));
  }
  return true;
}

// Owns the daemon; prints its stderr when the test failed.
class DaemonTest : public testing::Test {
 protected:
  void TearDown() override {
    if (proxy_ && HasFailure()) {
      std::string err = proxy_->stderr_text();
      if (err.size() > 16384) err = "...\n" + err.substr(err.size() - 16384);
      std::cerr << "---- ringway stderr (config " << proxy_->config_path() << ") ----\n"
                << err << "---- end of ringway stderr ----\n";
    }
    proxy_.reset();  // SIGKILL if still running
  }

  // Starts the daemon and waits for its ready line.
  testing::AssertionResult start(const std::string& toml) {
    if (ringway_bin().empty()) return testing::AssertionFailure() << "RINGWAY_BIN is not set";
    proxy_ = std::make_unique<RingwayProcess>();
    if (!proxy_->start(toml)) return testing::AssertionFailure() << proxy_->error();
    if (!proxy_->wait_ready(scaled(Millis(10000)))) {
      return testing::AssertionFailure() << proxy_->error() << "\nconfig:\n" << toml;
    }
    return testing::AssertionSuccess();
  }

  std::unique_ptr<RingwayProcess> proxy_;
  TempDir dir_;  // for access logs and sockets the test creates
};

}  // namespace ringway::test
