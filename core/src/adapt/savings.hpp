// The headline statistic of a comparison: OneAdapt's saving of a resource (bytes or DNN work)
// against a baseline at equal accuracy, read on the baseline's frontier.
//
// A series is what one policy run (or one static grid configuration) achieved per interval. Over
// a set of intervals it is one point: (mean accuracy, resource / reference resource). A
// baseline's frontier is the LOWER CONVEX HULL of its points, made monotone: the least cost at
// which a mix of its points, time-shared over the stream, reaches at least a given mean accuracy
// (time-sharing two configurations is available to any policy, so chords between measured points
// that lie above the hull would overstate the baseline's cost). There is no extrapolation above
// the baseline's most accurate point. Saving = 1 - ours / the frontier's cost at our accuracy.
//
// The 90 % interval is a moving-block bootstrap over the scored intervals (blocks of `block`
// consecutive intervals, since neighbouring intervals are correlated): every resample recomputes
// every point, the hull and the saving. A target is met only when the interval's lower end
// clears it (verdict()).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace oneadapt::adapt {

/// One interval of one series. `cost` and `cost_ref` are the resource used and the reference
/// configuration's use of it in that interval (bytes, or DNN work in forward units).
struct IntervalPoint {
  double accuracy = 0, cost = 0, cost_ref = 0;
};

/// What one run or one grid configuration achieved, interval by interval (all series of a
/// comparison cover the same intervals).
struct Series {
  std::string label;  ///< e.g. "oneadapt beta=0.3", "resolution=0.8 qp=28 fps=10"
  std::vector<IntervalPoint> intervals;
};

/// A point of a trade-off curve: mean accuracy and cost ratio (cost / reference cost).
struct TradePoint {
  double accuracy = 0, cost = 0;
  std::size_t series = 0;  ///< index of the series it comes from
};

/// (mean accuracy, sum cost / sum reference cost) of a series over the intervals `idx`.
TradePoint point_of(const Series& s, const std::vector<std::size_t>& idx,
                    std::size_t series_index = 0);

/// A baseline's frontier: the lower convex hull of its points, monotone in accuracy.
class Frontier {
 public:
  explicit Frontier(std::vector<TradePoint> points);
  /// The least cost of a time-shared mix reaching mean accuracy >= `accuracy`; nullopt above
  /// the most accurate point (no extrapolation), below the least accurate one (a policy that
  /// collapsed is not "at equal accuracy" with any point of the baseline) or without points.
  std::optional<double> cost_at(double accuracy) const;
  /// The mean accuracy of a time-shared mix of the hull's vertices at cost `cost` (the hull read
  /// the other way). Below the cheapest vertex: that vertex's accuracy (an upper bound on what
  /// the baseline reaches for less). From the most accurate vertex up to the costliest measured
  /// point (costlier points that are less accurate): the most accurate vertex's accuracy. Above
  /// the costliest measured point: the same when `flat_above` (the baseline, given more, used
  /// no more), else nullopt. nullopt without points.
  std::optional<double> accuracy_at(double cost, bool flat_above) const;
  /// The hull's vertices from the cheapest to the most accurate (accuracy and cost ascending).
  const std::vector<TradePoint>& vertices() const { return hull_; }
  /// The measured point nearest to (accuracy, cost) in accuracy (ties: the cheaper).
  const TradePoint* nearest(double accuracy) const;

 private:
  std::vector<TradePoint> points_, hull_;
  double min_accuracy_ = 0, max_cost_ = 0;
};

struct SavingOptions {
  std::size_t skip = 0;  ///< intervals [0, skip) are left out (warm-up)
  int resamples = 1000;
  std::size_t block = 5;  ///< bootstrap block length in intervals (clamped to the scored count)
  unsigned seed = 7;
};

struct Saving {
  double accuracy = 0;       ///< our mean accuracy over the scored intervals
  double cost = 0;           ///< our cost ratio
  double saving = 0;         ///< 1 - our cost / the frontier's cost at our accuracy
  double low = 0, high = 0;  ///< 90 % block-bootstrap interval
  int resamples = 0;         ///< resamples drawn
  int resamples_used = 0;    ///< resamples where our accuracy fell inside the baseline's range
  std::size_t nearest = 0;   ///< index of the baseline series whose point is nearest in accuracy
  double nearest_accuracy = 0, nearest_cost = 0;
};

/// Our saving against `baseline` (its series form the frontier); nullopt when our accuracy is
/// above the baseline's most accurate point (or nothing is scored).
std::optional<Saving> saving_on_frontier(const Series& ours, const std::vector<Series>& baseline,
                                         const SavingOptions& options);

/// Our accuracy against the baseline's frontier at our cost (the other reading of the same
/// frontier: "more accurate at equal cost").
struct Gain {
  double accuracy = 0;       ///< our mean accuracy over the scored intervals
  double cost = 0;           ///< our cost ratio
  double frontier = 0;       ///< the frontier's accuracy at our cost (Frontier::accuracy_at)
  double gain = 0;           ///< accuracy - frontier
  double low = 0, high = 0;  ///< 90 % block-bootstrap interval (hull recomputed per resample)
  int resamples = 0;
  int resamples_used = 0;  ///< resamples where the frontier could be read at our cost
};

/// Our accuracy minus the baseline frontier's at our cost; nullopt when it cannot be read
/// (our cost above the baseline's costliest point and not `flat_above`, or nothing scored).
std::optional<Gain> gain_on_frontier(const Series& ours, const std::vector<Series>& baseline,
                                     const SavingOptions& options, bool flat_above);

/// "met" when the gain's interval lies above 0 (low > 0), "not met" otherwise, "undetermined"
/// when fewer than 95 % of the resamples could read the frontier.
const char* verdict(const Gain& g);

/// The 90 % interval of the mean of `d` by a moving-block bootstrap (blocks of `block` values,
/// `resamples` draws, seed 7): paired per-interval differences keep their serial correlation.
std::pair<double, double> block_bootstrap_mean(const std::vector<double>& d, std::size_t block,
                                               int resamples);

/// "met" when the interval's lower end clears `target` (low > target), else "not met";
/// "undetermined" when fewer than 95 % of the resamples fell inside the baseline's range (the
/// interval would be conditional on the rest).
const char* verdict(const Saving& s, double target);

}  // namespace oneadapt::adapt
