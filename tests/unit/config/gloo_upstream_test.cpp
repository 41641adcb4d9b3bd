// Upstream-side Gloo fields in the loader: healthChecks (tcpHealthCheck with hex payloads),
// outlierDetection, failover priorities, ringHash/maglev and proxyProtocolVersion. What loads
// into the model with its defaults, and every bad value with its full diagnostic.
#include <gtest/gtest.h>

#include "config_test_util.hpp"

namespace ringway::config {
namespace {

using testing::errors;
using testing::kValid;
using testing::load;
using testing::messages;
using Lines = std::vector<std::string>;

// kValid (lines 1..12, the upstream starts at line 10), then `extra` from line 13.
std::string with(std::string_view extra) {
  return std::string(kValid) + std::string(extra);
}

std::vector<std::string> warnings(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& d : r.diagnostics)
    if (d.severity == Diagnostic::Severity::Warning) out.push_back(format(d));
  return out;
}

// ---- healthChecks ------------------------------------------------------------------------

TEST(GlooUpstream, HealthCheckLoadsWithEnvoyDefaults) {
  auto r = load(with(R"toml([[upstreams.healthChecks]]
timeout = "1s"
interval = "5s"
unhealthyThreshold = 3
healthyThreshold = 2
tcpHealthCheck = { send = { text = "50494E470d0a" }, receive = [{ text = "2b504f" }, { text = "4e47" }] }
)toml"));
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  EXPECT_TRUE(r.diagnostics.empty()) << ::testing::PrintToString(messages(r));
  const auto& c = r.config->upstreams[0].health_check;
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->timeout, std::chrono::seconds(1));
  EXPECT_EQ(c->interval, std::chrono::seconds(5));
  EXPECT_EQ(c->unhealthy_threshold, 3u);
  EXPECT_EQ(c->healthy_threshold, 2u);
  EXPECT_EQ(c->send, "PING\r\n");
  EXPECT_EQ(c->receive, (std::vector<std::string>{"+PO", "NG"}));
  EXPECT_EQ(c->no_traffic_interval, kDefaultNoTrafficInterval);
  EXPECT_TRUE(c->reuse_connection);
  EXPECT_FALSE(c->unhealthy_interval.has_value());
  EXPECT_EQ(c->interval_jitter_percent, 0u);
}

TEST(GlooUpstream, ConnectOnlyHealthCheck) {
  auto r = load(with(R"toml([[upstreams.healthChecks]]
timeout = "1s"
interval = "1s"
unhealthyThreshold = 1
healthyThreshold = 1
tcpHealthCheck = {}
)toml"));
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  EXPECT_TRUE(r.config->upstreams[0].health_check->send.empty());
}

TEST(GlooUpstream, BadHealthChecks) {
  auto r = load(with(R"toml([[upstreams.healthChecks]]
timeout = "0s"
intervalJitterPercent = 101
unhealthyThreshold = 0
reuseConnection = "yes"
tcpHealthCheck = { send = { text = "abc" }, receive = [{ text = "zz" }, { text = "" }, {}] }
[[upstreams.healthChecks]]
timeout = "1s"
)toml"));
  const std::string hc = "upstreams[0].healthChecks[0].";
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:13:1: error: " + hc + "interval: is required (a duration greater than 0s)",
          "test.toml:13:1: error: " + hc +
              "healthyThreshold: is required (1..4294967295 checks in a row; Envoy requires it)",
          "test.toml:14:11: error: " + hc + "timeout: must be greater than 0s",
          "test.toml:15:25: error: " + hc + "intervalJitterPercent: 101 is outside 0..100",
          "test.toml:16:22: error: " + hc + "unhealthyThreshold: 0 is outside 1..4294967295",
          "test.toml:17:19: error: " + hc + "reuseConnection: expected true or false, got a string",
          "test.toml:18:36: error: " + hc +
              "tcpHealthCheck.send.text: \"abc\" is not hex bytes; write an even number (at "
              "least 2) of hex digits 0-9 a-f, e.g. \"50494e470d0a\" for \"PING\\r\\n\"",
          "test.toml:18:65: error: " + hc +
              "tcpHealthCheck.receive[0].text: \"zz\" is not hex bytes; write an even number (at "
              "least 2) of hex digits 0-9 a-f, e.g. \"50494e470d0a\" for \"PING\\r\\n\"",
          "test.toml:18:82: error: " + hc +
              "tcpHealthCheck.receive[1].text: \"\" is not hex bytes; write an even number (at "
              "least 2) of hex digits 0-9 a-f, e.g. \"50494e470d0a\" for \"PING\\r\\n\"",
          "test.toml:18:88: error: " + hc +
              "tcpHealthCheck.receive[2].text: is required: the bytes as hex, e.g. text = "
              "\"50494e470d0a\"",
          "test.toml:19:1: error: upstreams[0].healthChecks[1]: only one health check per "
          "upstream is supported (as in Envoy)",
      }));
}

TEST(GlooUpstream, HttpHealthChecksAreRefused) {
  auto r = load(with(R"toml([[upstreams.healthChecks]]
timeout = "1s"
interval = "1s"
unhealthyThreshold = 1
healthyThreshold = 1
httpHealthCheck = { path = "/healthz" }
[[upstreams]]
metadata = { name = "two" }
static.hosts = [{ addr = "127.0.0.1", port = 9001 }]
healthChecks = [{ timeout = "1s", interval = "1s", unhealthyThreshold = 1, healthyThreshold = 1 }]
)toml"));
  EXPECT_EQ(errors(r),
            (Lines{
                "test.toml:18:1: error: upstreams[0].healthChecks[0].httpHealthCheck: "
                "httpHealthCheck applies to HTTP only; Ringway forwards TCP; use tcpHealthCheck",
                "test.toml:22:17: error: upstreams[1].healthChecks[0].tcpHealthCheck: is "
                "required: tcpHealthCheck = {} connects only; add send/receive hex payloads to "
                "check what the upstream answers",
            }));
}

// ---- outlierDetection --------------------------------------------------------------------

TEST(GlooUpstream, OutlierDetectionDefaultsAreEnvoys) {
  auto r = load(with("[upstreams.outlierDetection]\n"));
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  const auto& o = r.config->upstreams[0].outlier_detection;
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->consecutive_5xx, 5u);
  EXPECT_EQ(o->interval, std::chrono::seconds(10));
  EXPECT_EQ(o->base_ejection_time, std::chrono::seconds(30));
  EXPECT_EQ(o->max_ejection_percent, 10u);
  EXPECT_EQ(o->enforcing_consecutive_5xx, 100u);
  EXPECT_EQ(o->consecutive_gateway_failure, 5u);
  EXPECT_EQ(o->enforcing_consecutive_gateway_failure, 0u);
  EXPECT_FALSE(o->split_external_local_origin_errors);
  EXPECT_EQ(o->consecutive_local_origin_failure, 5u);
  EXPECT_EQ(o->enforcing_consecutive_local_origin_failure, 100u);
}

TEST(GlooUpstream, BadOutlierDetection) {
  auto r = load(with(R"toml([upstreams.outlierDetection]
consecutive5xx = 0
interval = "0s"
maxEjectionPercent = 101
enforcingConsecutiveGatewayFailure = -1
splitExternalLocalOriginErrors = 1
successRateStdevFactor = 1900
)toml"));
  const std::string od = "upstreams[0].outlierDetection.";
  EXPECT_EQ(errors(r),
            (Lines{
                "test.toml:14:18: error: " + od + "consecutive5xx: 0 is outside 1..4294967295",
                "test.toml:15:12: error: " + od + "interval: must be greater than 0s",
                "test.toml:16:22: error: " + od + "maxEjectionPercent: 101 is outside 0..100",
                "test.toml:17:38: error: " + od +
                    "enforcingConsecutiveGatewayFailure: -1 is outside 0..100",
                "test.toml:18:34: error: " + od +
                    "splitExternalLocalOriginErrors: expected true or false, got an integer",
                "test.toml:19:1: error: " + od +
                    "successRateStdevFactor: successRateStdevFactor is not supported yet",
            }));
  auto w = load(with("[upstreams.outlierDetection]\nconsecutiveLocalOriginFailure = 3\n"));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(warnings(w), (Lines{"test.toml:14:33: warning: " + od +
                                "consecutiveLocalOriginFailure: has no effect unless "
                                "splitExternalLocalOriginErrors = true (until then connect "
                                "failures and resets count as consecutive5xx)"}));
}

// ---- failover ----------------------------------------------------------------------------

TEST(GlooUpstream, FailoverPriorities) {
  auto r = load(with(R"toml([upstreams.outlierDetection]
[[upstreams.failover.prioritizedLocalities]]
localityEndpoints = [
  { locality = { region = "r", zone = "z", subZone = "s" }, lbEndpoints = [{ address = "10.0.0.2", port = 1 }] },
]
[[upstreams.failover.prioritizedLocalities]]
localityEndpoints = [{ lbEndpoints = [{ address = "backup.example", port = 2, loadBalancingWeight = 3 }] }]
)toml"));
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  EXPECT_TRUE(r.diagnostics.empty()) << ::testing::PrintToString(messages(r));
  const auto& f = r.config->upstreams[0].failover;
  ASSERT_EQ(f.size(), 2u);
  ASSERT_EQ(f[0].localities.size(), 1u);
  EXPECT_EQ(f[0].localities[0].region, "r");
  EXPECT_EQ(f[0].localities[0].sub_zone, "s");
  EXPECT_EQ(f[0].localities[0].hosts[0].addr, "10.0.0.2");
  EXPECT_EQ(f[1].localities[0].hosts[0].load_balancing_weight, 3u);
}

TEST(GlooUpstream, BadFailover) {
  auto r = load(with(R"toml([[upstreams.failover.prioritizedLocalities]]
localityEndpoints = [
  { lbEndpoints = [{ address = "not an address", port = 0 }, { port = 1 }], loadBalancingWeight = 2 },
  { locality = { region = 1 } },
]
[[upstreams.failover.prioritizedLocalities]]
)toml"));
  const std::string p = "upstreams[0].failover.prioritizedLocalities[";
  EXPECT_EQ(errors(r),
            (Lines{
                "test.toml:15:32: error: " + p +
                    "0].localityEndpoints[0].lbEndpoints[0].address: \"not an address\" is "
                    "neither an IP address nor a host name",
                "test.toml:15:57: error: " + p +
                    "0].localityEndpoints[0].lbEndpoints[0].port: 0 is outside 1..65535",
                "test.toml:15:62: error: " + p +
                    "0].localityEndpoints[0].lbEndpoints[1].address: is required (an IP address "
                    "or a host name)",
                "test.toml:16:3: error: " + p +
                    "0].localityEndpoints[1].lbEndpoints: at least one endpoint is required ({ "
                    "address = \"...\", port = N })",
                "test.toml:16:27: error: " + p +
                    "0].localityEndpoints[1].locality.region: expected a string, got an integer",
                "test.toml:18:1: error: " + p +
                    "1].localityEndpoints: at least one locality is required ({ lbEndpoints = "
                    "[{ address, port }] })",
            }));
  auto w = load(with(R"toml([[upstreams.failover.prioritizedLocalities]]
localityEndpoints = [{ lbEndpoints = [{ address = "10.0.0.2", port = 1 }], loadBalancingWeight = 2 }]
)toml"));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(warnings(w),
            (Lines{"test.toml:13:1: warning: upstreams[0].failover: without healthChecks or "
                   "outlierDetection no host is ever unavailable, so the failover priorities are "
                   "never used",
                   "test.toml:14:76: warning: " + p +
                       "0].localityEndpoints[0].loadBalancingWeight: loadBalancingWeight has no "
                       "effect: locality-weighted balancing is Gloo Enterprise; the hosts of one "
                       "priority share sessions by their own loadBalancingWeight"}));
}

// ---- loadBalancerConfig.ringHash / maglev, proxyProtocolVersion ----------------------------

TEST(GlooUpstream, HashingPolicies) {
  auto r = load(with("loadBalancerConfig.ringHash = {}\n"));
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  EXPECT_EQ(r.config->upstreams[0].load_balancer, LoadBalancer::RingHash);
  EXPECT_EQ(r.config->upstreams[0].ring_hash.minimum_ring_size, 1024u);
  EXPECT_EQ(r.config->upstreams[0].ring_hash.maximum_ring_size, 8u * 1024 * 1024);
  auto m = load(with("loadBalancerConfig.maglev = {}\n"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.config->upstreams[0].load_balancer, LoadBalancer::Maglev);
  auto c = load(with(
      "loadBalancerConfig.ringHash.ringHashConfig = { minimumRingSize = 64, maximumRingSize = 128 "
      "}\n"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.config->upstreams[0].ring_hash.minimum_ring_size, 64u);
  EXPECT_EQ(c.config->upstreams[0].ring_hash.maximum_ring_size, 128u);
}

TEST(GlooUpstream, BadHashingPolicies) {
  auto r = load(with(R"toml([upstreams.loadBalancerConfig]
ringHash.ringHashConfig = { minimumRingSize = 0, maximumRingSize = 8388609 }
maglev = { tableSize = 7 }
[[upstreams]]
metadata = { name = "two" }
static.hosts = [{ addr = "127.0.0.1", port = 9001 }]
loadBalancerConfig.ringHash.ringHashConfig = { minimumRingSize = 2048, maximumRingSize = 1024 }
)toml"));
  const std::string lb = "upstreams[0].loadBalancerConfig.";
  EXPECT_EQ(errors(r),
            (Lines{
                "test.toml:14:47: error: " + lb +
                    "ringHash.ringHashConfig.minimumRingSize: 0 is outside 1..8388608",
                "test.toml:15:10: error: " + lb +
                    "maglev: ringHash and maglev are both set; choose one policy",
                "test.toml:15:12: error: " + lb +
                    "maglev.tableSize: unknown key; this table "
                    "takes no keys",
                "test.toml:19:66: error: upstreams[1].loadBalancerConfig.ringHash.ringHashConfig."
                "minimumRingSize: 2048 is larger than maximumRingSize 1024",
            }));
}

TEST(GlooUpstream, ProxyProtocolVersion) {
  auto v1 = load(with("proxyProtocolVersion = \"V1\"\n"));
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1.config->upstreams[0].proxy_protocol_version, ProxyProtocolVersion::V1);
  auto v2 = load(with("proxyProtocolVersion = \"V2\"\n"));
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2.config->upstreams[0].proxy_protocol_version, ProxyProtocolVersion::V2);
  EXPECT_FALSE(load(kValid).config->upstreams[0].proxy_protocol_version.has_value());
  EXPECT_EQ(errors(load(with("proxyProtocolVersion = \"v2\"\n"))),
            (Lines{"test.toml:13:24: error: upstreams[0].proxyProtocolVersion: unknown version "
                   "\"v2\"; allowed: \"V1\" (text header), \"V2\" (binary header)"}));
}

}  // namespace
}  // namespace ringway::config
