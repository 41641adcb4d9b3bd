// Which upstream and host a session reaches, through the real daemon (issue 11): weighted
// destinations and loadBalancingWeight (10,000 sessions within +-3 points of the weights),
// ringHash and maglev on the downstream source address (one source sticks to one host across
// 1,000 sessions; removing a host moves only the sources it had, plus maglev's few), failover
// priorities driven by health checks, active health checks (a backend that stops answering the
// check is marked unhealthy in time, gets no sessions, and returns), and outlier ejection of a
// refusing host.
//
// Every backend is an IdBackend: a session's client sends 'S' and reads back the backend's one
// id byte, so the client knows which host it reached; a health check sends "PING" and gets
// "PONG" (unless the backend is muted). Sources other than 127.0.0.1 come from binding the
// client socket to 127.0.X.Y (all of 127.0.0.0/8 is loopback).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "admin_client.hpp"
#include "fixture.hpp"
#include "proc_audit.hpp"

namespace ringway::test {
namespace {

// A backend on 127.0.0.1 that tells sessions apart from health checks by their first byte.
class IdBackend {
 public:
  explicit IdBackend(char id) : id_(id) {
    // SO_REUSEADDR from the start: accepted sockets inherit it, and so do their TIME_WAIT
    // remains, which then do not block listening on the port again after refuse(true).
    listener_ = listen_on(0);
    port_ = listener_.valid() ? local_port(listener_.get()) : 0;
    thread_ = std::thread([this] { run(); });
  }
  ~IdBackend() {
    stop_.store(true);
    thread_.join();
  }
  IdBackend(const IdBackend&) = delete;
  IdBackend& operator=(const IdBackend&) = delete;

  uint16_t port() const { return port_; }
  char id() const { return id_; }
  // Muted: checks get no answer (the connection is closed after their payload).
  void mute(bool on) { muted_.store(on); }
  int64_t sessions() const { return sessions_.load(); }
  int64_t checks() const { return checks_.load(); }
  // Refusing: the listener is closed (connects get RST) until refuse(false) listens again on
  // the same port.
  void refuse(bool on) { refuse_wanted_.store(on); }
  bool refusing() const { return refusing_.load(); }

 private:
  void run() {
    while (!stop_.load()) {
      const bool want_refuse = refuse_wanted_.load();
      if (want_refuse && listener_.valid()) {
        listener_.reset();
        refusing_.store(true);
      } else if (!want_refuse && !listener_.valid()) {
        listener_ = listen_on(port_);
        refusing_.store(!listener_.valid());
      }
      if (!listener_.valid()) {
        std::this_thread::sleep_for(Millis(5));
        continue;
      }
      pollfd p{listener_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      Fd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c.valid()) continue;
      pollfd q{c.get(), POLLIN, 0};
      char first = 0;
      if (::poll(&q, 1, 2000) <= 0 || ::recv(c.get(), &first, 1, 0) != 1) continue;
      if (first == 'S') {
        sessions_.fetch_add(1);
        [[maybe_unused]] ssize_t n = ::send(c.get(), &id_, 1, MSG_NOSIGNAL);
      } else {
        // The rest of "PING" is read before answering: closing with unread bytes would send
        // RST, which could reach the checker before it read "PONG".
        char rest[3];
        size_t got = 0;
        while (got < sizeof(rest) && ::poll(&q, 1, 500) > 0) {
          const ssize_t n = ::recv(c.get(), rest + got, sizeof(rest) - got, 0);
          if (n <= 0) break;
          got += static_cast<size_t>(n);
        }
        checks_.fetch_add(1);
        if (!muted_.load()) [[maybe_unused]]
          ssize_t n = ::send(c.get(), "PONG", 4, MSG_NOSIGNAL);
      }
    }
  }
  static Fd listen_on(uint16_t port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::listen(fd.get(), 1024) != 0) {
      return Fd();
    }
    return fd;
  }

  char id_;
  uint16_t port_ = 0;
  Fd listener_;
  std::atomic<bool> stop_{false}, muted_{false}, refuse_wanted_{false}, refusing_{false};
  std::atomic<int64_t> sessions_{0}, checks_{0};
  std::thread thread_;
};

// One session from `source` (an IPv4 literal in 127.0.0.0/8): the id byte of the backend it
// reached, or 0 when the proxy closed it without one.
char session_via(const Endpoint& gw, const std::string& source = "127.0.0.1") {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &src.sin_addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) return 0;
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(gw.port);
  ::inet_pton(AF_INET, gw.host.c_str(), &dst.sin_addr);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) != 0) return 0;
  if (!write_all(fd.get(), "S", 1, scaled(Millis(2000)))) return 0;
  pollfd p{fd.get(), POLLIN, 0};
  char id = 0;
  if (::poll(&p, 1, static_cast<int>(scaled(Millis(3000)).count())) <= 0) return 0;
  if (::recv(fd.get(), &id, 1, 0) != 1) return 0;
  return id;
}

std::string source_address(int i) {
  return "127.0." + std::to_string(1 + i / 250) + "." + std::to_string(1 + i % 250);
}

std::string host_key(const IdBackend& b) {
  return "127.0.0.1:" + std::to_string(b.port());
}

std::string settings_toml(int workers) {
  return "[settings]\nworkers = " + std::to_string(workers) +
         "\ndrainTimeout = \"5s\"\nadmin = { bindAddress = \"127.0.0.1\", bindPort = 0 }\n\n";
}

std::string gateway_toml(const std::string& name, const std::string& destination,
                         int max_connect_attempts = 1) {
  std::ostringstream t;
  t << "[[gateways]]\nmetadata = { name = \"" << name << "\", namespace = \"default\" }\n"
    << "bindAddress = \"127.0.0.1\"\nbindPort = 0\n"
    << "[gateways.tcpGateway.options.tcpProxySettings]\nmaxConnectAttempts = "
    << max_connect_attempts << "\n"
    << "[gateways.tcpGateway.options.connectionLimit]\nmaxActiveConnections = 10000\n"
    << "[[gateways.tcpGateway.tcpHosts]]\nname = \"" << name << "-route\"\n"
    << destination << "\n\n";
  return t.str();
}

// `hosts`: "{ addr = ..., port = ... }" entries; `extra`: raw TOML after static.hosts.
std::string upstream_toml(const std::string& name, const std::vector<const IdBackend*>& hosts,
                          const std::string& extra = "",
                          const std::vector<uint32_t>& weights = {}) {
  std::ostringstream t;
  t << "[[upstreams]]\nmetadata = { name = \"" << name << "\", namespace = \"default\" }\n"
    << "static.hosts = [";
  for (size_t i = 0; i < hosts.size(); ++i) {
    t << (i ? ", " : " ") << "{ addr = \"127.0.0.1\", port = " << hosts[i]->port();
    if (i < weights.size()) t << ", loadBalancingWeight = " << weights[i];
    t << " }";
  }
  t << " ]\n" << extra << "\n";
  return t.str();
}

std::map<std::string, std::string> host_labels(const std::string& upstream, const IdBackend& b) {
  return {{"upstream", "default." + upstream}, {"host", host_key(b)}};
}

class HostChoiceTest : public ProxyTest {};

// destination.multi 25/75 between upstream `a` (one host) and `b` (two hosts with
// loadBalancingWeight 1 and 2): expected shares 25 %, 25 %, 50 %.
TEST_F(HostChoiceTest, WeightedDestinationsSplitTenThousandSessions) {
  IdBackend a('a'), b1('1'), b2('2');
  const std::string toml =
      settings_toml(2) +
      gateway_toml("tcp",
                   "destination.multi.destinations = [\n"
                   "  { weight = 25, destination.upstream = { name = \"a\" } },\n"
                   "  { weight = 75, destination.upstream = { name = \"b\" } },\n]") +
      upstream_toml("a", {&a}) + upstream_toml("b", {&b1, &b2}, "", {1, 2});
  ASSERT_TRUE(start_proxy(toml));
  constexpr int kSessions = 10000;
  std::map<char, int> got;
  const auto start = Clock::now();
  const auto deadline = start + scaled(Millis(120000));
  int done = 0;
  for (; done < kSessions && Clock::now() < deadline; ++done)
    ++got[session_via(gateway())];
  const double secs = ms_since(start) / 1000.0;
  ASSERT_EQ(done, kSessions) << "load loop hit its deadline";
  note("sessions_per_second", kSessions / secs);
  EXPECT_EQ(got[0], 0) << "sessions that reached no backend";
  const std::pair<char, double> expected[] = {{'a', 25.0}, {'1', 25.0}, {'2', 50.0}};
  for (const auto& [id, pct] : expected) {
    const double measured = 100.0 * got[id] / kSessions;
    note(std::string("percent_to_") + id, measured);
    EXPECT_NEAR(measured, pct, 3.0) << "backend " << id;
  }
  expect_no_leaks();
}

// Records which backend each of `sources` reaches (one session each).
std::map<std::string, char> map_sources(const Endpoint& gw, int sources) {
  std::map<std::string, char> m;
  for (int i = 0; i < sources; ++i)
    m[source_address(i)] = session_via(gw, source_address(i));
  return m;
}

class HashTest : public HostChoiceTest, public testing::WithParamInterface<std::string> {};

TEST_P(HashTest, SourceSticksAndRemovingAHostMovesOnlyItsSources) {
  const std::string policy = GetParam();
  const std::string lb = policy == "ringHash"
                             ? "loadBalancerConfig.ringHash.ringHashConfig = { minimumRingSize = "
                               "1024 }\n"
                             : "loadBalancerConfig.maglev = {}\n";
  IdBackend b1('1'), b2('2'), b3('3'), b4('4');
  const std::string dest = "destination.single.upstream = { name = \"hashed\" }";
  ASSERT_TRUE(start_proxy(settings_toml(2) + gateway_toml("tcp", dest) +
                          upstream_toml("hashed", {&b1, &b2, &b3, &b4}, lb)));

  // Stickiness: 20 sources x 50 sessions, each source always on one host (both workers).
  constexpr int kSticky = 20, kRepeat = 50;
  int moved_sessions = 0;
  std::map<char, int> owners;
  for (int i = 0; i < kSticky; ++i) {
    const char first = session_via(gateway(), source_address(i));
    ASSERT_NE(first, 0);
    ++owners[first];
    for (int r = 1; r < kRepeat; ++r) {
      if (session_via(gateway(), source_address(i)) != first) ++moved_sessions;
    }
  }
  note("sticky_sessions", kSticky * kRepeat);
  note("sessions_off_their_host", moved_sessions);
  note("hosts_used_by_20_sources", static_cast<double>(owners.size()));
  EXPECT_EQ(moved_sessions, 0);
  EXPECT_GE(owners.size(), 2U) << "every source hashed to one host: no spreading";

  // Removal: the same backends, b4 left out of a second config.
  constexpr int kSources = 400;
  const auto before = map_sources(gateway(), kSources);
  expect_no_leaks();
  proxy_.reset();
  ASSERT_TRUE(start_proxy(settings_toml(2) + gateway_toml("tcp", dest) +
                          upstream_toml("hashed", {&b1, &b2, &b3}, lb)));
  const auto after = map_sources(gateway(), kSources);
  int on_removed = 0, moved_others = 0, moved = 0;
  for (const auto& [src, id] : before) {
    ASSERT_NE(id, 0);
    ASSERT_NE(after.at(src), 0);
    if (id == '4') ++on_removed;
    if (after.at(src) != id) {
      ++moved;
      if (id != '4') ++moved_others;
    }
  }
  note("sources", kSources);
  note("percent_on_removed_host", 100.0 * on_removed / kSources);
  note("percent_moved", 100.0 * moved / kSources);
  note("percent_moved_not_on_removed_host", 100.0 * moved_others / kSources);
  // The sources of the removed host must move; of the others, a ring moves none, and Maglev's
  // table rebuild a few (its paper: a small fraction, well under 1/N).
  EXPECT_EQ(moved, on_removed + moved_others);
  if (policy == "ringHash") {
    EXPECT_EQ(moved_others, 0);
  } else {
    EXPECT_LE(moved_others * 4, kSources / 4) << "maglev moved more than 1/N of the others";
  }
  // About 1/N of the sources (N = 4): the removed host's share, which varies with how 400
  // sources and the hosts' points fall (one binomial standard deviation is 2.2 points; the
  // bound leaves four).
  EXPECT_LE(100.0 * moved / kSources, 25.0 + 9.0);
  expect_no_leaks();
}

INSTANTIATE_TEST_SUITE_P(Policies, HashTest, testing::Values("ringHash", "maglev"),
                         [](const auto& p) { return p.param; });

constexpr const char* kCheck =
    "[[upstreams.healthChecks]]\ntimeout = \"300ms\"\ninterval = \"%I\"\n"
    "unhealthyThreshold = %U\nhealthyThreshold = %H\n"
    "tcpHealthCheck = { send = { text = \"50494e47\" }, receive = [{ text = \"504f4e47\" }] }\n";

std::string health_check_toml(int interval_ms, int unhealthy, int healthy) {
  std::string s = kCheck;
  auto put = [&](const std::string& key, const std::string& v) { s.replace(s.find(key), 2, v); };
  put("%I", std::to_string(interval_ms) + "ms");
  put("%U", std::to_string(unhealthy));
  put("%H", std::to_string(healthy));
  return s;
}

// Sessions until `n` reached a backend; returns how many went to each id.
std::map<char, int> run_sessions(const Endpoint& gw, int n) {
  std::map<char, int> got;
  for (int i = 0; i < n; ++i)
    ++got[session_via(gw)];
  return got;
}

TEST_F(HostChoiceTest, HealthCheckMarksMutedHostUnhealthyAndBack) {
  IdBackend a('a'), b('b');
  constexpr int kIntervalMs = 600, kUnhealthy = 3, kHealthy = 2;
  const std::string dest = "destination.single.upstream = { name = \"checked\" }";
  ASSERT_TRUE(start_proxy(
      settings_toml(2) + gateway_toml("tcp", dest) +
      upstream_toml("checked", {&a, &b}, health_check_toml(kIntervalMs, kUnhealthy, kHealthy))));
  const auto lb = host_labels("checked", b);
  ASSERT_TRUE(poll_until([&] { return b.checks() >= 2 && a.checks() >= 2; }, scaled(Millis(5000))))
      << "checks seen: a " << a.checks() << ", b " << b.checks();
  ASSERT_TRUE(wait_metric("ringway_upstream_host_healthy", lb, 1, scaled(Millis(1000))));
  auto got = run_sessions(gateway(), 20);
  EXPECT_EQ(got['a'] + got['b'], 20);
  EXPECT_GT(got['b'], 0);

  b.mute(true);
  auto muted_at = Clock::now();
  const double bound_down = kIntervalMs * kUnhealthy + kIntervalMs;
  EXPECT_TRUE(wait_metric("ringway_upstream_host_healthy", lb, 0,
                          scaled(Millis(static_cast<int64_t>(bound_down) + 2000))));
  const double down_ms = ms_since(muted_at);
  note("marked_unhealthy_after_ms", down_ms);
  note("bound_interval_x_unhealthyThreshold_plus_interval_ms", bound_down);
  EXPECT_LE(down_ms, bound_down * timeout_scale() + 150.0);

  const int64_t b_before = b.sessions();
  got = run_sessions(gateway(), 40);
  EXPECT_EQ(got['a'], 40) << "sessions while b is unhealthy: b got " << got['b'];
  EXPECT_EQ(b.sessions(), b_before);

  b.mute(false);
  auto unmuted_at = Clock::now();
  const double bound_up = kIntervalMs * kHealthy + kIntervalMs;
  EXPECT_TRUE(wait_metric("ringway_upstream_host_healthy", lb, 1,
                          scaled(Millis(static_cast<int64_t>(bound_up) + 2000))));
  const double up_ms = ms_since(unmuted_at);
  note("marked_healthy_after_ms", up_ms);
  note("bound_interval_x_healthyThreshold_plus_interval_ms", bound_up);
  EXPECT_LE(up_ms, bound_up * timeout_scale() + 150.0);
  got = run_sessions(gateway(), 20);
  EXPECT_GT(got['b'], 0) << "b healthy again but got no session";
  EXPECT_TRUE(wait_metric("ringway_upstream_host_unhealthy_transitions_total", lb, 1,
                          scaled(Millis(1000))));
  EXPECT_TRUE(
      wait_metric("ringway_upstream_host_healthy_transitions_total", lb, 1, scaled(Millis(1000))));
  const std::string log = proxy().stderr_text();
  EXPECT_NE(log.find("host " + host_key(b) + " is unhealthy"), std::string::npos) << log;
  EXPECT_NE(log.find("host " + host_key(b) + " is healthy"), std::string::npos) << log;
  expect_no_leaks();
}

// Priority 0 (two hosts) refuses -> sessions go to priority 1; back once priority 0 returns.
// Failover follows host availability, here from connect-only health checks.
TEST_F(HostChoiceTest, FailoverToPriorityOneAndBack) {
  IdBackend p0a('a'), p0b('b'), p1('f');
  constexpr int kIntervalMs = 300;
  std::string extra = health_check_toml(kIntervalMs, 1, 1);
  extra.replace(extra.find("tcpHealthCheck"), std::string::npos, "tcpHealthCheck = {}\n");
  extra +=
      "[[upstreams.failover.prioritizedLocalities]]\nlocalityEndpoints = [\n"
      "  { locality = { region = \"r\", zone = \"b\" }, lbEndpoints = [{ address = "
      "\"127.0.0.1\", port = " +
      std::to_string(p1.port()) + " }] },\n]\n";
  const std::string dest = "destination.single.upstream = { name = \"db\" }";
  ASSERT_TRUE(start_proxy(settings_toml(2) + gateway_toml("tcp", dest) +
                          upstream_toml("db", {&p0a, &p0b}, extra)));
  auto got = run_sessions(gateway(), 20);
  EXPECT_EQ(got['a'] + got['b'], 20) << "priority 1 used while priority 0 is up: " << got['f'];

  p0a.refuse(true);
  p0b.refuse(true);
  auto down_at = Clock::now();
  ASSERT_TRUE(poll_until([&] { return p0a.refusing() && p0b.refusing(); }, scaled(Millis(2000))));
  for (const auto* b : {&p0a, &p0b}) {
    EXPECT_TRUE(wait_metric("ringway_upstream_host_healthy", host_labels("db", *b), 0,
                            scaled(Millis(3000))));
  }
  note("priority0_unhealthy_after_ms", ms_since(down_at));
  got = run_sessions(gateway(), 20);
  note("sessions_to_priority1_while_priority0_down", got['f']);
  EXPECT_EQ(got['f'], 20);

  p0a.refuse(false);
  p0b.refuse(false);
  auto up_at = Clock::now();
  for (const auto* b : {&p0a, &p0b}) {
    EXPECT_TRUE(wait_metric("ringway_upstream_host_healthy", host_labels("db", *b), 1,
                            scaled(Millis(3000))));
  }
  note("priority0_back_after_ms", ms_since(up_at));
  got = run_sessions(gateway(), 20);
  EXPECT_EQ(got['a'] + got['b'], 20) << "still on priority 1: " << got['f'];
  expect_no_leaks();
}

// One refusing host beside a good one, maxConnectAttempts 2 (sessions still succeed): the
// refusing host is ejected after consecutiveLocalOriginFailure refusals (counted across both
// workers), gets no attempts while ejected, and returns after baseEjectionTime.
TEST_F(HostChoiceTest, OutlierEjectsRefusingHostAndReturnsIt) {
  IdBackend good('g'), bad('x');
  bad.refuse(true);
  ASSERT_TRUE(poll_until([&] { return bad.refusing(); }, scaled(Millis(2000))));
  constexpr int kFailures = 3, kBaseMs = 2000, kIntervalMs = 500;
  const std::string od =
      "[upstreams.outlierDetection]\nsplitExternalLocalOriginErrors = true\n"
      "consecutiveLocalOriginFailure = " +
      std::to_string(kFailures) + "\nbaseEjectionTime = \"" + std::to_string(kBaseMs) +
      "ms\"\ninterval = \"" + std::to_string(kIntervalMs) + "ms\"\nmaxEjectionPercent = 50\n";
  const std::string dest = "destination.single.upstream = { name = \"od\" }";
  ASSERT_TRUE(start_proxy(settings_toml(2) + gateway_toml("tcp", dest, 2) +
                          upstream_toml("od", {&good, &bad}, od)));
  const auto lbad = host_labels("od", bad);
  const std::map<std::string, std::string> up{{"upstream", "default.od"}};
  int sessions = 0;
  const auto start = Clock::now();
  while (metric("ringway_upstream_host_ejected", lbad).value_or(0) != 1 && sessions < 200 &&
         Clock::now() < start + scaled(Millis(10000))) {
    EXPECT_EQ(session_via(gateway()), 'g');
    ++sessions;
  }
  const auto ejected_at = Clock::now();
  ASSERT_EQ(metric("ringway_upstream_host_ejected", lbad).value_or(0), 1)
      << "not ejected after " << sessions << " sessions";
  const double refused = metric("ringway_upstream_connect_refused_total", up).value_or(-1);
  note("sessions_until_ejected", sessions);
  note("refusals_until_ejected", refused);
  EXPECT_EQ(refused, kFailures);

  // While ejected: no attempt reaches the refusing host.
  const double attempts_before = metric("ringway_upstream_connect_attempts_total", up).value_or(-1);
  auto got = run_sessions(gateway(), 20);
  EXPECT_EQ(got['g'], 20);
  EXPECT_EQ(metric("ringway_upstream_connect_refused_total", up).value_or(-1), refused);
  EXPECT_EQ(metric("ringway_upstream_connect_attempts_total", up).value_or(-1),
            attempts_before + 20);

  EXPECT_TRUE(wait_metric("ringway_upstream_host_ejected", lbad, 0,
                          scaled(Millis(kBaseMs + kIntervalMs + 2000))));
  const double back_ms = ms_since(ejected_at);
  note("returned_after_ms", back_ms);
  note("bound_baseEjectionTime_plus_interval_ms", kBaseMs + kIntervalMs);
  EXPECT_LE(back_ms, (kBaseMs + kIntervalMs) * timeout_scale() + 200.0);
  EXPECT_GE(back_ms, kBaseMs - 200.0);
  EXPECT_TRUE(wait_metric("ringway_upstream_host_ejections_total", lbad, 1, scaled(Millis(500))));
  EXPECT_NE(proxy().stderr_text().find("ejected by outlier detection"), std::string::npos);
  expect_no_leaks();
}

// TCP sockets in SYN_SENT (state 02) towards `port` on this host (/proc/net/tcp).
int syn_sent_to(uint16_t port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  int n = 0;
  char want[8];
  std::snprintf(want, sizeof(want), ":%04X", port);
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string sl, local, remote, state;
    f >> sl >> local >> remote >> state;
    if (state == "02" && remote.size() >= 5 && remote.substr(remote.size() - 5) == want) ++n;
  }
  return n;
}

// A check whose connect hangs (a blackholed host, timeout 20 s) is in flight at SIGTERM: the
// worker cancels it, closes its socket and exits at once, not when the check would time out.
TEST_F(HostChoiceTest, DrainCancelsHealthCheckInFlight) {
  ConnectBlackhole hole;
  ASSERT_TRUE(hole.ok()) << "could not fill the blackhole's accept queue";
  IdBackend a('a');
  std::string extra = health_check_toml(1000, 1, 1);
  extra.replace(extra.find("timeout = \"300ms\""), 17, "timeout = \"20s\"");
  const std::string dest = "destination.single.upstream = { name = \"holed\" }";
  std::string up = upstream_toml("holed", {&a}, extra);
  up.replace(up.find(" ]\n"), 3,
             ", { addr = \"127.0.0.1\", port = " + std::to_string(hole.port()) + " } ]\n");
  // The blackhole's own last filler connect hangs in SYN_SENT too: count above it.
  const int before = syn_sent_to(hole.port());
  ASSERT_TRUE(start_proxy(settings_toml(2) + gateway_toml("tcp", dest) + up));
  ASSERT_TRUE(poll_until([&] { return syn_sent_to(hole.port()) > before; }, scaled(Millis(3000))))
      << "no health-check connect towards the blackhole seen";
  EXPECT_EQ(session_via(gateway()), 'a');
  proxy().signal(SIGTERM);
  const auto term_at = Clock::now();
  const auto code = proxy().wait_exit(scaled(Millis(10000)));
  const double exit_ms = ms_since(term_at);
  note("exit_after_sigterm_ms", exit_ms);
  ASSERT_TRUE(code.has_value()) << "no exit within 10 s of SIGTERM";
  EXPECT_EQ(*code, 0);
  // Well before the 20 s check timeout: the hanging connect was cancelled, not waited for.
  EXPECT_LT(exit_ms, 10000.0);
  EXPECT_EQ(syn_sent_to(hole.port()), before) << "the check's socket outlived the daemon";
}

// Reload (SIGHUP) while a check hangs on a blackhole: the old process hands over, cancels its
// checks and exits 0 without waiting for the check's 20 s timeout; the new process checks the
// hosts from then on.
class HostChoiceReloadTest : public HostChoiceTest {
 protected:
  void SetUp() override {
    // The successor is started as the old process's sibling: as subreaper, this test
    // becomes its parent and can stop it by its pid.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  }
  void TearDown() override {
    if (successor_ > 0) {
      ::kill(successor_, SIGKILL);
      ::waitpid(successor_, nullptr, 0);
    }
    HostChoiceTest::TearDown();
  }
  pid_t successor_ = -1;
};

TEST_F(HostChoiceReloadTest, ReloadHandsOverWithHealthCheckInFlight) {
  ConnectBlackhole hole;
  ASSERT_TRUE(hole.ok()) << "could not fill the blackhole's accept queue";
  IdBackend a('a');
  std::string extra = health_check_toml(300, 1, 1);
  extra.replace(extra.find("timeout = \"300ms\""), 17, "timeout = \"20s\"");
  const std::string dest = "destination.single.upstream = { name = \"holed\" }";
  std::string up = upstream_toml("holed", {&a}, extra);
  up.replace(up.find(" ]\n"), 3,
             ", { addr = \"127.0.0.1\", port = " + std::to_string(hole.port()) + " } ]\n");
  const int before = syn_sent_to(hole.port());
  ASSERT_TRUE(start_proxy(settings_toml(2) + gateway_toml("tcp", dest) + up));
  ASSERT_TRUE(poll_until([&] { return syn_sent_to(hole.port()) > before; }, scaled(Millis(3000))));
  ASSERT_TRUE(poll_until([&] { return a.checks() >= 1; }, scaled(Millis(3000))));

  const auto log_before = proxy().stderr_text().size();
  proxy().signal(SIGHUP);
  const auto hup_at = Clock::now();
  const auto code = proxy().wait_exit(scaled(Millis(15000)));
  const double exit_ms = ms_since(hup_at);
  note("old_process_exit_after_hup_ms", exit_ms);
  ASSERT_TRUE(code.has_value()) << "the old process did not exit within 15 s of SIGHUP";
  EXPECT_EQ(*code, 0);
  const std::string log = proxy().stderr_text().substr(log_before);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(log, m, std::regex("reload: pid ([0-9]+) took over"))) << log;
  successor_ = static_cast<pid_t>(std::stol(m[1]));
  uint16_t admin = 0;
  std::string rest = log;
  std::smatch p;
  while (std::regex_search(rest, p, std::regex("admin listening on 127\\.0\\.0\\.1:([0-9]+)"))) {
    admin = static_cast<uint16_t>(std::stoi(p[1]));
    rest = p.suffix();
  }
  ASSERT_NE(admin, 0) << log;
  // The successor checks: `a` sees new checks, and the blackholed host is still being tried.
  const int64_t checks_then = a.checks();
  EXPECT_TRUE(poll_until([&] { return a.checks() >= checks_then + 2; }, scaled(Millis(5000))));
  EXPECT_TRUE(poll_until(
      [&] {
        return fetch_metric(admin, "ringway_upstream_host_healthy", host_labels("holed", a)) ==
               std::optional<double>(1);
      },
      scaled(Millis(3000))));
}

}  // namespace
}  // namespace ringway::test
