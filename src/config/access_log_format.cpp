// Parsing access-log format strings (see access_log_format.hpp for the operators and the
// response-flag table). Pure string work: the loader validates formats with it at load time.
#include "ringway/config/access_log_format.hpp"

#include <fmt/format.h>

#include <array>

namespace ringway::config {
namespace {

struct CommandInfo {
  std::string_view name;
  bool numeric;
};

// Indexed by AccessLogCommand; the order is the order of the enum.
constexpr std::array<CommandInfo, static_cast<size_t>(AccessLogCommand::kCount)> kCommands{{
    {"START_TIME", false},
    {"DOWNSTREAM_REMOTE_ADDRESS", false},
    {"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", false},
    {"DOWNSTREAM_LOCAL_ADDRESS", false},
    {"UPSTREAM_HOST", false},
    {"UPSTREAM_CLUSTER", false},
    {"BYTES_RECEIVED", true},
    {"BYTES_SENT", true},
    {"UPSTREAM_WIRE_BYTES_SENT", true},
    {"UPSTREAM_WIRE_BYTES_RECEIVED", true},
    {"DURATION", true},
    {"RESPONSE_FLAGS", false},
    {"CONNECTION_TERMINATION_DETAILS", false},
}};

// Envoy's operator names are upper case letters, digits and underscores.
bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

std::optional<AccessLogCommand> find_command(std::string_view name) {
  for (size_t i = 0; i < kCommands.size(); ++i) {
    if (kCommands[i].name == name) return static_cast<AccessLogCommand>(i);
  }
  return std::nullopt;
}

FormatParseResult failure(size_t offset, std::string message) {
  FormatParseResult r;
  r.ok = false;
  r.offset = offset;
  r.error = std::move(message);
  return r;
}

// Appends literal text, merging with a preceding literal piece so "a%%b" is one piece.
void add_literal(ParsedFormat& f, std::string_view text) {
  if (text.empty()) return;
  if (!f.pieces.empty() && !f.pieces.back().command) {
    f.pieces.back().literal.append(text);
    return;
  }
  f.pieces.push_back(FormatPiece{std::string(text), std::nullopt});
}

}  // namespace

std::string_view command_name(AccessLogCommand command) {
  const auto i = static_cast<size_t>(command);
  return i < kCommands.size() ? kCommands[i].name : std::string_view("?");
}

bool command_is_numeric(AccessLogCommand command) {
  const auto i = static_cast<size_t>(command);
  return i < kCommands.size() && kCommands[i].numeric;
}

std::string supported_commands_list() {
  std::string out;
  for (const auto& c : kCommands) {
    out.append("%").append(c.name).append("%, ");
  }
  out.append("%% (a literal percent sign)");
  return out;
}

std::optional<AccessLogCommand> ParsedFormat::sole_command() const {
  if (pieces.size() == 1 && pieces.front().command) return pieces.front().command;
  return std::nullopt;
}

FormatParseResult parse_format(std::string_view text) {
  FormatParseResult result;
  size_t literal_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '%') {
      ++i;
      continue;
    }
    add_literal(result.format, text.substr(literal_start, i - literal_start));
    const size_t start = i;
    if (i + 1 < text.size() && text[i + 1] == '%') {
      add_literal(result.format, "%");
      i += 2;
      literal_start = i;
      continue;
    }
    size_t end = i + 1;
    while (end < text.size() && is_name_char(text[end]))
      ++end;
    const std::string_view name = text.substr(i + 1, end - i - 1);
    if (name.empty()) {
      return failure(start,
                     "'%' does not start a command operator (write %% for a literal percent "
                     "sign); supported: " +
                         supported_commands_list());
    }
    if (end < text.size() && text[end] == '(') {
      return failure(start, fmt::format("%{}(...)%: command operator arguments are not supported; "
                                        "supported: {}",
                                        name, supported_commands_list()));
    }
    if (end < text.size() && text[end] == ':') {
      return failure(
          start, fmt::format("%{}:N%: length limits on command operators are not supported", name));
    }
    if (end >= text.size() || text[end] != '%') {
      return failure(start, fmt::format("%{} is not closed by '%' (write %% for a literal percent "
                                        "sign)",
                                        name));
    }
    const auto command = find_command(name);
    if (!command) {
      return failure(start, "unknown command operator %" + std::string(name) +
                                "%; supported: " + supported_commands_list());
    }
    result.format.pieces.push_back(FormatPiece{{}, command});
    i = end + 1;
    literal_start = i;
  }
  add_literal(result.format, text.substr(literal_start));
  return result;
}

std::string effective_text_format(std::string_view string_format) {
  if (string_format.empty()) return std::string(kDefaultAccessLogFormat);
  std::string f(string_format);
  if (f.back() != '\n') f.push_back('\n');
  return f;
}

}  // namespace ringway::config
