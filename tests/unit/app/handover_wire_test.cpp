// The session records' encoding across a reload: the real client named by a PROXY header
// travels with a session (so the access log stays right in the new process), and bundles from
// an older or newer Ringway still decode.
#include <gtest/gtest.h>
#include <unistd.h>

#include "ringway/app/handover.hpp"

namespace ringway::app::handover {
namespace {

net::SocketAddress address(const char* ip, uint16_t port) {
  return *net::SocketAddress::parse(ip, port);
}

std::vector<engine::SessionExport> two_sessions() {
  std::vector<engine::SessionExport> sessions(2);
  sessions[0].gateway = "default.tcp";
  sessions[0].dirs[0].pending = "abc";
  sessions[1].gateway = "default.tls";
  sessions[1].proxied = true;
  sessions[1].client_source = address("203.0.113.7", 51234);
  sessions[1].client_destination = address("2001:db8::1", 8443);
  return sessions;
}

TEST(HandoverWire, ProxiedClientTravelsWithTheSession) {
  std::vector<int> fds;
  const std::string state = encode_sessions(two_sessions(), fds);
  auto decoded = decode_sessions(state, fds);
  ASSERT_TRUE(decoded) << decoded.error().message;
  ASSERT_EQ(decoded->size(), 2u);
  EXPECT_FALSE((*decoded)[0].proxied);
  EXPECT_EQ((*decoded)[0].dirs[0].pending, "abc");
  EXPECT_TRUE((*decoded)[1].proxied);
  EXPECT_EQ((*decoded)[1].client_source.to_string(), "203.0.113.7:51234");
  EXPECT_EQ((*decoded)[1].client_destination.to_string(), "[2001:db8::1]:8443");
}

TEST(HandoverWire, OlderBundlesWithoutTheTrailerStillDecode) {
  std::vector<int> fds;
  const std::string full = encode_sessions(two_sessions(), fds);
  // The trailer: magic, one entry (index, tag, payload of two addresses). What an older
  // Ringway writes is everything before it.
  std::vector<engine::SessionExport> plain = two_sessions();
  plain[1].proxied = false;
  const std::string old = encode_sessions(plain, fds);
  ASSERT_GT(full.size(), old.size());
  const std::string without_trailer = old.substr(0, old.size() - 8);  // magic + zero count
  auto decoded = decode_sessions(without_trailer, fds);
  ASSERT_TRUE(decoded) << decoded.error().message;
  ASSERT_EQ(decoded->size(), 2u);
  EXPECT_FALSE((*decoded)[1].proxied);
  EXPECT_EQ((*decoded)[1].gateway, "default.tls");
  // An older reader stops after the records: the records' bytes are the same with a trailer.
  EXPECT_EQ(full.substr(0, without_trailer.size()), without_trailer);
}

TEST(HandoverWire, UnknownTrailerTagsAreSkipped) {
  std::vector<int> fds;
  std::vector<engine::SessionExport> plain = two_sessions();
  plain[1].proxied = false;
  std::string state = encode_sessions(plain, fds);
  state.resize(state.size() - 4);  // drop the zero entry count; append one unknown entry
  const auto put32 = [&](uint32_t v) { state.append(reinterpret_cast<const char*>(&v), 4); };
  put32(1);
  put32(0);
  state.push_back(static_cast<char>(99));
  const uint64_t len = 3;
  state.append(reinterpret_cast<const char*>(&len), 8);
  state += "xyz";
  auto decoded = decode_sessions(state, fds);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->size(), 2u);
  EXPECT_FALSE((*decoded)[0].proxied);
}

}  // namespace
}  // namespace ringway::app::handover
