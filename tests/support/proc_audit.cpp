// /proc observers and the leak audit (see proc_audit.hpp).
#include "proc_audit.hpp"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "admin_client.hpp"

namespace ringway::test {

int fd_count(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

int64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  // Fields after the command (which may hold spaces, so find its closing parenthesis): state is
  // field 3, utime and stime are fields 14 and 15, in clock ticks.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  uint64_t utime = 0;
  uint64_t stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::set<uint64_t> socket_inodes(pid_t pid) {
  std::set<uint64_t> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[128];
    ssize_t n = ::readlink((dir + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    std::string t(target);
    if (t.rfind("socket:[", 0) == 0) out.insert(std::strtoull(t.c_str() + 8, nullptr, 10));
  }
  ::closedir(d);
  return out;
}

int close_wait_count(pid_t pid) {
  auto inodes = socket_inodes(pid);
  int count = 0;
  for (const char* table : {"tcp", "tcp6"}) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/net/" + table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
      std::istringstream f(line);
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout;
      uint64_t inode = 0;
      f >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
      if (state == "08" && inodes.count(inode) != 0) ++count;
    }
  }
  return count;
}

std::string audit_leaks(pid_t pid, int baseline_fds, uint16_t admin_port, Millis timeout) {
  int fds = -1;
  int close_wait = -1;
  std::optional<double> active, pipes_in_use, pipes_idle;
  int expected_fds = baseline_fds;
  bool clean = poll_until(
      [&] {
        fds = fd_count(pid);
        close_wait = close_wait_count(pid);
        bool gauges_ok = true;
        expected_fds = baseline_fds;
        if (admin_port != 0) {
          active = fetch_metric(admin_port, "ringway_downstream_connections_active");
          // Splicing directions hold pipes; once no session is open, none may be in use, and
          // the empty pipes a worker keeps for reuse (two fds each) are the only fds allowed
          // above the baseline.
          pipes_in_use = fetch_metric(admin_port, "ringway_splice_pipes_in_use");
          pipes_idle = fetch_metric(admin_port, "ringway_splice_pipes_idle");
          gauges_ok = active.has_value() && *active == 0 && pipes_in_use.has_value() &&
                      *pipes_in_use == 0 && pipes_idle.has_value();
          if (pipes_idle) expected_fds += 2 * static_cast<int>(*pipes_idle);
        }
        return fds == expected_fds && close_wait == 0 && gauges_ok;
      },
      timeout, Millis(50));
  if (clean) return "";
  auto show = [](const std::optional<double>& v) {
    return v.has_value() ? std::to_string(static_cast<int64_t>(*v)) : std::string("unreadable");
  };
  std::ostringstream msg;
  msg << "leak audit after " << timeout.count() << " ms: fds " << fds << " (expected "
      << expected_fds << ": baseline " << baseline_fds << " + 2 per idle pipe), CLOSE_WAIT sockets "
      << close_wait;
  if (admin_port != 0) {
    msg << ", downstream_connections_active " << show(active) << ", splice_pipes_in_use "
        << show(pipes_in_use) << ", splice_pipes_idle " << show(pipes_idle);
  }
  return msg.str();
}

}  // namespace ringway::test
