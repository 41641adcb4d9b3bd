// ringway-load: the bundled load tool (serve, stream, rr, crr, hold). Parses the command line,
// applies per-command defaults and dispatches; see bench/README.md for what each figure means.
#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "client.hpp"
#include "common.hpp"
#include "run.hpp"
#include "serve.hpp"

namespace {

using namespace ringway::load;

// Thousands of connections need thousands of descriptors: take the whole hard limit.
void raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

void add_common(CLI::App* app, Options& o) {
  app->add_option("--target", o.target, "host:port to connect to (serve: to listen on)");
  app->add_option("-c,--connections", o.connections, "connections (crr: in parallel)")
      ->check(CLI::Range(1, 1'000'000));
  app->add_option("-d,--duration", o.duration_s, "seconds to measure (serve: 0 = until signal)")
      ->check(CLI::Range(0.0, 86400.0));
  app->add_option("-s,--size", o.size,
                  "message bytes (rr/crr: 64, hold probe: 1) or write size (stream: 131072)")
      ->check(CLI::Range(size_t{1}, size_t{64} << 20));
  app->add_option("-t,--threads", o.threads, "worker threads (0 = CPUs in the affinity mask)")
      ->check(CLI::Range(0, 1024));
  app->add_flag("--json", o.json, "print the result as JSON on stdout (the table goes to stderr)");
  app->add_option("--source-ips", o.source_ips,
                  "source addresses to spread connections over, e.g. 127.0.0.2-127.0.0.9");
  app->add_option("-w,--warmup", o.warmup_s, "seconds of load before measuring")
      ->check(CLI::Range(0.0, 3600.0));
  app->add_option("--timeout", o.timeout_s, "connect and response deadline in seconds")
      ->check(CLI::Range(0.001, 3600.0));
  app->add_flag("--keepalive", o.keepalive, "set SO_KEEPALIVE on every socket");
  app->add_option("--pid", o.pid,
                  "target process: report its CPU seconds, peak RSS (and hold: RSS, PSS and fds "
                  "per connection), children included");
  app->add_option("--label", o.label, "free text copied into the JSON");
  app->add_flag("!--no-progress", o.progress, "no per-second progress lines");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"ringway-load: load generator and backend for benchmarking TCP forwarders"};
  app.require_subcommand(1);
  std::string mode = "echo";
  std::string direction = "up";
  CLI::App* serve = app.add_subcommand("serve", "backend: echo, sink or source");
  serve->add_option("--mode", mode, "echo | sink | source")
      ->check(CLI::IsMember({"echo", "sink", "source"}));
  CLI::App* stream = app.add_subcommand("stream", "bulk bytes: Gbit/s total and per connection");
  stream
      ->add_option("--direction", direction, "up (to a sink) | down (from a source) | both (echo)")
      ->check(CLI::IsMember({"up", "down", "both"}));
  CLI::App* rr = app.add_subcommand("rr", "request/response on persistent connections");
  CLI::App* crr = app.add_subcommand("crr", "a new connection per request");
  CLI::App* hold = app.add_subcommand("hold", "idle connections: target memory and fds");
  for (CLI::App* sub : {serve, stream, rr, crr, hold})
    add_common(sub, o);
  serve->add_option("--listen", o.target, "host:port to listen on (same as --target)");
  CLI11_PARSE(app, argc, argv);

  if (serve->parsed()) {
    o.command = Command::Serve;
    // A backend runs until it is told to stop unless a duration was asked for explicitly.
    if (serve->count("--duration") == 0) o.duration_s = 0;
  }
  if (stream->parsed()) o.command = Command::Stream;
  if (rr->parsed()) o.command = Command::Rr;
  if (crr->parsed()) o.command = Command::Crr;
  if (hold->parsed()) o.command = Command::Hold;
  o.mode = mode == "sink"     ? ServeMode::Sink
           : mode == "source" ? ServeMode::Source
                              : ServeMode::Echo;
  o.direction = direction == "down"   ? Direction::Down
                : direction == "both" ? Direction::Both
                                      : Direction::Up;
  if (o.size == 0) {
    o.size = o.command == Command::Stream ? 128 * 1024 : o.command == Command::Hold ? 1 : 64;
  }
  ::signal(SIGPIPE, SIG_IGN);  // a peer that goes away is an error to count, not a reason to die
  raise_fd_limit();
  if (o.command == Command::Serve) return run_serve(o);

  ConnectSpec spec;
  if (!parse_endpoint(o.target, spec.target, spec.target_length)) {
    fmt::print(stderr, "ringway-load: bad --target '{}' (want ip:port or [v6]:port)\n", o.target);
    return 2;
  }
  if (!parse_source_ips(o.source_ips, spec.sources)) {
    fmt::print(stderr, "ringway-load: bad --source-ips '{}'\n", o.source_ips);
    return 2;
  }
  spec.keepalive = o.keepalive;
  // Bulk transfer wants full segments; everything else wants each message on the wire now.
  spec.nodelay = o.command != Command::Stream;
  int threads = o.threads > 0 ? o.threads : available_cpus();
  threads = std::max(1, std::min(threads, o.connections));

  auto worker = o.command == Command::Stream ? stream_worker
                : o.command == Command::Rr   ? rr_worker
                : o.command == Command::Crr  ? crr_worker
                                             : hold_worker;
  return run_client(o, threads, [&](int index, ThreadCounters& counters, RunControl& control) {
    WorkerContext context{&o, &spec, index, threads};
    worker(context, counters, control);
  });
}
