// The spatial knob's solver (method.md section 3: a special knob with a closed-form solver that
// consumes the same saliency map). docs/spatial.md describes it with its measurements.
//
// Costs. The interval is rendered uniformly at each quality level (the source's real encodes).
// Per level q and tile t: Z_q[t], the tile's share of rec(V_q) = mean(S |V_q - G|) over every
// frame of the interval, and bytes_q[t], the tile's share of the level's real bytes. The share is
// the cost model (CostModel): a mix of the rendering's spatial detail in the tile (what an
// I-frame spends bits on), its temporal change (what P-frames spend bits on) and its area, with
// weights calibrated against real encodes of whole maps (`oneadapt spatial calibrate`). A map's
// predicted bytes are the sum of its tiles' costs at their levels (predict_bytes).
//
// Solve. The objective of a map is the sum over tiles of
//   Z_q[t] / rec_norm + beta * bytes_q[t] / bytes_norm,
// so for a fixed base quality the per-tile argmin is its minimum (solve_map). When the levels are
// offsets on a base knob (SpatialSpec::base_knob, video's CRF), solve_joint also chooses the base:
// a tile at base b and level q is costed as the uniform rendering at the effective value
// b + level_offsets[q], interpolated between the rendered ones (z linearly, bytes
// log-linearly), and each candidate base's best map is compared, a change of base paying the
// stream header. The map and the base apply to the next interval.
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

/// Per tile features of one rendering ([T,C,H,W] or [C,H,W]): spatial detail (mean over frames
/// of |horizontal| + |vertical| grey differences), temporal change (mean |frame - previous| of
/// grey; zero for one frame) and area (pixels inside the frame).
struct TileFeatures {
  std::vector<double> detail, motion, area;
};
TileFeatures tile_features(const SpatialSpec& spec, const at::Tensor& frames);

/// How a level's bytes split over tiles: share_t is the weighted mean of the tile's share of
/// detail, of motion and of area. The defaults were chosen by `oneadapt spatial calibrate` on
/// held-out intervals (docs/spatial.md).
struct CostModel {
  double w_detail = 0.5, w_motion = 0.2, w_area = 0.3;
  std::vector<double> shares(const TileFeatures& f) const;
};

/// Costs from S ([1,H,W] or [H,W], the pooled saliency), G (the source's frames, [T,C,H,W] or
/// [C,H,W]) and the uniform-level renderings (same shape as G) with their real bytes.
TileCosts tile_costs(const SpatialSpec& spec, const at::Tensor& S, const at::Tensor& G,
                     const std::vector<at::Tensor>& level_frames,
                     const std::vector<double>& level_bytes, const CostModel& model = {});

/// A map's bytes predicted from `costs` (the sum of its tiles' costs at their levels).
double predict_bytes(const TileCosts& costs, const QualityMap& map);

/// The per-tile argmin (ties: the better level). Throws Error(invalid_argument) when the costs
/// do not match the spec.
QualityMap solve_map(const SpatialSpec& spec, const TileCosts& costs, double rec_norm,
                     double bytes_norm, double beta);

/// The joint solve's answer: an index on the base knob's ladder and the map over it.
struct JointChoice {
  std::size_t base = 0;
  QualityMap map;
  double objective = 0;
};

/// Chooses the base and the map together. `costs` come from uniform renderings at base
/// `rendered_base` (an index on `base_values`, the base knob's numeric ladder); `offsets` are
/// the spec's level_offsets. Bases whose level 0 lies outside the rendered range are skipped, as
/// are (base, level) pairs beyond it; `current` is the base sent now, and any other base adds
/// beta * change_bytes / bytes_norm (the stream header a change of settings costs).
JointChoice solve_joint(const SpatialSpec& spec, const TileCosts& costs,
                        const std::vector<double>& base_values, std::size_t rendered_base,
                        std::size_t current, double change_bytes, double rec_norm,
                        double bytes_norm, double beta);

/// Bytes of `map` over base `base` predicted from costs rendered at `rendered_base`,
/// interpolated on the effective axis as solve_joint does; NaN when a tile's effective value lies
/// outside the rendered levels.
double predict_joint_bytes(const SpatialSpec& spec, const TileCosts& costs,
                           const std::vector<double>& base_values, std::size_t rendered_base,
                           std::size_t base, const QualityMap& map);

/// Saliency pooled over intervals: P <- decay P + (1 - decay) S / mean(S), returned at S's mean
/// (so that rec's normaliser still applies). decay 0 is S itself; an S that is all zero (nothing
/// detected) leaves the pool as it was.
class SaliencyPool {
 public:
  explicit SaliencyPool(double decay = 0) : decay_(decay) {}
  at::Tensor add(const at::Tensor& S);

 private:
  double decay_;
  double last_mean_ = 1;
  at::Tensor pool_;
};

/// Per tile sums of a [1,H,W] or [H,W] map, row-major, normalised to sum 1 (all zero: zeros).
std::vector<double> tile_shares(const SpatialSpec& spec, const at::Tensor& S);

/// The roi-hindsight baseline's map from per-tile saliency weights (the whole run's): tiles in
/// decreasing weight, level 0 for those holding the first half of the mass, level 1 for the
/// next quarter, each level half the previous one's mass, the last level for the rest.
QualityMap saliency_bands_map(const SpatialSpec& spec, const std::vector<double>& weights);

/// The roi-static baseline's map: level by distance from the frame centre (centre tiles best,
/// the outer ring worst), in as many bands as there are levels.
QualityMap centre_weighted_map(const SpatialSpec& spec);

}  // namespace oneadapt::adapt
