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

int run_run(const Invocation& inv) {
  po::options_description opts = experiment_options();
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "[--config FILE] [options]", opts, {}, vm, global)) return kOk;

  RunConfig c = load_run_config(vm.count("config") ? vm["config"].as<std::string>() : "",
                                overrides_from_flags(vm));
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
