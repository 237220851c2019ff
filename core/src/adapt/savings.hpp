// The headline statistic of a comparison: OneAdapt's bandwidth saving against a baseline at
// equal accuracy. Each run is a point (mean accuracy, bytes / reference bytes) computed over
// the same intervals; a baseline's runs at several betas form its trade-off curve. For a
// OneAdapt point, the baseline's bytes at OneAdapt's accuracy are interpolated linearly between
// the two baseline points that bracket it (no extrapolation); saving = 1 - ours / theirs.
// The 90% confidence interval resamples the intervals with replacement (the same resample for
// every run, since all runs see the same intervals) and recomputes everything.
#pragma once

#include <optional>
#include <random>
#include <string>
#include <vector>

namespace oneadapt::adapt {

/// Per-interval outcome of one run. `compute` is the DNN work the policy spent (inferred
/// samples + profiling runs + backward passes, each counted as one forward), `compute_ref`
/// the samples of the interval.
struct IntervalPoint {
  double accuracy = 0, bytes = 0, bytes_ref = 0;
  double compute = 0, compute_ref = 0;
};

/// Which resource a saving is about.
enum class Resource { bytes, compute };

struct Curve {
  std::string policy;
  std::vector<double> betas;
  std::vector<std::vector<IntervalPoint>> runs;  ///< one per beta, intervals aligned across runs
};

struct Saving {
  double beta = 0;             ///< OneAdapt's beta
  double accuracy = 0;         ///< OneAdapt's mean accuracy at that beta
  double saving = 0;           ///< 1 - bytes_oneadapt / bytes_baseline(at that accuracy)
  double low = 0, high = 0;    ///< 90% bootstrap interval
  int resamples_used = 0;      ///< resamples where the accuracy was inside the baseline's range
};

/// Savings of every OneAdapt point against `baseline`; std::nullopt where OneAdapt's accuracy
/// lies outside the baseline curve's range. Intervals [0, skip) are left out (warm-up).
std::vector<std::optional<Saving>> savings_at_equal_accuracy(const Curve& oneadapt, const Curve& baseline, std::size_t skip,
                                                             int resamples = 1000, unsigned seed = 7,
                                                             Resource resource = Resource::bytes);

/// bytes at `accuracy` on the curve through (accuracy_i, bytes_ratio_i); nullopt outside it.
std::optional<double> interpolate_bytes(std::vector<std::pair<double, double>> points, double accuracy);

}  // namespace oneadapt::adapt
