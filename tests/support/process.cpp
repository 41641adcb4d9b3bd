// The daemon under test as a child process (see process.hpp).
#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace ringway::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/ringway-it-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) != nullptr) path_ = buf.data();
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& text) const {
  std::string p = path_ + "/" + name;
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
  return p;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Forks and execs argv with stdout/stderr redirected to files; -1 on failure. A non-zero
// `fd_limit` becomes the child's RLIMIT_NOFILE, soft and hard (so it cannot raise it back).
static pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path,
                   const std::string& err_path, uint64_t fd_limit = 0) {
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  // Child: only async-signal-safe calls until exec.
  int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out < 0 || err < 0 || devnull < 0) ::_exit(126);
  ::dup2(devnull, 0);
  ::dup2(out, 1);
  ::dup2(err, 2);
  // The test process may block signals in its threads; the daemon must start clean.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (fd_limit != 0) {
    rlimit rl{fd_limit, fd_limit};
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::_exit(125);
  }
  ::execv(args[0], args.data());
  ::_exit(127);
}

CommandResult run_command(const std::vector<std::string>& argv, Millis timeout) {
  CommandResult r;
  TempDir dir;
  std::string out_path = dir.path() + "/stdout";
  std::string err_path = dir.path() + "/stderr";
  pid_t pid = spawn(argv, out_path, err_path);
  if (pid < 0) return r;
  int status = 0;
  bool done =
      poll_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout, Millis(5));
  if (!done) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    r.timed_out = true;
  }
  if (!r.timed_out && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

RingwayProcess::~RingwayProcess() {
  kill_now();
}

bool RingwayProcess::start(const std::string& toml, const std::vector<std::string>& extra_args) {
  std::string bin = ringway_bin();
  if (bin.empty() || ::access(bin.c_str(), X_OK) != 0) {
    error_ = "RINGWAY_BIN is not set or not executable: '" + bin + "' (run through meson test)";
    return false;
  }
  if (dir_.path().empty()) {
    error_ = "cannot create a temp directory";
    return false;
  }
  config_path_ = dir_.write("ringway.toml", toml);
  stderr_path_ = dir_.path() + "/stderr";
  std::vector<std::string> argv{bin, "-c", config_path_};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  pid_ = spawn(argv, dir_.path() + "/stdout", stderr_path_, fd_limit_);
  if (pid_ < 0) {
    error_ = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  return true;
}

std::string RingwayProcess::stderr_text() const {
  return stderr_path_.empty() ? std::string() : read_file(stderr_path_);
}

// Splits "127.0.0.1:41234" or "[::1]:41234" (followed by anything) into an Endpoint.
static bool parse_endpoint(const std::string& text, Endpoint& out) {
  std::string token = text.substr(0, text.find_first_of(" \t"));
  size_t colon = token.rfind(':');
  if (colon == std::string::npos || colon + 1 >= token.size()) return false;
  std::string host = token.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = std::atoi(token.c_str() + colon + 1);
  if (host.empty() || port <= 0 || port > 65535) return false;
  out = Endpoint{host, static_cast<uint16_t>(port)};
  return true;
}

void RingwayProcess::parse_startup_lines(const std::string& text) {
  // "ringway info: gateway default.tcp listening on 127.0.0.1:41234 (workers 2, ...)"
  // "ringway info: admin listening on 127.0.0.1:8081"
  static const std::string kListening = " listening on ";
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t at = line.find(kListening);
    if (at == std::string::npos) continue;
    Endpoint ep;
    if (!parse_endpoint(line.substr(at + kListening.size()), ep)) continue;
    size_t gw = line.rfind("gateway ", at);
    if (gw != std::string::npos) {
      gateways_[line.substr(gw + 8, at - gw - 8)] = ep;
    } else if (line.compare(at >= 5 ? at - 5 : 0, 5, "admin") == 0) {
      admin_port_ = ep.port;
    }
  }
}

// A line ending in the word "ready" (the daemon's last start-up line).
static bool has_ready_line(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 5 || line.compare(line.size() - 5, 5, "ready") != 0) continue;
    if (line.size() == 5) return true;
    char before = line[line.size() - 6];
    if (!std::isalnum(static_cast<unsigned char>(before)) && before != '_') return true;
  }
  return false;
}

bool RingwayProcess::wait_ready(Millis timeout) {
  if (pid_ <= 0) return false;
  bool ready = poll_until(
      [&] {
        if (has_ready_line(stderr_text())) return true;
        int status = 0;
        if (!exited_ && ::waitpid(pid_, &status, WNOHANG) == pid_) {
          exited_ = true;
          if (WIFEXITED(status)) exit_code_ = WEXITSTATUS(status);
          if (WIFSIGNALED(status)) term_signal_ = WTERMSIG(status);
        }
        return exited_;
      },
      timeout, Millis(10));
  std::string text = stderr_text();
  if (!ready || exited_ || !has_ready_line(text)) {
    error_ = exited_ ? "ringway exited during start-up (code " + std::to_string(exit_code_) + ")"
                     : "no ready line within " + std::to_string(timeout.count()) + " ms";
    return false;
  }
  parse_startup_lines(text);
  return true;
}

Endpoint RingwayProcess::gateway(const std::string& id) const {
  auto it = gateways_.find(id);
  return it != gateways_.end() ? it->second : Endpoint{};
}

void RingwayProcess::signal(int sig) const {
  if (pid_ > 0 && !exited_) ::kill(pid_, sig);
}

std::optional<int> RingwayProcess::wait_exit(Millis timeout) {
  if (pid_ <= 0) return std::nullopt;
  if (!exited_) {
    int status = 0;
    bool done =
        poll_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout, Millis(5));
    if (!done) return std::nullopt;
    exited_ = true;
    if (WIFEXITED(status)) exit_code_ = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) term_signal_ = WTERMSIG(status);
  }
  if (term_signal_ != 0) return std::nullopt;
  return exit_code_;
}

void RingwayProcess::kill_now() {
  if (pid_ <= 0 || exited_) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  exited_ = true;
  term_signal_ = SIGKILL;
}

}  // namespace ringway::test
