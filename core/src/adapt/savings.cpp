#include "adapt/savings.hpp"

#include <algorithm>

namespace oneadapt::adapt {

std::optional<double> interpolate_bytes(std::vector<std::pair<double, double>> points, double accuracy) {
  if (points.empty()) return std::nullopt;
  std::sort(points.begin(), points.end());
  if (accuracy < points.front().first - 1e-12 || accuracy > points.back().first + 1e-12) return std::nullopt;
  for (std::size_t i = 0; i + 1 < points.size(); ++i) {
    auto [a0, b0] = points[i];
    auto [a1, b1] = points[i + 1];
    if (accuracy >= a0 - 1e-12 && accuracy <= a1 + 1e-12) {
      if (a1 - a0 < 1e-12) return std::min(b0, b1);  // same accuracy: the cheaper point
      return b0 + (b1 - b0) * (accuracy - a0) / (a1 - a0);
    }
  }
  return points.back().second;  // a single point matching exactly
}

namespace {

// (mean accuracy, resource ratio) of a run over the intervals listed in `idx`.
std::pair<double, double> point(const std::vector<IntervalPoint>& run, const std::vector<std::size_t>& idx, Resource r) {
  double acc = 0, used = 0, ref = 0;
  for (std::size_t i : idx) {
    acc += run[i].accuracy;
    used += r == Resource::bytes ? run[i].bytes : run[i].compute;
    ref += r == Resource::bytes ? run[i].bytes_ref : run[i].compute_ref;
  }
  return {idx.empty() ? 0 : acc / static_cast<double>(idx.size()), ref > 0 ? used / ref : 0};
}

std::optional<double> saving_of(const std::vector<IntervalPoint>& ours, const Curve& baseline, const std::vector<std::size_t>& idx,
                                Resource r, double* accuracy = nullptr) {
  auto [acc, bytes] = point(ours, idx, r);
  if (accuracy) *accuracy = acc;
  std::vector<std::pair<double, double>> curve;
  for (const auto& run : baseline.runs) curve.push_back(point(run, idx, r));
  auto theirs = interpolate_bytes(curve, acc);
  if (!theirs || *theirs <= 0) return std::nullopt;
  return 1.0 - bytes / *theirs;
}

}  // namespace

std::vector<std::optional<Saving>> savings_at_equal_accuracy(const Curve& oneadapt, const Curve& baseline, std::size_t skip,
                                                             int resamples, unsigned seed, Resource resource) {
  std::vector<std::optional<Saving>> out;
  if (oneadapt.runs.empty() || baseline.runs.empty()) return out;
  const std::size_t n = oneadapt.runs[0].size();
  std::vector<std::size_t> all;
  for (std::size_t i = std::min(skip, n); i < n; ++i) all.push_back(i);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, all.empty() ? 0 : all.size() - 1);
  std::vector<std::vector<std::size_t>> samples(static_cast<std::size_t>(resamples));
  for (auto& s : samples)
    for (std::size_t k = 0; k < all.size(); ++k) s.push_back(all[pick(rng)]);
  for (std::size_t r = 0; r < oneadapt.runs.size(); ++r) {
    Saving s;
    s.beta = oneadapt.betas[r];
    auto point_saving = saving_of(oneadapt.runs[r], baseline, all, resource, &s.accuracy);
    if (!point_saving || all.empty()) {
      out.push_back(std::nullopt);
      continue;
    }
    s.saving = *point_saving;
    std::vector<double> boot;
    for (const auto& idx : samples)
      if (auto v = saving_of(oneadapt.runs[r], baseline, idx, resource)) boot.push_back(*v);
    s.resamples_used = static_cast<int>(boot.size());
    if (!boot.empty()) {
      std::sort(boot.begin(), boot.end());
      s.low = boot[static_cast<std::size_t>(0.05 * static_cast<double>(boot.size() - 1))];
      s.high = boot[static_cast<std::size_t>(0.95 * static_cast<double>(boot.size() - 1))];
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace oneadapt::adapt
