// Restart under systemd (`systemctl restart`): listeners and live sessions survive through the
// unit's file descriptor store (FileDescriptorStoreMax= in the unit). Outside systemd, or when
// the pending job is a stop, SIGTERM drains as before.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ringway/config/model.hpp"
#include "ringway/engine/engine.hpp"
#include "ringway/engine/handover.hpp"

namespace ringway::app::restart {

// At SIGTERM: if systemd's pending job for this unit is a restart (asked over the system bus),
// exports every session and stores listeners, sessions and a state memfd in the fd store.
// True when everything is stored (the caller exits); false: drain as for a stop (anything
// exported has been taken back).
bool store_for_restart(const config::Config& running, engine::Engine& engine);

// What the previous process stored, from LISTEN_FDS/LISTEN_FDNAMES.
struct Stored {
  std::vector<engine::InheritedListener> listeners;
  std::vector<engine::SessionExport> sessions;
  std::vector<std::string> names;  // every fd name received, for forget_stored()
};
// At start-up: nullopt when systemd passed no fds.
std::optional<Stored> take_stored();
// Removes the received fds from the store (FDSTOREREMOVE=1) once they are resumed.
void forget_stored(const Stored& stored);

}  // namespace ringway::app::restart
