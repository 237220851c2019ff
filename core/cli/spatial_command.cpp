// `oneadapt spatial calibrate --config FILE`: the spatial knob's cost model against the encoder.
// Per interval it renders the uniform levels (what the solver sees) and a few whole maps of
// several shapes, some over the rendered base and some over the next base value (the joint
// solve's interpolation), and compares each map's real bytes with the model's prediction. The
// cost model's weights are chosen on the first part of the intervals and judged on the rest
// (held back); the table says how often the prediction is within 10 % of the real bytes.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <random>
#include <sstream>

#include "adapt/records.hpp"
#include "adapt/spatial.hpp"
#include "cli_common.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace oneadapt::cli {

namespace {

using adapt::CostModel;
using adapt::TileCosts;
using adapt::TileFeatures;

// One whole map rendered for real, with what predicting it needs.
struct Case {
  std::size_t interval = 0, level_set = 0, base = 0;
  std::string shape;
  QualityMap map;
  double real = 0;
};

// One interval's uniform renderings: per level its features and real bytes.
struct LevelSet {
  std::size_t interval = 0, rendered_base = 0;
  std::vector<TileFeatures> features;
  std::vector<double> bytes;
};

QualityMap random_map(const SpatialSpec& s, const std::string& shape, const TileFeatures& f,
                      std::mt19937& rng) {
  const std::size_t L = s.levels.size();
  std::uniform_int_distribution<std::size_t> level(0, L - 1), hi(L / 2, L - 1);
  QualityMap m = QualityMap::uniform(s, 0);
  if (shape == "iid") {
    for (auto& l : m.level) l = static_cast<std::uint8_t>(level(rng));
  } else if (shape == "blobs") {
    // One to four ellipses at a good level over a poor background.
    std::uniform_real_distribution<double> u(0, 1);
    const auto bg = static_cast<std::uint8_t>(hi(rng));
    const auto fg = static_cast<std::uint8_t>(std::uniform_int_distribution<int>(0, bg / 2)(rng));
    m = QualityMap::uniform(s, bg);
    const int n = std::uniform_int_distribution<int>(1, 4)(rng);
    for (int k = 0; k < n; ++k) {
      const double cx = u(rng) * s.cols, cy = u(rng) * s.rows, rx = 1 + u(rng) * s.cols / 4.0,
                   ry = 1 + u(rng) * s.rows / 4.0;
      for (int r = 0; r < s.rows; ++r)
        for (int c = 0; c < s.cols; ++c)
          if (std::pow((c + 0.5 - cx) / rx, 2) + std::pow((r + 0.5 - cy) / ry, 2) <= 1)
            m.level[static_cast<std::size_t>(r * s.cols + c)] = fg;
    }
  } else if (shape == "motion") {
    // The tiles that change most at the best level (what a detector's saliency follows on a
    // fixed camera), the rest poor: the solver's typical map.
    std::vector<std::size_t> order(f.motion.size());
    for (std::size_t t = 0; t < order.size(); ++t) order[t] = t;
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return f.motion[a] > f.motion[b]; });
    const auto bg = static_cast<std::uint8_t>(hi(rng));
    const double keep = std::uniform_real_distribution<double>(0.05, 0.4)(rng);
    m = QualityMap::uniform(s, bg);
    for (std::size_t i = 0; i < static_cast<std::size_t>(keep * order.size()); ++i)
      m.level[order[i]] = 0;
  } else {  // centre
    m = adapt::centre_weighted_map(s);
  }
  return m;
}

TileCosts costs_of(const LevelSet& ls, const CostModel& model) {
  TileCosts c;
  for (std::size_t q = 0; q < ls.features.size(); ++q) {
    std::vector<double> share = model.shares(ls.features[q]);
    for (double& x : share) x *= ls.bytes[q];
    c.bytes.push_back(share);
    c.z.emplace_back(share.size(), 0.0);
  }
  return c;
}

// The p-quantile of `v` (index p * n of the sorted values; NaN when empty).
double quantile(std::vector<double> v, double p) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

struct Errors {
  std::vector<double> rel;  // predicted / real - 1
  std::vector<double> abs_rel() const {
    std::vector<double> a;
    for (double e : rel) a.push_back(std::abs(e));
    return a;
  }
  double median_abs() const { return quantile(abs_rel(), 0.5); }
  double quantile_abs(double p) const { return quantile(abs_rel(), p); }
  double bias() const { return quantile(rel, 0.5); }
  double within(double x) const {
    if (rel.empty()) return std::nan("");
    return static_cast<double>(
               std::count_if(rel.begin(), rel.end(), [x](double e) { return std::abs(e) <= x; })) /
           static_cast<double>(rel.size());
  }
};

std::string pct(double x) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << 100 * x << "%";
  return s.str();
}

}  // namespace

int run_spatial_calibrate(const Invocation& inv) {
  po::options_description opts = experiment_options();
  opts.add_options()("maps", po::value<std::size_t>()->default_value(6),
                     "whole maps rendered per interval")(
      "fit", po::value<double>()->default_value(0.5),
      "fraction of the intervals (the first ones) the weights are chosen on")(
      "seed", po::value<unsigned>()->default_value(1), "seed of the random maps");
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "[--config FILE] [options]", opts, {}, vm, global)) return kOk;
  const double fit = vm["fit"].as<double>();
  if (!(fit > 0 && fit < 1)) throw UsageError("spatial calibrate: --fit must be in (0, 1)");
  const std::size_t maps = vm["maps"].as<std::size_t>();
  if (maps == 0) throw UsageError("spatial calibrate: --maps must be at least 1");

  RunConfig c = load_run_config(vm.count("config") ? vm["config"].as<std::string>() : "",
                                overrides_from_flags(vm));
  if (c.run.realtime)
    throw UsageError("input.realtime (--realtime) does not apply to spatial calibrate");
  Experiment x(c, global);
  auto source = x.source();
  const auto spec = source.spatial();
  if (!spec)
    throw Error(Errc::invalid_argument,
                "spatial calibrate: the stream has no spatial knob (video: set "
                "modality.params.roi_tile to 16, 32 or 64)");
  const auto knobs = source.knobs();
  std::size_t base_k = knobs.size();
  for (std::size_t k = 0; k < knobs.size(); ++k)
    if (knobs[k].key == spec->base_knob) base_k = k;
  std::vector<double> base_values;
  if (base_k < knobs.size())
    for (const auto& v : knobs[base_k].values) base_values.push_back(v.number);
  const Configuration reference = source.reference();
  std::vector<std::size_t> ref_idx;
  for (const auto& k : knobs) ref_idx.push_back(reference.at(k.key).index);

  std::mt19937 rng(vm["seed"].as<unsigned>());
  const std::vector<std::string> shapes{"motion", "blobs", "iid", "centre"};
  std::vector<LevelSet> sets;
  std::vector<Case> cases;
  IntervalInfo info;
  const std::size_t limit = c.max_intervals;
  std::cerr << "spatial calibrate: " << spec->levels.size() << " levels, tile " << spec->tile
            << " px, " << maps << " maps per interval\n";
  while ((limit == 0 || sets.size() < limit) && source.next_interval(info)) {
    LevelSet ls;
    ls.interval = info.index;
    // The rendered base cycles over the first values of the base ladder.
    std::vector<std::size_t> idx = ref_idx;
    if (base_k < knobs.size()) {
      const std::size_t span = std::min<std::size_t>(3, base_values.size() - 1);
      ls.rendered_base = idx[base_k] = sets.size() % span;
    }
    const Configuration cfg = Configuration::at_indices(knobs, idx);
    for (std::size_t q = 0; q < spec->levels.size(); ++q) {
      Rendering r =
          source.render_map(cfg, QualityMap::uniform(*spec, static_cast<std::uint8_t>(q)));
      ls.features.push_back(adapt::tile_features(*spec, r.input));
      ls.bytes.push_back(static_cast<double>(r.bytes));
    }
    for (std::size_t k = 0; k < maps; ++k) {
      Case cs;
      cs.interval = info.index;
      cs.level_set = sets.size();
      cs.shape = shapes[k % shapes.size()];
      cs.map = random_map(*spec, cs.shape, ls.features[0], rng);
      // Every other round of shapes over the next base value (the joint solve's
      // interpolation), with the levels it can reach within the rendered ones.
      cs.base = ls.rendered_base;
      if (base_k < knobs.size() && (k / shapes.size() + sets.size()) % 2 == 1 &&
          cs.base + 1 < base_values.size()) {
        ++cs.base;
        const double top = base_values[ls.rendered_base] + spec->level_offsets.back();
        for (auto& l : cs.map.level)
          while (l > 0 && base_values[cs.base] + spec->level_offsets[l] > top + 1e-9) --l;
      }
      std::vector<std::size_t> bidx = idx;
      if (base_k < knobs.size()) bidx[base_k] = cs.base;
      cs.real = static_cast<double>(
          source.render_map(Configuration::at_indices(knobs, bidx), cs.map).bytes);
      cases.push_back(std::move(cs));
    }
    sets.push_back(std::move(ls));
    std::cerr << "\r  interval " << sets.size() << std::flush;
  }
  std::cerr << '\n';
  if (sets.size() < 2)
    throw Error(Errc::invalid_argument, "spatial calibrate: the stream has fewer than 2 intervals");
  const std::size_t split =
      std::clamp<std::size_t>(static_cast<std::size_t>(fit * sets.size()), 1, sets.size() - 1);

  // The model's prediction of every case (NaN where a map lies outside the rendered levels).
  auto predictions = [&](const CostModel& m) {
    std::vector<TileCosts> costs;
    for (const auto& ls : sets) costs.push_back(costs_of(ls, m));
    std::vector<double> p;
    for (const auto& cs : cases) {
      const LevelSet& ls = sets[cs.level_set];
      p.push_back(base_k < knobs.size()
                      ? adapt::predict_joint_bytes(*spec, costs[cs.level_set], base_values,
                                                   ls.rendered_base, cs.base, cs.map)
                      : adapt::predict_bytes(costs[cs.level_set], cs.map));
    }
    return p;
  };
  // The errors of the cases that `keep` selects.
  auto errors = [&](const std::vector<double>& p, auto keep) {
    Errors e;
    for (std::size_t i = 0; i < cases.size(); ++i)
      if (keep(cases[i]) && std::isfinite(p[i]) && cases[i].real > 0)
        e.rel.push_back(p[i] / cases[i].real - 1);
    return e;
  };
  auto evaluate = [&](const CostModel& m, bool held_back, bool other_base) {
    return errors(predictions(m), [&](const Case& cs) {
      return (cs.level_set >= split) == held_back &&
             (cs.base != sets[cs.level_set].rendered_base) == other_base;
    });
  };
  auto both = [&](const CostModel& m, bool held_back) {
    Errors a = evaluate(m, held_back, false), b = evaluate(m, held_back, true);
    a.rel.insert(a.rel.end(), b.rel.begin(), b.rel.end());
    return a;
  };
  // Weights on a 0.1 grid of the simplex, chosen by the median absolute error on the fit part.
  CostModel chosen;
  double best = 1e300;
  for (int d = 0; d <= 10; ++d)
    for (int m = 0; m + d <= 10; ++m) {
      const CostModel cand{d / 10.0, m / 10.0, (10 - d - m) / 10.0};
      const double err = both(cand, false).median_abs();
      if (err < best) best = err, chosen = cand;
    }

  std::vector<std::vector<std::string>> rows{{"cost model (detail, motion, area)", "maps",
                                              "median |error|", "90th pct |error|", "within 10%",
                                              "median error"}};
  auto row = [&](const std::string& name, const Errors& e) {
    rows.push_back({name, std::to_string(e.rel.size()), pct(e.median_abs()),
                    pct(e.quantile_abs(0.9)), pct(e.within(0.1)), pct(e.bias())});
  };
  auto label = [](const CostModel& m) {
    std::ostringstream s;
    s << "(" << m.w_detail << ", " << m.w_motion << ", " << m.w_area << ")";
    return s.str();
  };
  const CostModel builtin{};
  row("chosen " + label(chosen) + ", held back, rendered base", evaluate(chosen, true, false));
  row("chosen " + label(chosen) + ", held back, next base", evaluate(chosen, true, true));
  row("chosen " + label(chosen) + ", held back, all", both(chosen, true));
  row("built-in " + label(builtin) + ", held back, all", both(builtin, true));
  row("detail only (1, 0, 0), held back, all", both(CostModel{1, 0, 0}, true));
  row("area only (0, 0, 1), held back, all", both(CostModel{0, 0, 1}, true));
  row("chosen " + label(chosen) + ", fit part, all", both(chosen, false));

  // Per map shape on the held-back part.
  std::vector<std::vector<std::string>> by_shape{
      {"shape (held back, chosen model)", "maps", "median |error|", "within 10%"}};
  const std::vector<double> chosen_p = predictions(chosen);
  for (const auto& shape : shapes) {
    const Errors e = errors(
        chosen_p, [&](const Case& cs) { return cs.level_set >= split && cs.shape == shape; });
    by_shape.push_back(
        {shape, std::to_string(e.rel.size()), pct(e.median_abs()), pct(e.within(0.1))});
  }

  std::ostringstream md;
  md << "# oneadapt spatial calibrate\n\nInput: " << source.describe() << ", " << sets.size()
     << " intervals; weights chosen on the first " << split << ", judged on the other "
     << sets.size() - split << " (held back). " << spec->levels.size() << " levels (";
  for (std::size_t q = 0; q < spec->levels.size(); ++q) md << (q ? ", " : "") << spec->levels[q];
  md << "), " << maps
     << " whole maps per interval (shapes: motion, blobs, iid, centre), every other one over "
        "the next value of the base knob"
     << (spec->base_knob.empty() ? "" : " (" + spec->base_knob + ")")
     << ". Error: predicted / real bytes - 1.\n\n"
     << text::markdown_table(rows) << '\n'
     << text::markdown_table(by_shape) << '\n';
  std::cout << md.str();
  const fs::path out = c.run.out_dir;
  fs::create_directories(out);
  adapt::write_atomically(out / "calibration.md", md.str());
  std::ostringstream csv;
  csv << "interval,shape,rendered_base,base,real_bytes,predicted_bytes,held_back\n";
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& cs = cases[i];
    csv << cs.interval << ',' << cs.shape << ',' << sets[cs.level_set].rendered_base << ','
        << cs.base << ',' << cs.real << ',' << chosen_p[i] << ',' << (cs.level_set >= split ? 1 : 0)
        << '\n';
  }
  adapt::write_atomically(out / "calibration.csv", csv.str());
  std::cout << "Written: " << (out / "calibration.md").string() << ", "
            << (out / "calibration.csv").string() << '\n';
  return kOk;
}

}  // namespace oneadapt::cli
