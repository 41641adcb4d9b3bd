// Helpers shared by the pre-connect phase's integration tests (sni_passthrough_test.cpp,
// proxy_protocol_test.cpp): programs nobody here wrote (openssl, haproxy) in the background,
// stopped by their pid; ports; deterministic payloads; the fixture with a private directory.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "admin_client.hpp"
#include "child_process.hpp"
#include "fixture.hpp"
#include "netns.hpp"
#include "process.hpp"
#include "scripted_peer.hpp"
namespace ringway::test {
namespace {

// A program in the background with stdout and stderr in a file; stopped by its pid.
class Background {
 public:
  bool start(const std::vector<std::string>& argv, const std::string& log_path) {
    log_path_ = log_path;
    return child_.start(argv, log_path);
  }
  std::string log() const { return read_file(log_path_); }
  // Waits (bounded) until the log contains `text`.
  bool wait_log(const std::string& text, Millis timeout) const {
    return poll_until([&] { return log().find(text) != std::string::npos; }, timeout);
  }
  void stop() { child_.stop(); }

 private:
  Child child_;
  std::string log_path_;
};

// A port that was free a moment ago, for programs that need a number in their config.
inline uint16_t free_port() {
  uint16_t port = 0;
  Fd fd = listen_tcp("127.0.0.1", 1, &port);
  return port;
}

// Waits (bounded) until a program holds the port: binding it then fails with EADDRINUSE. (A
// probe connection would go through the program and be seen as a session, or a bad header.)
inline bool wait_bound(uint16_t port, Millis timeout) {
  return poll_until(
      [&] {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        return ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 &&
               errno == EADDRINUSE;
      },
      timeout);
}

// Deterministic line of [a-z0-9], different per seed.
inline std::string pattern_line(size_t n, uint64_t seed) {
  std::string s;
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s.push_back("abcdefghijklmnopqrstuvwxyz0123456789"[x % 36]);
  }
  return s;
}

inline std::string reversed(std::string s) {
  return std::string(s.rbegin(), s.rend());
}

inline std::string shell_quote(const std::string& s) {
  return "'" + s + "'";  // our own paths and names: no quotes inside
}

class ListenerFiltersTest : public ProxyTest {
 protected:
  void SetUp() override {
    openssl_ = find_program("openssl");
    haproxy_ = find_program("haproxy");
  }

  // A throwaway self-signed certificate for CN=name (EC P-256: generated in milliseconds).
  bool make_cert(const std::string& name) {
    const std::string base = dir_.path() + "/" + name;
    const CommandResult r =
        run_command({openssl_, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", base + ".key", "-out",
                     base + ".pem", "-subj", "/CN=" + name, "-days", "1"},
                    scaled(Millis(10000)));
    if (r.exit_code != 0) ADD_FAILURE() << "openssl req: " << r.err;
    return r.exit_code == 0;
  }

  // `openssl s_server -rev` (each line comes back reversed) with the certificate of `name`.
  uint16_t start_tls_backend(Background& server, const std::string& name) {
    const uint16_t port = free_port();
    const std::string base = dir_.path() + "/" + name;
    EXPECT_TRUE(server.start({openssl_, "s_server", "-accept", "127.0.0.1:" + std::to_string(port),
                              "-cert", base + ".pem", "-key", base + ".key", "-rev"},
                             dir_.path() + "/s_server-" + name + ".log"));
    EXPECT_TRUE(server.wait_log("ACCEPT", scaled(Millis(5000)))) << server.log();
    return port;
  }

  // `openssl s_client -servername name` to `port`: sends `lines` then CLOSE, returns stdout.
  CommandResult tls_client(uint16_t port, const std::string& name, const std::string& lines) {
    const std::string input = dir_.path() + "/input-" + name;
    std::ofstream(input) << lines << "CLOSE\n";
    const std::string cmd = shell_quote(openssl_) +
                            " s_client -connect 127.0.0.1:" + std::to_string(port) +
                            " -servername " + name + " -ign_eof < " + shell_quote(input);
    return run_command({"/bin/sh", "-c", cmd}, scaled(Millis(10000)));
  }

  std::string openssl_;
  std::string haproxy_;
  TempDir dir_;
};

// Replaces every `key` in `text` with its value.
inline std::string fill(std::string text,
                        const std::vector<std::pair<std::string, std::string>>& vars) {
  for (const auto& [key, value] : vars) {
    // Searching on after the value: a value may contain its key.
    for (size_t at = text.find(key); at != std::string::npos;
         at = text.find(key, at + value.size()))
      text.replace(at, key.size(), value);
  }
  return text;
}

}  // namespace
}  // namespace ringway::test
