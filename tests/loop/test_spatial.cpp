// The spatial knob's solver (adapt/spatial.hpp): the cost model against real encodes of whole
// maps, saliency pooling on a synthetic sequence, the joint base-and-map solve on inputs whose
// optimum is known by enumeration.
#include <ATen/ATen.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "adapt/spatial.hpp"
#include "assets.hpp"
#include "plugin_registry.hpp"
#include "../support.hpp"

using namespace oneadapt;
using namespace oneadapt::adapt;
using test_support::plugins;

TEST_CASE("spatial cost model on real frames: whole maps predicted from the uniform levels") {
  host::ComponentSettings roi{{{"roi_tile", "64"}}, {}};
  auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), roi, 1.0);
  const auto spec = source.spatial();
  REQUIRE(spec.has_value());
  REQUIRE(spec->base_knob == "crf");
  REQUIRE(spec->level_offsets.size() == spec->levels.size());
  CHECK(spec->level_offsets[1] == doctest::Approx(51 * 0.05));
  const auto knobs = source.knobs();
  std::vector<double> crfs;
  for (const auto& v : knobs[1].values) crfs.push_back(v.number);
  const std::size_t L = spec->levels.size();
  std::vector<double> errors;
  IntervalInfo info;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(source.next_interval(info));
    const Configuration base = Configuration::at_indices(knobs, {0, 0, 0});  // crf 18
    std::vector<double> bytes;
    std::vector<at::Tensor> frames;
    for (std::size_t q = 0; q < L; ++q) {
      Rendering r =
          source.render_map(base, QualityMap::uniform(*spec, static_cast<std::uint8_t>(q)));
      bytes.push_back(static_cast<double>(r.bytes));
      frames.push_back(r.input);
    }
    for (std::size_t q = 1; q < L; ++q) CHECK(bytes[q] < bytes[q - 1]);
    const at::Tensor G = source.original();
    const TileCosts costs =
        tile_costs(*spec, at::ones({1, G.size(2), G.size(3)}), G, frames, bytes);
    // A uniform map is predicted exactly: its level's real bytes.
    CHECK(predict_bytes(costs, QualityMap::uniform(*spec, 2)) == doctest::Approx(bytes[2]));
    // Whole maps: where people walk (the lower middle of the frame) best, the rest poor; the
    // left half poor; a checkerboard of two levels.
    QualityMap walk = QualityMap::uniform(*spec, static_cast<std::uint8_t>(L - 2));
    for (int r = 3; r < spec->rows; ++r)
      for (int c = 2; c < spec->cols - 2; ++c)
        walk.level[static_cast<std::size_t>(r * spec->cols + c)] = 0;
    QualityMap half = QualityMap::uniform(*spec, 0), checker = QualityMap::uniform(*spec, 1);
    for (int r = 0; r < spec->rows; ++r)
      for (int c = 0; c < spec->cols; ++c) {
        if (c < spec->cols / 2) half.level[static_cast<std::size_t>(r * spec->cols + c)] = 3;
        if ((r + c) % 2) checker.level[static_cast<std::size_t>(r * spec->cols + c)] = 4;
      }
    for (const QualityMap* m : {&walk, &half, &checker}) {
      const double real = static_cast<double>(source.render_map(base, *m).bytes);
      const double predicted = predict_bytes(costs, *m);
      errors.push_back(predicted / real - 1);
      MESSAGE("interval " << i << ": real " << real << " B, predicted " << predicted << " B");
    }
    // Over the next base (crf 23), interpolated on the effective axis.
    const Configuration next = Configuration::at_indices(knobs, {0, 1, 0});
    const double real = static_cast<double>(source.render_map(next, walk).bytes);
    const double predicted = predict_joint_bytes(*spec, costs, crfs, 0, 1, walk);
    REQUIRE(std::isfinite(predicted));
    errors.push_back(predicted / real - 1);
    MESSAGE("interval " << i << ", crf 23: real " << real << " B, predicted " << predicted << " B");
    // Beyond the rendered levels there is no prediction.
    CHECK(std::isnan(
        predict_joint_bytes(*spec, costs, crfs, 0, 4, QualityMap::uniform(*spec, L - 1))));
  }
  std::vector<double> a;
  for (double e : errors) a.push_back(std::abs(e));
  std::sort(a.begin(), a.end());
  MESSAGE("median |error| " << a[a.size() / 2] << ", largest " << a.back());
  // Measured when written: median 3.4 %, largest 7.8 % (docs/spatial.md has the whole clip).
  CHECK(a[a.size() / 2] < 0.08);
  CHECK(a.back() < 0.15);
}

TEST_CASE("saliency pooling: a stable hot region accumulates and a moving one is followed") {
  const int64_t H = 8, W = 8;
  SaliencyPool pool(0.6);
  at::Tensor P;
  for (int i = 0; i < 6; ++i) {
    at::Tensor S = at::full({1, H, W}, 0.01f);
    S[0][1][1] = 1.0f;          // a region of interest that stays
    S[0][6][i] = 1.0f;          // an object moving one pixel an interval
    if (i % 2) S[0][1][1] = 0;  // the stable region missed every other interval
    P = pool.add(S);
    // The pool keeps S's mean, so that rec's normaliser applies.
    CHECK(P.mean().item<double>() == doctest::Approx(S.mean().item<double>()).epsilon(1e-4));
  }
  const double stable = P[0][1][1].item<double>(), here = P[0][6][5].item<double>(),
               before = P[0][6][4].item<double>(), long_ago = P[0][6][0].item<double>();
  // The stable region holds even in an interval that missed it.
  CHECK(stable > 0.5 * here);
  CHECK(stable > 10 * P[0][4][4].item<double>());
  // The moving object: its newest position weighs most, older ones fade.
  CHECK(here > before);
  CHECK(before > long_ago);
  // Nothing detected leaves the pool as it was; decay 0 is S itself.
  at::Tensor again = pool.add(at::zeros({1, H, W}));
  CHECK(again.sub(P).abs().max().item<double>() < 1e-6);
  SaliencyPool none(0);
  none.add(at::rand({1, H, W}));
  at::Tensor S = at::rand({1, H, W});
  CHECK(none.add(S).sub(S).abs().max().item<double>() < 1e-5);
}

TEST_CASE("joint solver: base and map together match the enumerated optimum") {
  // Three tiles, levels at +0, +5 and +10 over a base ladder 18, 23, 28, 33; rendered at 18, so
  // the effective values 18, 23, 28 are exact and bases 23 and 28 reach only part of the levels.
  SpatialSpec spec{16, 3, 1, {"l0", "l1", "l2"}, "", "crf", {0, 5, 10}};
  const std::vector<double> base{18, 23, 28, 33};
  TileCosts c;
  // Tile 0 is where the DNN looks (its error grows fast); tiles 1 and 2 are background.
  c.z = {{0.0, 0.0, 0.0}, {0.8, 0.05, 0.02}, {3.0, 0.1, 0.05}};
  c.bytes = {{4000, 3000, 3000}, {2000, 1500, 1500}, {1000, 700, 700}};
  auto enumerate = [&](std::size_t current, double change, double beta) {
    double best = 1e300;
    std::vector<std::size_t> best_e;
    for (std::size_t b = 0; b < 3; ++b) {
      const std::size_t reach = 3 - b;  // levels within the rendered range
      for (std::size_t m = 0; m < reach * reach * reach; ++m) {
        std::vector<std::uint8_t> map{static_cast<std::uint8_t>(m % reach),
                                      static_cast<std::uint8_t>(m / reach % reach),
                                      static_cast<std::uint8_t>(m / reach / reach)};
        double o = b != current ? beta * change / 10000 : 0;
        for (std::size_t t = 0; t < 3; ++t) {
          const std::size_t e = b + map[t];  // effective index on the rendered levels
          o += c.z[e][t] / 1.0 + beta * c.bytes[e][t] / 10000;
        }
        if (o < best - 1e-12) {
          best = o;
          best_e.clear();
          for (std::size_t t = 0; t < 3; ++t) best_e.push_back(b + map[t]);
        }
      }
    }
    return std::make_pair(best, best_e);
  };
  for (double beta : {0.0, 0.5, 2.0, 20.0, 1e4})
    for (std::size_t current : {0, 1, 2})
      for (double change : {0.0, 800.0}) {
        const auto [best, e] = enumerate(current, change, beta);
        const JointChoice j = solve_joint(spec, c, base, 0, current, change, 1.0, 10000, beta);
        CAPTURE(beta);
        CAPTURE(current);
        CAPTURE(change);
        CHECK(j.objective == doctest::Approx(best));
        // The same effective value per tile (a base and a map can spell it more than one way).
        for (std::size_t t = 0; t < 3; ++t) CHECK(j.base + j.map.level[t] == e[t]);
      }
  // Beta 0: everything best at the rendered base; a change of base costing the header keeps
  // the base when nothing else differs; a huge beta: the worst reachable values.
  CHECK(solve_joint(spec, c, base, 0, 0, 0, 1, 10000, 0).base == 0);
  CHECK(solve_joint(spec, c, base, 0, 1, 800, 1, 10000, 1e6).base == 1);
  const JointChoice cheap = solve_joint(spec, c, base, 0, 0, 0, 1, 10000, 1e6);
  for (std::size_t t = 0; t < 3; ++t) CHECK(cheap.base + cheap.map.level[t] == 2);
  // Interpolation: offsets 0, 2.5, 10 rendered at 18; base 23 at level 0 lies between 20.5 and
  // 28, a third of the way: bytes log-linear, so 2000 -> 500 gives 2000 * (1/4)^(1/3).
  SpatialSpec odd{16, 1, 1, {"a", "b", "c"}, "", "crf", {0, 2.5, 10}};
  TileCosts one;
  one.z = {{0}, {1}, {4}};
  one.bytes = {{4000}, {2000}, {500}};
  const double p = predict_joint_bytes(odd, one, base, 0, 1, QualityMap::uniform(odd, 0));
  CHECK(p == doctest::Approx(2000 * std::pow(0.25, 1.0 / 3)));
  // Costs that do not fit, and a knob without offsets, are refused.
  SpatialSpec bare{16, 3, 1, {"l0", "l1", "l2"}, "", "", {}};
  CHECK_THROWS_WITH_AS(solve_joint(bare, c, base, 0, 0, 0, 1, 1, 1),
                       doctest::Contains("no offset per level"), Error);
  CHECK_THROWS_WITH_AS(solve_joint(spec, c, base, 7, 0, 0, 1, 1, 1),
                       doctest::Contains("not on the base knob's ladder"), Error);
}

TEST_CASE("roi-hindsight map: levels by the whole run's saliency mass") {
  SpatialSpec spec{16, 3, 2, {"l0", "l1", "l2", "l3", "l4", "l5"}, "", "", {}};
  // Tile 4 holds 60 % of the saliency, tile 0 20 %, tile 5 10 %, tile 2 5 %, tile 1 5 %,
  // tile 3 none.
  const std::vector<double> w{0.2, 0.05, 0.05, 0.0, 0.6, 0.1};
  const QualityMap m = saliency_bands_map(spec, w);
  CHECK(m.level[4] == 0);  // the first half of the mass
  CHECK(m.level[0] == 1);  // mass before it 0.6: the next quarter
  CHECK(m.level[5] == 2);  // 0.8: the next eighth
  CHECK(m.level[1] == 3);  // 0.9 (ties keep the tile order)
  CHECK(m.level[2] == 4);  // 0.95
  CHECK(m.level[3] == 5);  // never looked at: the last level
  // Weights need not sum to 1; a wrong count is refused.
  std::vector<double> scaled = w;
  for (double& x : scaled) x *= 40;
  CHECK(saliency_bands_map(spec, scaled).level == m.level);
  CHECK_THROWS_WITH_AS(saliency_bands_map(spec, {1, 2}),
                       doctest::Contains("saliency for 2 tiles, the map has 6"), Error);
  // Per-tile shares of a map: normalised sums over each tile.
  at::Tensor S = at::zeros({1, 32, 48});
  S[0][0][0] = 3;
  S[0][20][40] = 1;
  const std::vector<double> shares = tile_shares(spec, S);
  REQUIRE(shares.size() == 6);
  CHECK(shares[0] == doctest::Approx(0.75));
  CHECK(shares[5] == doctest::Approx(0.25));
}
