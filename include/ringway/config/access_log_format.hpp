// Access-log format strings: parsing Envoy-style `%COMMAND%` operators into a list of pieces.
// Pure string work, no I/O and no engine types, so the loader can reject a bad operator at load
// time (and --check reports it) while the app layer renders the parsed pieces per session.
//
// The supported operators are the TCP subset of Envoy's command operators (the HTTP ones such as
// %REQ(...)% mean nothing on a TCP gateway). Arguments (`%START_TIME(%s)%`) and truncation
// (`%UPSTREAM_HOST:10%`-style length limits) are not supported and are reported as errors, so a
// format copied from an HTTP listener fails loudly instead of printing something else.
//
// Response flags (%RESPONSE_FLAGS%), from a session's end reason, with Envoy's codes where Envoy
// has one for the same event:
//   UF  upstream connection failure: upstream_refused, connect_error, connect_timeout
//   UO  overflow: circuit_open (circuitBreakers.maxConnections) and connection_limit
//       (connectionLimit.maxActiveConnections; Envoy's connection_limit filter sets no flag, UO
//       is the closest: a limit refused the session)
//   SI  stream idle timeout: idle_timeout
//   DC  downstream connection termination: downstream_reset
//   UC  upstream connection termination: upstream_reset
//   -   none: normal, keepalive_timeout (the end reason does not say which side's kernel gave
//       up), drain_force_closed, internal_error (%CONNECTION_TERMINATION_DETAILS% says which)
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringway::config {

// The command operators Ringway renders. Names are Envoy's.
enum class AccessLogCommand : uint8_t {
  StartTime,                           // RFC 3339 UTC with milliseconds: 2024-05-01T12:00:00.123Z
  DownstreamRemoteAddress,             // client address and port
  DownstreamRemoteAddressWithoutPort,  // client address only (IPv6 without brackets)
  DownstreamLocalAddress,              // gateway address and port the client connected to
  UpstreamHost,                        // host of the last connect attempt; "-" when none
  UpstreamCluster,                     // the upstream's id (namespace.name)
  BytesReceived,                       // bytes received from downstream
  BytesSent,                           // bytes sent to downstream
  UpstreamWireBytesSent,               // bytes written to upstream
  UpstreamWireBytesReceived,           // bytes received from upstream
  // %DURATION%: milliseconds from accept to close ("Duration" would shadow config::Duration)
  DurationMs,
  ResponseFlags,                 // see the table at the top of this file
  ConnectionTerminationDetails,  // Ringway's end-reason word: normal, upstream_refused, ...
  kCount,
};

// "START_TIME", without the percent signs.
std::string_view command_name(AccessLogCommand command);
// True for the operators whose value is a number (bytes, duration): in jsonFormat a value that
// is exactly one of them is written as a JSON number.
bool command_is_numeric(AccessLogCommand command);
// "%START_TIME%, %DOWNSTREAM_REMOTE_ADDRESS%, ..., %%" for error messages and docs.
std::string supported_commands_list();

// Ringway's text line when stringFormat is empty. Defined here once; the docs quote it.
inline constexpr std::string_view kDefaultAccessLogFormat =
    "[%START_TIME%] %DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %UPSTREAM_CLUSTER% "
    "%UPSTREAM_HOST% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %CONNECTION_TERMINATION_DETAILS%\n";

// One piece of a parsed format: literal text (with `%%` already turned into `%`) or a command.
struct FormatPiece {
  std::string literal;  // used when `command` is empty
  std::optional<AccessLogCommand> command;
};

struct ParsedFormat {
  std::vector<FormatPiece> pieces;
  // The command when the format is exactly one operator and nothing else (jsonFormat values
  // such as "%BYTES_SENT%" are then typed: a number, or null when the value is missing).
  std::optional<AccessLogCommand> sole_command() const;
};

struct FormatParseResult {
  bool ok = true;
  std::string error;  // names the offending operator and lists the supported ones
  size_t offset = 0;  // byte offset in the input of the '%' that starts the problem
  ParsedFormat format;
};

// Parses a format string. Never throws; a bad operator gives ok=false with error and offset.
FormatParseResult parse_format(std::string_view text);

// The text format a fileSink actually writes: kDefaultAccessLogFormat when `string_format` is
// empty, else `string_format` with a '\n' appended when it does not end with one. Envoy writes
// a format exactly as given, but Ringway's contract is one session per line, so a format
// without the newline would glue every session onto one line.
std::string effective_text_format(std::string_view string_format);

}  // namespace ringway::config
