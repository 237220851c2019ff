// The profiling baselines, each scoring candidate configurations by running the DNN on them
// (method.md section 6), charged as they would really spend: on a profiling interval the source
// sends the interval at the reference quality (the served result is the reference's), and the
// server re-renders and infers each candidate on it (server renderings, DNN work).
//
// AWStream-style (Zhang et al., SIGCOMM 2018), kept: an offline profile (every grid
// configuration over the first `prefix` intervals, the unscored warm-up; without a prefix, one
// full-grid profile on the first interval), its Pareto set (no other configuration is both
// cheaper and more accurate), the choice of the configuration in it that minimises
// (1 - accuracy) + beta bytes/bytes_ref, and periodic online profiling of the Pareto set every
// `period` intervals (estimates updated as a running mean with the newest weighted 1/2).
// Left out: its application-level rate control and congestion detection on a real network, and
// its degradation of frames already queued.
//
// Chameleon-style (Jiang et al., SIGCOMM 2018), kept: coordinate descent over the grid, one knob
// per profiling interval in turn, at most `budget` configurations profiled (the current one and
// its nearest neighbours along that knob), the best of them applied from the next interval (the
// decision arrives late). Left out: cross-camera sharing of profiles and its temporal
// reuse of top-k configurations across windows.
#include <algorithm>
#include <cmath>
#include <limits>

#include "adapt/grid.hpp"
#include "adapt/policies/policies.hpp"

namespace oneadapt::adapt {

namespace {

using json = nlohmann::json;

struct Estimate {
  double accuracy = 0, cost = 0;  // cost: bytes / reference bytes
  double n = 0;
};

class ProfilingBase : public Policy {
 public:
  explicit ProfilingBase(const PolicyArgs& a) : beta_(a.point), period_(a.period), grid_(a.grid) {}

  void begin(const StreamSpec& stream) override {
    stream_ = stream;
    if (grid_.empty()) grid_ = all_configurations(stream.knobs);
    current_ = stream.reference;
  }

 protected:
  double objective(const Estimate& e) const { return (1.0 - e.accuracy) + beta_ * e.cost; }
  // Profiles `c` on this interval: (accuracy, bytes / reference bytes).
  Estimate measure(IntervalContext& ctx, const Configuration& c) {
    const Outcome ref = ctx.profile(stream_.reference);
    const Outcome o = ctx.profile(c);
    return {o.accuracy,
            ref.bytes ? static_cast<double>(o.bytes) / static_cast<double>(ref.bytes) : 0, 1};
  }

  double beta_;
  std::size_t period_;
  std::vector<Configuration> grid_;
  StreamSpec stream_;
  Configuration current_;
};

class AWStream final : public ProfilingBase {
 public:
  explicit AWStream(const PolicyArgs& a) : ProfilingBase(a), prefix_(a.prefix) {}

  Decision decide(IntervalContext& ctx) override {
    const std::size_t i = ctx.info().index;
    profiling_ = i < prefix_ || pareto_.empty() ||
                 (period_ > 0 && since_ + 1 >= period_);  // one interval in `period`
    Decision d;
    d.config = profiling_ ? stream_.reference : current_;
    d.profiling = profiling_;
    ctx.trace()["profiling"] = profiling_ ? (i < prefix_ ? "offline" : "online") : "no";
    return d;
  }

  void learn(IntervalContext& ctx, const Served&) override {
    const std::size_t i = ctx.info().index;
    if (!profiling_) {
      ++since_;
      return;
    }
    since_ = 0;
    const bool full = i < prefix_ || pareto_.empty();
    const std::vector<Configuration>& candidates = full ? grid_ : pareto_;
    for (const auto& c : candidates) {
      const Estimate e = measure(ctx, c);
      Estimate& est = profile_[c];
      if (i < prefix_ || est.n == 0) {  // offline: the mean over the prefix
        est.accuracy = (est.accuracy * est.n + e.accuracy) / (est.n + 1);
        est.cost = (est.cost * est.n + e.cost) / (est.n + 1);
        est.n += 1;
      } else {  // online: the newest measurement weighs 1/2
        est.accuracy = 0.5 * est.accuracy + 0.5 * e.accuracy;
        est.cost = 0.5 * est.cost + 0.5 * e.cost;
      }
    }
    if (pareto_.empty() && i + 1 >= prefix_) pareto_ = pareto();
    if (!pareto_.empty()) choose();
    ctx.trace()["profiled"] = candidates.size();
    ctx.trace()["pareto"] = pareto_.size();
  }

  json options() const override {
    return {{"beta", beta_}, {"period", period_}, {"prefix", prefix_}, {"grid", grid_.size()}};
  }

 private:
  std::vector<Configuration> pareto() const {
    std::vector<Configuration> out;
    for (const auto& [c, e] : profile_) {
      const bool dominated =
          std::any_of(profile_.begin(), profile_.end(), [&e = e](const auto& kv) {
            const Estimate& o = kv.second;
            return o.cost <= e.cost && o.accuracy >= e.accuracy &&
                   (o.cost < e.cost || o.accuracy > e.accuracy);
          });
      if (!dominated) out.push_back(c);
    }
    return out;
  }
  void choose() {
    double best = std::numeric_limits<double>::infinity();
    for (const auto& c : pareto_) {
      const double v = objective(profile_.at(c));
      if (v < best) best = v, current_ = c;
    }
  }

  std::size_t prefix_;
  bool profiling_ = false;
  std::size_t since_ = 0;
  std::map<Configuration, Estimate> profile_;
  std::vector<Configuration> pareto_;
};

class Chameleon final : public ProfilingBase {
 public:
  explicit Chameleon(const PolicyArgs& a) : ProfilingBase(a), budget_(a.budget) {
    if (period_ == 0)
      throw Error(Errc::invalid_argument, "chameleon: the profiling period must be >= 1 interval");
    if (budget_ < 2)
      throw Error(Errc::invalid_argument,
                  "chameleon: the profiling budget must be >= 2 configurations");
  }

  Decision decide(IntervalContext& ctx) override {
    profiling_ = ctx.info().index % period_ == 0;
    Decision d;
    d.config = profiling_ ? stream_.reference : current_;
    d.profiling = profiling_;
    ctx.trace()["profiling"] = profiling_ ? "online" : "no";
    return d;
  }

  void learn(IntervalContext& ctx, const Served&) override {
    if (!profiling_) return;
    const std::string& knob = stream_.knobs[round_ % stream_.knobs.size()].key;
    ++round_;
    // Candidates: the current configuration and those differing from it in `knob` only,
    // nearest on the ladder first, within the budget.
    std::vector<std::pair<std::size_t, const Configuration*>> cands;
    for (const auto& c : grid_) {
      bool same_elsewhere = true;
      for (const auto& s : c.settings())
        if (s.key != knob && s.index != current_.index(s.key)) same_elsewhere = false;
      if (!same_elsewhere) continue;
      const auto a = c.index(knob), b = current_.index(knob);
      cands.push_back({a > b ? a - b : b - a, &c});
    }
    std::stable_sort(cands.begin(), cands.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    if (cands.size() > budget_) cands.resize(budget_);
    double best = std::numeric_limits<double>::infinity();
    Configuration next = current_;
    for (const auto& [dist, c] : cands) {
      const double v = objective(measure(ctx, *c));
      if (v < best) best = v, next = *c;
    }
    current_ = next;  // applies from the next interval: the decision arrives late
    ctx.trace()["profiled"] = cands.size();
    ctx.trace()["knob"] = knob;
  }

  json options() const override {
    return {{"beta", beta_}, {"period", period_}, {"budget", budget_}, {"grid", grid_.size()}};
  }

 private:
  std::size_t budget_;
  bool profiling_ = false;
  std::size_t round_ = 0;
};

}  // namespace

std::unique_ptr<Policy> make_awstream(const PolicyArgs& a) { return std::make_unique<AWStream>(a); }
std::unique_ptr<Policy> make_chameleon(const PolicyArgs& a) {
  return std::make_unique<Chameleon>(a);
}

}  // namespace oneadapt::adapt
