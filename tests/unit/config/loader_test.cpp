// The loader on valid configs: the Gloo keepalive page, defaults, aliases, both TOML table
// syntaxes, warnings that keep a config valid, and collecting every error of a file.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "config_test_util.hpp"

namespace ringway::config {
namespace {

using testing::errors;
using testing::kValid;
using testing::load;
using testing::messages;

// The seed page (Gloo's "TCP Keepalive" guide), field for field.
constexpr std::string_view kSeed = R"toml(
[[gateways]]
apiVersion = "gateway.solo.io/v1"
kind = "Gateway"
metadata = { name = "gateway-proxy", namespace = "gloo-system" }
bindAddress = "::"
bindPort = 8080
[[gateways.options.socketOptions]]
description = "enable keep-alive"
level = 1
name = 9
intValue = 1
state = "STATE_PREBIND"
[[gateways.options.socketOptions]]
description = "idle time before first keep-alive probe is sent"
level = 6
name = 4
intValue = 60
state = "STATE_PREBIND"
[[gateways.options.socketOptions]]
description = "keep-alive interval"
level = 6
name = 5
intValue = 20
state = "STATE_PREBIND"
[[gateways.options.socketOptions]]
description = "keep-alive probes count"
level = 6
name = 6
intValue = 2
state = "STATE_PREBIND"
[gateways.tcpGateway.options.connectionLimit]
maxActiveConnections = 1000
[[gateways.tcpGateway.tcpHosts]]
name = "one"
destination.single.upstream = { name = "echo" }

[[upstreams]]
apiVersion = "gloo.solo.io/v1"
kind = "Upstream"
metadata = { name = "echo", namespace = "gloo-system" }
static.hosts = [{ addr = "127.0.0.1", port = 9000 }]
[upstreams.connectionConfig.tcpKeepalive]
keepaliveInterval = 20
keepaliveProbes = 2
keepaliveTime = 60
)toml";

TEST(Loader, SeedPageParses) {
  auto r = load(kSeed);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  EXPECT_TRUE(r.diagnostics.empty()) << ::testing::PrintToString(messages(r));
  const Config& c = *r.config;
  ASSERT_EQ(c.gateways.size(), 1u);
  const Gateway& g = c.gateways[0];
  EXPECT_EQ(g.metadata.name, "gateway-proxy");
  EXPECT_EQ(g.metadata.namespace_, "gloo-system");
  EXPECT_EQ(g.bind_address, "::");
  EXPECT_EQ(g.bind_port, 8080);
  ASSERT_EQ(g.socket_options.size(), 4u);
  const std::pair<int, int> expected[] = {{SOL_SOCKET, SO_KEEPALIVE},
                                          {IPPROTO_TCP, TCP_KEEPIDLE},
                                          {IPPROTO_TCP, TCP_KEEPINTVL},
                                          {IPPROTO_TCP, TCP_KEEPCNT}};
  const int32_t values[] = {1, 60, 20, 2};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(g.socket_options[i].level, expected[i].first) << i;
    EXPECT_EQ(g.socket_options[i].name, expected[i].second) << i;
    EXPECT_EQ(std::get<int32_t>(g.socket_options[i].value), values[i]) << i;
    EXPECT_EQ(g.socket_options[i].state, SocketState::Prebind) << i;
  }
  EXPECT_EQ(g.socket_options[1].description, "idle time before first keep-alive probe is sent");
  EXPECT_EQ(g.socket_options[1].pos.line, 14u);
  ASSERT_EQ(g.tcp_hosts.size(), 1u);
  // The omitted namespace of the reference is the gateway's.
  EXPECT_EQ(g.tcp_hosts[0].upstream.namespace_, "gloo-system");
  EXPECT_EQ(g.tcp_hosts[0].upstream_index, 0u);

  ASSERT_EQ(c.upstreams.size(), 1u);
  const Upstream& u = c.upstreams[0];
  ASSERT_TRUE(u.tcp_keepalive.has_value());
  EXPECT_EQ(u.tcp_keepalive->keepalive_time_s, 60u);
  EXPECT_EQ(u.tcp_keepalive->keepalive_interval_s, 20u);
  EXPECT_EQ(u.tcp_keepalive->keepalive_probes, 2u);
}

TEST(Loader, DefaultsFilled) {
  auto r = load(kValid);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  EXPECT_TRUE(r.diagnostics.empty()) << ::testing::PrintToString(messages(r));
  const Config& c = *r.config;
  EXPECT_EQ(c.source_path, "test.toml");
  EXPECT_EQ(c.settings.workers, kDefaultWorkers);
  EXPECT_EQ(c.settings.drain_timeout, kDefaultDrainTimeout);
  EXPECT_EQ(c.settings.log_level, LogLevel::Info);
  EXPECT_FALSE(c.settings.admin.has_value());
  const Gateway& g = c.gateways[0];
  EXPECT_EQ(g.metadata.namespace_, "default");
  EXPECT_TRUE(g.socket_options.empty());
  EXPECT_FALSE(g.tcp_keepalive.has_value());
  EXPECT_EQ(g.per_connection_buffer_limit_bytes, 1024u * 1024u);
  EXPECT_EQ(g.tcp_proxy.idle_timeout, std::chrono::hours(1));
  EXPECT_EQ(g.tcp_proxy.max_connect_attempts, 1u);
  EXPECT_EQ(g.max_active_connections, 100u);
  EXPECT_EQ(g.tcp_hosts[0].name, "one");
  EXPECT_EQ(g.tcp_hosts[0].upstream.namespace_, "default");
  const Upstream& u = c.upstreams[0];
  EXPECT_EQ(u.metadata.namespace_, "default");
  ASSERT_EQ(u.hosts.size(), 1u);
  EXPECT_EQ(u.hosts[0].load_balancing_weight, 1u);
  EXPECT_EQ(u.connect_timeout, std::chrono::seconds(5));
  EXPECT_FALSE(u.tcp_keepalive.has_value());
  EXPECT_EQ(u.per_connection_buffer_limit_bytes, 1024u * 1024u);
  EXPECT_EQ(u.load_balancer, LoadBalancer::RoundRobin);
  EXPECT_EQ(u.max_connections, 1024u);
}

TEST(Loader, SettingsAndEveryImplementedField) {
  auto r = load(R"toml(
[settings]
workers = 4
drainTimeout = "1m30s"
logLevel = "debug"
admin = { bindAddress = "::1", bindPort = 9901 }

[[gateways]]
metadata = { name = "tcp", namespace = "edge" }
bindAddress = "0.0.0.0"
bindPort = 0
[gateways.options]
perConnectionBufferLimitBytes = 65536
tcpKeepalive = { keepaliveTime = "1m", keepaliveInterval = "0.5s", keepaliveProbes = 0 }
socketOptions = [
  { level = "SOL_SOCKET", name = "SO_LINGER", bufValue = "AQAAAAAAAAA=", state = "STATE_BOUND" },
  { level = "6", name = "18", intValue = "30000", state = 2 },
]
accessLoggingService.accessLog = [
  { fileSink = { path = "/tmp/a.log", stringFormat = "%START_TIME% %BYTES_SENT%\n" } },
  { fileSink = { path = "/tmp/b.log", jsonFormat = { start = "%START_TIME%", up = "%UPSTREAM_HOST%" } } },
]
[gateways.tcpGateway.options]
tcpProxySettings = { idleTimeout = "250ms", maxConnectAttempts = 3 }
connectionLimit = { maxActiveConnections = 10 }
[[gateways.tcpGateway.tcpHosts]]
destination.single.upstream = { name = "db", namespace = "data" }

[[upstreams]]
metadata = { name = "db", namespace = "data" }
static.hosts = [
  { addr = "db.internal", port = 5432, loadBalancingWeight = 3 },
  { addr = "::1", port = 5433 },
]
connectionConfig = { connectTimeout = "1.5s", perConnectionBufferLimitBytes = 4096, tcpKeepalive = {} }
loadBalancerConfig.leastRequest = {}
circuitBreakers.maxConnections = 7
)toml");
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  EXPECT_TRUE(r.diagnostics.empty()) << ::testing::PrintToString(messages(r));
  const Config& c = *r.config;
  EXPECT_EQ(c.settings.workers, 4u);
  EXPECT_EQ(c.settings.drain_timeout, std::chrono::seconds(90));
  EXPECT_EQ(c.settings.log_level, LogLevel::Debug);
  ASSERT_TRUE(c.settings.admin.has_value());
  EXPECT_EQ(c.settings.admin->bind_address, "::1");
  EXPECT_EQ(c.settings.admin->bind_port, 9901);
  const Gateway& g = c.gateways[0];
  EXPECT_EQ(g.bind_port, 0);
  EXPECT_EQ(g.per_connection_buffer_limit_bytes, 65536u);
  ASSERT_TRUE(g.tcp_keepalive.has_value());
  EXPECT_EQ(g.tcp_keepalive->keepalive_time_s, 60u);
  EXPECT_EQ(g.tcp_keepalive->keepalive_interval_s, 1u);         // 0.5s rounds up
  EXPECT_FALSE(g.tcp_keepalive->keepalive_probes.has_value());  // 0 = OS default
  ASSERT_EQ(g.socket_options.size(), 2u);
  EXPECT_EQ(g.socket_options[0].level, SOL_SOCKET);
  EXPECT_EQ(g.socket_options[0].name, SO_LINGER);
  EXPECT_EQ(std::get<std::string>(g.socket_options[0].value),
            std::string("\x01\0\0\0\0\0\0\0", 8));  // {on, 0 s}: reset on close
  EXPECT_EQ(g.socket_options[0].state, SocketState::Bound);
  EXPECT_EQ(g.socket_options[1].level, IPPROTO_TCP);
  EXPECT_EQ(g.socket_options[1].name, TCP_USER_TIMEOUT);
  EXPECT_EQ(std::get<int32_t>(g.socket_options[1].value), 30000);
  EXPECT_EQ(g.socket_options[1].state, SocketState::Listening);
  ASSERT_EQ(g.access_logs.size(), 2u);
  EXPECT_EQ(g.access_logs[0].format, AccessLogFileSink::Format::Text);
  EXPECT_EQ(g.access_logs[0].string_format, "%START_TIME% %BYTES_SENT%\n");
  EXPECT_EQ(g.access_logs[1].format, AccessLogFileSink::Format::Json);
  ASSERT_EQ(g.access_logs[1].json_format.size(), 2u);
  EXPECT_EQ(g.access_logs[1].json_format[1].first, "up");
  EXPECT_EQ(g.access_logs[1].json_format[1].second, "%UPSTREAM_HOST%");
  EXPECT_EQ(g.tcp_proxy.idle_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(g.tcp_proxy.max_connect_attempts, 3u);
  EXPECT_EQ(g.max_active_connections, 10u);
  EXPECT_EQ(g.tcp_hosts[0].upstream.namespace_, "data");
  const Upstream& u = c.upstreams[0];
  ASSERT_EQ(u.hosts.size(), 2u);
  EXPECT_EQ(u.hosts[0].addr, "db.internal");
  EXPECT_EQ(u.hosts[0].load_balancing_weight, 3u);
  EXPECT_EQ(u.connect_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(u.per_connection_buffer_limit_bytes, 4096u);
  ASSERT_TRUE(u.tcp_keepalive.has_value());  // presence alone turns SO_KEEPALIVE on
  EXPECT_FALSE(u.tcp_keepalive->keepalive_time_s.has_value());
  EXPECT_EQ(u.load_balancer, LoadBalancer::LeastRequest);
  EXPECT_EQ(u.max_connections, 7u);
}

TEST(Loader, SnakeCaseAliases) {
  auto r = load(R"toml(
[[gateways]]
metadata = { name = "tcp" }
bind_address = "127.0.0.1"
bind_port = 8000
[gateways.options]
per_connection_buffer_limit_bytes = 2048
[[gateways.options.socket_options]]
level = "IPPROTO_TCP"
name = "TCP_NODELAY"
int_value = 1
[gateways.tcp_gateway.options]
tcp_proxy_settings = { idle_timeout = "10s", max_connect_attempts = 2 }
connection_limit = { max_active_connections = 5 }
[[gateways.tcp_gateway.tcp_hosts]]
destination.single.upstream.name = "echo"
[[upstreams]]
metadata.name = "echo"
static.hosts = [{ addr = "127.0.0.1", port = 9000, load_balancing_weight = 2 }]
connection_config.tcp_keepalive = { keepalive_time = "30s", keepalive_interval = 5, keepalive_probes = 3 }
connection_config.connect_timeout = "2s"
load_balancer_config.round_robin = {}
circuit_breakers.max_connections = 9
)toml");
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  EXPECT_TRUE(r.diagnostics.empty()) << ::testing::PrintToString(messages(r));
  const Gateway& g = r.config->gateways[0];
  EXPECT_EQ(g.bind_port, 8000);
  EXPECT_EQ(g.per_connection_buffer_limit_bytes, 2048u);
  ASSERT_EQ(g.socket_options.size(), 1u);
  EXPECT_EQ(g.socket_options[0].name, TCP_NODELAY);
  EXPECT_EQ(g.tcp_proxy.idle_timeout, std::chrono::seconds(10));
  EXPECT_EQ(g.tcp_proxy.max_connect_attempts, 2u);
  EXPECT_EQ(g.max_active_connections, 5u);
  const Upstream& u = r.config->upstreams[0];
  EXPECT_EQ(u.hosts[0].load_balancing_weight, 2u);
  EXPECT_EQ(u.tcp_keepalive->keepalive_time_s, 30u);
  EXPECT_EQ(u.tcp_keepalive->keepalive_interval_s, 5u);
  EXPECT_EQ(u.tcp_keepalive->keepalive_probes, 3u);
  EXPECT_EQ(u.connect_timeout, std::chrono::seconds(2));
  EXPECT_EQ(u.max_connections, 9u);
}

TEST(Loader, DurationForms) {
  // Each form of idleTimeout, as the model's milliseconds.
  const std::pair<const char*, int64_t> cases[] = {
      {"60s", 60'000},   {"0.5s", 500},        {"1m30s", 90'000}, {"500ms", 500},
      {"1h", 3'600'000}, {"2h45m", 9'900'000}, {"1.0001ms", 2},  // rounded up to a whole ms
  };
  for (const auto& [text, ms] : cases) {
    std::string toml(kValid);
    toml += "[gateways.tcpGateway.options.tcpProxySettings]\nidleTimeout = \"";
    toml += text;
    toml += "\"\n";
    auto r = load(toml);
    ASSERT_TRUE(r.ok()) << text << ::testing::PrintToString(messages(r));
    EXPECT_EQ(r.config->gateways[0].tcp_proxy.idle_timeout.count(), ms) << text;
  }
}

TEST(Loader, KeepaliveDurationsRoundUpToWholeSeconds) {
  std::string toml(kValid);
  toml += R"toml([upstreams.connectionConfig.tcpKeepalive]
keepaliveTime = "59.001s"
keepaliveInterval = "1ms"
keepaliveProbes = 127
)toml";
  auto r = load(toml);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  const auto& k = *r.config->upstreams[0].tcp_keepalive;
  EXPECT_EQ(k.keepalive_time_s, 60u);
  EXPECT_EQ(k.keepalive_interval_s, 1u);
  EXPECT_EQ(k.keepalive_probes, 127u);
}

TEST(Loader, WarningsKeepTheConfigValid) {
  auto r = load(R"toml([[gateways]]
metadata = { name = "tcp" }
bindAddress = "127.0.0.1"
bindPort = 8000
proxyNames = ["gateway-proxy"]
[[gateways.options.socketOptions]]
level = 6
name = 4
intValue = 60
state = "STATE_LISTENING"
[gateways.tcpGateway.options.tcpProxySettings]
idleTimeout = "0s"
[[gateways.tcpGateway.tcpHosts]]
destination.single.upstream = { name = "echo" }
[[upstreams]]
metadata = { name = "echo" }
static.hosts = [{ addr = "127.0.0.1", port = 9000 }]
connectionConfig.tcpKeepalive = { keepaliveTime = 10, keepaliveInterval = 20, keepaliveProbes = 2 }
)toml");
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  EXPECT_EQ(
      messages(r),
      (std::vector<std::string>{
          "test.toml:1:1: warning: gateways[0].tcpGateway.options.connectionLimit."
          "maxActiveConnections: not set: this gateway accepts any number of sessions",
          "test.toml:5:1: warning: gateways[0].proxyNames: proxyNames has no effect: Ringway is "
          "the "
          "proxy",
          "test.toml:10:9: warning: gateways[0].options.socketOptions[0].state: TCP_KEEPIDLE at "
          "STATE_LISTENING: Envoy >= 1.17 ignored keepalive options at this state; Ringway applies "
          "it and Linux accepted sockets inherit it (use STATE_PREBIND for the same effect under "
          "Envoy)",
          "test.toml:12:15: warning: gateways[0].tcpGateway.options.tcpProxySettings.idleTimeout: "
          "0s "
          "disables the idle timeout: sessions whose peer vanished without a FIN or RST may never "
          "close (leak); keepalive probes do not count as activity either way",
          "test.toml:18:33: warning: upstreams[0].connectionConfig.tcpKeepalive: keepaliveTime 10s "
          "is shorter than keepaliveInterval x keepaliveProbes (20s x 2 = 40s): a dead peer is "
          "detected 50s after the connection goes idle",
      }));
  EXPECT_EQ(r.config->gateways[0].tcp_proxy.idle_timeout.count(), 0);
}

TEST(Loader, AllErrorsOfAFileAreReportedInFileOrder) {
  // Three independent mistakes: each is reported, in file order, and there is no config.
  auto r = load(R"toml([[gateways]]
metadata = { name = "tcp" }
bindAddress = "127.0.0.1"
bindPort = 80000
[gateways.tcpGateway.options.connectionLimit]
maxActiveConnections = 100
[[gateways.tcpGateway.tcpHosts]]
destination.single.upstream = { name = "echo" }
[[upstreams]]
metadata = { name = "echo" }
static.hosts = [{ addr = "127.0.0.1", port = 0 }]
connectionConfig.connectTimeout = "5 seconds"
)toml");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(
      messages(r),
      (std::vector<std::string>{
          "test.toml:4:12: error: gateways[0].bindPort: 80000 is outside 0..65535",
          "test.toml:11:46: error: upstreams[0].static.hosts[0].port: 0 is outside 1..65535",
          "test.toml:12:35: error: upstreams[0].connectionConfig.connectTimeout: \"5 seconds\" is "
          "not a duration: unknown unit \" seconds\"; use a number and a unit (ns, us, ms, s, m, "
          "h), "
          "e.g. \"60s\", \"0.5s\", \"1m30s\", \"500ms\"",
      }));
}

TEST(Loader, TomlSyntaxErrorStopsWithItsPosition) {
  auto r = load("[[gateways]]\nbindPort = = 8000\n");
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].pos.line, 2u);
  EXPECT_EQ(r.diagnostics[0].pos.column, 12u);
  EXPECT_EQ(format(r.diagnostics[0]),
            "test.toml:2:12: error: invalid TOML: Error while parsing value: could not determine "
            "value type");
}

TEST(Loader, MissingFileIsOneError) {
  auto r = load_file("/nonexistent/ringway.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(messages(r), (std::vector<std::string>{"/nonexistent/ringway.toml: error: cannot open "
                                                   "the config file: No such file or directory"}));
}

}  // namespace
}  // namespace ringway::config

namespace ringway::config {
namespace {

// toml++ 3.3 aborts on a table header whose '[' is followed by neither a key nor ']' (found by
// the fuzzer); the loader reports those itself.
TEST(Loader, TableHeaderWithoutAKeyIsAnErrorNotACrash) {
  EXPECT_EQ(testing::messages(testing::load("a = 1\n[~]\n")),
            (std::vector<std::string>{"test.toml:2:2: error: invalid TOML: expected a key (bare "
                                      "or quoted) or ']' in a table header"}));
  EXPECT_EQ(testing::messages(testing::load("[[ \t#]]\n")),
            (std::vector<std::string>{"test.toml:1:5: error: invalid TOML: expected a key (bare "
                                      "or quoted) or ']' in a table header"}));
  EXPECT_EQ(testing::messages(testing::load("  [\nx]")),
            (std::vector<std::string>{"test.toml:1:4: error: invalid TOML: expected a key (bare "
                                      "or quoted) or ']' in a table header"}));
  constexpr char kFound[] = "[~\0\0\0\0\0\0\0s]]\napiVersion = \"x\"\n";  // the fuzzer's input
  EXPECT_FALSE(testing::load(std::string_view(kFound, sizeof kFound - 1)).ok());
}

TEST(Loader, BracketsInsideStringsAndCommentsAreNotHeaders) {
  std::string toml(testing::kValid);
  toml +=
      "[[gateways.options.socketOptions]]\n"
      "description = \"\"\"\n[~ not a header\n  [# neither\"\"\"\n"
      "level = 1 # [~\nname = 9\nintValue = 1\n"
      "[[gateways.options.socketOptions]]\ndescription = '''\n[{'''\nlevel = 1\nname = 2\n"
      "intValue = 1\n";
  auto r = testing::load(toml);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(testing::messages(r));
  EXPECT_EQ(r.config->gateways[0].socket_options[0].description, "[~ not a header\n  [# neither");
  EXPECT_EQ(r.config->gateways[0].socket_options[1].description, "[{");
}

}  // namespace
}  // namespace ringway::config

namespace ringway::config {
namespace {

// toml++ 3.3 reaches __builtin_unreachable() when it asks whether U+00A1..U+0499 (and others)
// is whitespace (found by the fuzzer); the loader reports those places itself.
TEST(Loader, NonAsciiWhereTomlExpectsSyntaxIsAnErrorNotACrash) {
  EXPECT_EQ(testing::messages(testing::load("[[gateways.tcpGateway\xD2\x8B]]\n")),
            (std::vector<std::string>{"test.toml:1:22: error: invalid TOML: a non-ASCII "
                                      "character outside a string or comment"}));
  EXPECT_EQ(testing::messages(testing::load("a = \"\"\"x\\\n  \xD2\x8B\"\"\"\n")),
            (std::vector<std::string>{"test.toml:1:9: error: invalid TOML: a non-ASCII character "
                                      "right after a backslash in a multi-line string"}));
  EXPECT_EQ(testing::messages(testing::load("a = \"\"\"\\\xD2\x8B\"\"\"\n")),
            (std::vector<std::string>{"test.toml:1:8: error: invalid TOML: a non-ASCII character "
                                      "right after a backslash in a multi-line string"}));
}

TEST(Loader, NonAsciiInStringsAndCommentsIsFine) {
  std::string toml(testing::kValid);
  toml +=
      "# \xD2\x8B comment\n[[gateways.options.socketOptions]]\n"
      "description = \"\xD2\x8B \\\" \xE3\x80\x80\"  # \xD2\x8B\nlevel = 1\nname = 9\n"
      "intValue = 1\n";
  auto r = testing::load(toml);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(testing::messages(r));
  EXPECT_EQ(r.config->gateways[0].socket_options[0].description, "\xD2\x8B \" \xE3\x80\x80");
}

}  // namespace
}  // namespace ringway::config

namespace ringway::config {
namespace {

// toml++ 3.3 asserts when '}' stands where an array expects a value (found by the fuzzer).
TEST(Loader, BraceWhereAnArrayExpectsAValueIsAnErrorNotACrash) {
  const std::vector<std::string> expected = {
      "test.toml:3:1: error: invalid TOML: expected a value or ']' in an array, saw '}'"};
  EXPECT_EQ(testing::messages(testing::load("a = [\n  { b = 1 },\n}\n")), expected);
  EXPECT_EQ(testing::messages(testing::load("a = { c = [ # x\n\n} ] }\n")), expected);
}

TEST(Loader, NestedArraysOnTheirOwnLinesAreNotHeaders) {
  // Valid TOML (the schema then refuses the key): no false "table header" error.
  EXPECT_EQ(testing::messages(testing::load("x = [\n[{ a = 1 }],\n[[2]],\n]\n")),
            (std::vector<std::string>{
                "test.toml:1:1: error: x: unknown key; allowed here: settings, gateways, "
                "upstreams, upstreamGroups",
                "test.toml: error: gateways: at least one [[gateways]] entry is required "
                "(Ringway has nothing to listen on)"}));
}

}  // namespace
}  // namespace ringway::config

namespace ringway::config {
namespace {

// toml++ 3.3 asserts on a date-time whose 'T' is not followed by a digit (found by the fuzzer).
TEST(Loader, DateTimeWithoutATimeIsAnErrorNotACrash) {
  EXPECT_EQ(testing::messages(testing::load("a = { desc =1980-05-27TbindPort07:32:.5s }\n")),
            (std::vector<std::string>{"test.toml:1:24: error: invalid TOML: expected a time "
                                      "(HH:MM:SS) after the 'T'"}));
  EXPECT_EQ(testing::messages(testing::load("a = [1979-05-27T07:32:00Z, 1980-05-27t:]\n")),
            (std::vector<std::string>{"test.toml:1:39: error: invalid TOML: expected a time "
                                      "(HH:MM:SS) after the 'T'"}));
  // A bare key of the same shape is fine (the schema then refuses it).
  EXPECT_EQ(testing::errors(testing::load("1980-05-27Tx = 1\n")).at(0),
            "test.toml:1:1: error: 1980-05-27Tx: unknown key; allowed here: settings, gateways, "
            "upstreams, upstreamGroups");
}

}  // namespace
}  // namespace ringway::config

namespace ringway::config {
namespace {

// toml++ reads a bare value (number, boolean, date) up to a terminator, quotes included, and
// asks whether each character is whitespace (found by the fuzzer: "3\"...ů").
TEST(Loader, NonAsciiInsideABareValueIsAnErrorNotACrash) {
  const std::vector<std::string> expected = {
      "test.toml:1:16: error: invalid TOML: a non-ASCII character outside a string or comment"};
  EXPECT_EQ(testing::messages(testing::load("thc =3\"TCP_KPI3\xC5\xAF\"\n")), expected);
  EXPECT_EQ(testing::messages(testing::load("a = [1, truex\"\xC5\xAF\"]\n")),
            (std::vector<std::string>{"test.toml:1:15: error: invalid TOML: a non-ASCII "
                                      "character outside a string or comment"}));
}

}  // namespace
}  // namespace ringway::config
