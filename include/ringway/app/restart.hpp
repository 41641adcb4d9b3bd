// Restart under systemd (`systemctl restart`): listeners and live sessions survive through the
// unit's file descriptor store (FileDescriptorStoreMax= in the unit). Outside systemd, or when
// the pending job is a stop, SIGTERM drains as before.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ringway/config/model.hpp"
#include "ringway/engine/engine.hpp"
#include "ringway/engine/handover.hpp"

namespace ringway::app::restart {

// The unit's ExecStop=+ hook (`ringway --before-stop $MAINPID`, run as root outside the
// sandbox, before systemd sends SIGTERM): asks PID 1 over its private socket whether the job is
// a restart and, if so, tells the main process with kHintSignal (sigqueue, the value being
// FileDescriptorStoreMax). Needed because a DynamicUser= process cannot use the system bus with
// dbus-daemon on systemd >= 250.4 (systemd issue 22737): it cannot ask itself. Always returns 0:
// a failed hook must not fail the stop; the main process then drains.
int before_stop(pid_t main_pid);

inline constexpr int kHintSignal = SIGUSR2;
struct Hint {
  uint32_t fd_store_max = 0;
  std::chrono::steady_clock::time_point at;
};
// The hook's message: nullopt unless `info` is kHintSignal queued by root (sigqueue).
std::optional<Hint> hint_from(const siginfo_t& info);

// At SIGTERM: if the job is a restart (the hook's fresh hint, else asked over the system bus)
// and `config_path` is valid for the next process, exports every session and stores listeners,
// sessions and a state memfd in the fd store. True when everything is stored (the caller stops
// its engine at once and exits); false: drain as for a stop (anything exported has been taken
// back; the log says why).
bool store_for_restart(const config::Config& running, const std::string& config_path,
                       engine::Engine& engine, const std::optional<Hint>& hint);

// What the previous process stored, from LISTEN_FDS/LISTEN_FDNAMES.
struct Stored {
  std::vector<engine::InheritedListener> listeners;
  std::vector<engine::SessionExport> sessions;
  std::vector<std::string> names;  // every fd name received, for forget_stored()
  int64_t stored_wall_ns = 0;      // when the previous process stored them (0: no state)
};
// At start-up: nullopt when systemd passed no fds.
std::optional<Stored> take_stored();
// Removes the received fds from the store (FDSTOREREMOVE=1) once they are resumed.
void forget_stored(const Stored& stored);

}  // namespace ringway::app::restart
