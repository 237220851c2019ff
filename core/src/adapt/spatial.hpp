// The spatial knob's solver (method.md section 3: a special knob with a closed-form solver that
// consumes the same saliency map). Given the saliency map S, the source's own frame G and the
// interval rendered uniformly at each quality level, it picks per tile the level minimising
//   Z_q[tile] / rec_norm + beta * bytes_q[tile] / bytes_norm
// where Z_q[tile] is the tile's share of rec(V_q) = mean(S |V_q - G|) and bytes_q[tile] the
// tile's share of the level's real bytes (shares by the rendering's detail in the tile: the sum
// of |horizontal| + |vertical| differences, which is what an encoder spends bits on). The sum
// over tiles of the objective is the global objective of a map, so the per-tile argmin is its
// minimum. The map applies to the next interval.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include <oneadapt/modality.hpp>

namespace oneadapt::adapt {

/// Per level, per tile: rec contribution and estimated bytes.
struct TileCosts {
  std::vector<std::vector<double>> z;      ///< [level][tile]
  std::vector<std::vector<double>> bytes;  ///< [level][tile]
};

/// Costs from S ([1,H,W] or [H,W]), G and the uniform-level renderings (one frame each,
/// [C,H,W]) with their real bytes.
TileCosts tile_costs(const SpatialSpec& spec, const at::Tensor& S, const at::Tensor& G,
                     const std::vector<at::Tensor>& level_frames,
                     const std::vector<double>& level_bytes);

/// The per-tile argmin (ties: the better level). Throws Error(invalid_argument) when the costs
/// do not match the spec.
QualityMap solve_map(const SpatialSpec& spec, const TileCosts& costs, double rec_norm,
                     double bytes_norm, double beta);

/// The roi-static baseline's map: level by distance from the frame centre (centre tiles best,
/// the outer ring worst), in as many bands as there are levels.
QualityMap centre_weighted_map(const SpatialSpec& spec);

}  // namespace oneadapt::adapt
