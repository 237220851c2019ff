// The experiment runner and the adaptation policies (method.md sections 3-5).
//
// Per interval: the source decodes the interval; the policy's configuration is rendered (the
// bytes actually sent), the task infers the fresh samples, and, when the policy needs it, one
// backward pass from the proxy on the last inferred sample gives DNNGrad, reusing that sample's
// forward pass. The reference configuration is rendered and inferred too, to score accuracy;
// that is not charged to the policy. Renderings are cached per interval: no configuration is
// encoded twice. Every completed interval is written to records.jsonl at once.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>

#include "adapt/relaxation.hpp"
#include "plugin_registry.hpp"

namespace oneadapt::adapt {

enum class Normalisation { fixed, per_interval };
enum class Estimator { abs, signed_ };
enum class RecFrames { last, all };
RecFrames parse_rec_frames(const std::string& text);
Normalisation parse_normalisation(const std::string& text);
Estimator parse_estimator(const std::string& text);

/// The objective of one candidate rendering (method.md section 3), minimised:
/// rec / rec_norm + beta * bytes / bytes_norm.
double objective(double rec, double rec_norm, double bytes, double bytes_norm, double beta);

/// OneAdapt's options (method.md section 3); defaults are the spec's decisions.
struct OneAdaptOptions {
  double beta = 0.1;  ///< weight of bytes(V)/bytes(reference) in the objective
  double lr = 0.3;
  Rounding rounding = Rounding::hq;
  Normalisation normalisation = Normalisation::fixed;
  /// rec's normaliser; 0 = mean(S |G|) of the first interval. With `fixed` normalisation the
  /// bytes term is normalised by the first interval's reference bytes too (calibration), so
  /// the reference is encoded once, not every interval; `per-interval` uses each interval's.
  double norm_constant = 0.0;
  Estimator estimator = Estimator::abs;
  /// Frames rec(V) compares with G: the last one (the sample DNNGrad comes from; default) or
  /// all frames of the interval.
  RecFrames rec_frames = RecFrames::last;
  std::map<std::string, double> start;  ///< theta per knob (default 1 = most expensive)
  unsigned seed = 1;                    ///< for stochastic rounding
};

struct RunSpec {
  std::string policy = "oneadapt";  ///< oneadapt | static
  OneAdaptOptions oneadapt;
  std::map<std::string, std::string> static_config;  ///< knob -> value label (static policy)
  /// With a source that has a spatial knob: "solver" (OneAdapt's default: the map of the next
  /// interval from the saliency map, adapt/spatial.hpp), "centre" (a fixed centre-weighted map:
  /// the roi-static baseline) or "best" (every tile at the best level; static's default).
  std::string spatial_map;
  std::size_t max_intervals = 0;                      ///< 0 = the whole stream
  std::filesystem::path out_dir;
  std::filesystem::path warm_start;  ///< a state.json from an earlier run, or empty
  std::map<std::string, std::string> provenance;  ///< recorded in summary.json (input, config, ...)
  std::string header;  ///< printed to the progress stream once the run is validated
};

struct RunSummary {
  std::string policy;
  std::size_t intervals = 0;
  double accuracy_mean = 0;
  std::uint64_t bytes_total = 0, bytes_ref_total = 0;
  double frames_inferred_total = 0, frames_ref_total = 0;
  double compute_total = 0;
  long backward_passes = 0, extra_renders = 0, extra_forwards = 0;
  double wall_s = 0;
  std::map<std::string, double> stage_ms;  ///< totals per stage
  /// (probe + backward + update) / (decode + render + forward): OneAdapt's overhead relative
  /// to the inference-only pipeline, in wall time.
  double overhead_fraction = 0;
  std::string final_config;
};

/// Runs `spec.policy` over the source's stream. Writes records.jsonl, summary.json and
/// state.json into spec.out_dir. `progress` receives a progress bar (on a terminal) or one line
/// per interval. Throws Error on a failure; records of completed intervals stay written and
/// summary.json says where it stopped.
RunSummary run_experiment(host::HostSource& source, host::HostTask& task, const RunSpec& spec,
                          std::ostream& progress, bool progress_is_tty);

/// The human-readable table of a run.
std::string summary_table(const RunSummary& s);

}  // namespace oneadapt::adapt
