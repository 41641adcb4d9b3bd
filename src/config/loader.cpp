// The config loader's entry points: parse TOML (toml++ without exceptions), read `[settings]`,
// `[[gateways]]` and `[[upstreams]]`, then the checks that span entries (duplicates, references,
// bind conflicts). Every problem becomes a diagnostic; they are returned in file order.
#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "reader.hpp"
#include "ringway/config/loader.hpp"
#include "ringway/config/suggest.hpp"
#include "ringway/config/values.hpp"
#include "toml_guard.hpp"

namespace ringway::config {
namespace {

using detail::index_path;
using detail::pos_of;
using detail::TableReader;

constexpr std::string_view kTopKeys[] = {"settings", "gateways", "upstreams", "upstreamGroups"};
constexpr std::string_view kSettingsKeys[] = {
    "workers", "drainTimeout", "admin", "logLevel", "perWorkerBufferLimitBytes", "busyPoll"};
constexpr std::string_view kAdminKeys[] = {"bindAddress", "bindPort"};

constexpr std::pair<std::string_view, LogLevel> kLogLevels[] = {
    {"debug", LogLevel::Debug},     {"info", LogLevel::Info},   {"notice", LogLevel::Notice},
    {"warning", LogLevel::Warning}, {"error", LogLevel::Error},
};

void load_settings(const toml::node& node, Diagnostics& diagnostics, Settings& settings) {
  const toml::table* table = detail::read_table(node, "settings", diagnostics);
  if (table == nullptr) return;
  const TableReader r(*table, "settings", {kSettingsKeys}, diagnostics, {});
  if (const auto* n = r.get("workers")) {
    if (auto v = detail::read_integer(*n, r.path("workers"), diagnostics, 0, kMaxWorkers)) {
      settings.workers = static_cast<uint32_t>(*v);
    }
  }
  if (const auto* n = r.get("drainTimeout")) {
    if (auto d = detail::read_duration(*n, r.path("drainTimeout"), diagnostics)) {
      if (*d > kMaxDrainTimeout) {
        diagnostics.error(
            pos_of(*n), r.path("drainTimeout"),
            fmt::format("{} is too long; allowed: 0s to {} ({} days)",
                        n->is_string() ? quoted(n->as_string()->get()) : format_duration(*d),
                        format_duration(kMaxDrainTimeout), kMaxDrainTimeout.count() / 86'400'000));
      } else {
        settings.drain_timeout = *d;
      }
    }
  }
  if (const auto* n = r.get("busyPoll")) {
    if (auto d = detail::read_duration(*n, r.path("busyPoll"), diagnostics)) {
      if (*d > kMaxBusyPoll) {
        diagnostics.error(
            pos_of(*n), r.path("busyPoll"),
            fmt::format("{} is too long; allowed: 0s (off) to {}",
                        n->is_string() ? quoted(n->as_string()->get()) : format_duration(*d),
                        format_duration(kMaxBusyPoll)));
      } else {
        settings.busy_poll = *d;
      }
    }
  }
  if (const auto* n = r.get("perWorkerBufferLimitBytes")) {
    if (auto v = detail::read_integer(*n, r.path("perWorkerBufferLimitBytes"), diagnostics,
                                      static_cast<int64_t>(kMinPerWorkerBufferLimitBytes),
                                      static_cast<int64_t>(kMaxPerWorkerBufferLimitBytes))) {
      settings.per_worker_buffer_limit_bytes = static_cast<uint64_t>(*v);
    }
  }
  if (const auto* n = r.get("logLevel")) {
    if (auto s = detail::read_string(*n, r.path("logLevel"), diagnostics)) {
      if (auto level = log_level_from_name(*s)) {
        settings.log_level = *level;
      } else {
        diagnostics.error(pos_of(*n), r.path("logLevel"),
                          fmt::format("unknown log level {}; allowed: debug, info, notice, "
                                      "warning, error",
                                      quoted(*s)));
      }
    }
  }
  if (const auto* n = r.get("admin")) {
    const toml::table* t = detail::read_table(*n, r.path("admin"), diagnostics);
    if (t == nullptr) return;
    const TableReader a(*t, r.path("admin"), {kAdminKeys}, diagnostics, r.pos());
    Admin admin;
    if (const auto* v = a.get("bindAddress")) {
      if (auto s = detail::read_ip_literal(*v, a.path("bindAddress"), diagnostics)) {
        admin.bind_address = *s;
      }
    }
    if (const auto* v = a.get("bindPort")) {
      if (auto p = detail::read_integer(*v, a.path("bindPort"), diagnostics, 0, 65535)) {
        admin.bind_port = static_cast<uint16_t>(*p);
      }
    }
    settings.admin = admin;
  }
}

// Address bytes for comparing bind addresses ("::" and "0::0" are the same socket address).
std::string address_key(const std::string& address) {
  unsigned char buf[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, address.c_str(), buf) == 1) {
    return "4" + std::string(reinterpret_cast<char*>(buf), sizeof(struct in_addr));
  }
  if (inet_pton(AF_INET6, address.c_str(), buf) == 1) {
    return "6" + std::string(reinterpret_cast<char*>(buf), sizeof(struct in6_addr));
  }
  return address;
}

template <typename Loaded, typename Get>
void check_duplicates(const std::vector<Loaded>& loaded, std::string_view section,
                      std::string_view kind, Get get, Diagnostics& diagnostics) {
  for (size_t i = 0; i < loaded.size(); ++i) {
    const Metadata& m = get(loaded[i]).metadata;
    if (m.name.empty()) continue;
    for (size_t j = 0; j < i; ++j) {
      const Metadata& first = get(loaded[j]).metadata;
      if (first.name == m.name && first.namespace_ == m.namespace_) {
        diagnostics.error(
            loaded[i].name_pos, index_path(section, i) + ".metadata.name",
            fmt::format("duplicate {} {} in namespace {}: the first is at line {}", kind,
                        quoted(m.name), quoted(m.namespace_), loaded[j].name_pos.line));
        break;
      }
    }
  }
}

// "; did you mean 'x'?" or the list of what is defined, for an unresolved reference.
std::string reference_hint(const std::string& id, const std::vector<std::string>& ids,
                           std::string_view section) {
  if (auto best = closest(id, ids)) return fmt::format("; did you mean '{}'?", *best);
  if (ids.empty()) return fmt::format("; no [[{}]] are defined", section);
  std::string list;
  for (const auto& i : ids)
    list += (list.empty() ? "" : ", ") + i;
  return fmt::format("; defined {}: {}", section, list);
}

class References {
 public:
  References(const std::vector<detail::LoadedUpstream>& upstreams,
             const std::vector<detail::LoadedUpstreamGroup>& groups, Diagnostics& diagnostics)
      : upstreams_(upstreams), groups_(groups), diagnostics_(diagnostics) {
    for (const auto& u : upstreams)
      upstream_ids_.push_back(u.upstream.id());
    for (const auto& g : groups)
      group_ids_.push_back(g.group.id());
  }

  // Resolves `ref` (an omitted namespace is `default_namespace`, Ringway's documented
  // convention); false with a diagnostic at `path` when no such upstream exists.
  bool upstream(ResourceRef& ref, const std::string& default_namespace, const std::string& path,
                size_t& index) {
    if (ref.namespace_.empty()) ref.namespace_ = default_namespace;
    const auto it = std::find_if(upstreams_.begin(), upstreams_.end(), [&](const auto& u) {
      return u.upstream.metadata.name == ref.name &&
             u.upstream.metadata.namespace_ == ref.namespace_;
    });
    if (it != upstreams_.end()) {
      index = static_cast<size_t>(it - upstreams_.begin());
      return true;
    }
    const std::string id = ref.namespace_ + "." + ref.name;
    diagnostics_.error(ref.pos, path,
                       fmt::format("upstream '{}' (namespace.name) is not defined{}", id,
                                   reference_hint(id, upstream_ids_, "upstreams")));
    return false;
  }

  bool destinations(std::vector<WeightedDestination>& list, const std::string& default_namespace,
                    const std::string& path) {
    bool ok = true;
    for (size_t i = 0; i < list.size(); ++i) {
      ok = upstream(list[i].upstream, default_namespace,
                    fmt::format("{}[{}].destination.upstream", path, i), list[i].upstream_index) &&
           ok;
    }
    return ok;
  }

  std::optional<size_t> group(ResourceRef& ref, const std::string& default_namespace,
                              const std::string& path) {
    if (ref.namespace_.empty()) ref.namespace_ = default_namespace;
    for (size_t k = 0; k < groups_.size(); ++k) {
      const UpstreamGroup& g = groups_[k].group;
      if (g.metadata.name == ref.name && g.metadata.namespace_ == ref.namespace_) return k;
    }
    const std::string id = ref.namespace_ + "." + ref.name;
    diagnostics_.error(ref.pos, path,
                       fmt::format("upstream group '{}' (namespace.name) is not defined{}", id,
                                   reference_hint(id, group_ids_, "upstreamGroups")));
    return std::nullopt;
  }

 private:
  const std::vector<detail::LoadedUpstream>& upstreams_;
  const std::vector<detail::LoadedUpstreamGroup>& groups_;
  Diagnostics& diagnostics_;
  std::vector<std::string> upstream_ids_;
  std::vector<std::string> group_ids_;
};

// A worker that does not choose per session yet forwards to the first destination that can be
// chosen at all.
void set_first_destination(TcpHost& host) {
  for (const auto& d : host.destinations) {
    if (d.weight == 0) continue;
    host.upstream = d.upstream;
    host.upstream_index = d.upstream_index;
    return;
  }
}

void resolve_references(std::vector<detail::LoadedGateway>& gateways,
                        std::vector<detail::LoadedUpstreamGroup>& groups,
                        const std::vector<detail::LoadedUpstream>& upstreams,
                        Diagnostics& diagnostics) {
  References refs(upstreams, groups, diagnostics);
  // Groups first: a tcpHost copies its group's resolved destinations.
  std::vector<bool> group_ok(groups.size());
  for (size_t k = 0; k < groups.size(); ++k) {
    UpstreamGroup& group = groups[k].group;
    group_ok[k] = refs.destinations(group.destinations, group.metadata.namespace_,
                                    fmt::format("upstreamGroups[{}].destinations", k));
  }
  for (size_t g = 0; g < gateways.size(); ++g) {
    Gateway& gateway = gateways[g].gateway;
    const std::string& ns = gateway.metadata.namespace_;
    for (size_t h = 0; h < gateway.tcp_hosts.size(); ++h) {
      TcpHost& host = gateway.tcp_hosts[h];
      const std::string path =
          fmt::format("gateways[{}].tcpGateway.tcpHosts[{}].destination", g, host.index);
      switch (host.kind) {
        case TcpHost::Kind::Single:
          refs.upstream(host.upstream, ns, path + ".single.upstream", host.upstream_index);
          break;
        case TcpHost::Kind::Multi:
          if (refs.destinations(host.destinations, ns, path + ".multi.destinations")) {
            set_first_destination(host);
          }
          break;
        case TcpHost::Kind::UpstreamGroup:
          if (auto k = refs.group(host.upstream_group, ns, path + ".upstreamGroup")) {
            if (group_ok[*k]) {
              host.destinations = groups[*k].group.destinations;
              set_first_destination(host);
            }
          }
          break;
      }
    }
  }
}

void check_bind_conflicts(const std::vector<detail::LoadedGateway>& gateways,
                          Diagnostics& diagnostics) {
  for (size_t i = 0; i < gateways.size(); ++i) {
    const Gateway& g = gateways[i].gateway;
    if (g.bind_port == 0 || g.bind_address.empty()) continue;
    for (size_t j = 0; j < i; ++j) {
      const Gateway& first = gateways[j].gateway;
      if (first.bind_port == g.bind_port &&
          address_key(first.bind_address) == address_key(g.bind_address)) {
        diagnostics.error(g.pos, index_path("gateways", i) + ".bindPort",
                          fmt::format("{} port {} is already used by gateway '{}' (line {})",
                                      g.bind_address, g.bind_port, first.id(), first.pos.line));
        break;
      }
    }
  }
}

// File order: by line and column; diagnostics without a place go last, in the order raised.
void sort_in_file_order(std::vector<Diagnostic>& items) {
  std::stable_sort(items.begin(), items.end(), [](const Diagnostic& a, const Diagnostic& b) {
    const auto key = [](const Diagnostic& d) {
      const uint32_t line = d.pos.line == 0 ? std::numeric_limits<uint32_t>::max() : d.pos.line;
      return std::make_pair(line, d.pos.column);
    };
    return key(a) < key(b);
  });
}

Config load_document(const toml::table& root, Diagnostics& diagnostics) {
  Config config;
  const TableReader top(root, "", {kTopKeys}, diagnostics, {1, 1});
  if (const auto* n = top.get("settings")) load_settings(*n, diagnostics, config.settings);

  std::vector<detail::LoadedGateway> gateways;
  if (const auto* n = top.get("gateways")) {
    if (const auto* a = detail::read_table_array(*n, "gateways", diagnostics)) {
      for (size_t i = 0; i < a->size(); ++i) {
        gateways.push_back(detail::load_gateway(*a->get(i)->as_table(), i, diagnostics));
      }
    }
  }
  std::vector<detail::LoadedUpstream> upstreams;
  if (const auto* n = top.get("upstreams")) {
    if (const auto* a = detail::read_table_array(*n, "upstreams", diagnostics)) {
      for (size_t i = 0; i < a->size(); ++i) {
        upstreams.push_back(detail::load_upstream(*a->get(i)->as_table(), i, diagnostics));
      }
    }
  }
  std::vector<detail::LoadedUpstreamGroup> groups;
  if (const auto* n = top.get("upstreamGroups")) {
    if (const auto* a = detail::read_table_array(*n, "upstreamGroups", diagnostics)) {
      for (size_t i = 0; i < a->size(); ++i) {
        groups.push_back(detail::load_upstream_group(*a->get(i)->as_table(), i, diagnostics));
      }
    }
  }
  if (top.get("gateways") == nullptr || gateways.empty()) {
    diagnostics.error({}, "gateways",
                      "at least one [[gateways]] entry is required (Ringway has nothing to "
                      "listen on)");
  }
  check_duplicates(
      gateways, "gateways", "gateway",
      [](const detail::LoadedGateway& g) -> const Gateway& { return g.gateway; }, diagnostics);
  check_duplicates(
      upstreams, "upstreams", "upstream",
      [](const detail::LoadedUpstream& u) -> const Upstream& { return u.upstream; }, diagnostics);
  check_duplicates(
      groups, "upstreamGroups", "upstream group",
      [](const detail::LoadedUpstreamGroup& g) -> const UpstreamGroup& { return g.group; },
      diagnostics);
  resolve_references(gateways, groups, upstreams, diagnostics);
  check_bind_conflicts(gateways, diagnostics);
  for (auto& g : gateways)
    config.gateways.push_back(std::move(g.gateway));
  for (auto& u : upstreams)
    config.upstreams.push_back(std::move(u.upstream));
  for (auto& g : groups)
    config.upstream_groups.push_back(std::move(g.group));
  return config;
}

}  // namespace

LoadResult load_string(std::string_view text, std::string_view source_name) {
  Diagnostics diagnostics{std::string(source_name)};
  LoadResult result;
  if (auto hazard = detail::find_parser_hazard(text)) {
    diagnostics.error(hazard->pos, "", std::string(hazard->message));
    result.diagnostics = diagnostics.take();
    return result;
  }
  toml::parse_result parsed = toml::parse(text, std::string_view(source_name));
  if (!parsed) {
    const auto& e = parsed.error();
    diagnostics.error({e.source().begin.line, e.source().begin.column}, "",
                      fmt::format("invalid TOML: {}", e.description()));
    result.diagnostics = diagnostics.take();
    return result;
  }
  Config config = load_document(parsed.table(), diagnostics);
  config.source_path = std::string(source_name);
  if (!diagnostics.has_errors()) result.config = std::move(config);
  result.diagnostics = diagnostics.take();
  sort_in_file_order(result.diagnostics);
  return result;
}

LoadResult load_file(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    const int error = errno;
    Diagnostics diagnostics(path);
    diagnostics.error({}, "", fmt::format("cannot open the config file: {}", std::strerror(error)));
    return LoadResult{std::nullopt, diagnostics.take()};
  }
  std::string text;
  char buf[16384];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, file)) > 0)
    text.append(buf, n);
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) {
    Diagnostics diagnostics(path);
    diagnostics.error({}, "", "cannot read the config file");
    return LoadResult{std::nullopt, diagnostics.take()};
  }
  return load_string(text, path);
}

std::string_view log_level_name(LogLevel level) {
  for (const auto& [name, l] : kLogLevels)
    if (l == level) return name;
  return "info";
}

std::optional<LogLevel> log_level_from_name(std::string_view name) {
  for (const auto& [n, l] : kLogLevels)
    if (n == name) return l;
  return std::nullopt;
}

}  // namespace ringway::config
