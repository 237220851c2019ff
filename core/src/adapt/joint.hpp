// Several streams of any modalities under one shared budget (docs/joint.md, issue 19): each
// stream runs in its own harness (records in OUT/NAME/), all step in lock-step one interval at a
// time, and OneAdapt-joint prices every stream's bytes with one price for the shared link, set
// by dual ascent on the streams' total bytes against the budget: bytes go where a byte buys the
// most rec (the accuracy proxy), with one backward pass per stream and no profiling.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "adapt/budget.hpp"
#include "adapt/harness.hpp"
#include "adapt/runner.hpp"

namespace oneadapt::adapt {

struct JointStream {
  std::string name;
  double weight = 1.0;
  /// OneAdapt-joint's floor (docs/joint.md, "Floors"): when the stream's proxy falls under
  /// floor x its median over its last five intervals in an interval whose bytes are under their
  /// median too (the price cut it), the stream's price is halved (down to 1/64 of the link's);
  /// each interval without such a fall it recovers by 1.25 up to the link's; and the stream's
  /// OneAdapt backs off (its step control's floor, held for 4, 8, ... intervals) at a fall under
  /// `floor` x its median instead of 0.5 x (if higher). 0: off. A split baseline's stream
  /// ignores it (its own budget rule runs it).
  double floor = 0.0;
  host::HostSource* source = nullptr;
  host::HostTask* task = nullptr;
  Inference* inference = nullptr;  ///< the task side elsewhere (a server); null: `task` here
  double interval = 1.0;           ///< seconds (the source's interval)
  RunSpec spec;  ///< the stream's policy options; out_dir, budget and header are the joint run's
  /// A split baseline (docs/joint.md, "Baselines"): the stream runs `policy` (owned by the
  /// caller) labelled `label`, on its own share of the link `budget` by the policy's own budget
  /// rule, sharing `cache` with the caller's other runs of this stream. Null: OneAdapt priced by
  /// the link's one price (OneAdapt-joint).
  Policy* policy = nullptr;
  RunLabel label;
  std::optional<BudgetTrace> budget;
  OutcomeCache* cache = nullptr;
};

struct JointOptions {
  BudgetTrace budget = BudgetTrace::constant(1000);
  double price = 0.1;   ///< the price at the start
  double eta = 0.5;     ///< dual ascent: price <- price exp(eta e), e the relative excess
  double margin = 0.9;  ///< aim at margin x the budget
  /// When the streams' last round would not fit margin x this round's link, each stream projects
  /// its configuration onto its last bytes scaled down in proportion (as a single stream projects
  /// onto its budget). Off by default: on the joint headline it left the link over in more rounds
  /// than the price alone (19 of 55 against 14; docs/joint.md).
  bool project = false;
  /// The price's step compares the round's total with the coming round's budget instead of this
  /// round's, and a drop of the link scales the price by the drop at once (docs/joint.md).
  bool price_ahead = false;
  std::size_t warmup = 3;
  double interval = 1.0;                 ///< a round, seconds: the longest stream interval
  std::string label = "oneadapt-joint";  ///< the run's policy, for joint-summary.json
  bool quiet = false;                    ///< no progress line per round
  std::filesystem::path out_dir;
  std::map<std::string, std::string> provenance;
};

struct JointSummary {
  std::string policy = "oneadapt-joint";
  std::string status = "complete";
  std::string error;
  std::size_t intervals = 0;  ///< rounds in which at least one stream sent
  std::string budget;         ///< the budget's description
  std::size_t warmup = 0;
  // After the warm-up:
  std::size_t scored = 0, over = 0;
  double bytes_sent = 0, bytes_budget = 0;
  double price_final = 0;
  struct Stream {
    std::string name;
    double weight = 1;
    std::size_t intervals = 0;
    double accuracy_mean = 0;  ///< after the warm-up (0 when intervals == 0)
    double bytes = 0;          ///< uplink after the warm-up
    std::string final_config;
    std::size_t floor_hits = 0;  ///< intervals whose proxy fell under the floor (whole run)
    double protect = 1.0;        ///< the stream's price over the link's at the end
  };
  std::vector<Stream> streams;
  /// Over the means of the streams with scored intervals (a stream that ended within the
  /// warm-up has none and counts in neither).
  double accuracy_weighted = 0, accuracy_min = 0;
  nlohmann::json to_json() const;
  /// The summary to_json() wrote (a distributed compare's run); throws Error(corrupt_data) naming
  /// `from` when it is not one.
  static JointSummary from_json(const nlohmann::json& j, const std::string& from);
};

/// Runs every stream to its end (a stream that ends early leaves the link to the others), in
/// rounds of options.interval: each stream serves the intervals that start within the round.
/// Writes OUT/NAME/{records.jsonl,summary.json,state.json} per stream, OUT/joint.jsonl (per
/// round: the budget, the total, the price, each stream's bytes and accuracy) and
/// OUT/joint-summary.json. OneAdapt-joint streams must have policy `oneadapt` (Error otherwise);
/// a split baseline's streams run the policy they are given. `label` names the whole run in
/// joint-summary.json ("oneadapt-joint", "equal-split:awstream", ...).
JointSummary run_joint(std::vector<JointStream>& streams, const JointOptions& options,
                       std::ostream& progress, bool tty);

/// The joint run's table: per stream, then the link.
std::string joint_table(const JointSummary& s);

}  // namespace oneadapt::adapt
