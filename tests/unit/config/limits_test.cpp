// Values that would overflow, block a worker or fail every connection later are refused at
// load time, with line:col (issue 10): workers, drainTimeout and perWorkerBufferLimitBytes
// beyond their ranges, SO_LINGER with a timeout, IPv6 link-local addresses without a zone.
#include <gtest/gtest.h>

#include "config_test_util.hpp"

namespace ringway::config {
namespace {

using testing::errors;
using testing::load;
using Lines = std::vector<std::string>;

// A gateway and an upstream (lines 1..11); `settings` goes first when given, so line numbers
// in the expectations count from line 1 of `head`.
std::string config(std::string_view head, std::string_view gateway_extra = "",
                   std::string_view upstream_addr = "127.0.0.1",
                   std::string_view bind_address = "127.0.0.1") {
  std::string t(head);
  t += "[[gateways]]\nmetadata = { name = \"tcp\" }\nbindAddress = \"";
  t += bind_address;
  t += "\"\nbindPort = 8000\n";
  t += gateway_extra;
  t += "[gateways.tcpGateway.options.connectionLimit]\nmaxActiveConnections = 100\n"
       "[[gateways.tcpGateway.tcpHosts]]\ndestination.single.upstream = { name = \"echo\" }\n"
       "[[upstreams]]\nmetadata = { name = \"echo\" }\nstatic.hosts = [{ addr = \"";
  t += upstream_addr;
  t += "\", port = 9000 }]\n";
  return t;
}

TEST(Limits, WorkersBeyondAThousandAndTwentyFour) {
  auto r = load(config("[settings]\nworkers = 4294967295\n"));
  EXPECT_EQ(errors(r), (Lines{"test.toml:2:11: error: settings.workers: 4294967295 is outside "
                              "0..1024"}));
  EXPECT_TRUE(load(config("[settings]\nworkers = 1024\n")).ok());
}

TEST(Limits, DrainTimeoutBeyondAWeek) {
  auto r = load(config("[settings]\ndrainTimeout = \"2562047h\"\n"));
  EXPECT_EQ(errors(r), (Lines{"test.toml:2:16: error: settings.drainTimeout: \"2562047h\" is too "
                              "long; allowed: 0s to 604800s (7 days)"}));
  EXPECT_TRUE(load(config("[settings]\ndrainTimeout = \"168h\"\n")).ok());
  EXPECT_FALSE(load(config("[settings]\ndrainTimeout = \"168h1s\"\n")).ok());
}

TEST(Limits, BusyPollUpToOneSecond) {
  auto r = load(config("[settings]\nbusyPoll = \"2s\"\n"));
  EXPECT_EQ(errors(r), (Lines{"test.toml:2:12: error: settings.busyPoll: \"2s\" is too long; "
                              "allowed: 0s (off) to 1s"}));
  auto on = load(config("[settings]\nbusyPoll = \"2ms\"\n"));
  ASSERT_TRUE(on.ok());
  EXPECT_EQ(on.config->settings.busy_poll, std::chrono::milliseconds(2));
  EXPECT_TRUE(load(config("[settings]\nbusyPoll = \"1s\"\n")).ok());
  r = load(config("[settings]\nbusyPoll = 50\n"));
  EXPECT_EQ(errors(r), (Lines{"test.toml:2:12: error: settings.busyPoll: expected a duration "
                              "string such as \"60s\" or \"1m30s\", got an integer"}));
  auto zero = load(config("[settings]\nbusyPoll = \"0s\"\n"));
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero.config->settings.busy_poll, Duration::zero());
  auto off = load(config(""));
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off.config->settings.busy_poll, Duration::zero());
}

TEST(Limits, PerWorkerBufferLimitRange) {
  auto r = load(config("[settings]\nperWorkerBufferLimitBytes = 4294967296\n"));
  EXPECT_EQ(errors(r), (Lines{"test.toml:2:29: error: settings.perWorkerBufferLimitBytes: "
                              "4294967296 is outside 1048576..1073741824"}));
  r = load(config("[settings]\nperWorkerBufferLimitBytes = 1024\n"));
  EXPECT_EQ(errors(r), (Lines{"test.toml:2:29: error: settings.perWorkerBufferLimitBytes: 1024 "
                              "is outside 1048576..1073741824"}));
  auto ok = load(config("[settings]\nperWorkerBufferLimitBytes = 268435456\n"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.config->settings.per_worker_buffer_limit_bytes, 268435456u);
}

// A per-connection limit near 4 GiB is accepted (Envoy's field is a uint32) and must not wrap
// in the engine's arithmetic; the loader keeps it as given.
TEST(Limits, PerConnectionBufferLimitNearFourGiBLoads) {
  auto r = load(config("", "[gateways.options]\nperConnectionBufferLimitBytes = 4294967295\n"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->gateways[0].per_connection_buffer_limit_bytes, 4294967295u);
}

TEST(Limits, SoLingerWithATimeoutWouldBlockTheWorker) {
  // struct linger {1, 5}: base64 of 01 00 00 00 05 00 00 00.
  auto r = load(config("",
                       "[[gateways.options.socketOptions]]\nlevel = \"SOL_SOCKET\"\n"
                       "name = \"SO_LINGER\"\nbufValue = \"AQAAAAUAAAA=\"\n"));
  EXPECT_EQ(errors(r),
            (Lines{"test.toml:8:12: error: gateways[0].options.socketOptions[0].bufValue: "
                   "SO_LINGER {on, 5 s} would make every close() wait up to 5 s and block the "
                   "worker thread with all its sessions; allowed: off ({0, 0}, \"AAAAAAAAAAA=\") "
                   "or reset on close ({1, 0}, \"AQAAAAAAAAA=\")"}));
  // {1, 0} (reset on close) and {0, 0} are fine.
  EXPECT_TRUE(load(config("",
                          "[[gateways.options.socketOptions]]\nlevel = \"SOL_SOCKET\"\n"
                          "name = \"SO_LINGER\"\nbufValue = \"AQAAAAAAAAA=\"\n"))
                  .ok());
}

TEST(Limits, LinkLocalUpstreamWithoutZone) {
  auto r = load(config("", "", "fe80::1"));
  EXPECT_EQ(errors(r),
            (Lines{"test.toml:11:26: error: upstreams[0].static.hosts[0].addr: \"fe80::1\" is an "
                   "IPv6 link-local address, which needs a zone (an interface) that Ringway "
                   "cannot take; use a global or unique-local address, or a host name"}));
  EXPECT_TRUE(load(config("", "", "fd00::1")).ok());
}

TEST(Limits, LinkLocalBindAddress) {
  auto r = load(config("", "", "127.0.0.1", "fe80::1"));
  EXPECT_EQ(errors(r),
            (Lines{"test.toml:3:15: error: gateways[0].bindAddress: \"fe80::1\" is an IPv6 "
                   "link-local address, which needs a zone (an interface) that Ringway cannot "
                   "take; use a global or unique-local address, or a host name"}));
}

// tcpProxySettings.spliceMode (extension): Gloo-style enum values, NEVER by default.
TEST(Limits, SpliceModeValues) {
  auto r = load(config("",
                       "[gateways.tcpGateway.options.tcpProxySettings]\nspliceMode = "
                       "\"ALWAYS\"\n"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->gateways[0].tcp_proxy.splice_mode, SpliceMode::Always);
  auto d = load(config(""));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.config->gateways[0].tcp_proxy.splice_mode, SpliceMode::Never);
  auto bad = load(config("",
                         "[gateways.tcpGateway.options.tcpProxySettings]\nspliceMode = "
                         "\"sometimes\"\n"));
  EXPECT_EQ(errors(bad),
            (Lines{"test.toml:6:14: error: gateways[0].tcpGateway.options.tcpProxySettings."
                   "spliceMode: unknown splice mode \"sometimes\"; allowed: \"AUTO\", "
                   "\"ALWAYS\", \"NEVER\""}));
}

}  // namespace
}  // namespace ringway::config
