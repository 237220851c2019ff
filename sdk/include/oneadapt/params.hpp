// oneadapt SDK: declared parameters of a plugin (options that are not adapted, e.g. a task's
// confidence threshold or a source's decoder threads).
//
// Parameters are declared once (key, headline, description, type, default). The host checks
// every configured key against the declaration and every value against its type before the
// plugin sees it, so a plugin reads only declared keys with valid values.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "oneadapt/error.hpp"

namespace oneadapt {

enum class ParamType { boolean, integer, number, string, list };

inline const char* param_type_name(ParamType t) {
  switch (t) {
    case ParamType::boolean:
      return "bool";
    case ParamType::integer:
      return "integer";
    case ParamType::number:
      return "number";
    case ParamType::string:
      return "string";
    case ParamType::list:
      return "list";
  }
  return "?";
}

/// Declaration of one parameter. Values travel as text: numbers in decimal, booleans as
/// true/false, lists comma-separated ("person,car").
struct ParamSpec {
  std::string key;
  std::string headline;
  std::string description;
  ParamType type = ParamType::string;
  std::string default_value;
};

/// Parses a whole string as a finite decimal number; false on anything else. For plugins
/// reading ladder overrides and parameters.
inline bool parse_number(const std::string& text, double& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(text.c_str(), &end);
  return errno == 0 && end == text.c_str() + text.size() && std::isfinite(out);
}
/// Parses a whole string as a base-10 integer; false on anything else.
inline bool parse_integer(const std::string& text, std::int64_t& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  out = v;
  return errno == 0 && end == text.c_str() + text.size();
}
/// Parses "true" or "false".
inline bool parse_bool(const std::string& text, bool& out) {
  if (text == "true") return out = true, true;
  if (text == "false") return out = false, true;
  return false;
}

/// Throws Error(invalid_argument) naming the key when `value` is not of the declared type.
inline void check_param_value(const ParamSpec& spec, const std::string& value) {
  double d;
  std::int64_t i;
  bool b;
  bool ok = true;
  switch (spec.type) {
    case ParamType::boolean:
      ok = parse_bool(value, b);
      break;
    case ParamType::integer:
      ok = parse_integer(value, i);
      break;
    case ParamType::number:
      ok = parse_number(value, d);
      break;
    case ParamType::string:
    case ParamType::list:
      break;
  }
  if (!ok)
    throw Error(Errc::invalid_argument, "parameter '" + spec.key + "': '" + value +
                                            "' is not a valid " + param_type_name(spec.type));
}

/// Parameter values handed to a plugin: every declared key, with its configured value or
/// its default. Typed getters throw Error naming the key.
class Params {
 public:
  void set(const std::string& key, std::string value) { values_[key] = std::move(value); }
  bool has(std::string_view key) const { return values_.count(std::string(key)) != 0; }
  const std::map<std::string, std::string>& values() const { return values_; }

  const std::string& str(std::string_view key) const {
    auto it = values_.find(std::string(key));
    if (it == values_.end())
      throw Error(Errc::not_found, "parameter '" + std::string(key) + "' is not set");
    return it->second;
  }
  double number(std::string_view key) const {
    double v;
    if (!parse_number(str(key), v)) throw bad(key, "number");
    return v;
  }
  std::int64_t integer(std::string_view key) const {
    std::int64_t v;
    if (!parse_integer(str(key), v)) throw bad(key, "integer");
    return v;
  }
  bool boolean(std::string_view key) const {
    bool v;
    if (!parse_bool(str(key), v)) throw bad(key, "bool");
    return v;
  }
  /// Comma-separated items, each trimmed; empty items dropped.
  std::vector<std::string> list(std::string_view key) const {
    std::vector<std::string> out;
    const std::string& text = str(key);
    std::size_t start = 0;
    while (start <= text.size()) {
      std::size_t comma = text.find(',', start);
      if (comma == std::string::npos) comma = text.size();
      std::string item = text.substr(start, comma - start);
      auto b = item.find_first_not_of(" \t");
      auto e = item.find_last_not_of(" \t");
      if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
      start = comma + 1;
    }
    return out;
  }

 private:
  Error bad(std::string_view key, const char* type) const {
    return Error(Errc::invalid_argument,
                 "parameter '" + std::string(key) + "': '" + str(key) + "' is not a valid " + type);
  }
  std::map<std::string, std::string> values_;
};

}  // namespace oneadapt
