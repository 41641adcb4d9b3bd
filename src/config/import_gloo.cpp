// Gloo YAML -> Ringway TOML (contract in import_gloo.hpp). The fields carried here are the ones
// the loader (load_gateway.cpp, load_tcp_host.cpp, load_upstream*.cpp) accepts, under the same
// names; everything else in a resource is named in a "not carried" comment with the reason, so
// nothing disappears silently. yaml-cpp reports syntax errors by throwing; they are caught at
// the one call that parses.
#include "ringway/config/import_gloo.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <string_view>

#include "import_gloo_text.hpp"

namespace ringway::config {
namespace {

using namespace import_detail;  // NOLINT(google-build-using-namespace): this file's toolkit

// ---- metadata --------------------------------------------------------------------------------

constexpr std::string_view kServerSetMetadata[] = {
    "uid",      "resourceVersion", "generation", "creationTimestamp", "managedFields",
    "selfLink", "ownerReferences", "finalizers", "deletionTimestamp", "deletionGracePeriodSeconds"};

// `metadata = { name, namespace }`; false (with an error) when there is no name.
bool metadata(Resource& r, const Node& doc, const ImportSource& source, std::string& id,
              std::vector<std::string>& errors) {
  const Node md = get(doc, "metadata");
  const Node name = get(md, "name");
  if (!name.IsDefined() || !name.IsScalar() || name.Scalar().empty()) {
    errors.push_back(
        fmt::format("{}: error: metadata.name: is required (Ringway names every "
                    "resource; references resolve by name)",
                    where(source, md.IsDefined() ? md : doc)));
    return false;
  }
  const Node ns = get(md, "namespace");
  id = ns.IsDefined() ? ns.Scalar() + "/" + name.Scalar() : name.Scalar();
  r.name = name.Scalar();
  if (ns.IsDefined() && ns.IsScalar()) r.namespace_ = ns.Scalar();
  r.body += "metadata = { name = " + quote(name.Scalar());
  if (ns.IsDefined() && ns.IsScalar()) r.body += ", namespace = " + quote(ns.Scalar());
  r.body += " }\n";
  std::string server_set;
  for (const auto& kv : md) {
    const std::string& key = kv.first.Scalar();
    if (key == "name" || key == "namespace") continue;
    if (std::find(std::begin(kServerSetMetadata), std::end(kServerSetMetadata), key) !=
        std::end(kServerSetMetadata)) {
      server_set += (server_set.empty() ? "" : ", ") + key;
    } else if (key == "labels") {
      r.not_carried("metadata.labels", "Ringway does not select resources by label");
    } else if (key == "annotations") {
      r.not_carried("metadata.annotations", "Ringway reads no annotations");
    } else {
      r.not_carried("metadata." + key, kUnknown);
    }
  }
  if (!server_set.empty()) {
    r.not_carried("metadata.{" + server_set + "}", "set by the Kubernetes API server");
  }
  return true;
}

// ---- Gateway ---------------------------------------------------------------------------------

void socket_options(Resource& r, const Node& list, const std::string& path) {
  if (!list.IsSequence()) return r.not_carried(path, "not a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const Node o = list[i];
    const std::string p = index_path(path, i);
    note_rest(r, o, p, {"description", "level", "name", "intValue", "bufValue", "state"});
    r.tables += "\n[[gateways.options.socketOptions]]\n" +
                lines(o, {"description", "level", "name", "intValue", "bufValue", "state"});
  }
}

void access_logs(Resource& r, const Node& als, const std::string& path) {
  note_rest(r, als, path, {"accessLog"});
  const Node list = get(als, "accessLog");
  if (!list.IsSequence()) return;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string p = index_path(path + ".accessLog", i);
    note_rest(r, list[i], p, {"fileSink"},
              {{"grpcService", kNotYet}, {"openTelemetryService", kNotYet}, {"filter", kNotYet}});
    const Node sink = get(list[i], "fileSink");
    if (!sink.IsDefined()) continue;
    r.tables += "\n[[gateways.options.accessLoggingService.accessLog]]\nfileSink = " +
                inline_table(r, sink, p + ".fileSink", {"path", "stringFormat", "jsonFormat"}) +
                "\n";
  }
}

void gateway_options(Resource& r, const Node& options, const std::string& path) {
  note_rest(
      r, options, path,
      {"socketOptions", "perConnectionBufferLimitBytes", "accessLoggingService", "proxyProtocol"},
      {{"connectionBalanceConfig", kNotYet},
       {"listenerAccessLoggingService", kNotYet},
       {"tcpStats", kNotYet},
       {"extensions", kNotYet}});
  std::string scalars = lines(options, {"perConnectionBufferLimitBytes"});
  if (const Node p = get(options, "proxyProtocol"); p.IsDefined()) {
    scalars += "proxyProtocol = " + filtered_value(r, p, path + ".proxyProtocol", {}) + "\n";
  }
  if (!scalars.empty()) r.tables += "\n[gateways.options]\n" + scalars;
  if (const Node n = get(options, "socketOptions"); n.IsDefined()) {
    socket_options(r, n, path + ".socketOptions");
  }
  if (const Node n = get(options, "accessLoggingService"); n.IsDefined()) {
    access_logs(r, n, path + ".accessLoggingService");
  }
}

// Records `ref` ({name, namespace}) for the missing-upstream warning; like the loader, a
// reference without a namespace means the gateway's namespace.
void record_upstream_ref(Resource& r, const Node& ref) {
  const Node ns = get(ref, "namespace");
  const Node name = get(ref, "name");
  r.upstream_refs.push_back((ns.IsScalar() ? ns.Scalar() : r.namespace_) + "/" +
                            (name.IsScalar() ? name.Scalar() : std::string()));
}

// Gloo's SslConfig fields that configure TLS termination (everything but sniDomains).
constexpr std::string_view kTerminationKeys[] = {"secretRef", "sslFiles", "sds"};
constexpr std::string_view kNoTermination = "Ringway forwards TLS without terminating it";

// `sslConfig = { sniDomains = [...] }` for SNI passthrough; false when the host terminates TLS
// (carrying it as passthrough would send TLS where the upstream expects plain text).
bool ssl_config(Resource& r, const Node& ssl, const std::string& path, std::string& out) {
  for (std::string_view k : kTerminationKeys) {
    if (has(ssl, k)) {
      r.not_carried(path.substr(0, path.rfind('.')),
                    fmt::format("sslConfig.{} terminates TLS; {}", k, kNoTermination));
      return false;
    }
  }
  note_rest(r, ssl, path, {"sniDomains"},
            {{"verifySubjectAltName", kNoTermination},
             {"parameters", kNoTermination},
             {"alpnProtocols", kNoTermination},
             {"oneWayTls", kNoTermination},
             {"disableTlsSessionResumption", kNoTermination},
             {"transportSocketConnectTimeout", kNoTermination},
             {"ocspStaplePolicy", kNoTermination}});
  const Node domains = get(ssl, "sniDomains");
  out +=
      "sslConfig = { sniDomains = " + (domains.IsDefined() ? inline_value(domains) : "[]") + " }\n";
  return true;
}

// The destination line(s) of a tcpHost; false when the destination cannot be carried.
bool destination(Resource& r, const Node& d, const std::string& path, std::string& out) {
  note_rest(r, d, path, {"single", "multi", "upstreamGroup"}, {{"forwardSniClusterName", kNotYet}});
  const Node single = get(d, "single");
  if (const Node upstream = get(single, "upstream"); upstream.IsDefined()) {
    note_rest(r, single, path + ".single", {"upstream"},
              {{"destinationSpec", kHttpOnly}, {"subset", kNotYet}});
    record_upstream_ref(r, upstream);
    out += "destination.single.upstream = " +
           inline_table(r, upstream, path + ".single.upstream", {"name", "namespace"}) + "\n";
    return true;
  }
  if (const Node multi = get(d, "multi"); multi.IsDefined()) {
    const Node list = get(multi, "destinations");
    for (size_t i = 0; list.IsSequence() && i < list.size(); ++i) {
      const Node upstream = get(get(list[i], "destination"), "upstream");
      if (!upstream.IsDefined()) {
        r.not_carried(index_path(path + ".multi.destinations", i),
                      fmt::format("a destination other than an upstream is {}", kNotYet));
        return false;
      }
      record_upstream_ref(r, upstream);
    }
    note_rest(r, multi, path + ".multi", {"destinations"});
    out += "destination.multi.destinations = " +
           filtered_value(r, list, path + ".multi.destinations", {{"options", kNotYet}}) + "\n";
    return true;
  }
  if (const Node group = get(d, "upstreamGroup"); group.IsDefined()) {
    out += "destination.upstreamGroup = " +
           inline_table(r, group, path + ".upstreamGroup", {"name", "namespace"}) + "\n";
    return true;
  }
  return false;
}

// One tcpHost; false when it cannot be carried.
bool tcp_host(Resource& r, const Node& host, const std::string& path, std::string& out) {
  note_rest(r, host, path, {"name", "destination", "sslConfig"});
  std::string entry = "\n[[gateways.tcpGateway.tcpHosts]]\n" + lines(host, {"name"});
  if (const Node ssl = get(host, "sslConfig"); ssl.IsDefined()) {
    if (!ssl_config(r, ssl, path + ".sslConfig", entry)) return false;
  }
  const size_t notes_before = r.notes.size();
  if (!destination(r, get(host, "destination"), path + ".destination", entry)) {
    if (r.notes.size() > notes_before) return false;  // destination() said why
    std::string kind = "no destination";
    for (const char* k : {"forwardSniClusterName"})
      if (has(get(host, "destination"), k)) kind = fmt::format("destination.{}", k);
    for (const char* k : {"kube", "consul"})
      if (has(get(get(host, "destination"), "single"), k)) {
        kind = fmt::format("destination.single.{}", k);
      }
    r.not_carried(path, fmt::format("{} is {}; Ringway carries upstream, multi and "
                                    "upstreamGroup destinations",
                                    kind, kNotYet));
    return false;
  }
  out += entry;
  return true;
}

// The tcpGateway; false when no tcpHost could be carried.
bool tcp_gateway(Resource& r, const Node& tcp, const std::string& path) {
  note_rest(r, tcp, path, {"tcpHosts", "options"});
  const Node options = get(tcp, "options");
  note_rest(r, options, path + ".options", {"tcpProxySettings", "connectionLimit"},
            {{"localRatelimit", kNotYet}});
  if (const Node s = get(options, "tcpProxySettings"); s.IsDefined()) {
    note_rest(r, s, path + ".options.tcpProxySettings", {"idleTimeout", "maxConnectAttempts"},
              {{"tunnelingConfig", kNotYet}, {"accessLogFlushInterval", kNotYet}});
    const std::string l = lines(s, {"idleTimeout", "maxConnectAttempts"});
    if (!l.empty()) r.tables += "\n[gateways.tcpGateway.options.tcpProxySettings]\n" + l;
  }
  if (const Node c = get(options, "connectionLimit"); c.IsDefined()) {
    note_rest(r, c, path + ".options.connectionLimit", {"maxActiveConnections"},
              {{"delayBeforeClose", kNotYet}});
    const std::string l = lines(c, {"maxActiveConnections"});
    if (!l.empty()) r.tables += "\n[gateways.tcpGateway.options.connectionLimit]\n" + l;
  }
  const Node hosts = get(tcp, "tcpHosts");
  size_t carried = 0;
  std::string out;
  for (size_t i = 0; hosts.IsSequence() && i < hosts.size(); ++i)
    carried += tcp_host(r, hosts[i], index_path(path + ".tcpHosts", i), out) ? 1 : 0;
  r.tables += out;
  return carried > 0;
}

// Why a Gateway cannot be served at all, or "" when it can.
std::string gateway_unservable(const Node& spec) {
  if (has(spec, "httpGateway")) return "an httpGateway; Ringway forwards TCP (tcpGateway) only";
  if (has(spec, "hybridGateway")) return "a hybridGateway; Ringway forwards TCP (tcpGateway) only";
  if (!has(spec, "tcpGateway")) {
    return "no tcpGateway (Gloo serves such a Gateway as HTTP); Ringway forwards TCP only";
  }
  return "";
}

// ---- Upstream --------------------------------------------------------------------------------

void upstream_static(Resource& r, const Node& st, const std::string& path) {
  note_rest(r, st, path, {"hosts"},
            {{"useTls", kNotYet}, {"autoSniRewrite", kNotYet}, {"serviceSpec", kHttpOnly}});
  const Node hosts = get(st, "hosts");
  std::string list;
  for (size_t i = 0; hosts.IsSequence() && i < hosts.size(); ++i) {
    list +=
        "\n  " +
        inline_table(
            r, hosts[i], index_path(path + ".hosts", i), {"addr", "port", "loadBalancingWeight"},
            {{"sniAddr", kNotYet}, {"metadata", kNotYet}, {"healthCheckConfig", kEnterprise}}) +
        ",";
  }
  r.body += "static.hosts = [" + list + (list.empty() ? "]\n" : "\n]\n");
}

void upstream_connection(Resource& r, const Node& cc, const std::string& path) {
  note_rest(r, cc, path, {"connectTimeout", "tcpKeepalive", "perConnectionBufferLimitBytes"},
            {{"maxRequestsPerConnection", kHttpOnly},
             {"commonHttpProtocolOptions", kHttpOnly},
             {"http1ProtocolOptions", kHttpOnly}});
  std::string l = lines(cc, {"connectTimeout", "perConnectionBufferLimitBytes"});
  if (const Node k = get(cc, "tcpKeepalive"); k.IsDefined()) {
    l += "tcpKeepalive = " +
         inline_table(r, k, path + ".tcpKeepalive",
                      {"keepaliveTime", "keepaliveInterval", "keepaliveProbes"}) +
         "\n";
  }
  if (!l.empty()) r.tables += "\n[upstreams.connectionConfig]\n" + l;
}

void upstream_load_balancer(Resource& r, const Node& lb, const std::string& path) {
  note_rest(r, lb, path, {"roundRobin", "random", "leastRequest", "ringHash", "maglev"},
            {{"healthyPanicThreshold", kNotYet},
             {"updateMergeWindow", kNotYet},
             {"localityWeightedLbConfig", kEnterprise},
             {"useHostnameForHashing", kNotYet},
             {"closeConnectionsOnHostSetChange", kNotYet}});
  std::string l;
  for (const char* policy : {"ringHash", "maglev"}) {
    const Node p = get(lb, policy);
    if (p.IsDefined()) {
      l += fmt::format("{} = {}\n", policy,
                       filtered_value(r, p, path + "." + policy, {{"slowStartConfig", kNotYet}}));
    }
  }
  for (const char* policy : {"roundRobin", "random", "leastRequest"}) {
    const Node p = get(lb, policy);
    if (!p.IsDefined()) continue;
    l += fmt::format("{} = {}\n", policy,
                     inline_table(r, p, path + "." + policy, {},
                                  {{"slowStartConfig", kNotYet}, {"choiceCount", kNotYet}}));
  }
  if (!l.empty()) r.tables += "\n[upstreams.loadBalancerConfig]\n" + l;
}

// `[[upstreams.healthChecks]]` per entry; an entry that checks HTTP or gRPC only is left out
// (without its check it would be a different one: connect-only).
void health_checks(Resource& r, const Node& list, const std::string& path) {
  if (!list.IsSequence()) return r.not_carried(path, "not a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const Node hc = list[i];
    const std::string p = index_path(path, i);
    if (!has(hc, "tcpHealthCheck")) {
      r.not_carried(p, "not a tcpHealthCheck; Ringway checks TCP (send/receive payloads) only");
      continue;
    }
    std::string entry = "\n[[upstreams.healthChecks]]\n";
    for (const auto& kv : hc) {
      const std::string& key = kv.first.Scalar();
      if (key == "httpHealthCheck" || key == "grpcHealthCheck") {
        r.not_carried(p + "." + key, kHttpOnly);
      } else if (key == "customHealthCheck" || key == "eventLogPath" ||
                 key == "alwaysLogHealthCheckFailures") {
        r.not_carried(p + "." + key, kNotYet);
      } else {
        entry += toml_key(key) + " = " + filtered_value(r, kv.second, p + "." + key, {}) + "\n";
      }
    }
    r.tables += entry;
  }
}

void outlier_detection(Resource& r, const Node& od, const std::string& path) {
  if (!od.IsMap()) return r.not_carried(path, "not a mapping");
  std::string entry;
  for (const auto& kv : od) {
    const std::string& key = kv.first.Scalar();
    // Success-rate ejection needs request outcomes; a TCP forwarder sees connect failures only.
    if (key.find("uccessRate") != std::string::npos) {
      r.not_carried(path + "." + key, kNotYet);
    } else {
      entry += toml_key(key) + " = " + filtered_value(r, kv.second, path + "." + key, {}) + "\n";
    }
  }
  if (!entry.empty()) r.tables += "\n[upstreams.outlierDetection]\n" + entry;
}

constexpr std::string_view kUpstreamTypes[] = {"kube",  "consul", "aws", "awsEc2",
                                               "azure", "pipe",   "gcp", "ai"};

// ---- documents -------------------------------------------------------------------------------

struct Output {
  std::vector<std::pair<std::string, std::string>> refs;  // gateway id, upstream "ns/name"
  std::set<std::string> upstream_ids;                     // "ns/name" of upstreams written
  std::string gateways;
  std::string upstreams;
  std::string groups;
  std::string left_out;  // comments for whole documents left out
  ImportResult result;
};

std::string render(const std::string& header, const std::string& origin, const Resource& r) {
  std::string out = "\n" + header + "\n# from " + origin + "\n";
  for (const auto& note : r.notes)
    out += note + "\n";
  return out + r.body + r.tables;
}

void leave_out(Output& out, const std::string& what, const std::string& origin,
               std::string_view why) {
  out.left_out += fmt::format("# not carried: {} ({}): {}\n", what, origin, why);
  ++out.result.left_out;
}

void status_note(Resource& r, const Node& doc) {
  if (has(doc, "status")) r.not_carried("status", "written by Gloo's controller");
}

void convert_gateway(const Node& doc, const ImportSource& source, Output& out) {
  Resource r;
  std::string id;
  if (!metadata(r, doc, source, id, out.result.errors)) return;
  const std::string origin = where(source, doc);
  const Node spec = get(doc, "spec");
  if (const std::string why = gateway_unservable(spec); !why.empty()) {
    return leave_out(out, "Gateway " + id, origin, why);
  }
  status_note(r, doc);
  note_rest(r, spec, "spec", {"bindAddress", "bindPort", "options", "tcpGateway", "useProxyProto"},
            {{"ssl", kHttpOnly},
             {"routeOptions", kHttpOnly},
             {"proxyNames", "Ringway is the proxy: it serves every gateway in its config"},
             {"namespacedStatuses", "written by Gloo's controller"}});
  // useProxyProto is Gloo's deprecated switch; the loader reads it as Gloo does.
  r.body += lines(spec, {"bindAddress", "bindPort", "useProxyProto"});
  if (const Node o = get(spec, "options"); o.IsDefined()) gateway_options(r, o, "spec.options");
  if (!tcp_gateway(r, get(spec, "tcpGateway"), "spec.tcpGateway")) {
    std::string why = "no tcpHost could be carried";
    for (const auto& note : r.notes)
      if (note.find(".tcpHosts[") != std::string::npos) why += "; " + note.substr(15);
    return leave_out(out, "Gateway " + id, origin, why);
  }
  for (const auto& ref : r.upstream_refs)
    out.refs.emplace_back(id, ref);
  out.gateways += render("[[gateways]]", origin, r);
  ++out.result.gateways;
}

void convert_upstream(const Node& doc, const ImportSource& source, Output& out) {
  Resource r;
  std::string id;
  if (!metadata(r, doc, source, id, out.result.errors)) return;
  const std::string origin = where(source, doc);
  const Node spec = get(doc, "spec");
  for (std::string_view type : kUpstreamTypes) {
    if (has(spec, type)) {
      return leave_out(out, "Upstream " + id, origin,
                       fmt::format("a {} upstream; Ringway takes static upstreams only (list the "
                                   "endpoints under static.hosts)",
                                   type));
    }
  }
  if (!has(spec, "static")) {
    return leave_out(out, "Upstream " + id, origin, "no static hosts");
  }
  status_note(r, doc);
  note_rest(r, spec, "spec",
            {"static", "connectionConfig", "loadBalancerConfig", "circuitBreakers", "healthChecks",
             "outlierDetection", "failover", "proxyProtocolVersion"},
            {
                {"sslConfig", kNotYet},
                {"preconnectPolicy", kNotYet},
                {"ignoreHealthOnHostRemoval", kNotYet},
                {"respectDnsTtl", kNotYet},
                {"dnsRefreshRate", kNotYet},
                {"disableIstioAutoMtls", kNotYet},
                {"discoveryMetadata", "written by Gloo's discovery"},
                {"useHttp2", kHttpOnly},
                {"initialStreamWindowSize", kHttpOnly},
                {"initialConnectionWindowSize", kHttpOnly},
                {"maxConcurrentStreams", kHttpOnly},
                {"protocolSelection", kHttpOnly},
                {"httpProxyHostname", kHttpOnly},
                {"httpConnectSslConfig", kHttpOnly},
                {"httpConnectHeaders", kHttpOnly},
                {"overrideStreamErrorOnInvalidHttpMessage", kHttpOnly},
            });
  upstream_static(r, get(spec, "static"), "spec.static");
  r.body += lines(spec, {"proxyProtocolVersion"});
  if (const Node n = get(spec, "failover"); n.IsDefined()) {
    r.body += "failover = " +
              filtered_value(r, n, "spec.failover",
                             {{"healthCheckConfig", kNotYet}, {"upstreamSslConfig", kNotYet}}) +
              "\n";
  }
  if (const Node n = get(spec, "healthChecks"); n.IsDefined()) {
    health_checks(r, n, "spec.healthChecks");
  }
  if (const Node n = get(spec, "outlierDetection"); n.IsDefined()) {
    outlier_detection(r, n, "spec.outlierDetection");
  }
  if (const Node n = get(spec, "connectionConfig"); n.IsDefined()) {
    upstream_connection(r, n, "spec.connectionConfig");
  }
  if (const Node n = get(spec, "loadBalancerConfig"); n.IsDefined()) {
    upstream_load_balancer(r, n, "spec.loadBalancerConfig");
  }
  if (const Node n = get(spec, "circuitBreakers"); n.IsDefined()) {
    note_rest(r, n, "spec.circuitBreakers", {"maxConnections"},
              {{"maxPendingRequests", kNotYet},
               {"maxRequests", kNotYet},
               {"maxRetries", kNotYet},
               {"trackRemaining", kNotYet}});
    const std::string l = lines(n, {"maxConnections"});
    if (!l.empty()) r.tables += "\n[upstreams.circuitBreakers]\n" + l;
  }
  out.upstream_ids.insert(r.namespace_ + "/" + r.name);
  out.upstreams += render("[[upstreams]]", origin, r);
  ++out.result.upstreams;
}

// UpstreamGroup (gloo.solo.io/v1): weighted destinations shared by tcpHosts.
void convert_upstream_group(const Node& doc, const ImportSource& source, Output& out) {
  Resource r;
  std::string id;
  if (!metadata(r, doc, source, id, out.result.errors)) return;
  const std::string origin = where(source, doc);
  const Node spec = get(doc, "spec");
  status_note(r, doc);
  note_rest(r, spec, "spec", {"destinations"},
            {{"namespacedStatuses", "written by Gloo's controller"}});
  const Node list = get(spec, "destinations");
  for (size_t i = 0; list.IsSequence() && i < list.size(); ++i) {
    if (!has(get(list[i], "destination"), "upstream")) {
      return leave_out(out, "UpstreamGroup " + id, origin,
                       fmt::format("destinations[{}] is not an upstream, which is {}", i, kNotYet));
    }
  }
  r.body +=
      "destinations = " + filtered_value(r, list, "spec.destinations", {{"options", kNotYet}}) +
      "\n";
  out.groups += render("[[upstreamGroups]]", origin, r);
  ++out.result.upstream_groups;
}

void convert_document(const Node& doc, const ImportSource& source, Output& out, int depth) {
  if (!doc.IsDefined() || doc.IsNull()) return;  // an empty document between `---` lines
  const std::string origin = where(source, doc);
  if (!doc.IsMap()) return leave_out(out, "a document", origin, "not a YAML mapping");
  const std::string kind = get(doc, "kind").IsScalar() ? get(doc, "kind").Scalar() : "";
  const std::string api = get(doc, "apiVersion").IsScalar() ? get(doc, "apiVersion").Scalar() : "";
  const Node items = get(doc, "items");
  if (items.IsSequence() && depth == 0 && (kind == "List" || kind.ends_with("List"))) {
    for (size_t i = 0; i < items.size(); ++i)
      convert_document(items[i], source, out, depth + 1);
    return;
  }
  const Node name = get(get(doc, "metadata"), "name");
  const std::string what = (kind.empty() ? std::string("a document without kind") : kind) +
                           (name.IsScalar() ? " " + name.Scalar() : std::string());
  if (kind == "Gateway" && api == "gateway.solo.io/v1") return convert_gateway(doc, source, out);
  if (kind == "Upstream" && api == "gloo.solo.io/v1") return convert_upstream(doc, source, out);
  if (kind == "UpstreamGroup" && api == "gloo.solo.io/v1") {
    return convert_upstream_group(doc, source, out);
  }
  if (kind == "Gateway" || kind == "Upstream") {
    return leave_out(out, what, origin,
                     fmt::format("apiVersion {} is not Gloo's ({})", api.empty() ? "missing" : api,
                                 kind == "Gateway" ? "gateway.solo.io/v1" : "gloo.solo.io/v1"));
  }
  leave_out(out, what, origin,
            "Ringway imports Gloo Gateway, Upstream and UpstreamGroup resources only");
}

}  // namespace

ImportResult import_gloo(const std::vector<ImportSource>& sources) {
  Output out;
  std::string names;
  for (const ImportSource& source : sources) {
    names += (names.empty() ? "" : ", ") + source.name;
    std::vector<Node> docs;
    try {
      docs = YAML::LoadAll(source.text);
    } catch (const YAML::Exception& e) {
      out.result.errors.push_back(fmt::format("{}:{}:{}: error: YAML: {}", source.name,
                                              e.mark.line + 1, e.mark.column + 1, e.msg));
      continue;
    }
    for (const Node& doc : docs)
      convert_document(doc, source, out, 0);
  }
  if (out.result.errors.empty() &&
      out.result.gateways + out.result.upstreams + out.result.upstream_groups == 0) {
    out.result.errors.push_back(
        fmt::format("{}: error: no Gloo Gateway (gateway.solo.io/v1), Upstream or UpstreamGroup "
                    "(gloo.solo.io/v1) that Ringway can carry{}",
                    names, out.left_out.empty() ? "" : ":\n" + out.left_out));
  }
  if (!out.result.errors.empty()) return std::move(out.result);
  std::string toml = fmt::format(
      "# Converted by `ringway import-gloo` from {}.\n"
      "# Fields that could not be carried are listed as \"# not carried\" comments at the top\n"
      "# of their resource. Check the result with `ringway --check -c FILE`.\n",
      names);
  // A gateway imported without its upstream does not pass --check: say so here, where the
  // user still knows which files were given, rather than only at load time.
  for (const auto& [gateway, ref] : out.refs) {
    if (out.upstream_ids.count(ref) > 0) continue;
    out.result.warnings.push_back(fmt::format(
        "Gateway {} refers to Upstream {}, which is not among the inputs", gateway, ref));
    toml += "# warning: " + out.result.warnings.back() + "\n";
  }
  if (!out.left_out.empty()) toml += "\n" + out.left_out;
  toml += out.gateways + out.upstreams + out.groups;
  out.result.toml = std::move(toml);
  return std::move(out.result);
}

}  // namespace ringway::config
