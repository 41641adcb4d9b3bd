// Reload (SIGHUP) and its wire: the running process checks the new config, starts the binary on
// disk with a handover socket, gives it its listen sockets, and once the new process accepts,
// gives it every live session; then it exits. See README "Changing the config".
//
// Wire (a unix SOCK_SEQPACKET socketpair): each step is a "bundle": one message carrying a
// header and a memfd with the serialized state, then the step's fds in messages of at most
// kFdsPerMessage (SCM_RIGHTS). The state refers to fds by their index in the bundle, so
// per-direction pipe fds (splice mode) are just more indexes.
//   old -> new  Listeners   listener records + listen sockets
//   new -> old  Accepting   (value: the new pid) every worker accepts
//   old -> new  Sessions    session records + their sockets
//   new -> old  Done        (value: sessions imported)
//   either      Failed      the sender gives up; the old process keeps (or takes back) everything
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringway/config/model.hpp"
#include "ringway/core/result.hpp"
#include "ringway/engine/engine.hpp"
#include "ringway/engine/handover.hpp"

namespace ringway::app::handover {

enum class Step : uint32_t { Listeners = 1, Accepting = 2, Sessions = 3, Done = 4, Failed = 5 };

inline constexpr size_t kFdsPerMessage = 200;  // SCM_MAX_FD is 253

// A received or to-be-sent bundle.
struct Bundle {
  Step step = Step::Failed;
  uint64_t value = 0;
  std::string state;     // serialized records
  std::vector<int> fds;  // owned by the holder
};

Result<void> send_bundle(int sock, const Bundle& bundle);
// Waits up to `timeout` for the next bundle. An Error on timeout, EOF (peer gone) or garbage.
Result<Bundle> recv_bundle(int sock, std::chrono::milliseconds timeout);
void close_all(std::vector<int>& fds);

// Records <-> state (fds move into / out of the bundle's fd list).
std::string encode_listeners(const std::vector<engine::InheritedListener>& listeners,
                             std::vector<int>& fds);
Result<std::vector<engine::InheritedListener>> decode_listeners(const std::string& state,
                                                                std::vector<int>& fds);
std::string encode_sessions(const std::vector<engine::SessionExport>& sessions,
                            std::vector<int>& fds);
Result<std::vector<engine::SessionExport>> decode_sessions(const std::string& state,
                                                           std::vector<int>& fds);

// How this process was started: what a reload needs to start its successor.
struct ProcessInfo {
  std::string exe;                // resolved at start-up: a replaced binary is what runs next
  std::vector<std::string> argv;  // without any --handover-fd
  std::string config_path;
  int handover_fd = -1;  // set when this process was started by a reload
};

// The checks of `ringway --check` (loader, then every socket option tried on a scratch socket),
// every diagnostic logged as "<who>: ..."; if invalid, also "<path> is invalid ...; <outcome>".
bool config_is_valid(const std::string& path, std::string_view who, std::string_view outcome);

// The old side of a reload, on the main thread. Returns true when the new process took
// everything over (the caller exits at once), false when this process keeps running: the
// config was invalid (every diagnostic logged), the new process failed to start, or the
// handover failed midway (then the sessions are taken back and accepting resumes: this process
// goes on as if the reload had not been asked for).
bool reload(const ProcessInfo& self, const config::Config& running, engine::Engine& engine);

// The new side, before Engine::start: receives the listen sockets (empty when the old process
// sent none in time).
std::vector<engine::InheritedListener> receive_listeners(int sock);
// After Engine::start: tells the old process we accept, receives and imports its sessions,
// retires the replaced listeners, and answers Done. Returns the number imported.
size_t take_over_sessions(int sock, engine::Engine& engine);
// Tells the old process this one failed to start (it keeps running).
void report_failure(int sock);

}  // namespace ringway::app::handover
