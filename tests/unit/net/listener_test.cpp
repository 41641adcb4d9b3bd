// Listen sockets on real loopback sockets: the seed page's keepalive options reach accepted
// sockets (IPv4, IPv6, dual-stack), options are applied at their state, failures close the fd.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "net_test_util.hpp"
#include "ringway/net/listener.hpp"
#include "ringway/net/socket_options.hpp"

namespace ringway::net {
namespace {

using config::SocketState;
using testing::Fd;

// The kernel's keepalive defaults in this network namespace: what a socket that nobody
// configured reads back.
struct OsDefaults {
  int idle, interval, probes;
};

std::optional<OsDefaults> os_defaults() {
  auto idle = testing::read_sysctl("/proc/sys/net/ipv4/tcp_keepalive_time");
  auto interval = testing::read_sysctl("/proc/sys/net/ipv4/tcp_keepalive_intvl");
  auto probes = testing::read_sysctl("/proc/sys/net/ipv4/tcp_keepalive_probes");
  if (!idle || !interval || !probes) return std::nullopt;
  return OsDefaults{*idle, *interval, *probes};
}

// Opens a listener on `bind_ip` with the seed page's four options, connects to it over
// `connect_ip`, and checks the accepted socket carries the listener's values while the plain
// client socket carries the kernel defaults: the values can only have come from the listener.
void expect_seed_keepalive_inherited(const char* bind_ip, const char* connect_ip) {
  const auto defaults = os_defaults();
  if (!defaults) GTEST_SKIP() << "cannot read /proc/sys/net/ipv4/tcp_keepalive_*";
  if (defaults->idle == 60 || defaults->interval == 20 || defaults->probes == 2) {
    GTEST_SKIP() << "the host's keepalive sysctls equal the seed values; inheritance would be "
                    "indistinguishable from the defaults";
  }

  auto bind_address = SocketAddress::parse(bind_ip, 0);
  ASSERT_TRUE(bind_address) << bind_address.error().message;
  const auto options = testing::seed_options();
  auto listener = open_listener(*bind_address, options);
  ASSERT_TRUE(listener) << listener.error().message;
  Fd listen_fd(*listener);

  auto local = SocketAddress::local_of(listen_fd.get());
  ASSERT_TRUE(local) << local.error().message;
  auto target = SocketAddress::parse(connect_ip, local->port());
  ASSERT_TRUE(target);
  Fd client = testing::connect_to(*target);
  ASSERT_TRUE(client.valid()) << "connect to " << target->to_string() << ": "
                              << std::strerror(errno);
  Fd accepted = testing::accept_within(listen_fd.get());
  ASSERT_TRUE(accepted.valid()) << "no connection accepted within the deadline";

  const auto inherited = read_keepalive(accepted.get());
  EXPECT_EQ(inherited.so_keepalive, 1);
  EXPECT_EQ(inherited.tcp_keepidle, 60);
  EXPECT_EQ(inherited.tcp_keepintvl, 20);
  EXPECT_EQ(inherited.tcp_keepcnt, 2);

  const auto plain = read_keepalive(client.get());
  EXPECT_EQ(plain.so_keepalive, 0);
  EXPECT_EQ(plain.tcp_keepidle, defaults->idle);
  EXPECT_EQ(plain.tcp_keepintvl, defaults->interval);
  EXPECT_EQ(plain.tcp_keepcnt, defaults->probes);

  // The accepted socket is the client's peer: its peer address is the client's local address,
  // printed as IPv4 even when a dual-stack listener sees it as ::ffff:127.0.0.1.
  auto peer = SocketAddress::peer_of(accepted.get());
  auto client_local = SocketAddress::local_of(client.get());
  ASSERT_TRUE(peer && client_local);
  EXPECT_EQ(peer->to_string(), client_local->to_string());
}

TEST(ListenerKeepalive, AcceptedSocketInheritsSeedOptionsOverIpv4) {
  expect_seed_keepalive_inherited("127.0.0.1", "127.0.0.1");
}

TEST(ListenerKeepalive, AcceptedSocketInheritsSeedOptionsOverIpv6) {
  if (!testing::ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback ([::1])";
  expect_seed_keepalive_inherited("::1", "::1");
}

TEST(ListenerKeepalive, DualStackIpv6ListenerReachedOverIpv4InheritsSeedOptions) {
  if (!testing::ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback ([::1])";
  expect_seed_keepalive_inherited("::", "127.0.0.1");
}

TEST(Listener, DualStackIsTheDefaultForTheIpv6Wildcard) {
  if (!testing::ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback ([::1])";
  auto listener = open_listener(SocketAddress::parse("::", 0).value(), {});
  ASSERT_TRUE(listener) << listener.error().message;
  Fd fd(*listener);
  EXPECT_EQ(testing::get_int_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY), 0);
}

// PREBIND means before bind(): IPV6_V6ONLY can only be changed on an unbound socket, so if it
// succeeds and takes effect (IPv4 is refused), it was applied before bind().
TEST(ListenerStates, PrebindIpv6OnlyIsAppliedBeforeBind) {
  if (!testing::ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback ([::1])";
  const config::SocketOption options[] = {
      testing::int_option("v6 only", IPPROTO_IPV6, IPV6_V6ONLY, 1, SocketState::Prebind)};
  auto listener = open_listener(SocketAddress::parse("::", 0).value(), options);
  ASSERT_TRUE(listener) << listener.error().message;
  Fd fd(*listener);
  EXPECT_EQ(testing::get_int_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY), 1);

  const uint16_t port = SocketAddress::local_of(fd.get())->port();
  Fd v4_client = testing::connect_to(SocketAddress::parse("127.0.0.1", port).value());
  EXPECT_FALSE(v4_client.valid()) << "an IPv6-only listener accepted an IPv4 connection";
  Fd v6_client = testing::connect_to(SocketAddress::parse("::1", port).value());
  EXPECT_TRUE(v6_client.valid()) << std::strerror(errno);
}

// BOUND means after bind(): the same option at STATE_BOUND is refused with EINVAL, because the
// kernel no longer lets a bound socket change IPV6_V6ONLY. The error names the state, the
// option and the listener; and the failed listener's fd is closed.
TEST(ListenerStates, BoundIpv6OnlyIsRefusedAfterBind) {
  if (!testing::ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback ([::1])";
  const config::SocketOption options[] = {
      testing::int_option("v6 only", IPPROTO_IPV6, IPV6_V6ONLY, 1, SocketState::Bound)};
  const int fds_before = testing::open_fd_count();
  auto listener = open_listener(SocketAddress::parse("::", 0).value(), options);
  ASSERT_FALSE(listener);
  EXPECT_EQ(listener.error().code, EINVAL);
  const std::string& message = listener.error().message;
  EXPECT_NE(message.find("listener [::]:0"), std::string::npos) << message;
  EXPECT_NE(message.find("STATE_BOUND"), std::string::npos) << message;
  EXPECT_NE(message.find("v6 only (IPPROTO_IPV6/IPV6_V6ONLY = level 41, name 26)"),
            std::string::npos)
      << message;
  EXPECT_EQ(testing::open_fd_count(), fds_before) << "the failed listener's fd leaked";
}

// BOUND is before listen() and LISTENING after it: TCP_FASTOPEN_CONNECT is accepted only on a
// socket in the CLOSE state (bound but not listening is still CLOSE) and refused with EINVAL
// once it listens.
TEST(ListenerStates, FastOpenShowsBoundIsBeforeListenAndListeningIsAfter) {
  const auto fastopen = testing::read_sysctl("/proc/sys/net/ipv4/tcp_fastopen");
  if (!fastopen || (*fastopen & 1) == 0) {
    GTEST_SKIP() << "net.ipv4.tcp_fastopen has no client bit: TCP_FASTOPEN_CONNECT is refused "
                    "in every state";
  }
  const auto address = SocketAddress::parse("127.0.0.1", 0).value();

  const config::SocketOption at_bound[] = {testing::int_option(
      "fastopen connect", IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1, SocketState::Bound)};
  auto bound = open_listener(address, at_bound);
  ASSERT_TRUE(bound) << bound.error().message;
  Fd bound_fd(*bound);
  EXPECT_EQ(testing::get_int_option(bound_fd.get(), IPPROTO_TCP, TCP_FASTOPEN_CONNECT), 1);

  const config::SocketOption at_listening[] = {testing::int_option(
      "fastopen connect", IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1, SocketState::Listening)};
  auto listening = open_listener(address, at_listening);
  ASSERT_FALSE(listening);
  EXPECT_EQ(listening.error().code, EINVAL);
  EXPECT_NE(listening.error().message.find("STATE_LISTENING"), std::string::npos)
      << listening.error().message;
}

// The state, not the position in the list, decides the order: the LISTENING value is listed
// first yet applied last, so it is the one the listener (and every accepted socket) ends up
// with. Applied in list order, the PREBIND value would win.
TEST(ListenerStates, ListeningValueOverridesPrebindValueWhateverTheListOrder) {
  const config::SocketOption options[] = {
      testing::int_option("late idle", IPPROTO_TCP, TCP_KEEPIDLE, 222, SocketState::Listening),
      testing::int_option("early idle", IPPROTO_TCP, TCP_KEEPIDLE, 111, SocketState::Prebind),
  };
  auto listener = open_listener(SocketAddress::parse("127.0.0.1", 0).value(), options);
  ASSERT_TRUE(listener) << listener.error().message;
  Fd fd(*listener);
  EXPECT_EQ(testing::get_int_option(fd.get(), IPPROTO_TCP, TCP_KEEPIDLE), 222);

  const uint16_t port = SocketAddress::local_of(fd.get())->port();
  Fd client = testing::connect_to(SocketAddress::parse("127.0.0.1", port).value());
  ASSERT_TRUE(client.valid()) << std::strerror(errno);
  Fd accepted = testing::accept_within(fd.get());
  ASSERT_TRUE(accepted.valid());
  EXPECT_EQ(read_keepalive(accepted.get()).tcp_keepidle, 222);
}

// SO_REUSEPORT is what lets every worker own a listen socket on the same port.
TEST(Listener, TwoListenersShareOnePort) {
  auto first = open_listener(SocketAddress::parse("127.0.0.1", 0).value(), {});
  ASSERT_TRUE(first) << first.error().message;
  Fd first_fd(*first);
  const uint16_t port = SocketAddress::local_of(first_fd.get())->port();
  auto second = open_listener(SocketAddress::parse("127.0.0.1", port).value(), {});
  ASSERT_TRUE(second) << second.error().message;
  Fd second_fd(*second);
  EXPECT_EQ(SocketAddress::local_of(second_fd.get())->port(), port);
}

// 192.0.2.1 (TEST-NET-1) is on no interface here, so bind() fails locally with EADDRNOTAVAIL;
// no packet is sent.
TEST(Listener, BindFailureNamesTheStepAndTheAddress) {
  const int fds_before = testing::open_fd_count();
  auto listener = open_listener(SocketAddress::parse("192.0.2.1", 8000).value(), {});
  ASSERT_FALSE(listener);
  EXPECT_EQ(listener.error().code, EADDRNOTAVAIL);
  EXPECT_EQ(listener.error().message,
            std::string("listener 192.0.2.1:8000: bind failed: ") + std::strerror(EADDRNOTAVAIL));
  EXPECT_EQ(testing::open_fd_count(), fds_before);
}

TEST(Listener, PrebindFailureClosesTheSocket) {
  const config::SocketOption options[] = {
      testing::int_option("bad idle", IPPROTO_TCP, TCP_KEEPIDLE, 0, SocketState::Prebind)};
  const int fds_before = testing::open_fd_count();
  auto listener = open_listener(SocketAddress::parse("127.0.0.1", 0).value(), options);
  ASSERT_FALSE(listener);
  EXPECT_EQ(listener.error().code, EINVAL);
  EXPECT_NE(listener.error().message.find("listener 127.0.0.1:0: STATE_PREBIND option"),
            std::string::npos)
      << listener.error().message;
  EXPECT_EQ(testing::open_fd_count(), fds_before);
}

// Downstream sockets get TCP_NODELAY like upstream ones, through the listener: a plain client
// socket reads 0, so a 1 on the accepted socket can only have come from the listener.
TEST(Listener, AcceptedSocketInheritsTcpNodelay) {
  auto listener = open_listener(SocketAddress::parse("127.0.0.1", 0).value(), {});
  ASSERT_TRUE(listener) << listener.error().message;
  Fd listen_fd(*listener);
  auto local = SocketAddress::local_of(listen_fd.get());
  ASSERT_TRUE(local) << local.error().message;
  Fd client = testing::connect_to(*local);
  ASSERT_TRUE(client.valid()) << std::strerror(errno);
  Fd accepted = testing::accept_within(listen_fd.get());
  ASSERT_TRUE(accepted.valid()) << "no connection accepted within the deadline";
  int value = -1;
  socklen_t len = sizeof(value);
  ASSERT_EQ(::getsockopt(accepted.get(), IPPROTO_TCP, TCP_NODELAY, &value, &len), 0);
  EXPECT_EQ(value, 1);
  len = sizeof(value);
  ASSERT_EQ(::getsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &value, &len), 0);
  EXPECT_EQ(value, 0);
}

// An explicit TCP_NODELAY = 0 in the gateway's options wins over the default.
TEST(Listener, ExplicitTcpNodelayOptionWins) {
  config::SocketOption off;
  off.description = "Nagle on";
  off.level = IPPROTO_TCP;
  off.name = TCP_NODELAY;
  off.value = int32_t{0};
  off.state = SocketState::Prebind;
  const config::SocketOption options[] = {off};
  auto listener = open_listener(SocketAddress::parse("127.0.0.1", 0).value(), options);
  ASSERT_TRUE(listener) << listener.error().message;
  Fd listen_fd(*listener);
  auto local = SocketAddress::local_of(listen_fd.get());
  ASSERT_TRUE(local);
  Fd client = testing::connect_to(*local);
  ASSERT_TRUE(client.valid()) << std::strerror(errno);
  Fd accepted = testing::accept_within(listen_fd.get());
  ASSERT_TRUE(accepted.valid());
  int value = -1;
  socklen_t len = sizeof(value);
  ASSERT_EQ(::getsockopt(accepted.get(), IPPROTO_TCP, TCP_NODELAY, &value, &len), 0);
  EXPECT_EQ(value, 0);
}

TEST(Listener, ListenerIsBlockingAndCloseOnExec) {
  auto listener = open_listener(SocketAddress::parse("127.0.0.1", 0).value(), {});
  ASSERT_TRUE(listener) << listener.error().message;
  Fd fd(*listener);
  EXPECT_NE(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_EQ(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK, 0);
}

}  // namespace
}  // namespace ringway::net
