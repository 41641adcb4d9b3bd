// The pre-scan for toml++ 3.3 crash inputs (see toml_guard.hpp). Found by the config fuzzer
// (tests/fuzz); each kind has a regression input in tests/fuzz/corpus/regression_*.toml and a
// unit test in tests/unit/config/loader_test.cpp.
#include "toml_guard.hpp"

#include <cstdint>
#include <vector>

namespace ringway::config::detail {
namespace {

bool is_key_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '"' || c == '\'';
}

bool is_ascii(char c) {
  return (static_cast<unsigned char>(c) & 0x80) == 0;
}

// What ends a bare value for toml++ (is_value_terminator, ASCII part).
bool is_terminator(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ']' || c == '}' || c == ',' ||
         c == '#';
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// "YYYY-MM-DDT" followed by something other than a digit: toml++ then parses a time anyway.
bool is_date_t_without_time(std::string_view text, size_t i) {
  constexpr std::string_view kShape = "dddd-dd-ddT";
  if (text.size() < i + kShape.size() + 1) return false;
  for (size_t k = 0; k < kShape.size(); ++k) {
    const char c = text[i + k];
    if (kShape[k] == 'd' && !is_digit(c)) return false;
    if (kShape[k] == '-' && c != '-') return false;
    if (kShape[k] == 'T' && c != 'T' && c != 't') return false;
  }
  return !is_digit(text[i + kShape.size()]);
}

}  // namespace

std::optional<Hazard> find_parser_hazard(std::string_view text) {
  constexpr std::string_view kHeader =
      "invalid TOML: expected a key (bare or quoted) or ']' in a table header";
  constexpr std::string_view kNonAscii =
      "invalid TOML: a non-ASCII character outside a string or comment";
  constexpr std::string_view kEscape =
      "invalid TOML: a non-ASCII character right after a backslash in a multi-line string";
  constexpr std::string_view kArray = "invalid TOML: expected a value or ']' in an array, saw '}'";
  constexpr std::string_view kDateTime = "invalid TOML: expected a time (HH:MM:SS) after the 'T'";
  enum class In : uint8_t { Code, Comment, Basic, Literal, MultiBasic, MultiLiteral };
  In in = In::Code;
  // Open arrays and inline tables outside strings, innermost last; `expect_value` is true in an
  // array right after '[' or ','.
  std::vector<char> containers;
  bool expect_value = false;
  bool after_equals = false;  // the last code character was '=': a value starts next
  bool line_start = true;
  uint32_t line = 1;
  uint32_t column = 1;
  const auto starts = [&](size_t i, std::string_view what) { return text.substr(i, 3) == what; };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      column = 1;
      line_start = true;
      if (in == In::Comment || in == In::Basic || in == In::Literal) in = In::Code;
      continue;
    }
    const SourcePos here{line, column};
    // Columns count code points, as toml++ does: UTF-8 continuation bytes add nothing.
    const bool continuation = (static_cast<unsigned char>(c) & 0xC0) == 0x80;
    switch (in) {
      case In::Code:
        if (!is_ascii(c)) return Hazard{here, kNonAscii};
        if (after_equals || (expect_value && !containers.empty() && containers.back() == '[')) {
          if (is_digit(c) && is_date_t_without_time(text, i)) {
            return Hazard{{line, column + 11}, kDateTime};
          }
          // A value that is not a string, array or table is scanned by toml++ up to the next
          // value terminator, quotes included ("3\"x\"" is one bare value to it), asking
          // is_value_terminator() of every character.
          if (c != '"' && c != '\'' && c != '[' && c != '{' && c != ' ' && c != '\t') {
            for (size_t j = i; j < text.size() && !is_terminator(text[j]); ++j) {
              if (!is_ascii(text[j])) {
                return Hazard{{line, column + static_cast<uint32_t>(j - i)}, kNonAscii};
              }
            }
          }
        }
        if (c != ' ' && c != '\t' && c != '\r') after_equals = c == '=';
        if (c == '[' && line_start && containers.empty()) {
          size_t j = i + 1;
          while (j < text.size() && (text[j] == ' ' || text[j] == '\t'))
            ++j;
          if (j < text.size() && text[j] == '[') {
            ++j;
            while (j < text.size() && (text[j] == ' ' || text[j] == '\t'))
              ++j;
          }
          if (j < text.size() && text[j] != ']' && !is_key_start(text[j])) {
            return Hazard{{line, column + static_cast<uint32_t>(j - i)}, kHeader};
          }
        } else if (c == '[' || c == '{') {
          if (!containers.empty() && containers.back() == '[') expect_value = false;
          containers.push_back(c);
          expect_value = c == '[';
        } else if (c == ']' || c == '}') {
          if (c == '}' && !containers.empty() && containers.back() == '[' && expect_value) {
            return Hazard{here, kArray};
          }
          if (!containers.empty() && containers.back() == (c == ']' ? '[' : '{')) {
            containers.pop_back();
            expect_value = false;
          }
        } else if (c == ',') {
          if (!containers.empty() && containers.back() == '[') expect_value = true;
        } else if (c != ' ' && c != '\t' && c != '\r' && c != '#') {
          if (!containers.empty() && containers.back() == '[') expect_value = false;
        }
        if (c == '#') {
          in = In::Comment;
        } else if (starts(i, "\"\"\"")) {
          in = In::MultiBasic;
          i += 2;
          column += 2;
        } else if (starts(i, "\'\'\'")) {
          in = In::MultiLiteral;
          i += 2;
          column += 2;
        } else if (c == '"') {
          in = In::Basic;
        } else if (c == '\'') {
          in = In::Literal;
        }
        break;
      case In::Basic:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
          ++i;  // an escaped character never ends the string
          ++column;
        } else if (c == '"') {
          in = In::Code;
        }
        break;
      case In::MultiBasic:
        if (c == '\\') {
          size_t j = i + 1;
          while (j < text.size() &&
                 (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n')) {
            ++j;
          }
          if (i + 1 < text.size() && !is_ascii(text[i + 1])) return Hazard{here, kEscape};
          if (j > i + 1 && j < text.size() && !is_ascii(text[j])) return Hazard{here, kEscape};
          if (i + 1 < text.size() && text[i + 1] != '\n') {
            ++i;
            ++column;
          }
        } else if (starts(i, "\"\"\"")) {
          in = In::Code;
          i += 2;
          column += 2;
        }
        break;
      case In::Literal:
        if (c == '\'') in = In::Code;
        break;
      case In::MultiLiteral:
        if (starts(i, "\'\'\'")) {
          in = In::Code;
          i += 2;
          column += 2;
        }
        break;
      case In::Comment:
        break;
    }
    if (c != ' ' && c != '\t' && c != '\r') line_start = false;
    if (!continuation) ++column;
  }
  return std::nullopt;
}

}  // namespace ringway::config::detail
