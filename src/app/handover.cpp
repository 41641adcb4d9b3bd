// Reload: the old process's side (check the config, start the successor, hand over listeners
// then sessions, exit) and the new process's side (take them). See handover.hpp for the wire.
//
// Failure rules: until the new process says it accepts, nothing has changed here (the old
// process never stopped accepting). After the sessions left, the old process keeps its own
// references to every socket until the new one confirms the import; if that confirmation does
// not come, it takes the sessions back and drains them as at SIGTERM. A session is never
// dropped because a handover failed.
#include "ringway/app/handover.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "ringway/app/notify.hpp"
#include "ringway/config/loader.hpp"
#include "ringway/core/log.hpp"
#include "ringway/net/check.hpp"

namespace ringway::app::handover {
namespace {

// The new process loads its config, resolves upstreams and sets up io_uring before it
// accepts: generous, because a sanitizer build is slow; the old one keeps serving meanwhile.
constexpr std::chrono::milliseconds kStartTimeout{15000};
// Sessions are quiesced in one ring round trip per worker; a worker not done by then is wedged.
constexpr std::chrono::milliseconds kExportTimeout{1000};
// The old process exits within 2 s of the new one accepting, whatever its sessions do.
constexpr std::chrono::milliseconds kImportTimeout{800};

// Starts the binary on disk with the same arguments plus --handover-fd, as a sibling: clone
// with CLONE_PARENT makes it a child of our own parent (under systemd, PID 1). systemd waits
// for a main process after SIGTERM only if it is its own child; one it merely "supervises"
// (announced by MAINPID= while someone else's child) gets SIGKILL at once on the next stop.
// The raw clone runs no fork handlers; the child only makes async-signal-safe calls before
// exec (this process has threads). Returns the new process's pid, or -1.
pid_t spawn(const ProcessInfo& self, int child_sock) {
  std::vector<std::string> args = self.argv;
  args.push_back("--handover-fd");
  args.push_back(std::to_string(child_sock));
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  sigset_t all;
  sigfillset(&all);
  const long pid = ::syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, 0);
  if (pid != 0) return static_cast<pid_t>(pid);
  // The new process. The daemon blocks its signals for sigtimedwait; an exec'd program
  // inherits the mask, and the new daemon blocks what it needs itself.
  sigprocmask(SIG_UNBLOCK, &all, nullptr);
  const int flags = ::fcntl(child_sock, F_GETFD);
  ::fcntl(child_sock, F_SETFD, flags & ~FD_CLOEXEC);
  ::execv(self.exe.c_str(), argv.data());
  _exit(127);
}

// The new process we started, by its pid (our parent reaps it). Its fds close with it,
// so no session is forwarded by two processes.
void stop_new_process(pid_t pid) {
  if (pid <= 0) return;  // never kill(-1) or a process group
  ::kill(pid, SIGKILL);
  // Bounded wait for it to be gone (kill(0) fails once it is reaped; a zombie holds no fds).
  for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i) {
    char path[64];
    std::snprintf(path, sizeof(path), "/proc/%d/fd/0", pid);
    if (::access(path, F_OK) != 0) break;  // a zombie: its fds are closed
    ::usleep(10000);
  }
}

}  // namespace

bool config_is_valid(const std::string& path, std::string_view who, std::string_view outcome) {
  config::LoadResult loaded = config::load_file(path);
  std::vector<config::Diagnostic> all = std::move(loaded.diagnostics);
  if (loaded.ok()) {
    config::Diagnostics trial(path);
    net::check_config(*loaded.config, trial);
    for (auto& d : trial.take())
      all.push_back(std::move(d));
  }
  size_t errors = 0;
  for (const auto& d : all) {
    if (d.severity == config::Diagnostic::Severity::Error) {
      ++errors;
      log::error("{}: {}", who, config::format(d));
    } else {
      log::warning("{}: {}", who, config::format(d));
    }
  }
  if (errors > 0 || !loaded.ok()) {
    log::error("{}: {} is invalid ({} errors); {}", who, path, errors, outcome);
    return false;
  }
  return true;
}

bool reload(const ProcessInfo& self, const config::Config& running, engine::Engine& engine) {
  log::notice("reload: checking {}", self.config_path);
  if (!config_is_valid(self.config_path, "reload", "still running the previous config")) {
    return false;
  }
  if (self.exe.empty()) {
    log::error("reload: the path of the ringway binary is unknown; still running");
    return false;
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    log::error("reload: socketpair failed: {}; still running", std::strerror(errno));
    return false;
  }
  notify::reloading();
  const auto started = std::chrono::steady_clock::now();
  const pid_t child = spawn(self, pair[1]);
  ::close(pair[1]);
  const int sock = pair[0];
  auto give_up = [&](const std::string& why) {
    log::error("reload: {}; still running the previous config", why);
    ::close(sock);
    stop_new_process(child);
    notify::ready();
    return false;
  };
  if (child < 0) return give_up(fmt::format("fork failed: {}", std::strerror(errno)));
  log::info("reload: started {} as pid {}", self.exe, child);

  // 1. Listeners: the workers keep accepting on them meanwhile.
  std::vector<engine::InheritedListener> listeners;
  for (const auto& l : engine.listeners()) {
    for (const auto& gw : running.gateways) {
      if (gw.id() != l.gateway) continue;
      listeners.push_back(
          engine::InheritedListener{l.gateway, engine::listener_key(gw), l.fd, l.address});
    }
  }
  Bundle out;
  out.step = Step::Listeners;
  out.state = encode_listeners(listeners, out.fds);
  if (auto sent = send_bundle(sock, out); !sent) return give_up(sent.error().message);

  // 2. The new process accepts on every gateway (or failed).
  auto accepting = recv_bundle(sock, kStartTimeout);
  if (!accepting || accepting->step != Step::Accepting) {
    return give_up(accepting ? "the new process failed to start (see its messages above)"
                             : "the new process did not start: " + accepting.error().message);
  }
  const auto new_pid = static_cast<pid_t>(accepting->value);

  // 3. Sessions: from here the old process no longer accepts.
  const auto quiet_started = std::chrono::steady_clock::now();
  std::vector<engine::SessionExport> sessions = engine.hand_over(kExportTimeout);
  const auto quiet_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - quiet_started)
                            .count();
  // The new process becomes the unit's main process before it reports READY=1.
  notify::main_pid(new_pid);
  Bundle sessions_out;
  sessions_out.step = Step::Sessions;
  sessions_out.state = encode_sessions(sessions, sessions_out.fds);
  auto sent = send_bundle(sock, sessions_out);
  Result<Bundle> done = sent ? recv_bundle(sock, kImportTimeout) : Result<Bundle>(sent.error());
  if (!done || done->step != Step::Done) {
    // Our child is stopped first, so no two processes ever forward the same session.
    ::close(sock);
    stop_new_process(child);
    // Connections it accepted and had not handed back die with it; everything else is ours
    // again: the sessions, and the listen sockets, which stayed open here (unarmed).
    const size_t n = sessions.size();
    engine.import_sessions(std::move(sessions));
    engine.resume_accepting();
    notify::main_pid(::getpid());
    notify::ready();
    log::error(
        "reload: the new process did not confirm the handover ({}); took back {} sessions, "
        "accepting again, still running the previous config",
        done ? "it reported a failure" : done.error().message, n);
    return false;
  }
  engine::close_fds(sessions);  // the new process holds its own references now
  ::close(sock);
  log::notice(
      "reload: pid {} took over {} sessions (quiet point {} ms, whole reload {} ms); "
      "exiting",
      new_pid, done->value, quiet_ms,
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                            started)
          .count());
  return true;
}

std::vector<engine::InheritedListener> receive_listeners(int sock) {
  auto b = recv_bundle(sock, kStartTimeout);
  if (!b || b->step != Step::Listeners) {
    log::warning("handover: no listen sockets from the previous process ({}); opening new ones",
                 b ? "unexpected message" : b.error().message);
    if (b) close_all(b->fds);
    return {};
  }
  auto listeners = decode_listeners(b->state, b->fds);
  close_all(b->fds);
  if (!listeners) {
    log::warning("{}", listeners.error().message);
    return {};
  }
  return std::move(listeners.value());
}

size_t take_over_sessions(int sock, engine::Engine& engine) {
  Bundle accepting;
  accepting.step = Step::Accepting;
  accepting.value = static_cast<uint64_t>(::getpid());
  if (auto sent = send_bundle(sock, accepting); !sent) {
    log::warning("handover: {}; the previous process keeps its sessions", sent.error().message);
    engine.retire_listeners();
    return 0;
  }
  // The old process needs at most kExportTimeout to quiesce, plus the transfer.
  auto b = recv_bundle(sock, kExportTimeout + std::chrono::milliseconds(2000));
  if (!b || b->step != Step::Sessions) {
    log::warning("handover: no sessions from the previous process ({})",
                 b ? "unexpected message" : b.error().message);
    if (b) close_all(b->fds);
    engine.retire_listeners();
    return 0;
  }
  auto sessions = decode_sessions(b->state, b->fds);
  close_all(b->fds);
  if (!sessions) {
    log::error("{}; the previous process keeps its sessions", sessions.error().message);
    report_failure(sock);
    engine.retire_listeners();
    return 0;
  }
  if (std::getenv("RINGWAY_TEST_FAIL_TAKEOVER") != nullptr) {
    // Fault injection for the tests: fail exactly where a real import could (the sessions are
    // here, the old process waits for Done). Its own references keep every session alive.
    log::error("handover: failing the takeover on purpose (RINGWAY_TEST_FAIL_TAKEOVER)");
    engine::close_fds(sessions.value());
    report_failure(sock);
    engine.retire_listeners();
    return 0;
  }
  const size_t n = sessions->size();
  engine.import_sessions(std::move(sessions.value()));
  // Only now that the old process has closed its copies can the replaced listeners go.
  engine.retire_listeners();
  Bundle done;
  done.step = Step::Done;
  done.value = n;
  if (auto sent = send_bundle(sock, done); !sent) {
    log::warning("handover: could not confirm to the previous process: {}", sent.error().message);
  }
  return n;
}

void report_failure(int sock) {
  Bundle failed;
  failed.step = Step::Failed;
  [[maybe_unused]] auto r = send_bundle(sock, failed);
}

}  // namespace ringway::app::handover
