// SNI passthrough against peers nobody here wrote: `openssl s_client -servername` through one
// gateway to two `openssl s_server` backends, chosen by the ClientHello's server name, with the
// bytes forwarded unchanged; the default tcpHost, onNoMatch, a ClientHello in small pieces, and
// listenerFiltersTimeout. Skipped, with the reason, when openssl is missing (scripts/lib.sh
// installs it in RINGWAY_TEST_PACKAGES).
#include "listener_filters_util.hpp"

namespace ringway::test {
namespace {

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

}  // namespace
}  // namespace ringway::test
