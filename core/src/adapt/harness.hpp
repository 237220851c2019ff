// The harness: the one interval loop every policy runs in. It owns the source's intervals, the
// renderings of an interval (cached: no configuration is rendered twice), inference with and
// without gradient, the reference outputs that score accuracy (never charged), the accountant
// (every action a policy takes through IntervalContext is charged there) and the records.
//
// A comparison shares one OutcomeCache between its runs: the reference outputs of each interval
// and the outcome of every configuration sent or profiled without a map or a frame selection.
// Renderings are deterministic (the plugin contract, `oneadapt plugins check`), so a cached
// outcome equals a fresh one; a policy is charged for it exactly as if it had been rendered.
#pragma once

#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iosfwd>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>

#include "adapt/accountant.hpp"
#include "adapt/budget.hpp"
#include "adapt/inference.hpp"
#include "adapt/policy.hpp"
#include "adapt/records.hpp"
#include "plugin_registry.hpp"

namespace oneadapt::adapt {

/// Results shared by the runs of a comparison on one input (intervals aligned across runs).
class OutcomeCache {
 public:
  struct Reference {
    std::uint64_t bytes = 0, header_bytes = 0;
    double frames = 0, compute = 0;
    double t_start = 0, duration = 0;  ///< the interval's place in the stream
    std::size_t samples = 0;           ///< samples inferred (results.size() once known)
    /// False for a reference whose figures came from elsewhere (a distributed compare's table):
    /// the harness infers it where it is first needed and checks its bytes against them.
    bool results_known = true;
    std::vector<ResultPtr> results;
  };
  const Reference* reference(std::size_t interval) const;
  void set_reference(std::size_t interval, Reference r);
  const Outcome* find(std::size_t interval, const Configuration& c) const;
  void put(std::size_t interval, const Configuration& c, const Outcome& o);
  std::size_t intervals() const { return refs_.size(); }
  const std::map<std::pair<std::size_t, Configuration>, Outcome>& outcomes() const {
    return outcomes_;
  }

 private:
  std::vector<std::optional<Reference>> refs_;
  std::map<std::pair<std::size_t, Configuration>, Outcome> outcomes_;
};

struct HarnessOptions {
  std::size_t max_intervals = 0;  ///< 0 = the whole stream
  /// Pace the input as if it were live: an interval is begun no earlier than its end on the
  /// stream's clock (from the run's start); records say how far behind the loop was (lag_ms)
  /// and whether it finished after the next interval was complete (late).
  bool realtime = false;
  std::filesystem::path
      out_dir;  ///< records.jsonl, summary.json, state.json; empty = write nothing
  std::map<std::string, std::string> provenance;
  std::string header;  ///< printed to the progress stream once the run starts
  double backward_weight =
      0;  ///< a backward pass in forward units; 0 = measure it at the first one
  OutcomeCache* cache = nullptr;
  /// A bandwidth budget (docs/budgets.md): each interval's budget is recorded and offered to the
  /// policy; summary.json counts the intervals over it after `budget_warmup` intervals.
  std::optional<BudgetTrace> budget;
  std::size_t budget_warmup = 3;
};

/// Identity of the policy a run serves, for records and summary.
struct RunLabel {
  std::string policy;
  bool deployable = true;
  std::string point_name;  ///< beta, target, crf or empty
  double point = 0;
};

class Harness;

/// What a policy can do within one interval; every action is charged by the accountant.
class IntervalContext {
 public:
  const IntervalInfo& info() const { return info_; }
  const StreamSpec& stream() const { return stream_; }
  /// G: the interval's own data (not charged: the source has it).
  const at::Tensor& original() const { return original_; }
  /// A full rendering made on the source for the policy's own use: charged as one source
  /// rendering per distinct configuration and map in the interval (never for the one sent).
  const Rendering& render(const Configuration& c, const QualityMap* map = nullptr);
  /// A rendering on the source made only for gradient estimation (Source::probe: real bytes,
  /// the input of sample `sample` at least); charged like render().
  const Rendering& probe(const Configuration& c, std::size_t sample);
  /// The reference rendering's payload bytes as the source measures them (OneAdapt's byte
  /// normaliser): charged as a source rendering unless the reference was sent.
  std::uint64_t reference_bytes();
  /// The outcome of `c` scored against the reference on this interval, computed on the server
  /// (profiling). Needs reference-quality data there: unless the reference was sent this
  /// interval, its bytes and its inference are charged once (reference_bytes in the record).
  /// Then `c` costs one server rendering and its DNN work.
  Outcome profile(const Configuration& c);
  /// The saliency of the served pass's DNNGrad: the server's (Receiver::saliency, equal to the
  /// source's) when it sent S instead of DNNGrad, else Source::saliency(served.dnn_grad).
  at::Tensor saliency(const Served& served);
  /// The task's metric of `results` against `reference` (server-side bookkeeping, not charged).
  double agreement(const std::vector<ResultPtr>& results, const std::vector<ResultPtr>& reference) {
    return task_.accuracy(results, reference);
  }
  /// Where a result found something (Task::regions), for region-based policies.
  std::vector<Region> regions(const TaskResult& result) { return task_.regions(result); }
  /// A message to the source not covered by decisions (region requests, filter settings).
  void feedback(std::uint64_t bytes);
  /// Policy fields for this interval's record.
  nlohmann::json& trace() { return trace_; }
  /// This interval's bandwidth budget in bytes (the link's rate integrated over the interval,
  /// known to the source as it sends); nullopt without a budget.
  std::optional<double> budget_bytes() const { return budget_; }
  /// Wall time the policy spent in extra renderings (probe stage), for the overhead split.
  double probe_ms() const { return probe_ms_; }

 private:
  friend class Harness;
  friend class HarnessRun;
  IntervalContext(host::HostSource& s, Inference& t, Accountant& a, OutcomeCache* c,
                  const StreamSpec& stream)
      : source_(s), task_(t), acc_(a), cache_(c), stream_(stream) {}
  struct Key {
    Configuration config;
    std::string map;
    bool operator<(const Key& o) const { return std::tie(config, map) < std::tie(o.config, o.map); }
  };
  const Rendering& rendering(const Key& k, const QualityMap* map, double* ms);
  void charge_source_render(const Key& k);
  void ensure_reference_data();
  Served send(const Decision& d, int pass);
  Outcome score(const std::vector<ResultPtr>& results) const;

  host::HostSource& source_;
  Inference& task_;
  Accountant& acc_;
  OutcomeCache* cache_;
  const StreamSpec& stream_;
  IntervalInfo info_;
  at::Tensor original_;
  OutcomeCache::Reference ref_;
  std::map<Key, Rendering> renders_, probes_;
  std::deque<Rendering> selected_;           // renderings of a sample selection (not cached)
  std::map<Configuration, Outcome> served_;  // outcomes the server already has this interval
  std::set<Key> charged_;
  bool reference_sent_ = false, reference_charged_ = false;
  Configuration first_sent_;
  nlohmann::json trace_ = nlohmann::json::object();
  double probe_ms_ = 0, render_ms_ = 0, forward_ms_ = 0, backward_ms_ = 0;
  std::map<std::string, double> stages_;
  std::optional<double> budget_;
};

class Harness {
 public:
  friend class HarnessRun;
  Harness(host::HostTask& task, HarnessOptions options)
      : local_(std::make_unique<LocalInference>(task)),
        task_(*local_),
        options_(std::move(options)) {}
  /// The task side behind `inference` (a server over NATS: split::RemoteInference).
  Harness(Inference& inference, HarnessOptions options)
      : task_(inference), options_(std::move(options)) {}
  /// Runs `policy` over the stream of `source` (freshly opened). Writes records.jsonl (flushed
  /// per interval), summary.json and state.json (atomically, also when it fails: status
  /// "failed" with the error, then the error is rethrown naming where it stopped).
  RunSummary run(host::HostSource& source, Policy& policy, const RunLabel& label,
                 std::ostream& progress, bool tty);
  /// Renders and scores every configuration of `configs` on every interval into the shared
  /// cache (the grid the hindsight and profiling baselines read), uncharged. Returns the number
  /// of intervals.
  std::size_t evaluate(host::HostSource& source, const std::vector<Configuration>& configs,
                       std::ostream& progress);
  /// The backward weight measured (or given) in the last run.
  double backward_weight() const { return backward_weight_; }

 private:
  void begin_interval(IntervalContext& ctx, std::size_t index);
  std::unique_ptr<LocalInference> local_;
  Inference& task_;
  HarnessOptions options_;
  double backward_weight_ = 0;
};

/// One run of a policy over a stream, an interval at a time: Harness::run steps it to the end;
/// a caller that must interleave runs (several streams under one budget, a server fed by the
/// network) steps it itself. Same records, summary and errors as Harness::run.
class HarnessRun {
 public:
  /// Opens the run: begin() on the policy, the output folder, the header line.
  HarnessRun(Harness& harness, host::HostSource& source, Policy& policy, RunLabel label,
             std::ostream& progress, bool tty);
  ~HarnessRun();
  HarnessRun(const HarnessRun&) = delete;
  HarnessRun& operator=(const HarnessRun&) = delete;
  /// Serves the next interval and writes its record; false at the end of the stream (or of
  /// max_intervals). On an error, writes summary.json (status "failed" or "interrupted") and
  /// state.json and throws an Error naming where it stopped; the run is then over.
  bool step();
  /// The record of the last interval served (nullopt before the first).
  const std::optional<IntervalRecord>& last() const { return last_; }
  /// The totals so far.
  const RunSummary& summary() const { return sum_; }
  /// Ends the run: writes summary.json and state.json, returns the summary.
  RunSummary finish();

 private:
  void write_files();
  Harness& harness_;
  host::HostSource& source_;
  Policy& policy_;
  RunLabel label_;
  std::ostream& progress_;
  bool tty_;
  StreamSpec stream_;
  Accountant acc_;
  bool write_;
  std::filesystem::path records_path_;
  std::ofstream records_;
  RunSummary sum_;
  Configuration cheapest_;
  std::chrono::steady_clock::time_point start_;
  std::optional<IntervalRecord> last_;
  bool ended_ = false;  // the stream (or max_intervals) ran out
  bool done_ = false;   // finished, or failed
};

/// Asks every running harness to stop at the end of its interval (from a signal handler: it
/// only sets an atomic flag). The run then writes its summary with status "interrupted" and
/// throws Error(interrupted). The second signal is the default one (the process ends).
void request_stop(int signal);
/// The signal that asked to stop, 0 when none.
int stop_signal();
/// Installs request_stop for SIGINT and SIGTERM.
void stop_on_signals();

/// The human-readable table of a run.
std::string summary_table(const RunSummary& s);

}  // namespace oneadapt::adapt
