// Durations, base64 and did-you-mean: the value syntaxes the loader builds on.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ringway/config/suggest.hpp"
#include "ringway/config/values.hpp"

namespace ringway::config {
namespace {

int64_t ns(std::string_view text) {
  auto r = parse_duration_ns(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : -1;
}

std::string duration_error(std::string_view text) {
  auto r = parse_duration_ns(text);
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? std::string() : r.error().message;
}

TEST(Duration, ProtobufJsonForms) {
  EXPECT_EQ(ns("60s"), 60'000'000'000);
  EXPECT_EQ(ns("0.5s"), 500'000'000);
  EXPECT_EQ(ns("0s"), 0);
  EXPECT_EQ(ns("1.000340012s"), 1'000'340'012);
  EXPECT_EQ(ns("3600s"), 3'600'000'000'000);
}

TEST(Duration, GoForms) {
  EXPECT_EQ(ns("1m30s"), 90'000'000'000);
  EXPECT_EQ(ns("500ms"), 500'000'000);
  EXPECT_EQ(ns("1h"), 3'600'000'000'000);
  EXPECT_EQ(ns("2h45m"), (2 * 3600 + 45 * 60) * 1'000'000'000LL);
  EXPECT_EQ(ns("1m2s"), 62'000'000'000);
  EXPECT_EQ(ns("1.5h"), 5400'000'000'000);
  EXPECT_EQ(ns("250us"), 250'000);
  EXPECT_EQ(ns("250\xC2\xB5s"), 250'000);
  EXPECT_EQ(ns("7ns"), 7);
  EXPECT_EQ(ns("0"), 0);
}

TEST(Duration, FractionsRoundUpToWholeNanoseconds) {
  EXPECT_EQ(ns("1.5ns"), 2);
  EXPECT_EQ(ns("0.0001ms"), 100);
  EXPECT_EQ(ns("0.000000001s"), 1);
}

TEST(Duration, Rejections) {
  EXPECT_EQ(duration_error(""), "it is empty");
  EXPECT_EQ(duration_error("-5s"), "negative durations are not allowed");
  EXPECT_EQ(duration_error("60"), "missing unit after \"60\"");
  EXPECT_EQ(duration_error("5x"), "unknown unit \"x\"");
  EXPECT_EQ(duration_error("5 s"), "unknown unit \" s\"");
  EXPECT_EQ(duration_error("s"), "expected a number at \"s\"");
  EXPECT_EQ(duration_error("1s."), "expected a number at \".\"");
  EXPECT_EQ(duration_error("0.1234567891s"),
            "more than 9 fractional digits (nanosecond precision)");
  EXPECT_EQ(duration_error("9223372036854775808ns"), "too large (at most about 292 years)");
  EXPECT_EQ(duration_error("2562048h"), "too large (at most about 292 years)");
  EXPECT_EQ(duration_error("2562047h2562047h"), "too large (at most about 292 years)");
}

TEST(Duration, CeilingConversions) {
  EXPECT_EQ(ceil_to_duration(1).count(), 1);
  EXPECT_EQ(ceil_to_duration(1'000'000).count(), 1);
  EXPECT_EQ(ceil_to_duration(1'000'001).count(), 2);
  EXPECT_EQ(ceil_to_seconds(0), 0);
  EXPECT_EQ(ceil_to_seconds(1), 1);
  EXPECT_EQ(ceil_to_seconds(60'000'000'000), 60);
  EXPECT_EQ(ceil_to_seconds(60'000'000'001), 61);
}

TEST(Duration, FormatReadsBackToTheSameValue) {
  EXPECT_EQ(format_duration(std::chrono::seconds(3600)), "3600s");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(500)), "0.5s");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(1)), "0.001s");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(0)), "0s");
  for (int64_t ms : {0LL, 1LL, 10LL, 999LL, 1000LL, 1234LL, 86'400'000LL}) {
    EXPECT_EQ(ns(format_duration(Duration(ms))), ms * 1'000'000) << ms;
  }
}

TEST(Base64, DecodesStandardPaddedText) {
  EXPECT_EQ(base64_decode(""), std::string());
  EXPECT_EQ(base64_decode("AQAAAB4AAAA="), std::string("\x01\0\0\0\x1e\0\0\0", 8));
  EXPECT_EQ(base64_decode("Zm8="), "fo");
  EXPECT_EQ(base64_decode("Zg=="), "f");
  EXPECT_EQ(base64_decode("Zm9v"), "foo");
  EXPECT_EQ(base64_decode("+/+/"), std::string("\xfb\xff\xbf"));
}

TEST(Base64, RejectsAnythingElse) {
  EXPECT_FALSE(base64_decode("Zm8"));       // no padding
  EXPECT_FALSE(base64_decode("Zg="));       // short padding
  EXPECT_FALSE(base64_decode("Z==="));      // three pad characters
  EXPECT_FALSE(base64_decode("Zm=v"));      // data after padding
  EXPECT_FALSE(base64_decode("Zm8=Zm8="));  // padding in the middle
  EXPECT_FALSE(base64_decode("Zm-_"));      // URL-safe alphabet
  EXPECT_FALSE(base64_decode("Zm 9"));      // whitespace
}

TEST(Base64, EncodeDecodeRoundTrips) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) {
    bytes.push_back(static_cast<char>(i));
    EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes);
  }
}

TEST(Suggest, CamelAndSnakeSpellings) {
  EXPECT_EQ(snake_to_camel("keepalive_time"), "keepaliveTime");
  EXPECT_EQ(snake_to_camel("aws_ec2"), "awsEc2");
  EXPECT_EQ(camel_to_snake("http1ProtocolOptions"), "http1_protocol_options");
  EXPECT_EQ(camel_to_snake("perConnectionBufferLimitBytes"), "per_connection_buffer_limit_bytes");
}

TEST(Suggest, ClosestIsATypoAwayOrNothing) {
  const std::vector<std::string> keys = {"bindAddress", "bindPort", "options", "tcpGateway"};
  EXPECT_EQ(closest("bindAdress", keys), "bindAddress");
  EXPECT_EQ(closest("bindaddress", keys), "bindAddress");
  EXPECT_EQ(closest("bindport", keys), "bindPort");
  EXPECT_EQ(closest("tcp_gateway", keys), "tcpGateway");
  EXPECT_EQ(closest("bind", keys), std::nullopt);  // too short to tell bindPort from bindAddress
  EXPECT_EQ(closest("listener", keys), std::nullopt);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(Quoted, EscapesQuotesAndControlBytes) {
  EXPECT_EQ(quoted("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000A\"");
}

}  // namespace
}  // namespace ringway::config
