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

namespace {

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
      dat << ' '
          << (j["streams"].contains(n) ? j["streams"][n]["bytes"].get<double>() / 1e3 : 0.0);
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

// `oneadapt run --config JOINT.toml`: several streams under one budget (docs/joint.md).
int run_joint(const std::string& file, const po::variables_map& vm, const GlobalOptions& global) {
  JointConfig j = load_joint_config(file, overrides_from_flags(vm));
  // Each stream's plugins, models, source and task (they live until the run ends).
  std::vector<std::unique_ptr<Experiment>> experiments;
  std::vector<host::HostSource> sources;
  std::vector<host::HostTask> tasks;
  sources.reserve(j.streams.size());
  tasks.reserve(j.streams.size());
  std::vector<adapt::JointStream> streams;
  std::ostringstream header;
  for (auto& s : j.streams) {
    experiments.push_back(std::make_unique<Experiment>(s.config, global));
    Experiment& x = *experiments.back();
    tasks.push_back(x.task());
    sources.push_back(x.source());
    s.config.run.provenance = x.provenance(sources.back());
    header << "stream  " << s.name << " (weight " << s.weight << "): " << sources.back().describe()
           << ", " << s.config.task << "\n";
  }
  for (std::size_t i = 0; i < j.streams.size(); ++i)
    streams.push_back({j.streams[i].name, j.streams[i].weight, &sources[i], &tasks[i],
                       j.streams[i].config.interval, j.streams[i].config.run});
  header << "link    " << j.budget->describe() << ", one price for every stream's bytes\n"
         << "output  " << j.out_dir.string() << "\n";
  std::cerr << header.str() << std::flush;
  adapt::JointOptions o;
  o.budget = *j.budget;
  o.price = j.price, o.eta = j.eta, o.margin = j.margin, o.warmup = j.warmup;
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

}  // namespace

int run_run(const Invocation& inv) {
  po::options_description opts = experiment_options();
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "[--config FILE] [options]", opts, {}, vm, global)) return kOk;

  const std::string config_file = vm.count("config") ? vm["config"].as<std::string>() : "";
  if (is_joint_config(config_file)) return run_joint(config_file, vm, global);
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
