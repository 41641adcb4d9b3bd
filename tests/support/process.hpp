// The daemon under test as a child process: writes the config to a private temp directory,
// fork/execs RINGWAY_BIN with stderr captured to a file, waits (bounded) for the start-up lines
// and parses the gateways' and the admin endpoint's actual ports. The destructor SIGKILLs a
// process still running, so a failed test never leaves a daemon behind.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sockets.hpp"
#include "test_env.hpp"

namespace ringway::test {

// A private directory under $TMPDIR (or /tmp), removed with its files by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `text` to path()/name and returns the full path.
  std::string write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

std::string read_file(const std::string& path);

// Result of running a command to completion.
struct CommandResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  bool timed_out = false;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs argv (argv[0] a path) with a deadline; the child is killed at the deadline.
CommandResult run_command(const std::vector<std::string>& argv, Millis timeout);

class RingwayProcess {
 public:
  RingwayProcess() = default;
  ~RingwayProcess();
  RingwayProcess(const RingwayProcess&) = delete;
  RingwayProcess& operator=(const RingwayProcess&) = delete;

  // Writes `toml` and starts `RINGWAY_BIN -c FILE` plus `extra_args`. False (with error())
  // when the binary is missing or fork/exec failed.
  bool start(const std::string& toml, const std::vector<std::string>& extra_args = {});
  // Starts the daemon under RLIMIT_NOFILE = n (soft and hard), as `prlimit --nofile=n:n` would;
  // 0 (the default) inherits this process's limit. Call before start().
  void set_fd_limit(uint64_t n) { fd_limit_ = n; }
  // Waits until stderr shows the ready line, or the process exits, or the deadline.
  bool wait_ready(Millis timeout);

  pid_t pid() const { return pid_; }
  // The listening endpoint logged for a gateway ("default.tcp"); port 0 when not seen.
  Endpoint gateway(const std::string& id) const;
  uint16_t admin_port() const { return admin_port_; }
  const std::string& error() const { return error_; }
  std::string stderr_text() const;
  const std::string& config_path() const { return config_path_; }

  void signal(int sig) const;
  // Waits for exit; the exit code, or -1 if it did not exit in time (or died by a signal:
  // see term_signal()).
  std::optional<int> wait_exit(Millis timeout);
  int term_signal() const { return term_signal_; }
  bool running() const { return pid_ > 0 && !exited_; }
  // SIGKILL and reap (idempotent).
  void kill_now();

 private:
  void parse_startup_lines(const std::string& text);

  TempDir dir_;
  std::string config_path_;
  std::string stderr_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
  int term_signal_ = 0;
  std::map<std::string, Endpoint> gateways_;
  uint16_t admin_port_ = 0;
  uint64_t fd_limit_ = 0;
  std::string error_;
};

}  // namespace ringway::test
