// The admin endpoint of a daemon running the shipped config (conf/ringway.toml, only its ports
// changed), read the way an operator would with curl: /stats carries the gateway's active
// session gauge, /sockets shows the seed page's keepalive (SO_KEEPALIVE 1, TCP_KEEPIDLE 60,
// TCP_KEEPINTVL 20, TCP_KEEPCNT 2) on both sides of a live session, and /config is a config
// that loads back to the same effective config.
#include <gtest/gtest.h>

#include <regex>

#include "admin_client.hpp"
#include "json.hpp"
#include "scripted_peer.hpp"
#include "service_util.hpp"

namespace ringway::test {
namespace {

// conf/ringway.toml with the gateway and the admin endpoint on kernel-chosen ports and the
// upstream on the test's echo peer; everything else as shipped.
std::string shipped_config(uint16_t upstream_port, std::string* problem) {
  const std::string path = source_root() + "/conf/ringway.toml";
  std::string text = read_file(path);
  if (text.empty()) {
    *problem = "cannot read " + path + " (RINGWAY_SOURCE_ROOT)";
    return {};
  }
  const std::pair<std::regex, std::string> edits[] = {
      {std::regex(R"(bindPort = 8000)"), "bindPort = 0"},
      {std::regex(R"(bindPort = 9901)"), "bindPort = 0"},
      {std::regex(R"(port = 9000 \})"), "port = " + std::to_string(upstream_port) + " }"},
      {std::regex(R"(workers = 0 )"), "workers = 2 "},
  };
  for (const auto& [re, replacement] : edits) {
    if (!std::regex_search(text, re)) {
      *problem = path + " changed: the test's edit for a fixed port or workers no longer applies";
      return {};
    }
    text = std::regex_replace(text, re, replacement);
  }
  return text;
}

void expect_seed_keepalive(const Json& side, const std::string& what) {
  EXPECT_EQ(side["SO_KEEPALIVE"].num(), 1) << what;
  EXPECT_EQ(side["TCP_KEEPIDLE"].num(), 60) << what;
  EXPECT_EQ(side["TCP_KEEPINTVL"].num(), 20) << what;
  EXPECT_EQ(side["TCP_KEEPCNT"].num(), 2) << what;
}

class AdminServiceTest : public DaemonTest {
 protected:
  PeerHost upstream_;
};

TEST_F(AdminServiceTest, StatsSocketsAndConfigOfTheShippedConfig) {
  const uint16_t up_port = upstream_.listen("127.0.0.1", PeerScript::Echo());
  ASSERT_NE(up_port, 0);
  std::string problem;
  const std::string toml = shipped_config(up_port, &problem);
  ASSERT_TRUE(problem.empty()) << problem;
  ASSERT_TRUE(start(toml));
  const uint16_t admin = proxy_->admin_port();
  ASSERT_NE(admin, 0) << "no 'admin listening on' line";
  const Endpoint gw = proxy_->gateway("default.tcp");
  ASSERT_NE(gw.port, 0);

  // A live session, proven live by an echo.
  Fd session = connect_tcp(gw, scaled(Millis(2000)));
  ASSERT_TRUE(session.valid());
  const std::string ping = "admin";
  ASSERT_TRUE(write_all(session.get(), ping.data(), ping.size(), scaled(Millis(2000))));
  std::string echoed;
  ASSERT_TRUE(read_exact(session.get(), echoed, ping.size(), scaled(Millis(5000))));

  // /stats: the gauge counts the session.
  const auto stats = http_get(admin, "/stats", scaled(Millis(3000)));
  ASSERT_EQ(stats.status, 200);
  EXPECT_NE(stats.body.find("ringway_downstream_connections_active{gateway=\"default.tcp\"}"),
            std::string::npos)
      << stats.body.substr(0, 2000);
  EXPECT_EQ(metric_value(stats.body, "ringway_downstream_connections_active",
                         {{"gateway", "default.tcp"}}),
            1.0);

  // /sockets: both sides of the session carry the seed page's keepalive.
  const auto sockets = http_get(admin, "/sockets", scaled(Millis(5000)));
  ASSERT_EQ(sockets.status, 200);
  std::string error;
  const auto doc = Json::parse(sockets.body, &error);
  ASSERT_TRUE(doc.has_value()) << error << "\n" << sockets.body;
  const auto& sessions = (*doc)["sessions"].items();
  ASSERT_EQ(sessions.size(), 1u) << sockets.body;
  expect_seed_keepalive(sessions[0]["downstream"], "downstream side");
  expect_seed_keepalive(sessions[0]["upstream"], "upstream side");
  EXPECT_EQ(sessions[0]["downstream"]["peer"].str(),
            "127.0.0.1:" + std::to_string(local_port(session.get())));
  for (const Json& l : (*doc)["listeners"].items()) {
    expect_seed_keepalive(l, "listener " + l["address"].str());
  }

  // /config loads back: --check accepts it, and its effective config is the one running.
  const auto config = http_get(admin, "/config", scaled(Millis(3000)));
  ASSERT_EQ(config.status, 200);
  ASSERT_FALSE(config.body.empty());
  const std::string served = dir_.write("served.toml", config.body);
  const std::string original = dir_.write("original.toml", toml);
  const auto check = run_command({ringway_bin(), "--check", "-c", served}, scaled(Millis(10000)));
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err << "\n/config:\n" << config.body;
  const auto a =
      run_command({ringway_bin(), "--print-config", "-c", served}, scaled(Millis(10000)));
  const auto b =
      run_command({ringway_bin(), "--print-config", "-c", original}, scaled(Millis(10000)));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(a.out, b.out) << "/config does not load back to the running config";
}

}  // namespace
}  // namespace ringway::test
