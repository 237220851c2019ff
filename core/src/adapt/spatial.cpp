#include "adapt/spatial.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace oneadapt::adapt {

namespace {

// Sum of a [H,W] map over each tile: [rows, cols], row-major as a vector.
std::vector<double> per_tile(const at::Tensor& m, const SpatialSpec& s) {
  const int64_t H = m.size(0), W = m.size(1);
  const int64_t ph = static_cast<int64_t>(s.rows) * s.tile - H,
                pw = static_cast<int64_t>(s.cols) * s.tile - W;
  at::Tensor padded =
      at::constant_pad_nd(m, {0, std::max<int64_t>(0, pw), 0, std::max<int64_t>(0, ph)}, 0);
  at::Tensor sums =
      padded.view({s.rows, s.tile, s.cols, s.tile}).sum({1, 3}).to(at::kDouble).contiguous();
  const double* p = sums.data_ptr<double>();
  return std::vector<double>(p, p + sums.numel());
}

// [T,C,H,W] -> grey [T,H,W]; [C,H,W] -> [1,H,W].
at::Tensor grey_frames(const at::Tensor& v) {
  return v.dim() == 4 ? v.mean(1) : v.mean(0).unsqueeze(0);
}

void check_costs(const SpatialSpec& spec, const TileCosts& costs) {
  const std::size_t tiles =
      static_cast<std::size_t>(spec.cols) * static_cast<std::size_t>(spec.rows);
  if (costs.z.size() != spec.levels.size() || costs.bytes.size() != spec.levels.size())
    throw Error(Errc::invalid_argument,
                "spatial solver: costs for " + std::to_string(costs.z.size()) +
                    " levels, the knob has " + std::to_string(spec.levels.size()));
  for (std::size_t q = 0; q < costs.z.size(); ++q)
    if (costs.z[q].size() != tiles || costs.bytes[q].size() != tiles)
      throw Error(Errc::invalid_argument, "spatial solver: costs for " +
                                              std::to_string(costs.z[q].size()) +
                                              " tiles, the map has " + std::to_string(tiles));
}

std::vector<double> normalised(std::vector<double> v) {
  double total = 0;
  for (double x : v) total += x;
  if (total > 0)
    for (double& x : v) x /= total;
  return v;
}

}  // namespace

TileFeatures tile_features(const SpatialSpec& spec, const at::Tensor& frames) {
  at::NoGradGuard no_grad;
  const at::Tensor g = grey_frames(frames).to(at::kFloat);  // [T,H,W]
  const int64_t T = g.size(0), H = g.size(1), W = g.size(2);
  at::Tensor detail = at::zeros({H, W}, g.options());
  if (W > 1)
    detail.narrow(1, 1, W - 1).add_((g.narrow(2, 1, W - 1) - g.narrow(2, 0, W - 1)).abs().mean(0));
  if (H > 1)
    detail.narrow(0, 1, H - 1).add_((g.narrow(1, 1, H - 1) - g.narrow(1, 0, H - 1)).abs().mean(0));
  at::Tensor motion = T > 1 ? (g.narrow(0, 1, T - 1) - g.narrow(0, 0, T - 1)).abs().mean(0)
                            : at::zeros({H, W}, g.options());
  TileFeatures f;
  f.detail = per_tile(detail, spec);
  f.motion = per_tile(motion, spec);
  f.area = per_tile(at::ones({H, W}, g.options()), spec);
  return f;
}

std::vector<double> CostModel::shares(const TileFeatures& f) const {
  const std::vector<double> d = normalised(f.detail), m = normalised(f.motion),
                            a = normalised(f.area);
  // A still interval has no motion: its weight goes to detail.
  double wm = w_motion, wd = w_detail;
  double motion_total = 0;
  for (double x : f.motion) motion_total += x;
  if (!(motion_total > 0)) wd += wm, wm = 0;
  std::vector<double> out(a.size());
  for (std::size_t t = 0; t < out.size(); ++t) out[t] = wd * d[t] + wm * m[t] + w_area * a[t];
  return normalised(out);
}

TileCosts tile_costs(const SpatialSpec& spec, const at::Tensor& S, const at::Tensor& G,
                     const std::vector<at::Tensor>& level_frames,
                     const std::vector<double>& level_bytes, const CostModel& model) {
  if (level_frames.size() != spec.levels.size() || level_bytes.size() != spec.levels.size())
    throw Error(Errc::invalid_argument, "spatial solver: one rendering per level needed (" +
                                            std::to_string(spec.levels.size()) + ")");
  at::NoGradGuard no_grad;
  const at::Tensor s = S.dim() == 3 ? S[0] : S;  // [H,W]
  TileCosts out;
  for (std::size_t q = 0; q < level_frames.size(); ++q) {
    const at::Tensor& v = level_frames[q];
    if (!v.sizes().equals(G.sizes()))
      throw Error(Errc::invalid_argument,
                  "spatial solver: a level's rendering and the source frames differ in shape");
    // rec's summand per pixel, summed over frames and channels; divided by rec's element count.
    const std::vector<int64_t> outer =
        v.dim() == 4 ? std::vector<int64_t>{0, 1} : std::vector<int64_t>{0};
    at::Tensor err = (v - G).abs().sum(outer).mul_(s).div_(static_cast<double>(v.numel()));
    out.z.push_back(per_tile(err, spec));
    std::vector<double> share = model.shares(tile_features(spec, v));
    for (double& x : share) x *= level_bytes[q];
    out.bytes.push_back(std::move(share));
  }
  return out;
}

double predict_bytes(const TileCosts& costs, const QualityMap& map) {
  double total = 0;
  for (std::size_t t = 0; t < map.level.size(); ++t) {
    const std::size_t q = map.level[t];
    if (q >= costs.bytes.size() || t >= costs.bytes[q].size())
      throw Error(Errc::invalid_argument, "spatial cost model: the map does not fit the costs");
    total += costs.bytes[q][t];
  }
  return total;
}

QualityMap solve_map(const SpatialSpec& spec, const TileCosts& costs, double rec_norm,
                     double bytes_norm, double beta) {
  check_costs(spec, costs);
  if (!(rec_norm > 0)) rec_norm = 1;
  if (!(bytes_norm > 0)) bytes_norm = 1;
  QualityMap map = QualityMap::uniform(spec, 0);
  for (std::size_t t = 0; t < map.level.size(); ++t) {
    double best = 0;
    for (std::size_t q = 0; q < costs.z.size(); ++q) {
      const double o = costs.z[q][t] / rec_norm + beta * costs.bytes[q][t] / bytes_norm;
      if (q == 0 || o < best) best = o, map.level[t] = static_cast<std::uint8_t>(q);
    }
  }
  return map;
}

namespace {

// Each tile's costs at any effective value within the rendered levels: z linearly, bytes
// log-linearly between the two rendered levels around it.
class EffectiveAxis {
 public:
  EffectiveAxis(const SpatialSpec& spec, const TileCosts& costs,
                const std::vector<double>& base_values, std::size_t rendered_base)
      : costs_(costs) {
    check_costs(spec, costs);
    const std::size_t L = spec.levels.size();
    if (spec.level_offsets.size() != L)
      throw Error(Errc::invalid_argument,
                  "spatial solver: the knob gives no offset per level, so no base can be chosen");
    if (rendered_base >= base_values.size())
      throw Error(Errc::invalid_argument,
                  "spatial solver: the rendered base is not on the base knob's ladder");
    for (std::size_t q = 1; q < L; ++q)
      if (!(spec.level_offsets[q] > spec.level_offsets[q - 1]))
        throw Error(Errc::invalid_argument, "spatial solver: level offsets must increase");
    for (std::size_t q = 0; q < L; ++q)
      e_.push_back(base_values[rendered_base] + spec.level_offsets[q]);
    eps_ = 1e-6 * std::max(1.0, std::abs(e_.back() - e_.front()));
  }
  bool inside(double x) const { return x >= e_.front() - eps_ && x <= e_.back() + eps_; }
  // {z, bytes} of tile t at effective value x (inside()).
  std::pair<double, double> at(std::size_t t, double x) const {
    std::size_t q = 0;
    while (q + 1 < e_.size() && e_[q + 1] <= x + eps_) ++q;
    if (q + 1 >= e_.size() || std::abs(x - e_[q]) <= eps_)
      return {costs_.z[q][t], costs_.bytes[q][t]};
    const double f = std::clamp((x - e_[q]) / (e_[q + 1] - e_[q]), 0.0, 1.0);
    const double z = costs_.z[q][t] + f * (costs_.z[q + 1][t] - costs_.z[q][t]);
    const double b0 = std::max(costs_.bytes[q][t], 1e-9),
                 b1 = std::max(costs_.bytes[q + 1][t], 1e-9);
    return {z, std::exp(std::log(b0) + f * (std::log(b1) - std::log(b0)))};
  }

 private:
  const TileCosts& costs_;
  std::vector<double> e_;
  double eps_ = 0;
};

}  // namespace

JointChoice solve_joint(const SpatialSpec& spec, const TileCosts& costs,
                        const std::vector<double>& base_values, std::size_t rendered_base,
                        std::size_t current, double change_bytes, double rec_norm,
                        double bytes_norm, double beta) {
  const EffectiveAxis axis(spec, costs, base_values, rendered_base);
  if (!(rec_norm > 0)) rec_norm = 1;
  if (!(bytes_norm > 0)) bytes_norm = 1;
  const std::size_t tiles = costs.z[0].size(), L = spec.levels.size();
  JointChoice best;
  bool found = false;
  for (std::size_t b = 0; b < base_values.size(); ++b) {
    if (!axis.inside(base_values[b] + spec.level_offsets[0])) continue;
    QualityMap map = QualityMap::uniform(spec, 0);
    double total = b != current ? beta * change_bytes / bytes_norm : 0.0;
    for (std::size_t t = 0; t < tiles; ++t) {
      double tile_best = 0;
      for (std::size_t q = 0; q < L; ++q) {
        const double x = base_values[b] + spec.level_offsets[q];
        if (!axis.inside(x)) break;
        const auto [z, bytes] = axis.at(t, x);
        const double o = z / rec_norm + beta * bytes / bytes_norm;
        if (q == 0 || o < tile_best) tile_best = o, map.level[t] = static_cast<std::uint8_t>(q);
      }
      total += tile_best;
    }
    // Ties: the base sent now, then the better base.
    const bool better = !found || total < best.objective - 1e-12 ||
                        (std::abs(total - best.objective) <= 1e-12 && b == current);
    if (better) best = {b, std::move(map), total}, found = true;
  }
  if (!found)
    throw Error(Errc::invalid_argument,
                "spatial solver: no base of the ladder lies within the rendered levels");
  return best;
}

double predict_joint_bytes(const SpatialSpec& spec, const TileCosts& costs,
                           const std::vector<double>& base_values, std::size_t rendered_base,
                           std::size_t base, const QualityMap& map) {
  const EffectiveAxis axis(spec, costs, base_values, rendered_base);
  if (base >= base_values.size() || map.level.size() != costs.z[0].size())
    throw Error(Errc::invalid_argument, "spatial cost model: the map does not fit the costs");
  double total = 0;
  for (std::size_t t = 0; t < map.level.size(); ++t) {
    if (map.level[t] >= spec.level_offsets.size())
      throw Error(Errc::invalid_argument, "spatial cost model: a level outside the knob");
    const double x = base_values[base] + spec.level_offsets[map.level[t]];
    if (!axis.inside(x)) return std::nan("");
    total += axis.at(t, x).second;
  }
  return total;
}

at::Tensor SaliencyPool::add(const at::Tensor& S) {
  at::NoGradGuard no_grad;
  const double mean = S.abs().mean().item<double>();
  if (!(mean > 0)) return pool_.defined() ? pool_ * last_mean_ : S;
  at::Tensor unit = S.abs() / mean;
  pool_ = pool_.defined() && pool_.sizes().equals(unit.sizes()) && decay_ > 0
              ? pool_ * decay_ + unit * (1 - decay_)
              : unit;
  last_mean_ = mean;
  return pool_ * mean;
}

std::vector<double> tile_shares(const SpatialSpec& spec, const at::Tensor& S) {
  at::NoGradGuard no_grad;
  const at::Tensor s = S.dim() == 3 ? S[0] : S;
  return normalised(per_tile(s.abs().to(at::kFloat), spec));
}

QualityMap saliency_bands_map(const SpatialSpec& spec, const std::vector<double>& weights) {
  QualityMap map = QualityMap::uniform(spec, static_cast<std::uint8_t>(spec.levels.size() - 1));
  if (weights.size() != map.level.size())
    throw Error(Errc::invalid_argument,
                "roi-hindsight: saliency for " + std::to_string(weights.size()) +
                    " tiles, the map has " + std::to_string(map.level.size()));
  const std::vector<double> w = normalised(weights);
  std::vector<std::size_t> order(w.size());
  for (std::size_t t = 0; t < order.size(); ++t) order[t] = t;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return w[a] > w[b]; });
  double before = 0;  // the mass of the tiles ahead of this one
  for (std::size_t t : order) {
    if (!(w[t] > 0)) break;
    // Level q holds the mass in [1 - 2^-q, 1 - 2^-(q+1)).
    std::size_t q = 0;
    while (q + 1 < spec.levels.size() && before >= 1 - std::pow(0.5, static_cast<double>(q + 1)))
      ++q;
    map.level[t] = static_cast<std::uint8_t>(q);
    before += w[t];
  }
  return map;
}

QualityMap centre_weighted_map(const SpatialSpec& spec) {
  QualityMap map = QualityMap::uniform(spec, 0);
  const double cx = (spec.cols - 1) / 2.0, cy = (spec.rows - 1) / 2.0;
  const auto levels = static_cast<double>(spec.levels.size());
  for (int r = 0; r < spec.rows; ++r)
    for (int c = 0; c < spec.cols; ++c) {
      // Normalised elliptical distance: 0 at the centre, 1 at the middle of an edge.
      const double d = std::hypot((c - cx) / std::max(cx, 0.5), (r - cy) / std::max(cy, 0.5));
      map.level[static_cast<std::size_t>(r * spec.cols + c)] =
          static_cast<std::uint8_t>(std::min(levels - 1, std::floor(d * levels / 1.2)));
    }
  return map;
}

}  // namespace oneadapt::adapt
