// /proc readers for target measurement (see proc_stats.hpp).
#include "proc_stats.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

namespace ringway::load {
namespace {

// Reads a small /proc file whole; empty on failure.
std::string read_small_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string text;
  char buffer[4096];
  for (int i = 0; i < 64; ++i) {  // /proc status files are a few KiB; bound the loop anyway
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

// Fields of /proc/PID/stat after the command name, which may itself contain spaces and ')'.
std::vector<std::string> stat_fields(const std::string& text) {
  std::vector<std::string> fields;
  size_t close = text.rfind(')');
  if (close == std::string::npos) return fields;
  size_t i = close + 2;
  while (i < text.size()) {
    size_t space = text.find(' ', i);
    if (space == std::string::npos) space = text.size();
    fields.emplace_back(text.substr(i, space - i));
    i = space + 1;
  }
  return fields;
}

uint64_t status_kib(const std::string& status, const char* key) {
  const char* at = std::strstr(status.c_str(), key);
  if (at == nullptr) return 0;
  return std::strtoull(at + std::strlen(key), nullptr, 10);
}

uint64_t count_fds(int pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return 0;
  uint64_t count = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count;
}

// Sum of the first field of /proc/PID/task/*/schedstat: nanoseconds each live thread ran.
double thread_run_ns(const std::string& base) {
  std::string path = base + "/task";
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return 0;
  double total = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::string text = read_small_file(path + "/" + entry->d_name + "/schedstat");
    total += std::strtod(text.c_str(), nullptr);
  }
  ::closedir(dir);
  return total;
}

}  // namespace

double cpu_delta(const ProcessTreeSample& start, const ProcessTreeSample& end) {
  double ticks = end.cpu_s - start.cpu_s;
  double sched = end.cpu_sched_s - start.cpu_sched_s;
  return ticks > sched ? ticks : sched;
}

std::vector<int> process_tree(int pid) {
  std::unordered_multimap<int, int> children;
  if (DIR* dir = ::opendir("/proc")) {
    while (dirent* entry = ::readdir(dir)) {
      char* end = nullptr;
      long child = std::strtol(entry->d_name, &end, 10);
      if (*end != '\0' || child <= 0) continue;
      auto fields = stat_fields(read_small_file("/proc/" + std::string(entry->d_name) + "/stat"));
      // After the name: state, ppid, ...
      if (fields.size() > 1)
        children.emplace(std::atoi(fields[1].c_str()), static_cast<int>(child));
    }
    ::closedir(dir);
  }
  std::vector<int> tree{pid};
  for (size_t i = 0; i < tree.size(); ++i) {
    auto [from, to] = children.equal_range(tree[i]);
    for (auto it = from; it != to; ++it)
      tree.push_back(it->second);
  }
  return tree;
}

ProcessTreeSample sample_process_tree(int pid, bool with_pss, bool with_fds) {
  ProcessTreeSample sample;
  if (pid <= 0) return sample;
  static const double kTicks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  for (int member : process_tree(pid)) {
    std::string base = "/proc/" + std::to_string(member);
    auto fields = stat_fields(read_small_file(base + "/stat"));
    // Fields 14..17 of stat(5) (utime, stime, cutime, cstime) are at 11..14 after the name.
    // cutime/cstime hold children already reaped, so live children are never counted twice.
    if (fields.size() < 18) continue;
    auto field = [&fields](int f) { return std::strtod(fields[f].c_str(), nullptr); };
    double reaped_ticks = field(13) + field(14);
    sample.cpu_s += (field(11) + field(12) + reaped_ticks) / kTicks;
    sample.cpu_sched_s += thread_run_ns(base) / 1e9 + reaped_ticks / kTicks;
    sample.threads += std::atoi(fields[17].c_str());
    std::string status = read_small_file(base + "/status");
    sample.rss_kib += status_kib(status, "VmRSS:");
    sample.hwm_kib += status_kib(status, "VmHWM:");
    if (with_pss) sample.pss_kib += status_kib(read_small_file(base + "/smaps_rollup"), "Pss:");
    if (with_fds) sample.fds += count_fds(member);
    ++sample.processes;
  }
  sample.ok = sample.processes > 0;
  return sample;
}

bool reset_peak_rss(int pid) {
  bool all = true;
  for (int member : process_tree(pid)) {
    std::string path = "/proc/" + std::to_string(member) + "/clear_refs";
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "5", 1) != 1) all = false;
    if (fd >= 0) ::close(fd);
  }
  return all;
}

}  // namespace ringway::load
