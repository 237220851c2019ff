// oneadapt: configuration adaptation for streaming analytics by backpropagation.
#include <boost/program_options.hpp>
#include <iostream>
#include <oneadapt/version.hpp>
#include <torch/csrc/api/include/torch/version.h>

#include "cli.hpp"
#include "cli_common.hpp"
#include "adapt/harness.hpp"
#include "engine/engine.hpp"

namespace po = boost::program_options;
using namespace oneadapt;
using namespace oneadapt::cli;

namespace {

void print_usage(std::ostream& out, const po::options_description& global) {
  out << "oneadapt " << ONEADAPT_VERSION
      << " - adapts the knobs of streaming analytics pipelines by gradient (OneAdapt)\n\n"
      << "Usage: oneadapt [options] <command> [<args>]\n\nCommands:\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : commands()) rows.push_back({"  " + c.name + " " + c.synopsis, c.summary});
  out << text::table(rows) << '\n'
      << global << '\n'
      << "Run 'oneadapt <command> --help' for a command's options.\n";
}

int dispatch(const std::vector<std::string>& args) {
  po::options_description global("Options");
  global.add_options()("help,h", "print this help and exit")("version",
                                                             "print version information and exit");
  add_global_options(global);

  // Global options stand before the command word; everything from the first word on
  // belongs to the command (which accepts the global options too).
  std::size_t first_word = 0;
  while (first_word < args.size() && !args[first_word].empty() && args[first_word][0] == '-') {
    if (takes_value(args[first_word]) && args[first_word].find('=') == std::string::npos)
      ++first_word;
    ++first_word;
  }
  std::vector<std::string> leading(args.begin(), args.begin() + std::min(first_word, args.size()));
  po::variables_map vm;
  GlobalOptions global_values;
  parse_or_usage("oneadapt", leading, global, {}, vm);
  read_global_options(vm, global_values);

  if (vm.count("help")) {
    print_usage(std::cout, global);
    return kOk;
  }
  if (vm.count("version")) {
    std::cout << "oneadapt " << ONEADAPT_VERSION << " (plugin ABI " << ONEADAPT_ABI_VERSION
              << ", SDK " << ONEADAPT_SDK_VERSION << ", LibTorch " << TORCH_VERSION << ")\n";
    return kOk;
  }
  std::vector<std::string> words(args.begin() + std::min(first_word, args.size()), args.end());
  if (words.empty()) {
    print_usage(std::cerr, global);
    return kUsage;
  }
  return run_command(words, global_values);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    // LibTorch threads = cores and malloc thresholds for fast backward passes (stack.md G8,
    // G10; measured in docs/benchmarks.md).
    engine::configure_runtime();
    // SIGINT/SIGTERM stop a run between intervals: its records stay, its summary says
    // "interrupted" (exit 130); a second signal ends the process at once.
    adapt::stop_on_signals();
    return dispatch(args);
  } catch (const UsageError& e) {
    std::cerr << "oneadapt: error: " << e.what() << '\n';
    return kUsage;
  } catch (const Error& e) {
    std::cerr << "oneadapt: error: " << one_line(e.what()) << '\n';
    return e.code() == Errc::interrupted ? 130 : kFailure;
  } catch (const std::exception& e) {
    std::cerr << "oneadapt: error: " << one_line(e.what()) << '\n';
    return kFailure;
  }
}
