// The rest of Gloo's TCP surface in the loader: SNI passthrough (sslConfig.sniDomains),
// weighted destinations (multi, upstreamGroup), PROXY protocol, health checks, outlier
// detection, failover and consistent hashing. Each feature: what loads into the model, and
// every bad value with its full diagnostic (line:col included).
#include <gtest/gtest.h>

#include "config_test_util.hpp"

namespace ringway::config {
namespace {

using testing::errors;
using testing::kValid;
using testing::load;
using testing::messages;
using Lines = std::vector<std::string>;

// kValid (lines 1..12), then `extra` from line 13.
std::string with(std::string_view extra) {
  return std::string(kValid) + std::string(extra);
}

std::vector<std::string> warnings(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& d : r.diagnostics)
    if (d.severity == Diagnostic::Severity::Warning) out.push_back(format(d));
  return out;
}

// ---- SNI passthrough ---------------------------------------------------------------------

TEST(GlooTcp, SniPassthroughLoads) {
  auto r = load(with(R"toml([[upstreams]]
metadata = { name = "b" }
static.hosts = [{ addr = "127.0.0.1", port = 9001 }]
[[gateways.tcpGateway.tcpHosts]]
name = "b"
sslConfig = { sniDomains = ["B.Example.COM", "*.b.example.com"] }
destination.single.upstream = { name = "b" }
)toml"));
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  EXPECT_TRUE(r.diagnostics.empty()) << ::testing::PrintToString(messages(r));
  const Gateway& g = r.config->gateways[0];
  ASSERT_EQ(g.tcp_hosts.size(), 2u);
  EXPECT_FALSE(g.tcp_hosts[0].ssl.has_value());  // the default
  ASSERT_TRUE(g.tcp_hosts[1].ssl.has_value());
  EXPECT_EQ(g.tcp_hosts[1].ssl->sni_domains,
            (std::vector<std::string>{"b.example.com", "*.b.example.com"}));
  EXPECT_EQ(g.tcp_hosts[1].upstream_index, 1u);
  EXPECT_EQ(g.sni_passthrough.max_client_hello_bytes, kDefaultMaxClientHelloBytes);
  EXPECT_EQ(g.sni_passthrough.on_no_match, SniNoMatch::Close);
  EXPECT_EQ(g.listener_filters_timeout, kDefaultListenerFiltersTimeout);
}

TEST(GlooTcp, SslConfigWithCertificatesIsRefused) {
  auto r = load(with(R"toml([[gateways.tcpGateway.tcpHosts]]
sslConfig = { sniDomains = ["a.example"], secretRef = { name = "tls" } }
destination.single.upstream = { name = "echo" }
)toml"));
  EXPECT_EQ(errors(r),
            (Lines{"test.toml:14:43: error: gateways[0].tcpGateway.tcpHosts[1].sslConfig."
                   "secretRef: secretRef is not supported: Ringway forwards TLS without "
                   "terminating it; keep only sslConfig.sniDomains to route by SNI (passthrough) "
                   "and let the upstream hold the certificate"}));
}

TEST(GlooTcp, BadServerNames) {
  auto r = load(with(R"toml([[gateways.tcpGateway.tcpHosts]]
sslConfig = { sniDomains = ["a..b", "*", "x.*.com", "A.example", "a.EXAMPLE", 7] }
destination.single.upstream = { name = "echo" }
[[gateways.tcpGateway.tcpHosts]]
sslConfig = {}
destination.single.upstream = { name = "echo" }
[[gateways.tcpGateway.tcpHosts]]
sslConfig = { sniDomains = "a.example" }
destination.single.upstream = { name = "echo" }
)toml"));
  const std::string hint =
      " is not a server name; use a DNS name such as \"db.example.com\" or a wildcard "
      "\"*.example.com\" (\"*\" only as the whole first label)";
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:14:29: error: gateways[0].tcpGateway.tcpHosts[1].sslConfig.sniDomains[0]: "
          "\"a..b\"" +
              hint,
          "test.toml:14:37: error: gateways[0].tcpGateway.tcpHosts[1].sslConfig.sniDomains[1]: "
          "\"*\"" +
              hint,
          "test.toml:14:42: error: gateways[0].tcpGateway.tcpHosts[1].sslConfig.sniDomains[2]: "
          "\"x.*.com\"" +
              hint,
          "test.toml:14:66: error: gateways[0].tcpGateway.tcpHosts[1].sslConfig.sniDomains[4]: "
          "\"a.example\" is listed twice",
          "test.toml:14:79: error: gateways[0].tcpGateway.tcpHosts[1].sslConfig.sniDomains[5]: "
          "expected a string, got an integer",
          "test.toml:17:13: error: gateways[0].tcpGateway.tcpHosts[2].sslConfig.sniDomains: at "
          "least one server name is required: Ringway uses sslConfig only to route TLS by SNI "
          "(sniDomains = [\"a.example.com\", \"*.example.org\"])",
          "test.toml:20:28: error: gateways[0].tcpGateway.tcpHosts[3].sslConfig.sniDomains: "
          "expected an array of server names, got a string",
      }));
}

TEST(GlooTcp, OneDefaultTcpHostAndEachServerNameOnce) {
  auto r = load(with(R"toml([[gateways.tcpGateway.tcpHosts]]
name = "second default"
destination.single.upstream = { name = "echo" }
[[gateways.tcpGateway.tcpHosts]]
sslConfig = { sniDomains = ["a.example", "*.b.example"] }
destination.single.upstream = { name = "echo" }
[[gateways.tcpGateway.tcpHosts]]
sslConfig = { sniDomains = ["*.B.example"] }
destination.single.upstream = { name = "echo" }
)toml"));
  EXPECT_EQ(errors(r),
            (Lines{
                "test.toml:13:1: error: gateways[0].tcpGateway.tcpHosts[1]: a second tcpHost "
                "without sslConfig (the first is at line 7); at most one is the default, the "
                "others need sslConfig.sniDomains to be told apart",
                "test.toml:20:29: error: "
                "gateways[0].tcpGateway.tcpHosts[3].sslConfig.sniDomains[0]: \"*.b.example\" "
                "already selects the tcpHost at line 16; a server name may appear in one tcpHost "
                "only",
            }));
}

TEST(GlooTcp, SniPassthroughSettings) {
  auto r = load(with(R"toml([gateways.options]
listenerFiltersTimeout = "0s"
sniPassthrough = { maxClientHelloBytes = 100, onNoMatch = "drop" }
)toml"));
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:14:26: error: gateways[0].options.listenerFiltersTimeout: must be greater "
          "than 0s",
          "test.toml:15:42: error: gateways[0].options.sniPassthrough.maxClientHelloBytes: 100 is "
          "outside 512..65536",
          "test.toml:15:59: error: gateways[0].options.sniPassthrough.onNoMatch: unknown action "
          "\"drop\"; allowed: \"close\" (FIN), \"reset\" (RST)",
      }));
  // Without any sslConfig the settings are accepted but said to do nothing.
  auto ok = load(with(R"toml([gateways.options]
listenerFiltersTimeout = "2s"
sniPassthrough = { onNoMatch = "reset" }
)toml"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(warnings(ok),
            (Lines{"test.toml:14:26: warning: gateways[0].options.listenerFiltersTimeout: has no "
                   "effect: this gateway reads neither a PROXY header nor a TLS ClientHello before "
                   "forwarding",
                   "test.toml:15:18: warning: gateways[0].options.sniPassthrough: has no effect: "
                   "no tcpHost of this gateway has sslConfig.sniDomains"}));
  EXPECT_EQ(ok.config->gateways[0].sni_passthrough.on_no_match, SniNoMatch::Reset);
}

// ---- weighted destinations -----------------------------------------------------------------

TEST(GlooTcp, MultiDestinationsLoadAndResolve) {
  auto r = load(with(R"toml([[upstreams]]
metadata = { name = "canary", namespace = "other" }
static.hosts = [{ addr = "127.0.0.1", port = 9001 }]
[[gateways.tcpGateway.tcpHosts]]
sslConfig = { sniDomains = ["m.example"] }
destination.multi.destinations = [
  { weight = 0, destination.upstream = { name = "canary", namespace = "other" } },
  { weight = 9, destination.upstream = { name = "echo" } },
  { weight = 1, destination.upstream = { name = "canary", namespace = "other" } },
]
)toml"));
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  EXPECT_EQ(warnings(r), (Lines{"test.toml:19:14: warning: gateways[0].tcpGateway.tcpHosts[1]."
                                "destination.multi.destinations[0].weight: 0: this destination is "
                                "never chosen (Envoy would reject a zero weight; Ringway treats "
                                "it as drained)"}));
  const TcpHost& h = r.config->gateways[0].tcp_hosts[1];
  EXPECT_EQ(h.kind, TcpHost::Kind::Multi);
  ASSERT_EQ(h.destinations.size(), 3u);
  EXPECT_EQ(h.destinations[0].upstream_index, 1u);
  EXPECT_EQ(h.destinations[1].upstream_index, 0u);
  EXPECT_EQ(h.destinations[1].upstream.namespace_, "default");  // the gateway's
  EXPECT_EQ(h.destinations[1].weight, 9u);
  // The first destination that can be chosen, for a worker that does not choose yet.
  EXPECT_EQ(h.upstream_index, 0u);
}

TEST(GlooTcp, BadWeightedDestinations) {
  auto r = load(with(R"toml([[gateways.tcpGateway.tcpHosts]]
sslConfig = { sniDomains = ["a.example"] }
destination.multi.destinations = [
  { destination.upstream = { name = "echo" } },
  { weight = -1, destination.upstream = { name = "echo" } },
  { weight = 1 },
  { weight = 1, destination.upstream = { name = "echo" }, options = {} },
]
[[gateways.tcpGateway.tcpHosts]]
sslConfig = { sniDomains = ["b.example"] }
destination.multi.destinations = [{ weight = 0, destination.upstream = { name = "echo" } }]
[[gateways.tcpGateway.tcpHosts]]
sslConfig = { sniDomains = ["c.example"] }
destination.multi = {}
destination.single.upstream = { name = "echo" }
[[gateways.tcpGateway.tcpHosts]]
sslConfig = { sniDomains = ["d.example"] }
destination.multi.destinations = [{ weight = 1, destination.upstream = { name = "ecko" } }]
)toml"));
  const std::string multi = "gateways[0].tcpGateway.tcpHosts[";
  EXPECT_EQ(
      errors(r),
      (Lines{
          "test.toml:16:3: error: " + multi +
              "1].destination.multi.destinations[0].weight: is required (0..4294967295; Gloo "
              "reads an unset weight as 0, which Envoy rejects)",
          "test.toml:17:14: error: " + multi +
              "1].destination.multi.destinations[1].weight: -1 is outside 0..4294967295",
          "test.toml:18:3: error: " + multi +
              "1].destination.multi.destinations[2].destination: is required: "
              "destination.upstream = { name = \"...\" }",
          "test.toml:19:59: error: " + multi +
              "1].destination.multi.destinations[3].options: options is not supported yet",
          "test.toml:23:34: error: " + multi +
              "2].destination.multi.destinations: every weight is 0: at least one destination "
              "needs a weight of 1 or more",
          "test.toml:26:21: error: " + multi +
              "3].destination.multi.destinations: is required: destinations = [{ weight = N, "
              "destination.upstream = { name = \"...\" } }]",
          "test.toml:27:13: error: " + multi +
              "3].destination.single: multi and single are both set; a destination is one of "
              "single, multi, upstreamGroup",
          "test.toml:30:72: error: " + multi +
              "4].destination.multi.destinations[0].destination.upstream: upstream "
              "'default.ecko' (namespace.name) is not defined; did you mean 'default.echo'?",
      }));
}

TEST(GlooTcp, UpstreamGroups) {
  auto r = load(with(R"toml([[gateways.tcpGateway.tcpHosts]]
sslConfig = { sniDomains = ["g.example"] }
destination.upstreamGroup = { name = "group" }
[[upstreamGroups]]
metadata = { name = "group" }
destinations = [{ weight = 2, destination.upstream = { name = "echo" } }]
)toml"));
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  const TcpHost& h = r.config->gateways[0].tcp_hosts[1];
  EXPECT_EQ(h.kind, TcpHost::Kind::UpstreamGroup);
  ASSERT_EQ(h.destinations.size(), 1u);
  EXPECT_EQ(h.destinations[0].weight, 2u);
  EXPECT_EQ(h.upstream.name, "echo");
  ASSERT_EQ(r.config->upstream_groups.size(), 1u);

  auto bad = load(with(R"toml([[gateways.tcpGateway.tcpHosts]]
sslConfig = { sniDomains = ["g.example"] }
destination.upstreamGroup = { name = "grup" }
[[upstreamGroups]]
metadata = { name = "group" }
kind = "Upstream"
destinations = [{ weight = 1, destination.upstream = { name = "nope" } }]
[[upstreamGroups]]
metadata = { name = "group" }
)toml"));
  EXPECT_EQ(errors(bad),
            (Lines{
                "test.toml:15:29: error: gateways[0].tcpGateway.tcpHosts[1].destination."
                "upstreamGroup: upstream group 'default.grup' (namespace.name) is not defined; "
                "did you mean 'default.group'?",
                "test.toml:18:8: error: upstreamGroups[0].kind: \"Upstream\" does not match this "
                "table; must be \"UpstreamGroup\" (optional)",
                "test.toml:19:54: error: upstreamGroups[0].destinations[0].destination.upstream: "
                "upstream 'default.nope' (namespace.name) is not defined; defined upstreams: "
                "default.echo",
                "test.toml:20:1: error: upstreamGroups[1].destinations: is required: "
                "destinations = [{ weight = N, destination.upstream = { name = \"...\" } }]",
                "test.toml:21:21: error: upstreamGroups[1].metadata.name: duplicate upstream "
                "group \"group\" in namespace \"default\": the first is at line 17",
            }));
}

// ---- PROXY protocol --------------------------------------------------------------------------

TEST(GlooTcp, ProxyProtocolLoads) {
  auto r = load(with(R"toml([gateways.options]
proxyProtocol = { allowRequestsWithoutProxyProtocol = true, rules = [
  { tlvType = 2, onTlvPresent = { metadataNamespace = "ns", key = "authority" } },
] }
)toml"));
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  const Gateway& g = r.config->gateways[0];
  ASSERT_TRUE(g.proxy_protocol.has_value());
  EXPECT_TRUE(g.proxy_protocol->allow_requests_without_proxy_protocol);
  ASSERT_EQ(g.proxy_protocol->rules.size(), 1u);
  EXPECT_EQ(g.proxy_protocol->rules[0].tlv_type, 2u);
  EXPECT_EQ(g.proxy_protocol->rules[0].key, "authority");
  EXPECT_EQ(warnings(r).size(), 2u) << ::testing::PrintToString(messages(r));
}

TEST(GlooTcp, DeprecatedUseProxyProto) {
  // kValid's gateway ends at line 9; a top-level key has to go inside it.
  std::string toml(kValid);
  toml.insert(toml.find("[gateways.tcpGateway"), "useProxyProto = true\n");
  auto r = load(toml);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
  EXPECT_EQ(warnings(r), (Lines{"test.toml:5:17: warning: gateways[0].useProxyProto: is "
                                "deprecated; read as options.proxyProtocol = {} (write that "
                                "instead)"}));
  ASSERT_TRUE(r.config->gateways[0].proxy_protocol.has_value());
  EXPECT_FALSE(r.config->gateways[0].proxy_protocol->allow_requests_without_proxy_protocol);

  // Gloo's own examples write `useProxyProto: false`: accepted, nothing changes.
  std::string off(kValid);
  off.insert(off.find("[gateways.tcpGateway"), "useProxyProto = false\n");
  auto r_off = load(off);
  ASSERT_TRUE(r_off.ok());
  EXPECT_TRUE(r_off.diagnostics.empty());
  EXPECT_FALSE(r_off.config->gateways[0].proxy_protocol.has_value());

  std::string both(kValid);
  both.insert(both.find("[gateways.tcpGateway"),
              "useProxyProto = \"yes\"\noptions.proxyProtocol = {}\n");
  EXPECT_EQ(errors(load(both)), (Lines{"test.toml:5:17: error: gateways[0].useProxyProto: "
                                       "expected true or false, got a string"}));
}

TEST(GlooTcp, BadProxyProtocol) {
  auto r = load(with(R"toml([gateways.options]
proxyProtocol = { allowRequestsWithoutProxyProtocol = 1, rules = [
] }
)toml"));
  EXPECT_EQ(errors(r),
            (Lines{
                "test.toml:14:55: error: gateways[0].options.proxyProtocol."
                "allowRequestsWithoutProxyProtocol: expected true or false, got an integer",
            }));
  auto rules = load(with(R"toml([gateways.options]
proxyProtocol = { rules = [
  { tlvType = 256 },
  { onTlvPresent = { metadataNamespace = "ns", key = "k" } },
  { tlvType = 1, onTlvPresent = { metadataNamespace = "ns" } },
] }
)toml"));
  EXPECT_EQ(errors(rules),
            (Lines{
                "test.toml:15:15: error: gateways[0].options.proxyProtocol.rules[0].tlvType: 256 "
                "is outside 0..255",
                "test.toml:16:3: error: gateways[0].options.proxyProtocol.rules[1].tlvType: is "
                "required (a TLV type, 0..255)",
                "test.toml:17:33: error: gateways[0].options.proxyProtocol.rules[2].onTlvPresent."
                "key: is required (a non-empty string)",
            }));
}

}  // namespace
}  // namespace ringway::config
