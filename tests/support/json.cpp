// A small recursive-descent JSON reader (see json.hpp).
#include "json.hpp"

#include <cstdlib>

namespace ringway::test {

class JsonParser {
 public:
  explicit JsonParser(const std::string& t) : t_(t) {}

  bool document(Json& out) {
    if (!value(out, 0)) return false;
    ws();
    return ok_ && p_ == t_.size();
  }
  size_t pos() const { return p_; }

 private:
  static constexpr int kMaxDepth = 64;

  void ws() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\n' || t_[p_] == '\r' || t_[p_] == '\t'))
      ++p_;
  }
  bool eat(char c) {
    ws();
    if (p_ < t_.size() && t_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool literal(const char* word) {
    std::string w(word);
    if (t_.compare(p_, w.size(), w) != 0) return false;
    p_ += w.size();
    return true;
  }
  bool string(std::string& out) {
    if (!eat('"')) return false;
    while (p_ < t_.size() && t_[p_] != '"') {
      char c = t_[p_++];
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (p_ >= t_.size()) return false;
      char e = t_[p_++];
      switch (e) {
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'u': {
          // Only ASCII escapes matter here; others become '?'.
          if (p_ + 4 > t_.size()) return false;
          unsigned long cp = std::strtoul(t_.substr(p_, 4).c_str(), nullptr, 16);
          out.push_back(cp < 0x80 ? static_cast<char>(cp) : '?');
          p_ += 4;
          break;
        }
        default:
          out.push_back(e);
      }
    }
    if (p_ >= t_.size()) return false;
    ++p_;
    return true;
  }
  bool value(Json& out, int depth) {
    if (depth > kMaxDepth) return false;
    ws();
    if (p_ >= t_.size()) return false;
    char c = t_[p_];
    if (c == '{') {
      ++p_;
      auto obj = std::make_shared<Json::Object>();
      if (!eat('}')) {
        do {
          std::string key;
          Json v;
          if (!string(key) || !eat(':') || !value(v, depth + 1)) return false;
          (*obj)[key] = std::move(v);
        } while (eat(','));
        if (!eat('}')) return false;
      }
      out.v_ = obj;
      return true;
    }
    if (c == '[') {
      ++p_;
      auto arr = std::make_shared<Json::Array>();
      if (!eat(']')) {
        do {
          Json v;
          if (!value(v, depth + 1)) return false;
          arr->push_back(std::move(v));
        } while (eat(','));
        if (!eat(']')) return false;
      }
      out.v_ = arr;
      return true;
    }
    if (c == '"') {
      std::string s;
      if (!string(s)) return false;
      out.v_ = std::move(s);
      return true;
    }
    if (literal("true")) {
      out.v_ = true;
      return true;
    }
    if (literal("false")) {
      out.v_ = false;
      return true;
    }
    if (literal("null")) {
      out.v_ = std::monostate{};
      return true;
    }
    const char* start = t_.c_str() + p_;
    char* end = nullptr;
    double d = std::strtod(start, &end);
    if (end == start) return false;
    p_ += static_cast<size_t>(end - start);
    out.v_ = d;
    return true;
  }

  const std::string& t_;
  size_t p_ = 0;
  bool ok_ = true;
};

std::optional<Json> Json::parse(const std::string& text, std::string* error) {
  Json out;
  JsonParser parser(text);
  if (!parser.document(out)) {
    if (error != nullptr) *error = "malformed JSON near offset " + std::to_string(parser.pos());
    return std::nullopt;
  }
  return out;
}

const Json& Json::operator[](const std::string& key) const {
  static const Json kNull;
  if (!is_object()) return kNull;
  const auto& obj = *std::get<std::shared_ptr<Object>>(v_);
  auto it = obj.find(key);
  return it != obj.end() ? it->second : kNull;
}

const Json::Array& Json::items() const {
  static const Array kEmpty;
  return is_array() ? *std::get<std::shared_ptr<Array>>(v_) : kEmpty;
}

std::string Json::str() const {
  return is_string() ? std::get<std::string>(v_) : std::string();
}

double Json::num(double fallback) const {
  if (is_number()) return std::get<double>(v_);
  if (std::holds_alternative<bool>(v_)) return std::get<bool>(v_) ? 1 : 0;
  return fallback;
}

}  // namespace ringway::test
