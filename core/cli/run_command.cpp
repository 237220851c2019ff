// `oneadapt run --config FILE [overrides]`: one policy over one stream, with records.
#include <unistd.h>

#include <iostream>
#include <sstream>

#include "adapt/runner.hpp"
#include "assets.hpp"
#include "cli_common.hpp"
#include "engine/engine.hpp"
#include "run_config.hpp"

namespace po = boost::program_options;

namespace oneadapt::cli {

namespace {

// Loads each model the task declares: the config's [task.models] path, else its default asset.
std::map<std::string, std::shared_ptr<Model>> load_task_models(const host::TaskEntry& task, const RunConfig& c) {
  std::map<std::string, std::shared_ptr<Model>> models;
  for (const auto& [role, path] : c.models)
    if (std::none_of(task.info.models.begin(), task.info.models.end(), [&](const ModelRequirement& m) { return m.role == role; }))
      throw Error(Errc::invalid_argument, c.file.string() + ": task.models." + role + ": task '" + task.info.name +
                                              "' has no model role '" + role + "'");
  for (const auto& req : task.info.models) {
    auto it = c.models.find(req.role);
    std::string where = it != c.models.end() ? it->second : "asset:" + req.default_asset;
    if (where == "asset:") {
      if (req.optional) continue;
      throw Error(Errc::invalid_argument, "task '" + task.info.name + "' needs task.models." + req.role);
    }
    models[req.role] = engine::load_model(resolve_asset_uri(where), {c.device});
  }
  return models;
}

}  // namespace

int run_run(const Invocation& inv) {
  po::options_description opts("Options");
  opts.add_options()("config,c", po::value<std::string>(), "experiment config (TOML), e.g. configs/video-detection.toml")(
      "input", po::value<std::string>(), "input file or directory (input.uri); asset:NAME for a cached asset")(
      "policy", po::value<std::string>(), "oneadapt or static (policy.name)")(
      "beta", po::value<double>(), "bandwidth weight of the objective (policy.beta)")(
      "lr", po::value<double>(), "step size (policy.lr)")(
      "interval", po::value<double>(), "interval length in seconds (input.interval)")(
      "max-intervals", po::value<std::size_t>(), "stop after N intervals (input.max_intervals; 0 = all)")(
      "out", po::value<std::string>(), "output directory (run.out)")(
      "device", po::value<std::string>(), "cpu or cuda (run.device)")(
      "warm-start", po::value<std::string>(), "start from the state.json of an earlier run (policy.warm_start)")(
      "set", po::value<std::vector<std::string>>()->composing(), "override any config key: --set policy.rounding=nearest (repeatable)");
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "[--config FILE] [options]", opts, {}, vm, global)) return kOk;

  std::vector<std::string> sets;
  auto add = [&](const char* flag, const std::string& key, auto conv) {
    if (vm.count(flag)) sets.push_back(key + "=" + conv(vm[flag]));
  };
  auto str = [](const po::variable_value& v) { return "\"" + v.as<std::string>() + "\""; };
  auto num = [](const po::variable_value& v) { return std::to_string(v.as<double>()); };
  add("input", "input.uri", str);
  add("policy", "policy.name", str);
  add("beta", "policy.beta", num);
  add("lr", "policy.lr", num);
  add("interval", "input.interval", num);
  add("max-intervals", "input.max_intervals", [](const po::variable_value& v) { return std::to_string(v.as<std::size_t>()); });
  add("out", "run.out", str);
  add("device", "run.device", str);
  add("warm-start", "policy.warm_start", str);
  if (vm.count("set")) for (const auto& s : vm["set"].as<std::vector<std::string>>()) sets.push_back(s);
  RunConfig c = load_run_config(vm.count("config") ? vm["config"].as<std::string>() : "", sets);
  if (c.uri.empty()) throw UsageError("no input: give --input PATH or input.uri in the config");

  host::PluginRegistry registry;
  load_plugins(global, registry);
  const auto* modality = registry.find_modality(c.modality);
  if (!modality) throw UsageError("input.modality: no modality named '" + c.modality + "' (see 'oneadapt plugins list')");
  const auto* task_entry = registry.find_task(c.task);
  if (!task_entry) throw UsageError("task.name: no task named '" + c.task + "' (see 'oneadapt plugins list')");
  if (modality->info.sample_format != task_entry->info.sample_format)
    throw Error(Errc::invalid_argument, "modality '" + c.modality + "' renders " + modality->info.sample_format + " but task '" +
                                            c.task + "' takes " + task_entry->info.sample_format);

  const std::string uri = resolve_asset_uri(c.uri);
  auto models = load_task_models(*task_entry, c);
  auto task = registry.create_task(c.task, c.task_settings, models, c.device);
  auto source = registry.open_source(c.modality, uri, c.modality_settings, c.interval);

  c.run.provenance = {{"config", c.file.string()}, {"input", uri}, {"modality", c.modality}, {"task", c.task},
                      {"source", source.describe()}, {"oneadapt", ONEADAPT_VERSION}};
  for (const auto& [role, m] : models) c.run.provenance["model." + role] = std::static_pointer_cast<engine::EngineModel>(m)->summary().path.string();

  std::ostringstream header;
  header << "input   " << source.describe() << "\n"
         << "task    " << c.task << " (" << task_entry->file->path.filename().string() << ")\n"
         << "policy  " << c.run.policy << ", beta " << c.run.oneadapt.beta << ", lr " << c.run.oneadapt.lr << "\n"
         << "output  " << c.run.out_dir.string() << "\n";
  c.run.header = header.str();
  adapt::RunSummary s = adapt::run_experiment(source, task, c.run, std::cerr, ::isatty(2) != 0);
  std::cout << adapt::summary_table(s) << "\nRecords: " << (c.run.out_dir / "records.jsonl").string()
            << "\nSummary: " << (c.run.out_dir / "summary.json").string()
            << "\nState (for --warm-start): " << (c.run.out_dir / "state.json").string() << '\n';
  return kOk;
}

}  // namespace oneadapt::cli
