// Access log rendering and the file sink: each operator's text from a SessionRecord built here
// (IPv4, IPv6, IPv4-mapped, missing values), the response-flag table, JSON typing and escaping,
// and the file sink under two concurrent writers (exactly one whole line per record) and at stop.
#include "ringway/app/access_log.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace ringway::app {
namespace {

using engine::EndReason;
using engine::SessionRecord;

net::SocketAddress addr(std::string_view ip, uint16_t port) {
  auto a = net::SocketAddress::parse(ip, port);
  EXPECT_TRUE(a.ok()) << ip;
  return a.ok() ? a.value() : net::SocketAddress{};
}

// 2024-05-01T12:00:00.123Z
constexpr int64_t kStartMs = 1714564800123;

SessionRecord ipv4_record() {
  SessionRecord r;
  r.worker = 1;
  r.gateway = "default.tcp";
  r.upstream = "default.backend";
  r.downstream_peer = addr("192.0.2.7", 40001);
  r.downstream_local = addr("127.0.0.1", 8080);
  r.upstream_host = addr("10.1.2.3", 9000);
  r.connect_attempts = 1;
  r.bytes_from_downstream = 11;
  r.bytes_to_upstream = 12;
  r.bytes_from_upstream = 13;
  r.bytes_to_downstream = 14;
  r.start = std::chrono::system_clock::time_point(std::chrono::milliseconds(kStartMs));
  r.duration = std::chrono::microseconds(2'345'999);  // 2345 ms, truncated as Envoy does
  r.reason = EndReason::Normal;
  return r;
}

std::string render_text(std::string_view format, const SessionRecord& r) {
  auto parsed = config::parse_format(format);
  EXPECT_TRUE(parsed.ok) << parsed.error;
  std::string out;
  AccessLogFormatter::text(parsed.format).render(r, out);
  return out;
}

std::string render_json(std::vector<std::pair<std::string, std::string>> fields,
                        const SessionRecord& r) {
  config::AccessLogFileSink sink;
  sink.format = config::AccessLogFileSink::Format::Json;
  sink.json_format = std::move(fields);
  auto f = AccessLogFormatter::from_sink(sink);
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
  std::string out;
  if (f.ok()) f->render(r, out);
  return out;
}

TEST(AccessLogRender, EveryOperatorIpv4) {
  const auto r = ipv4_record();
  EXPECT_EQ(render_text("%START_TIME%", r), "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(render_text("%DOWNSTREAM_REMOTE_ADDRESS%", r), "192.0.2.7:40001");
  EXPECT_EQ(render_text("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", r), "192.0.2.7");
  EXPECT_EQ(render_text("%DOWNSTREAM_LOCAL_ADDRESS%", r), "127.0.0.1:8080");
  EXPECT_EQ(render_text("%UPSTREAM_HOST%", r), "10.1.2.3:9000");
  EXPECT_EQ(render_text("%UPSTREAM_CLUSTER%", r), "default.backend");
  EXPECT_EQ(render_text("%BYTES_RECEIVED%", r), "11");
  EXPECT_EQ(render_text("%UPSTREAM_WIRE_BYTES_SENT%", r), "12");
  EXPECT_EQ(render_text("%UPSTREAM_WIRE_BYTES_RECEIVED%", r), "13");
  EXPECT_EQ(render_text("%BYTES_SENT%", r), "14");
  EXPECT_EQ(render_text("%DURATION%", r), "2345");
  EXPECT_EQ(render_text("%RESPONSE_FLAGS%", r), "-");
  EXPECT_EQ(render_text("%CONNECTION_TERMINATION_DETAILS%", r), "normal");
  EXPECT_EQ(render_text("a %% b", r), "a % b");
}

TEST(AccessLogRender, EveryAddressOperatorIpv6) {
  auto r = ipv4_record();
  r.downstream_peer = addr("2001:db8::7", 40001);
  r.downstream_local = addr("::1", 8080);
  r.upstream_host = addr("fd00::3", 9000);
  EXPECT_EQ(render_text("%DOWNSTREAM_REMOTE_ADDRESS%", r), "[2001:db8::7]:40001");
  EXPECT_EQ(render_text("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", r), "2001:db8::7");
  EXPECT_EQ(render_text("%DOWNSTREAM_LOCAL_ADDRESS%", r), "[::1]:8080");
  EXPECT_EQ(render_text("%UPSTREAM_HOST%", r), "[fd00::3]:9000");
}

TEST(AccessLogRender, Ipv4MappedAddressesPrintAsIpv4) {
  // What a dual-stack "::" gateway reports for an IPv4 client.
  auto r = ipv4_record();
  r.downstream_peer = addr("::ffff:192.0.2.9", 5555);
  EXPECT_EQ(render_text("%DOWNSTREAM_REMOTE_ADDRESS%", r), "192.0.2.9:5555");
  EXPECT_EQ(render_text("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", r), "192.0.2.9");
}

TEST(AccessLogRender, MissingValuesPrintADash) {
  auto r = ipv4_record();
  r.upstream_host = net::SocketAddress{};  // no connect attempt was made (connection_limit)
  r.upstream = {};
  r.start = {};
  EXPECT_EQ(render_text("%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %START_TIME%", r), "- - -");
}

TEST(AccessLogRender, ResponseFlagsFollowEnvoysCodes) {
  const std::pair<EndReason, const char*> expected[] = {
      {EndReason::Normal, "-"},           {EndReason::UpstreamRefused, "UF"},
      {EndReason::ConnectTimeout, "UF"},  {EndReason::ConnectError, "UF"},
      {EndReason::IdleTimeout, "SI"},     {EndReason::DownstreamReset, "DC"},
      {EndReason::UpstreamReset, "UC"},   {EndReason::KeepaliveTimeout, "-"},
      {EndReason::DrainForceClosed, "-"}, {EndReason::ConnectionLimit, "UO"},
      {EndReason::CircuitOpen, "UO"},     {EndReason::InternalError, "-"},
  };
  auto r = ipv4_record();
  for (const auto& [reason, flag] : expected) {
    r.reason = reason;
    EXPECT_EQ(render_text("%RESPONSE_FLAGS%", r), flag) << engine::to_string(reason);
    EXPECT_EQ(render_text("%CONNECTION_TERMINATION_DETAILS%", r), engine::to_string(reason));
  }
}

TEST(AccessLogRender, StartTimeIsUtcWithMilliseconds) {
  auto r = ipv4_record();
  r.start = std::chrono::system_clock::time_point(std::chrono::milliseconds(5));
  EXPECT_EQ(render_text("%START_TIME%", r), "1970-01-01T00:00:00.005Z");
  r.start = std::chrono::system_clock::time_point(std::chrono::milliseconds(951782400999));
  EXPECT_EQ(render_text("%START_TIME%", r), "2000-02-29T00:00:00.999Z");
  // The per-thread cache of the seconds part must not leak into the next second.
  r.start += std::chrono::milliseconds(1);
  EXPECT_EQ(render_text("%START_TIME%", r), "2000-02-29T00:00:01.000Z");
}

TEST(AccessLogRender, DefaultFormatAndTheAddedNewline) {
  const auto r = ipv4_record();
  config::AccessLogFileSink sink;
  auto f = AccessLogFormatter::from_sink(sink);
  ASSERT_TRUE(f.ok());
  std::string out;
  f->render(r, out);
  EXPECT_EQ(out,
            "[2024-05-01T12:00:00.123Z] 192.0.2.7:40001 127.0.0.1:8080 default.backend "
            "10.1.2.3:9000 11 14 2345 normal\n");

  sink.string_format = "%BYTES_SENT%";
  auto g = AccessLogFormatter::from_sink(sink);
  ASSERT_TRUE(g.ok());
  out.clear();
  g->render(r, out);
  EXPECT_EQ(out, "14\n");
}

TEST(AccessLogRender, JsonKeepsKeyOrderAndTypesValues) {
  auto r = ipv4_record();
  r.upstream_host = net::SocketAddress{};
  r.reason = EndReason::UpstreamRefused;
  const auto line = render_json({{"start", "%START_TIME%"},
                                 {"bytes_sent", "%BYTES_SENT%"},
                                 {"duration", "%DURATION%"},
                                 {"upstream", "%UPSTREAM_HOST%"},
                                 {"flags", "%RESPONSE_FLAGS%"},
                                 {"route", "to %UPSTREAM_HOST% via %UPSTREAM_CLUSTER%"},
                                 {"bytes_text", "n=%BYTES_RECEIVED%"},
                                 {"fixed", "tcp"},
                                 {"pct", "%%"}},
                                r);
  EXPECT_EQ(line,
            "{\"start\":\"2024-05-01T12:00:00.123Z\",\"bytes_sent\":14,\"duration\":2345,"
            "\"upstream\":null,\"flags\":\"UF\",\"route\":\"to - via default.backend\","
            "\"bytes_text\":\"n=11\",\"fixed\":\"tcp\",\"pct\":\"%\"}\n");
}

TEST(AccessLogRender, JsonEscapesKeysAndValues) {
  const auto r = ipv4_record();
  const auto line = render_json(
      {{"q\"k", "a\"b\\c"}, {"ctl", std::string("l1\nl2\tt\r\x01\x1f")}, {"utf8", "caf\xc3\xa9"}},
      r);
  EXPECT_EQ(line,
            "{\"q\\\"k\":\"a\\\"b\\\\c\",\"ctl\":\"l1\\nl2\\tt\\r\\u0001\\u001f\","
            "\"utf8\":\"caf\xc3\xa9\"}\n");
}

TEST(AccessLogRender, EmptyJsonFormatIsAnEmptyObject) {
  EXPECT_EQ(render_json({}, ipv4_record()), "{}\n");
}

TEST(AccessLogRender, BadFormatsNameTheField) {
  config::AccessLogFileSink text;
  text.string_format = "%BYTES%";
  auto t = AccessLogFormatter::from_sink(text);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message.rfind("stringFormat: unknown command operator %BYTES%", 0), 0u)
      << t.error().message;
  EXPECT_NE(t.error().message.find("(at offset 0)"), std::string::npos);

  config::AccessLogFileSink json;
  json.format = config::AccessLogFileSink::Format::Json;
  json.json_format = {{"ok", "%BYTES_SENT%"}, {"bad", "x %NOPE%"}};
  auto j = AccessLogFormatter::from_sink(json);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.error().message.rfind("jsonFormat.bad: unknown command operator %NOPE%", 0), 0u)
      << j.error().message;
  EXPECT_NE(j.error().message.find("(at offset 2)"), std::string::npos);
}

// ---- the file sink ----------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ringway-alog-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::string> read_lines(const std::string& path, bool* ends_with_newline = nullptr) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (ends_with_newline) *ends_with_newline = text.empty() || text.back() == '\n';
  std::vector<std::string> lines;
  std::string line;
  std::istringstream is(text);
  while (std::getline(is, line))
    lines.push_back(line);
  return lines;
}

config::Config config_with_sinks(const std::string& gateway_name,
                                 std::vector<config::AccessLogFileSink> sinks) {
  config::Config c;
  config::Gateway gw;
  gw.metadata.name = gateway_name;
  gw.access_logs = std::move(sinks);
  c.gateways.push_back(std::move(gw));
  return c;
}

TEST(AccessLogFile, TwoWritersWriteExactlyOneWholeLinePerRecord) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  config::AccessLogFileSink text;
  text.path = dir.path() + "/text.log";
  text.string_format = "w=%BYTES_RECEIVED% n=%BYTES_SENT% %UPSTREAM_HOST% end";
  config::AccessLogFileSink json;
  json.path = dir.path() + "/json.log";
  json.format = config::AccessLogFileSink::Format::Json;
  json.json_format = {
      {"w", "%BYTES_RECEIVED%"}, {"n", "%BYTES_SENT%"}, {"pad", std::string(200, 'x')}};
  const auto config = config_with_sinks("tcp", {text, json});

  auto opened = AccessLog::open(config);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto log = std::move(opened.value());
  ASSERT_FALSE(log->empty());
  auto sink = log->sink();

  // Enough lines (about 20k * 250 bytes) to cross the 64 KiB early-flush threshold many times
  // while both writers run.
  constexpr uint64_t kPerThread = 10000;
  auto writer = [&sink](uint64_t id) {
    auto r = ipv4_record();
    for (uint64_t i = 0; i < kPerThread; ++i) {
      r.bytes_from_downstream = id;
      r.bytes_to_downstream = i;
      sink(r);
    }
  };
  std::thread a(writer, 1);
  std::thread b(writer, 2);
  a.join();
  b.join();
  log->stop();

  bool newline_end = false;
  const auto text_lines = read_lines(text.path, &newline_end);
  EXPECT_TRUE(newline_end);
  ASSERT_EQ(text_lines.size(), 2 * kPerThread);
  std::set<std::string> seen;
  for (const auto& l : text_lines)
    seen.insert(l);
  EXPECT_EQ(seen.size(), 2 * kPerThread) << "duplicate lines";
  for (uint64_t w = 1; w <= 2; ++w) {
    for (uint64_t i = 0; i < kPerThread; ++i) {
      const std::string want =
          "w=" + std::to_string(w) + " n=" + std::to_string(i) + " 10.1.2.3:9000 end";
      ASSERT_TRUE(seen.count(want)) << "missing or torn: " << want;
    }
  }

  const auto json_lines = read_lines(json.path, &newline_end);
  EXPECT_TRUE(newline_end);
  ASSERT_EQ(json_lines.size(), 2 * kPerThread);
  // Per writer, lines appear in the order that writer produced them.
  uint64_t next[3] = {0, 0, 0};
  const std::string pad = ",\"pad\":\"" + std::string(200, 'x') + "\"}";
  for (const auto& l : json_lines) {
    const uint64_t w = l.rfind("{\"w\":1,", 0) == 0 ? 1 : 2;
    const std::string want =
        "{\"w\":" + std::to_string(w) + ",\"n\":" + std::to_string(next[w]) + pad;
    ASSERT_EQ(l, want);
    ++next[w];
  }
  EXPECT_EQ(next[1], kPerThread);
  EXPECT_EQ(next[2], kPerThread);
  EXPECT_EQ(log->dropped_lines(), 0u);
}

TEST(AccessLogFile, StopWritesEverythingBuffered) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  config::AccessLogFileSink text;
  text.path = dir.path() + "/a.log";
  auto opened = AccessLog::open(config_with_sinks("tcp", {text}));
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto log = std::move(opened.value());
  const auto r = ipv4_record();
  for (int i = 0; i < 3; ++i)
    log->record(r);
  // Three short lines stay far below the early-flush threshold: without stop() they would wait
  // for the 100 ms timer, so seeing them right after stop() shows stop() flushed.
  log->stop();
  const auto lines = read_lines(text.path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0] + "\n", render_text(config::kDefaultAccessLogFormat, r));

  // After stop(), records are still kept and the destructor writes them.
  log->record(r);
  log.reset();
  EXPECT_EQ(read_lines(text.path).size(), 4u);
}

TEST(AccessLogFile, OnlyTheRecordsGatewayIsLoggedAndSharedPathsShareOneFile) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  config::AccessLogFileSink one;
  one.path = dir.path() + "/shared.log";
  one.string_format = "one %BYTES_SENT%";
  config::AccessLogFileSink two = one;
  two.string_format = "two %BYTES_SENT%";
  config::Config c = config_with_sinks("a", {one});
  auto second = config_with_sinks("b", {two});
  c.gateways.push_back(second.gateways.front());
  c.gateways.push_back(config_with_sinks("silent", {}).gateways.front());

  auto opened = AccessLog::open(c);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto log = std::move(opened.value());
  auto r = ipv4_record();
  r.gateway = "default.b";
  log->record(r);
  r.gateway = "default.silent";
  log->record(r);
  r.gateway = "default.a";
  log->record(r);
  log->stop();
  EXPECT_EQ(read_lines(one.path), (std::vector<std::string>{"two 14", "one 14"}));
}

TEST(AccessLogFile, NoSinksMeansEmpty) {
  auto opened = AccessLog::open(config_with_sinks("tcp", {}));
  ASSERT_TRUE(opened.ok());
  EXPECT_TRUE(opened.value()->empty());
}

TEST(AccessLogFile, CreatedWithMode0640) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  config::AccessLogFileSink text;
  text.path = dir.path() + "/mode.log";
  const mode_t old = umask(0);
  auto opened = AccessLog::open(config_with_sinks("tcp", {text}));
  umask(old);
  ASSERT_TRUE(opened.ok());
  struct stat st {};
  ASSERT_EQ(stat(text.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(AccessLogFile, UnopenableFileNamesThePathAndTheGateway) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  config::AccessLogFileSink text;
  text.path = dir.path() + "/no/such/dir/a.log";
  auto opened = AccessLog::open(config_with_sinks("tcp", {text}));
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ENOENT);
  EXPECT_EQ(opened.error().message,
            "gateway default.tcp: access log " + text.path + ": cannot open: " + strerror(ENOENT));
}

TEST(AccessLogFile, AFailingDiskLosesLinesButNeverBlocks) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "/dev/full is not writable here";
  config::AccessLogFileSink text;
  text.path = "/dev/full";  // every write fails with ENOSPC
  auto opened = AccessLog::open(config_with_sinks("tcp", {text}));
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto log = std::move(opened.value());
  const auto r = ipv4_record();
  // About 100 KiB: one early flush and the final one, both failing, and far below the buffer
  // cap, so nothing may count as dropped (those lines are lost to the disk, and logged).
  for (int i = 0; i < 1000; ++i)
    log->record(r);
  log->stop();
  EXPECT_EQ(log->dropped_lines(), 0u);
}

}  // namespace
}  // namespace ringway::app
