// Diagnostics from loading and checking a config: every problem in a file is collected, each
// rendered as `FILE:LINE:COL: error: <dotted.path>: <what is wrong and what is allowed>`.
#pragma once

#include <string>
#include <vector>

#include "ringway/config/model.hpp"

namespace ringway::config {

struct Diagnostic {
  enum class Severity : uint8_t { Error, Warning };
  Severity severity = Severity::Error;
  std::string file;
  SourcePos pos;     // {0,0} when the problem has no single place (e.g. "no gateways")
  std::string path;  // dotted path, e.g. gateways[0].options.socketOptions[2].intValue
  std::string message;
};

// "FILE:LINE:COL: error: PATH: MESSAGE" (the position part is "FILE: " when pos is {0,0}).
std::string format(const Diagnostic& d);

class Diagnostics {
 public:
  explicit Diagnostics(std::string file = {}) : file_(std::move(file)) {}
  void error(SourcePos pos, std::string path, std::string message);
  void warning(SourcePos pos, std::string path, std::string message);
  bool has_errors() const;
  const std::vector<Diagnostic>& items() const { return items_; }
  std::vector<Diagnostic> take() { return std::move(items_); }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<Diagnostic> items_;
};

}  // namespace ringway::config
