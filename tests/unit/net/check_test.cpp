// --check's kernel trial: refused options are reported with their line:col and path, options are
// tried at their state, and the real bind port is never touched.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "net_test_util.hpp"
#include "ringway/net/check.hpp"

namespace ringway::net {
namespace {

using config::SocketState;
using testing::Fd;

config::Gateway gateway(const char* bind_address, uint16_t port = 8000) {
  config::Gateway g;
  g.metadata.name = "tcp";
  g.bind_address = bind_address;
  g.bind_port = port;
  g.pos = {3, 1};
  return g;
}

config::Upstream upstream(const char* addr) {
  config::Upstream u;
  u.metadata.name = "echo";
  u.hosts.push_back({addr, 9000, 1, {40, 15}});
  u.pos = {38, 1};
  return u;
}

std::string all(const config::Diagnostics& diagnostics) {
  std::string text;
  for (const auto& d : diagnostics.items())
    text += config::format(d) + "\n";
  return text;
}

TEST(CheckConfig, SeedConfigPasses) {
  config::Config config;
  config.gateways.push_back(gateway("127.0.0.1"));
  config.gateways[0].socket_options = testing::seed_options();
  config::TcpKeepalive keepalive;
  keepalive.keepalive_time_s = 60;
  keepalive.keepalive_interval_s = 20;
  keepalive.keepalive_probes = 2;
  config.upstreams.push_back(upstream("127.0.0.1"));
  config.upstreams[0].tcp_keepalive = keepalive;

  config::Diagnostics diagnostics("ringway.toml");
  check_config(config, diagnostics);
  EXPECT_TRUE(diagnostics.items().empty()) << all(diagnostics);
}

// A bindAddress that is not on this host must fail --check, not the start that follows a
// `systemctl restart` (the old daemon is already stopped by then). 192.0.2.1 is TEST-NET-1.
TEST(CheckConfig, BindAddressNotOnThisHostIsAnError) {
  config::Config config;
  config.gateways.push_back(gateway("192.0.2.1"));
  config::Diagnostics diagnostics("ringway.toml");
  check_config(config, diagnostics);
  EXPECT_EQ(all(diagnostics),
            "ringway.toml:3:1: error: gateways[0].bindAddress: cannot bind 192.0.2.1: Cannot "
            "assign requested address (the address is not on this host; add it to an "
            "interface, or set IP_FREEBIND at STATE_PREBIND)\n");
}

// IP_FREEBIND at PREBIND is how an operator binds an address that is not up yet: allowed.
TEST(CheckConfig, BindAddressNotOnThisHostPassesWithFreebind) {
  config::Config config;
  config.gateways.push_back(gateway("192.0.2.1"));
  config::SocketOption freebind;
  freebind.description = "bind before the address is up";
  freebind.level = IPPROTO_IP;
  freebind.name = IP_FREEBIND;
  freebind.value = int32_t{1};
  freebind.state = SocketState::Prebind;
  freebind.pos = {5, 1};
  config.gateways[0].socket_options.push_back(freebind);
  config::Diagnostics diagnostics("ringway.toml");
  check_config(config, diagnostics);
  EXPECT_TRUE(diagnostics.items().empty()) << all(diagnostics);
}

TEST(CheckConfig, RefusedOptionsAreReportedWithTheirPosition) {
  config::Config config;
  config.gateways.push_back(gateway("127.0.0.1"));
  config.gateways[0].socket_options = {
      testing::int_option("enable keep-alive", SOL_SOCKET, SO_KEEPALIVE, 1, SocketState::Prebind,
                          {10, 1}),
      testing::int_option("no such option", SOL_SOCKET, 9999, 1, SocketState::Prebind, {16, 1}),
      // TCP_KEEPIDLE wants an int: one byte is refused.
      testing::buf_option("idle as one byte", IPPROTO_TCP, TCP_KEEPIDLE, std::string(1, '\x3c'),
                          SocketState::Listening, {22, 1}),
  };
  config::Diagnostics diagnostics("ringway.toml");
  check_config(config, diagnostics);

  const auto& items = diagnostics.items();
  ASSERT_EQ(items.size(), 2u) << all(diagnostics);
  EXPECT_EQ(config::format(items[0]),
            std::string("ringway.toml:16:1: error: gateways[0].options.socketOptions[1]: the "
                        "kernel refused no such option (SOL_SOCKET/name 9999): ") +
                std::strerror(ENOPROTOOPT));
  EXPECT_EQ(config::format(items[1]),
            std::string("ringway.toml:22:1: error: gateways[0].options.socketOptions[2]: the "
                        "kernel refused idle as one byte (IPPROTO_TCP/TCP_KEEPIDLE): ") +
                std::strerror(EINVAL));
}

// IPV6_V6ONLY is fine before bind and refused after it, so the check must try each option at its
// own state, on a socket that really is bound.
TEST(CheckConfig, Ipv6OnlyIsTriedAtItsState) {
  if (!testing::ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback ([::1])";
  config::Config config;
  config.gateways.push_back(gateway("::"));
  config.gateways[0].socket_options = {
      testing::int_option("v6only early", IPPROTO_IPV6, IPV6_V6ONLY, 1, SocketState::Prebind,
                          {10, 1}),
      testing::int_option("v6only late", IPPROTO_IPV6, IPV6_V6ONLY, 1, SocketState::Bound, {16, 1}),
  };
  config::Diagnostics diagnostics("ringway.toml");
  check_config(config, diagnostics);
  ASSERT_EQ(diagnostics.items().size(), 1u) << all(diagnostics);
  EXPECT_EQ(diagnostics.items()[0].path, "gateways[0].options.socketOptions[1]");
  EXPECT_EQ(diagnostics.items()[0].pos.line, 16u);
  EXPECT_NE(diagnostics.items()[0].message.find("IPPROTO_IPV6/IPV6_V6ONLY"), std::string::npos);
}

// A port held by another socket (as the running daemon holds its own) does not matter: the
// check binds port 0. The holder has no SO_REUSEPORT, so a bind to its port would fail.
TEST(CheckConfig, NeverBindsTheConfiguredPort) {
  Fd holder(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(holder.valid());
  auto any_port = SocketAddress::parse("127.0.0.1", 0).value();
  ASSERT_EQ(::bind(holder.get(), any_port.get(), any_port.length), 0);
  ASSERT_EQ(::listen(holder.get(), 1), 0);
  const uint16_t port = SocketAddress::local_of(holder.get())->port();

  config::Config config;
  config.gateways.push_back(gateway("127.0.0.1", port));
  config.gateways[0].socket_options = testing::seed_options();
  config::Diagnostics diagnostics("ringway.toml");
  check_config(config, diagnostics);
  EXPECT_TRUE(diagnostics.items().empty()) << all(diagnostics);
}

TEST(CheckConfig, KeepaliveExtensionsAreReportedAtTheirTable) {
  config::Config config;
  config.gateways.push_back(gateway("127.0.0.1"));
  config::TcpKeepalive gateway_keepalive;
  gateway_keepalive.keepalive_probes = 200;  // the loader rejects this; check() must too
  gateway_keepalive.pos = {7, 1};
  config.gateways[0].tcp_keepalive = gateway_keepalive;

  config.upstreams.push_back(upstream("127.0.0.1"));
  config::TcpKeepalive upstream_keepalive;
  upstream_keepalive.keepalive_time_s = 40000;
  upstream_keepalive.pos = {44, 16};
  config.upstreams[0].tcp_keepalive = upstream_keepalive;

  config::Diagnostics diagnostics("ringway.toml");
  check_config(config, diagnostics);
  const auto& items = diagnostics.items();
  ASSERT_EQ(items.size(), 2u) << all(diagnostics);
  EXPECT_EQ(items[0].path, "gateways[0].options.tcpKeepalive.keepaliveProbes");
  EXPECT_EQ(items[0].pos.line, 7u);
  EXPECT_NE(items[0].message.find("(IPPROTO_TCP/TCP_KEEPCNT)"), std::string::npos);
  EXPECT_EQ(items[1].path, "upstreams[0].connectionConfig.tcpKeepalive.keepaliveTime");
  EXPECT_EQ(items[1].pos.line, 44u);
  EXPECT_EQ(items[1].pos.column, 16u);
  EXPECT_EQ(items[1].message,
            std::string("the kernel refused upstream default.echo tcpKeepalive.keepaliveTime "
                        "(IPPROTO_TCP/TCP_KEEPIDLE): ") +
                std::strerror(EINVAL));
}

TEST(CheckConfig, UnparseableBindAddressIsLeftToTheLoader) {
  config::Config config;
  config.gateways.push_back(gateway("not-an-address"));
  config.gateways[0].socket_options = {
      testing::int_option("no such option", SOL_SOCKET, 9999, 1, SocketState::Prebind, {16, 1})};
  config::Diagnostics diagnostics("ringway.toml");
  check_config(config, diagnostics);
  EXPECT_TRUE(diagnostics.items().empty()) << all(diagnostics);
}

}  // namespace
}  // namespace ringway::net
