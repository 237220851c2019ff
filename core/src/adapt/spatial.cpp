#include "adapt/spatial.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

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

}  // namespace

TileCosts tile_costs(const SpatialSpec& spec, const at::Tensor& S, const at::Tensor& G,
                     const std::vector<at::Tensor>& level_frames,
                     const std::vector<double>& level_bytes) {
  if (level_frames.size() != spec.levels.size() || level_bytes.size() != spec.levels.size())
    throw Error(Errc::invalid_argument, "spatial solver: one rendering per level needed (" +
                                            std::to_string(spec.levels.size()) + ")");
  at::NoGradGuard no_grad;
  const at::Tensor s = S.dim() == 3 ? S[0] : S;  // [H,W]
  const double pixels = static_cast<double>(G.size(1) * G.size(2) * G.size(0));
  TileCosts out;
  for (std::size_t q = 0; q < level_frames.size(); ++q) {
    const at::Tensor& v = level_frames[q];
    // rec's summand per pixel, summed over channels; divided by rec's element count.
    at::Tensor err = ((v - G).abs() * s).sum(0) / pixels;
    out.z.push_back(per_tile(err, spec));
    at::Tensor grey = v.mean(0);
    at::Tensor detail = at::zeros_like(grey);
    detail.narrow(1, 1, grey.size(1) - 1)
        .add_((grey.narrow(1, 1, grey.size(1) - 1) - grey.narrow(1, 0, grey.size(1) - 1)).abs());
    detail.narrow(0, 1, grey.size(0) - 1)
        .add_((grey.narrow(0, 1, grey.size(0) - 1) - grey.narrow(0, 0, grey.size(0) - 1)).abs());
    std::vector<double> share = per_tile(detail + 1e-3, spec);  // a flat tile still costs a little
    double total = 0;
    for (double x : share) total += x;
    for (double& x : share) x = level_bytes[q] * x / total;
    out.bytes.push_back(share);
  }
  return out;
}

QualityMap solve_map(const SpatialSpec& spec, const TileCosts& costs, double rec_norm,
                     double bytes_norm, double beta) {
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
  if (!(rec_norm > 0)) rec_norm = 1;
  if (!(bytes_norm > 0)) bytes_norm = 1;
  QualityMap map = QualityMap::uniform(spec, 0);
  for (std::size_t t = 0; t < tiles; ++t) {
    double best = 0;
    for (std::size_t q = 0; q < costs.z.size(); ++q) {
      const double o = costs.z[q][t] / rec_norm + beta * costs.bytes[q][t] / bytes_norm;
      if (q == 0 || o < best) best = o, map.level[t] = static_cast<std::uint8_t>(q);
    }
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
