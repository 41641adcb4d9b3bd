// The pre-connect phase against peers nobody here wrote: SNI passthrough between two
// `openssl s_server` backends chosen by `openssl s_client -servername`, and the PROXY protocol
// both ways with HAProxy (send-proxy / send-proxy-v2 in front of Ringway, accept-proxy behind
// it). Skipped, with the reason, when openssl or haproxy is missing (scripts/lib.sh installs
// both in RINGWAY_TEST_PACKAGES).
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
#include "fixture.hpp"
#include "netns.hpp"
#include "process.hpp"
#include "scripted_peer.hpp"

namespace ringway::test {
namespace {

// A program in the background with stdout and stderr in a file; stopped by its pid.
class Background {
 public:
  Background() = default;
  ~Background() { stop(); }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  bool start(const std::vector<std::string>& argv, const std::string& log_path) {
    log_path_ = log_path;
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      const int in = ::open("/dev/null", O_RDONLY);
      const int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(out, 2);
      std::vector<char*> args;
      for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    return true;
  }
  std::string log() const { return read_file(log_path_); }
  // Waits (bounded) until the log contains `text`.
  bool wait_log(const std::string& text, Millis timeout) const {
    return poll_until([&] { return log().find(text) != std::string::npos; }, timeout);
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const bool gone = poll_until([&] { return ::waitpid(pid_, nullptr, WNOHANG) == pid_; },
                                 Millis(2000), Millis(10));
    if (!gone) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

// A port that was free a moment ago, for programs that need a number in their config.
uint16_t free_port() {
  uint16_t port = 0;
  Fd fd = listen_tcp("127.0.0.1", 1, &port);
  return port;
}

// Waits (bounded) until a program holds the port: binding it then fails with EADDRINUSE. (A
// probe connection would go through the program and be seen as a session, or a bad header.)
bool wait_bound(uint16_t port, Millis timeout) {
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
std::string pattern_line(size_t n, uint64_t seed) {
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

std::string reversed(std::string s) {
  return std::string(s.rbegin(), s.rend());
}

std::string shell_quote(const std::string& s) {
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

constexpr const char* kSniConfig = R"(
[settings]
workers = 1
drainTimeout = "2s"
admin = { bindAddress = "127.0.0.1", bindPort = 0 }

[[gateways]]
metadata = { name = "tls", namespace = "default" }
bindAddress = "127.0.0.1"
bindPort = 0
[gateways.options]
listenerFiltersTimeout = "1s"
[[gateways.tcpGateway.tcpHosts]]
name = "a"
sslConfig = { sniDomains = ["a.example"] }
destination.single.upstream = { name = "a" }
[[gateways.tcpGateway.tcpHosts]]
name = "b"
sslConfig = { sniDomains = ["b.example", "*.b.example"] }
destination.single.upstream = { name = "b" }
[[gateways.tcpGateway.tcpHosts]]
name = "fallback"
destination.single.upstream = { name = "plain" }

[[gateways]]
metadata = { name = "strict", namespace = "default" }
bindAddress = "127.0.0.1"
bindPort = 0
[gateways.options]
sniPassthrough = { onNoMatch = "reset" }
[[gateways.tcpGateway.tcpHosts]]
name = "a"
sslConfig = { sniDomains = ["a.example"] }
destination.single.upstream = { name = "a" }

[[upstreams]]
metadata = { name = "a", namespace = "default" }
static.hosts = [{ addr = "127.0.0.1", port = A_PORT }]
[[upstreams]]
metadata = { name = "b", namespace = "default" }
static.hosts = [{ addr = "127.0.0.1", port = B_PORT }]
[[upstreams]]
metadata = { name = "plain", namespace = "default" }
static.hosts = [{ addr = "127.0.0.1", port = PLAIN_PORT }]
)";

std::string fill(std::string text, const std::vector<std::pair<std::string, std::string>>& vars) {
  for (const auto& [key, value] : vars) {
    // Searching on after the value: a value may contain its key.
    for (size_t at = text.find(key); at != std::string::npos;
         at = text.find(key, at + value.size()))
      text.replace(at, key.size(), value);
  }
  return text;
}

const std::map<std::string, std::string> kTls{{"gateway", "default.tls"}};
const std::map<std::string, std::string> kStrict{{"gateway", "default.strict"}};

// Relays one connection from a local listener to `to`, passing the first `slow_bytes` from the
// client in `piece`-byte writes `gap` apart (a ClientHello trickling in), the rest at once.
class SlowRelay {
 public:
  SlowRelay(Endpoint to, size_t slow_bytes, size_t piece, Millis gap)
      : listener_(listen_tcp("127.0.0.1", 4, &port_)) {
    thread_ = std::thread([=, this] { run(to, slow_bytes, piece, gap); });
  }
  ~SlowRelay() {
    stop_ = true;
    thread_.join();
  }
  uint16_t port() const { return port_; }
  size_t pieces() const { return pieces_; }

 private:
  void run(Endpoint to, size_t slow_bytes, size_t piece, Millis gap) {
    pollfd lp{listener_.get(), POLLIN, 0};
    if (::poll(&lp, 1, static_cast<int>(scaled(Millis(10000)).count())) != 1) return;
    Fd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    Fd server = connect_tcp(to, scaled(Millis(2000)));
    if (!client.valid() || !server.valid()) return;
    size_t slow_left = slow_bytes;
    const auto deadline = Clock::now() + scaled(Millis(15000));
    bool client_open = true;
    bool server_open = true;
    while (!stop_ && (client_open || server_open) && Clock::now() < deadline) {
      pollfd p[2] = {{client.get(), static_cast<short>(client_open ? POLLIN : 0), 0},
                     {server.get(), static_cast<short>(server_open ? POLLIN : 0), 0}};
      if (::poll(p, 2, 100) <= 0) continue;
      char buf[16384];
      if (p[0].revents != 0) {
        const ssize_t n = ::recv(client.get(), buf, sizeof(buf), 0);
        if (n <= 0) {
          client_open = false;
          ::shutdown(server.get(), SHUT_WR);
        } else {
          size_t off = 0;
          while (off < static_cast<size_t>(n)) {
            size_t len = static_cast<size_t>(n) - off;
            if (slow_left > 0) {
              len = std::min({len, piece, slow_left});
              slow_left -= len;
              ++pieces_;
              std::this_thread::sleep_for(gap);
            }
            if (!write_all(server.get(), buf + off, len, scaled(Millis(2000)))) return;
            off += len;
          }
        }
      }
      if (p[1].revents != 0) {
        const ssize_t n = ::recv(server.get(), buf, sizeof(buf), 0);
        if (n <= 0) {
          server_open = false;
          ::shutdown(client.get(), SHUT_WR);
        } else if (!write_all(client.get(), buf, static_cast<size_t>(n), scaled(Millis(2000)))) {
          return;
        }
      }
    }
  }

  uint16_t port_ = 0;
  Fd listener_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> pieces_{0};
  std::thread thread_;
};

TEST_F(ListenerFiltersTest, SniPassthroughPicksTheBackendByServerName) {
  if (openssl_.empty()) GTEST_SKIP() << "openssl is not installed (scripts/lib.sh lists it)";
  ASSERT_TRUE(make_cert("a.example"));
  ASSERT_TRUE(make_cert("b.example"));
  Background server_a;
  Background server_b;
  const uint16_t a_port = start_tls_backend(server_a, "a.example");
  const uint16_t b_port = start_tls_backend(server_b, "b.example");
  // The default tcpHost's upstream: a plain listener that keeps what arrives, to show the
  // ClientHello reaches it unchanged.
  uint16_t plain_port = 0;
  Fd plain = listen_tcp("127.0.0.1", 16, &plain_port);
  ASSERT_TRUE(plain.valid());
  ASSERT_TRUE(start_proxy(fill(kSniConfig, {{"A_PORT", std::to_string(a_port)},
                                            {"B_PORT", std::to_string(b_port)},
                                            {"PLAIN_PORT", std::to_string(plain_port)}})));
  const uint16_t gw = gateway("default.tls").port;

  // a.example and b.example reach their own backends (the certificate's subject says which),
  // and three 2,000-byte lines come back reversed, byte for byte.
  for (const std::string name : {"a.example", "b.example", "x.b.example"}) {
    SCOPED_TRACE(name);
    std::string lines;
    std::string expected;
    for (uint64_t i = 0; i < 3; ++i) {
      const std::string line = pattern_line(2000, i + name.size());
      lines += line + "\n";
      expected += reversed(line) + "\n";
    }
    const auto started = Clock::now();
    const CommandResult r = tls_client(gw, name, lines);
    note("s_client_ms_" + name, ms_since(started));
    const std::string subject = name == "a.example" ? "a.example" : "b.example";
    EXPECT_NE(r.out.find("subject=CN = " + subject), std::string::npos) << r.out << r.err;
    EXPECT_NE(r.out.find(expected), std::string::npos) << "reversed payload missing: " << r.out;
  }

  // An unknown name goes to the default tcpHost, ClientHello intact (record type 22, the name).
  {
    Background client;
    ASSERT_TRUE(client.start({openssl_, "s_client", "-connect", "127.0.0.1:" + std::to_string(gw),
                              "-servername", "unknown.example"},
                             dir_.path() + "/s_client-unknown.log"));
    pollfd p{plain.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, static_cast<int>(scaled(Millis(5000)).count())), 1);
    Fd conn(::accept4(plain.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(conn.valid());
    std::string got;
    poll_until(
        [&] {
          char buf[4096];
          const ssize_t n = ::recv(conn.get(), buf, sizeof(buf), MSG_DONTWAIT);
          if (n > 0) got.append(buf, static_cast<size_t>(n));
          return got.find("unknown.example") != std::string::npos;
        },
        scaled(Millis(5000)));
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(static_cast<uint8_t>(got[0]), 0x16) << "not a TLS handshake record";
    EXPECT_NE(got.find("unknown.example"), std::string::npos);
    client.stop();
  }

  // No default tcpHost and onNoMatch = "reset": an unknown name, and plaintext, are reset.
  {
    const CommandResult r = tls_client(gateway("default.strict").port, "c.example", "x\n");
    EXPECT_EQ(r.out.find("subject="), std::string::npos) << r.out;
    Fd c = connect_tcp(gateway("default.strict"), scaled(Millis(2000)));
    ASSERT_TRUE(c.valid());
    ASSERT_TRUE(write_all(c.get(), "GET / HTTP/1.0\r\n\r\n", 18, scaled(Millis(1000))));
    EXPECT_EQ(drain_until_end(c.get(), scaled(Millis(5000))), StreamEnd::Reset);
    EXPECT_TRUE(wait_metric("ringway_sni_no_match_total", kStrict, 2, scaled(Millis(3000))));
  }

  // A ClientHello trickling in 7-byte pieces 5 ms apart (its first 400 bytes) still reaches
  // b.example intact.
  {
    SlowRelay relay(gateway("default.tls"), 400, 7, Millis(5));
    const auto started = Clock::now();
    const std::string line = pattern_line(500, 99);
    const CommandResult r = tls_client(relay.port(), "b.example", line + "\n");
    note("slow_client_hello_pieces", static_cast<double>(relay.pieces()));
    note("slow_client_hello_ms", ms_since(started));
    EXPECT_NE(r.out.find("subject=CN = b.example"), std::string::npos) << r.out << r.err;
    EXPECT_NE(r.out.find(reversed(line)), std::string::npos) << r.out;
    EXPECT_GT(relay.pieces(), 20u);
  }

  // A silent client is closed at listenerFiltersTimeout (1 s; the wheel ticks every 100 ms).
  {
    Fd c = connect_tcp(gateway("default.tls"), scaled(Millis(2000)));
    ASSERT_TRUE(c.valid());
    const auto started = Clock::now();
    EXPECT_EQ(drain_until_end(c.get(), scaled(Millis(5000))), StreamEnd::Eof);
    const double waited = ms_since(started);
    note("silent_client_closed_after_ms", waited);
    EXPECT_GE(waited, 900.0);
    EXPECT_TRUE(
        wait_metric("ringway_listener_filters_timeouts_total", kTls, 1, scaled(Millis(2000))));
  }
  EXPECT_EQ(metric("ringway_client_hello_errors_total", kTls).value_or(-1), 0);
  server_a.stop();
  server_b.stop();
  expect_no_leaks();
}

// ---- PROXY protocol with HAProxy --------------------------------------------------------------

constexpr const char* kProxyInConfig = R"(
[settings]
workers = 1
drainTimeout = "2s"
admin = { bindAddress = "127.0.0.1", bindPort = 0 }

[[gateways]]
metadata = { name = "tcp", namespace = "default" }
bindAddress = "127.0.0.1"
bindPort = 0
[gateways.options]
proxyProtocol = {}
listenerFiltersTimeout = "2s"
[[gateways.options.accessLoggingService.accessLog]]
fileSink = { path = "LOG_PATH", stringFormat = "from=%DOWNSTREAM_REMOTE_ADDRESS% %CONNECTION_TERMINATION_DETAILS%" }
[[gateways.tcpGateway.tcpHosts]]
name = "echo"
destination.single.upstream = { name = "echo" }

[[upstreams]]
metadata = { name = "echo", namespace = "default" }
static.hosts = [{ addr = "127.0.0.1", port = ECHO_PORT }]
)";

std::string haproxy_config(uint16_t port, const std::string& bind_opts, const Endpoint& server,
                           const std::string& server_opts) {
  std::ostringstream cfg;
  cfg << "global\n  maxconn 100\n  log stdout format raw local0\n"
      << "defaults\n  mode tcp\n  log global\n  timeout connect 5s\n  timeout client 10s\n"
      << "  timeout server 10s\n"
      << "frontend fe\n  bind 127.0.0.1:" << port << " " << bind_opts << "\n"
      << "  log-format \"haproxy-client=%ci:%cp\"\n  default_backend be\n"
      << "backend be\n  server s1 " << server.str() << " " << server_opts << "\n";
  return cfg.str();
}

// One line through the path; the echo answers it byte for byte. Returns the client's address.
std::string echo_once(const Endpoint& to, const std::string& payload) {
  Fd c = connect_tcp(to, scaled(Millis(2000)));
  if (!c.valid()) return "";
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  ::getsockname(c.get(), reinterpret_cast<sockaddr*>(&local), &len);
  if (!write_all(c.get(), payload.data(), payload.size(), scaled(Millis(2000)))) return "";
  ::shutdown(c.get(), SHUT_WR);
  std::string got;
  poll_until(
      [&] {
        char buf[4096];
        const ssize_t n = ::recv(c.get(), buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) got.append(buf, static_cast<size_t>(n));
        return n == 0 || got.size() >= payload.size();
      },
      scaled(Millis(5000)), Millis(5));
  if (got != payload) {
    ADD_FAILURE() << "echo: sent " << payload.size() << " bytes, got " << got.size();
    return "";
  }
  return "127.0.0.1:" + std::to_string(ntohs(reinterpret_cast<sockaddr_in&>(local).sin_port));
}

TEST_F(ListenerFiltersTest, ProxyProtocolFromHaproxyNamesTheClientInTheAccessLog) {
  if (haproxy_.empty()) GTEST_SKIP() << "haproxy is not installed (scripts/lib.sh lists it)";
  PeerHost echo;
  const uint16_t echo_port = echo.listen("127.0.0.1", PeerScript::Echo());
  ASSERT_NE(echo_port, 0);
  const std::string log_path = dir_.path() + "/access.log";
  ASSERT_TRUE(start_proxy(
      fill(kProxyInConfig, {{"LOG_PATH", log_path}, {"ECHO_PORT", std::to_string(echo_port)}})));
  size_t lines = 0;
  for (const std::string mode : {"send-proxy-v2", "send-proxy"}) {
    SCOPED_TRACE(mode);
    Background haproxy;
    const uint16_t fe = free_port();
    const std::string cfg = dir_.path() + "/haproxy-in.cfg";
    std::ofstream(cfg) << haproxy_config(fe, "", gateway(), mode);
    ASSERT_TRUE(haproxy.start({haproxy_, "-db", "-f", cfg}, dir_.path() + "/haproxy-in.log"));
    ASSERT_TRUE(wait_bound(fe, scaled(Millis(5000)))) << haproxy.log();
    const std::string client = echo_once({"127.0.0.1", fe}, pattern_line(3000, 7) + "\n");
    ASSERT_FALSE(client.empty());
    lines += 1;
    const auto got = [&] {
      std::vector<std::string> out;
      poll_until(
          [&] {
            std::istringstream in(read_file(log_path));
            out.clear();
            for (std::string l; std::getline(in, l);)
              out.push_back(l);
            return out.size() >= lines;
          },
          scaled(Millis(5000)));
      return out;
    }();
    bool found = false;
    for (const auto& l : got)
      found = found || l.find("from=" + client + " ") != std::string::npos;
    EXPECT_TRUE(found) << "no access log line from " << client << ":\n" << read_file(log_path);
    haproxy.stop();
  }
  EXPECT_EQ(metric("ringway_proxy_protocol_errors_total", kGw).value_or(-1), 0);

  // A connection without a header, and one with a malformed header: closed and counted.
  for (const std::string_view bad : {"hello\r\n", "PROXY TCP4 1.2.3\r\n"}) {
    Fd c = connect_tcp(gateway(), scaled(Millis(2000)));
    ASSERT_TRUE(c.valid());
    ASSERT_TRUE(write_all(c.get(), bad.data(), bad.size(), scaled(Millis(1000))));
    uint64_t bytes = 0;
    EXPECT_EQ(drain_until_end(c.get(), scaled(Millis(5000)), &bytes), StreamEnd::Eof);
    EXPECT_EQ(bytes, 0u);
  }
  EXPECT_TRUE(wait_metric("ringway_proxy_protocol_errors_total", kGw, 2, scaled(Millis(3000))));
  expect_no_leaks();
}

// allowRequestsWithoutProxyProtocol = true: a stream that cannot start a header passes through
// unchanged (the socket's peer is the client); one that starts like a header must be valid.
TEST_F(ListenerFiltersTest, AllowedHeaderlessClientsPassThrough) {
  PeerHost echo;
  const uint16_t echo_port = echo.listen("127.0.0.1", PeerScript::Echo());
  ASSERT_NE(echo_port, 0);
  const std::string log_path = dir_.path() + "/access.log";
  ASSERT_TRUE(start_proxy(fill(
      kProxyInConfig,
      {{"LOG_PATH", log_path},
       {"ECHO_PORT", std::to_string(echo_port)},
       {"proxyProtocol = {}", "proxyProtocol = { allowRequestsWithoutProxyProtocol = true }"}})));
  const std::string client = echo_once(gateway(), "hello without a header\n");
  ASSERT_FALSE(client.empty());
  Fd c = connect_tcp(gateway(), scaled(Millis(2000)));
  ASSERT_TRUE(c.valid());
  const std::string payload = "PROXY TCP4 192.0.2.30 198.51.100.1 40030 443\r\nwith one";
  ASSERT_TRUE(write_all(c.get(), payload.data(), payload.size(), scaled(Millis(1000))));
  ::shutdown(c.get(), SHUT_WR);
  std::string got;
  poll_until(
      [&] {
        char buf[256];
        const ssize_t n = ::recv(c.get(), buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) got.append(buf, static_cast<size_t>(n));
        return n == 0;
      },
      scaled(Millis(5000)), Millis(5));
  EXPECT_EQ(got, "with one");
  c.reset();
  Fd bad = connect_tcp(gateway(), scaled(Millis(2000)));
  ASSERT_TRUE(bad.valid());
  ASSERT_TRUE(write_all(bad.get(), "PROXY GARBAGE\r\n", 15, scaled(Millis(1000))));
  EXPECT_EQ(drain_until_end(bad.get(), scaled(Millis(5000))), StreamEnd::Eof);
  EXPECT_TRUE(wait_metric("ringway_proxy_protocol_errors_total", kGw, 1, scaled(Millis(3000))));
  EXPECT_TRUE(poll_until(
      [&] {
        const std::string text = read_file(log_path);
        return text.find("from=" + client + " ") != std::string::npos &&
               text.find("from=192.0.2.30:40030 ") != std::string::npos;
      },
      scaled(Millis(5000))))
      << read_file(log_path);
  expect_no_leaks();
}

// 1,000 silent clients on a gateway that waits for a PROXY header and a ClientHello hold no
// buffer: the pool stays full, and a client that does send its header is served at once.
TEST_F(ListenerFiltersTest, SilentClientsHoldNoPoolBuffers) {
  PeerHost echo;
  const uint16_t echo_port = echo.listen("127.0.0.1", PeerScript::Echo());
  ASSERT_NE(echo_port, 0);
  const std::string log_path = dir_.path() + "/access.log";
  std::string config = fill(
      kProxyInConfig, {{"LOG_PATH", log_path},
                       {"ECHO_PORT", std::to_string(echo_port)},
                       {"listenerFiltersTimeout = \"2s\"", "listenerFiltersTimeout = \"30s\""}});
  config = fill(config, {{"workers = 1\n", "workers = 1\nperWorkerBufferLimitBytes = 1048576\n"}});
  ASSERT_TRUE(start_proxy(config));
  const double pool = metric("ringway_buffer_pool_free").value_or(-1);
  ASSERT_GT(pool, 0);
  constexpr int kSilent = 1000;
  std::vector<Fd> silent;
  for (int i = 0; i < kSilent; ++i) {
    silent.push_back(connect_tcp(gateway(), scaled(Millis(2000))));
    ASSERT_TRUE(silent.back().valid()) << i;
  }
  // A few send half a header: they wait too, holding nothing.
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(write_all(silent[i].get(), "PROXY TCP4 ", 11, scaled(Millis(1000))));
  ASSERT_TRUE(
      wait_metric("ringway_downstream_connections_active", kGw, kSilent, scaled(Millis(10000))));
  EXPECT_EQ(metric("ringway_buffer_pool_free").value_or(-1), pool);
  note("pool_buffers", pool);
  note("silent_sessions", kSilent);

  Fd c = connect_tcp(gateway(), scaled(Millis(2000)));
  ASSERT_TRUE(c.valid());
  const std::string payload =
      "PROXY TCP4 192.0.2.10 198.51.100.1 40000 443\r\n" + pattern_line(1000, 5);
  const auto started = Clock::now();
  ASSERT_TRUE(write_all(c.get(), payload.data(), payload.size(), scaled(Millis(1000))));
  std::string got;
  const std::string expected = payload.substr(payload.find('\n') + 1);
  poll_until(
      [&] {
        char buf[4096];
        const ssize_t n = ::recv(c.get(), buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) got.append(buf, static_cast<size_t>(n));
        return got.size() >= expected.size();
      },
      scaled(Millis(5000)), Millis(2));
  note("echo_ms_beside_silent_clients", ms_since(started));
  EXPECT_EQ(got, expected) << "the PROXY header must be consumed, the rest echoed unchanged";
  c.reset();
  // Its access log line names the client from the header.
  EXPECT_TRUE(poll_until(
      [&] { return read_file(log_path).find("from=192.0.2.10:40000 ") != std::string::npos; },
      scaled(Millis(5000))))
      << read_file(log_path);
  silent.clear();
  EXPECT_TRUE(wait_metric("ringway_downstream_connections_active", kGw, 0, scaled(Millis(10000))));
  expect_no_leaks();
}

// A reload (SIGHUP) moves sessions to a new process: the real client named by a PROXY header
// travels with them. One session is established; one has sent its header (consumed) and waits
// for its first payload bytes, so it leaves "fresh" and resumes past the PROXY stage. The new
// process's access log and /sockets name the clients from the headers.
constexpr const char* kReloadConfig = R"(
[settings]
workers = 1
drainTimeout = "5s"
admin = { bindAddress = "127.0.0.1", bindPort = 0 }

[[gateways]]
metadata = { name = "tcp", namespace = "default" }
bindAddress = "127.0.0.1"
bindPort = 0
[gateways.options]
proxyProtocol = {}
listenerFiltersTimeout = "30s"
[[gateways.options.accessLoggingService.accessLog]]
fileSink = { path = "LOG_PATH", stringFormat = "from=%DOWNSTREAM_REMOTE_ADDRESS% %CONNECTION_TERMINATION_DETAILS%" }
[[gateways.tcpGateway.tcpHosts]]
name = "tls"
sslConfig = { sniDomains = ["a.example"] }
destination.single.upstream = { name = "echo" }
[[gateways.tcpGateway.tcpHosts]]
name = "plain"
destination.single.upstream = { name = "echo" }

[[upstreams]]
metadata = { name = "echo", namespace = "default" }
static.hosts = [{ addr = "127.0.0.1", port = ECHO_PORT }]
)";

// The receive queue of the daemon's socket for a loopback connection from `peer_port` to
// `local_port` (/proc/net/tcp), or -1 when not found.
long server_rx_queue(uint16_t local_port, uint16_t peer_port) {
  std::istringstream in(read_file("/proc/net/tcp"));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string slot, local, remote, state, queues;
    f >> slot >> local >> remote >> state >> queues;
    const auto port_of = [](const std::string& a) {
      return static_cast<uint16_t>(std::stoul(a.substr(a.find(':') + 1), nullptr, 16));
    };
    if (local.find(':') == std::string::npos || remote.find(':') == std::string::npos) continue;
    if (port_of(local) != local_port || port_of(remote) != peer_port) continue;
    return std::stol(queues.substr(queues.find(':') + 1), nullptr, 16);
  }
  return -1;
}

std::string read_some(int fd, size_t want, Millis timeout) {
  std::string got;
  poll_until(
      [&] {
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) got.append(buf, static_cast<size_t>(n));
        return n == 0 || got.size() >= want;
      },
      timeout, Millis(5));
  return got;
}

TEST_F(ListenerFiltersTest, ProxiedClientSurvivesAReload) {
  // The successor is the daemon's child and outlives it: as subreaper this test inherits it,
  // and stops it by its pid.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  PeerHost echo;
  const uint16_t echo_port = echo.listen("127.0.0.1", PeerScript::Echo());
  ASSERT_NE(echo_port, 0);
  const std::string log_path = dir_.path() + "/access.log";
  ASSERT_TRUE(start_proxy(
      fill(kReloadConfig, {{"LOG_PATH", log_path}, {"ECHO_PORT", std::to_string(echo_port)}})));
  const Endpoint gw = gateway();

  Fd established = connect_tcp(gw, scaled(Millis(2000)));
  ASSERT_TRUE(established.valid());
  const std::string a = "PROXY TCP4 192.0.2.20 198.51.100.1 40001 443\r\nbefore";
  ASSERT_TRUE(write_all(established.get(), a.data(), a.size(), scaled(Millis(1000))));
  ASSERT_EQ(read_some(established.get(), 6, scaled(Millis(5000))), "before");

  Fd waiting = connect_tcp(gw, scaled(Millis(2000)));
  ASSERT_TRUE(waiting.valid());
  const std::string b = "PROXY TCP4 192.0.2.21 198.51.100.1 40002 443\r\n";
  ASSERT_TRUE(write_all(waiting.get(), b.data(), b.size(), scaled(Millis(1000))));
  ASSERT_TRUE(wait_metric("ringway_downstream_connections_active", kGw, 2, scaled(Millis(3000))));
  // Wait until the daemon has consumed the header: its socket's receive queue (in
  // /proc/net/tcp, seen from this same network namespace) is then empty.
  EXPECT_TRUE(poll_until([&] { return server_rx_queue(gw.port, local_port(waiting.get())) == 0; },
                         scaled(Millis(3000))));
  const auto before = proxy().stderr_text().size();
  proxy().signal(SIGHUP);
  const auto code = proxy().wait_exit(scaled(Millis(20000)));
  ASSERT_TRUE(code && *code == 0) << proxy().stderr_text();
  const std::string log = proxy().stderr_text().substr(before);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(log, m, std::regex("reload: pid ([0-9]+) took over ([0-9]+)")))
      << log;
  const pid_t successor = static_cast<pid_t>(std::stol(m[1]));
  note("sessions_taken_over", std::stod(m[2]));
  uint16_t new_admin = 0;
  std::string rest = log;
  for (std::smatch p;
       std::regex_search(rest, p, std::regex("admin listening on 127\\.0\\.0\\.1:([0-9]+)"));
       rest = p.suffix())
    new_admin = static_cast<uint16_t>(std::stoi(p[1]));
  ASSERT_NE(new_admin, 0) << log;

  // Both sessions still forward, now through the successor.
  ASSERT_TRUE(write_all(established.get(), "after", 5, scaled(Millis(1000))));
  EXPECT_EQ(read_some(established.get(), 5, scaled(Millis(5000))), "after");
  ASSERT_TRUE(write_all(waiting.get(), "plain", 5, scaled(Millis(1000))));
  EXPECT_EQ(read_some(waiting.get(), 5, scaled(Millis(5000))), "plain");

  const HttpResponse sockets = http_get(new_admin, "/sockets", scaled(Millis(2000)));
  EXPECT_NE(sockets.body.find("\"peer\":\"192.0.2.20:40001\",\"via\":\"127.0.0.1:"),
            std::string::npos)
      << sockets.body;
  EXPECT_NE(sockets.body.find("\"peer\":\"192.0.2.21:40002\""), std::string::npos) << sockets.body;

  established.reset();
  waiting.reset();
  EXPECT_TRUE(poll_until(
      [&] {
        const std::string text = read_file(log_path);
        return text.find("from=192.0.2.20:40001 ") != std::string::npos &&
               text.find("from=192.0.2.21:40002 ") != std::string::npos;
      },
      scaled(Millis(5000))))
      << read_file(log_path);
  ::kill(successor, SIGKILL);
  ::waitpid(successor, nullptr, 0);
}

constexpr const char* kProxyOutConfig = R"(
[settings]
workers = 1
drainTimeout = "2s"
admin = { bindAddress = "127.0.0.1", bindPort = 0 }

[[gateways]]
metadata = { name = "tcp", namespace = "default" }
bindAddress = "127.0.0.1"
bindPort = 0
[[gateways.tcpGateway.tcpHosts]]
name = "lb"
destination.single.upstream = { name = "lb" }

[[upstreams]]
metadata = { name = "lb", namespace = "default" }
static.hosts = [{ addr = "127.0.0.1", port = HAPROXY_PORT }]
proxyProtocolVersion = "VERSION"
)";

TEST_F(ListenerFiltersTest, ProxyProtocolToHaproxyCarriesTheClient) {
  if (haproxy_.empty()) GTEST_SKIP() << "haproxy is not installed (scripts/lib.sh lists it)";
  PeerHost echo;
  const uint16_t echo_port = echo.listen("127.0.0.1", PeerScript::Echo());
  ASSERT_NE(echo_port, 0);
  for (const std::string version : {"V2", "V1"}) {
    SCOPED_TRACE(version);
    Background haproxy;
    const uint16_t fe = free_port();
    const std::string cfg = dir_.path() + "/haproxy-out.cfg";
    std::ofstream(cfg) << haproxy_config(fe, "accept-proxy", {"127.0.0.1", echo_port}, "");
    const std::string hlog = dir_.path() + "/haproxy-out-" + version + ".log";
    ASSERT_TRUE(haproxy.start({haproxy_, "-db", "-f", cfg}, hlog));
    ASSERT_TRUE(wait_bound(fe, scaled(Millis(5000)))) << haproxy.log();
    ASSERT_TRUE(start_proxy(
        fill(kProxyOutConfig, {{"HAPROXY_PORT", std::to_string(fe)}, {"VERSION", version}})));
    std::vector<std::string> clients;
    for (int i = 0; i < 3; ++i) {
      clients.push_back(echo_once(gateway(), pattern_line(5000, 11 + i) + "\n"));
      ASSERT_FALSE(clients.back().empty());
    }
    for (const auto& client : clients) {
      EXPECT_TRUE(haproxy.wait_log("haproxy-client=" + client, scaled(Millis(5000))))
          << "HAProxy did not log " << client << ":\n"
          << haproxy.log();
    }
    haproxy.stop();
    expect_no_leaks();
    proxy_.reset();
  }
}

}  // namespace
}  // namespace ringway::test
