// A private network namespace joined to the root namespace by a veth pair, for the tests that
// must make a peer silently disappear (keepalive). Addresses come from a /30 that exists only on
// this veth; nothing is routed anywhere else. Everything is removed by the destructor, also
// when the test fails.
#pragma once

#include <memory>
#include <string>

namespace ringway::test {

class TestNetns {
 public:
  // Creates the namespace and the link; nullptr with `why_not` set when this machine cannot
  // (not root, no `ip`, no veth support).
  static std::unique_ptr<TestNetns> create(std::string* why_not);
  ~TestNetns();
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

  const std::string& name() const { return name_; }
  const std::string& outer_addr() const { return outer_addr_; }  // root-namespace end
  const std::string& inner_addr() const { return inner_addr_; }  // inside the namespace
  // Takes the namespace's end of the veth down (or up): traffic stops without FIN or RST.
  bool set_inner_link(bool up);

 private:
  TestNetns() = default;
  std::string name_;
  std::string outer_if_;
  std::string inner_if_;
  std::string outer_addr_;
  std::string inner_addr_;
};

// Moves the calling thread into a namespace for its lifetime; sockets created meanwhile stay
// in that namespace after the thread leaves it.
class NetnsScope {
 public:
  explicit NetnsScope(const std::string& netns_name);
  ~NetnsScope();
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;
  bool ok() const { return ok_; }

 private:
  int home_fd_ = -1;
  bool ok_ = false;
};

// `name` resolved through PATH (or the sbin directories); "" when absent.
std::string find_program(const std::string& name);

}  // namespace ringway::test
