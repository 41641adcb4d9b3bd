// --print-config: the effective config as TOML, every default written out, in the shape the
// loader reads, so that load -> print -> load -> print is a fixed point (the fuzzer checks it).
#include <fmt/format.h>

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

void print_gateway(const Gateway& g, std::string& out) {
  out += "\n[[gateways]]\n";
  out += metadata(g.metadata);
  out += fmt::format("bindAddress = {}\n", str(g.bind_address));
  out += fmt::format("bindPort = {}\n", g.bind_port);
  out += "\n[gateways.options]\n";
  out += fmt::format("perConnectionBufferLimitBytes = {}\n", g.per_connection_buffer_limit_bytes);
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
  for (const auto& h : g.tcp_hosts) {
    out += "\n[[gateways.tcpGateway.tcpHosts]]\n";
    out += fmt::format("name = {}\n", str(h.name));
    out += fmt::format("destination.single.upstream = {{ name = {}, namespace = {} }}\n",
                       str(h.upstream.name), str(h.upstream.namespace_));
  }
}

void print_upstream(const Upstream& u, std::string& out) {
  out += "\n[[upstreams]]\n";
  out += metadata(u.metadata);
  out += "static.hosts = [\n";
  for (const auto& h : u.hosts) {
    out += fmt::format("  {{ addr = {}, port = {}, loadBalancingWeight = {} }},\n", str(h.addr),
                       h.port, h.load_balancing_weight);
  }
  out += "]\n";
  out += "\n[upstreams.connectionConfig]\n";
  out += fmt::format("connectTimeout = \"{}\"\n", format_duration(u.connect_timeout));
  out += fmt::format("perConnectionBufferLimitBytes = {}\n", u.per_connection_buffer_limit_bytes);
  if (u.tcp_keepalive) {
    out += fmt::format("tcpKeepalive = {}\n", keepalive(*u.tcp_keepalive));
  } else {
    out += "# no tcpKeepalive: keepalive off on upstream connections\n";
  }
  out += "\n[upstreams.loadBalancerConfig]\n";
  out += fmt::format("{} = {{}}\n", policy_name(u.load_balancer));
  out += "\n[upstreams.circuitBreakers]\n";
  out += fmt::format("maxConnections = {}\n", u.max_connections);
}

}  // namespace

std::string to_toml(const Config& config) {
  std::string out = "# Ringway effective configuration: every default filled in.\n";
  print_settings(config.settings, out);
  for (const auto& g : config.gateways)
    print_gateway(g, out);
  for (const auto& u : config.upstreams)
    print_upstream(u, out);
  return out;
}

}  // namespace ringway::config
