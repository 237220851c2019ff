// The `oneadapt` command line: a table of subcommands, each a thin front end over the core
// library (GStreamer's tools/ idea). Subcommands parse their own options.
#pragma once

#include <oneadapt/error.hpp>

#include <string>
#include <vector>

namespace oneadapt::cli {

/// Exit codes of the executable.
enum ExitCode : int { kOk = 0, kFailure = 1, kUsage = 2 };

/// A mistake in how oneadapt was called: unknown command, flag or plugin name, missing
/// argument. Printed as one line; exits with kUsage.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(Errc::invalid_argument, message) {}
};

/// Options every command accepts (before or after the command word).
struct GlobalOptions {
  std::vector<std::string> plugin_dirs;
};

/// What a subcommand receives: its own arguments (after the command words) and the global
/// options given before the command.
struct Invocation {
  std::string command;  ///< e.g. "plugins list"
  std::vector<std::string> args;
  GlobalOptions global;
};

struct Command {
  std::string name;      ///< e.g. "plugins list"
  std::string synopsis;  ///< arguments, e.g. "NAME"
  std::string summary;   ///< one line
  int (*run)(const Invocation&);
};

/// All subcommands, in the order --help lists them.
const std::vector<Command>& commands();

int run_plugins_list(const Invocation& inv);
int run_plugins_inspect(const Invocation& inv);
int run_plugins_check(const Invocation& inv);
int run_model_info(const Invocation& inv);
int run_run(const Invocation& inv);
int run_compare(const Invocation& inv);
int run_model_run(const Invocation& inv);
int run_spatial_calibrate(const Invocation& inv);
int run_serve(const Invocation& inv);
int run_source(const Invocation& inv);

}  // namespace oneadapt::cli
