// Every class of rejection, each with its TOML and the full diagnostic (line:col included).
#include <gtest/gtest.h>

#include "config_test_util.hpp"

namespace ringway::config {
namespace {

using testing::errors;
using testing::load;
using testing::messages;
using Lines = std::vector<std::string>;

// kGateway (lines 1..8) + an upstream section: line numbers in the tests below count from here.
constexpr std::string_view kGateway = R"toml([[gateways]]
metadata = { name = "tcp" }
bindAddress = "127.0.0.1"
bindPort = 8000
[gateways.tcpGateway.options.connectionLimit]
maxActiveConnections = 100
[[gateways.tcpGateway.tcpHosts]]
destination.single.upstream = { name = "echo" }
)toml";

constexpr std::string_view kUpstream = R"toml([[upstreams]]
metadata = { name = "echo" }
static.hosts = [{ addr = "127.0.0.1", port = 9000 }]
)toml";

// The gateway and upstream above, then `extra` (which starts at line 12).
std::string with(std::string_view extra) {
  return std::string(kGateway) + std::string(kUpstream) + std::string(extra);
}

TEST(Reject, UnknownKeyWithSuggestion) {
  auto r = load(with(R"toml([[gateways]]
metadata = { name = "tcp2" }
bindAdress = "127.0.0.1"
bindPort = 8001
tcpGateway.tcpHosts = [{ destination.single.upstream = { name = "echo" } }]
tcpGateway.options.connectionLimit.maxActiveConnections = 1
)toml"));
  EXPECT_FALSE(r.ok());
  // The misspelt key is reported, and so is the required key it failed to set.
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:12:1: error: gateways[1].bindAddress: is required (an IP literal such as "
          "\"::\" "
          "or \"127.0.0.1\")",
          "test.toml:14:1: error: gateways[1].bindAdress: unknown key; did you mean 'bindAddress'?",
      }));
}

TEST(Reject, UnknownSnakeCaseKeySuggestsSnakeCase) {
  auto r = load(with(R"toml([upstreams.connectionConfig.tcpKeepalive]
keepalive_tme = 60
)toml"));
  EXPECT_EQ(errors(r), (Lines{"test.toml:13:1: error: upstreams[0].connectionConfig.tcpKeepalive."
                              "keepalive_tme: unknown key; did you mean 'keepalive_time'?"}));
}

TEST(Reject, UnknownKeyWithoutACloseMatchListsTheAllowedKeys) {
  auto r = load(with("[upstreams.circuitBreakers]\nlimit = 5\n"));
  EXPECT_EQ(errors(r), (Lines{"test.toml:13:1: error: upstreams[0].circuitBreakers.limit: "
                              "unknown key; allowed here: maxConnections"}));
}

TEST(Reject, UnknownTopLevelSection) {
  auto r = load(with("[gateway]\nbindPort = 1\n"));
  EXPECT_EQ(errors(r), (Lines{"test.toml:12:2: error: gateway: unknown key; did you mean "
                              "'gateways'?"}));
}

TEST(Reject, WrongType) {
  auto r = load(R"toml([[gateways]]
metadata = { name = "tcp" }
bindAddress = "127.0.0.1"
bindPort = "8000"
[gateways.tcpGateway.options.connectionLimit]
maxActiveConnections = 100
[[gateways.tcpGateway.tcpHosts]]
destination.single.upstream = { name = "echo" }
[[upstreams]]
metadata = { name = "echo" }
static.hosts = { addr = "127.0.0.1", port = 9000 }
)toml");
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:4:12: error: gateways[0].bindPort: expected an integer 0..65535, got a string",
          "test.toml:11:16: error: upstreams[0].static.hosts: expected an array of tables, got a "
          "table",
      }));
}

TEST(Reject, KeepaliveZeroSeconds) {
  auto r = load(with(R"toml([upstreams.connectionConfig.tcpKeepalive]
keepaliveTime = "0s"
keepaliveInterval = 0
)toml"));
  const std::string why =
      "0s is not allowed: Envoy would fail every connection with EINVAL; allowed: 1..32767 "
      "seconds (omit the key for the OS default)";
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:13:17: error: upstreams[0].connectionConfig.tcpKeepalive.keepaliveTime: " +
              why,
          "test.toml:14:21: error: upstreams[0].connectionConfig.tcpKeepalive.keepaliveInterval: " +
              why,
      }));
}

TEST(Reject, Keepalive32768Seconds) {
  auto r = load(with(R"toml([upstreams.connectionConfig.tcpKeepalive]
keepaliveTime = 32768
keepaliveInterval = "32767.5s"
)toml"));
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:13:17: error: upstreams[0].connectionConfig.tcpKeepalive.keepaliveTime: "
          "32768s "
          "is outside TCP_KEEPIDLE's range 1..32767 seconds",
          "test.toml:14:21: error: upstreams[0].connectionConfig.tcpKeepalive.keepaliveInterval: "
          "32768s is outside TCP_KEEPINTVL's range 1..32767 seconds",
      }));
}

TEST(Reject, Keepalive128Probes) {
  auto r = load(with(R"toml([upstreams.connectionConfig.tcpKeepalive]
keepaliveProbes = 128
)toml"));
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:13:19: error: upstreams[0].connectionConfig.tcpKeepalive.keepaliveProbes: 128 "
          "is outside TCP_KEEPCNT's range 1..127 (0 = the OS default)"}));
}

TEST(Reject, IntValueBeyondInt32) {
  auto r = load(with(R"toml([[gateways.options.socketOptions]]
level = 1
name = 36
intValue = 2147483648
[[gateways.options.socketOptions]]
level = 1
name = 36
intValue = "-99999999999999999999"
)toml"));
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:15:12: error: gateways[0].options.socketOptions[0].intValue: 2147483648 does "
          "not fit in 32 bits (-2147483648..2147483647); Envoy would silently truncate it",
          "test.toml:19:12: error: gateways[0].options.socketOptions[1].intValue: "
          "-99999999999999999999 does not fit in 32 bits (-2147483648..2147483647); Envoy would "
          "silently truncate it",
      }));
}

TEST(Reject, IntValueOutsideTheKernelRange) {
  auto r = load(with(R"toml([[gateways.options.socketOptions]]
level = "IPPROTO_TCP"
name = "TCP_KEEPIDLE"
intValue = 40000
)toml"));
  EXPECT_EQ(errors(r), (Lines{"test.toml:15:12: error: gateways[0].options.socketOptions[0]."
                              "intValue: 40000 is outside TCP_KEEPIDLE's range 1..32767"}));
}

TEST(Reject, UnknownSymbolicName) {
  auto r = load(with(R"toml([[gateways.options.socketOptions]]
level = "IPPROTO_TPC"
name = "TCP_KEEPIDEL"
intValue = 60
)toml"));
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:13:9: error: gateways[0].options.socketOptions[0].level: unknown level "
          "\"IPPROTO_TPC\" (did you mean 'IPPROTO_TCP'?); use a number or one of SOL_SOCKET, "
          "IPPROTO_TCP, IPPROTO_IP, IPPROTO_IPV6",
          "test.toml:14:8: error: gateways[0].options.socketOptions[0].name: unknown socket option "
          "name \"TCP_KEEPIDEL\" (did you mean 'TCP_KEEPIDLE'?); use a number or one of "
          "SO_KEEPALIVE, SO_REUSEADDR, SO_REUSEPORT, SO_RCVBUF, SO_SNDBUF, SO_LINGER, SO_MARK, "
          "SO_PRIORITY, TCP_NODELAY, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_USER_TIMEOUT, "
          "TCP_DEFER_ACCEPT, TCP_FASTOPEN, TCP_NOTSENT_LOWAT, TCP_MAXSEG, IP_TOS, IP_FREEBIND, "
          "IP_TRANSPARENT, IPV6_V6ONLY",
      }));
}

TEST(Reject, NameFromAnotherLevel) {
  auto r = load(with(R"toml([[gateways.options.socketOptions]]
level = "SOL_SOCKET"
name = "TCP_KEEPIDLE"
intValue = 60
[[gateways.options.socketOptions]]
level = 6
name = "SO_KEEPALIVE"
intValue = 1
[[gateways.options.socketOptions]]
level = "TCP_NODELAY"
name = 1
intValue = 1
)toml"));
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:14:8: error: gateways[0].options.socketOptions[0].name: TCP_KEEPIDLE is an "
          "IPPROTO_TCP option; level is SOL_SOCKET",
          "test.toml:18:8: error: gateways[0].options.socketOptions[1].name: SO_KEEPALIVE is an "
          "SOL_SOCKET option; level is IPPROTO_TCP",
          "test.toml:21:9: error: gateways[0].options.socketOptions[2].level: TCP_NODELAY is an "
          "option name (it goes in `name`), not a level; its level is IPPROTO_TCP",
      }));
}

TEST(Reject, SocketOptionValueAndState) {
  auto r = load(with(R"toml([[gateways.options.socketOptions]]
level = 1
name = 9
[[gateways.options.socketOptions]]
level = 1
name = 9
intValue = 1
bufValue = "AQ=="
[[gateways.options.socketOptions]]
level = 1
name = 9
intValue = 1
state = "STATE_PREBOUND"
)toml"));
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:12:1: error: gateways[0].options.socketOptions[0].intValue: one of intValue "
          "(an int32) or bufValue (base64 bytes) is required",
          "test.toml:19:12: error: gateways[0].options.socketOptions[1].bufValue: intValue and "
          "bufValue are both set; an option takes exactly one",
          "test.toml:24:9: error: gateways[0].options.socketOptions[2].state: unknown state "
          "\"STATE_PREBOUND\" (did you mean 'STATE_PREBIND'?); allowed: STATE_PREBIND, "
          "STATE_BOUND, "
          "STATE_LISTENING, or 0, 1, 2",
      }));
}

TEST(Reject, InvalidBase64) {
  auto r = load(with(R"toml([[gateways.options.socketOptions]]
level = "SOL_SOCKET"
name = "SO_LINGER"
bufValue = "AQAAAB4AAAA"
)toml"));
  EXPECT_EQ(
      errors(r),
      (Lines{"test.toml:15:12: error: gateways[0].options.socketOptions[0].bufValue: "
             "\"AQAAAB4AAAA\" is "
             "not valid base64; use the standard alphabet (A-Z a-z 0-9 + /) with '=' padding to a "
             "multiple of 4"}));
}

TEST(Reject, KeepaliveExtensionConflictsWithARawOption) {
  auto r = load(with(R"toml([gateways.options]
tcpKeepalive = { keepaliveTime = 60 }
[[gateways.options.socketOptions]]
level = 6
name = 4
intValue = 30
)toml"));
  EXPECT_EQ(errors(r), (Lines{"test.toml:14:1: error: gateways[0].options.socketOptions[0]: "
                              "TCP_KEEPIDLE is also set by options.tcpKeepalive (line 13); set "
                              "it in one place"}));
}

TEST(Reject, MissingUpstreamReferenceWithSuggestion) {
  auto r = load(R"toml([[gateways]]
metadata = { name = "tcp" }
bindAddress = "127.0.0.1"
bindPort = 8000
[gateways.tcpGateway.options.connectionLimit]
maxActiveConnections = 100
[[gateways.tcpGateway.tcpHosts]]
destination.single.upstream = { name = "ecko" }
[[upstreams]]
metadata = { name = "echo" }
static.hosts = [{ addr = "127.0.0.1", port = 9000 }]
)toml");
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:8:31: error: gateways[0].tcpGateway.tcpHosts[0].destination.single.upstream: "
          "upstream 'default.ecko' (namespace.name) is not defined; did you mean "
          "'default.echo'?"}));
}

TEST(Reject, ReferenceIntoAnotherNamespaceNeedsTheNamespace) {
  auto r = load(R"toml([[gateways]]
metadata = { name = "tcp", namespace = "edge" }
bindAddress = "127.0.0.1"
bindPort = 8000
[gateways.tcpGateway.options.connectionLimit]
maxActiveConnections = 100
[[gateways.tcpGateway.tcpHosts]]
destination.single.upstream = { name = "backend" }
[[upstreams]]
metadata = { name = "echo" }
static.hosts = [{ addr = "127.0.0.1", port = 9000 }]
)toml");
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:8:31: error: gateways[0].tcpGateway.tcpHosts[0].destination.single.upstream: "
          "upstream 'edge.backend' (namespace.name) is not defined; defined upstreams: "
          "default.echo"}));
}

TEST(Reject, DuplicateNames) {
  auto r = load(with(R"toml([[upstreams]]
metadata = { name = "echo", namespace = "default" }
static.hosts = [{ addr = "127.0.0.2", port = 9000 }]
)toml"));
  EXPECT_EQ(errors(r), (Lines{"test.toml:13:21: error: upstreams[1].metadata.name: duplicate "
                              "upstream \"echo\" in namespace \"default\": the first is at line "
                              "10"}));
}

TEST(Reject, SameNameInAnotherNamespaceIsFine) {
  auto r = load(with(R"toml([[upstreams]]
metadata = { name = "echo", namespace = "other" }
static.hosts = [{ addr = "127.0.0.2", port = 9000 }]
)toml"));
  EXPECT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
}

TEST(Reject, TwoGatewaysOnOneAddressAndPort) {
  auto r = load(with(R"toml([[gateways]]
metadata = { name = "tcp2" }
bindAddress = "127.0.0.01"
bindPort = 8000
[gateways.tcpGateway.options.connectionLimit]
maxActiveConnections = 100
[[gateways.tcpGateway.tcpHosts]]
destination.single.upstream = { name = "echo" }
)toml"));
  // "127.0.0.01" is not an address inet_pton accepts; the same test with the canonical text:
  EXPECT_EQ(errors(r), (Lines{"test.toml:14:15: error: gateways[1].bindAddress: \"127.0.0.01\" "
                              "is not an IP address; use an IPv4 or IPv6 literal such as "
                              "\"127.0.0.1\", \"0.0.0.0\" or \"::\""}));
  auto r2 = load(with(R"toml([[gateways]]
metadata = { name = "tcp2" }
bindAddress = "127.0.0.1"
bindPort = 8000
[gateways.tcpGateway.options.connectionLimit]
maxActiveConnections = 100
[[gateways.tcpGateway.tcpHosts]]
destination.single.upstream = { name = "echo" }
)toml"));
  EXPECT_EQ(errors(r2), (Lines{"test.toml:12:1: error: gateways[1].bindPort: 127.0.0.1 port "
                               "8000 is already used by gateway 'default.tcp' (line 1)"}));
}

TEST(Reject, BothSpellingsOfOneKey) {
  auto r = load(with(R"toml([[upstreams]]
metadata = { name = "two" }
static.hosts = [{ addr = "127.0.0.1", port = 9000 }]
circuit_breakers.max_connections = 5
circuitBreakers.maxConnections = 6
)toml"));
  EXPECT_EQ(errors(r), (Lines{"test.toml:16:1: error: upstreams[1].circuitBreakers: both "
                              "'circuit_breakers' and 'circuitBreakers' are set (two spellings "
                              "of one key); keep one"}));
}

TEST(Reject, UnsupportedGlooFields) {
  auto r = load(R"toml([[gateways]]
metadata = { name = "tcp" }
bindAddress = "127.0.0.1"
bindPort = 8000
ssl = false
[gateways.options]
connectionBalanceConfig = { exactBalance = {} }
[gateways.tcpGateway.options]
tcpProxySettings = { tunnelingConfig = { hostname = "x" } }
connectionLimit = { maxActiveConnections = 1, delayBeforeClose = "1s" }
[[gateways.tcpGateway.tcpHosts]]
destination.forwardSniClusterName = {}
[[gateways.tcpGateway.tcpHosts]]
sslConfig = { sniDomains = ["a.example"] }
destination.single.upstream = { name = "echo" }
[[upstreams]]
metadata = { name = "echo" }
static.hosts = [{ addr = "127.0.0.1", port = 9000, sniAddr = "x" }]
useHttp2 = true
connectionConfig.maxRequestsPerConnection = 1
circuitBreakers.maxPendingRequests = 10
)toml");
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:5:1: error: gateways[0].ssl: ssl is not supported yet",
          "test.toml:7:1: error: gateways[0].options.connectionBalanceConfig: "
          "connectionBalanceConfig is not supported yet",
          "test.toml:9:22: error: "
          "gateways[0].tcpGateway.options.tcpProxySettings.tunnelingConfig: "
          "tunnelingConfig is not supported yet",
          "test.toml:10:47: error: "
          "gateways[0].tcpGateway.options.connectionLimit.delayBeforeClose: "
          "delayBeforeClose is not supported yet",
          "test.toml:12:13: error: gateways[0].tcpGateway.tcpHosts[0].destination."
          "forwardSniClusterName: forwardSniClusterName is not supported yet",
          "test.toml:18:52: error: upstreams[0].static.hosts[0].sniAddr: sniAddr is not supported "
          "yet",
          "test.toml:19:1: error: upstreams[0].useHttp2: useHttp2 applies to HTTP only; Ringway "
          "forwards TCP",
          "test.toml:20:18: error: upstreams[0].connectionConfig.maxRequestsPerConnection: "
          "maxRequestsPerConnection applies to HTTP only; Ringway forwards TCP",
          "test.toml:21:17: error: upstreams[0].circuitBreakers.maxPendingRequests: "
          "maxPendingRequests is not supported yet",
      }));
}

TEST(Reject, UpstreamTypesOtherThanStatic) {
  auto r = load(with(R"toml([[upstreams]]
metadata = { name = "k" }
kube = { serviceName = "x", serviceNamespace = "y", servicePort = 80 }
)toml"));
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:12:1: error: upstreams[1].static: is required: Ringway implements static "
          "upstreams (static.hosts = [{ addr, port }])",
          "test.toml:14:1: error: upstreams[1].kube: kube is not supported yet; Ringway implements "
          "static upstreams",
      }));
}

TEST(Reject, MalformedDuration) {
  auto r = load(with(R"toml([gateways.tcpGateway.options.tcpProxySettings]
idleTimeout = "1h30"
[settings]
drainTimeout = 30
)toml"));
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:13:15: error: gateways[0].tcpGateway.options.tcpProxySettings.idleTimeout: "
          "\"1h30\" is not a duration: missing unit after \"30\"; use a number and a unit (ns, us, "
          "ms, s, m, h), e.g. \"60s\", \"0.5s\", \"1m30s\", \"500ms\"",
          "test.toml:15:16: error: settings.drainTimeout: expected a duration string such as "
          "\"60s\" "
          "or \"1m30s\", got an integer",
      }));
}

TEST(Reject, RequiredFieldsAndApiVersion) {
  auto r = load(R"toml([[gateways]]
apiVersion = "gateway.solo.io/v2"
kind = "Upstream"
[[upstreams]]
metadata = { namespace = "x" }
static.hosts = []
)toml");
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:1:1: error: gateways[0].metadata: is required: metadata = { name = \"...\" } "
          "(namespace defaults to \"default\")",
          "test.toml:1:1: error: gateways[0].bindAddress: is required (an IP literal such as "
          "\"::\" "
          "or \"127.0.0.1\")",
          "test.toml:1:1: error: gateways[0].bindPort: is required (0..65535; 0 lets the kernel "
          "pick a port)",
          "test.toml:1:1: error: gateways[0].tcpGateway: is required: Ringway implements TCP "
          "gateways (tcpGateway.tcpHosts = [{ name, destination.single.upstream }])",
          "test.toml:2:14: error: gateways[0].apiVersion: \"gateway.solo.io/v2\" does not match "
          "this "
          "table; must be \"gateway.solo.io/v1\" (optional)",
          "test.toml:3:8: error: gateways[0].kind: \"Upstream\" does not match this table; must be "
          "\"Gateway\" (optional)",
          "test.toml:5:12: error: upstreams[0].metadata.name: is required (a non-empty string)",
          "test.toml:6:16: error: upstreams[0].static.hosts: at least one host is required "
          "({ addr = \"...\", port = N })",
      }));
}

TEST(Reject, NoGateways) {
  auto r = load(kUpstream);
  EXPECT_EQ(errors(r), (Lines{"test.toml: error: gateways: at least one [[gateways]] entry is "
                              "required (Ringway has nothing to listen on)"}));
}

TEST(Reject, UnknownAccessLogOperator) {
  auto r = load(with(R"toml([[gateways.options.accessLoggingService.accessLog]]
fileSink = { path = "/tmp/a.log", stringFormat = "%START_TIME% %NOPE%" }
)toml"));
  const auto e = errors(r);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("test.toml:13:50: error: gateways[0].options.accessLoggingService."
                       "accessLog[0].fileSink.stringFormat: unknown command operator %NOPE%",
                       0),
            0u)
      << e[0];
}

TEST(Reject, JsonAccessLogKeysKeepFileOrderAndAreChecked) {
  auto ok = load(with(R"toml([[gateways.options.accessLoggingService.accessLog]]
fileSink = { path = "/tmp/a.log", jsonFormat = { zeta = "%BYTES_SENT%", alpha = "%DURATION%" } }
)toml"));
  ASSERT_TRUE(ok.ok());
  const auto& sink = ok.config->gateways[0].access_logs.at(0);
  ASSERT_EQ(sink.json_format.size(), 2u);
  EXPECT_EQ(sink.json_format[0].first, "zeta");
  EXPECT_EQ(sink.json_format[1].first, "alpha");

  auto bad = load(with(R"toml([[gateways.options.accessLoggingService.accessLog]]
fileSink = { path = "/tmp/a.log", jsonFormat = { a = "%BYTES%" } }
)toml"));
  const auto e = errors(bad);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("accessLog[0].fileSink.jsonFormat.a: unknown command operator %BYTES%"),
            std::string::npos)
      << e[0];
}

}  // namespace
}  // namespace ringway::config
