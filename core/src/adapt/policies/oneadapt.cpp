// OneAdapt (method.md sections 2-3): per interval, one backward pass from the proxy on the
// last inferred sample gives DNNGrad; its saliency map S weighs rec(V) = mean(S |V - G|); per
// knob, the objective's finite difference between the HQ and LQ neighbours (the LQ one is an
// extra rendering on the source) drives Adam on the relaxed state theta; the configuration
// applies to the next interval. With a spatial knob the policy also owns the per-tile solver
// (adapt/spatial.hpp): the map of the next interval from the same saliency map.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>

#include "adapt/policies/policies.hpp"
#include "adapt/spatial.hpp"

namespace oneadapt::adapt {

namespace fs = std::filesystem;
using json = nlohmann::json;

double objective(double rec, double rec_norm, double bytes, double bytes_norm, double beta) {
  return rec / (rec_norm > 0 ? rec_norm : 1.0) + beta * bytes / std::max(bytes_norm, 1.0);
}

Normalisation parse_normalisation(const std::string& text) {
  if (text == "fixed") return Normalisation::fixed;
  if (text == "per-interval") return Normalisation::per_interval;
  throw Error(Errc::invalid_argument,
              "normalisation '" + text + "' is not one of fixed, per-interval");
}

RecFrames parse_rec_frames(const std::string& text) {
  if (text == "last") return RecFrames::last;
  if (text == "all") return RecFrames::all;
  throw Error(Errc::invalid_argument, "rec_frames '" + text + "' is not one of last, all");
}

Estimator parse_estimator(const std::string& text) {
  if (text == "abs") return Estimator::abs;
  if (text == "signed") return Estimator::signed_;
  throw Error(Errc::invalid_argument, "estimator '" + text + "' is not one of abs, signed");
}

namespace {

class OneAdapt final : public Policy {
 public:
  explicit OneAdapt(const PolicyArgs& a)
      : o_(a.oneadapt), warm_start_(a.warm_start), map_mode_(a.spatial_map), rng_(a.oneadapt.seed) {
    o_.beta = a.point;
    if (map_mode_.empty()) map_mode_ = "solver";
    if (map_mode_ != "solver" && map_mode_ != "centre" && map_mode_ != "best")
      throw Error(Errc::invalid_argument,
                  "policy.spatial_map: '" + map_mode_ + "' is not one of solver, centre, best");
  }

  void begin(const StreamSpec& stream) override {
    knobs_ = stream.knobs;
    spatial_ = stream.spatial;
    for (const auto& [key, v] : o_.start) {
      if (std::none_of(knobs_.begin(), knobs_.end(),
                       [&name = key](const KnobSpec& k) { return k.key == name; }))
        throw Error(Errc::invalid_argument, "policy.start: the modality has no knob '" + key + "'");
      if (!(v >= 0 && v <= 1))
        throw Error(Errc::invalid_argument, "policy.start." + key + ": theta must be in [0, 1]");
    }
    for (const auto& k : knobs_) {
      relax_.push_back({k.values.size()});
      adam_.emplace_back(o_.lr);
      auto it = o_.start.find(k.key);
      theta_.push_back(std::clamp(
          it != o_.start.end() ? it->second : relax_.back().theta_of(k.default_index), 0.0, 1.0));
    }
    norm_ = o_.norm_constant;
    if (!warm_start_.empty()) load_state(warm_start_);
    if (spatial_)
      map_ = map_mode_ == "centre" ? centre_weighted_map(*spatial_)
                                   : QualityMap::uniform(*spatial_, 0);
  }

  Decision decide(IntervalContext&) override {
    applied_.clear();
    for (std::size_t k = 0; k < knobs_.size(); ++k)
      applied_.push_back(relax_[k].applied(theta_[k], o_.rounding, &rng_));
    Decision d;
    d.config = Configuration::at_indices(knobs_, applied_);
    if (spatial_) d.map = map_;
    d.grad = true;
    return d;
  }

  void learn(IntervalContext& ctx, const Served& served) override {
    const at::Tensor& original = ctx.original();
    const bool last = o_.rec_frames == RecFrames::last;
    const int64_t T = original.size(0), sample = T - 1;
    // rec compares with G on the last sample (default; a sample repeated by a frame-rate knob
    // then shows its staleness) or on all samples. DNNGrad comes from the last inferred sample.
    const at::Tensor G = last ? original.narrow(0, sample, 1) : original;
    auto frames = [&](const at::Tensor& v) {
      return last ? v.narrow(0, v.size(0) - 1, 1) : v;
    };  // a probe may hold one sample
    auto neighbour = [&](const std::vector<std::size_t>& idx) -> const Rendering& {
      const Configuration c = Configuration::at_indices(knobs_, idx);
      return last ? ctx.probe(c, static_cast<std::size_t>(sample)) : ctx.render(c);
    };
    const at::Tensor S = ctx.saliency(served.dnn_grad);
    if (o_.normalisation == Normalisation::per_interval || bytes_norm_ <= 0) {
      const double b = static_cast<double>(ctx.reference_bytes());
      if (o_.normalisation == Normalisation::fixed) bytes_norm_ = b;  // calibrated once
      bytes_per_interval_ = b;
    }
    const double bytes_norm =
        o_.normalisation == Normalisation::fixed ? bytes_norm_ : bytes_per_interval_;
    double norm = norm_;
    if (o_.normalisation == Normalisation::per_interval || norm <= 0) {
      const double c = (G.abs() * S).mean().item<double>();
      if (o_.normalisation == Normalisation::fixed) norm_ = c;  // calibrated once, then fixed
      norm = c;
    }
    if (!(norm > 0)) norm = 1;  // a blank first interval: keep the raw scale
    std::map<const Rendering*, double> rec_cache;
    auto rec = [&](const Rendering& r) {
      if (auto it = rec_cache.find(&r); it != rec_cache.end()) return it->second;
      at::NoGradGuard no_grad;
      at::Tensor d = frames(r.input) - G;
      // abs: mean(S |V - G|); signed: the first-order proxy loss -mean(DNNGrad (V - G)).
      const double v = o_.estimator == Estimator::abs
                           ? d.abs_().mul_(S).mean().item<double>()
                           : -d.mul_(served.dnn_grad).mean().item<double>();
      return rec_cache[&r] = v;
    };
    json accgrad = json::object(), objgrad = json::object(), theta = json::object();
    for (std::size_t k = 0; k < knobs_.size(); ++k) {
      double g = 0, acc = 0;
      if (relax_[k].values > 1) {
        const std::size_t hq = relax_[k].pair_hq(theta_[k]);
        std::vector<std::size_t> a = applied_, b = applied_;
        a[k] = hq;
        b[k] = hq + 1;
        const Rendering& vh = neighbour(a);
        const Rendering& vl = neighbour(b);
        if (!(vh.bytes == vl.bytes &&
              frames(vh.input).equal(frames(vl.input)))) {  // equal renderings: no signal
          const double rh = rec(vh), rl = rec(vl);
          g = (objective(rh, norm, static_cast<double>(vh.bytes), bytes_norm, o_.beta) -
               objective(rl, norm, static_cast<double>(vl.bytes), bytes_norm, o_.beta)) /
              relax_[k].delta();
          acc = (rl - rh) / norm / relax_[k].delta();
        }
      }
      theta_[k] = std::clamp(theta_[k] - adam_[k].step(g), 0.0, 1.0);
      accgrad[knobs_[k].key] = acc;
      objgrad[knobs_[k].key] = g;
      theta[knobs_[k].key] = theta_[k];
    }
    auto& t = ctx.trace();
    t["theta"] = theta;
    t["accgrad"] = accgrad;
    t["objgrad"] = objgrad;
    t["norm"] = norm;
    t["bytes_norm"] = bytes_norm;
    if (spatial_ && map_mode_ == "solver") {
      // The spatial solver: the interval at each uniform level of the applied configuration on
      // the backpropagated sample; the map applies to the next interval.
      const Configuration applied = Configuration::at_indices(knobs_, applied_);
      std::vector<at::Tensor> level_frames;
      std::vector<double> level_bytes;
      for (std::size_t q = 0; q < spatial_->levels.size(); ++q) {
        const QualityMap uniform = QualityMap::uniform(*spatial_, static_cast<std::uint8_t>(q));
        const Rendering& r = ctx.render(applied, &uniform);
        level_frames.push_back(r.input[sample]);
        level_bytes.push_back(static_cast<double>(r.bytes));
      }
      map_ = solve_map(*spatial_,
                       tile_costs(*spatial_, S, original[sample], level_frames, level_bytes), norm,
                       bytes_norm, o_.beta);
    }
  }

  json state() const override {
    json knobs = json::object();
    for (std::size_t k = 0; k < knobs_.size(); ++k) {
      json ladder = json::array();
      for (const auto& v : knobs_[k].values) ladder.push_back(v.label);
      knobs[knobs_[k].key] = {
          {"theta", theta_[k]},
          {"ladder", ladder},
          {"adam", {{"m", adam_[k].m()}, {"v", adam_[k].v()}, {"t", adam_[k].t()}}}};
    }
    return {{"policy", "oneadapt"},
            {"norm_constant", norm_},
            {"bytes_norm", bytes_norm_},
            {"knobs", knobs}};
  }

  json options() const override {
    return {{"beta", o_.beta},
            {"lr", o_.lr},
            {"rounding", rounding_name(o_.rounding)},
            {"normalisation", o_.normalisation == Normalisation::fixed ? "fixed" : "per-interval"},
            {"estimator", o_.estimator == Estimator::abs ? "abs" : "signed"},
            {"rec_frames", o_.rec_frames == RecFrames::last ? "last" : "all"},
            {"spatial_map", spatial_ ? map_mode_ : "none"},
            {"warm_start", warm_start_.string()}};
  }

 private:
  void load_state(const fs::path& path) {
    std::ifstream in(path);
    if (!in) throw Error(Errc::not_found, path.string() + ": cannot open warm-start state");
    try {
      const json s = json::parse(in);
      if (s.value("policy", "") != "oneadapt")
        throw Error(Errc::invalid_argument, "not a oneadapt state");
      for (std::size_t k = 0; k < knobs_.size(); ++k) {
        const auto& key = knobs_[k].key;
        if (!s.at("knobs").contains(key))
          throw Error(Errc::invalid_argument, "has no knob '" + key + "'");
        const json& j = s["knobs"][key];
        const auto ladder = j.at("ladder").get<std::vector<std::string>>();
        std::vector<std::string> ours;
        for (const auto& v : knobs_[k].values) ours.push_back(v.label);
        if (ladder != ours)
          throw Error(Errc::invalid_argument, "knob '" + key + "' has another ladder");
        const double theta = j.at("theta").get<double>(), m = j.at("adam").at("m").get<double>(),
                     v = j["adam"].at("v").get<double>();
        const long t = j["adam"].at("t").get<long>();
        if (!std::isfinite(theta) || !std::isfinite(m) || !std::isfinite(v) || v < 0 || t < 0)
          throw Error(Errc::invalid_argument,
                      "knob '" + key + "' has a non-finite or negative theta or Adam moment");
        theta_[k] = std::clamp(theta, 0.0, 1.0);
        adam_[k].restore(m, v, t);
      }
      const double norm = s.value("norm_constant", 0.0), bytes_norm = s.value("bytes_norm", 0.0);
      if (!std::isfinite(norm) || !std::isfinite(bytes_norm) || norm < 0 || bytes_norm < 0)
        throw Error(Errc::invalid_argument, "has a non-finite or negative normaliser");
      if (norm_ <= 0) norm_ = norm;
      bytes_norm_ = bytes_norm;
    } catch (const json::exception& e) {
      throw Error(Errc::corrupt_data, path.string() + ": malformed warm-start state: " + e.what());
    } catch (const Error& e) {
      throw Error(e.code(), path.string() + ": warm-start state " + e.what());
    }
  }

  OneAdaptOptions o_;
  fs::path warm_start_;
  std::string map_mode_;
  std::vector<KnobSpec> knobs_;
  std::optional<SpatialSpec> spatial_;
  std::vector<KnobRelaxation> relax_;
  std::vector<Adam> adam_;
  std::vector<double> theta_;
  std::vector<std::size_t> applied_;
  std::optional<QualityMap> map_;
  double norm_ = 0, bytes_norm_ = 0, bytes_per_interval_ = 0;
  std::mt19937 rng_;
};

}  // namespace

std::unique_ptr<Policy> make_oneadapt(const PolicyArgs& a) { return std::make_unique<OneAdapt>(a); }

}  // namespace oneadapt::adapt
