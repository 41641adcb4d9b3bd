// systemd notification (sd_notify): READY=1, STATUS=, STOPPING=1, watchdog pings. Every call is
// a no-op when NOTIFY_SOCKET is unset, so the daemon runs the same outside systemd.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace ringway::app::notify {

void ready();
void stopping();
// Reload: RELOADING=1 (the new process's READY=1 ends it), and MAINPID= to make the new
// process the unit's main process (needs NotifyAccess=all: both processes send).
void reloading();
void main_pid(int pid);
void status(std::string_view text);
// The watchdog interval systemd asked for (WatchdogSec), halved as sd_watchdog_enabled advises;
// nullopt when there is no watchdog.
std::optional<std::chrono::microseconds> watchdog_interval();
void watchdog_ping();

}  // namespace ringway::app::notify
