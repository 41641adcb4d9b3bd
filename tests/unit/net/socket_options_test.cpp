// Socket options: the tcpKeepalive expansion, which options a gateway and an upstream carry,
// applying one state at a time on a real socket, and the text of a refused option's error.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "net_test_util.hpp"
#include "ringway/net/socket_options.hpp"

namespace ringway::net {
namespace {

using config::SocketState;
using testing::Fd;

Fd tcp_socket() {
  return Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
}

config::TcpKeepalive keepalive(std::optional<uint32_t> time, std::optional<uint32_t> interval,
                               std::optional<uint32_t> probes) {
  config::TcpKeepalive k;
  k.keepalive_time_s = time;
  k.keepalive_interval_s = interval;
  k.keepalive_probes = probes;
  return k;
}

TEST(ExpandKeepalive, EveryFieldBecomesOnePrebindOptionAfterSoKeepalive) {
  const auto options = expand_keepalive(keepalive(60, 20, 2), "upstream default.echo");
  ASSERT_EQ(options.size(), 4u);
  const struct {
    int level, name, value;
    const char* description;
  } expected[] = {
      {SOL_SOCKET, SO_KEEPALIVE, 1, "upstream default.echo tcpKeepalive"},
      {IPPROTO_TCP, TCP_KEEPIDLE, 60, "upstream default.echo tcpKeepalive.keepaliveTime"},
      {IPPROTO_TCP, TCP_KEEPINTVL, 20, "upstream default.echo tcpKeepalive.keepaliveInterval"},
      {IPPROTO_TCP, TCP_KEEPCNT, 2, "upstream default.echo tcpKeepalive.keepaliveProbes"},
  };
  for (size_t i = 0; i < options.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(options[i].level, expected[i].level);
    EXPECT_EQ(options[i].name, expected[i].name);
    ASSERT_TRUE(std::holds_alternative<int32_t>(options[i].value));
    EXPECT_EQ(std::get<int32_t>(options[i].value), expected[i].value);
    EXPECT_EQ(options[i].state, SocketState::Prebind);
    EXPECT_EQ(options[i].description, expected[i].description);
    EXPECT_EQ(options[i].pos.line, 0u);  // generated, not a line of the file
  }
}

TEST(ExpandKeepalive, UnsetFieldsAreLeftToTheKernel) {
  const auto empty = expand_keepalive(keepalive({}, {}, {}), "x");
  ASSERT_EQ(empty.size(), 1u);  // presence alone: SO_KEEPALIVE=1
  EXPECT_EQ(empty[0].name, SO_KEEPALIVE);

  const auto only_probes = expand_keepalive(keepalive({}, {}, 5), "x");
  ASSERT_EQ(only_probes.size(), 2u);
  EXPECT_EQ(only_probes[1].name, TCP_KEEPCNT);
  EXPECT_EQ(std::get<int32_t>(only_probes[1].value), 5);
}

TEST(ListenerOptions, RawOptionsFirstThenTheKeepaliveExpansion) {
  config::Gateway gateway;
  gateway.metadata.name = "tcp";
  gateway.socket_options = {
      testing::int_option("rcvbuf", SOL_SOCKET, SO_RCVBUF, 65536, SocketState::Bound)};
  EXPECT_EQ(listener_options(gateway).size(), 1u);

  gateway.tcp_keepalive = keepalive(30, {}, {});
  const auto options = listener_options(gateway);
  ASSERT_EQ(options.size(), 3u);
  EXPECT_EQ(options[0].description, "rcvbuf");
  EXPECT_EQ(options[1].description, "gateway default.tcp tcpKeepalive");
  EXPECT_EQ(options[2].description, "gateway default.tcp tcpKeepalive.keepaliveTime");
}

TEST(UpstreamOptions, NoTcpKeepaliveMeansNoOptions) {
  config::Upstream upstream;
  upstream.metadata.name = "echo";
  EXPECT_TRUE(upstream_options(upstream).empty());
  upstream.tcp_keepalive = keepalive({}, 10, {});
  EXPECT_EQ(upstream_options(upstream).size(), 2u);
}

TEST(ApplySocketOptions, AppliesOnlyTheGivenStateInOrder) {
  Fd fd = tcp_socket();
  ASSERT_TRUE(fd.valid());
  const int default_idle = testing::get_int_option(fd.get(), IPPROTO_TCP, TCP_KEEPIDLE);
  const config::SocketOption options[] = {
      testing::int_option("keepalive", SOL_SOCKET, SO_KEEPALIVE, 1, SocketState::Prebind),
      testing::int_option("idle later", IPPROTO_TCP, TCP_KEEPIDLE, default_idle + 1,
                          SocketState::Bound),
      testing::int_option("cnt a", IPPROTO_TCP, TCP_KEEPCNT, 3, SocketState::Prebind),
      testing::int_option("cnt b", IPPROTO_TCP, TCP_KEEPCNT, 4, SocketState::Prebind),
  };
  ASSERT_TRUE(apply_socket_options(fd.get(), options, SocketState::Prebind));
  auto r = read_keepalive(fd.get());
  EXPECT_EQ(r.so_keepalive, 1);
  EXPECT_EQ(r.tcp_keepidle, default_idle) << "a STATE_BOUND option was applied at PREBIND";
  EXPECT_EQ(r.tcp_keepcnt, 4) << "options of one state must apply in list order";

  ASSERT_TRUE(apply_socket_options(fd.get(), options, SocketState::Bound));
  EXPECT_EQ(read_keepalive(fd.get()).tcp_keepidle, default_idle + 1);
}

TEST(ApplySocketOptions, RefusedOptionNamesDescriptionLevelNameAndErrno) {
  Fd fd = tcp_socket();
  ASSERT_TRUE(fd.valid());
  const config::SocketOption options[] = {
      testing::int_option("made-up option", SOL_SOCKET, 9999, 1, SocketState::Prebind)};
  auto r = apply_socket_options(fd.get(), options, SocketState::Prebind);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOPROTOOPT);
  EXPECT_EQ(r.error().message,
            std::string("setsockopt made-up option (SOL_SOCKET/name 9999 = level 1, name 9999) "
                        "failed: ") +
                std::strerror(ENOPROTOOPT));
}

TEST(ApplySocketOptions, StopsAtTheFirstRefusedOption) {
  Fd fd = tcp_socket();
  ASSERT_TRUE(fd.valid());
  const config::SocketOption options[] = {
      testing::int_option("zero idle", IPPROTO_TCP, TCP_KEEPIDLE, 0, SocketState::Prebind),
      testing::int_option("keepalive", SOL_SOCKET, SO_KEEPALIVE, 1, SocketState::Prebind),
  };
  auto r = apply_socket_options(fd.get(), options, SocketState::Prebind);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_NE(r.error().message.find("zero idle (IPPROTO_TCP/TCP_KEEPIDLE = level 6, name 4)"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(read_keepalive(fd.get()).so_keepalive, 0);
}

// bufValue goes to the kernel as raw bytes with their own length: a struct linger round-trips.
TEST(ApplySocketOptions, BufValueIsPassedAsRawBytes) {
  Fd fd = tcp_socket();
  ASSERT_TRUE(fd.valid());
  const linger value{1, 7};
  const config::SocketOption options[] = {testing::buf_option(
      "linger", SOL_SOCKET, SO_LINGER,
      std::string(reinterpret_cast<const char*>(&value), sizeof(value)), SocketState::Prebind)};
  ASSERT_TRUE(apply_socket_options(fd.get(), options, SocketState::Prebind));
  linger read{};
  socklen_t length = sizeof(read);
  ASSERT_EQ(getsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &read, &length), 0);
  EXPECT_EQ(read.l_onoff, 1);
  EXPECT_EQ(read.l_linger, 7);

  // One byte where the kernel wants an int: refused, not read past the buffer.
  const config::SocketOption short_int[] = {testing::buf_option(
      "one byte", IPPROTO_TCP, TCP_KEEPIDLE, std::string(1, '\x3c'), SocketState::Prebind)};
  auto r = apply_socket_options(fd.get(), short_int, SocketState::Prebind);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
}

TEST(ReadKeepalive, ReadsWhatWasSetIncludingUserTimeout) {
  Fd fd = tcp_socket();
  ASSERT_TRUE(fd.valid());
  const config::SocketOption options[] = {
      testing::int_option("ut", IPPROTO_TCP, TCP_USER_TIMEOUT, 12345, SocketState::Prebind)};
  ASSERT_TRUE(apply_socket_options(fd.get(), options, SocketState::Prebind));
  EXPECT_EQ(read_keepalive(fd.get()).tcp_user_timeout, 12345);
  EXPECT_EQ(read_keepalive(-1).so_keepalive, -1);  // unreadable reads as -1
}

TEST(StateName, SpellsStatesAsTheConfigDoes) {
  EXPECT_EQ(state_name(SocketState::Prebind), "STATE_PREBIND");
  EXPECT_EQ(state_name(SocketState::Bound), "STATE_BOUND");
  EXPECT_EQ(state_name(SocketState::Listening), "STATE_LISTENING");
}

}  // namespace
}  // namespace ringway::net
