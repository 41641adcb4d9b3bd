// Addresses: literal parsing and printing, getsockname/getpeername, and hostname resolution.
// Resolution runs in a network namespace of its own (created on a thread, gone when the thread
// ends), so a name that is not in /etc/hosts can never turn into a DNS packet leaving the host.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "net_test_util.hpp"
#include "ringway/net/address.hpp"
#include "ringway/net/listener.hpp"

namespace ringway::net {
namespace {

using testing::Fd;

TEST(SocketAddress, ParsesAndPrintsIpv4) {
  auto a = SocketAddress::parse("192.0.2.10", 8080);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->length, sizeof(sockaddr_in));
  EXPECT_EQ(a->port(), 8080);
  EXPECT_EQ(a->to_string(), "192.0.2.10:8080");
}

TEST(SocketAddress, ParsesAndPrintsV6LiteralsInBrackets) {
  auto a = SocketAddress::parse("2001:db8::1", 443);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->family(), AF_INET6);
  EXPECT_EQ(a->length, sizeof(sockaddr_in6));
  EXPECT_EQ(a->port(), 443);
  EXPECT_EQ(a->to_string(), "[2001:db8::1]:443");
  EXPECT_EQ(SocketAddress::parse("::", 0)->to_string(), "[::]:0");
}

TEST(SocketAddress, PrintsIpv4MappedAsIpv4) {
  auto a = SocketAddress::parse("::ffff:127.0.0.1", 5000);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family(), AF_INET6);
  EXPECT_EQ(a->to_string(), "127.0.0.1:5000");
}

TEST(SocketAddress, RejectsWhatIsNotALiteral) {
  for (const char* text : {"[::1]", "localhost", "1.2.3", "1.2.3.4:80", "", " 1.2.3.4",
                           "0123456789012345678901234567890123456789012345678901234567890"}) {
    SCOPED_TRACE(text);
    auto a = SocketAddress::parse(text, 80);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().code, EINVAL);
  }
  EXPECT_NE(SocketAddress::parse("[::1]", 80).error().message.find("'[::1]'"), std::string::npos);
}

TEST(SocketAddress, LocalAndPeerOfRealSockets) {
  auto listener = open_listener(SocketAddress::parse("127.0.0.1", 0).value(), {});
  ASSERT_TRUE(listener) << listener.error().message;
  Fd listen_fd(*listener);
  auto local = SocketAddress::local_of(listen_fd.get());
  ASSERT_TRUE(local) << local.error().message;
  EXPECT_NE(local->port(), 0) << "port 0 must have been replaced by the kernel's choice";
  EXPECT_EQ(local->to_string(), "127.0.0.1:" + std::to_string(local->port()));

  auto not_connected = SocketAddress::peer_of(listen_fd.get());
  ASSERT_FALSE(not_connected);
  EXPECT_EQ(not_connected.error().code, ENOTCONN);

  Fd client = testing::connect_to(*local);
  ASSERT_TRUE(client.valid()) << std::strerror(errno);
  auto peer = SocketAddress::peer_of(client.get());
  ASSERT_TRUE(peer) << peer.error().message;
  EXPECT_EQ(peer->to_string(), local->to_string());

  EXPECT_FALSE(SocketAddress::local_of(-1));
}

// Runs resolve() on a thread that first moves itself into a new, empty network namespace
// (network namespaces are per thread on Linux), so nothing it does can reach the network.
// nullopt when the namespace cannot be created (no CAP_SYS_ADMIN).
std::optional<Result<std::vector<SocketAddress>>> resolve_isolated(const std::string& host,
                                                                   uint16_t port) {
  std::optional<Result<std::vector<SocketAddress>>> result;
  std::thread worker([&] {
    if (::unshare(CLONE_NEWNET) != 0) return;
    result.emplace(resolve(host, port));
  });
  worker.join();
  return result;
}

TEST(Resolve, LiteralNeedsNoResolver) {
  auto r = resolve("::1", 9000);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(r->front().to_string(), "[::1]:9000");
}

TEST(Resolve, LocalhostInPrivateNetns) {
  auto r = resolve_isolated("localhost", 9000);
  if (!r) GTEST_SKIP() << "cannot create a network namespace to resolve in";
  ASSERT_TRUE(*r) << r->error().message;
  const auto& addresses = r->value();
  ASSERT_FALSE(addresses.empty());
  bool seen_v6 = false;
  for (size_t i = 0; i < addresses.size(); ++i) {
    SCOPED_TRACE(addresses[i].to_string());
    EXPECT_EQ(addresses[i].port(), 9000);
    if (addresses[i].family() == AF_INET6) seen_v6 = true;
    EXPECT_FALSE(seen_v6 && addresses[i].family() == AF_INET) << "IPv4 must come first";
    for (size_t j = 0; j < i; ++j) {
      EXPECT_NE(addresses[i].to_string(), addresses[j].to_string()) << "duplicate";
    }
  }
  // Whatever else /etc/hosts says, localhost is a loopback address.
  const bool has_loopback =
      std::any_of(addresses.begin(), addresses.end(), [](const SocketAddress& a) {
        return a.to_string() == "127.0.0.1:9000" || a.to_string() == "[::1]:9000";
      });
  EXPECT_TRUE(has_loopback);
}

// .invalid is reserved (RFC 6761) and never resolves; in the empty namespace the DNS step
// fails locally.
TEST(Resolve, UnknownNameInPrivateNetnsFailsNamingTheHost) {
  auto r = resolve_isolated("no-such-upstream.invalid", 9000);
  if (!r) GTEST_SKIP() << "cannot create a network namespace to resolve in";
  ASSERT_FALSE(*r);
  EXPECT_NE(r->error().message.find("cannot resolve host 'no-such-upstream.invalid': "),
            std::string::npos)
      << r->error().message;
  // Something after the host name says why.
  EXPECT_GT(r->error().message.size(),
            std::string("cannot resolve host 'no-such-upstream.invalid': ").size());
}

}  // namespace
}  // namespace ringway::net
