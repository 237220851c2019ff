// Experiment configuration: a TOML file (configs/*.toml) with command-line overrides merged
// on top. Every key is checked: an unknown key or a value of the wrong type is one error
// naming the file and the key.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "adapt/runner.hpp"
#include "plugin_registry.hpp"

namespace oneadapt {

/// [compare]: what `oneadapt compare` runs and how it reads the results (docs/compare.md).
struct CompareSpec {
  std::vector<std::string> policies{"oneadapt",    "awstream", "chameleon",
                                    "best-static", "oracle",   "oracle-split"};
  std::vector<double> betas{0.03, 0.1, 0.3, 1};
  std::vector<double> targets{0.8, 0.9, 0.95, 0.99};  ///< Reducto-style's points
  std::map<std::string, std::vector<std::string>>
      grid;                   ///< knob -> values; absent knobs: default_grid
  std::size_t max_grid = 64;  ///< configurations at most in the default grid
  std::size_t warmup = 0;  ///< intervals left out of the savings (and the offline-profile prefix)
  std::vector<std::size_t> profile_every{
      5};  ///< profiling periods of the profiling baselines (0: offline only)
  std::size_t profile_budget = 3;  ///< Chameleon-style: configurations per profiling interval
  double target_saving = 0.2;      ///< a saving is "met" when its interval's lower end exceeds it
  int resamples = 1000;
  std::size_t block = 5;       ///< bootstrap block length, intervals
  double backward_weight = 0;  ///< a backward pass in forward units; 0 = measure once
  /// Budget traces to compare every policy on, one after the other (docs/budgets.md).
  std::vector<std::string> budget_traces;
};

struct RunConfig {
  std::filesystem::path file;  ///< the config file (for messages); empty without one
  // [input]
  std::string modality;
  std::string uri;  ///< "asset:REL" names a file in the asset cache
  double interval = 1.0;
  std::size_t max_intervals = 0;
  host::ComponentSettings modality_settings;  ///< [modality.params], [modality.knobs]
  // [task]
  std::string task;
  host::ComponentSettings task_settings;      ///< [task.params]
  std::map<std::string, std::string> models;  ///< [task.models] role -> path or asset:REL
  // [policy] and [run]
  adapt::RunSpec run;
  std::string device = "cpu";
  CompareSpec compare;
};

/// Parses `file` (TOML; empty path: start from nothing), then applies `overrides`, each
/// "dotted.key=value" with the value written as in TOML (a bare word is a string).
/// Throws Error(invalid_argument) naming the file and key on any problem.
/// `check`, when given, sees every other file the config names before it is read (a budget trace,
/// a joint stream's config, a warm start, a model) and throws to refuse it: a job server refuses files
/// outside its --jobs-dir (docs/deployment.md).
using ConfigFileCheck =
    std::function<void(const std::filesystem::path& file, const std::string& what)>;
RunConfig load_run_config(const std::filesystem::path& file,
                          const std::vector<std::string>& overrides,
                          const ConfigFileCheck& check = {});

/// One stream of a joint run (docs/joint.md): a [[stream]] table.
struct JointStreamConfig {
  std::string name;  ///< its records go to OUT/NAME/
  double weight = 1.0;
  /// OneAdapt-joint: protect the stream when its proxy falls under this fraction of its recent
  /// median right after its bytes were cut (0: off; docs/joint.md, "Floors").
  double floor = 0.0;
  RunConfig
      config;  ///< its `config = FILE` (relative to the joint file) with its own tables over it
};

/// A joint run: several streams, one budget for the shared link, one price (docs/joint.md).
struct JointConfig {
  std::filesystem::path file;
  std::vector<JointStreamConfig> streams;
  std::optional<adapt::BudgetTrace> budget;  ///< [joint] kbps or trace (required)
  double price = 0.1;                        ///< the price of a byte at the start
  double eta = 0.5;                          ///< the dual ascent's step
  double margin = 0.9;                       ///< the fraction of the budget aimed at
  std::size_t warmup = 3;                    ///< intervals left out of the budget figures
  bool project = false;      ///< each stream projects onto its part of the link (docs/joint.md)
  bool price_ahead = false;  ///< the price's step against the coming round's budget, and drops
  /// `compare`: each deployable split also runs on the link scaled by these (1 is always run):
  /// its frontier, on which OneAdapt-joint is read at equal bytes (docs/joint.md).
  std::vector<double> split_scales{1.0, 1.5, 2.0, 3.0};
  std::filesystem::path out_dir;
  std::string device = "cpu";
};

/// Whether `file` is a joint config (it has [[stream]] tables).
bool is_joint_config(const std::filesystem::path& file);
/// Parses a joint config. `overrides` from `oneadapt run`'s flags: run.* and joint.* (and the
/// budget flags) apply to the joint run, input.max_intervals to every stream; anything else is
/// an error (a stream's settings go in its table). Errors name the file and the stream.
JointConfig load_joint_config(const std::filesystem::path& file,
                              const std::vector<std::string>& overrides,
                              const ConfigFileCheck& check = {});

/// "asset:REL" -> the cached file (Error when missing); anything else unchanged.
std::string resolve_asset_uri(const std::string& uri);

}  // namespace oneadapt
