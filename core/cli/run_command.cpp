// `oneadapt run --config FILE [overrides]`: one policy over one stream, with records.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "adapt/joint.hpp"
#include "adapt/runner.hpp"
#include "assets.hpp"
#include "cli_common.hpp"
#include "engine/engine.hpp"
#include "run_config.hpp"

namespace po = boost::program_options;

namespace oneadapt::cli {

// `oneadapt run --config JOINT.toml`: several streams under one budget (docs/joint.md).
int run_joint(const std::string& file, const po::variables_map& vm, const GlobalOptions& global,
              const InferenceFactory& remote) {
  JointConfig j = load_joint_config(file, overrides_from_flags(vm));
  // Each stream's plugins, models, source and task (they live until the run ends).
  std::vector<std::unique_ptr<Experiment>> experiments;
  std::vector<host::HostSource> sources;
  std::vector<host::HostTask> tasks;
  std::vector<adapt::Inference*> remotes;
  sources.reserve(j.streams.size());
  tasks.reserve(j.streams.size());
  std::vector<adapt::JointStream> streams;
  std::ostringstream header;
  for (auto& s : j.streams) {
    experiments.push_back(std::make_unique<Experiment>(s.config, global, /*load_models=*/!remote));
    Experiment& x = *experiments.back();
    if (!remote) tasks.push_back(x.task());
    sources.push_back(x.source());
    s.config.run.provenance = x.provenance(sources.back());
    if (remote) remotes.push_back(remote(s.name, s.config, sources.back()));
    header << "stream  " << s.name << " (weight " << s.weight
           << (s.floor > 0 ? ", floor " + fmt("%g", s.floor) : std::string()) << "): " << sources.back().describe()
           << ", " << s.config.task
           << (remote ? " on " + remotes.back()->describe() : std::string()) << "\n";
  }
  for (std::size_t i = 0; i < j.streams.size(); ++i) {
    adapt::JointStream js;
    js.name = j.streams[i].name;
    js.weight = j.streams[i].weight;
    js.floor = j.streams[i].floor;
    js.source = &sources[i];
    if (remote)
      js.inference = remotes[i];
    else
      js.task = &tasks[i];
    js.interval = j.streams[i].config.interval;
    js.spec = j.streams[i].config.run;
    streams.push_back(std::move(js));
  }
  header << "link    " << j.budget->describe() << ", one price for every stream's bytes\n"
         << "output  " << j.out_dir.string() << "\n";
  std::cerr << header.str() << std::flush;
  adapt::JointOptions o;
  o.budget = *j.budget;
  o.price = j.price, o.eta = j.eta, o.margin = j.margin, o.warmup = j.warmup;
  o.project = j.project;
  o.price_ahead = j.price_ahead;
  o.interval = 0;
  for (const auto& s : j.streams) o.interval = std::max(o.interval, s.config.interval);
  o.out_dir = j.out_dir;
  adapt::JointSummary s = adapt::run_joint(streams, o, std::cerr, ::isatty(2) != 0);
  std::vector<std::string> names;
  for (const auto& st : j.streams) names.push_back(st.name);
  plot_joint(j.out_dir, names);
  std::cout << adapt::joint_table(s) << "\nPer stream: " << (j.out_dir / "NAME").string()
            << "/records.jsonl\nJoint: " << (j.out_dir / "joint.jsonl").string() << ", "
            << (j.out_dir / "joint-summary.json").string() << ", "
            << (j.out_dir / "joint-bytes.png").string() << '\n';
  return kOk;
}

int run_run(const Invocation& inv) {
  po::options_description opts = experiment_options();
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "[--config FILE] [options]", opts, {}, vm, global)) return kOk;

  const std::string config_file = vm.count("config") ? vm["config"].as<std::string>() : "";
  if (is_joint_config(config_file)) return run_joint(config_file, vm, global, {});
  RunConfig c = load_run_config(config_file, overrides_from_flags(vm));
  Experiment x(c, global);
  auto task = x.task();
  auto source = x.source();
  c.run.provenance = x.provenance(source);
  const auto* task_entry = x.task_entry;

  std::ostringstream header;
  header << "input   " << source.describe() << "\n"
         << "task    " << c.task << " (" << task_entry->file->path.filename().string() << ")\n"
         << "policy  " << c.run.policy << ", beta " << c.run.oneadapt.beta << ", lr "
         << c.run.oneadapt.lr << "\n"
         << "output  " << c.run.out_dir.string() << "\n";
  if (c.run.budget) header << "budget  " << c.run.budget->describe() << "\n";
  c.run.header = header.str();
  adapt::RunSummary s = adapt::run_experiment(source, task, c.run, std::cerr, ::isatty(2) != 0);
  std::cout << adapt::summary_table(s)
            << "\nRecords: " << (c.run.out_dir / "records.jsonl").string()
            << "\nSummary: " << (c.run.out_dir / "summary.json").string()
            << "\nState (for --warm-start): " << (c.run.out_dir / "state.json").string() << '\n';
  return kOk;
}

}  // namespace oneadapt::cli
