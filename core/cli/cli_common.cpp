#include "cli_common.hpp"

#include "adapt/grid.hpp"
#include "adapt/policies/policies.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "engine/engine.hpp"

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
                    const po::positional_options_description& positional, po::variables_map& vm) {
  try {
    po::store(po::command_line_parser(args).options(opts).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(who + ": " + e.what() + " (see '" + who + " --help')");
  }
}

bool parse_command(const Invocation& inv, const std::string& synopsis, po::options_description opts,
                   const po::positional_options_description& positional, po::variables_map& vm,
                   GlobalOptions& global) {
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
      if (c.name.rfind(words[0] + " ", 0) == 0)
        group.push_back({"  " + c.name + " " + c.synopsis, c.summary});
    bool wants_help = words.size() > 1 && (words[1] == "--help" || words[1] == "-h");
    if (!group.empty() && (words.size() == 1 || wants_help)) {
      (wants_help ? std::cout : std::cerr)
          << "Usage: oneadapt " << words[0] << " <command> [<args>]\n\nCommands:\n"
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

// Loads each model the task declares: the config's [task.models] path, else its default asset.
std::map<std::string, std::shared_ptr<Model>> load_task_models(const host::TaskEntry& task,
                                                               const RunConfig& c) {
  std::map<std::string, std::shared_ptr<Model>> models;
  for (const auto& [role, path] : c.models)
    if (std::none_of(task.info.models.begin(), task.info.models.end(),
                     [&](const ModelRequirement& m) { return m.role == role; }))
      throw Error(Errc::invalid_argument, c.file.string() + ": task.models." + role + ": task '" +
                                              task.info.name + "' has no model role '" + role +
                                              "'");
  for (const auto& req : task.info.models) {
    auto it = c.models.find(req.role);
    std::string where = it != c.models.end() ? it->second : "asset:" + req.default_asset;
    if (where == "asset:") {
      if (req.optional) continue;
      throw Error(Errc::invalid_argument,
                  "task '" + task.info.name + "' needs task.models." + req.role);
    }
    models[req.role] = engine::load_model(resolve_asset_uri(where), {c.device});
  }
  return models;
}

po::options_description experiment_options() {
  po::options_description opts("Options");
  opts.add_options()("config,c", po::value<std::string>(),
                     "experiment config (TOML), e.g. configs/video-detection.toml")(
      "input", po::value<std::string>(),
      "input file or directory (input.uri); asset:NAME for a cached asset")(
      "policy", po::value<std::string>(), "oneadapt or static (policy.name)")(
      "beta", po::value<double>(), "bandwidth weight of the objective (policy.beta)")(
      "lr", po::value<double>(), "step size (policy.lr)")(
      "interval", po::value<double>(), "interval length in seconds (input.interval)")(
      "max-intervals", po::value<std::size_t>(),
      "stop after N intervals (input.max_intervals; 0 = all)")(
      "realtime",
      "pace the input as if it were live: each interval begins no earlier than its end on the "
      "stream's clock; records say how far behind the loop was (input.realtime)")(
      "out", po::value<std::string>(), "output directory (run.out)")(
      "device", po::value<std::string>(), "cpu or cuda (run.device)")(
      "warm-start", po::value<std::string>(),
      "start from the state.json of an earlier run (policy.warm_start)")(
      "budget", po::value<double>(), "a constant bandwidth budget in kbit/s (budget.kbps)")(
      "budget-trace", po::value<std::string>(),
      "a bandwidth budget that varies: a CSV of t_seconds,kbps steps (budget.trace)")(
      "set", po::value<std::vector<std::string>>()->composing(),
      "override any config key: --set policy.rounding=nearest (repeatable)");
  return opts;
}

// joint-bytes.png: each stream's bytes per round, their total and the link's budget.
void plot_joint(const std::filesystem::path& out, const std::vector<std::string>& names) {
  std::ifstream in(out / "joint.jsonl");
  std::ofstream dat(out / "joint-bytes.dat");
  dat << "# t_start budget_kB total_kB";
  for (const auto& n : names) dat << ' ' << n << "_kB";
  dat << '\n';
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    dat << j["t_start"].get<double>() << ' ' << j["budget_bytes"].get<double>() / 1e3 << ' '
        << j["total_bytes"].get<double>() / 1e3;
    for (const auto& n : names)
      dat << ' ' << (j["streams"].contains(n) ? j["streams"][n]["bytes"].get<double>() / 1e3 : 0.0);
    dat << '\n';
  }
  dat.close();
  std::ofstream gp(out / "joint-bytes.gp");
  gp << "set terminal pngcairo size 1000,500 font 'Sans,11'\nset output '"
     << (out / "joint-bytes.png").string() << "'\n"
     << "set title 'Bytes of each stream under the shared budget (one price for the link)'\n"
     << "set xlabel 'time, s'\nset ylabel 'kB per round'\nset key outside right\nset grid\n"
     << "set termoption noenhanced\nset logscale y\n";
  const std::string f = "'" + (out / "joint-bytes.dat").string() + "'";
  gp << "plot " << f << " using 1:2 with steps lw 2 lc rgb '#cc0000' title 'budget', " << f
     << " using 1:3 with lines lw 2 lc rgb '#333333' title 'total'";
  for (std::size_t i = 0; i < names.size(); ++i)
    gp << ", " << f << " using 1:($" << i + 4 << ">0?$" << i + 4 << ":1/0) with lines title '"
       << names[i] << "'";
  gp << '\n';
  gp.close();
  gnuplot(out / "joint-bytes.gp");
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

CompareGrid set_compare_grid(Experiment& x, const CompareSpec& cmp) {
  std::vector<KnobSpec> full;
  {
    auto probe = x.source();
    full = probe.knobs();
    for (const auto& [key, labels] : cmp.grid)
      if (std::none_of(full.begin(), full.end(), [&](const KnobSpec& k) { return k.key == key; }))
        throw Error(Errc::invalid_argument, "grid: the modality has no knob '" + key + "'");
  }
  auto grid = adapt::default_grid(full, cmp.max_grid);
  for (const auto& [key, labels] : cmp.grid) {
    // The reference (every knob's most expensive value) stays in the grid: accuracy is always
    // agreement with the stream's best rendering, and every policy may fall back to it.
    const auto& knob =
        *std::find_if(full.begin(), full.end(), [&](const KnobSpec& k) { return k.key == key; });
    std::vector<std::string> values = labels;
    if (std::none_of(values.begin(), values.end(),
                     [&](const std::string& l) { return adapt::find_on_ladder(knob, l) == 0; }))
      values.insert(values.begin(), knob.values.front().label);
    grid[key] = values;
  }
  for (const auto& [key, labels] : grid) x.config.modality_settings.ladders[key] = labels;
  CompareGrid out;
  out.knobs = x.source().knobs();
  out.configs = adapt::all_configurations(out.knobs);
  std::size_t full_size = 1;
  for (const auto& k : full) full_size *= k.values.size();
  out.line = adapt::grid_text(grid, out.knobs) + " (" + std::to_string(out.configs.size()) +
             " configurations; the stream's ladders: " + std::to_string(full_size) + ")";
  return out;
}

void gnuplot(const std::filesystem::path& script) {
  const std::string cmd = "gnuplot '" + script.string() + "' 2>'" + script.string() + ".log'";
  if (std::system(cmd.c_str()) != 0)
    std::cerr << "oneadapt: warning: gnuplot failed on " << script.string()
              << " (is gnuplot installed? the data files are written)\n";
}

std::vector<std::string> overrides_from_flags(const po::variables_map& vm) {
  std::vector<std::string> sets;
  auto str = [](const po::variable_value& v) { return "\"" + v.as<std::string>() + "\""; };
  auto num = [](const po::variable_value& v) { return std::to_string(v.as<double>()); };
  auto add = [&](const char* flag, const std::string& key, auto conv) {
    if (vm.count(flag)) sets.push_back(key + "=" + conv(vm[flag]));
  };
  add("input", "input.uri", str);
  add("policy", "policy.name", str);
  add("beta", "policy.beta", num);
  add("lr", "policy.lr", num);
  add("interval", "input.interval", num);
  add("max-intervals", "input.max_intervals",
      [](const po::variable_value& v) { return std::to_string(v.as<std::size_t>()); });
  add("out", "run.out", str);
  if (vm.count("realtime")) sets.push_back("input.realtime=true");
  add("device", "run.device", str);
  add("warm-start", "policy.warm_start", str);
  // The command line's budget replaces the config's, whichever form either has.
  if (vm.count("budget") && vm.count("budget-trace"))
    throw UsageError("give one of --budget and --budget-trace");
  if (vm.count("budget")) {
    const double kbps = vm["budget"].as<double>();
    if (!std::isfinite(kbps) || !(kbps > 0))
      throw UsageError("--budget: expected a rate in kbit/s > 0");
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", kbps);
    sets.push_back(std::string("budget.kbps=") + buf);
    sets.push_back("budget.trace=\"\"");
  }
  if (vm.count("budget-trace")) {
    sets.push_back("budget.trace=" + str(vm["budget-trace"]));
    sets.push_back("budget.kbps=0");
  }
  if (vm.count("set"))
    for (const auto& s : vm["set"].as<std::vector<std::string>>()) sets.push_back(s);
  return sets;
}

Experiment::Experiment(const RunConfig& c, const GlobalOptions& global, bool load_models)
    : config(c) {
  if (c.uri.empty()) throw UsageError("no input: give --input PATH or input.uri in the config");
  load_plugins(global, registry);
  const auto* modality = registry.find_modality(c.modality);
  if (!modality)
    throw UsageError("input.modality: no modality named '" + c.modality +
                     "' (see 'oneadapt plugins list')");
  task_entry = registry.find_task(c.task);
  if (!task_entry)
    throw UsageError("task.name: no task named '" + c.task + "' (see 'oneadapt plugins list')");
  if (modality->info.sample_format != task_entry->info.sample_format)
    throw Error(Errc::invalid_argument, "modality '" + c.modality + "' renders " +
                                            modality->info.sample_format + " but task '" + c.task +
                                            "' takes " + task_entry->info.sample_format);
  uri = resolve_asset_uri(c.uri);
  if (load_models) models = load_task_models(*task_entry, c);
}

host::HostSource Experiment::source() const {
  return registry.open_source(config.modality, uri, config.modality_settings, config.interval);
}

host::HostTask Experiment::task() const {
  return registry.create_task(config.task, config.task_settings, models, config.device);
}

std::map<std::string, std::string> Experiment::provenance(const host::HostSource& source) const {
  std::map<std::string, std::string> p{
      {"config", config.file.string()}, {"input", uri},
      {"modality", config.modality},    {"task", config.task},
      {"source", source.describe()},    {"oneadapt", ONEADAPT_VERSION}};
  for (const auto& [role, m] : models)
    p["model." + role] = std::static_pointer_cast<engine::EngineModel>(m)->summary().path.string();
  return p;
}

}  // namespace oneadapt::cli
