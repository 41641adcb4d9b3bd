// Command-line entry: parse arguments (CLI11), load and check the config, then run or report.
#include "ringway/app/cli.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "ringway/app/restart.hpp"
#include "ringway/app/server.hpp"
#include "ringway/config/import_gloo.hpp"
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

// What a reload needs to start the next process: this binary's path, resolved now (if a
// package upgrade replaces the file later, the reload runs the new one), and the arguments.
handover::ProcessInfo process_info(int argc, char** argv, const std::string& config_path,
                                   int handover_fd) {
  handover::ProcessInfo info;
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) info.exe.assign(buf, static_cast<size_t>(n));
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--handover-fd") {
      ++i;  // and its value
      continue;
    }
    if (a.rfind("--handover-fd=", 0) == 0) continue;
    info.argv.push_back(a);
  }
  info.config_path = config_path;
  info.handover_fd = handover_fd;
  return info;
}

// `ringway import-gloo FILE...`: the TOML on stdout, errors on stderr.
int import_gloo_main(const std::vector<std::string>& paths) {
  std::vector<config::ImportSource> sources;
  for (const auto& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "%s: cannot open for reading\n", path.c_str());
      return kExitNoInput;
    }
    sources.push_back({path, std::string((std::istreambuf_iterator<char>(in)),
                                         std::istreambuf_iterator<char>())});
  }
  const config::ImportResult result = config::import_gloo(sources);
  for (const auto& e : result.errors)
    std::fprintf(stderr, "%s\n", e.c_str());
  if (!result.ok()) return kExitDataError;
  for (const auto& w : result.warnings)
    std::fprintf(stderr, "import-gloo: warning: %s\n", w.c_str());
  std::fputs(result.toml.c_str(), stdout);
  std::fprintf(stderr,
               "import-gloo: %zu gateways, %zu upstreams, %zu upstream groups, %zu documents left "
               "out\n",
               result.gateways, result.upstreams, result.upstream_groups, result.left_out);
  return 0;
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
  int handover_fd = -1;
  cli.add_option("-c,--config", config_path, "the TOML config file")->capture_default_str();
  cli.add_flag("--check", check,
               "validate the config, try every socket option on a scratch socket, and exit: "
               "0 valid, 78 invalid");
  cli.add_flag("--print-config", print_config,
               "print the effective config (every default filled in) as TOML and exit");
  cli.add_flag("--version", version, "print the version and exit");
  // Internal: set by a reload on the process it starts (the socket to the previous process).
  cli.add_option("--handover-fd", handover_fd)->group("");
  int before_stop_pid = 0;
  cli.add_option("--before-stop", before_stop_pid,
                 "ExecStop= hook of the systemd unit (as root): if systemd is restarting the "
                 "unit, tell its main process PID to hand its sessions to the fd store, then exit");
  std::vector<std::string> import_paths;
  CLI::App* import = cli.add_subcommand(
      "import-gloo",
      "convert Gloo Gateway and Upstream YAML (single or multi-document files, `kubectl get -o "
      "yaml` List output) to Ringway TOML on stdout; fields that cannot be carried become "
      "\"# not carried\" comments");
  import->add_option("files", import_paths, "Gloo YAML files")
      ->required()
      ->check(CLI::ExistingFile);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }

  log::init_from_environment();
  if (import->parsed()) return import_gloo_main(import_paths);
  if (before_stop_pid != 0) return restart::before_stop(before_stop_pid);
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
  if (handover_fd >= 0) {
    // systemd's watchdog variables name the process it started; this one takes its place
    // (the previous process made it the unit's MAINPID), so it must ping too.
    if (std::getenv("WATCHDOG_USEC") != nullptr) {
      ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
    }
  }
  auto config = load_and_check(config_path, /*kernel_trial=*/false);
  if (!config) {
    if (handover_fd >= 0) handover::report_failure(handover_fd);
    return kExitConfigInvalid;
  }
  if (print_config) {
    std::fputs(config::to_toml(*config).c_str(), stdout);
    return 0;
  }
  return run_server(*config, process_info(argc, argv, config_path, handover_fd));
}

}  // namespace ringway::app
