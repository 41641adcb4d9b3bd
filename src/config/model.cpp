// Diagnostics collection and formatting (the model itself is header-only plain data).
#include <fmt/format.h>

#include "ringway/config/diagnostic.hpp"

namespace ringway::config {

std::string format(const Diagnostic& d) {
  const char* word = d.severity == Diagnostic::Severity::Error ? "error" : "warning";
  std::string where = d.pos.line == 0 ? fmt::format("{}", d.file)
                                      : fmt::format("{}:{}:{}", d.file, d.pos.line, d.pos.column);
  if (d.path.empty()) return fmt::format("{}: {}: {}", where, word, d.message);
  return fmt::format("{}: {}: {}: {}", where, word, d.path, d.message);
}

void Diagnostics::error(SourcePos pos, std::string path, std::string message) {
  items_.push_back({Diagnostic::Severity::Error, file_, pos, std::move(path), std::move(message)});
}

void Diagnostics::warning(SourcePos pos, std::string path, std::string message) {
  items_.push_back(
      {Diagnostic::Severity::Warning, file_, pos, std::move(path), std::move(message)});
}

bool Diagnostics::has_errors() const {
  for (const auto& d : items_)
    if (d.severity == Diagnostic::Severity::Error) return true;
  return false;
}

}  // namespace ringway::config
