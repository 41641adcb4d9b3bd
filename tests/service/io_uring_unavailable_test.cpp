// When io_uring cannot be set up, the daemon exits 69 with a message that says why and what to
// change. Reproduced the way Docker's default profile does it: a seccomp filter that makes
// io_uring_setup fail with EPERM, installed in the child between fork and exec.
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "test_env.hpp"

namespace ringway::test {
namespace {

// Allows everything except io_uring_setup, which fails with EPERM (as under
// kernel.io_uring_disabled=2 or Docker's default seccomp profile). x86_64 and aarch64 only:
// elsewhere the test skips rather than guess syscall numbers.
bool install_filter() {
#if defined(__x86_64__)
  constexpr unsigned kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr unsigned kArch = AUDIT_ARCH_AARCH64;
#else
  return false;
#endif
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof(code) / sizeof(code[0])), code};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

TEST(IoUringUnavailable, ExitsSixtyNineAndSaysWhatToChange) {
  const std::string bin = ringway_bin();
  ASSERT_FALSE(bin.empty()) << "RINGWAY_BIN is not set";
  char dir_template[] = "/tmp/ringway-nouring.XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string config = dir + "/ringway.toml";
  const std::string err = dir + "/stderr";
  {
    std::ofstream out(config);
    out << R"toml([[gateways]]
metadata = { name = "tcp" }
bindAddress = "127.0.0.1"
bindPort = 0
tcpGateway.options.connectionLimit.maxActiveConnections = 10
[[gateways.tcpGateway.tcpHosts]]
name = "one"
destination.single.upstream = { name = "echo" }
[[upstreams]]
metadata = { name = "echo" }
static.hosts = [{ addr = "127.0.0.1", port = 9 }]
)toml";
  }

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* f = freopen(err.c_str(), "w", stderr);
    if (f == nullptr) _exit(90);
    if (!install_filter()) _exit(77);
    execl(bin.c_str(), bin.c_str(), "-c", config.c_str(), static_cast<char*>(nullptr));
    _exit(91);
  }
  int status = 0;
  // Bounded: the daemon must give up at start-up, not serve.
  const auto deadline = Clock::now() + scaled(Millis(10000));
  pid_t done = 0;
  while ((done = waitpid(pid, &status, WNOHANG)) == 0 && Clock::now() < deadline)
    usleep(20000);
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "the daemon kept running without io_uring";
  }
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "cannot install a seccomp filter here";
  std::stringstream text;
  text << std::ifstream(err).rdbuf();
  EXPECT_EQ(WEXITSTATUS(status), 69) << text.str();
  EXPECT_NE(text.str().find("kernel.io_uring_disabled"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("seccomp"), std::string::npos) << text.str();
  std::remove(err.c_str());
  std::remove(config.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace ringway::test
