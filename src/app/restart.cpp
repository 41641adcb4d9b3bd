// `systemctl restart` without losing anything (see restart.hpp): the unit's ExecStop= hook
// (before_stop, as root) learns from PID 1 that the job is a restart and tells the main process;
// at the SIGTERM that follows, listen sockets and quiesced sessions go into the unit's fd store
// (FDSTORE=1), one fd per message, their state into a sealed memfd stored beside them; the next
// process finds them in LISTEN_FDS/LISTEN_FDNAMES, resumes them, and removes them from the store.
#include "ringway/app/restart.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "ringway/app/handover.hpp"
#include "ringway/core/log.hpp"

namespace ringway::app::restart {
namespace {

constexpr const char* kStateName = "ringway-state";
constexpr std::chrono::milliseconds kExportTimeout{1000};
// An fd index beyond this in a name or the state is not ours (systemd's own store limit is lower).
constexpr size_t kMaxFds = size_t{1} << 22;
constexpr uint32_t kStateMagic = 0x52575232;  // "RWR2"
// systemd sends SIGTERM right after ExecStop= ends; a hint older than this is from something else.
constexpr std::chrono::seconds kHintValid{10};

// The memfd's first bytes; the listener then session records (handover_wire.cpp) follow.
struct StateHeader {
  uint32_t magic = kStateMagic;
  uint32_t fd_count = 0;        // fds named ringway-0 .. ringway-<fd_count - 1>
  int64_t stored_wall_ns = 0;   // when the previous process stored them (the gap, logged)
  uint64_t listener_bytes = 0;  // listener records, then session records to the end
};

std::string fd_name(size_t i) {
  return fmt::format("ringway-{}", i);
}

// The pending job type ("restart", "stop", ...) and FileDescriptorStoreMax of the unit `pid`
// belongs to. Empty job type when there is no job or the bus failed (`why` says which).
struct UnitState {
  std::string job_type;
  std::string why;  // when job_type is empty: what failed
  uint32_t fd_store_max = 0;
};

// PID 1's private socket answers root only, and works without a bus daemon; anyone else (or
// root when it fails) goes through the system bus.
sd_bus* open_manager_bus(std::string* why) {
  sd_bus* bus = nullptr;
  if (::geteuid() == 0 && sd_bus_new(&bus) >= 0) {
    if (sd_bus_set_address(bus, "unix:path=/run/systemd/private") >= 0 && sd_bus_start(bus) >= 0) {
      return bus;
    }
    sd_bus_unref(bus);
    bus = nullptr;
  }
  if (int r = sd_bus_open_system(&bus); r < 0) {
    *why = fmt::format("no system bus: {}", std::strerror(-r));
    return nullptr;
  }
  return bus;
}

UnitState unit_state(pid_t pid) {
  UnitState st;
  sd_bus* bus = open_manager_bus(&st.why);
  if (bus == nullptr) return st;
  // PID 1 answers at once; a bus that does not must not hold up the drain.
  sd_bus_set_method_call_timeout(bus, 2000000);
  // The unit, asked by pid (sd_pid_get_unit needs /proc/1, which ProtectProc=invisible hides).
  char* path = nullptr;
  {
    sd_bus_error e{};  // SD_BUS_ERROR_NULL (a C compound literal clang rejects in C++)
    sd_bus_message* m = nullptr;
    const int r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                     "org.freedesktop.systemd1.Manager", "GetUnitByPID", &e, &m,
                                     "u", static_cast<uint32_t>(pid));
    const char* p = nullptr;
    if (r >= 0 && sd_bus_message_read(m, "o", &p) >= 0 && p != nullptr) {
      path = strdup(p);
    } else {
      st.why = fmt::format("cannot tell our unit: {}",
                           e.message != nullptr ? e.message : std::strerror(-r));
    }
    sd_bus_message_unref(m);
    sd_bus_error_free(&e);
  }
  if (path == nullptr) {
    sd_bus_flush_close_unref(bus);
    return st;
  }
  sd_bus_error error{};  // SD_BUS_ERROR_NULL (a C compound literal clang rejects in C++)
  sd_bus_message* reply = nullptr;
  const int got =
      sd_bus_get_property(bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                          "Job", &error, &reply, "(uo)");
  if (got < 0) {
    st.why = fmt::format("reading the unit's Job failed: {}",
                         error.message != nullptr ? error.message : std::strerror(-got));
  } else {
    uint32_t id = 0;
    const char* job_path = nullptr;
    const int read = sd_bus_message_read(reply, "(uo)", &id, &job_path);
    if (read < 0) st.why = fmt::format("decoding the unit's Job failed: {}", std::strerror(-read));
    if (read >= 0 && id == 0) st.why = "no job pending";
    if (read >= 0 && id != 0) {
      char* type = nullptr;
      sd_bus_error e2{};  // SD_BUS_ERROR_NULL (a C compound literal clang rejects in C++)
      if (sd_bus_get_property_string(bus, "org.freedesktop.systemd1", job_path,
                                     "org.freedesktop.systemd1.Job", "JobType", &e2, &type) >= 0) {
        st.job_type = type;
        std::free(type);
      } else {
        st.why = fmt::format("reading JobType failed: {}",
                             e2.message != nullptr ? e2.message : "unknown error");
      }
      sd_bus_error_free(&e2);
    }
    sd_bus_message_unref(reply);
  }
  sd_bus_error_free(&error);
  if (path != nullptr) {
    sd_bus_error e3{};  // SD_BUS_ERROR_NULL (a C compound literal clang rejects in C++)
    uint32_t max = 0;
    if (sd_bus_get_property_trivial(bus, "org.freedesktop.systemd1", path,
                                    "org.freedesktop.systemd1.Service", "FileDescriptorStoreMax",
                                    &e3, 'u', &max) >= 0) {
      st.fd_store_max = max;
    }
    sd_bus_error_free(&e3);
    std::free(path);
  }
  sd_bus_flush_close_unref(bus);
  return st;
}

// One fd per message, each under its own name. systemd 252 gives every fd of a message the
// message's single FDNAME= and keeps them in no particular order (a hash set), so a message
// with several fds would lose which is which. FDPOLL=0: by default systemd polls a stored fd and
// drops it at EPOLLHUP/EPOLLERR, so a session whose peer closed while we restart would vanish
// from the store and leave a hole in the state; unpolled, it arrives and closes normally.
bool store_fd(int fd, const std::string& name) {
  const std::string msg = "FDSTORE=1\nFDPOLL=0\nFDNAME=" + name;
  return sd_pid_notify_with_fds(0, 0, msg.c_str(), &fd, 1) > 0;
}

void remove_stored(const std::string& name) {
  const std::string msg = "FDSTOREREMOVE=1\nFDNAME=" + name;
  sd_notify(0, msg.c_str());
}

// The state travels in a sealed memfd: a regular file, which systemd cannot poll (epoll says
// EPERM, which service_add_fd_store accepts), and sealed so nothing can change it in the store.
int state_memfd(const std::string& state) {
  const int fd = ::memfd_create("ringway-restart", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  size_t done = 0;
  while (done < state.size()) {
    const ssize_t w = ::write(fd, state.data() + done, state.size() - done);
    if (w <= 0) {
      ::close(fd);
      return -1;
    }
    done += static_cast<size_t>(w);
  }
  ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  return fd;
}

int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void close_listeners(std::vector<engine::InheritedListener>& listeners) {
  for (auto& l : listeners) {
    if (l.fd >= 0) ::close(l.fd);
    l.fd = -1;
  }
}

}  // namespace

int before_stop(pid_t main_pid) {
  if (main_pid <= 0) {
    log::error("--before-stop: no main process pid given ($MAINPID is empty): it will drain");
    return 0;
  }
  const UnitState st = unit_state(main_pid);
  if (st.job_type != "restart") {
    log::info("before stop: the job is {}: pid {} drains",
              st.job_type.empty() ? "unknown (" + st.why + ")" : "'" + st.job_type + "'", main_pid);
    return 0;
  }
  sigval value{};
  value.sival_int = static_cast<int>(std::min<uint32_t>(st.fd_store_max, INT32_MAX));
  if (::sigqueue(main_pid, kHintSignal, value) != 0) {
    log::warning("before stop: cannot tell pid {} ({}): it will drain", main_pid,
                 std::strerror(errno));
    return 0;
  }
  log::info("before stop: the job is a restart: pid {} hands its sessions to the fd store",
            main_pid);
  return 0;
}

std::optional<Hint> hint_from(const siginfo_t& info) {
  // Only what the hook sends: queued by root with a value. A plain `kill -USR2` is ignored, so
  // nobody else can make a later stop throw its sessions into a store that is then released.
  if (info.si_signo != kHintSignal || info.si_code != SI_QUEUE || info.si_uid != 0) {
    return std::nullopt;
  }
  return Hint{static_cast<uint32_t>(std::max(info.si_value.sival_int, 0)),
              std::chrono::steady_clock::now()};
}

bool store_for_restart(const config::Config& running, const std::string& config_path,
                       engine::Engine& engine, const std::optional<Hint>& hint) {
  if (std::getenv("NOTIFY_SOCKET") == nullptr) return false;
  // The hook's message, if fresh (systemd sends SIGTERM as soon as ExecStop= ends); otherwise
  // the bus, which works for a unit with a static User= (not DynamicUser=, see before_stop).
  UnitState st;
  if (hint && std::chrono::steady_clock::now() - hint->at < kHintValid) {
    st.job_type = "restart";
    st.fd_store_max = hint->fd_store_max;
  } else {
    st = unit_state(::getpid());
  }
  if (st.job_type != "restart") {
    log::info("SIGTERM: the unit's job is {}: draining",
              st.job_type.empty() ? "unknown (" + st.why + ")" : "'" + st.job_type + "'");
    return false;
  }
  // The next process starts from the file on disk: if it is invalid, ExecStartPre= fails and
  // systemd releases the store with every session in it. Draining here ends them properly.
  if (!handover::config_is_valid(config_path, "restart",
                                 "draining instead of storing the sessions (the next start "
                                 "will fail)")) {
    return false;
  }
  const auto started = std::chrono::steady_clock::now();
  // Our own copies of the listen sockets: hand_over() closes the workers' fds, and a number
  // stored after that may already name another file (the memfd, typically).
  std::vector<engine::InheritedListener> listeners;
  for (const auto& l : engine.listeners()) {
    for (const auto& gw : running.gateways) {
      if (gw.id() != l.gateway) continue;
      const int fd = ::fcntl(l.fd, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) {
        log::error("restart: dup of a listen socket failed: {}; draining", std::strerror(errno));
        close_listeners(listeners);
        return false;
      }
      listeners.push_back({l.gateway, engine::listener_key(gw), fd, l.address});
    }
  }
  // Every session costs two places in the store, plus one for the state. Checked before the
  // workers stop accepting (a few sessions may still arrive: checked again below).
  const auto active = static_cast<size_t>(std::max<int64_t>(engine.stats().sessions_active, 0));
  if (listeners.size() + 2 * active + 1 > st.fd_store_max) {
    log::warning(
        "restart: FileDescriptorStoreMax={} cannot hold {} listen sockets and {} sessions; "
        "draining instead",
        st.fd_store_max, listeners.size(), active);
    close_listeners(listeners);
    return false;
  }
  // From here this process no longer accepts: new connections queue in the listen sockets
  // (the kernel completes their handshakes) until the next process accepts them.
  std::vector<engine::SessionExport> sessions = engine.hand_over(kExportTimeout);
  std::vector<int> fds;
  const std::string lstate = handover::encode_listeners(listeners, fds);
  const std::string sstate = handover::encode_sessions(sessions, fds);
  auto take_back = [&](const std::string& why, size_t stored) {
    for (size_t i = 0; i < stored; ++i)
      remove_stored(fd_name(i));
    close_listeners(listeners);
    const size_t n = sessions.size();
    engine.import_sessions(std::move(sessions));
    // The workers' listeners stayed open through the export: accepting again now means the
    // drain that follows takes what queued meanwhile before it closes them.
    engine.resume_accepting();
    log::error("restart: {}; draining the {} sessions here", why, n);
    return false;
  };
  if (fds.size() + 1 > st.fd_store_max) {
    return take_back(fmt::format("FileDescriptorStoreMax={} cannot hold {} fds", st.fd_store_max,
                                 fds.size() + 1),
                     0);
  }
  StateHeader header;
  header.stored_wall_ns = wall_ns();
  header.listener_bytes = lstate.size();
  header.fd_count = static_cast<uint32_t>(fds.size());
  std::string state(reinterpret_cast<const char*>(&header), sizeof(header));
  state += lstate;
  state += sstate;
  const int memfd = state_memfd(state);
  if (memfd < 0) return take_back(fmt::format("memfd: {}", std::strerror(errno)), 0);
  size_t stored = 0;
  while (stored < fds.size() && store_fd(fds[stored], fd_name(stored)))
    ++stored;
  const bool ok = stored == fds.size() && store_fd(memfd, kStateName);
  ::close(memfd);
  if (!ok) return take_back("the fd store refused a file descriptor", stored);
  // systemd reads notify messages asynchronously: the barrier returns once it has processed
  // every one sent before it, so nothing is lost when this process exits right after.
  if (int r = sd_notify_barrier(0, 5000000); r < 0) {
    log::warning("restart: the fd store did not confirm ({}); the next process may miss sessions",
                 std::strerror(-r));
  }
  log::notice(
      "restart: {} listen sockets and {} sessions ({} fds, state {} bytes) stored with systemd "
      "in {} ms; exiting",
      listeners.size(), sessions.size(), fds.size() + 1, state.size(),
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                            started)
          .count());
  close_listeners(listeners);
  engine::close_fds(sessions);
  return true;
}

std::optional<Stored> take_stored() {
  char** names = nullptr;
  const int n = sd_listen_fds_with_names(1, &names);
  if (n <= 0) return std::nullopt;
  Stored out;
  int state_fd = -1;
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    const int fd = SD_LISTEN_FDS_START + i;
    const std::string name = names != nullptr && names[i] != nullptr ? names[i] : "";
    out.names.push_back(name);
    if (name == kStateName) {
      state_fd = fd;
    } else if (name.rfind("ringway-", 0) == 0) {
      const size_t index = std::strtoul(name.c_str() + 8, nullptr, 10);
      if (index < kMaxFds) {
        if (fds.size() <= index) fds.resize(index + 1, -1);
        if (fds[index] >= 0) ::close(fds[index]);
        fds[index] = fd;
      } else {
        ::close(fd);
      }
    } else {
      ::close(fd);  // not ours
    }
    std::free(names != nullptr ? names[i] : nullptr);
  }
  std::free(names);
  if (state_fd < 0) {
    log::error("restart: {} fds in the fd store but no state; closing them", n);
    handover::close_all(fds);
    return out;
  }
  std::string state;
  char buf[65536];
  for (off_t off = 0;;) {
    const ssize_t r = ::pread(state_fd, buf, sizeof(buf), off);
    if (r <= 0) break;
    state.append(buf, static_cast<size_t>(r));
    off += r;
  }
  ::close(state_fd);
  StateHeader header;
  if (state.size() >= sizeof(header)) std::memcpy(&header, state.data(), sizeof(header));
  if (state.size() < sizeof(header) || header.magic != kStateMagic ||
      state.size() - sizeof(header) < header.listener_bytes || header.fd_count > kMaxFds) {
    log::error("restart: the stored state is not one this version reads; starting without it");
    handover::close_all(fds);
    return out;
  }
  out.stored_wall_ns = header.stored_wall_ns;
  // An fd the state names but the store did not return (systemd refused or dropped it) stands
  // in as an unconnected socket: its session fails on its first operation and closes, instead
  // of the whole state being refused as malformed.
  fds.resize(std::max<size_t>(fds.size(), header.fd_count), -1);
  size_t missing = 0;
  for (auto& fd : fds) {
    if (fd >= 0) continue;
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ++missing;
  }
  auto listeners =
      handover::decode_listeners(state.substr(sizeof(header), header.listener_bytes), fds);
  auto sessions =
      handover::decode_sessions(state.substr(sizeof(header) + header.listener_bytes), fds);
  handover::close_all(fds);  // anything no record named
  if (listeners) {
    // A stand-in is no listen socket: dropped, so start() opens a new one for its gateway.
    for (auto& l : listeners.value()) {
      int accepting = 0;
      socklen_t len = sizeof(accepting);
      if (::getsockopt(l.fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting != 0) {
        out.listeners.push_back(std::move(l));
      } else {
        ::close(l.fd);
      }
    }
  }
  if (sessions) out.sessions = std::move(sessions.value());
  log::info("restart: {} fds from the fd store, state {} bytes: {} listen sockets, {} sessions", n,
            state.size(), out.listeners.size(), out.sessions.size());
  if (missing > 0) {
    log::error("restart: {} fds the state names were not in the fd store; their sessions close",
               missing);
  }
  if (!listeners || !sessions) {
    log::error("restart: the stored state does not decode ({}); what it names is closed",
               !listeners ? listeners.error().message : sessions.error().message);
  }
  return out;
}

void forget_stored(const Stored& stored) {
  // The store keeps a reference to every socket: left there, a closed session would never
  // really close, and the next restart would find it again.
  for (const auto& name : stored.names)
    remove_stored(name);
}

}  // namespace ringway::app::restart
