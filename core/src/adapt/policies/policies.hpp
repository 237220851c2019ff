// The policies, registered in one table (policies/registry.cpp): name, deployable or hindsight,
// what its points vary (beta, an accuracy target, the base quality, or nothing), what it needs
// from the stream and the task, and its factory. `oneadapt run` and `oneadapt compare` iterate
// this table; nothing else lists policy names.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "adapt/harness.hpp"
#include "adapt/policy.hpp"
#include "adapt/relaxation.hpp"

namespace oneadapt::adapt {

enum class Normalisation { fixed, per_interval };
enum class Estimator { abs, signed_ };
enum class RecFrames { last, all };
Normalisation parse_normalisation(const std::string& text);
Estimator parse_estimator(const std::string& text);
RecFrames parse_rec_frames(const std::string& text);

/// The objective of one candidate rendering (method.md section 3), minimised:
/// rec / rec_norm + beta * bytes / bytes_norm.
double objective(double rec, double rec_norm, double bytes, double bytes_norm, double beta);

/// The shared link's price as one stream of a joint run sees it (docs/joint.md): the price of a
/// byte, the same for every stream (the joint run's dual ascent on the total bytes), and this
/// stream's byte scale, the link's budget over this stream's interval, so that a byte costs the
/// same in every stream whatever its interval.
struct SharedPrice {
  double beta = 0.1;
  double bytes_scale = 0;  ///< 0: not set yet (the policy keeps its own normaliser)
  /// This stream's part of the link over its next interval: its share of the link's bytes in the
  /// last round times the link's budget over the interval; the stream projects its configuration
  /// onto it as a single stream does onto its budget (docs/joint.md). 0: no projection.
  double allocation = 0;
};

/// OneAdapt's options (method.md section 3); defaults are the spec's decisions.
struct OneAdaptOptions {
  double beta = 0.1;
  double lr = 0.3;
  Rounding rounding = Rounding::hq;
  Normalisation normalisation = Normalisation::fixed;
  double norm_constant = 0.0;  ///< rec's normaliser; 0 = mean(S |G|) of the first interval
  Estimator estimator = Estimator::abs;
  RecFrames rec_frames = RecFrames::last;
  std::map<std::string, double> start;  ///< theta per knob (default: the knob's default index)
  unsigned seed = 1;
  // Budgets (docs/budgets.md): beta is the price of a byte, set by dual ascent each interval,
  // beta <- beta exp(budget_eta e), e the interval's relative excess over budget_margin x the
  // budget (clamped to [-1, 2]); before each interval the configuration is projected so that its
  // predicted bytes fit budget_margin x the budget.
  double budget_eta = 0.5;
  double budget_margin = 0.9;
  // Step control (docs/method-decisions.md, "Step control"): off reproduces the plain method.
  bool step_control = true;
  double proxy_drop = 0.5;        ///< back off when the proxy falls under this x its recent median
  std::size_t proxy_history = 8;  ///< intervals in that median
  double rec_max = 0;  ///< the rec floor: no step to a value whose rec/norm exceeds it (0: none)
  // The spatial knob (docs/spatial.md): saliency pooled over intervals with this decay, and the
  // base knob chosen by the solver together with the map (else by the gradient step).
  double spatial_decay = 0.5;
  bool spatial_joint = true;
  bool spatial_probe_map = true;  ///< the global knobs' neighbours rendered with the map sent
  // A joint run (docs/joint.md): the price and the byte scale come from `shared`; this stream's
  // rec counts `weight` times (its effective price is shared->beta / weight).
  std::shared_ptr<SharedPrice> shared;
  double weight = 1.0;
};

/// Everything a policy may be configured with; each reads what concerns it.
struct PolicyArgs {
  double point = 0;  ///< its point: beta, an accuracy target or a base quality (CRF)
  OneAdaptOptions oneadapt;
  std::filesystem::path warm_start;
  std::map<std::string, std::string> static_config;  ///< static: knob -> label
  std::string
      spatial_map;  ///< oneadapt / static: solver, centre or best (empty: the policy's default)
  /// Hindsight and profiling baselines: the grid they search (the stream's ladders' product)
  /// and the shared cache whose outcomes the grid evaluation filled.
  std::vector<Configuration> grid;
  const OutcomeCache* cache = nullptr;
  std::size_t intervals = 0;  ///< hindsight: the intervals evaluated
  std::size_t period =
      5;  ///< profiling baselines: profile every `period` intervals (0: never online)
  std::size_t profile_budget =
      3;  ///< Chameleon-style: configurations profiled per profiling interval
  std::size_t prefix =
      0;  ///< AWStream-style and Reducto-style: offline-profile intervals (unscored warm-up)
  /// Hindsight baselines under a budget (docs/budgets.md): best-static is the most accurate
  /// configuration over its budget in at most `budget_tolerance` of the scored intervals;
  /// oracle the most accurate one within each interval's budget.
  const BudgetTrace* budget = nullptr;
  double budget_tolerance = 0.05;
  /// roi-hindsight: the whole run's per-tile saliency (OneAdapt's runs in the same comparison).
  std::vector<double> tile_saliency;
};

enum class PointKind { none, beta, target, base_quality };

struct PolicyInfo {
  std::string name;
  bool deployable = true;
  PointKind points = PointKind::beta;
  bool needs_grid = false;       ///< reads the evaluated grid (hindsight)
  bool needs_spatial = false;    ///< needs the spatial knob (video roi_tile)
  bool needs_regions = false;    ///< needs Task::regions()
  bool needs_selection = false;  ///< needs Source::render_selected()
  std::string summary;           ///< one line
  std::function<std::unique_ptr<Policy>(const PolicyArgs&)> make;
};

/// Every policy, in the order tables list them.
const std::vector<PolicyInfo>& policy_table();
/// The policy named `name`; Error(invalid_argument) listing the names when there is none.
const PolicyInfo& find_policy(const std::string& name);
/// "oneadapt, static, ..." for messages.
std::string policy_names();
/// The name of a point kind as in records and summaries ("beta", "target", "crf").
const char* point_name(PointKind k);

/// The index of `label` on `knob`'s ladder: the label itself, or a number equal to a numeric
/// value of the ladder ("0.7" and "0.69999999999999996" both find 0.7); npos when absent.
std::size_t find_on_ladder(const KnobSpec& knob, const std::string& label);

// Factories (one file each under policies/).
std::unique_ptr<Policy> make_oneadapt(const PolicyArgs& a);
std::unique_ptr<Policy> make_static(const PolicyArgs& a);
std::unique_ptr<Policy> make_roi_static(const PolicyArgs& a);
std::unique_ptr<Policy> make_roi_hindsight(const PolicyArgs& a);
std::unique_ptr<Policy> make_awstream(const PolicyArgs& a);
std::unique_ptr<Policy> make_chameleon(const PolicyArgs& a);
std::unique_ptr<Policy> make_reducto(const PolicyArgs& a);
std::unique_ptr<Policy> make_eaar(const PolicyArgs& a);
std::unique_ptr<Policy> make_dds(const PolicyArgs& a);
std::unique_ptr<Policy> make_best_static(const PolicyArgs& a);
std::unique_ptr<Policy> make_oracle(const PolicyArgs& a);
std::unique_ptr<Policy> make_oracle_split(const PolicyArgs& a);

}  // namespace oneadapt::adapt
