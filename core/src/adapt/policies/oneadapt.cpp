// OneAdapt (method.md sections 2-3): per interval, one backward pass from the proxy on the
// last inferred sample gives DNNGrad; its saliency map S weighs rec(V) = mean(S |V - G|); per
// knob, the objective's finite difference between the HQ and LQ neighbours (the LQ one is an
// extra rendering on the source) drives Adam on the relaxed state theta; the configuration
// applies to the next interval. With a spatial knob the policy also owns the per-tile solver
// (adapt/spatial.hpp): the map of the next interval from the same saliency map.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <limits>
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
      : o_(a.oneadapt),
        warm_start_(a.warm_start),
        map_mode_(a.spatial_map),
        rng_(a.oneadapt.seed),
        pool_(a.oneadapt.spatial_decay) {
    o_.beta = a.point;
    if (map_mode_.empty()) map_mode_ = "solver";
    if (map_mode_ != "solver" && map_mode_ != "centre" && map_mode_ != "best")
      throw Error(Errc::invalid_argument,
                  "policy.spatial_map: '" + map_mode_ + "' is not one of solver, centre, best");
    beta_ = o_.beta;
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
    const std::size_t n = knobs_.size();
    scale_.assign(n, 1.0);
    last_sign_.assign(n, 0);
    ratio_.assign(n, 1.0);
    loss_.assign(n, 0.0);
    norm_ = o_.norm_constant;
    if (!warm_start_.empty()) load_state(warm_start_);
    if (spatial_)
      map_ = map_mode_ == "centre" ? centre_weighted_map(*spatial_)
                                   : QualityMap::uniform(*spatial_, 0);
    // The joint solve: the base knob (video's CRF) is the solver's, not the gradient step's.
    base_k_ = knobs_.size();
    if (spatial_ && map_mode_ == "solver" && o_.spatial_joint && !spatial_->base_knob.empty() &&
        spatial_->level_offsets.size() == spatial_->levels.size())
      for (std::size_t k = 0; k < knobs_.size(); ++k)
        if (knobs_[k].key == spatial_->base_knob && knobs_[k].values.size() > 1) {
          base_k_ = k;
          for (const auto& v : knobs_[k].values) base_values_.push_back(v.number);
        }
  }

  Decision decide(IntervalContext& ctx) override {
    applied_.clear();
    for (std::size_t k = 0; k < knobs_.size(); ++k)
      applied_.push_back(relax_[k].applied(theta_[k], o_.rounding, &rng_));
    // A joint run's stream projects onto its part of the link (SharedPrice::allocation).
    std::optional<double> budget = ctx.budget_bytes();
    if (!budget && o_.shared && o_.shared->allocation > 0) budget = o_.shared->allocation;
    if (budget && !sent_.empty()) {
      // Under a budget a knob climbs at most one value per interval (AWStream probes upwards
      // one level at a time): the byte ratios are measured next to the last configuration.
      for (std::size_t k = 0; k < knobs_.size(); ++k)
        if (applied_[k] + 1 < sent_[k]) {
          applied_[k] = sent_[k] - 1;
          theta_[k] = std::min(theta_[k], relax_[k].theta_of(applied_[k]));
        }
      project(ctx, *budget);
    }
    Decision d;
    d.config = Configuration::at_indices(knobs_, applied_);
    if (spatial_) d.map = map_;
    d.grad = true;
    d.full_grad = o_.estimator == Estimator::signed_;  // abs needs only the saliency
    return d;
  }

  void learn(IntervalContext& ctx, const Served& served) override {
    const at::Tensor& original = ctx.original();
    const bool last = o_.rec_frames == RecFrames::last;
    const int64_t T = original.size(0), sample = T - 1;
    auto& t = ctx.trace();
    // rec compares with G on the last sample (default; a sample repeated by a frame-rate knob
    // then shows its staleness) or on all samples. DNNGrad comes from the last inferred sample.
    const at::Tensor G = last ? original.narrow(0, sample, 1) : original;
    auto frames = [&](const at::Tensor& v) {
      return last ? v.narrow(0, v.size(0) - 1, 1) : v;
    };  // a probe may hold one sample
    // With a spatial knob and spatial_probe_map, a global knob's neighbours carry the map that
    // was sent (the knobs interact: under a map that already makes most tiles cheap, a lower
    // resolution saves far fewer bytes than at the best level everywhere); the HQ neighbour is
    // then the rendering sent, from the cache.
    const bool with_map = spatial_ && map_ && o_.spatial_probe_map;
    auto neighbour = [&](const std::vector<std::size_t>& idx) -> const Rendering& {
      const Configuration c = Configuration::at_indices(knobs_, idx);
      if (with_map) return ctx.render(c, &*map_);
      return last ? ctx.probe(c, static_cast<std::size_t>(sample)) : ctx.render(c);
    };
    const at::Tensor S = ctx.saliency(served);
    const bool signal = S.abs().sum().item<double>() > 0;  // no detection: no gradient at all
    const double level = signal ? (G.abs() * S).mean().item<double>() : 0.0;

    // Step control, part 1: what the loop can observe online (method.md section 9).
    bool backoff = false, reanchor = false;
    bool cheaper = false;  // a knob went cheaper than in the previous interval
    for (std::size_t k = 0; k < knobs_.size() && k < sent_.size(); ++k)
      cheaper = cheaper || applied_[k] > sent_[k];
    if (cheaper) last_cheaper_ = ctx.info().index;
    if (o_.step_control) {
      // (a) The proxy against its recent history: a sharp drop (detections vanished) backs off.
      if (proxy_hist_.size() >= 3) {
        std::vector<double> h(proxy_hist_.begin(), proxy_hist_.end());
        std::nth_element(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(h.size() / 2), h.end());
        const double median = h[h.size() / 2];
        // Only right after a step to a cheaper value: a drop at an unchanged or dearer
        // configuration is the content's (speech ends, people leave), not the knobs'.
        backoff = cheaper && median > 1e-6 && served.proxy < o_.proxy_drop * median;
        t["proxy_median"] = median;
      }
      proxy_hist_.push_back(served.proxy);
      while (proxy_hist_.size() > std::max<std::size_t>(o_.proxy_history, 3))
        proxy_hist_.pop_front();
      // (b) A content change: the saliency-weighted level of G far from the calibrated one for
      // two intervals in a row at an unchanged configuration (S comes from the rendering sent,
      // so a change of settings moves the level too: audio's spans three orders of magnitude
      // between FLAC and Vorbis), and not a drop in the proxy (that is (a)), re-anchors the
      // normalisers and clears the optimiser's moments. Never downwards while the proxy is
      // far below its level at the last anchoring: silence or an empty scene is nothing to
      // detect, not a new scene, and a normaliser taken from it (audio's near silence: 1e-7,
      // five orders under speech) makes any error on the noise floor look large and every knob
      // climb to its best value (docs/changing-content.md).
      const bool unchanged = !sent_.empty() && applied_ == sent_;
      if (anchor_proxy_ <= 0 && signal) anchor_proxy_ = served.proxy;
      const bool quiet = served.proxy < o_.proxy_drop * anchor_proxy_;
      if (o_.normalisation == Normalisation::fixed && norm_ > 0 && signal && !backoff &&
          unchanged) {
        const double r = level / norm_;
        away_ = (r > 2.5 || (r < 0.4 && !quiet)) ? away_ + 1 : 0;
        if (away_ >= 2) reanchor = true, away_ = 0;
      } else {
        away_ = 0;
      }
    }
    const bool joint = o_.shared && o_.shared->bytes_scale > 0;  // no reference encode needed
    if (!joint &&
        (o_.normalisation == Normalisation::per_interval || bytes_norm_ <= 0 || reanchor)) {
      const double b = static_cast<double>(ctx.reference_bytes());
      if (o_.normalisation == Normalisation::fixed) bytes_norm_ = b;  // calibrated (re-anchored)
      bytes_per_interval_ = b;
    }
    double bytes_norm =
        o_.normalisation == Normalisation::fixed ? bytes_norm_ : bytes_per_interval_;
    // A joint run: one price for every stream's bytes, on the shared budget's scale.
    if (joint) {
      bytes_norm = o_.shared->bytes_scale;
      beta_ = o_.shared->beta / o_.weight;
      t["beta"] = beta_;
    }
    if (reanchor) {
      norm_ = level;
      anchor_proxy_ = served.proxy;
      for (auto& a : adam_) a.restore(0, 0, 0);
      t["reanchor"] = true;
    }
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

    // The price of a byte under a budget: dual ascent on the interval's relative excess.
    const auto budget = ctx.budget_bytes();
    const Configuration applied_config = Configuration::at_indices(knobs_, applied_);
    const double sent_bytes = static_cast<double>(served.outcome.bytes) +
                              (sent_.empty() || applied_config != last_config_
                                   ? static_cast<double>(served.outcome.header_bytes)
                                   : 0.0);
    if (budget && *budget > 0) {
      if (!budget_seen_ && warm_price_ > 0) beta_ = warm_price_;
      budget_seen_ = true;
      if (!(beta_ > 0)) beta_ = 1e-3;  // a price of zero cannot move multiplicatively
      const double target = o_.budget_margin * *budget;
      const double e = std::clamp((sent_bytes - target) / target, -1.0, 2.0);
      beta_ = std::clamp(beta_ * std::exp(o_.budget_eta * e), 1e-4, 1e3);
      t["beta"] = beta_;
    }

    json accgrad = json::object(), objgrad = json::object(), theta = json::object(),
         ratio = json::object();
    std::vector<double> rec_lq(knobs_.size(), 0.0);
    for (std::size_t k = 0; k < knobs_.size(); ++k) {
      double g = 0, acc = 0;
      if (relax_[k].values > 1 && k != base_k_) {
        const std::size_t hq = relax_[k].pair_hq(theta_[k]);
        std::vector<std::size_t> a = applied_, b = applied_;
        a[k] = hq;
        b[k] = hq + 1;
        const Rendering& vh = neighbour(a);
        const Rendering& vl = neighbour(b);
        if (vh.bytes > 0) {
          // Smoothed over intervals (the newest weighs 1/2): one interval's pair is noisy.
          const double r = std::clamp(static_cast<double>(vl.bytes) / vh.bytes, 0.0, 1.5);
          ratio_[k] = seen_ ? 0.5 * (ratio_[k] + r) : r;
        }
        ratio[knobs_[k].key] = ratio_[k];
        if (!(vh.bytes == vl.bytes &&
              frames(vh.input).equal(frames(vl.input)))) {  // equal renderings: no signal
          const double rh = rec(vh), rl = rec(vl);
          g = (objective(rh, norm, static_cast<double>(vh.bytes), bytes_norm, beta_) -
               objective(rl, norm, static_cast<double>(vl.bytes), bytes_norm, beta_)) /
              relax_[k].delta();
          acc = (rl - rh) / norm / relax_[k].delta();
          rec_lq[k] = rl / norm;
        }
      }
      const double loss = std::max(0.0, acc) * relax_[k].delta();  // rec/norm lost one step down
      loss_[k] = seen_ ? 0.5 * (loss_[k] + loss) : loss;
      double step = 0;
      if (!o_.step_control) {
        step = adam_[k].step(g);
      } else if (signal && g != 0) {
        // (c) A knob whose sign alternates settles: its step shrinks (halves, down to 1/8)
        // and grows back while the sign holds.
        const int sign = g > 0 ? 1 : -1;
        if (last_sign_[k] != 0)
          scale_[k] = sign != last_sign_[k] ? std::max(0.125, scale_[k] * 0.5)
                                            : std::min(1.0, scale_[k] * 1.5);
        last_sign_[k] = sign;
        step = adam_[k].step(g) * scale_[k];
        // (d) The rec floor: no step past a value whose rec/norm exceeds rec_max.
        if (o_.rec_max > 0 && step > 0 && rec_lq[k] > o_.rec_max)
          step = std::min(step, std::max(0.0, theta_[k] - relax_[k].theta_of(hq_of(k))));
      }
      theta_[k] = std::clamp(theta_[k] - step, 0.0, 1.0);
      // After a back-off the knob stays at or above its floor until the floor expires.
      if (o_.step_control && ctx.info().index < floor_until_)
        theta_[k] = std::max(theta_[k], relax_[k].theta_of(floor_[k]));
      accgrad[knobs_[k].key] = acc;
      objgrad[knobs_[k].key] = g;
    }
    if (o_.step_control) {
      const std::size_t i = ctx.info().index;
      // Back off (a sharp proxy drop) or climb out (two intervals without any gradient, within
      // three intervals of a cheaper step, or before any gradient was ever seen: silence or an
      // empty scene at an unchanged configuration is the content's, not the knobs'): every
      // knob one value above the configuration just sent, the moments cleared, and a floor
      // there that holds for floor_len_ intervals; the floor's length doubles each time it is
      // needed again (up to 64 intervals) and resets once the loop has been calm for twice it
      // (a collapse that repeats is kept away for longer, like TCP's backoff).
      no_signal_ = signal ? 0 : no_signal_ + 1;
      const bool climb = !backoff && no_signal_ >= 2 &&
                         (!ever_signal_ || (last_cheaper_ != kNever && i <= last_cheaper_ + 3));
      ever_signal_ = ever_signal_ || signal;
      if (backoff || climb) {
        if (i >= floor_until_ + 2 * floor_len_) floor_len_ = 4;
        floor_.assign(knobs_.size(), 0);
        for (std::size_t k = 0; k < knobs_.size(); ++k) {
          floor_[k] = applied_[k] > 0 ? applied_[k] - 1 : 0;
          theta_[k] = std::max(theta_[k], relax_[k].theta_of(floor_[k]));
          adam_[k].restore(0, 0, 0);
          scale_[k] = 1.0, last_sign_[k] = 0;
        }
        floor_until_ = i + 1 + floor_len_;
        t[backoff ? "backoff" : "climb"] = floor_len_;
        floor_len_ = std::min<std::size_t>(64, floor_len_ * 2);
        no_signal_ = 0;
      }
      json sc = json::object();
      for (std::size_t k = 0; k < knobs_.size(); ++k) sc[knobs_[k].key] = scale_[k];
      t["step_scale"] = sc;
    }
    for (std::size_t k = 0; k < knobs_.size(); ++k) theta[knobs_[k].key] = theta_[k];
    // What decide() predicts the next interval's bytes from: this one's real bytes of the
    // applied configuration and the probed neighbours' byte ratios.
    sent_ = applied_;
    last_config_ = applied_config;
    seen_ = true;
    recent_.push_back({static_cast<double>(served.outcome.bytes), applied_});
    while (recent_.size() > 3) recent_.pop_front();
    last_header_ = static_cast<double>(served.outcome.header_bytes);
    t["theta"] = theta;
    t["accgrad"] = accgrad;
    t["objgrad"] = objgrad;
    t["byte_ratio"] = ratio;
    t["norm"] = norm;
    t["bytes_norm"] = bytes_norm;
    t["level"] = level;
    if (served.rendering) t["rec"] = rec(*served.rendering) / norm;
    if (spatial_ && map_mode_ == "solver") solve_spatial(ctx, served, S, norm, bytes_norm);
  }

  // The spatial solver (adapt/spatial.hpp): saliency pooled over intervals; the interval
  // rendered at each uniform level (with the joint solve, over a base one value better than the
  // one applied, so that the base can rise); the cost model's prediction of the map just sent
  // checked against its real bytes (records: map_bytes_predicted, map_bytes_error); the next
  // interval's map (and base) from the per-tile costs.
  void solve_spatial(IntervalContext& ctx, const Served& served, const at::Tensor& S, double norm,
                     double bytes_norm) {
    auto& t = ctx.trace();
    const at::Tensor& original = ctx.original();
    const bool joint = base_k_ < knobs_.size();
    std::vector<std::size_t> at_idx = applied_;
    std::size_t rendered = 0;
    if (joint) rendered = at_idx[base_k_] = applied_[base_k_] > 0 ? applied_[base_k_] - 1 : 0;
    const Configuration cfg = Configuration::at_indices(knobs_, at_idx);
    std::vector<at::Tensor> level_frames;
    std::vector<double> level_bytes;
    bool whole = true;
    for (std::size_t q = 0; q < spatial_->levels.size(); ++q) {
      const QualityMap uniform = QualityMap::uniform(*spatial_, static_cast<std::uint8_t>(q));
      const Rendering& r = ctx.render(cfg, &uniform);
      whole = whole && r.input.sizes().equals(original.sizes());
      level_frames.push_back(r.input);
      level_bytes.push_back(static_cast<double>(r.bytes));
    }
    // Every frame of the interval when the renderings have them all, else the last sample.
    const int64_t last = original.size(0) - 1;
    const at::Tensor G = whole ? original : original[last];
    if (!whole)
      for (auto& v : level_frames) v = v[v.size(0) - 1];
    // This interval's saliency per tile (what roi-hindsight pools over the whole run).
    {
      json shares = json::array();
      for (double x : tile_shares(*spatial_, S)) shares.push_back(std::round(x * 1e5) / 1e5);
      t["tile_saliency"] = shares;
    }
    const auto solve_start = std::chrono::steady_clock::now();
    const at::Tensor P = pool_.add(S);
    const TileCosts costs = tile_costs(*spatial_, P, G, level_frames, level_bytes, cost_model_);
    // The solver's own time (the renderings above are charged as source renders).
    auto solver_ms = [&] {
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                       solve_start)
          .count();
    };
    if (map_ && served.outcome.bytes > 0) {
      const double predicted = joint ? predict_joint_bytes(*spatial_, costs, base_values_, rendered,
                                                           applied_[base_k_], *map_)
                                     : predict_bytes(costs, *map_);
      if (std::isfinite(predicted)) {
        t["map_bytes_predicted"] = predicted;
        t["map_bytes_error"] = predicted / static_cast<double>(served.outcome.bytes) - 1.0;
      }
    }
    if (!joint) {
      map_ = solve_map(*spatial_, costs, norm, bytes_norm, beta_);
      t["spatial_ms"] = solver_ms();
      return;
    }
    const JointChoice c =
        solve_joint(*spatial_, costs, base_values_, rendered, applied_[base_k_],
                    static_cast<double>(served.outcome.header_bytes), norm, bytes_norm, beta_);
    map_ = c.map;
    theta_[base_k_] = relax_[base_k_].theta_of(c.base);
    // After a back-off the base stays at or above its floor, like every knob.
    if (o_.step_control && ctx.info().index < floor_until_ && base_k_ < floor_.size())
      theta_[base_k_] = std::max(theta_[base_k_], relax_[base_k_].theta_of(floor_[base_k_]));
    t["spatial_base"] = knobs_[base_k_].values[c.base].label;
    t["spatial_ms"] = solver_ms();
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
            {"price", budget_seen_ ? beta_ : 0.0},
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
            {"spatial_decay", o_.spatial_decay},
            {"spatial_joint", base_k_ < knobs_.size()},
            {"spatial_probe_map", o_.spatial_probe_map},
            {"warm_start", warm_start_.string()},
            {"budget_eta", o_.budget_eta},
            {"budget_margin", o_.budget_margin},
            {"step_control", o_.step_control},
            {"proxy_drop", o_.proxy_drop},
            {"proxy_history", o_.proxy_history},
            {"rec_max", o_.rec_max},
            {"final_price", beta_}};
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
      const double price = s.value("price", 0.0);
      if (!std::isfinite(price) || price < 0)
        throw Error(Errc::invalid_argument, "has a non-finite or negative price");
      warm_price_ = price;  // used when this run has a budget too
    } catch (const json::exception& e) {
      throw Error(Errc::corrupt_data, path.string() + ": malformed warm-start state: " + e.what());
    } catch (const Error& e) {
      throw Error(e.code(), path.string() + ": warm-start state " + e.what());
    }
  }

  std::size_t hq_of(std::size_t k) const { return relax_[k].pair_hq(theta_[k]); }

  // The next interval's bytes at ladder indices `idx`, predicted from the last intervals: each
  // one's payload at the configuration it sent, times each knob's measured byte ratio per
  // value moved from there; the largest of the last three (content changes the payload from
  // one interval to the next: speech after silence, a busy scene after a calm one), plus the
  // stream header when the configuration changes.
  double predict(const std::vector<std::size_t>& idx) const {
    double most = 0;
    for (const auto& [payload, sent] : recent_) {
      double b = payload;
      for (std::size_t k = 0; k < idx.size(); ++k) {
        const double steps = static_cast<double>(idx[k]) - static_cast<double>(sent[k]);
        if (steps != 0) b *= std::pow(std::max(ratio_[k], 0.02), steps);
      }
      most = std::max(most, b);
    }
    return most + (idx != sent_ ? last_header_ : 0.0);
  }

  // Projects the configuration about to be applied onto the budget: while its predicted bytes
  // exceed budget_margin x the budget, one knob goes one value cheaper: each time the knob that
  // loses the least rec per byte saved, whether that undoes the last gradient step's rise or goes
  // below the configuration last sent (a trade: one knob down so that another may rise), a
  // knob's k-th value below the last sent one counted k + 1 times its one-step loss (losses
  // grow with distance: a convex guess that keeps one knob from carrying the whole cut). theta
  // follows the projection, so that the next gradient step starts there.
  void project(IntervalContext& ctx, double budget) {
    const double target = o_.budget_margin * budget;
    double predicted = predict(applied_);
    int moves = 0;
    while (predicted > target) {
      std::size_t best = knobs_.size();
      double best_cost = std::numeric_limits<double>::infinity();
      for (std::size_t k = 0; k < knobs_.size(); ++k) {
        if (applied_[k] + 1 >= relax_[k].values) continue;
        std::vector<std::size_t> down = applied_;
        ++down[k];
        const double saved = predicted - predict(down);
        const double below =
            down[k] > sent_[k] ? static_cast<double>(down[k] - sent_[k]) + 1.0 : 1.0;
        const double cost = saved > 0 ? (loss_[k] + 1e-9) * below / saved : 1e300;
        if (cost < best_cost) best_cost = cost, best = k;
      }
      if (best == knobs_.size()) break;
      ++applied_[best];
      theta_[best] = std::min(theta_[best], relax_[best].theta_of(applied_[best]));
      predicted = predict(applied_);
      ++moves;
    }
    // A change pays the stream header: when no changed configuration fits but the one last
    // sent does (without a header), stay.
    if (predicted > target && applied_ != sent_ && predict(sent_) <= target) {
      applied_ = sent_;
      for (std::size_t k = 0; k < knobs_.size(); ++k)
        theta_[k] = std::min(theta_[k], relax_[k].theta_of(applied_[k]));
      predicted = predict(applied_);
      ctx.trace()["kept"] = true;
    }
    if (predicted > target) ctx.trace()["budget_infeasible_predicted"] = true;
    ctx.trace()["predicted_bytes"] = predicted;
    if (moves) ctx.trace()["projected"] = moves;
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
  std::size_t base_k_ = std::numeric_limits<std::size_t>::max();  // the spatial knob's base
                                                                  // knob (>= knobs_.size(): none)
  std::vector<double> base_values_;                               // its ladder's numbers
  CostModel cost_model_;
  double norm_ = 0, bytes_norm_ = 0, bytes_per_interval_ = 0;
  std::mt19937 rng_;
  SaliencyPool pool_;
  double warm_price_ = 0;
  bool budget_seen_ = false;
  double beta_ = 0;  // the price of a byte (dual ascent under a budget; else o_.beta)
  // Step control and the budget's predictions.
  std::vector<double> scale_, ratio_, loss_;
  std::vector<int> last_sign_;
  std::deque<double> proxy_hist_;
  int no_signal_ = 0, away_ = 0;
  double anchor_proxy_ = 0;  // the proxy when the normaliser was last calibrated or re-anchored
  std::vector<std::size_t> floor_;  // per knob: no cheaper value than this until floor_until_
  std::size_t floor_until_ = 0, floor_len_ = 4;
  std::vector<std::size_t> sent_;
  Configuration last_config_;
  std::deque<std::pair<double, std::vector<std::size_t>>> recent_;  // (payload, indices sent)
  double last_header_ = 0;
  bool seen_ = false;  // an interval has been learnt from
  static constexpr std::size_t kNever = static_cast<std::size_t>(-1);
  std::size_t last_cheaper_ = kNever;  // the last interval that sent a cheaper value
  bool ever_signal_ = false;
};

}  // namespace

std::unique_ptr<Policy> make_oneadapt(const PolicyArgs& a) { return std::make_unique<OneAdapt>(a); }

}  // namespace oneadapt::adapt
