// import-gloo: Gloo YAML -> TOML. Each test embeds its YAML next to the TOML lines and comments
// it expects, and loads the output with the real loader (the same code `--check` runs, minus
// the scratch sockets), so a conversion that produces TOML Ringway refuses fails here.
#include "ringway/config/import_gloo.hpp"

#include <gtest/gtest.h>

#include <string>

#include "ringway/config/loader.hpp"

namespace ringway::config {
namespace {

ImportResult run(const std::string& yaml, const std::string& name = "in.yaml") {
  return import_gloo({{name, yaml}});
}

// The output loads without errors; returns the diagnostics text for failure messages.
void expect_loads(const ImportResult& r) {
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0]);
  const LoadResult loaded = load_string(r.toml, "imported.toml");
  std::string messages;
  for (const auto& d : loaded.diagnostics)
    messages += format(d) + "\n";
  EXPECT_TRUE(loaded.ok()) << r.toml << "\n----\n" << messages;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

constexpr const char* kUpstream = R"(
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: echo, namespace: gloo-system}
spec:
  static:
    hosts:
    - addr: 127.0.0.1
      port: 9000
      loadBalancingWeight: 2
    - {addr: 127.0.0.2, port: 9001, sniAddr: x.example}
  connectionConfig:
    connectTimeout: 2s
    perConnectionBufferLimitBytes: 65536
    maxRequestsPerConnection: 10
    tcpKeepalive: {keepaliveTime: 60s, keepaliveInterval: 20, keepaliveProbes: 3}
  loadBalancerConfig:
    leastRequest: {choiceCount: 3}
    healthyPanicThreshold: 40
  circuitBreakers: {maxConnections: 100, maxRetries: 2}
  healthChecks:
  - timeout: 1s
    interval: 5s
    unhealthyThreshold: 3
    healthyThreshold: 2
    tcpHealthCheck: {send: {text: "50494e47"}, receive: [{text: "504f4e47"}]}
    eventLogPath: /tmp/hc.log
  - timeout: 1s
    interval: 5s
    unhealthyThreshold: 3
    healthyThreshold: 2
    httpHealthCheck: {path: /healthz}
  outlierDetection:
    consecutiveLocalOriginFailure: 3
    baseEjectionTime: 10s
    successRateMinimumHosts: 5
  proxyProtocolVersion: V2
  useHttp2: true
)";

// The loader wants at least one gateway; this one only makes the upstream tests' output load.
constexpr const char* kMinimalGateway = R"(---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {name: tcp, namespace: gloo-system}
spec:
  bindAddress: 127.0.0.1
  bindPort: 8000
  tcpGateway: {tcpHosts: [{name: one, destination: {single: {upstream: {name: echo}}}}]}
)";

TEST(ImportGloo, CarriesAnUpstreamAndNamesWhatItCannot) {
  const ImportResult r = run(std::string(kUpstream) + kMinimalGateway);
  expect_loads(r);
  EXPECT_EQ(r.upstreams, 1u);
  const std::string& t = r.toml;
  EXPECT_TRUE(contains(t, "[[upstreams]]\n# from in.yaml:2:1\n")) << t;
  EXPECT_TRUE(contains(t, R"(metadata = { name = "echo", namespace = "gloo-system" })")) << t;
  EXPECT_TRUE(contains(t, R"({ addr = "127.0.0.1", port = 9000, loadBalancingWeight = 2 },)"));
  EXPECT_TRUE(contains(t, R"({ addr = "127.0.0.2", port = 9001 },)"));
  EXPECT_TRUE(contains(t,
                       "[upstreams.connectionConfig]\nconnectTimeout = \"2s\"\n"
                       "perConnectionBufferLimitBytes = 65536\n"
                       "tcpKeepalive = { keepaliveTime = \"60s\", keepaliveInterval = 20, "
                       "keepaliveProbes = 3 }\n"))
      << t;
  EXPECT_TRUE(contains(t, "[upstreams.loadBalancerConfig]\nleastRequest = {}\n")) << t;
  EXPECT_TRUE(contains(t, "[upstreams.circuitBreakers]\nmaxConnections = 100\n")) << t;
  EXPECT_TRUE(contains(t, "]\nproxyProtocolVersion = \"V2\"\n")) << t;
  EXPECT_TRUE(contains(t,
                       "[[upstreams.healthChecks]]\ntimeout = \"1s\"\ninterval = \"5s\"\n"
                       "unhealthyThreshold = 3\nhealthyThreshold = 2\ntcpHealthCheck = { send = "
                       "{ text = \"50494e47\" }, receive = [ { text = \"504f4e47\" } ] }\n"))
      << t;
  EXPECT_EQ(t.find("[[upstreams.healthChecks]]"), t.rfind("[[upstreams.healthChecks]]")) << t;
  EXPECT_TRUE(contains(t,
                       "[upstreams.outlierDetection]\nconsecutiveLocalOriginFailure = 3\n"
                       "baseEjectionTime = \"10s\"\n"))
      << t;
  for (const char* note : {
           "# not carried: spec.static.hosts[1].sniAddr: not supported by Ringway yet",
           "# not carried: spec.connectionConfig.maxRequestsPerConnection: HTTP only",
           "# not carried: spec.loadBalancerConfig.leastRequest.choiceCount: not supported",
           "# not carried: spec.loadBalancerConfig.healthyPanicThreshold: not supported",
           "# not carried: spec.circuitBreakers.maxRetries: not supported",
           "# not carried: spec.healthChecks[0].eventLogPath: not supported by Ringway yet",
           "# not carried: spec.healthChecks[1]: not a tcpHealthCheck",
           "# not carried: spec.outlierDetection.successRateMinimumHosts: not supported",
           "# not carried: spec.useHttp2: HTTP only; Ringway forwards TCP",
       }) {
    EXPECT_TRUE(contains(t, note)) << note << "\n" << t;
  }
}

TEST(ImportGloo, CarriesAGatewayWithOptionsHostsAndAccessLog) {
  const std::string yaml = std::string(kUpstream) + R"(---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata:
  name: tcp
  namespace: gloo-system
  labels: {app: gloo}
spec:
  bindAddress: "::"
  bindPort: 8000
  proxyNames: [gateway-proxy]
  options:
    perConnectionBufferLimitBytes: 32768
    socketOptions:
    - {description: "enable keepalive", level: 1, name: 9, intValue: 1, state: STATE_PREBIND}
    - {description: quoted int, level: "6", name: "4", intValue: "60"}
    accessLoggingService:
      accessLog:
      - fileSink:
          path: /dev/stdout
          jsonFormat: {client: "%DOWNSTREAM_REMOTE_ADDRESS%", "up stream": "%UPSTREAM_HOST%"}
      - grpcService: {logName: x}
    proxyProtocol: {}
  tcpGateway:
    options:
      tcpProxySettings: {idleTimeout: 1m2s, maxConnectAttempts: 3}
      connectionLimit: {maxActiveConnections: 10, delayBeforeClose: 1s}
      localRatelimit: {maxTokens: 1}
    tcpHosts:
    - name: one
      destination: {single: {upstream: {name: echo, namespace: gloo-system}}}
    - name: weighted
      sslConfig: {sniDomains: [w.example, "*.w.example"], alpnProtocols: [h2]}
      destination:
        multi:
          destinations:
          - {weight: 1, destination: {upstream: {name: echo}}, options: {}}
          - {weight: 3, destination: {upstream: {name: echo, namespace: gloo-system}}}
    - name: terminated
      sslConfig: {secretRef: {name: cert}, sniDomains: [t.example]}
      destination: {single: {upstream: {name: echo}}}
    - name: kube
      sslConfig: {sniDomains: [k.example]}
      destination: {single: {kube: {ref: {name: svc}, port: 80}}}
)";
  const ImportResult r = run(yaml);
  expect_loads(r);
  EXPECT_EQ(r.gateways, 1u);
  const std::string& t = r.toml;
  // Gateways come first, whatever the input order.
  EXPECT_LT(t.find("[[gateways]]"), t.find("[[upstreams]]"));
  EXPECT_TRUE(contains(t, "[[gateways]]\n# from in.yaml:40:1\n")) << t;
  EXPECT_TRUE(contains(t, "bindAddress = \"::\"\nbindPort = 8000\n")) << t;
  EXPECT_TRUE(contains(t,
                       "[[gateways.options.socketOptions]]\ndescription = \"enable keepalive\"\n"
                       "level = 1\nname = 9\nintValue = 1\nstate = \"STATE_PREBIND\"\n"))
      << t;
  EXPECT_TRUE(contains(t, "level = \"6\"\nname = \"4\"\nintValue = \"60\"\n")) << t;
  EXPECT_TRUE(contains(t,
                       "fileSink = { path = \"/dev/stdout\", jsonFormat = { client = "
                       "\"%DOWNSTREAM_REMOTE_ADDRESS%\", \"up stream\" = \"%UPSTREAM_HOST%\" } }"))
      << t;
  EXPECT_TRUE(contains(t,
                       "[gateways.tcpGateway.options.tcpProxySettings]\nidleTimeout = "
                       "\"1m2s\"\nmaxConnectAttempts = 3\n"))
      << t;
  EXPECT_TRUE(contains(t,
                       "[[gateways.tcpGateway.tcpHosts]]\nname = \"one\"\n"
                       "destination.single.upstream = { name = \"echo\", namespace = "
                       "\"gloo-system\" }\n"))
      << t;
  EXPECT_TRUE(contains(t,
                       "[gateways.options]\nperConnectionBufferLimitBytes = 32768\n"
                       "proxyProtocol = {}\n"))
      << t;
  EXPECT_TRUE(contains(t,
                       "name = \"weighted\"\nsslConfig = { sniDomains = [ \"w.example\", "
                       "\"*.w.example\" ] }\ndestination.multi.destinations = [ { weight = 1, "
                       "destination = { upstream = { name = \"echo\" } } }, { weight = 3, "
                       "destination = { upstream = { name = \"echo\", namespace = "
                       "\"gloo-system\" } } } ]\n"))
      << t;
  EXPECT_FALSE(contains(t, "name = \"terminated\"")) << t;
  EXPECT_EQ(t.find("alpnProtocols"), t.rfind("alpnProtocols")) << "noted once\n" << t;
  for (const char* note : {
           "# not carried: metadata.labels: Ringway does not select resources by label",
           "# not carried: spec.proxyNames: Ringway is the proxy",
           "# not carried: spec.options.accessLoggingService.accessLog[1].grpcService:",
           "# not carried: spec.tcpGateway.options.localRatelimit: not supported",
           "# not carried: spec.tcpGateway.options.connectionLimit.delayBeforeClose:",
           "# not carried: spec.tcpGateway.tcpHosts[1].sslConfig.alpnProtocols: Ringway forwards "
           "TLS without terminating it",
           "# not carried: spec.tcpGateway.tcpHosts[1].destination.multi.destinations[0].options:",
           "# not carried: spec.tcpGateway.tcpHosts[2]: sslConfig.secretRef terminates TLS; "
           "Ringway forwards TLS without terminating it",
           "# not carried: spec.tcpGateway.tcpHosts[3]: destination.single.kube is not supported",
       }) {
    EXPECT_TRUE(contains(t, note)) << note << "\n" << t;
  }
}

TEST(ImportGloo, ReadsKubectlListOutputAndLeavesOutWhatItCannotServe) {
  const std::string yaml = R"(apiVersion: v1
kind: List
metadata: {resourceVersion: ""}
items:
- apiVersion: gloo.solo.io/v1
  kind: Upstream
  metadata:
    name: static-one
    namespace: gloo-system
    uid: 0f7c
    resourceVersion: "123"
    generation: 2
    creationTimestamp: "2024-01-01T00:00:00Z"
  spec:
    static: {hosts: [{addr: 10.0.0.1, port: 80}]}
  status:
    statuses: {gloo-system: {reportedBy: gloo, state: Accepted}}
- apiVersion: gloo.solo.io/v1
  kind: Upstream
  metadata: {name: gloo-system-tcp-echo-1025, namespace: gloo-system}
  spec:
    kube: {serviceName: tcp-echo, serviceNamespace: gloo-system, servicePort: 1025}
- apiVersion: gateway.solo.io/v1
  kind: Gateway
  metadata: {name: gateway-proxy, namespace: gloo-system}
  spec: {bindAddress: "::", bindPort: 8080, httpGateway: {}}
- apiVersion: gateway.networking.k8s.io/v1
  kind: Gateway
  metadata: {name: k8s}
- apiVersion: v1
  kind: Service
  metadata: {name: tcp-echo}
- apiVersion: gateway.solo.io/v1
  kind: Gateway
  metadata: {name: tcp, namespace: gloo-system}
  spec:
    bindPort: 8000
    bindAddress: "::"
    tcpGateway: {tcpHosts: [{name: one, destination: {single: {upstream: {name: static-one}}}}]}
)";
  const ImportResult r = run(yaml, "list.yaml");
  expect_loads(r);
  EXPECT_EQ(r.upstreams, 1u);
  EXPECT_EQ(r.gateways, 1u);
  EXPECT_EQ(r.left_out, 4u);
  const std::string& t = r.toml;
  for (const char* note : {
           "# not carried: metadata.{uid, resourceVersion, generation, creationTimestamp}: set "
           "by the Kubernetes API server",
           "# not carried: status: written by Gloo's controller",
           "# not carried: Upstream gloo-system/gloo-system-tcp-echo-1025 (list.yaml:18:3): a "
           "kube upstream; Ringway takes static upstreams only",
           "# not carried: Gateway gloo-system/gateway-proxy (list.yaml:23:3): an httpGateway",
           "# not carried: Gateway k8s (list.yaml:27:3): apiVersion gateway.networking.k8s.io/v1 "
           "is not Gloo's (gateway.solo.io/v1)",
           "# not carried: Service tcp-echo (list.yaml:30:3): Ringway imports Gloo Gateway, "
           "Upstream and UpstreamGroup resources only",
       }) {
    EXPECT_TRUE(contains(t, note)) << note << "\n" << t;
  }
}

TEST(ImportGloo, SeveralFilesAndDocumentsBecomeOneConfig) {
  const ImportResult r = import_gloo({
      {"a.yaml", "---\n---\n" + std::string(kUpstream)},
      {"b.yaml", R"(apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {name: tcp}
spec:
  bindAddress: 127.0.0.1
  bindPort: 8001
  tcpGateway:
    tcpHosts:
    - name: one
      destination: {single: {upstream: {name: echo, namespace: gloo-system}}}
)"},
  });
  expect_loads(r);
  EXPECT_EQ(r.gateways, 1u);
  EXPECT_EQ(r.upstreams, 1u);
  EXPECT_TRUE(contains(r.toml, "from a.yaml, b.yaml.")) << r.toml;
  EXPECT_TRUE(contains(r.toml, "# from b.yaml:1:1\nmetadata = { name = \"tcp\" }\n")) << r.toml;
}

TEST(ImportGloo, WarnsAboutAnUpstreamThatIsNotImported) {
  const ImportResult r = run(R"(apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {name: tcp, namespace: gloo-system}
spec:
  bindAddress: "::"
  bindPort: 8000
  tcpGateway:
    tcpHosts:
    - {name: a, destination: {single: {upstream: {name: missing}}}}
    - {name: b, destination: {single: {upstream: {name: echo, namespace: gloo-system}}}}
---
)" + std::string(kUpstream));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0],
            "Gateway gloo-system/tcp refers to Upstream gloo-system/missing, which is not among "
            "the inputs");
  EXPECT_TRUE(contains(r.toml,
                       "# warning: Gateway gloo-system/tcp refers to Upstream "
                       "gloo-system/missing"))
      << r.toml;
}

TEST(ImportGloo, ErrorsNameFileLineAndColumn) {
  ImportResult r = run("kind: Gateway\nspec: [unclosed\n", "bad.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_TRUE(r.errors[0].starts_with("bad.yaml:3:1: error: YAML: ")) << r.errors[0];
  EXPECT_TRUE(r.toml.empty());

  r = run("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata:\n  namespace: x\nspec: {}\n",
          "noname.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0],
            "noname.yaml:4:3: error: metadata.name: is required (Ringway names every resource; "
            "references resolve by name)");

  r = run("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "svc.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_TRUE(r.errors[0].starts_with("svc.yaml: error: no Gloo Gateway")) << r.errors[0];
  EXPECT_TRUE(contains(r.errors[0], "# not carried: Service s (svc.yaml:1:1)")) << r.errors[0];
}

TEST(ImportGloo, QuotesStringsSoTomlReadsThemBack) {
  const ImportResult r = run(R"(apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {name: "q\"uote\\d"}
spec:
  bindAddress: "::"
  bindPort: 8000
  options:
    socketOptions:
    - {description: "tab\tand \"quotes\" and \\ and \u0001", level: 1, name: 9, intValue: 1}
  tcpGateway:
    tcpHosts:
    - {name: "x", destination: {single: {upstream: {name: u}}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: u}
spec: {static: {hosts: [{addr: 127.0.0.1, port: 1}]}}
)");
  expect_loads(r);
  const LoadResult loaded = load_string(r.toml, "imported.toml");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config->gateways[0].metadata.name, "q\"uote\\d");
  EXPECT_EQ(loaded.config->gateways[0].socket_options[0].description,
            "tab\tand \"quotes\" and \\ and \x01");
}

}  // namespace
}  // namespace ringway::config
