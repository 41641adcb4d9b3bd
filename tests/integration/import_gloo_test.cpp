// `ringway import-gloo` on the Gloo documentation's own TCP examples, run as the real binary:
// the YAML of each page is written here as data (with the page it came from), converted, and the
// TOML it prints must pass `ringway --check`. Where a page collapses a part ("metadata: #
// collapsed for brevity") or relies on a resource Gloo discovers, the test fills in exactly that
// part and says so; the rest is the page's text.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "process.hpp"
#include "test_env.hpp"

namespace ringway::test {
namespace {

struct Imported {
  CommandResult import;
  CommandResult check;
};

// Converts `yaml` with the real binary, then checks the output with `--check`.
Imported import_and_check(const std::string& yaml) {
  TempDir dir;
  const std::string in = dir.write("gloo.yaml", yaml);
  Imported r;
  r.import = run_command({ringway_bin(), "import-gloo", in}, scaled(Millis(10000)));
  if (r.import.exit_code != 0) return r;
  const std::string out = dir.write("ringway.toml", r.import.out);
  r.check = run_command({ringway_bin(), "--check", "-c", out}, scaled(Millis(10000)));
  return r;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class ImportGloo : public ::testing::Test {
 protected:
  void SetUp() override {
    if (ringway_bin().empty()) GTEST_SKIP() << "RINGWAY_BIN is not set";
  }
};

// Gloo's discovery turns the tcp-echo Service (port 1025) into this Upstream; the pages only
// name it. Ringway has no discovery, so the tests give it as the static upstream it stands for.
std::string static_upstream(const std::string& name) {
  return "---\n# Not from the page: the discovered upstream, as a static one.\n"
         "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata:\n  name: " +
         name +
         "\n  namespace: gloo-system\nspec:\n  static:\n    hosts:\n"
         "    - addr: 127.0.0.1\n      port: 1025\n";
}

// docs/content/guides/traffic_management/listener_configuration/tcp_proxy.md ("TCP Proxy"):
// the tcp-echo Pod and Service of "Deploy the tcp-echo pod", then "Provision the gateway CR".
const char* kTcpProxyPage = R"(apiVersion: v1
kind: Pod
metadata:
  labels:
    gloo: tcp-echo
  name: tcp-echo
spec:
  containers:
  - image: soloio/tcp-echo:latest
    imagePullPolicy: IfNotPresent
    name: tcp-echo
  restartPolicy: Always
---
apiVersion: v1
kind: Service
metadata:
  labels:
    app: gloo
  name: tcp-echo
spec:
  ports:
  - name: http
    port: 1025
    protocol: TCP
    targetPort: 1025
  selector:
    gloo: tcp-echo
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata:
  name: tcp
  namespace: gloo-system
spec:
  bindAddress: '::'
  bindPort: 8000
  tcpGateway:
    tcpHosts:
    - name: one
      destination:
        single:
          upstream:
            name: gloo-system-tcp-echo-1025
            namespace: gloo-system
  useProxyProto: false
)";

TEST_F(ImportGloo, TcpProxyGuidePassesCheck) {
  const Imported r =
      import_and_check(std::string(kTcpProxyPage) + static_upstream("gloo-system-tcp-echo-1025"));
  ASSERT_EQ(r.import.exit_code, 0) << r.import.err;
  ASSERT_EQ(r.check.exit_code, 0) << r.import.out << "\n----\n" << r.check.err;
  const std::string& t = r.import.out;
  EXPECT_TRUE(contains(t, "bindAddress = \"::\"\nbindPort = 8000\n")) << t;
  EXPECT_TRUE(contains(t,
                       "destination.single.upstream = { name = \"gloo-system-tcp-echo-1025\", "
                       "namespace = \"gloo-system\" }"))
      << t;
  EXPECT_TRUE(contains(t, "bindPort = 8000\nuseProxyProto = false\n")) << t;
  EXPECT_TRUE(contains(t, "# not carried: Pod tcp-echo (")) << t;
  EXPECT_TRUE(contains(t, "# not carried: Service tcp-echo (")) << t;
  std::printf("tcp_proxy.md: %s", r.import.err.c_str());
}

// docs/content/guides/traffic_management/tcp_keepalive/_index.md ("TCP Keepalive"): the
// Gateway's socketOptions and the Upstream's connectionConfig. The page collapses the Gateway's
// metadata and leaves out its tcpGateway and the Upstream's metadata and hosts ("omitted for
// brevity"); those parts are filled in and marked.
const char* kKeepalivePage = R"(apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: # collapsed for brevity
  name: gateway-proxy          # filled in by the test
  namespace: gloo-system       # filled in by the test
spec:
  bindAddress: '::'
  bindPort: 8080
  options:
    socketOptions:
      - description: "enable keepalive" # socket level options
        level: 1 # means socket level options (SOL_SOCKET)
        name: 9 # means the keepalive parameter (SO_KEEPALIVE)
        intValue: 1 # a nonzero value means "yes" to enable
        state: STATE_PREBIND
      - description: "idle time before first keepalive probe is sent" # TCP protocol
        level: 6 # IPPROTO_TCP
        name: 4 # TCP_KEEPIDLE parameter - The time in seconds that the connection is idle before TCP starts sending keepalive probes.
        intValue: 60 # seconds
        state: STATE_PREBIND
      - description: "keepalive interval" # TCP protocol
        level: 6 # IPPROTO_TCP
        name: 5 # the TCP_KEEPINTVL parameter - The time in seconds between individual keepalive probes.
        intValue: 20 # seconds
        state: STATE_PREBIND
      - description: "keepalive probes count" # TCP protocol
        level: 6 # IPPROTO_TCP
        name: 6 # the TCP_KEEPCNT parameter - The maximum number of keepalive probes that TCP sends before dropping the connection.
        intValue: 2 # number of failed probes
        state: STATE_PREBIND
  tcpGateway:                  # filled in by the test
    tcpHosts:
    - name: one
      destination: {single: {upstream: {name: echo, namespace: gloo-system}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: # collapsed for brevity
  name: echo                   # filled in by the test
  namespace: gloo-system       # filled in by the test
spec:
# the destination settings are omitted for brevity
  static: {hosts: [{addr: 127.0.0.1, port: 9000}]}   # filled in by the test
  connectionConfig:
    tcpKeepalive:
      keepaliveInterval: 20 # seconds
      keepaliveProbes: 2 # number of probes
      keepaliveTime: 60 # seconds
)";

TEST_F(ImportGloo, TcpKeepaliveGuidePassesCheck) {
  const Imported r = import_and_check(kKeepalivePage);
  ASSERT_EQ(r.import.exit_code, 0) << r.import.err;
  ASSERT_EQ(r.check.exit_code, 0) << r.import.out << "\n----\n" << r.check.err;
  const std::string& t = r.import.out;
  EXPECT_TRUE(contains(t,
                       "description = \"idle time before first keepalive probe is sent\"\n"
                       "level = 6\nname = 4\nintValue = 60\nstate = \"STATE_PREBIND\"\n"))
      << t;
  EXPECT_TRUE(contains(t,
                       "tcpKeepalive = { keepaliveTime = 60, keepaliveInterval = 20, "
                       "keepaliveProbes = 2 }"))
      << t;
  EXPECT_FALSE(contains(t, "# not carried: spec")) << t;
}

// docs/content/guides/security/local_rate_limiting/tcp.md ("Local rate limiting for TCP"): the
// Gateway with a connection token bucket. Ringway has no localRatelimit: the rest is carried.
const char* kLocalRatelimitPage = R"(apiVersion: gateway.solo.io/v1
kind: Gateway
metadata:
  name: tcp
  namespace: gloo-system
spec:
  bindAddress: '::'
  bindPort: 8000
  tcpGateway:
    options: 
      localRatelimit: 
        maxTokens: 1
        tokensPerFill: 1
        fillInterval: 100s
    tcpHosts:
    - name: one
      destination:
        single:
          upstream:
            name: default-tcp-echo-1025
            namespace: gloo-system
  useProxyProto: false  
)";

TEST_F(ImportGloo, TcpLocalRateLimitGuidePassesCheckWithTheLimitNamed) {
  const Imported r =
      import_and_check(std::string(kLocalRatelimitPage) + static_upstream("default-tcp-echo-1025"));
  ASSERT_EQ(r.import.exit_code, 0) << r.import.err;
  ASSERT_EQ(r.check.exit_code, 0) << r.import.out << "\n----\n" << r.check.err;
  EXPECT_TRUE(contains(r.import.out,
                       "# not carried: spec.tcpGateway.options.localRatelimit: "
                       "not supported by Ringway yet"))
      << r.import.out;
}

// `kubectl get gateways.gateway.solo.io,upstreams -n gloo-system -o yaml` prints a List; this
// one holds the TCP guide's Gateway as the API server returns it (server-set metadata, status)
// and the discovered kube Upstream next to a static one.
const char* kKubectlList = R"(apiVersion: v1
items:
- apiVersion: gateway.solo.io/v1
  kind: Gateway
  metadata:
    creationTimestamp: "2024-05-02T10:00:00Z"
    generation: 1
    name: tcp
    namespace: gloo-system
    resourceVersion: "81234"
    uid: 6b1e4c52-1a5b-4a1c-9d0a-3c2f7f0e9a11
  spec:
    bindAddress: '::'
    bindPort: 8000
    tcpGateway:
      tcpHosts:
      - destination:
          single:
            upstream:
              name: static-echo
              namespace: gloo-system
        name: one
    useProxyProto: false
  status:
    statuses:
      gloo-system:
        reportedBy: gateway
        state: Accepted
- apiVersion: gloo.solo.io/v1
  kind: Upstream
  metadata:
    labels:
      discovered_by: kubernetesplugin
    name: gloo-system-tcp-echo-1025
    namespace: gloo-system
  spec:
    discoveryMetadata: {}
    kube:
      selector:
        gloo: tcp-echo
      serviceName: tcp-echo
      serviceNamespace: gloo-system
      servicePort: 1025
- apiVersion: gloo.solo.io/v1
  kind: Upstream
  metadata:
    name: static-echo
    namespace: gloo-system
  spec:
    static:
      hosts:
      - addr: 127.0.0.1
        port: 1025
kind: List
metadata:
  resourceVersion: ""
)";

TEST_F(ImportGloo, KubectlListOutputPassesCheck) {
  const Imported r = import_and_check(kKubectlList);
  ASSERT_EQ(r.import.exit_code, 0) << r.import.err;
  ASSERT_EQ(r.check.exit_code, 0) << r.import.out << "\n----\n" << r.check.err;
  const std::string& t = r.import.out;
  EXPECT_TRUE(contains(t, "# not carried: Upstream gloo-system/gloo-system-tcp-echo-1025")) << t;
  EXPECT_TRUE(contains(t, "# not carried: status: written by Gloo's controller")) << t;
  EXPECT_TRUE(
      contains(r.import.err, "1 gateways, 1 upstreams, 0 upstream groups, 1 documents left out"))
      << r.import.err;
}

// docs/content/guides/gloo_federation/service_failover.md ("Service Failover"): the failover
// Gateway terminates TLS (secretRef) and routes by SNI cluster name; Ringway can carry neither,
// so the import says why and exits 65 with nothing on stdout.
const char* kServiceFailoverPage = R"(apiVersion: gateway.solo.io/v1
kind: Gateway
metadata:
 name: failover-gateway
 namespace: gloo-system
 labels:
   app: gloo
spec:
 bindAddress: "::"
 bindPort: 15443
 tcpGateway:
   tcpHosts:
   - name: failover
     sslConfig:
       secretRef:
         name: failover-downstream
         namespace: gloo-system
     destination:
       forwardSniClusterName: {}

---
apiVersion: v1
kind: Service
metadata:
 labels:
   app: gloo
   gateway-proxy-id: gateway-proxy
   gloo: gateway-proxy
 name: failover
 namespace: gloo-system
spec:
 ports:
 - name: failover
   nodePort: 32000
   port: 15443
   protocol: TCP
   targetPort: 15443
 selector:
   gateway-proxy: live
   gateway-proxy-id: gateway-proxy
 sessionAffinity: None
 type: LoadBalancer
)";

TEST_F(ImportGloo, ServiceFailoverGatewayIsRefusedWithTheReason) {
  const Imported r = import_and_check(kServiceFailoverPage);
  EXPECT_EQ(r.import.exit_code, 65) << r.import.err;
  EXPECT_TRUE(r.import.out.empty()) << r.import.out;
  EXPECT_TRUE(contains(r.import.err, "# not carried: Gateway gloo-system/failover-gateway"))
      << r.import.err;
  EXPECT_TRUE(contains(r.import.err,
                       "sslConfig.secretRef terminates TLS; Ringway forwards TLS "
                       "without terminating it"))
      << r.import.err;
}

TEST_F(ImportGloo, BadInputExitsWithDataErrorAndNoOutput) {
  TempDir dir;
  const std::string bad = dir.write("bad.yaml", "kind: Gateway\nspec: [unclosed\n");
  CommandResult r = run_command({ringway_bin(), "import-gloo", bad}, scaled(Millis(10000)));
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(contains(r.err, bad + ":3:1: error: YAML: ")) << r.err;
  r = run_command({ringway_bin(), "import-gloo", dir.path() + "/missing.yaml"},
                  scaled(Millis(10000)));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.out.empty());
}

}  // namespace
}  // namespace ringway::test
