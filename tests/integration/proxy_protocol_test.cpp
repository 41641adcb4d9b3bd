// The PROXY protocol in the engine, against HAProxy (send-proxy / send-proxy-v2 in front of
// Ringway, accept-proxy behind it): the real client in the access log, /sockets and the header
// sent upstream, also across a reload; bad and missing headers closed and counted; silent
// clients holding no pool buffer. HAProxy tests skip, with the reason, when it is missing.
#include "listener_filters_util.hpp"

namespace ringway::test {
namespace {

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
