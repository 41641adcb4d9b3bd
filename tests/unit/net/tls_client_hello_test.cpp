// ClientHello peek and SNI matching: hand-built ClientHellos (well-formed, split over records,
// hostile lengths), real ClientHellos captured from `openssl s_client` connecting to a loopback
// listener, and Envoy's server-name matching rules.
#include "ringway/net/tls_client_hello.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net_test_util.hpp"
#include "real_peer_util.hpp"

namespace ringway::net::tls {
namespace {

using Bytes = std::vector<uint8_t>;
using testing::Fd;

void put16(Bytes& b, size_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

Bytes server_name_extension(const std::string& name, uint8_t name_type = 0) {
  Bytes entry = {name_type};
  put16(entry, name.size());
  entry.insert(entry.end(), name.begin(), name.end());
  Bytes ext;
  put16(ext, 0);  // server_name
  put16(ext, entry.size() + 2);
  put16(ext, entry.size());
  ext.insert(ext.end(), entry.begin(), entry.end());
  return ext;
}

// A ClientHello handshake message with the given extensions block (no block when `extensions`
// is null).
Bytes client_hello(const Bytes* extensions) {
  Bytes body = {0x03, 0x03};
  body.resize(2 + 32, 0xAB);  // random
  body.push_back(32);         // session id
  body.resize(body.size() + 32, 0x11);
  put16(body, 4);  // two cipher suites
  body.insert(body.end(), {0x13, 0x01, 0x13, 0x02});
  body.insert(body.end(), {1, 0});  // compression: null
  if (extensions != nullptr) {
    put16(body, extensions->size());
    body.insert(body.end(), extensions->begin(), extensions->end());
  }
  Bytes message = {1, static_cast<uint8_t>(body.size() >> 16),
                   static_cast<uint8_t>(body.size() >> 8), static_cast<uint8_t>(body.size())};
  message.insert(message.end(), body.begin(), body.end());
  return message;
}

// Wraps a handshake byte stream in handshake records of at most `fragment` bytes each.
Bytes records(const Bytes& handshake, size_t fragment = 16384) {
  Bytes out;
  for (size_t at = 0; at < handshake.size(); at += fragment) {
    const size_t n = std::min(fragment, handshake.size() - at);
    out.insert(out.end(), {22, 0x03, 0x01});
    put16(out, n);
    out.insert(out.end(), handshake.begin() + at, handshake.begin() + at + n);
  }
  return out;
}

Bytes hello_with_name(const std::string& name, size_t fragment = 16384) {
  Bytes ext = {0x00, 0x0A, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1D};  // supported_groups first
  const Bytes sni = server_name_extension(name);
  ext.insert(ext.end(), sni.begin(), sni.end());
  ext.insert(ext.end(), {0x00, 0x2B, 0x00, 0x03, 0x02, 0x03, 0x04});  // supported_versions
  return records(client_hello(&ext), fragment);
}

// The answer for every strict prefix is NeedMore, or the same terminal answer as the whole.
void expect_prefixes_consistent(const Bytes& stream, const PeekResult& whole) {
  for (size_t n = 0; n < stream.size(); ++n) {
    const PeekResult r = peek_client_hello({stream.data(), n});
    if (r.status == Status::NeedMore) continue;
    ASSERT_EQ(r.status, whole.status) << "prefix " << n;
    ASSERT_EQ(r.server_name, whole.server_name) << "prefix " << n;
  }
}

TEST(ClientHello, FindsTheServerNameLowercased) {
  const Bytes stream = hello_with_name("WWW.Example.COM");
  const PeekResult r = peek_client_hello(stream);
  ASSERT_EQ(r.status, Status::Done) << r.reason;
  EXPECT_EQ(r.server_name, "www.example.com");
  EXPECT_EQ(r.hello_length, stream.size());
  expect_prefixes_consistent(stream, r);
  for (size_t n = 0; n < stream.size(); ++n)
    ASSERT_EQ(peek_client_hello({stream.data(), n}).status, Status::NeedMore) << n;
}

TEST(ClientHello, ReadsAClientHelloSplitOverManyRecords) {
  for (size_t fragment : {1, 7, 64, 100}) {
    SCOPED_TRACE(fragment);
    const Bytes stream = hello_with_name("split.example", fragment);
    const PeekResult r = peek_client_hello(stream);
    ASSERT_EQ(r.status, Status::Done) << r.reason;
    EXPECT_EQ(r.server_name, "split.example");
    EXPECT_EQ(r.hello_length, stream.size());
  }
}

TEST(ClientHello, NoExtensionsOrNoServerNameIsNoSni) {
  EXPECT_EQ(peek_client_hello(records(client_hello(nullptr))).status, Status::NoSni);
  const Bytes ext = {0x00, 0x0A, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1D};
  EXPECT_EQ(peek_client_hello(records(client_hello(&ext))).status, Status::NoSni);
  // A server_name list holding only an unknown name type.
  const Bytes other = server_name_extension("x", 7);
  EXPECT_EQ(peek_client_hello(records(client_hello(&other))).status, Status::NoSni);
}

TEST(ClientHello, PlainTextIsNotTls) {
  for (const std::string& text :
       std::vector<std::string>{"GET / HTTP/1.1\r\n", "SSH-2.0-OpenSSH_9.2\r\n", "PROXY TCP4 ",
                                std::string("\x16\x02\x00", 3), std::string("\x16\x03\x09", 3)}) {
    SCOPED_TRACE(text);
    const PeekResult r = peek_client_hello(Bytes(text.begin(), text.end()));
    EXPECT_EQ(r.status, Status::NotTls);
    EXPECT_NE(r.reason, nullptr);
  }
  // A handshake record that is not a ClientHello (a ServerHello, type 2).
  Bytes server_hello = client_hello(nullptr);
  server_hello[0] = 2;
  EXPECT_EQ(peek_client_hello(records(server_hello)).status, Status::NotTls);
  // One byte is enough to tell.
  EXPECT_EQ(peek_client_hello(Bytes{'G'}).status, Status::NotTls);
  EXPECT_EQ(peek_client_hello(Bytes{}).status, Status::NeedMore);
  EXPECT_EQ(peek_client_hello(Bytes{22}).status, Status::NeedMore);
}

TEST(ClientHello, NeverTrustsALength) {
  const Bytes good = hello_with_name("a.example");
  auto corrupt = [&](size_t at, uint8_t value) {
    Bytes b = good;
    b[at] = value;
    return peek_client_hello(b);
  };
  // Offsets into `good`: record header 0..4, handshake header 5..8, version 9..10, random
  // 11..42, session id length 43.
  EXPECT_EQ(corrupt(43, 33).status, Status::Error);  // session id longer than 32
  EXPECT_EQ(corrupt(43, 200).status, Status::Error);
  // The message claims 64 KiB more than its fields and extensions use: they disagree.
  EXPECT_EQ(corrupt(6, 0xFF).status, Status::Error);
  EXPECT_EQ(corrupt(8, 10).status, Status::Error);  // message shorter than its fields
  Bytes zero_record = good;
  zero_record[3] = 0, zero_record[4] = 0;
  EXPECT_EQ(peek_client_hello(zero_record).status, Status::Error);
  Bytes big_record = good;
  big_record[3] = 0x40, big_record[4] = 0x01;  // 16385 > 2^14
  EXPECT_EQ(peek_client_hello(big_record).status, Status::Error);

  // Extension lengths: the list claiming one byte more than the message holds.
  Bytes ext = server_name_extension("a.example");
  Bytes bad_list = ext;
  bad_list[5] += 1;  // server_name_list length
  EXPECT_EQ(peek_client_hello(records(client_hello(&bad_list))).status, Status::Error);
  Bytes bad_ext = ext;
  bad_ext[3] += 1;  // extension length past the extensions block
  EXPECT_EQ(peek_client_hello(records(client_hello(&bad_ext))).status, Status::Error);
  Bytes bad_name = ext;
  bad_name[8] += 1;  // host_name length past its list
  EXPECT_EQ(peek_client_hello(records(client_hello(&bad_name))).status, Status::Error);
  Bytes twice = ext;
  twice.insert(twice.end(), ext.begin(), ext.end());
  EXPECT_EQ(peek_client_hello(records(client_hello(&twice))).status, Status::Error);
}

TEST(ClientHello, RefusesNamesThatAreNotHostNames) {
  for (const char* bad : {"", "a..b", ".a", "a b", "a/b", "\x01x", "caf\xc3\xa9.example"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(peek_client_hello(hello_with_name(bad)).status, Status::Error);
  }
  EXPECT_EQ(peek_client_hello(hello_with_name(std::string(256, 'a'))).status, Status::Error);
  const PeekResult r = peek_client_hello(hello_with_name("under_score.example."));
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.server_name, "under_score.example.");
}

TEST(ClientHello, StopsAtTheCap) {
  // A ClientHello padded to ~3 KiB (a padding extension, type 21) in 512-byte records.
  Bytes ext = server_name_extension("big.example");
  ext.insert(ext.end(), {0x00, 0x15, 0x0B, 0xB8});
  ext.resize(ext.size() + 3000, 0);
  const Bytes stream = records(client_hello(&ext), 512);
  EXPECT_EQ(peek_client_hello(stream).status, Status::Done);
  EXPECT_EQ(peek_client_hello(stream, stream.size()).status, Status::Done);
  EXPECT_EQ(peek_client_hello(stream, stream.size() - 1).status, Status::Error);
  // The cap applies before the bytes arrive: once the padding extension's header says it runs
  // past the cap, the answer is Error without waiting for the bytes; before that header has
  // arrived, it is NeedMore.
  EXPECT_EQ(peek_client_hello({stream.data(), 900}, 1000).status, Status::Error);
  EXPECT_EQ(peek_client_hello({stream.data(), 60}, 1000).status, Status::NeedMore);
}

// ---- openssl s_client as the real peer ------------------------------------------------------

// Runs `openssl s_client` with `args` against a loopback listener and returns the bytes it sent
// before the (absent) ServerHello: its ClientHello.
Bytes capture_client_hello(const std::string& openssl, const std::vector<std::string>& args) {
  SocketAddress bound;
  Fd listener = testing::listen_loopback(bound);
  if (!listener.valid()) return {};
  std::vector<std::string> argv = {openssl, "s_client", "-connect", bound.to_string()};
  argv.insert(argv.end(), args.begin(), args.end());
  testing::Child child;
  if (!child.start(argv)) return {};
  Fd conn = testing::accept_within(listener.get());
  if (!conn.valid()) return {};
  return testing::read_until(
      conn.get(), [](const Bytes& b) { return peek_client_hello(b).status != Status::NeedMore; });
}

class OpensslRealPeer : public ::testing::Test {
 protected:
  void SetUp() override {
    openssl_ = testing::find_program("openssl");
    if (openssl_.empty()) GTEST_SKIP() << "openssl is not installed (scripts/lib.sh lists it)";
  }
  std::string openssl_;
};

TEST_F(OpensslRealPeer, ServerNameFromTls13And12ClientHellos) {
  struct Case {
    std::vector<std::string> args;
    const char* want;
  };
  for (const Case& c : {Case{{"-servername", "a.Example.COM"}, "a.example.com"},
                        Case{{"-servername", "b.example", "-tls1_2"}, "b.example"},
                        Case{{"-servername", "x.y.example", "-tls1_3"}, "x.y.example"}}) {
    SCOPED_TRACE(c.want);
    const Bytes stream = capture_client_hello(openssl_, c.args);
    const PeekResult r = peek_client_hello(stream);
    ASSERT_EQ(r.status, Status::Done)
        << (r.reason ? r.reason : "") << ", " << stream.size() << " bytes";
    EXPECT_EQ(r.server_name, c.want);
    EXPECT_EQ(r.hello_length, stream.size());
    expect_prefixes_consistent(stream, r);
    std::printf("openssl s_client %s: %zu-byte ClientHello, SNI %s\n", c.args.back().c_str(),
                stream.size(), r.server_name.c_str());

    // The same handshake bytes re-framed into 50-byte records still give the same name.
    Bytes handshake;
    for (size_t at = 0; at + 5 <= stream.size();) {
      const size_t n = (size_t{stream[at + 3]} << 8) | stream[at + 4];
      handshake.insert(handshake.end(), stream.begin() + at + 5, stream.begin() + at + 5 + n);
      at += 5 + n;
    }
    const PeekResult split = peek_client_hello(records(handshake, 50));
    ASSERT_EQ(split.status, Status::Done);
    EXPECT_EQ(split.server_name, c.want);
  }
}

TEST_F(OpensslRealPeer, NoServernameIsNoSni) {
  const Bytes stream = capture_client_hello(openssl_, {"-noservername"});
  const PeekResult r = peek_client_hello(stream);
  EXPECT_EQ(r.status, Status::NoSni)
      << (r.reason ? r.reason : "") << ", " << stream.size() << " bytes";
}

// ---- SniMatcher ------------------------------------------------------------------------------

TEST(SniMatcher, ExactBeatsWildcardAndLongestSuffixWins) {
  auto m = SniMatcher::build({
      {"*.example.com"},                  // 0
      {"www.example.com", "other.test"},  // 1
      {"*.b.example.com"},                // 2
      {"*.com"},                          // 3
  });
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->match("www.example.com"), 1);
  EXPECT_EQ(m->match("WWW.Example.com."), 1);
  EXPECT_EQ(m->match("other.test"), 1);
  EXPECT_EQ(m->match("a.example.com"), 0);
  EXPECT_EQ(m->match("a.c.example.com"), 0);  // one or more labels, as in Envoy
  EXPECT_EQ(m->match("x.b.example.com"), 2);
  EXPECT_EQ(m->match("y.x.b.example.com"), 2);
  EXPECT_EQ(m->match("b.example.com"), 0);  // "*.b.example.com" needs a label before b
  EXPECT_EQ(m->match("example.com"), 3);    // not "*.example.com": no label in front
  EXPECT_EQ(m->match("com"), -1);
  EXPECT_EQ(m->match("example.org"), -1);
  EXPECT_EQ(m->match(""), -1);
  EXPECT_EQ(m->match(std::string(300, 'a')), -1);
}

TEST(SniMatcher, RefusesWhatEnvoyRefuses) {
  for (const std::vector<std::vector<std::string>>& bad :
       std::vector<std::vector<std::vector<std::string>>>{
           {{"*"}},
           {{"*w.example.com"}},
           {{"a.*.example.com"}},
           {{"*.*.example.com"}},
           {{""}},
           {{"a.example"}, {"A.Example."}},  // the same name in two entries
           {{"*.example"}, {"*.example"}},
       }) {
    auto m = SniMatcher::build(bad);
    EXPECT_FALSE(m);
    if (!m) {
      EXPECT_FALSE(m.error().message.empty());
    }
  }
  // The same name twice in one entry is harmless.
  EXPECT_TRUE(SniMatcher::build({{"a.example", "a.example"}}));
}

}  // namespace
}  // namespace ringway::net::tls
