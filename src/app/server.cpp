// Running the forwarder (app::run_server): resolve upstream hosts, raise the fd limit, start
// the engine, announce readiness, then wait for signals on the main thread: the first
// SIGTERM/SIGINT drains (sessions finish, force-closed at drainTimeout), a second one stops at
// once. The main thread never touches the data path; it only signals and reads counters.
#include "ringway/app/server.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "ringway/app/access_log.hpp"
#include "ringway/app/admin.hpp"
#include "ringway/app/notify.hpp"
#include "ringway/app/restart.hpp"
#include "ringway/core/log.hpp"
#include "ringway/engine/engine.hpp"
#include "ringway/net/address.hpp"

namespace ringway::app {
namespace {

constexpr int kExitStartFailure = 1;

// Upstream hostnames are resolved once, here: workers never block on DNS.
bool resolve_upstreams(const config::Config& config, std::vector<engine::ResolvedUpstream>& out) {
  for (const auto& up : config.upstreams) {
    engine::ResolvedUpstream r;
    auto add = [&](const config::StaticHost& host, uint32_t priority) {
      auto addrs = net::resolve(host.addr, host.port);
      if (!addrs || addrs->empty()) {
        log::error("upstream {}: host {}:{} does not resolve: {}", up.id(), host.addr, host.port,
                   addrs ? std::string("no address") : addrs.error().message);
        return false;
      }
      r.hosts.push_back(addrs->front());
      r.weights.push_back(host.load_balancing_weight);
      r.priorities.push_back(priority);
      return true;
    };
    for (const auto& host : up.hosts) {
      if (!add(host, 0)) return false;
    }
    // Failover hosts are resolved here too, once: a worker fails over without DNS.
    for (size_t p = 0; p < up.failover.size(); ++p) {
      for (const auto& locality : up.failover[p].localities) {
        for (const auto& host : locality.hosts) {
          if (!add(host, static_cast<uint32_t>(p + 1))) return false;
        }
      }
    }
    out.push_back(std::move(r));
  }
  return true;
}

// Every session costs two fds: the soft limit is raised to the hard one, and the result logged
// so an operator sees the real ceiling (LimitNOFILE= raises the hard limit under systemd).
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  log::info("file descriptor limit {} (about {} sessions)", lim.rlim_cur, lim.rlim_cur / 2);
}

std::string status_line(const engine::StatsSnapshot& stats) {
  int64_t total = 0;
  for (const auto& g : stats.gateways) {
    total += g.gateway[static_cast<size_t>(engine::GatewayStat::downstream_connections_total)];
  }
  return fmt::format("sessions {}, accepted {}", stats.sessions_active, total);
}

int64_t sum_gateway(const engine::StatsSnapshot& stats, engine::GatewayStat s) {
  int64_t total = 0;
  for (const auto& g : stats.gateways)
    total += g.gateway[static_cast<size_t>(s)];
  return total;
}

log::Level to_log_level(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::Debug:
      return log::Level::Debug;
    case config::LogLevel::Info:
      return log::Level::Info;
    case config::LogLevel::Notice:
      return log::Level::Notice;
    case config::LogLevel::Warning:
      return log::Level::Warning;
    case config::LogLevel::Error:
      return log::Level::Error;
  }
  return log::Level::Info;
}

}  // namespace

int run_server(const config::Config& config, const handover::ProcessInfo& self) {
  log::set_min_level(to_log_level(config.settings.log_level));
  // Blocked before any thread exists, so every thread (workers, admin) inherits the mask and
  // the signals are taken only here, by sigtimedwait. SIGPIPE is blocked too: sends use
  // MSG_NOSIGNAL, and nothing else should be able to kill the daemon with it.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, restart::kHintSignal})
    sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::vector<engine::ResolvedUpstream> upstreams;
  if (!resolve_upstreams(config, upstreams)) return kExitStartFailure;
  raise_fd_limit();

  auto created = engine::Engine::create(config, std::move(upstreams));
  if (!created) {
    log::error("{}", created.error().message);
    const int code = created.error().code;
    return code == EPERM || code == ENOSYS ? engine::Engine::kExitIoUringUnavailable
                                           : kExitStartFailure;
  }
  // Declared before the engine so it is destroyed after it: workers call its sink until joined.
  auto opened = AccessLog::open(config);
  if (!opened) {
    log::error("{}", opened.error().message);
    return kExitStartFailure;
  }
  std::unique_ptr<AccessLog> access_log = std::move(opened.value());
  std::unique_ptr<engine::Engine> engine = std::move(created.value());
  if (!access_log->empty()) engine->set_session_sink(access_log->sink());
  const auto watchdog = notify::watchdog_interval();
  if (watchdog) {
    // A worker waits at most a third of the ping interval, so even an idle one turns its
    // loop (and stamps its heartbeat) about three times between two pings.
    engine->set_max_wait(std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog / 3));
  }
  // A restart under systemd: what the previous process left in the fd store.
  std::optional<restart::Stored> stored = restart::take_stored();
  if (self.handover_fd >= 0) {
    engine->set_inherited_listeners(handover::receive_listeners(self.handover_fd));
  } else if (stored) {
    engine->set_inherited_listeners(std::move(stored->listeners));
  }
  if (auto started = engine->start(); !started) {
    log::error("{}", started.error().message);
    if (self.handover_fd >= 0) handover::report_failure(self.handover_fd);
    return kExitStartFailure;
  }
  for (const auto& gw : config.gateways) {
    const std::string id = gw.id();
    for (const auto& l : engine->listeners()) {
      if (l.gateway != id || l.worker != 0) continue;
      log::info("gateway {} listening on {} (workers {}, io_uring: {})", id, l.address.to_string(),
                engine->worker_count(), engine->features().describe());
    }
  }

  std::unique_ptr<AdminServer> admin;
  if (config.settings.admin) {
    auto started = AdminServer::start(*config.settings.admin, config, *engine);
    if (!started) {
      log::error("admin endpoint: {}", started.error().message);
      engine->stop_now();
      engine->join();
      return kExitStartFailure;
    }
    admin = std::move(started.value());
    log::info("admin listening on {}", admin->address().to_string());
  }
  if (self.handover_fd >= 0) {
    const size_t n = handover::take_over_sessions(self.handover_fd, *engine);
    ::close(self.handover_fd);
    log::info("took over {} sessions from the previous process", n);
  }
  if (stored) {
    const size_t n = stored->sessions.size();
    engine->import_sessions(std::move(stored->sessions));
    engine->retire_listeners();
    restart::forget_stored(*stored);
    // The gap: from the previous process storing its sockets to this one serving them again
    // (new connections meanwhile wait in the listen sockets' backlog).
    const int64_t gap_ms = stored->stored_wall_ns > 0
                               ? (std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count() -
                                  stored->stored_wall_ns) /
                                     1000000
                               : -1;
    log::notice(
        "restart: resumed {} sessions from the fd store, {} ms after the previous "
        "process stored them",
        n, gap_ms);
  }
  log::info("ready");
  notify::ready();

  // The main thread's loop: signals, plus a status line and watchdog ping about once a second
  // (more often while draining, so the exit follows the last session promptly).
  std::chrono::milliseconds period(1000);
  if (watchdog) {
    period = std::min(period, std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog));
  }
  bool draining = false;
  std::optional<restart::Hint> restart_hint;  // from the unit's ExecStop hook
  auto last_status = std::chrono::steady_clock::now() - std::chrono::hours(1);
  while (!engine->stopped()) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_status >= period) {
      last_status = now;
      notify::status(status_line(engine->stats()));
      // Pinged only when every worker's loop turned within the interval: a wedged worker
      // stops the pings and systemd restarts the service.
      if (watchdog &&
          engine->workers_alive(std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog))) {
        notify::watchdog_ping();
      } else if (watchdog) {
        log::error("a worker's loop has not turned for {} ms: watchdog ping withheld",
                   std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog).count());
      }
    }
    const auto wait = draining ? std::chrono::milliseconds(50) : period;
    timespec ts{static_cast<time_t>(wait.count() / 1000),
                static_cast<long>((wait.count() % 1000) * 1000000)};
    siginfo_t info{};
    const int sig = sigtimedwait(&signals, &info, &ts);
    if (sig < 0) continue;  // EAGAIN (timeout) or EINTR
    if (sig == restart::kHintSignal) {
      if (auto h = restart::hint_from(info)) restart_hint = h;
      continue;
    }
    if (sig == SIGHUP) {
      if (draining) {
        log::notice("SIGHUP ignored: draining");
        continue;
      }
      if (handover::reload(self, config, *engine)) {
        // Everything moved: what is left here (sessions that were already closing) ends now.
        if (admin) admin->set_draining();
        engine->stop_now();
        break;
      }
      continue;
    }
    if (sig == SIGPIPE) continue;
    // `systemctl restart`: listeners and sessions go into systemd's fd store for the next
    // process, and this one ends now. Anything else (stop, no systemd, a full store) drains.
    if (!draining && restart::store_for_restart(config, self.config_path, *engine, restart_hint)) {
      if (admin) admin->set_draining();
      engine->stop_now();
      break;
    }
    if (!draining) {
      draining = true;
      notify::stopping();
      if (admin) admin->set_draining();
      const auto drain = config.settings.drain_timeout;
      log::info("{} received: draining, {} sessions open, force-closing at most {} ms from now",
                strsignal(sig), engine->stats().sessions_active, drain.count());
      engine->begin_drain(std::chrono::steady_clock::now() + drain);
    } else {
      log::info("{} received again: closing every session now", strsignal(sig));
      engine->stop_now();
    }
  }
  engine->join();
  const auto stats = engine->stats();
  log::info("stopped: sessions force-closed {}, leftover {}",
            sum_gateway(stats, engine::GatewayStat::sessions_force_closed_total),
            stats.sessions_active);
  if (admin) admin->stop();
  admin.reset();
  engine.reset();
  access_log->stop();  // last flush of the access logs
  return 0;
}

}  // namespace ringway::app
