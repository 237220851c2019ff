#include "adapt/runner.hpp"
#include "adapt/spatial.hpp"

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <random>
#include <set>
#include <sstream>

#include "engine/engine.hpp"
#include "text.hpp"

namespace oneadapt::adapt {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double objective(double rec, double rec_norm, double bytes, double bytes_norm, double beta) {
  return rec / (rec_norm > 0 ? rec_norm : 1.0) + beta * bytes / std::max(bytes_norm, 1.0);
}

Normalisation parse_normalisation(const std::string& text) {
  if (text == "fixed") return Normalisation::fixed;
  if (text == "per-interval") return Normalisation::per_interval;
  throw Error(Errc::invalid_argument, "normalisation '" + text + "' is not one of fixed, per-interval");
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

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// One interval's renderings by configuration (method: no configuration encoded twice).
class RenderCache {
 public:
  explicit RenderCache(host::HostSource& s) : source_(s) {}
  void clear() {
    cache_.clear();
    probes_.clear();
    policy_.clear();
    stages_.clear();
  }
  /// A rendering for gradient estimation: a full rendering when there is one, else a probe
  /// whose input may hold only sample `sample`.
  const Rendering& probe(const Configuration& c, std::size_t sample, double* ms) {
    policy_.insert(c);
    if (auto it = cache_.find(c); it != cache_.end()) return it->second;
    if (auto it = probes_.find(c); it != probes_.end()) return it->second;
    auto t0 = Clock::now();
    Rendering r = source_.probe(c, sample);
    if (ms) *ms += ms_since(t0);
    for (const auto& [stage, v] : r.timings_ms) stages_[stage] += v;
    if (!r.input.defined())
      throw Error(Errc::plugin_failure, source_.origin().describe() + " probed no input for " + c.str());
    return probes_.emplace(c, std::move(r)).first->second;
  }

  /// The modality's own stage timings (e.g. encode, decode), summed over this interval's renderings.
  const std::map<std::string, double>& stages() const { return stages_; }
  // Returns the rendering; `ms` gets the time spent if it had to be rendered. `for_policy`
  // false marks a rendering made only to score accuracy (the reference): not charged.
  const Rendering& get(const Configuration& c, double* ms = nullptr, bool for_policy = true) {
    if (for_policy) policy_.insert(c);
    auto it = cache_.find(c);
    if (it != cache_.end()) return it->second;
    auto t0 = Clock::now();
    Rendering r = source_.render(c);
    if (ms) *ms += ms_since(t0);
    for (const auto& [stage, v] : r.timings_ms) stages_[stage] += v;
    if (!r.input.defined())
      throw Error(Errc::plugin_failure, source_.origin().describe() + " rendered no input for " + c.str());
    if (r.fresh.empty()) r.fresh.assign(static_cast<std::size_t>(r.input.size(0)), 1);
    return cache_.emplace(c, std::move(r)).first->second;
  }
  /// Distinct configurations the policy rendered this interval (the one sent included).
  std::size_t policy_renders() const { return policy_.size(); }

 private:
  host::HostSource& source_;
  std::map<Configuration, Rendering> cache_, probes_;
  std::set<Configuration> policy_;
  std::map<std::string, double> stages_;
};

struct Inference {
  std::vector<ResultPtr> results;  // one per sample
  at::Tensor dnn_grad;             // d proxy / d input of the last inferred sample [C,...]
  double proxy = 0;
  double frames = 0;
  double forward_ms = 0, backward_ms = 0;
};

// Infers the fresh samples of `r`; repeated samples reuse the last result. With `grad`, the
// last fresh sample runs with autograd and its forward also yields the proxy and DNNGrad.
Inference infer(host::HostTask& task, const Rendering& r, bool grad) {
  Inference out;
  std::vector<int64_t> fresh;
  for (std::size_t t = 0; t < r.fresh.size(); ++t)
    if (r.fresh[t] || fresh.empty()) fresh.push_back(static_cast<int64_t>(t));
  out.frames = static_cast<double>(fresh.size());
  std::vector<ResultPtr> fresh_results;
  auto t0 = Clock::now();
  const std::size_t plain = grad ? fresh.size() - 1 : fresh.size();
  if (plain > 0) {
    at::NoGradGuard no_grad;
    at::Tensor x = r.input.index_select(0, at::tensor(std::vector<int64_t>(fresh.begin(), fresh.begin() + static_cast<std::ptrdiff_t>(plain)), at::kLong));
    fresh_results = task.decode(task.infer(x));
  }
  out.forward_ms = ms_since(t0);
  if (grad) {
    // The last fresh sample runs with autograd: its forward pass is inference (pipeline); the
    // proxy and the backward pass are OneAdapt's overhead ("backward").
    t0 = Clock::now();
    at::Tensor x = r.input.narrow(0, fresh.back(), 1).clone().requires_grad_(true);
    auto outputs = task.infer(x);
    {
      at::NoGradGuard no_grad;
      auto last = task.decode(outputs);
      fresh_results.insert(fresh_results.end(), last.begin(), last.end());
    }
    out.forward_ms += ms_since(t0);
    t0 = Clock::now();
    at::Tensor proxy = task.proxy(outputs);
    out.proxy = proxy.item<double>();
    if (proxy.requires_grad())
      out.dnn_grad = engine::input_gradients(proxy, {x})[0][0];
    else
      out.dnn_grad = at::zeros_like(x[0]);  // nothing detected: no signal this interval
    out.backward_ms = ms_since(t0);
  }
  if (fresh_results.size() != fresh.size())
    throw Error(Errc::plugin_failure, task.origin().describe() + " decoded " + std::to_string(fresh_results.size()) +
                                          " results for " + std::to_string(fresh.size()) + " samples");
  std::size_t k = 0;
  for (std::size_t t = 0; t < r.fresh.size(); ++t) {
    if (k < fresh.size() && fresh[k] == static_cast<int64_t>(t)) ++k;
    out.results.push_back(fresh_results[k - 1]);
  }
  return out;
}

double compute_of(const Rendering& r) {
  if (r.compute_units > 0) return r.compute_units;
  double n = 0;
  for (auto f : r.fresh) n += f ? 1 : 0;
  return n;
}

// A policy decides the configuration of each interval; OneAdapt also learns from DNNGrad.
class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string name() const = 0;
  virtual Configuration current() = 0;
  virtual bool needs_grad() const { return false; }
  /// Whether this interval's update uses the reference rendering's bytes (then it is charged).
  virtual bool uses_reference_bytes() const { return false; }
  struct Feedback {
    const at::Tensor* original = nullptr;
    const at::Tensor* dnn_grad = nullptr;
    at::Tensor saliency;
    std::uint64_t bytes_ref = 0;
    RenderCache* cache = nullptr;
    double render_ms = 0;  // accumulates the time of extra renderings
    json record;           // policy fields for the record
  };
  virtual void update(Feedback& f) = 0;
  virtual json state() const { return json::object(); }
};

class StaticPolicy final : public Policy {
 public:
  StaticPolicy(const std::vector<KnobSpec>& knobs, const std::map<std::string, std::string>& labels) {
    std::vector<std::size_t> idx;
    for (const auto& k : knobs) {
      auto it = labels.find(k.key);
      std::size_t i = 0;
      if (it != labels.end()) {
        auto v = std::find_if(k.values.begin(), k.values.end(), [&](const KnobValue& kv) { return kv.label == it->second; });
        if (v == k.values.end()) {
          std::string ladder;
          for (const auto& kv : k.values) ladder += (ladder.empty() ? "" : " ") + kv.label;
          throw Error(Errc::invalid_argument, "policy.config." + k.key + ": '" + it->second +
                                                  "' is not on the knob's ladder (" + ladder + ")");
        }
        i = static_cast<std::size_t>(v - k.values.begin());
      }
      idx.push_back(i);
    }
    for (const auto& [key, label] : labels)
      if (std::none_of(knobs.begin(), knobs.end(), [&](const KnobSpec& k) { return k.key == key; }))
        throw Error(Errc::invalid_argument, "policy.config: the modality has no knob '" + key + "'");
    config_ = Configuration::at_indices(knobs, idx);
  }
  std::string name() const override { return "static"; }
  Configuration current() override { return config_; }
  void update(Feedback&) override {}

 private:
  Configuration config_;
};

class OneAdaptPolicy final : public Policy {
 public:
  OneAdaptPolicy(const std::vector<KnobSpec>& knobs, const OneAdaptOptions& o, const fs::path& warm_start)
      : knobs_(knobs), o_(o), rng_(o.seed) {
    for (const auto& k : knobs_) {
      relax_.push_back({k.values.size()});
      adam_.emplace_back(o.lr);
      auto it = o.start.find(k.key);
      double theta = it != o.start.end() ? it->second : relax_.back().theta_of(k.default_index);
      theta_.push_back(std::clamp(theta, 0.0, 1.0));
    }
    for (const auto& [key, v] : o.start) {
      if (std::none_of(knobs_.begin(), knobs_.end(), [&](const KnobSpec& k) { return k.key == key; }))
        throw Error(Errc::invalid_argument, "policy.start: the modality has no knob '" + key + "'");
      if (v < 0 || v > 1) throw Error(Errc::invalid_argument, "policy.start." + key + ": theta must be in [0, 1]");
    }
    norm_ = o.norm_constant;
    if (!warm_start.empty()) load_state(warm_start);
  }

  std::string name() const override { return "oneadapt"; }
  bool needs_grad() const override { return true; }
  bool uses_reference_bytes() const override {
    return o_.normalisation == Normalisation::per_interval || bytes_norm_ <= 0;
  }

  Configuration current() override {
    std::vector<std::size_t> idx;
    for (std::size_t k = 0; k < knobs_.size(); ++k) idx.push_back(relax_[k].applied(theta_[k], o_.rounding, &rng_));
    applied_ = idx;
    return Configuration::at_indices(knobs_, idx);
  }

  void update(Feedback& f) override {
    // rec compares with G on the last frame (the sample DNNGrad comes from) or on all frames.
    const bool last = o_.rec_frames == RecFrames::last;
    const int64_t T = f.original->size(0);
    const at::Tensor G = last ? f.original->narrow(0, T - 1, 1) : *f.original;
    // A probe holds only the last sample ([1,...]); a full rendering holds all T.
    auto frames = [&](const at::Tensor& v) { return last ? v.narrow(0, v.size(0) - 1, 1) : v; };
    auto neighbour = [&](const std::vector<std::size_t>& idx) -> const Rendering& {
      Configuration c = Configuration::at_indices(knobs_, idx);
      return last ? f.cache->probe(c, static_cast<std::size_t>(T - 1), &f.render_ms) : f.cache->get(c, &f.render_ms);
    };
    at::Tensor S = f.saliency;
    if (uses_reference_bytes()) {
      double b = static_cast<double>(f.bytes_ref);
      if (o_.normalisation == Normalisation::fixed) bytes_norm_ = b;  // calibrated once
      bytes_per_interval_ = b;
    }
    const double bytes_norm = o_.normalisation == Normalisation::fixed ? bytes_norm_ : bytes_per_interval_;
    double norm = norm_;
    if (o_.normalisation == Normalisation::per_interval || norm <= 0) {
      double c = (G.abs() * S).mean().item<double>();
      if (o_.normalisation == Normalisation::fixed) norm_ = c;  // calibrated once, then fixed
      norm = c;
    }
    if (!(norm > 0)) norm = 1;  // a blank first interval: keep the raw scale
    // rec of each distinct rendering, computed once per interval (each is a pass over the
    // whole interval at native resolution), in place to spare allocations.
    std::map<const Rendering*, double> rec_cache;
    auto rec = [&](const Rendering& r) {
      auto it = rec_cache.find(&r);
      if (it != rec_cache.end()) return it->second;
      at::NoGradGuard no_grad;
      at::Tensor d = frames(r.input) - G;
      double v;
      if (o_.estimator == Estimator::abs) {
        v = d.abs_().mul_(S).mean().item<double>();
      } else {
        // signed: first-order proxy loss P(G) - P(V) = -sum(DNNGrad (V - G)), per element
        v = -d.mul_(*f.dnn_grad).mean().item<double>();
      }
      return rec_cache[&r] = v;
    };
    auto objective_of = [&](const Rendering& r, double& rec_out) {
      rec_out = rec(r) / norm;
      return objective(rec(r), norm, static_cast<double>(r.bytes), bytes_norm, o_.beta);
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
        const bool same = vh.bytes == vl.bytes && frames(vh.input).equal(frames(vl.input));
        if (!same) {  // no signal when the two renderings are equal
          double rh = 0, rl = 0;
          double oh = objective_of(vh, rh), ol = objective_of(vl, rl);
          g = (oh - ol) / relax_[k].delta();
          acc = (rl - rh) / relax_[k].delta();
        }
      }
      theta_[k] = std::clamp(theta_[k] - adam_[k].step(g), 0.0, 1.0);
      accgrad[knobs_[k].key] = acc;
      objgrad[knobs_[k].key] = g;
      theta[knobs_[k].key] = theta_[k];
    }
    f.record["accgrad"] = accgrad;
    f.record["objgrad"] = objgrad;
    f.record["theta_next"] = theta;
    f.record["norm"] = norm;
    f.record["bytes_norm"] = bytes_norm;
  }

  json theta_json() const {
    json t = json::object();
    for (std::size_t k = 0; k < knobs_.size(); ++k) t[knobs_[k].key] = theta_[k];
    return t;
  }

  json state() const override {
    json knobs = json::object();
    for (std::size_t k = 0; k < knobs_.size(); ++k) {
      json ladder = json::array();
      for (const auto& v : knobs_[k].values) ladder.push_back(v.label);
      knobs[knobs_[k].key] = {{"theta", theta_[k]}, {"ladder", ladder},
                              {"adam", {{"m", adam_[k].m()}, {"v", adam_[k].v()}, {"t", adam_[k].t()}}}};
    }
    return {{"policy", "oneadapt"}, {"norm_constant", norm_}, {"bytes_norm", bytes_norm_}, {"knobs", knobs}};
  }

 private:
  void load_state(const fs::path& path) {
    std::ifstream in(path);
    if (!in) throw Error(Errc::not_found, path.string() + ": cannot open warm-start state");
    json s;
    try {
      s = json::parse(in);
      if (s.value("policy", "") != "oneadapt") throw Error(Errc::invalid_argument, "not a oneadapt state");
      for (std::size_t k = 0; k < knobs_.size(); ++k) {
        const auto& key = knobs_[k].key;
        if (!s["knobs"].contains(key)) throw Error(Errc::invalid_argument, "has no knob '" + key + "'");
        const auto& j = s["knobs"][key];
        std::vector<std::string> ladder = j.at("ladder").get<std::vector<std::string>>();
        std::vector<std::string> ours;
        for (const auto& v : knobs_[k].values) ours.push_back(v.label);
        if (ladder != ours) throw Error(Errc::invalid_argument, "knob '" + key + "' has another ladder");
        theta_[k] = std::clamp(j.at("theta").get<double>(), 0.0, 1.0);
        adam_[k].restore(j["adam"].at("m").get<double>(), j["adam"].at("v").get<double>(), j["adam"].at("t").get<long>());
      }
      if (norm_ <= 0) norm_ = s.value("norm_constant", 0.0);
      bytes_norm_ = s.value("bytes_norm", 0.0);
    } catch (const json::exception& e) {
      throw Error(Errc::corrupt_data, path.string() + ": malformed warm-start state: " + e.what());
    } catch (const Error& e) {
      throw Error(e.code(), path.string() + ": warm-start state " + e.what());
    }
  }

  std::vector<KnobSpec> knobs_;
  OneAdaptOptions o_;
  std::vector<KnobRelaxation> relax_;
  std::vector<Adam> adam_;
  std::vector<double> theta_;
  std::vector<std::size_t> applied_;
  double norm_ = 0;
  double bytes_norm_ = 0, bytes_per_interval_ = 0;
  std::mt19937 rng_;
};

std::string human_bytes(double b) {
  char buf[32];
  if (b >= 1e6) std::snprintf(buf, sizeof buf, "%.2f MB", b / 1e6);
  else if (b >= 1e3) std::snprintf(buf, sizeof buf, "%.1f KB", b / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f B", b);
  return buf;
}

void progress_line(std::ostream& out, bool tty, std::size_t done, std::size_t total, double elapsed_s, const std::string& detail) {
  const double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0;
  char head[96];
  if (tty) {
    std::string bar;
    if (total > 0) {
      const int width = 24;
      int filled = static_cast<int>(width * static_cast<double>(done) / static_cast<double>(total));
      bar = "[" + std::string(static_cast<std::size_t>(filled), '=') + std::string(static_cast<std::size_t>(width - filled), ' ') + "] ";
      double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
      std::snprintf(head, sizeof head, "%zu/%zu  %.2f it/s  ETA %.0f s  ", done, total, rate, eta);
    } else {
      std::snprintf(head, sizeof head, "%zu  %.2f it/s  ", done, rate);
    }
    out << "\r\033[K" << bar << head << detail << std::flush;
  } else {
    std::snprintf(head, sizeof head, "[%zu%s] %.2f it/s ", done, total ? ("/" + std::to_string(total)).c_str() : "", rate);
    out << head << detail << '\n' << std::flush;
  }
}

json config_json(const Configuration& c) {
  json j = json::object();
  for (const auto& s : c.settings()) j[s.key] = s.value.number;
  return j;
}

}  // namespace

RunSummary run_experiment(host::HostSource& source, host::HostTask& task, const RunSpec& spec, std::ostream& progress,
                          bool tty) {
  const std::vector<KnobSpec> knobs = source.knobs();
  std::unique_ptr<Policy> policy;
  if (spec.policy == "oneadapt") policy = std::make_unique<OneAdaptPolicy>(knobs, spec.oneadapt, spec.warm_start);
  else if (spec.policy == "static") policy = std::make_unique<StaticPolicy>(knobs, spec.static_config);
  else throw Error(Errc::invalid_argument, "policy '" + spec.policy + "' is not one of oneadapt, static");

  std::error_code ec;
  fs::create_directories(spec.out_dir, ec);
  if (ec) throw Error(Errc::io, spec.out_dir.string() + ": cannot create output directory: " + ec.message());
  const fs::path records_path = spec.out_dir / "records.jsonl";
  std::ofstream records(records_path, std::ios::trunc);
  if (!records) throw Error(Errc::io, records_path.string() + ": cannot write");

  progress << spec.header << std::flush;
  RunSummary sum;
  sum.policy = policy->name();
  double accuracy_sum = 0;
  const Configuration reference = source.reference();
  RenderCache cache(source);
  // The spatial knob, when the source has one: the map each interval is sent with.
  const std::optional<SpatialSpec> spatial = source.spatial();
  const std::string map_mode = spec.spatial_map.empty() ? (spec.policy == "oneadapt" ? "solver" : "best") : spec.spatial_map;
  if (map_mode != "solver" && map_mode != "centre" && map_mode != "best")
    throw Error(Errc::invalid_argument, "policy.spatial_map: '" + map_mode + "' is not one of solver, centre, best");
  if (map_mode == "solver" && spec.policy != "oneadapt")
    throw Error(Errc::invalid_argument, "policy.spatial_map: the solver needs the oneadapt policy (its saliency map)");
  QualityMap map;
  if (spatial) map = map_mode == "centre" ? centre_weighted_map(*spatial) : QualityMap::uniform(*spatial, 0);
  const auto start = Clock::now();
  task.reset();

  auto write_summary = [&](const std::string& status, const std::string& error) {
    sum.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
    sum.accuracy_mean = sum.intervals ? accuracy_sum / static_cast<double>(sum.intervals) : 0;
    {
      auto st = [&](const char* k) { auto it = sum.stage_ms.find(k); return it == sum.stage_ms.end() ? 0.0 : it->second; };
      double pipeline = st("decode") + st("render") + st("forward");
      sum.overhead_fraction = pipeline > 0 ? (st("probe") + st("backward") + st("update")) / pipeline : 0;
    }
    json j = {{"status", status},
              {"policy", sum.policy},
              {"beta", spec.oneadapt.beta},
              {"intervals", sum.intervals},
              {"accuracy_mean", sum.accuracy_mean},
              {"bytes_total", sum.bytes_total},
              {"bytes_ref_total", sum.bytes_ref_total},
              {"bytes_ratio", sum.bytes_ref_total ? static_cast<double>(sum.bytes_total) / static_cast<double>(sum.bytes_ref_total) : 0},
              {"frames_inferred_total", sum.frames_inferred_total},
              {"frames_ref_total", sum.frames_ref_total},
              {"compute_total", sum.compute_total},
              {"overhead", {{"backward_passes", sum.backward_passes}, {"extra_renders", sum.extra_renders}, {"extra_forwards", sum.extra_forwards}}},
              {"wall_s", sum.wall_s},
              {"overhead_fraction", sum.overhead_fraction},
              {"stage_ms", sum.stage_ms},
              {"final_config", sum.final_config},
              {"options", {{"lr", spec.oneadapt.lr},
                           {"rounding", rounding_name(spec.oneadapt.rounding)},
                           {"normalisation", spec.oneadapt.normalisation == Normalisation::fixed ? "fixed" : "per-interval"},
                           {"estimator", spec.oneadapt.estimator == Estimator::abs ? "abs" : "signed"},
                           {"rec_frames", spec.oneadapt.rec_frames == RecFrames::last ? "last" : "all"},
                           {"warm_start", spec.warm_start.string()}}},
              {"provenance", spec.provenance}};
    if (!error.empty()) j["error"] = error;
    std::ofstream(spec.out_dir / "summary.json") << j.dump(2) << '\n';
    std::ofstream(spec.out_dir / "state.json") << policy->state().dump(2) << '\n';
  };

  try {
    IntervalInfo info;
    while ((spec.max_intervals == 0 || sum.intervals < spec.max_intervals)) {
      auto t0 = Clock::now();
      if (!source.next_interval(info)) break;
      // Pipeline stages: decode, render (the configuration sent), forward. OneAdapt's overhead:
      // probe (extra renderings), backward, update. reference: scoring only, never charged.
      std::map<std::string, double> wall{{"decode", ms_since(t0)}, {"render", 0}, {"forward", 0}, {"probe", 0},
                                         {"backward", 0}, {"update", 0}, {"reference", 0}};
      cache.clear();
      const at::Tensor G = source.original();
      const Configuration applied = policy->current();

      // A map with any tile below the best level is rendered apart from the cache (the cache
      // holds uniform-best renderings, which the global knobs' gradient probes use).
      const bool mapped = spatial && std::any_of(map.level.begin(), map.level.end(), [](std::uint8_t l) { return l > 0; });
      Rendering map_rendering;
      if (mapped) {
        auto tr = Clock::now();
        map_rendering = source.render_map(applied, map);
        wall["render"] += ms_since(tr);
      }
      const Rendering& sent = mapped ? map_rendering : cache.get(applied, &wall["render"]);
      Inference inf = infer(task, sent, policy->needs_grad());
      wall["forward"] = inf.forward_ms;
      wall["backward"] = inf.backward_ms;

      // The reference rendering scores accuracy (never charged). When the policy's objective
      // also uses its bytes this interval (per-interval normalisation, or calibration), the
      // policy pays for the rendering (time and one extra render).
      const bool charged = policy->uses_reference_bytes();
      const Rendering& ref = cache.get(reference, charged ? &wall["probe"] : nullptr, charged);
      t0 = Clock::now();
      std::vector<ResultPtr> ref_results = applied == reference ? inf.results : infer(task, ref, false).results;
      const double accuracy = task.accuracy(inf.results, ref_results);
      task.end_interval(ref_results);  // recurrent tasks carry the reference stream's state
      wall["reference"] = ms_since(t0);

      t0 = Clock::now();
      Policy::Feedback fb;
      fb.original = &G;
      fb.dnn_grad = &inf.dnn_grad;
      fb.bytes_ref = ref.bytes;
      fb.cache = &cache;
      if (policy->needs_grad()) fb.saliency = source.saliency(inf.dnn_grad);
      policy->update(fb);
      wall["update"] = ms_since(t0) - fb.render_ms;
      wall["probe"] += fb.render_ms;
      // Extra renderings: what the policy rendered beyond the configuration it sent.
      long extra = static_cast<long>(cache.policy_renders()) - (mapped ? 0 : 1);
      const QualityMap sent_map = map;
      if (spatial && map_mode == "solver") {
        // The spatial solver: the interval at each uniform level (level 0 from the cache), on
        // the backpropagated frame; the map applies to the next interval.
        t0 = Clock::now();
        const int64_t T = G.size(0);
        std::vector<at::Tensor> frames;
        std::vector<double> level_bytes;
        for (std::size_t q = 0; q < spatial->levels.size(); ++q) {
          double ms = 0;
          const std::size_t before = cache.policy_renders();
          Rendering lq = q == 0 ? cache.get(applied, &ms, true) : source.render_map(applied, QualityMap::uniform(*spatial, static_cast<std::uint8_t>(q)));
          extra += q == 0 ? static_cast<long>(cache.policy_renders() - before) : 1;
          frames.push_back(lq.input[lq.input.size(0) - 1]);
          level_bytes.push_back(static_cast<double>(lq.bytes));
        }
        const double norm = fb.record.value("norm", 1.0), bytes_norm = fb.record.value("bytes_norm", 1.0);
        map = solve_map(*spatial, tile_costs(*spatial, fb.saliency, G[T - 1], frames, level_bytes), norm, bytes_norm, spec.oneadapt.beta);
        wall["probe"] += ms_since(t0);
      }

      json rec = {{"interval", info.index},
                  {"t_start", info.t_start},
                  {"duration", info.duration},
                  {"config", config_json(applied)},
                  {"config_str", applied.str()},
                  {"bytes", sent.bytes},
                  {"bytes_ref", ref.bytes},
                  {"frames_inferred", inf.frames},
                  {"frames_ref", static_cast<double>(ref.input.size(0))},
                  {"compute", compute_of(sent)},
                  {"accuracy", accuracy},
                  {"proxy", inf.proxy},
                  {"overhead", {{"backward_passes", policy->needs_grad() ? 1 : 0}, {"extra_renders", extra}, {"extra_forwards", 0}}},
                  {"wall_ms", wall},
                  {"render_stages_ms", cache.stages()}};
      if (spatial) rec["map"] = map_rle(sent_map);
      if (auto* o = dynamic_cast<OneAdaptPolicy*>(policy.get())) {
        rec["theta"] = fb.record.contains("theta_next") ? fb.record["theta_next"] : o->theta_json();
        rec["accgrad"] = fb.record.value("accgrad", json::object());
        rec["objgrad"] = fb.record.value("objgrad", json::object());
        rec["norm"] = fb.record.value("norm", 0.0);
        rec["bytes_norm"] = fb.record.value("bytes_norm", 0.0);
      }
      records << rec.dump() << '\n' << std::flush;

      ++sum.intervals;
      accuracy_sum += accuracy;
      sum.bytes_total += sent.bytes;
      sum.bytes_ref_total += ref.bytes;
      sum.frames_inferred_total += inf.frames;
      sum.frames_ref_total += static_cast<double>(ref.input.size(0));
      sum.compute_total += compute_of(sent);
      sum.backward_passes += policy->needs_grad() ? 1 : 0;
      sum.extra_renders += extra;
      for (const auto& [k, v] : wall) sum.stage_ms[k] += v;
      sum.final_config = applied.str();

      char detail[200];
      std::snprintf(detail, sizeof detail, "t=%.0fs %s acc %.2f, %s (%.0f%% of ref)", info.t_start, applied.str().c_str(), accuracy,
                    human_bytes(static_cast<double>(sent.bytes)).c_str(), 100.0 * static_cast<double>(sent.bytes) / static_cast<double>(std::max<std::uint64_t>(ref.bytes, 1)));
      progress_line(progress, tty, sum.intervals, spec.max_intervals,
                    std::chrono::duration<double>(Clock::now() - start).count(), detail);
    }
  } catch (const Error& e) {
    if (tty) progress << '\n';
    write_summary("failed", e.what());
    throw Error(e.code(), std::string(e.what()) + " (stopped after " + std::to_string(sum.intervals) + " complete interval" +
                              (sum.intervals == 1 ? "" : "s") + "; their records are in " + records_path.string() + ")");
  }
  if (tty) progress << '\n';
  write_summary("complete", "");
  return sum;
}

std::string summary_table(const RunSummary& s) {
  auto f = [](const char* fmt, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, v);
    return std::string(buf);
  };
  std::vector<std::vector<std::string>> rows{
      {"policy", "intervals", "accuracy", "bytes", "of reference", "frames inferred", "backward", "extra renders", "wall"},
      {s.policy, std::to_string(s.intervals), f("%.3f", s.accuracy_mean), human_bytes(static_cast<double>(s.bytes_total)),
       f("%.1f%%", s.bytes_ref_total ? 100.0 * static_cast<double>(s.bytes_total) / static_cast<double>(s.bytes_ref_total) : 0),
       f("%.0f", s.frames_inferred_total) + " / " + f("%.0f", s.frames_ref_total), std::to_string(s.backward_passes),
       std::to_string(s.extra_renders), f("%.1f s", s.wall_s)},
      {"reference", std::to_string(s.intervals), "1.000", human_bytes(static_cast<double>(s.bytes_ref_total)), "100.0%",
       f("%.0f", s.frames_ref_total) + " / " + f("%.0f", s.frames_ref_total), "0", "0", "-"}};
  return text::table(rows);
}

}  // namespace oneadapt::adapt
