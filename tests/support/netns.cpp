// Test network namespaces (see netns.hpp). Uses the `ip` tool, as an operator would.
#include "netns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "process.hpp"

namespace ringway::test {

std::string find_program(const std::string& name) {
  std::string path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string p = dir + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

static bool ip(const std::vector<std::string>& args, std::string* err = nullptr) {
  static const std::string bin = find_program("ip");
  std::vector<std::string> argv{bin};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = run_command(argv, scaled(Millis(10000)));
  if (r.exit_code != 0 && err != nullptr) {
    *err = "ip";
    for (const auto& a : args)
      *err += " " + a;
    *err += ": " + r.err;
  }
  return r.exit_code == 0;
}

std::unique_ptr<TestNetns> TestNetns::create(std::string* why_not) {
  if (::geteuid() != 0) {
    *why_not = "needs root (ip netns, veth)";
    return nullptr;
  }
  if (find_program("ip").empty()) {
    *why_not = "needs the ip tool (iproute2)";
    return nullptr;
  }
  static std::atomic<int> counter{0};
  int n = counter++;
  int pid = static_cast<int>(::getpid());
  std::unique_ptr<TestNetns> ns(new TestNetns());
  std::string tag = std::to_string(pid % 100000) + "x" + std::to_string(n % 100);
  ns->name_ = "ringway-it-" + tag;
  ns->outer_if_ = "rwo" + tag;  // interface names stay under 15 characters
  ns->inner_if_ = "rwi" + tag;
  // 10.213.A.B/30 with A and B from pid and counter: parallel runs get different subnets.
  int third = pid % 256;
  int fourth = (n % 64) * 4;
  std::string prefix = "10.213." + std::to_string(third) + ".";
  ns->outer_addr_ = prefix + std::to_string(fourth + 1);
  ns->inner_addr_ = prefix + std::to_string(fourth + 2);
  std::string err;
  bool ok =
      ip({"netns", "add", ns->name_}, &err) &&
      ip({"link", "add", ns->outer_if_, "type", "veth", "peer", "name", ns->inner_if_}, &err) &&
      ip({"link", "set", ns->inner_if_, "netns", ns->name_}, &err) &&
      ip({"addr", "add", ns->outer_addr_ + "/30", "dev", ns->outer_if_}, &err) &&
      ip({"link", "set", ns->outer_if_, "up"}, &err) &&
      ip({"-n", ns->name_, "addr", "add", ns->inner_addr_ + "/30", "dev", ns->inner_if_}, &err) &&
      ip({"-n", ns->name_, "link", "set", ns->inner_if_, "up"}, &err) &&
      ip({"-n", ns->name_, "link", "set", "lo", "up"}, &err);
  if (!ok) {
    *why_not = "cannot build the test namespace: " + err;
    return nullptr;  // the destructor removes what was created
  }
  return ns;
}

TestNetns::~TestNetns() {
  // Deleting one end of a veth deletes both; then the namespace itself.
  ip({"link", "del", outer_if_});
  ip({"netns", "del", name_});
}

bool TestNetns::set_inner_link(bool up) {
  return ip({"-n", name_, "link", "set", inner_if_, up ? "up" : "down"});
}

NetnsScope::NetnsScope(const std::string& netns_name) {
  home_fd_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int target = ::open(("/var/run/netns/" + netns_name).c_str(), O_RDONLY | O_CLOEXEC);
  ok_ = home_fd_ >= 0 && target >= 0 && ::setns(target, CLONE_NEWNET) == 0;
  if (target >= 0) ::close(target);
}

NetnsScope::~NetnsScope() {
  if (home_fd_ < 0) return;
  if (ok_) ::setns(home_fd_, CLONE_NEWNET);
  ::close(home_fd_);
}

}  // namespace ringway::test
