// sd_notify wrappers (see notify.hpp). libsystemd does nothing when NOTIFY_SOCKET is unset.
#include "ringway/app/notify.hpp"

#include <systemd/sd-daemon.h>

#include <string>

namespace ringway::app::notify {

void ready() {
  sd_notify(0, "READY=1");
}
void stopping() {
  sd_notify(0, "STOPPING=1");
}

void reloading() {
  sd_notify(0, "RELOADING=1");
}
void main_pid(int pid) {
  const std::string message = "MAINPID=" + std::to_string(pid);
  sd_notify(0, message.c_str());
}

void status(std::string_view text) {
  std::string message = "STATUS=";
  message += text;
  sd_notify(0, message.c_str());
}

std::optional<std::chrono::microseconds> watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  // Ping at half the timeout so one late tick does not get the service killed.
  return std::chrono::microseconds(usec / 2);
}

void watchdog_ping() {
  sd_notify(0, "WATCHDOG=1");
}

}  // namespace ringway::app::notify
