// One run of one policy over one stream (`oneadapt run`): the policy from the table
// (adapt/policies/policies.hpp) in the harness (adapt/harness.hpp), which writes records.jsonl,
// summary.json and state.json into spec.out_dir.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <map>
#include <string>

#include "adapt/harness.hpp"
#include "adapt/policies/policies.hpp"
#include "plugin_registry.hpp"

namespace oneadapt::adapt {

struct RunSpec {
  std::string policy = "oneadapt";  ///< a deployable policy whose point is beta (or none)
  OneAdaptOptions oneadapt;         ///< oneadapt's options; its beta is every beta policy's point
  std::map<std::string, std::string> static_config;  ///< knob -> value label (static policy)
  /// With a source that has a spatial knob: "solver" (OneAdapt's default), "centre" or "best".
  std::string spatial_map;
  std::size_t period = 5, profile_budget = 3, prefix = 0;  ///< profiling baselines
  std::size_t max_intervals = 0;                   ///< 0 = the whole stream
  bool realtime = false;  ///< pace the input as if it were live (input.realtime, --realtime)
  std::filesystem::path out_dir;
  std::filesystem::path warm_start;  ///< a state.json from an earlier run, or empty
  double backward_weight = 0;        ///< a backward pass in forward units; 0 = measure it
  std::map<std::string, std::string> provenance;  ///< recorded in summary.json
  std::string header;                             ///< printed once the run starts
  std::optional<BudgetTrace> budget;  ///< a bandwidth budget ([budget], docs/budgets.md)
  std::size_t budget_warmup = 3;      ///< intervals left out of the budget figures
};

/// The policies `oneadapt run` runs: deployable, with beta or no point.
std::string runnable_policies();

/// Runs `spec.policy` over the source's stream. Throws Error on a failure; the records of
/// completed intervals stay written and summary.json says where it stopped.
RunSummary run_experiment(host::HostSource& source, host::HostTask& task, const RunSpec& spec,
                          std::ostream& progress, bool progress_is_tty);
/// The same with the task side behind `inference` (`oneadapt source`: a server over NATS).
RunSummary run_experiment(host::HostSource& source, Inference& inference, const RunSpec& spec,
                          std::ostream& progress, bool progress_is_tty);

}  // namespace oneadapt::adapt
