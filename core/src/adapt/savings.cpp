#include "adapt/savings.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>

namespace oneadapt::adapt {

TradePoint point_of(const Series& s, const std::vector<std::size_t>& idx,
                    std::size_t series_index) {
  double acc = 0, cost = 0, ref = 0;
  for (std::size_t i : idx) {
    const IntervalPoint& p = s.intervals.at(i);
    acc += p.accuracy, cost += p.cost, ref += p.cost_ref;
  }
  TradePoint t;
  t.accuracy = idx.empty() ? 0 : acc / static_cast<double>(idx.size());
  t.cost = ref > 0 ? cost / ref : 0;
  t.series = series_index;
  return t;
}

namespace {

// z-component of (b - a) x (c - a) in the (accuracy, cost) plane.
double cross(const TradePoint& a, const TradePoint& b, const TradePoint& c) {
  return (b.accuracy - a.accuracy) * (c.cost - a.cost) -
         (b.cost - a.cost) * (c.accuracy - a.accuracy);
}

}  // namespace

Frontier::Frontier(std::vector<TradePoint> points) : points_(std::move(points)) {
  if (points_.empty()) return;
  min_accuracy_ = std::min_element(points_.begin(), points_.end(),
                                   [](const TradePoint& a, const TradePoint& b) {
                                     return a.accuracy < b.accuracy;
                                   })
                      ->accuracy;
  for (const auto& q : points_) max_cost_ = std::max(max_cost_, q.cost);
  std::vector<TradePoint> p = points_;
  std::sort(p.begin(), p.end(), [](const TradePoint& a, const TradePoint& b) {
    return a.accuracy != b.accuracy ? a.accuracy < b.accuracy : a.cost < b.cost;
  });
  // Lower hull (Andrew's monotone chain), accuracy ascending; of points with equal accuracy only
  // the cheapest can be on it.
  std::vector<TradePoint> lower;
  for (const auto& q : p) {
    if (!lower.empty() && lower.back().accuracy == q.accuracy) continue;  // a costlier duplicate
    while (lower.size() >= 2 && cross(lower[lower.size() - 2], lower.back(), q) <= 0)
      lower.pop_back();
    lower.push_back(q);
  }
  // Monotone: from the cheapest vertex on, the hull rises with accuracy; left of it, the
  // cheapest vertex itself reaches a higher accuracy for less, so the part before it is dropped.
  auto cheapest =
      std::min_element(lower.begin(), lower.end(), [](const TradePoint& a, const TradePoint& b) {
        return a.cost != b.cost ? a.cost < b.cost : a.accuracy > b.accuracy;
      });
  hull_.assign(cheapest, lower.end());
}

std::optional<double> Frontier::cost_at(double accuracy) const {
  if (hull_.empty()) return std::nullopt;
  const double eps = 1e-12;
  if (accuracy > hull_.back().accuracy + eps || accuracy < min_accuracy_ - eps) return std::nullopt;
  if (accuracy <= hull_.front().accuracy + eps) return hull_.front().cost;
  for (std::size_t i = 0; i + 1 < hull_.size(); ++i) {
    const TradePoint &a = hull_[i], &b = hull_[i + 1];
    if (accuracy <= b.accuracy + eps) {
      const double span = b.accuracy - a.accuracy;
      return span <= eps ? std::min(a.cost, b.cost)
                         : a.cost + (b.cost - a.cost) * (accuracy - a.accuracy) / span;
    }
  }
  return hull_.back().cost;
}

std::optional<double> Frontier::accuracy_at(double cost, bool flat_above) const {
  if (hull_.empty()) return std::nullopt;
  const double eps = 1e-12;
  if (cost <= hull_.front().cost + eps) return hull_.front().accuracy;
  for (std::size_t i = 0; i + 1 < hull_.size(); ++i) {
    const TradePoint &a = hull_[i], &b = hull_[i + 1];
    if (cost <= b.cost + eps) {
      const double span = b.cost - a.cost;
      return span <= eps ? std::max(a.accuracy, b.accuracy)
                         : a.accuracy + (b.accuracy - a.accuracy) * (cost - a.cost) / span;
    }
  }
  if (flat_above || cost <= max_cost_ + eps) return hull_.back().accuracy;
  return std::nullopt;
}

const TradePoint* Frontier::nearest(double accuracy) const {
  const TradePoint* best = nullptr;
  for (const auto& p : points_) {
    if (!best) {
      best = &p;
      continue;
    }
    const double d = std::abs(p.accuracy - accuracy), bd = std::abs(best->accuracy - accuracy);
    if (d < bd || (d == bd && p.cost < best->cost)) best = &p;
  }
  return best;
}

namespace {

std::optional<double> saving_over(const Series& ours, const std::vector<Series>& baseline,
                                  const std::vector<std::size_t>& idx, double* accuracy = nullptr,
                                  double* cost = nullptr) {
  const TradePoint o = point_of(ours, idx);
  if (accuracy) *accuracy = o.accuracy;
  if (cost) *cost = o.cost;
  std::vector<TradePoint> pts;
  for (std::size_t k = 0; k < baseline.size(); ++k) pts.push_back(point_of(baseline[k], idx, k));
  const auto theirs = Frontier(pts).cost_at(o.accuracy);
  if (!theirs || *theirs <= 0) return std::nullopt;
  return 1.0 - o.cost / *theirs;
}

}  // namespace

namespace {

// Moving-block bootstrap over the scored intervals: blocks of L consecutive ones, started
// uniformly; `stat` is recomputed on each resample (nullopt: the resample is not counted).
template <class Stat>
std::vector<double> block_resamples(const std::vector<std::size_t>& scored,
                                    const SavingOptions& options, Stat stat) {
  const std::size_t m = scored.size(), L = std::max<std::size_t>(1, std::min(options.block, m));
  std::mt19937 rng(options.seed);
  std::uniform_int_distribution<std::size_t> start(0, m - L);
  std::vector<double> boot;
  for (int r = 0; r < options.resamples; ++r) {
    std::vector<std::size_t> idx;
    while (idx.size() < m) {
      const std::size_t b = start(rng);
      for (std::size_t k = 0; k < L && idx.size() < m; ++k) idx.push_back(scored[b + k]);
    }
    if (auto v = stat(idx)) boot.push_back(*v);
  }
  std::sort(boot.begin(), boot.end());
  return boot;
}

// The 5th and 95th percentiles of sorted resamples.
std::pair<double, double> percentiles(const std::vector<double>& boot) {
  if (boot.empty()) return {0, 0};
  auto q = [&](double p) {
    return boot[static_cast<std::size_t>(std::lround(p * static_cast<double>(boot.size() - 1)))];
  };
  return {q(0.05), q(0.95)};
}

// The scored intervals, or nothing when the series do not cover the same intervals.
std::vector<std::size_t> scored_of(const Series& ours, const std::vector<Series>& baseline,
                                   std::size_t skip) {
  const std::size_t n = ours.intervals.size();
  for (const auto& b : baseline)
    if (b.intervals.size() != n) return {};
  std::vector<std::size_t> scored;
  for (std::size_t i = std::min(skip, n); i < n; ++i) scored.push_back(i);
  return scored;
}

std::optional<double> gain_over(const Series& ours, const std::vector<Series>& baseline,
                                const std::vector<std::size_t>& idx, bool flat_above,
                                Gain* g = nullptr) {
  const TradePoint o = point_of(ours, idx);
  std::vector<TradePoint> pts;
  for (std::size_t k = 0; k < baseline.size(); ++k) pts.push_back(point_of(baseline[k], idx, k));
  const auto theirs = Frontier(pts).accuracy_at(o.cost, flat_above);
  if (!theirs) return std::nullopt;
  if (g) g->accuracy = o.accuracy, g->cost = o.cost, g->frontier = *theirs;
  return o.accuracy - *theirs;
}

}  // namespace

std::optional<Saving> saving_on_frontier(const Series& ours, const std::vector<Series>& baseline,
                                         const SavingOptions& options) {
  const std::vector<std::size_t> scored = scored_of(ours, baseline, options.skip);
  if (scored.empty() || baseline.empty()) return std::nullopt;
  Saving s;
  const auto point = saving_over(ours, baseline, scored, &s.accuracy, &s.cost);
  if (!point) return std::nullopt;
  s.saving = *point;
  {
    std::vector<TradePoint> pts;
    for (std::size_t k = 0; k < baseline.size(); ++k)
      pts.push_back(point_of(baseline[k], scored, k));
    const Frontier f(pts);
    if (const TradePoint* q = f.nearest(s.accuracy))
      s.nearest = q->series, s.nearest_accuracy = q->accuracy, s.nearest_cost = q->cost;
  }
  const auto boot = block_resamples(
      scored, options, [&](const std::vector<std::size_t>& idx) { return saving_over(ours, baseline, idx); });
  s.resamples = options.resamples;
  s.resamples_used = static_cast<int>(boot.size());
  std::tie(s.low, s.high) = percentiles(boot);
  return s;
}

std::optional<Gain> gain_on_frontier(const Series& ours, const std::vector<Series>& baseline,
                                     const SavingOptions& options, bool flat_above) {
  const std::vector<std::size_t> scored = scored_of(ours, baseline, options.skip);
  if (scored.empty() || baseline.empty()) return std::nullopt;
  Gain g;
  const auto point = gain_over(ours, baseline, scored, flat_above, &g);
  if (!point) return std::nullopt;
  g.gain = *point;
  const auto boot = block_resamples(scored, options, [&](const std::vector<std::size_t>& idx) {
    return gain_over(ours, baseline, idx, flat_above);
  });
  g.resamples = options.resamples;
  g.resamples_used = static_cast<int>(boot.size());
  std::tie(g.low, g.high) = percentiles(boot);
  return g;
}

std::pair<double, double> block_bootstrap_mean(const std::vector<double>& d, std::size_t block,
                                               int resamples) {
  if (d.empty()) return {0, 0};
  const std::size_t n = d.size(), b = std::clamp<std::size_t>(block, 1, n);
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::size_t> start(0, n - b);
  std::vector<double> means;
  for (int r = 0; r < resamples; ++r) {
    double sum = 0;
    std::size_t taken = 0;
    while (taken < n) {
      const std::size_t s0 = start(rng);
      for (std::size_t k = 0; k < b && taken < n; ++k, ++taken) sum += d[s0 + k];
    }
    means.push_back(sum / static_cast<double>(n));
  }
  std::sort(means.begin(), means.end());
  auto q = [&](double p) {
    return means[std::min(means.size() - 1,
                          static_cast<std::size_t>(p * (means.size() - 1) + 0.5))];
  };
  return {q(0.05), q(0.95)};
}

const char* verdict(const Gain& g) {
  if (g.resamples_used == 0 || g.resamples_used < 0.95 * g.resamples) return "undetermined";
  return g.low > 0 ? "met" : "not met";
}

const char* verdict(const Saving& s, double target) {
  if (s.resamples_used == 0 || s.resamples_used < 0.95 * s.resamples) return "undetermined";
  return s.low > target ? "met" : "not met";
}

}  // namespace oneadapt::adapt
