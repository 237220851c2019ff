// Records in one home: the interval record (records.jsonl), the run summary (summary.json),
// written atomically, and the run-length form of spatial maps. Every policy writes the same
// schema through these types (docs/records.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include <oneadapt/modality.hpp>

namespace oneadapt::adapt {

/// What one interval cost a policy, in the accountant's units (adapt/accountant.hpp).
struct Charges {
  std::uint64_t bytes = 0;  ///< uplink payload: every pass, profiling data included
  std::uint64_t header_bytes =
      0;  ///< uplink stream/container headers (a stream starts or its settings change)
  std::uint64_t reference_bytes =
      0;  ///< of `bytes`: reference-quality data sent only to score candidates
  std::uint64_t feedback_bytes =
      0;  ///< downlink: configuration updates, maps, region requests, filter settings
  long source_renders = 0;  ///< renderings made on the source (the ones sent included)
  long server_renders = 0;  ///< renderings made on the server (profiling re-encodes)
  double forwards =
      0;  ///< DNN work in forward units (inference, profiling, charged reference inference)
  double profiling_forwards =
      0;  ///< of `forwards`: runs that scored candidates or the reference for the policy
  long backward_passes = 0;
  double backward_units = 0;  ///< backward passes weighted by their measured cost in forward units

  std::uint64_t uplink() const { return bytes + header_bytes; }
  double compute() const { return forwards + backward_units; }
  Charges& operator+=(const Charges& o);
};

/// One interval of one run (one line of records.jsonl).
struct IntervalRecord {
  std::size_t interval = 0;
  double t_start = 0, duration = 0;
  std::string policy;
  Configuration config;  ///< the configuration sent (the last pass's)
  std::string map;       ///< run-length map sent (spatial knob), empty without one
  int passes = 1;        ///< renderings sent in the interval (DDS: 2)
  Charges charges;
  std::uint64_t bytes_ref =
      0;  ///< the reference stream's uplink in this interval (its header in the first)
  double frames_inferred = 0,
         frames_ref = 0;   ///< samples inferred for the result / samples in the interval
  double compute_ref = 0;  ///< the reference's DNN work in this interval (forward units)
  double accuracy = 0, accuracy_first = 0, accuracy_second = 0;
  double proxy = 0;
  bool deployable = true;
  /// The interval's bandwidth budget in bytes (the trace integrated over the interval); < 0
  /// without a budget. over_budget: the uplink exceeded it; budget_infeasible: it did although
  /// every knob was at its cheapest value (docs/budgets.md).
  double budget_bytes = -1;
  bool over_budget = false, budget_infeasible = false;
  /// With input.realtime (docs/deployment.md): how long after the interval's data was complete
  /// (its end on the stream's clock) the loop began it, and whether the loop finished it after
  /// the next interval was complete (it fell behind the live stream). lag_ms < 0 without.
  double lag_ms = -1;
  bool late = false;
  nlohmann::json trace =
      nlohmann::json::object();  ///< policy-specific fields (theta, accgrad, profiling, ...)
  std::map<std::string, double> wall_ms, render_stages_ms;

  nlohmann::json to_json() const;
  /// Reads a record (any missing field is an Error naming it).
  static IntervalRecord from_json(const nlohmann::json& j);
};

/// The totals of a run, summed from its records.
struct RunSummary {
  std::string status = "complete";  ///< complete, failed, interrupted
  std::string error;
  std::string policy;
  std::string point_name;  ///< what the run's point varies: beta, target, crf, or empty
  double point = 0;
  bool deployable = true;
  std::size_t intervals = 0;
  double accuracy_mean = 0;
  Charges charges;
  std::uint64_t bytes_ref_total = 0;
  double frames_inferred_total = 0, frames_ref_total = 0, compute_ref_total = 0;
  double backward_weight = 0;  ///< the backward-pass weight the run was charged with
  double wall_s = 0;
  std::map<std::string, double> stage_ms;
  double overhead_fraction =
      0;  ///< (probe + backward + update) / (decode + render + forward), wall time
  std::string final_config;
  /// With a budget (budget_bytes >= 0 in the records): the figures after the first
  /// `budget_warmup` intervals (docs/budgets.md).
  struct Budget {
    bool active = false;
    std::string describe;    ///< "constant 2000 kbit/s" or "trace FILE (...)"
    std::size_t warmup = 0;  ///< intervals left out of the figures
    std::size_t intervals = 0, intervals_over = 0, intervals_infeasible = 0;
    double bytes_budget = 0, bytes_sent = 0, bytes_over = 0;  ///< bytes_over: sum of excesses
  } budget;
  /// With input.realtime: intervals finished late, and the largest lag.
  struct Realtime {
    bool active = false;
    std::size_t late = 0;
    double lag_ms_max = 0;
  } realtime;

  void add(const IntervalRecord& r);  ///< accumulates one interval (not accuracy_mean: finish())
  void finish();
  double bytes_ratio() const;  ///< uplink / reference uplink
  nlohmann::json to_json() const;
};

/// Writes `text` to `path` through a temporary file and a rename, so that a reader never sees a
/// half-written file. Throws Error(io) naming the file.
void write_atomically(const std::filesystem::path& path, const std::string& text);

/// records.jsonl of a run directory (Error naming the file and line on a malformed record).
std::vector<IntervalRecord> read_records(const std::filesystem::path& dir);

/// Run-length form of a map for records: "level*count,..." in row-major order.
std::string map_rle(const QualityMap& map);
/// The levels of a run-length map (Error on a malformed one).
std::vector<std::uint8_t> map_levels(const std::string& rle);

/// A configuration as {knob: number}.
nlohmann::json config_json(const Configuration& c);

}  // namespace oneadapt::adapt
