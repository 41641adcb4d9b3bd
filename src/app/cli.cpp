// Command-line entry: parse arguments (CLI11), load and check the config, then run or report.
#include "ringway/app/cli.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "ringway/app/server.hpp"
#include "ringway/config/loader.hpp"
#include "ringway/core/log.hpp"
#include "ringway/net/check.hpp"
#include "ringway_build_config.hpp"

namespace ringway::app {
namespace {

constexpr const char* kDefaultConfigPath = RINGWAY_SYSCONFDIR "/ringway.toml";

size_t count(const std::vector<config::Diagnostic>& ds, config::Diagnostic::Severity s) {
  size_t n = 0;
  for (const auto& d : ds)
    n += d.severity == s ? 1 : 0;
  return n;
}

void print_diagnostics(const std::vector<config::Diagnostic>& ds) {
  for (const auto& d : ds)
    std::fprintf(stderr, "%s\n", config::format(d).c_str());
}

// Loads the file and, for --check, also asks the kernel about every socket option. Prints every
// diagnostic. Returns the config when there is no error.
std::optional<config::Config> load_and_check(const std::string& path, bool kernel_trial) {
  config::LoadResult loaded = config::load_file(path);
  std::vector<config::Diagnostic> all = std::move(loaded.diagnostics);
  if (loaded.ok() && kernel_trial) {
    config::Diagnostics trial(path);
    net::check_config(*loaded.config, trial);
    for (auto& d : trial.take())
      all.push_back(std::move(d));
  }
  print_diagnostics(all);
  if (count(all, config::Diagnostic::Severity::Error) > 0 || !loaded.ok()) return std::nullopt;
  return std::move(loaded.config);
}

}  // namespace

int cli_main(int argc, char** argv) {
  CLI::App cli{
      "Ringway: a TCP forwarder on io_uring, configured like Gloo Gateway's Gateway and "
      "Upstream resources."};
  std::string config_path = kDefaultConfigPath;
  bool check = false;
  bool print_config = false;
  bool version = false;
  cli.add_option("-c,--config", config_path, "the TOML config file")->capture_default_str();
  cli.add_flag("--check", check,
               "validate the config, try every socket option on a scratch socket, and exit: "
               "0 valid, 78 invalid");
  cli.add_flag("--print-config", print_config,
               "print the effective config (every default filled in) as TOML and exit");
  cli.add_flag("--version", version, "print the version and exit");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }

  log::init_from_environment();
  if (version) {
    std::printf("ringway %s\n", RINGWAY_VERSION);
    return 0;
  }
  if (check) {
    auto config = load_and_check(config_path, /*kernel_trial=*/true);
    if (!config) {
      std::fprintf(stderr, "%s: invalid\n", config_path.c_str());
      return kExitConfigInvalid;
    }
    std::fprintf(stderr, "%s: valid (%zu gateways, %zu upstreams)\n", config_path.c_str(),
                 config->gateways.size(), config->upstreams.size());
    return 0;
  }
  auto config = load_and_check(config_path, /*kernel_trial=*/false);
  if (!config) return kExitConfigInvalid;
  if (print_config) {
    std::fputs(config::to_toml(*config).c_str(), stdout);
    return 0;
  }
  return run_server(*config);
}

}  // namespace ringway::app
