// --print-config: the effective config as TOML, every default written out, in the shape the
// loader reads, so that load -> print -> load -> print is a fixed point (the fuzzer checks it).
#include <fmt/format.h>

#include <algorithm>

#include "ringway/config/loader.hpp"
#include "ringway/config/socket_names.hpp"
#include "ringway/config/values.hpp"

namespace ringway::config {
namespace {

// TOML basic strings take the same escapes quoted() writes (\" \\ \uXXXX).
std::string str(std::string_view s) {
  return quoted(s);
}

std::string_view state_name(SocketState state) {
  switch (state) {
    case SocketState::Prebind:
      return "STATE_PREBIND";
    case SocketState::Bound:
      return "STATE_BOUND";
    case SocketState::Listening:
      return "STATE_LISTENING";
  }
  return "STATE_PREBIND";
}

std::string_view policy_name(LoadBalancer lb) {
  switch (lb) {
    case LoadBalancer::RoundRobin:
      return "roundRobin";
    case LoadBalancer::Random:
      return "random";
    case LoadBalancer::LeastRequest:
      return "leastRequest";
    case LoadBalancer::RingHash:
      return "ringHash";
    case LoadBalancer::Maglev:
      return "maglev";
  }
  return "roundRobin";
}

std::string keepalive(const TcpKeepalive& k) {
  std::string fields;
  const auto add = [&](std::string item) { fields += (fields.empty() ? "" : ", ") + item; };
  if (k.keepalive_time_s) add(fmt::format("keepaliveTime = \"{}s\"", *k.keepalive_time_s));
  if (k.keepalive_interval_s) {
    add(fmt::format("keepaliveInterval = \"{}s\"", *k.keepalive_interval_s));
  }
  if (k.keepalive_probes) add(fmt::format("keepaliveProbes = {}", *k.keepalive_probes));
  return fields.empty() ? "{}" : fmt::format("{{ {} }}", fields);
}

std::string metadata(const Metadata& m) {
  return fmt::format("metadata = {{ name = {}, namespace = {} }}\n", str(m.name),
                     str(m.namespace_));
}

void print_settings(const Settings& s, std::string& out) {
  out += "[settings]\n";
  out += fmt::format("workers = {}  # 0 = one worker per CPU\n", s.workers);
  out += fmt::format("drainTimeout = \"{}\"\n", format_duration(s.drain_timeout));
  out += fmt::format("logLevel = \"{}\"\n", log_level_name(s.log_level));
  out += fmt::format("perWorkerBufferLimitBytes = {}  # extension: data held per worker\n",
                     s.per_worker_buffer_limit_bytes);
  out += fmt::format("busyPoll = \"{}\"  # extension: spin before sleeping; 0s = off\n",
                     format_duration(s.busy_poll));
  if (s.admin) {
    out += "\n[settings.admin]\n";
    out += fmt::format("bindAddress = {}\n", str(s.admin->bind_address));
    out += fmt::format("bindPort = {}\n", s.admin->bind_port);
  } else {
    out += "# no [settings.admin]: the admin endpoint is off\n";
  }
}

void print_socket_option(const SocketOption& o, std::string& out) {
  out += "\n[[gateways.options.socketOptions]]\n";
  out += fmt::format("description = {}\n", str(o.description));
  const std::string level = level_to_string(o.level);
  out += fmt::format("level = {}{}\n", o.level,
                     level.rfind("level ", 0) == 0 ? "" : fmt::format("  # {}", level));
  const auto* known = option_by_value(o.level, o.name);
  out += fmt::format("name = {}{}\n", o.name,
                     known ? fmt::format("  # {}", known->name) : std::string());
  if (const auto* i = std::get_if<int32_t>(&o.value)) {
    out += fmt::format("intValue = {}\n", *i);
  } else {
    out += fmt::format("bufValue = {}\n", str(base64_encode(std::get<std::string>(o.value))));
  }
  out += fmt::format("state = \"{}\"\n", state_name(o.state));
}

void print_access_log(const AccessLogFileSink& sink, std::string& out) {
  out += "\n[[gateways.options.accessLoggingService.accessLog]]\n";
  std::string format;
  if (sink.format == AccessLogFileSink::Format::Json) {
    std::string fields;
    for (const auto& [key, op] : sink.json_format) {
      fields += fmt::format("{}{} = {}", fields.empty() ? "" : ", ", str(key), str(op));
    }
    format = fields.empty() ? ", jsonFormat = {}" : fmt::format(", jsonFormat = {{ {} }}", fields);
  } else if (!sink.string_format.empty()) {
    format = fmt::format(", stringFormat = {}", str(sink.string_format));
  }
  out += fmt::format("fileSink = {{ path = {}{} }}\n", str(sink.path), format);
}

std::string ref(const ResourceRef& r) {
  return fmt::format("{{ name = {}, namespace = {} }}", str(r.name), str(r.namespace_));
}

std::string weighted_destinations(const std::vector<WeightedDestination>& list) {
  std::string out = "[\n";
  for (const auto& d : list) {
    out +=
        fmt::format("  {{ weight = {}, destination.upstream = {} }},\n", d.weight, ref(d.upstream));
  }
  return out + "]";
}

std::string string_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items)
    out += (out.empty() ? "" : ", ") + str(i);
  return fmt::format("[{}]", out);
}

void print_listener_filters(const Gateway& g, std::string& out) {
  const bool sni = std::any_of(g.tcp_hosts.begin(), g.tcp_hosts.end(),
                               [](const TcpHost& h) { return h.ssl.has_value(); });
  if (g.proxy_protocol) {
    const ProxyProtocol& pp = *g.proxy_protocol;
    std::string rules;
    for (const auto& r : pp.rules) {
      rules +=
          fmt::format("{}{{ tlvType = {}, onTlvPresent = {{ metadataNamespace = {}, key = {} }} }}",
                      rules.empty() ? "" : ", ", r.tlv_type, str(r.metadata_namespace), str(r.key));
    }
    out +=
        fmt::format("proxyProtocol = {{ allowRequestsWithoutProxyProtocol = {}, rules = [{}] }}\n",
                    pp.allow_requests_without_proxy_protocol, rules);
  }
  if (!sni && !g.proxy_protocol) return;
  out += fmt::format(
      "listenerFiltersTimeout = \"{}\"  # extension: PROXY header and ClientHello deadline\n",
      format_duration(g.listener_filters_timeout));
  if (sni) {
    out += fmt::format(
        "sniPassthrough = {{ maxClientHelloBytes = {}, onNoMatch = \"{}\" }}  # extension\n",
        g.sni_passthrough.max_client_hello_bytes, sni_no_match_name(g.sni_passthrough.on_no_match));
  }
}

void print_tcp_host(const TcpHost& h, std::string& out) {
  out += "\n[[gateways.tcpGateway.tcpHosts]]\n";
  out += fmt::format("name = {}\n", str(h.name));
  if (h.ssl) {
    out += fmt::format("sslConfig = {{ sniDomains = {} }}  # passthrough: TLS is not terminated\n",
                       string_list(h.ssl->sni_domains));
  }
  switch (h.kind) {
    case TcpHost::Kind::Single:
      out += fmt::format("destination.single.upstream = {}\n", ref(h.upstream));
      break;
    case TcpHost::Kind::Multi:
      out += fmt::format("destination.multi.destinations = {}\n",
                         weighted_destinations(h.destinations));
      break;
    case TcpHost::Kind::UpstreamGroup:
      out += fmt::format("destination.upstreamGroup = {}\n", ref(h.upstream_group));
      break;
  }
}

void print_gateway(const Gateway& g, std::string& out) {
  out += "\n[[gateways]]\n";
  out += metadata(g.metadata);
  out += fmt::format("bindAddress = {}\n", str(g.bind_address));
  out += fmt::format("bindPort = {}\n", g.bind_port);
  out += "\n[gateways.options]\n";
  out += fmt::format("perConnectionBufferLimitBytes = {}\n", g.per_connection_buffer_limit_bytes);
  print_listener_filters(g, out);
  if (g.tcp_keepalive) {
    out += fmt::format("tcpKeepalive = {}  # extension: SO_KEEPALIVE + TCP_KEEPIDLE/INTVL/CNT\n",
                       keepalive(*g.tcp_keepalive));
  }
  for (const auto& o : g.socket_options)
    print_socket_option(o, out);
  for (const auto& sink : g.access_logs)
    print_access_log(sink, out);

  out += "\n[gateways.tcpGateway.options.tcpProxySettings]\n";
  out += fmt::format("idleTimeout = \"{}\"{}\n", format_duration(g.tcp_proxy.idle_timeout),
                     g.tcp_proxy.idle_timeout.count() == 0 ? "  # disabled" : "");
  out += fmt::format("maxConnectAttempts = {}\n", g.tcp_proxy.max_connect_attempts);
  out += fmt::format("spliceMode = \"{}\"  # extension: AUTO | ALWAYS | NEVER\n",
                     g.tcp_proxy.splice_mode == SpliceMode::Always  ? "ALWAYS"
                     : g.tcp_proxy.splice_mode == SpliceMode::Never ? "NEVER"
                                                                    : "AUTO");
  if (g.max_active_connections) {
    out += "\n[gateways.tcpGateway.options.connectionLimit]\n";
    out += fmt::format("maxActiveConnections = {}\n", *g.max_active_connections);
  } else {
    out += "# no connectionLimit: unlimited sessions\n";
  }
  for (const auto& h : g.tcp_hosts)
    print_tcp_host(h, out);
}

std::string host_list(const std::vector<StaticHost>& hosts, std::string_view addr_key,
                      std::string_view indent) {
  std::string out = "[\n";
  for (const auto& h : hosts) {
    out += fmt::format("{}  {{ {} = {}, port = {}, loadBalancingWeight = {} }},\n", indent,
                       addr_key, str(h.addr), h.port, h.load_balancing_weight);
  }
  return out + std::string(indent) + "]";
}

void print_health_check(const HealthCheck& c, std::string& out) {
  out += "\n[[upstreams.healthChecks]]\n";
  out += fmt::format("timeout = \"{}\"\n", format_duration(c.timeout));
  out += fmt::format("interval = \"{}\"\n", format_duration(c.interval));
  out += fmt::format("initialJitter = \"{}\"\n", format_duration(c.initial_jitter));
  out += fmt::format("intervalJitter = \"{}\"\n", format_duration(c.interval_jitter));
  out += fmt::format("intervalJitterPercent = {}\n", c.interval_jitter_percent);
  out += fmt::format("unhealthyThreshold = {}\n", c.unhealthy_threshold);
  out += fmt::format("healthyThreshold = {}\n", c.healthy_threshold);
  out += fmt::format("reuseConnection = {}\n", c.reuse_connection);
  out += fmt::format("noTrafficInterval = \"{}\"\n", format_duration(c.no_traffic_interval));
  const std::pair<std::string_view, const std::optional<Duration>*> optional[] = {
      {"unhealthyInterval", &c.unhealthy_interval},
      {"unhealthyEdgeInterval", &c.unhealthy_edge_interval},
      {"healthyEdgeInterval", &c.healthy_edge_interval},
  };
  for (const auto& [key, value] : optional) {
    if (*value) out += fmt::format("{} = \"{}\"\n", key, format_duration(**value));
  }
  std::string fields;
  if (!c.send.empty()) fields = fmt::format("send = {{ text = \"{}\" }}", hex_encode(c.send));
  if (!c.receive.empty()) {
    std::string list;
    for (const auto& r : c.receive)
      list += fmt::format("{}{{ text = \"{}\" }}", list.empty() ? "" : ", ", hex_encode(r));
    fields += fmt::format("{}receive = [{}]", fields.empty() ? "" : ", ", list);
  }
  out += fmt::format("tcpHealthCheck = {}{}\n",
                     fields.empty() ? "{}" : fmt::format("{{ {} }}", fields),
                     c.send.empty() ? "  # connect only" : "");
}

void print_outlier_detection(const OutlierDetection& o, std::string& out) {
  out += "\n[upstreams.outlierDetection]\n";
  out += fmt::format("consecutive5xx = {}\n", o.consecutive_5xx);
  out += fmt::format("interval = \"{}\"\n", format_duration(o.interval));
  out += fmt::format("baseEjectionTime = \"{}\"\n", format_duration(o.base_ejection_time));
  out += fmt::format("maxEjectionPercent = {}\n", o.max_ejection_percent);
  out += fmt::format("enforcingConsecutive5xx = {}\n", o.enforcing_consecutive_5xx);
  out += fmt::format("consecutiveGatewayFailure = {}\n", o.consecutive_gateway_failure);
  out += fmt::format("enforcingConsecutiveGatewayFailure = {}\n",
                     o.enforcing_consecutive_gateway_failure);
  out += fmt::format("splitExternalLocalOriginErrors = {}\n", o.split_external_local_origin_errors);
  if (o.split_external_local_origin_errors) {
    out += fmt::format("consecutiveLocalOriginFailure = {}\n", o.consecutive_local_origin_failure);
    out += fmt::format("enforcingConsecutiveLocalOriginFailure = {}\n",
                       o.enforcing_consecutive_local_origin_failure);
  }
}

void print_failover(const std::vector<FailoverPriority>& priorities, std::string& out) {
  for (size_t p = 0; p < priorities.size(); ++p) {
    out += fmt::format("\n[[upstreams.failover.prioritizedLocalities]]  # priority {}\n", p + 1);
    out += "localityEndpoints = [\n";
    for (const auto& l : priorities[p].localities) {
      out += fmt::format(
          "  {{ locality = {{ region = {}, zone = {}, subZone = {} }}, lbEndpoints = {} }},\n",
          str(l.region), str(l.zone), str(l.sub_zone), host_list(l.hosts, "address", "  "));
    }
    out += "]\n";
  }
}

void print_upstream(const Upstream& u, std::string& out) {
  out += "\n[[upstreams]]\n";
  out += metadata(u.metadata);
  out += fmt::format("static.hosts = {}\n", host_list(u.hosts, "addr", ""));
  if (u.proxy_protocol_version) {
    out += fmt::format("proxyProtocolVersion = \"{}\"\n",
                       *u.proxy_protocol_version == ProxyProtocolVersion::V1 ? "V1" : "V2");
  }
  out += "\n[upstreams.connectionConfig]\n";
  out += fmt::format("connectTimeout = \"{}\"\n", format_duration(u.connect_timeout));
  out += fmt::format("perConnectionBufferLimitBytes = {}\n", u.per_connection_buffer_limit_bytes);
  if (u.tcp_keepalive) {
    out += fmt::format("tcpKeepalive = {}\n", keepalive(*u.tcp_keepalive));
  } else {
    out += "# no tcpKeepalive: keepalive off on upstream connections\n";
  }
  out += "\n[upstreams.loadBalancerConfig]\n";
  if (u.load_balancer == LoadBalancer::RingHash) {
    out += fmt::format(
        "ringHash = {{ ringHashConfig = {{ minimumRingSize = {}, maximumRingSize = {} }} }}  # "
        "keyed on the downstream source address\n",
        u.ring_hash.minimum_ring_size, u.ring_hash.maximum_ring_size);
  } else if (u.load_balancer == LoadBalancer::Maglev) {
    out += "maglev = {}  # keyed on the downstream source address\n";
  } else {
    out += fmt::format("{} = {{}}\n", policy_name(u.load_balancer));
  }
  out += "\n[upstreams.circuitBreakers]\n";
  out += fmt::format("maxConnections = {}\n", u.max_connections);
  if (u.health_check) print_health_check(*u.health_check, out);
  if (u.outlier_detection) print_outlier_detection(*u.outlier_detection, out);
  print_failover(u.failover, out);
}

void print_upstream_group(const UpstreamGroup& g, std::string& out) {
  out += "\n[[upstreamGroups]]\n";
  out += metadata(g.metadata);
  out += fmt::format("destinations = {}\n", weighted_destinations(g.destinations));
}

}  // namespace

std::string to_toml(const Config& config) {
  std::string out = "# Ringway effective configuration: every default filled in.\n";
  print_settings(config.settings, out);
  for (const auto& g : config.gateways)
    print_gateway(g, out);
  for (const auto& u : config.upstreams)
    print_upstream(u, out);
  for (const auto& g : config.upstream_groups)
    print_upstream_group(g, out);
  return out;
}

}  // namespace ringway::config
