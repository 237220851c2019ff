// oneadapt SDK: the project's one error type.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "oneadapt/version.hpp"

namespace oneadapt {

/// What kind of failure an Error reports. Stable: tools may switch on it.
enum class Errc : int {
  invalid_argument = 1,  ///< a bad value from the user: config key or value, CLI option
  not_found,             ///< a missing file, plugin, knob or key
  io,                    ///< reading or writing failed
  corrupt_data,          ///< malformed or truncated media, model or record
  unsupported,           ///< a format, operator or feature that is not supported
  plugin_load,           ///< a plugin file could not be loaded
  abi_mismatch,          ///< a plugin was built for another ABI
  plugin_failure,        ///< plugin code threw while running
  model,                 ///< a model failed to load or run
  internal,              ///< a bug in oneadapt itself
  interrupted,           ///< stopped by a signal (SIGINT, SIGTERM) between intervals
};

/// Short stable name of an error code ("invalid_argument", ...).
inline const char* errc_name(Errc code) {
  switch (code) {
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::not_found:
      return "not_found";
    case Errc::io:
      return "io";
    case Errc::corrupt_data:
      return "corrupt_data";
    case Errc::unsupported:
      return "unsupported";
    case Errc::plugin_load:
      return "plugin_load";
    case Errc::abi_mismatch:
      return "abi_mismatch";
    case Errc::plugin_failure:
      return "plugin_failure";
    case Errc::model:
      return "model";
    case Errc::internal:
      return "internal";
    case Errc::interrupted:
      return "interrupted";
  }
  return "unknown";
}

/// Collapses a message to one line: the first line of `text`, trimmed; the rest (e.g. a
/// LibTorch backtrace) is dropped. Error messages are always one line.
inline std::string one_line(std::string_view text) {
  auto end = text.find_first_of("\r\n");
  if (end != std::string_view::npos) text = text.substr(0, end);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return std::string(text);
}

/// The one error type of oneadapt. The message is one line: it starts with what failed and
/// names the file, plugin or key involved ("config.toml: unknown knob 'qp2'").
class ONEADAPT_API Error : public std::runtime_error {
 public:
  Error(Errc code, std::string_view message) : std::runtime_error(one_line(message)), code_(code) {}
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

}  // namespace oneadapt
