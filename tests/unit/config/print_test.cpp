// --print-config: the printed config is the effective one (defaults filled in), in the shape
// the loader reads, and load -> print -> load -> print is a fixed point.
#include <gtest/gtest.h>

#include "config_test_util.hpp"

namespace ringway::config {
namespace {

using testing::kValid;
using testing::load;
using testing::messages;

// Loads `toml`, prints it, loads the print and prints again: both prints must be equal.
std::string round_trip(std::string_view toml) {
  auto first = load(toml);
  EXPECT_TRUE(first.ok()) << ::testing::PrintToString(messages(first));
  if (!first.ok()) return {};
  const std::string printed = to_toml(*first.config);
  auto second = load_string(printed, "printed.toml");
  EXPECT_TRUE(second.ok()) << printed << ::testing::PrintToString(messages(second));
  if (!second.ok()) return printed;
  EXPECT_EQ(to_toml(*second.config), printed);
  return printed;
}

TEST(Print, DefaultsAreWrittenOut) {
  EXPECT_EQ(round_trip(kValid), R"toml(# Ringway effective configuration: every default filled in.
[settings]
workers = 0  # 0 = one worker per CPU
drainTimeout = "30s"
logLevel = "info"
perWorkerBufferLimitBytes = 67108864  # extension: data held per worker
busyPoll = "0s"  # extension: spin before sleeping; 0s = off
# no [settings.admin]: the admin endpoint is off

[[gateways]]
metadata = { name = "tcp", namespace = "default" }
bindAddress = "127.0.0.1"
bindPort = 8000

[gateways.options]
perConnectionBufferLimitBytes = 1048576

[gateways.tcpGateway.options.tcpProxySettings]
idleTimeout = "3600s"
maxConnectAttempts = 1
spliceMode = "NEVER"  # extension: AUTO | ALWAYS | NEVER

[gateways.tcpGateway.options.connectionLimit]
maxActiveConnections = 100

[[gateways.tcpGateway.tcpHosts]]
name = "one"
destination.single.upstream = { name = "echo", namespace = "default" }

[[upstreams]]
metadata = { name = "echo", namespace = "default" }
static.hosts = [
  { addr = "127.0.0.1", port = 9000, loadBalancingWeight = 1 },
]

[upstreams.connectionConfig]
connectTimeout = "5s"
perConnectionBufferLimitBytes = 1048576
# no tcpKeepalive: keepalive off on upstream connections

[upstreams.loadBalancerConfig]
roundRobin = {}

[upstreams.circuitBreakers]
maxConnections = 1024
)toml");
}

TEST(Print, SocketOptionsNumericWithSymbolicCommentsAndKeepaliveAsDurations) {
  std::string toml(kValid);
  toml += R"toml([[gateways.options.socketOptions]]
description = "tab\there \"quoted\""
level = "SOL_SOCKET"
name = "SO_KEEPALIVE"
intValue = "1"
[[gateways.options.socketOptions]]
level = 99
name = 7
bufValue = "AQI="
state = 1
[upstreams.connectionConfig]
tcpKeepalive = { keepaliveTime = 60, keepaliveInterval = "19.5s", keepaliveProbes = 2 }
)toml";
  const std::string printed = round_trip(toml);
  EXPECT_NE(printed.find(R"toml(
[[gateways.options.socketOptions]]
description = "tab\u0009here \"quoted\""
level = 1  # SOL_SOCKET
name = 9  # SO_KEEPALIVE
intValue = 1
state = "STATE_PREBIND"

[[gateways.options.socketOptions]]
description = ""
level = 99
name = 7
bufValue = "AQI="
state = "STATE_BOUND"
)toml"),
            std::string::npos)
      << printed;
  EXPECT_NE(
      printed.find(
          R"(tcpKeepalive = { keepaliveTime = "60s", keepaliveInterval = "20s", keepaliveProbes = 2 })"),
      std::string::npos)
      << printed;
}

TEST(Print, EveryFieldRoundTrips) {
  const std::string printed = round_trip(R"toml(
[settings]
workers = 3
drainTimeout = "0.25s"
logLevel = "warning"
admin = { bindPort = 9901 }
[[gateways]]
metadata = { name = "g", namespace = "n" }
bindAddress = "::"
bindPort = 0
[gateways.options]
perConnectionBufferLimitBytes = 1
tcpKeepalive = {}
accessLoggingService.accessLog = [
  { fileSink = { path = "/tmp/x", jsonFormat = {} } },
  { fileSink = { path = "/tmp/y", jsonFormat = { "a key" = "%BYTES_SENT%", b = "%DURATION%" } } },
  { fileSink = { path = "/tmp/z" } },
]
[gateways.tcpGateway.options]
tcpProxySettings = { idleTimeout = "0s", maxConnectAttempts = 4294967295 }
[[gateways.tcpGateway.tcpHosts]]
name = ""
destination.single.upstream = { name = "u", namespace = "n" }
[[upstreams]]
metadata = { name = "u", namespace = "n" }
static.hosts = [{ addr = "example.com", port = 1 }, { addr = "::ffff:10.0.0.1", port = 65535, loadBalancingWeight = 9 }]
loadBalancerConfig = { random = {} }
)toml");
  EXPECT_NE(printed.find("tcpKeepalive = {}"), std::string::npos) << printed;
  EXPECT_NE(printed.find("random = {}"), std::string::npos) << printed;
  EXPECT_NE(printed.find("drainTimeout = \"0.25s\""), std::string::npos) << printed;
  EXPECT_NE(printed.find("[settings.admin]\nbindAddress = \"127.0.0.1\"\nbindPort = 9901\n"),
            std::string::npos)
      << printed;
}

TEST(Print, GlooTcpSurfaceRoundTrips) {
  const std::string printed = round_trip(R"toml(
[[gateways]]
metadata = { name = "g", namespace = "n" }
bindAddress = "::"
bindPort = 0
useProxyProto = true
[gateways.options]
listenerFiltersTimeout = "2.5s"
sniPassthrough = { maxClientHelloBytes = 4096, onNoMatch = "reset" }
[[gateways.tcpGateway.tcpHosts]]
name = "sni"
sslConfig = { sniDomains = ["A.example", "*.b.example"] }
destination.multi.destinations = [
  { weight = 0, destination.upstream = { name = "u" } },
  { weight = 3, destination.upstream = { name = "u2", namespace = "other" } },
]
[[gateways.tcpGateway.tcpHosts]]
name = "default"
destination.upstreamGroup = { name = "grp" }
[[gateways]]
metadata = { name = "pp", namespace = "n" }
bindAddress = "127.0.0.1"
bindPort = 0
options.proxyProtocol = { allowRequestsWithoutProxyProtocol = true, rules = [{ tlvType = 255, onTlvPresent = { key = "k" } }] }
tcpGateway.tcpHosts = [{ destination.single.upstream = { name = "u" } }]
[[upstreams]]
metadata = { name = "u", namespace = "n" }
static.hosts = [{ addr = "127.0.0.1", port = 1 }]
proxyProtocolVersion = "V1"
loadBalancerConfig.ringHash.ringHashConfig = { minimumRingSize = 16, maximumRingSize = 64 }
healthChecks = [{ timeout = "1s", interval = "2s", initialJitter = "0.1s", intervalJitter = "0.2s", intervalJitterPercent = 5, unhealthyThreshold = 2, healthyThreshold = 3, reuseConnection = false, noTrafficInterval = "30s", unhealthyInterval = "4s", unhealthyEdgeInterval = "1s", healthyEdgeInterval = "3s", tcpHealthCheck = { send = { text = "0A0b" }, receive = [{ text = "ff" }, { text = "00" }] } }]
outlierDetection = { consecutive5xx = 7, interval = "1s", baseEjectionTime = "2s", maxEjectionPercent = 50, splitExternalLocalOriginErrors = true, consecutiveLocalOriginFailure = 2, enforcingConsecutiveLocalOriginFailure = 90 }
[[upstreams.failover.prioritizedLocalities]]
localityEndpoints = [{ locality = { region = "r" }, lbEndpoints = [{ address = "10.0.0.1", port = 2, loadBalancingWeight = 4 }] }]
[[upstreams]]
metadata = { name = "u2", namespace = "other" }
static.hosts = [{ addr = "127.0.0.1", port = 3 }]
loadBalancerConfig.maglev = {}
[[upstreamGroups]]
metadata = { name = "grp", namespace = "n" }
destinations = [{ weight = 1, destination.upstream = { name = "u" } }]
)toml");
  for (const char* want : {
           "proxyProtocol = { allowRequestsWithoutProxyProtocol = false, rules = [] }\n",
           "listenerFiltersTimeout = \"2.5s\"",
           "sniPassthrough = { maxClientHelloBytes = 4096, onNoMatch = \"reset\" }",
           "sslConfig = { sniDomains = [\"a.example\", \"*.b.example\"] }",
           "destination.multi.destinations = [\n"
           "  { weight = 0, destination.upstream = { name = \"u\", namespace = \"n\" } },\n"
           "  { weight = 3, destination.upstream = { name = \"u2\", namespace = \"other\" } "
           "},\n]\n",
           "destination.upstreamGroup = { name = \"grp\", namespace = \"n\" }\n",
           "rules = [{ tlvType = 255, onTlvPresent = { metadataNamespace = \"\", key = \"k\" } }]",
           "proxyProtocolVersion = \"V1\"\n",
           "ringHash = { ringHashConfig = { minimumRingSize = 16, maximumRingSize = 64 } }",
           "maglev = {}",
           "reuseConnection = false\n",
           "unhealthyEdgeInterval = \"1s\"\n",
           "tcpHealthCheck = { send = { text = \"0a0b\" }, receive = [{ text = \"ff\" }, { text = "
           "\"00\" }] }\n",
           "consecutiveLocalOriginFailure = 2\nenforcingConsecutiveLocalOriginFailure = 90\n",
           "[[upstreams.failover.prioritizedLocalities]]  # priority 1\n",
           "lbEndpoints = [\n    { address = \"10.0.0.1\", port = 2, loadBalancingWeight = 4 },\n  "
           "]",
           "[[upstreamGroups]]\nmetadata = { name = \"grp\", namespace = \"n\" }\n",
       }) {
    EXPECT_NE(printed.find(want), std::string::npos) << want << "\n---\n" << printed;
  }
  // The deprecated flag is printed as what it means.
  EXPECT_EQ(printed.find("useProxyProto"), std::string::npos) << printed;
}

}  // namespace
}  // namespace ringway::config
