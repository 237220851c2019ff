// Hindsight baselines over a grid of configurations (method.md section 6): every grid
// configuration of every interval is rendered and inferred once, scored against the reference
// outputs, and cached by (interval, configuration), so policies and betas share the work.
//   best-static:  the one configuration minimising the objective over the whole stream
//   oracle:       per interval, the configuration minimising the objective (not deployable)
//   oracle-split: per interval, chosen on the even frames and scored on the odd ones, so that
//                 per-interval metric noise is not mistaken for headroom (method.md section 8)
// Their objective uses real accuracy: O = (1 - accuracy) + beta * bytes / bytes_reference.
#pragma once

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "adapt/runner.hpp"

namespace oneadapt::adapt {

/// What one configuration achieves in one interval.
struct Outcome {
  std::uint64_t bytes = 0, bytes_ref = 0;
  double compute = 0, frames_inferred = 0, frames_ref = 0;
  double accuracy = 0, accuracy_even = 0, accuracy_odd = 0;
};

/// The grid: for each knob the ladder indices it takes (default: every value).
struct Grid {
  std::map<std::string, std::vector<std::string>> labels;  ///< knob -> value labels; absent = all
  std::vector<Configuration> configurations(const std::vector<KnobSpec>& knobs) const;
};

/// Evaluated outcomes of a whole stream: outcomes[interval][configuration].
struct GridTable {
  std::vector<KnobSpec> knobs;
  std::vector<Configuration> configs;
  std::vector<std::vector<Outcome>> outcomes;
  std::vector<double> t_start;
};

/// Renders and infers every grid configuration of every interval of the source (at most
/// `max_intervals`, 0 = all). `progress` gets one line per interval.
GridTable evaluate_grid(host::HostSource& source, host::HostTask& task, const Grid& grid, std::size_t max_intervals,
                        std::ostream& progress);

/// Runs a grid policy on an evaluated table and writes records.jsonl and summary.json (the
/// same schema as run_experiment, plus "deployable") into spec.out_dir:
///   "best-static", "oracle", "oracle-split": hindsight, not deployable;
///   "awstream": every `period` intervals the source sends the reference quality and the
///   server profiles the whole grid on it (charged: the reference bytes sent, one extra
///   rendering and the DNN runs of every other grid configuration); the configuration that
///   minimised the objective is used until the next profiling. Deployable.
///   "chameleon": coordinate descent, one knob per interval in turn: the configurations that
///   differ from the current one in that knob only (the current one included) are profiled on
///   the interval, at most `budget` of them (nearest first; charged as extra renderings and
///   DNN runs), and the best one applies from the NEXT interval: the decision arrives late, as
///   in the original. Deployable.
/// Infers the fresh samples of a rendering (no autograd); repeated samples reuse the last
/// result. `frames` receives the number of samples inferred.
std::vector<ResultPtr> infer_rendering(host::HostTask& task, const Rendering& r, double& frames);

/// Creates spec.out_dir and opens its records.jsonl for writing (Error naming the directory
/// when it cannot).
std::ofstream open_run_records(const RunSpec& spec);

/// summary.json of a baseline run (the schema of run_experiment's, plus "deployable" and
/// `extra`'s fields).
void write_baseline_summary(const RunSpec& spec, const RunSummary& sum, double beta, bool deployable, const nlohmann::json& extra);

RunSummary run_grid_policy(const GridTable& table, const std::string& policy, double beta, const RunSpec& spec,
                           std::size_t period = 5, std::size_t budget = 3);

}  // namespace oneadapt::adapt
