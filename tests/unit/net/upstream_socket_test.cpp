// Upstream sockets: tcpKeepalive is on the socket before connect (so it covers SYN-SENT) and
// stays after; no tcpKeepalive means keepalive off; TCP_NODELAY always on.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

#include "net_test_util.hpp"
#include "ringway/net/listener.hpp"
#include "ringway/net/socket_options.hpp"
#include "ringway/net/upstream_socket.hpp"

namespace ringway::net {
namespace {

using testing::Fd;

config::Upstream upstream_with_keepalive() {
  config::Upstream upstream;
  upstream.metadata.name = "echo";
  config::TcpKeepalive keepalive;
  keepalive.keepalive_time_s = 60;
  keepalive.keepalive_interval_s = 20;
  keepalive.keepalive_probes = 2;
  upstream.tcp_keepalive = keepalive;
  return upstream;
}

void expect_keepalive_60_20_2(int fd) {
  const auto r = read_keepalive(fd);
  EXPECT_EQ(r.so_keepalive, 1);
  EXPECT_EQ(r.tcp_keepidle, 60);
  EXPECT_EQ(r.tcp_keepintvl, 20);
  EXPECT_EQ(r.tcp_keepcnt, 2);
}

void expect_keepalive_before_and_after_connect(const char* ip) {
  const auto options = upstream_options(upstream_with_keepalive());
  auto server = open_listener(SocketAddress::parse(ip, 0).value(), {});
  ASSERT_TRUE(server) << server.error().message;
  Fd server_fd(*server);
  auto target = SocketAddress::local_of(server_fd.get());
  ASSERT_TRUE(target);

  auto upstream = open_upstream_socket(target->family(), options);
  ASSERT_TRUE(upstream) << upstream.error().message;
  Fd fd(*upstream);
  {
    SCOPED_TRACE("before connect");
    EXPECT_FALSE(SocketAddress::peer_of(fd.get())) << "the socket is not connected yet";
    expect_keepalive_60_20_2(fd.get());
    EXPECT_EQ(testing::get_int_option(fd.get(), IPPROTO_TCP, TCP_NODELAY), 1);
  }
  ASSERT_EQ(::connect(fd.get(), target->get(), target->length), 0) << std::strerror(errno);
  Fd accepted = testing::accept_within(server_fd.get());
  ASSERT_TRUE(accepted.valid());
  {
    SCOPED_TRACE("after connect");
    expect_keepalive_60_20_2(fd.get());
    EXPECT_EQ(testing::get_int_option(fd.get(), IPPROTO_TCP, TCP_NODELAY), 1);
  }
  // Keepalive is per hop: the server side (a listener without options) has none.
  EXPECT_EQ(read_keepalive(accepted.get()).so_keepalive, 0);
}

TEST(UpstreamSocket, KeepaliveIsSetBeforeConnectAndKeptAfterIpv4) {
  expect_keepalive_before_and_after_connect("127.0.0.1");
}

TEST(UpstreamSocket, KeepaliveIsSetBeforeConnectAndKeptAfterIpv6) {
  if (!testing::ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback ([::1])";
  expect_keepalive_before_and_after_connect("::1");
}

TEST(UpstreamSocket, NoTcpKeepaliveMeansKeepaliveOff) {
  config::Upstream upstream;
  upstream.metadata.name = "plain";
  auto opened = open_upstream_socket(AF_INET, upstream_options(upstream));
  ASSERT_TRUE(opened) << opened.error().message;
  Fd fd(*opened);
  EXPECT_EQ(read_keepalive(fd.get()).so_keepalive, 0);
  EXPECT_EQ(testing::get_int_option(fd.get(), IPPROTO_TCP, TCP_NODELAY), 1);
  EXPECT_NE(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_EQ(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK, 0);
}

// An upstream socket is never bound or listening, so options of every state apply, in state
// order: the LISTENING value, listed first, is the one left on the socket.
TEST(UpstreamSocket, EveryStateAppliesInStateOrder) {
  const config::SocketOption options[] = {
      testing::int_option("late", IPPROTO_TCP, TCP_KEEPCNT, 7, config::SocketState::Listening),
      testing::int_option("early", IPPROTO_TCP, TCP_KEEPCNT, 5, config::SocketState::Prebind),
      testing::int_option("middle", SOL_SOCKET, SO_KEEPALIVE, 1, config::SocketState::Bound),
  };
  auto opened = open_upstream_socket(AF_INET, options);
  ASSERT_TRUE(opened) << opened.error().message;
  Fd fd(*opened);
  EXPECT_EQ(read_keepalive(fd.get()).tcp_keepcnt, 7);
  EXPECT_EQ(read_keepalive(fd.get()).so_keepalive, 1);
}

TEST(UpstreamSocket, RefusedOptionFailsAndClosesTheSocket) {
  config::Upstream upstream = upstream_with_keepalive();
  upstream.tcp_keepalive->keepalive_probes = 128;  // above Linux's 127
  const int fds_before = testing::open_fd_count();
  auto opened = open_upstream_socket(AF_INET, upstream_options(upstream));
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, EINVAL);
  EXPECT_NE(opened.error().message.find(
                "upstream socket: setsockopt upstream default.echo tcpKeepalive.keepaliveProbes "
                "(IPPROTO_TCP/TCP_KEEPCNT = level 6, name 6) failed"),
            std::string::npos)
      << opened.error().message;
  EXPECT_EQ(testing::open_fd_count(), fds_before);
}

}  // namespace
}  // namespace ringway::net
