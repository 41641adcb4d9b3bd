// `systemctl restart` without losing anything (see restart.hpp): at SIGTERM, when systemd's
// pending job for our unit is a restart, listen sockets and quiesced sessions go into the
// unit's fd store (FDSTORE=1), their state into a memfd stored beside them; the next process
// finds them in LISTEN_FDS/LISTEN_FDNAMES, resumes them, and removes them from the store.
#include "ringway/app/restart.hpp"

#include <sys/mman.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "ringway/app/handover.hpp"
#include "ringway/core/log.hpp"

namespace ringway::app::restart {
namespace {

constexpr const char* kStateName = "ringway-state";
constexpr std::chrono::milliseconds kExportTimeout{1000};

std::string fd_name(size_t i) {
  return fmt::format("ringway-{}", i);
}

// The unit's pending job type ("restart", "stop", ...) and FileDescriptorStoreMax, asked over
// the system bus. Empty job type when there is no job or no bus.
struct UnitState {
  std::string job_type;
  std::string why;  // when job_type is empty: what failed
  uint32_t fd_store_max = 0;
};

UnitState unit_state() {
  UnitState st;
  sd_bus* bus = nullptr;
  if (int r = sd_bus_open_system(&bus); r < 0) {
    st.why = fmt::format("no system bus: {}", std::strerror(-r));
    return st;
  }
  // PID 1 answers at once; a bus that does not must not hold up the drain.
  sd_bus_set_method_call_timeout(bus, 2000000);
  // Our unit, asked by pid (sd_pid_get_unit needs /proc/1, which ProtectProc=invisible hides).
  char* path = nullptr;
  {
    sd_bus_error e{};  // SD_BUS_ERROR_NULL (a C compound literal clang rejects in C++)
    sd_bus_message* m = nullptr;
    const int r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                     "org.freedesktop.systemd1.Manager", "GetUnitByPID", &e, &m,
                                     "u", static_cast<uint32_t>(::getpid()));
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

bool store_fd(int fd, const std::string& name) {
  const std::string msg = "FDSTORE=1\nFDNAME=" + name;
  return sd_pid_notify_with_fds(0, 0, msg.c_str(), &fd, 1) > 0;
}

}  // namespace

bool store_for_restart(const config::Config& running, engine::Engine& engine) {
  if (std::getenv("NOTIFY_SOCKET") == nullptr) return false;
  const UnitState st = unit_state();
  if (st.job_type != "restart") {
    log::info("SIGTERM: the unit's job is {}, not a restart: draining",
              st.job_type.empty() ? "unknown (" + st.why + ")" : "'" + st.job_type + "'");
    return false;
  }
  std::vector<engine::InheritedListener> listeners;
  for (const auto& l : engine.listeners()) {
    for (const auto& gw : running.gateways) {
      if (gw.id() == l.gateway) {
        listeners.push_back({l.gateway, engine::listener_key(gw), l.fd, l.address});
      }
    }
  }
  // Sessions need two fds each; if the store cannot take them all, restart the plain way.
  const size_t active = static_cast<size_t>(engine.stats().sessions_active);
  if (listeners.size() + 2 * active + 1 > st.fd_store_max) {
    log::warning(
        "restart: FileDescriptorStoreMax={} cannot hold {} listeners and {} sessions; "
        "draining instead",
        st.fd_store_max, listeners.size(), active);
    return false;
  }
  std::vector<int> fds;
  const std::string lstate = handover::encode_listeners(listeners, fds);
  // Store the listeners first: from here the sockets outlive this process.
  std::vector<engine::SessionExport> sessions = engine.hand_over(kExportTimeout);
  const std::string sstate = handover::encode_sessions(sessions, fds);
  std::string state;
  const uint64_t llen = lstate.size();
  state.append(reinterpret_cast<const char*>(&llen), sizeof(llen));
  state += lstate;
  state += sstate;
  const int memfd = ::memfd_create("ringway-restart", MFD_CLOEXEC);
  bool ok = memfd >= 0 &&
            ::write(memfd, state.data(), state.size()) == static_cast<ssize_t>(state.size());
  size_t stored = 0;
  for (size_t i = 0; ok && i < fds.size(); ++i) {
    ok = store_fd(fds[i], fd_name(i));
    stored += ok ? 1 : 0;
  }
  // The state goes last: a new process that finds it knows every fd it names is stored.
  if (ok) ok = store_fd(memfd, kStateName);
  if (memfd >= 0) ::close(memfd);
  if (!ok) {
    // Take everything back and drain as a stop would; remove what made it into the store so
    // the next process does not find half a state.
    for (size_t i = 0; i < stored; ++i) {
      const std::string msg = "FDSTOREREMOVE=1\nFDNAME=" + fd_name(i);
      sd_notify(0, msg.c_str());
    }
    log::error("restart: the fd store refused the sessions; draining them here");
    engine.import_sessions(std::move(sessions));
    engine.resume_accepting();  // the drain that follows accepts what is queued, then closes
    return false;
  }
  // systemd reads notify messages asynchronously and drops those whose sender has exited by
  // then: wait until it has processed every one of them before exiting.
  if (int r = sd_notify_barrier(0, 5000000); r < 0) {
    log::warning("restart: the fd store did not confirm ({}); the next process may miss sessions",
                 std::strerror(-r));
  }
  log::notice("restart: {} listen sockets and {} sessions stored with systemd; exiting",
              listeners.size(), sessions.size());
  engine::close_fds(sessions);
  return true;
}

std::optional<Stored> take_stored() {
  char** names = nullptr;
  const int n = sd_listen_fds_with_names(1, &names);
  if (n <= 0) return std::nullopt;
  std::vector<std::string> all;
  int state_fd = -1;
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    const int fd = SD_LISTEN_FDS_START + i;
    const std::string name = names != nullptr && names[i] != nullptr ? names[i] : "";
    all.push_back(name);
    if (name == kStateName) {
      state_fd = fd;
    } else if (name.rfind("ringway-", 0) == 0) {
      const size_t index = std::strtoul(name.c_str() + 8, nullptr, 10);
      if (fds.size() <= index) fds.resize(index + 1, -1);
      fds[index] = fd;
    } else {
      ::close(fd);  // not ours
    }
    std::free(names != nullptr ? names[i] : nullptr);
  }
  std::free(names);
  Stored out;
  out.names = std::move(all);
  if (state_fd < 0) {
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
  uint64_t llen = 0;
  if (state.size() >= sizeof(llen)) std::memcpy(&llen, state.data(), sizeof(llen));
  if (state.size() < sizeof(llen) + llen) {
    log::error("restart: the stored state is truncated; starting without it");
    handover::close_all(fds);
    return out;
  }
  auto listeners = handover::decode_listeners(state.substr(sizeof(llen), llen), fds);
  auto sessions = handover::decode_sessions(state.substr(sizeof(llen) + llen), fds);
  handover::close_all(fds);  // anything no record named
  if (listeners) out.listeners = std::move(listeners.value());
  if (sessions) out.sessions = std::move(sessions.value());
  log::info("restart: {} fds from the fd store, state {} bytes: {} listeners, {} sessions", n,
            state.size(), out.listeners.size(), out.sessions.size());
  if (!listeners || !sessions) {
    log::error(
        "restart: the stored state does not match the {} fds received ({}); what it "
        "names is closed",
        n, !listeners ? listeners.error().message : sessions.error().message);
  }
  return out;
}

void forget_stored(const Stored& stored) {
  // The store keeps a reference to every socket: left there, a closed session would never
  // really close, and the next restart would find it again.
  for (const auto& name : stored.names) {
    const std::string msg = "FDSTOREREMOVE=1\nFDNAME=" + name;
    sd_notify(0, msg.c_str());
  }
}

}  // namespace ringway::app::restart
