// Access-log format parsing: every supported operator is recognised, `%%` is a literal percent,
// and each malformed or unknown operator is an error that names it, says where it is and lists
// what is supported (what --check shows the operator).
#include "ringway/config/access_log_format.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ringway::config {
namespace {

TEST(AccessLogFormat, EveryOperatorParsesToItsCommand) {
  for (size_t i = 0; i < static_cast<size_t>(AccessLogCommand::kCount); ++i) {
    const auto command = static_cast<AccessLogCommand>(i);
    const std::string text = "%" + std::string(command_name(command)) + "%";
    const auto r = parse_format(text);
    ASSERT_TRUE(r.ok) << text << ": " << r.error;
    ASSERT_EQ(r.format.pieces.size(), 1u) << text;
    EXPECT_EQ(r.format.sole_command(), command) << text;
  }
}

TEST(AccessLogFormat, NamesAreEnvoys) {
  EXPECT_EQ(command_name(AccessLogCommand::StartTime), "START_TIME");
  EXPECT_EQ(command_name(AccessLogCommand::DownstreamRemoteAddressWithoutPort),
            "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT");
  EXPECT_EQ(command_name(AccessLogCommand::UpstreamWireBytesReceived),
            "UPSTREAM_WIRE_BYTES_RECEIVED");
  EXPECT_EQ(command_name(AccessLogCommand::ConnectionTerminationDetails),
            "CONNECTION_TERMINATION_DETAILS");
  EXPECT_TRUE(command_is_numeric(AccessLogCommand::BytesSent));
  EXPECT_TRUE(command_is_numeric(AccessLogCommand::DurationMs));
  EXPECT_FALSE(command_is_numeric(AccessLogCommand::UpstreamHost));
  EXPECT_FALSE(command_is_numeric(AccessLogCommand::ResponseFlags));
}

TEST(AccessLogFormat, LiteralsAndCommandsAlternate) {
  const auto r = parse_format("from %DOWNSTREAM_REMOTE_ADDRESS% to %UPSTREAM_HOST%\n");
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.format.pieces.size(), 5u);
  EXPECT_EQ(r.format.pieces[0].literal, "from ");
  EXPECT_FALSE(r.format.pieces[0].command);
  EXPECT_EQ(r.format.pieces[1].command, AccessLogCommand::DownstreamRemoteAddress);
  EXPECT_EQ(r.format.pieces[2].literal, " to ");
  EXPECT_EQ(r.format.pieces[3].command, AccessLogCommand::UpstreamHost);
  EXPECT_EQ(r.format.pieces[4].literal, "\n");
  EXPECT_FALSE(r.format.sole_command());
}

TEST(AccessLogFormat, DoublePercentIsALiteralPercent) {
  const auto r = parse_format("100%% of %BYTES_SENT%%%");
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.format.pieces.size(), 3u);
  EXPECT_EQ(r.format.pieces[0].literal, "100% of ");
  EXPECT_EQ(r.format.pieces[1].command, AccessLogCommand::BytesSent);
  EXPECT_EQ(r.format.pieces[2].literal, "%");

  const auto only = parse_format("%%");
  ASSERT_TRUE(only.ok);
  ASSERT_EQ(only.format.pieces.size(), 1u);
  EXPECT_EQ(only.format.pieces[0].literal, "%");
  EXPECT_FALSE(only.format.sole_command());
}

TEST(AccessLogFormat, EmptyAndPlainTextHaveNoCommands) {
  EXPECT_TRUE(parse_format("").ok);
  EXPECT_TRUE(parse_format("").format.pieces.empty());
  const auto r = parse_format("just text");
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.format.pieces.size(), 1u);
  EXPECT_EQ(r.format.pieces[0].literal, "just text");
}

TEST(AccessLogFormat, UnknownOperatorIsNamedWithItsOffsetAndTheSupportedList) {
  const auto r = parse_format("[%START_TIME%] %REQ_METHOD% %BYTES_SENT%");
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.offset, 15u);
  EXPECT_EQ(r.error.rfind("unknown command operator %REQ_METHOD%; supported: %START_TIME%, ", 0),
            0u)
      << r.error;
  EXPECT_NE(r.error.find("%CONNECTION_TERMINATION_DETAILS%"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("%% (a literal percent sign)"), std::string::npos) << r.error;
}

TEST(AccessLogFormat, OperatorNamesAreCaseSensitiveAsInEnvoy) {
  const auto r = parse_format("%bytes_sent%");
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.offset, 0u);
  EXPECT_NE(r.error.find("does not start a command operator"), std::string::npos) << r.error;
}

TEST(AccessLogFormat, UnterminatedOperatorIsAnError) {
  const auto r = parse_format("sent %BYTES_SENT");
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.offset, 5u);
  EXPECT_EQ(r.error, "%BYTES_SENT is not closed by '%' (write %% for a literal percent sign)");

  const auto lone = parse_format("50% off");
  ASSERT_FALSE(lone.ok);
  EXPECT_EQ(lone.offset, 2u);

  const auto trailing = parse_format("x%");
  ASSERT_FALSE(trailing.ok);
  EXPECT_EQ(trailing.offset, 1u);
}

TEST(AccessLogFormat, ArgumentsAndLengthLimitsAreRejected) {
  const auto args = parse_format("%START_TIME(%s)%");
  ASSERT_FALSE(args.ok);
  EXPECT_EQ(args.offset, 0u);
  EXPECT_NE(args.error.find("%START_TIME(...)%: command operator arguments are not supported"),
            std::string::npos)
      << args.error;

  const auto limit = parse_format("ab%UPSTREAM_HOST:10%");
  ASSERT_FALSE(limit.ok);
  EXPECT_EQ(limit.offset, 2u);
  EXPECT_NE(limit.error.find("length limits"), std::string::npos) << limit.error;
}

TEST(AccessLogFormat, DefaultFormatParsesAndEndsTheLine) {
  const auto r = parse_format(kDefaultAccessLogFormat);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_FALSE(r.format.pieces.empty());
  EXPECT_EQ(r.format.pieces.front().literal, "[");
  EXPECT_EQ(r.format.pieces[1].command, AccessLogCommand::StartTime);
  EXPECT_EQ(r.format.pieces.back().literal, "\n");
  EXPECT_EQ(r.format.pieces[r.format.pieces.size() - 2].command,
            AccessLogCommand::ConnectionTerminationDetails);
}

TEST(AccessLogFormat, EffectiveTextFormatAddsTheNewlineOnce) {
  EXPECT_EQ(effective_text_format(""), std::string(kDefaultAccessLogFormat));
  EXPECT_EQ(effective_text_format("%BYTES_SENT%"), "%BYTES_SENT%\n");
  EXPECT_EQ(effective_text_format("%BYTES_SENT%\n"), "%BYTES_SENT%\n");
}

}  // namespace
}  // namespace ringway::config
