#include "cli_common.hpp"

#include <iostream>

namespace po = boost::program_options;

namespace oneadapt::cli {

void add_global_options(po::options_description& opts) {
  opts.add_options()("plugin-dir", po::value<std::vector<std::string>>()->composing(),
                     "also load plugins from DIR (repeatable; searched before "
                     "ONEADAPT_PLUGIN_PATH and the default directory)");
}

void read_global_options(const po::variables_map& vm, GlobalOptions& out) {
  if (vm.count("plugin-dir")) {
    const auto& dirs = vm["plugin-dir"].as<std::vector<std::string>>();
    out.plugin_dirs.insert(out.plugin_dirs.end(), dirs.begin(), dirs.end());
  }
}

bool takes_value(const std::string& arg) { return arg == "--plugin-dir"; }

void parse_or_usage(const std::string& who, const std::vector<std::string>& args,
                    const po::options_description& opts,
                    const po::positional_options_description& positional,
                    po::variables_map& vm) {
  try {
    po::store(po::command_line_parser(args).options(opts).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(who + ": " + e.what() + " (see '" + who + " --help')");
  }
}

bool parse_command(const Invocation& inv, const std::string& synopsis,
                   po::options_description opts, const po::positional_options_description& positional,
                   po::variables_map& vm, GlobalOptions& global) {
  opts.add_options()("help,h", "print this help and exit");
  add_global_options(opts);
  const std::string who = "oneadapt " + inv.command;
  parse_or_usage(who, inv.args, opts, positional, vm);
  if (vm.count("help")) {
    for (const auto& c : commands())
      if (c.name == inv.command)
        std::cout << "Usage: " << who << " [options] " << synopsis << "\n\n"
                  << text::wrap(c.summary, 100, "") << '\n'
                  << opts << '\n';
    return false;
  }
  global = inv.global;
  read_global_options(vm, global);
  return true;
}

int run_command(const std::vector<std::string>& words, const GlobalOptions& global) {
  // Longest match first: "plugins list" before a group named "plugins".
  const Command* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& c : commands()) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start < c.name.size()) {
      std::size_t sp = c.name.find(' ', start);
      if (sp == std::string::npos) sp = c.name.size();
      parts.push_back(c.name.substr(start, sp - start));
      start = sp + 1;
    }
    if (parts.size() > words.size() || parts.size() <= best_len) continue;
    if (std::equal(parts.begin(), parts.end(), words.begin())) {
      best = &c;
      best_len = parts.size();
    }
  }
  if (!best) {
    // A group word alone ("plugins") or with --help lists the group's commands.
    std::vector<std::vector<std::string>> group;
    for (const auto& c : commands())
      if (c.name.rfind(words[0] + " ", 0) == 0) group.push_back({"  " + c.name + " " + c.synopsis, c.summary});
    bool wants_help = words.size() > 1 && (words[1] == "--help" || words[1] == "-h");
    if (!group.empty() && (words.size() == 1 || wants_help)) {
      (wants_help ? std::cout : std::cerr) << "Usage: oneadapt " << words[0]
                                           << " <command> [<args>]\n\nCommands:\n"
                                           << text::table(group);
      return wants_help ? kOk : kUsage;
    }
    std::string known;
    for (const auto& c : commands()) known += (known.empty() ? "" : ", ") + c.name;
    std::string asked = words[0];
    if (!group.empty() && words.size() > 1) asked += " " + words[1];
    throw UsageError("unknown command '" + asked + "' (commands: " + known + ")");
  }
  Invocation inv{best->name, std::vector<std::string>(words.begin() + best_len, words.end()),
                 global};
  return best->run(inv);
}

std::vector<std::filesystem::path> load_plugins(const GlobalOptions& global,
                                                host::PluginRegistry& registry) {
  auto dirs = host::plugin_search_path(global.plugin_dirs);
  for (const auto& d : dirs) registry.scan_directory(d);
  return dirs;
}

}  // namespace oneadapt::cli
