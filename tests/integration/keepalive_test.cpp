// Keepalive on live sessions, with the seed page's config (the four socket options on the
// gateway, upstream tcpKeepalive 60/20/2) and two workers: the daemon's own /sockets report
// for sessions on BOTH workers, and an independent look with `ss -tnop` for keepalive timers.
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "fixture.hpp"
#include "json.hpp"
#include "netns.hpp"
#include "scripted_peer.hpp"

namespace ringway::test {
namespace {

constexpr const char* kUpstreamKeepalive =
    "{ keepaliveTime = 60, keepaliveInterval = 20, keepaliveProbes = 2 }";

// Checks one socket's report: SO_KEEPALIVE 1 and the 60/20/2 timers.
void expect_seed_keepalive(const Json& s, const std::string& what) {
  EXPECT_EQ(s["SO_KEEPALIVE"].num(), 1) << what;
  EXPECT_EQ(s["TCP_KEEPIDLE"].num(), 60) << what;
  EXPECT_EQ(s["TCP_KEEPINTVL"].num(), 20) << what;
  EXPECT_EQ(s["TCP_KEEPCNT"].num(), 2) << what;
}

class KeepaliveTest : public ProxyTest {
 protected:
  PeerHost upstream_;
  PeerHost client_;
};

TEST_F(KeepaliveTest, LiveSessionsOnBothWorkersCarryTheSeedOptions) {
  uint16_t port = upstream_.listen("127.0.0.1", PeerScript::Echo());
  GatewayConf gw;
  gw.socket_options = keepalive_socket_options(60, 20, 2);
  ASSERT_TRUE(start_proxy(make_config(
      {.workers = 2}, {gw},
      {UpstreamConf{.hosts = {{"127.0.0.1", port}}, .tcp_keepalive = kUpstreamKeepalive}})));
  // Open sessions one by one until /sockets shows sessions on worker 0 and worker 1 (the
  // kernel spreads connections over the SO_REUSEPORT listeners by hash; 64 is plenty).
  Json doc;
  std::set<int> workers;
  size_t opened = 0;
  for (; opened < 64 && workers.size() < 2; ++opened) {
    PeerScript s = PeerScript::Source(16, 80 + opened);
    s.fin_after_send = false;  // stay open
    size_t id = client_.connect(gateway(), s);
    ASSERT_TRUE(
        client_.wait([&](auto& rs) { return rs.size() > id && rs[id].bytes_received == 16; },
                     scaled(Millis(5000))));
    HttpResponse r = http_get(admin_port(), "/sockets", scaled(Millis(2000)));
    ASSERT_EQ(r.status, 200) << r.body;
    std::string why;
    auto parsed = Json::parse(r.body, &why);
    ASSERT_TRUE(parsed.has_value()) << why << "\n" << r.body;
    doc = *parsed;
    workers.clear();
    for (const Json& sess : doc["sessions"].items()) {
      workers.insert(static_cast<int>(sess["worker"].num()));
    }
  }
  ASSERT_EQ(workers, (std::set<int>{0, 1}))
      << "sessions seen on workers after " << opened << " connections";
  for (const Json& l : doc["listeners"].items()) {
    expect_seed_keepalive(l, "listener of worker " + std::to_string(int(l["worker"].num())));
  }
  EXPECT_EQ(doc["listeners"].items().size(), 2u);
  for (const Json& sess : doc["sessions"].items()) {
    std::string w = "worker " + std::to_string(int(sess["worker"].num()));
    expect_seed_keepalive(sess["downstream"], "downstream socket on " + w);
    expect_seed_keepalive(sess["upstream"], "upstream socket on " + w);
  }

  // Independently of the daemon's report: every established socket of the daemon that belongs
  // to a session (local port = the gateway's, or peer port = the echo upstream's) shows a
  // keepalive timer in `ss -o`.
  std::string ss = find_program("ss");
  if (ss.empty()) GTEST_SKIP() << "ss (iproute2) not installed; the /sockets part passed";
  CommandResult r = run_command({ss, "-tnopH"}, scaled(Millis(5000)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string pid_tag = "pid=" + std::to_string(proxy().pid()) + ",";
  std::string gw_port = ":" + std::to_string(gateway().port);
  std::string up_port = ":" + std::to_string(port);
  size_t checked = 0;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("ESTAB", 0) != 0 || line.find(pid_tag) == std::string::npos) continue;
    std::istringstream f(line);
    std::string state, recvq, sendq, local, peer;
    f >> state >> recvq >> sendq >> local >> peer;
    bool downstream = local.size() > gw_port.size() &&
                      local.compare(local.size() - gw_port.size(), gw_port.size(), gw_port) == 0;
    bool upstream = peer.size() > up_port.size() &&
                    peer.compare(peer.size() - up_port.size(), up_port.size(), up_port) == 0;
    if (!downstream && !upstream) continue;  // e.g. the admin connection
    ++checked;
    EXPECT_NE(line.find("timer:(keepalive,"), std::string::npos) << line;
  }
  EXPECT_EQ(checked, 2 * opened) << "daemon sockets found by ss:\n" << r.out;
  for (size_t i = 0; i < opened; ++i)
    client_.close(i);
  expect_no_leaks();
}

}  // namespace
}  // namespace ringway::test
