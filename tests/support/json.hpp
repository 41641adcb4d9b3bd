// A small JSON reader for the admin endpoint's /sockets answer (no JSON library is installed
// and the tests need only objects, arrays, strings, numbers, booleans and null).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace ringway::test {

class Json {
 public:
  using Array = std::vector<Json>;
  using Object = std::map<std::string, Json>;

  Json() = default;
  // Parses a whole document; nullopt (and `error` set) on malformed input.
  static std::optional<Json> parse(const std::string& text, std::string* error = nullptr);

  bool is_null() const { return std::holds_alternative<std::monostate>(v_); }
  bool is_object() const { return std::holds_alternative<std::shared_ptr<Object>>(v_); }
  bool is_array() const { return std::holds_alternative<std::shared_ptr<Array>>(v_); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_number() const { return std::holds_alternative<double>(v_); }

  // Member access; a missing key or a non-object gives a null Json.
  const Json& operator[](const std::string& key) const;
  const Array& items() const;  // empty for a non-array
  std::string str() const;     // "" for a non-string
  double num(double fallback = -1) const;

 private:
  friend class JsonParser;
  std::variant<std::monostate, bool, double, std::string, std::shared_ptr<Array>,
               std::shared_ptr<Object>>
      v_;
};

}  // namespace ringway::test
