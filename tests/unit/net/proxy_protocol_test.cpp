// PROXY protocol v1/v2: parsing (complete, incomplete and hostile input), building, and real
// headers sent by HAProxy (`send-proxy`, `send-proxy-v2` with TLVs) to a loopback listener, plus
// a header built here that HAProxy (`accept-proxy`) understands and passes on.
#include "ringway/net/proxy_protocol.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "net_test_util.hpp"
#include "real_peer_util.hpp"

namespace ringway::net::proxy_protocol {
namespace {

using testing::Fd;

std::vector<uint8_t> bytes_of(std::string_view text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

SocketAddress address(const char* ip, uint16_t port) {
  return *SocketAddress::parse(ip, port);
}

const std::vector<uint8_t> kV2Sig = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                     0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// A v2 header: signature, ver/cmd, fam/proto, declared length, then `body`.
std::vector<uint8_t> v2(uint8_t ver_cmd, uint8_t fam, const std::vector<uint8_t>& body,
                        int declared = -1) {
  std::vector<uint8_t> out = kV2Sig;
  const size_t length = declared >= 0 ? static_cast<size_t>(declared) : body.size();
  out.push_back(ver_cmd);
  out.push_back(fam);
  out.push_back(static_cast<uint8_t>(length >> 8));
  out.push_back(static_cast<uint8_t>(length & 0xFF));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// Every strict prefix of a complete header must ask for more, never decide early.
void expect_prefixes_need_more(const std::vector<uint8_t>& header, size_t length) {
  for (size_t n = 0; n < length; ++n) {
    SCOPED_TRACE(n);
    EXPECT_EQ(parse({header.data(), n}).status, Status::NeedMore);
  }
}

TEST(ProxyProtocol, ParsesV1Tcp4AndLeavesTheDataAfterIt) {
  const auto bytes = bytes_of("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n");
  const ParseResult r = parse(bytes);
  ASSERT_EQ(r.status, Status::Done) << r.reason;
  EXPECT_EQ(r.version, Version::V1);
  EXPECT_EQ(r.length, 45u);
  ASSERT_TRUE(r.has_addresses);
  EXPECT_EQ(r.source.to_string(), "192.0.2.1:56324");
  EXPECT_EQ(r.destination.to_string(), "198.51.100.2:443");
  expect_prefixes_need_more(bytes, r.length);
}

TEST(ProxyProtocol, ParsesV1Tcp6AndUnknown) {
  const auto tcp6 = bytes_of("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n");
  ParseResult r = parse(tcp6);
  ASSERT_EQ(r.status, Status::Done) << r.reason;
  EXPECT_EQ(r.source.to_string(), "[2001:db8::1]:1");
  EXPECT_EQ(r.destination.to_string(), "[2001:db8::2]:65535");

  for (const char* unknown : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 whatever 99999 x\r\n"}) {
    SCOPED_TRACE(unknown);
    r = parse(bytes_of(unknown));
    ASSERT_EQ(r.status, Status::Done) << r.reason;
    EXPECT_FALSE(r.has_addresses);
    EXPECT_EQ(r.length, std::string_view(unknown).size());
  }
}

TEST(ProxyProtocol, RejectsV1ThatDoesNotMatchTheSpecExactly) {
  for (const char* bad : {
           "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n",     // LF without CR
           "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\rX",    // CR without LF
           "PROXY TCP4 192.0.2.01 198.51.100.2 56324 443\r\n",  // leading zero in an octet
           "PROXY TCP4 192.0.2.1 198.51.100.2 056324 443\r\n",  // leading zero in a port
           "PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",   // port out of range
           "PROXY TCP4 192.0.2.256 198.51.100.2 1 443\r\n",     // octet out of range
           "PROXY TCP4 192.0.2.1  198.51.100.2 1 443\r\n",      // two spaces
           "PROXY TCP4 2001:db8::1 198.51.100.2 1 443\r\n",     // family mismatch
           "PROXY TCP6 192.0.2.1 2001:db8::2 1 443\r\n",        // family mismatch
           "PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",           // a field missing
           "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n",       // a field too many
           "PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",         // not TCP
           "PROXY UNKNOWNX\r\n",                                // not the UNKNOWN keyword
           "PROXY TCP4 192.0.2.1\t198.51.100.2 1 2\r\n",        // control character
           "proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n",         // case matters
           "GET / HTTP/1.1\r\n",                                // no header at all
           "SSH-2.0-OpenSSH_9.2\r\n",
       }) {
    SCOPED_TRACE(bad);
    const ParseResult r = parse(bytes_of(bad));
    EXPECT_EQ(r.status, Status::Error);
    EXPECT_NE(r.reason, nullptr);
  }
}

TEST(ProxyProtocol, V1WithoutCrlfIn107BytesIsAnError) {
  std::string line = "PROXY UNKNOWN ";
  line.append(kV1MaxLength - line.size(), 'f');
  EXPECT_EQ(parse(bytes_of(line.substr(0, 106))).status, Status::NeedMore);
  EXPECT_EQ(parse(bytes_of(line)).status, Status::Error);
  // 105 characters + CRLF = 107: the longest line the spec allows is accepted.
  std::string longest = line.substr(0, 105) + "\r\n";
  EXPECT_EQ(parse(bytes_of(longest)).status, Status::Done);
  // CR at position 106 would need byte 108 for its LF: refused.
  std::string too_long = line.substr(0, 106) + "\r\n";
  EXPECT_EQ(parse(bytes_of(too_long)).status, Status::Error);
}

TEST(ProxyProtocol, ParsesV2TcpOverIpv4AndIpv6) {
  const auto four = v2(0x21, 0x11, {192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x01, 0xBB});
  ParseResult r = parse(four);
  ASSERT_EQ(r.status, Status::Done) << r.reason;
  EXPECT_EQ(r.version, Version::V2);
  EXPECT_EQ(r.length, 28u);
  EXPECT_EQ(r.source.to_string(), "192.0.2.1:56324");
  EXPECT_EQ(r.destination.to_string(), "198.51.100.2:443");
  expect_prefixes_need_more(four, r.length);

  std::vector<uint8_t> body(36, 0);
  body[0] = 0x20, body[1] = 0x01, body[2] = 0x0d, body[3] = 0xb8, body[15] = 1;
  body[16] = 0x20, body[17] = 0x01, body[18] = 0x0d, body[19] = 0xb8, body[31] = 2;
  body[33] = 80, body[35] = 81;
  r = parse(v2(0x21, 0x21, body));
  ASSERT_EQ(r.status, Status::Done) << r.reason;
  EXPECT_EQ(r.source.to_string(), "[2001:db8::1]:80");
  EXPECT_EQ(r.destination.to_string(), "[2001:db8::2]:81");
}

TEST(ProxyProtocol, V2LocalUnspecUdpAndUnixUseTheConnectionsOwnAddresses) {
  struct Case {
    uint8_t ver_cmd, fam;
    size_t body;
  };
  for (const Case c :
       {Case{0x20, 0x00, 0}, Case{0x20, 0x11, 12}, Case{0x20, 0x00, 7}, Case{0x21, 0x00, 0},
        Case{0x21, 0x12, 12}, Case{0x21, 0x22, 36}, Case{0x21, 0x31, 216}, Case{0x21, 0x32, 216}}) {
    SCOPED_TRACE(::testing::Message() << std::hex << int(c.ver_cmd) << " " << int(c.fam));
    const ParseResult r = parse(v2(c.ver_cmd, c.fam, std::vector<uint8_t>(c.body, 0)));
    ASSERT_EQ(r.status, Status::Done) << r.reason;
    EXPECT_FALSE(r.has_addresses);
    EXPECT_EQ(r.length, 16 + c.body);
  }
}

TEST(ProxyProtocol, V2SkipsTlvsButOnlyWhenTheyFit) {
  std::vector<uint8_t> body = {127, 0, 0, 1, 127, 0, 0, 1, 0, 1, 0, 2};
  // NOOP TLV with 2 bytes, then an authority TLV "a.example".
  std::vector<uint8_t> tlvs = {0x04, 0x00, 0x02, 0, 0, 0x02, 0x00, 0x09};
  for (char c : std::string("a.example"))
    tlvs.push_back(static_cast<uint8_t>(c));
  auto good = body;
  good.insert(good.end(), tlvs.begin(), tlvs.end());
  ParseResult r = parse(v2(0x21, 0x11, good));
  ASSERT_EQ(r.status, Status::Done) << r.reason;
  EXPECT_EQ(r.length, 16 + good.size());
  EXPECT_EQ(r.source.to_string(), "127.0.0.1:1");

  auto overrun = good;
  overrun.back() = 'x';
  overrun[overrun.size() - 10] = 0x0A;  // authority TLV now claims 10 bytes, 9 are there
  EXPECT_EQ(parse(v2(0x21, 0x11, overrun)).status, Status::Error);
  auto cut = body;
  cut.push_back(0x04);  // one byte of a TLV header
  EXPECT_EQ(parse(v2(0x21, 0x11, cut)).status, Status::Error);
}

TEST(ProxyProtocol, V2NeverTrustsItsLengthOrNibbles) {
  EXPECT_EQ(parse(v2(0x11, 0x11, std::vector<uint8_t>(12))).status, Status::Error);  // version 1
  EXPECT_EQ(parse(v2(0x22, 0x11, std::vector<uint8_t>(12))).status, Status::Error);  // command 2
  EXPECT_EQ(parse(v2(0x21, 0x41, std::vector<uint8_t>(12))).status, Status::Error);  // family 4
  EXPECT_EQ(parse(v2(0x21, 0x13, std::vector<uint8_t>(12))).status, Status::Error);  // proto 3
  // Declares fewer bytes than TCP over IPv4 needs.
  EXPECT_EQ(parse(v2(0x21, 0x11, std::vector<uint8_t>(11))).status, Status::Error);
  EXPECT_EQ(parse(v2(0x21, 0x21, std::vector<uint8_t>(12))).status, Status::Error);
  // Declares 65,535 bytes: refused at once, without waiting for them.
  const auto huge = v2(0x21, 0x11, std::vector<uint8_t>(12), 0xFFFF);
  EXPECT_EQ(parse({huge.data(), 16}).status, Status::Error);
  // A raised cap accepts a big header once it has all arrived, and not before.
  const auto big = v2(0x21, 0x11, std::vector<uint8_t>(2000, 0), 2000);
  std::vector<uint8_t> tlv_body = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 0x04, 0x07, 0xC1};
  tlv_body.resize(2000, 0);
  const auto big_ok = v2(0x21, 0x11, tlv_body);
  EXPECT_EQ(parse(big_ok).status, Status::Error);  // default cap 1024
  EXPECT_EQ(parse({big_ok.data(), 100}, ParseLimits{4096}).status, Status::NeedMore);
  EXPECT_EQ(parse(big_ok, ParseLimits{4096}).status, Status::Done);
  // A cap below what TCP over IPv6 needs is raised to it.
  std::vector<uint8_t> body6(36, 0);
  EXPECT_EQ(parse(v2(0x21, 0x21, body6), ParseLimits{10}).status, Status::Done);
  (void)big;
  // Wrong signature bytes are refused as soon as they are seen.
  auto sig = kV2Sig;
  sig[4] = 0x01;
  EXPECT_EQ(parse({sig.data(), 5}).status, Status::Error);
}

TEST(ProxyProtocol, BuildsHeadersThatParseBack) {
  uint8_t out[kMaxBuiltLength];
  struct Case {
    const char *src, *dst;
    int family;
    const char *want_src, *want_dst;  // as SocketAddress prints them (mapped IPv6 as IPv4)
  };
  for (const Case c : {
           Case{"192.0.2.1", "198.51.100.2", AF_INET, "192.0.2.1:40000", "198.51.100.2:443"},
           Case{"2001:db8::1", "2001:db8::2", AF_INET6, "[2001:db8::1]:40000", "[2001:db8::2]:443"},
           // A dual-stack listener reports IPv4 peers mapped: they go out as plain IPv4.
           Case{"::ffff:192.0.2.1", "::ffff:198.51.100.2", AF_INET, "192.0.2.1:40000",
                "198.51.100.2:443"},
           // One family per header: the IPv4 side travels mapped into IPv6.
           Case{"192.0.2.1", "2001:db8::2", AF_INET6, "192.0.2.1:40000", "[2001:db8::2]:443"},
       }) {
    for (Version v : {Version::V1, Version::V2}) {
      SCOPED_TRACE(::testing::Message() << c.src << " " << c.dst << " v" << int(v));
      const size_t n = build(v, address(c.src, 40000), address(c.dst, 443), out);
      ASSERT_GT(n, 0u);
      const ParseResult r = parse({out, n});
      ASSERT_EQ(r.status, Status::Done) << r.reason;
      EXPECT_EQ(r.length, n);
      EXPECT_EQ(r.version, v);
      ASSERT_TRUE(r.has_addresses);
      EXPECT_EQ(r.source.family(), c.family);
      EXPECT_EQ(r.destination.family(), c.family);
      EXPECT_EQ(r.source.to_string(), c.want_src);
      EXPECT_EQ(r.destination.to_string(), c.want_dst);
    }
  }
  const size_t v1 = build(Version::V1, address("192.0.2.1", 1), address("198.51.100.2", 2), out);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), v1),
            "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n");
  // Too small a buffer: nothing written.
  EXPECT_EQ(build(Version::V2, address("192.0.2.1", 1), address("198.51.100.2", 2), {out, 27}), 0u);
  const size_t local = build_v2_local(out);
  const ParseResult r = parse({out, local});
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.length, 16u);
  EXPECT_FALSE(r.has_addresses);
}

// ---- HAProxy as the real peer ---------------------------------------------------------------

class HaproxyRealPeer : public ::testing::Test {
 protected:
  void SetUp() override {
    haproxy_ = testing::find_program("haproxy");
    if (haproxy_.empty()) GTEST_SKIP() << "haproxy is not installed (scripts/lib.sh lists it)";
    char dir[] = "/tmp/ringway-haproxy-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    child_.stop();
    if (!dir_.empty()) {
      std::remove((dir_ + "/haproxy.cfg").c_str());
      std::remove((dir_ + "/haproxy.log").c_str());
      ::rmdir(dir_.c_str());
    }
  }

  // Starts HAProxy with a TCP frontend on a free port forwarding to `sink` with `server_opts`
  // (and `bind_opts` on the frontend); returns the frontend's address once it accepts.
  SocketAddress start(const SocketAddress& sink, const std::string& server_opts,
                      const std::string& bind_opts = "") {
    const uint16_t port = testing::free_port();
    std::ofstream cfg(dir_ + "/haproxy.cfg");
    cfg << "global\n  maxconn 100\n"
        << "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 5s\n"
        << "  timeout server 5s\n"
        << "frontend fe\n  bind 127.0.0.1:" << port << " " << bind_opts << "\n"
        << "  unique-id-format %{+X}o%ci:%cp\n  default_backend be\n"
        << "backend be\n  server s1 " << sink.to_string() << " " << server_opts << "\n";
    cfg.close();
    EXPECT_TRUE(
        child_.start({haproxy_, "-db", "-f", dir_ + "/haproxy.cfg"}, dir_ + "/haproxy.log"));
    const SocketAddress fe = address("127.0.0.1", port);
    // Bounded wait until HAProxy holds the port: binding it ourselves then fails with
    // EADDRINUSE. (A probe connection would reach the sink as a second PROXY header.)
    for (int i = 0; i < 250 && !child_.exited(); ++i) {
      Fd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (::bind(probe.get(), fe.get(), fe.length) != 0 && errno == EADDRINUSE) return fe;
      probe.reset();
      ::usleep(20 * 1000);
    }
    ADD_FAILURE() << "haproxy did not bind " << fe.to_string() << ": "
                  << testing::read_file_text(dir_ + "/haproxy.log");
    return fe;
  }

  // Accepts HAProxy's connection to the sink and reads until the header is parsed.
  ParseResult receive_header(int sink_fd, std::vector<uint8_t>& bytes) {
    Fd conn = testing::accept_within(sink_fd);
    if (!conn.valid()) return ParseResult{};
    bytes = testing::read_until(conn.get(), [](const std::vector<uint8_t>& b) {
      return parse(b).status != Status::NeedMore;
    });
    return parse(bytes);
  }

  std::string haproxy_;
  std::string dir_;
  testing::Child child_;
};

TEST_F(HaproxyRealPeer, SendProxyV1CarriesTheClientAddress) {
  SocketAddress sink_address;
  Fd sink = testing::listen_loopback(sink_address);
  ASSERT_TRUE(sink.valid());
  const SocketAddress fe = start(sink_address, "send-proxy");
  Fd client = testing::connect_to(fe);
  ASSERT_TRUE(client.valid());
  ASSERT_EQ(::send(client.get(), "hello", 5, MSG_NOSIGNAL), 5);
  std::vector<uint8_t> bytes;
  const ParseResult r = receive_header(sink.get(), bytes);
  ASSERT_EQ(r.status, Status::Done) << r.reason << " after " << bytes.size() << " bytes";
  EXPECT_EQ(r.version, Version::V1);
  EXPECT_EQ(r.source.to_string(), SocketAddress::local_of(client.get())->to_string());
  EXPECT_EQ(r.destination.to_string(), fe.to_string());
  std::printf("haproxy send-proxy: %zu-byte header: %.*s", r.length, static_cast<int>(r.length),
              reinterpret_cast<const char*>(bytes.data()));
}

TEST_F(HaproxyRealPeer, SendProxyV2WithTlvsCarriesTheClientAddress) {
  SocketAddress sink_address;
  Fd sink = testing::listen_loopback(sink_address);
  ASSERT_TRUE(sink.valid());
  const SocketAddress fe =
      start(sink_address, "send-proxy-v2 proxy-v2-options crc32c,unique-id,authority");
  Fd client = testing::connect_to(fe);
  ASSERT_TRUE(client.valid());
  ASSERT_EQ(::send(client.get(), "hello", 5, MSG_NOSIGNAL), 5);
  std::vector<uint8_t> bytes;
  const ParseResult r = receive_header(sink.get(), bytes);
  ASSERT_EQ(r.status, Status::Done) << r.reason << " after " << bytes.size() << " bytes";
  EXPECT_EQ(r.version, Version::V2);
  EXPECT_GT(r.length, 28u) << "expected TLVs after the IPv4 address block";
  EXPECT_EQ(r.source.to_string(), SocketAddress::local_of(client.get())->to_string());
  EXPECT_EQ(r.destination.to_string(), fe.to_string());
  // Every strict prefix of HAProxy's header is NeedMore: a header split over reads works.
  for (size_t n = 0; n < r.length; ++n)
    ASSERT_EQ(parse({bytes.data(), n}).status, Status::NeedMore) << n;
  std::printf("haproxy send-proxy-v2 with crc32c,unique-id,authority: %zu-byte header\n", r.length);
}

// Ringway's own header, sent to HAProxy's `accept-proxy`, comes out of HAProxy's send-proxy-v2
// with the same client: HAProxy read the header Ringway built.
TEST_F(HaproxyRealPeer, AcceptProxyUnderstandsTheHeadersRingwayBuilds) {
  for (Version v : {Version::V1, Version::V2}) {
    SCOPED_TRACE(int(v));
    SocketAddress sink_address;
    Fd sink = testing::listen_loopback(sink_address);
    ASSERT_TRUE(sink.valid());
    const SocketAddress fe = start(sink_address, "send-proxy-v2", "accept-proxy");
    Fd client = testing::connect_to(fe);
    ASSERT_TRUE(client.valid());
    uint8_t header[kMaxBuiltLength + 5];
    const SocketAddress claimed_src = address("203.0.113.7", 51234);
    const SocketAddress claimed_dst = address("198.51.100.9", 8443);
    size_t n = build(v, claimed_src, claimed_dst, header);
    ASSERT_GT(n, 0u);
    std::memcpy(header + n, "hello", 5);
    ASSERT_EQ(::send(client.get(), header, n + 5, MSG_NOSIGNAL), static_cast<ssize_t>(n + 5));
    std::vector<uint8_t> bytes;
    const ParseResult r = receive_header(sink.get(), bytes);
    ASSERT_EQ(r.status, Status::Done) << r.reason << " after " << bytes.size() << " bytes";
    EXPECT_EQ(r.source.to_string(), claimed_src.to_string());
    EXPECT_EQ(r.destination.to_string(), claimed_dst.to_string());
    child_.stop();
  }
}

}  // namespace
}  // namespace ringway::net::proxy_protocol
