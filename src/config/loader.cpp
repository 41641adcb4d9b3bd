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

constexpr std::string_view kTopKeys[] = {"settings", "gateways", "upstreams"};
constexpr std::string_view kSettingsKeys[] = {"workers", "drainTimeout", "admin", "logLevel",
                                              "perWorkerBufferLimitBytes"};
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

void resolve_references(std::vector<detail::LoadedGateway>& gateways,
                        const std::vector<detail::LoadedUpstream>& upstreams,
                        Diagnostics& diagnostics) {
  std::vector<std::string> ids;
  for (const auto& u : upstreams)
    ids.push_back(u.upstream.id());
  for (size_t g = 0; g < gateways.size(); ++g) {
    Gateway& gateway = gateways[g].gateway;
    for (size_t h = 0; h < gateway.tcp_hosts.size(); ++h) {
      ResourceRef& ref = gateway.tcp_hosts[h].upstream;
      // An omitted namespace is the gateway's own (Ringway's documented convention).
      if (ref.namespace_.empty()) ref.namespace_ = gateway.metadata.namespace_;
      const std::string id = ref.namespace_ + "." + ref.name;
      const auto it = std::find_if(upstreams.begin(), upstreams.end(), [&](const auto& u) {
        return u.upstream.metadata.name == ref.name &&
               u.upstream.metadata.namespace_ == ref.namespace_;
      });
      if (it != upstreams.end()) {
        gateway.tcp_hosts[h].upstream_index = static_cast<size_t>(it - upstreams.begin());
        continue;
      }
      std::string hint;
      if (auto best = closest(id, ids)) {
        hint = fmt::format("; did you mean '{}'?", *best);
      } else if (ids.empty()) {
        hint = "; no [[upstreams]] are defined";
      } else {
        std::string list;
        for (const auto& i : ids)
          list += (list.empty() ? "" : ", ") + i;
        hint = fmt::format("; defined upstreams: {}", list);
      }
      diagnostics.error(
          ref.pos,
          fmt::format("gateways[{}].tcpGateway.tcpHosts[{}].destination.single.upstream", g, h),
          fmt::format("upstream '{}' (namespace.name) is not defined{}", id, hint));
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
  resolve_references(gateways, upstreams, diagnostics);
  check_bind_conflicts(gateways, diagnostics);
  for (auto& g : gateways)
    config.gateways.push_back(std::move(g.gateway));
  for (auto& u : upstreams)
    config.upstreams.push_back(std::move(u.upstream));
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
