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
//
// Under a bandwidth budget (docs/budgets.md) both follow AWStream's rule: the most accurate
// configuration they have profiled whose profiled bytes fit 0.9 x the interval's budget (none
// fits: the cheapest they know), checked before every interval; online profiling, which sends
// the interval at the reference quality, happens only when the reference's last measured bytes
// fit the budget (never charged past it); the offline prefix profiles regardless.
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
  double bytes = 0;  // payload bytes as profiled
};

constexpr double kBudgetMargin = 0.9;

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
    ref_bytes_ = static_cast<double>(ref.bytes + ref.header_bytes);
    Estimate e{o.accuracy,
               ref.bytes ? static_cast<double>(o.bytes) / static_cast<double>(ref.bytes) : 0, 1,
               static_cast<double>(o.bytes)};
    Estimate& k = known_[c];
    k = k.n == 0 ? e
                 : Estimate{0.5 * (k.accuracy + e.accuracy), 0.5 * (k.cost + e.cost), k.n + 1,
                            0.5 * (k.bytes + e.bytes)};
    return e;
  }
  // Whether online profiling may send the reference this interval: always without a budget,
  // under one only when the reference's last measured bytes fit it.
  bool may_profile(IntervalContext& ctx) const {
    const auto b = ctx.budget_bytes();
    return !b || ref_bytes_ <= 0 || ref_bytes_ <= *b;
  }
  // The budget rule: the most accurate of `pool` (every known configuration when empty) whose
  // profiled bytes fit kBudgetMargin x the budget; none fits: the cheapest. Ties: the cheaper.
  Configuration fit(double budget, const std::vector<Configuration>& pool) const {
    const Configuration* best = nullptr;
    const Configuration* cheapest = nullptr;
    auto consider = [&](const Configuration& c, const Estimate& e) {
      if (!cheapest || e.bytes < known_.at(*cheapest).bytes) cheapest = &c;
      if (e.bytes > kBudgetMargin * budget) return;
      if (!best) {
        best = &c;
        return;
      }
      const Estimate& b = known_.at(*best);
      if (e.accuracy > b.accuracy || (e.accuracy == b.accuracy && e.bytes < b.bytes)) best = &c;
    };
    if (pool.empty()) {
      for (const auto& [c, e] : known_) consider(c, e);
    } else {
      for (const auto& c : pool)
        if (auto it = known_.find(c); it != known_.end()) consider(it->first, it->second);
    }
    return best ? *best : cheapest ? *cheapest : current_;
  }

  double beta_;
  std::size_t period_;
  std::vector<Configuration> grid_;
  StreamSpec stream_;
  Configuration current_;
  std::map<Configuration, Estimate> known_;  // every configuration profiled, newest weighs 1/2
  double ref_bytes_ = 0;                     // the reference's bytes when last profiled
};

class AWStream final : public ProfilingBase {
 public:
  explicit AWStream(const PolicyArgs& a) : ProfilingBase(a), prefix_(a.prefix) {}

  Decision decide(IntervalContext& ctx) override {
    const std::size_t i = ctx.info().index;
    profiling_ =
        i < prefix_ || pareto_.empty() ||
        (period_ > 0 && since_ + 1 >= period_ && may_profile(ctx));  // one interval in `period`
    if (const auto b = ctx.budget_bytes(); b && !profiling_ && !pareto_.empty()) {
      current_ = fit(*b, pareto_);
      ctx.trace()["budget_choice"] = current_.str();
    }
    Decision d;
    d.config = profiling_ ? stream_.reference : current_;
    d.profiling = profiling_;
    ctx.trace()["profiling"] = profiling_ ? (i < prefix_ ? "offline" : "online") : "no";
    return d;
  }

  void learn(IntervalContext& ctx, const Served&) override {
    const std::size_t i = ctx.info().index;
    budgeted_ = ctx.budget_bytes().has_value();
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
    if (budgeted_) return;  // under a budget the choice is made before each interval (fit)
    double best = std::numeric_limits<double>::infinity();
    for (const auto& c : pareto_) {
      const double v = objective(profile_.at(c));
      if (v < best) best = v, current_ = c;
    }
  }

  std::size_t prefix_;
  bool profiling_ = false, budgeted_ = false;
  std::size_t since_ = 0;
  std::map<Configuration, Estimate> profile_;
  std::vector<Configuration> pareto_;
};

class Chameleon final : public ProfilingBase {
 public:
  explicit Chameleon(const PolicyArgs& a)
      : ProfilingBase(a), budget_(a.profile_budget), prefix_(a.prefix) {
    if (period_ == 0)
      throw Error(Errc::invalid_argument, "chameleon: the profiling period must be >= 1 interval");
    if (budget_ < 2)
      throw Error(Errc::invalid_argument,
                  "chameleon: the profiling budget (profile_budget) must be >= 2 configurations");
  }

  Decision decide(IntervalContext& ctx) override {
    // Under a budget it profiles every interval of the warm-up (its offline rounds, like
    // AWStream's prefix), then every `period` while the reference fits the budget.
    const std::size_t i = ctx.info().index;
    profiling_ = ctx.budget_bytes() ? i < prefix_ || (i % period_ == 0 && may_profile(ctx))
                                    : i % period_ == 0;
    if (const auto b = ctx.budget_bytes(); b && !profiling_ && !known_.empty()) {
      // The coordinate descent's choice while it fits; else the budget rule over what it knows.
      auto it = known_.find(current_);
      if (it == known_.end() || it->second.bytes > kBudgetMargin * *b) current_ = fit(*b, {});
      ctx.trace()["budget_choice"] = current_.str();
    }
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
    std::vector<Configuration> measured;
    for (const auto& [dist, c] : cands) {
      const double v = objective(measure(ctx, *c));
      measured.push_back(*c);
      if (v < best) best = v, next = *c;
    }
    // Under a budget: the most accurate candidate that fits (the same rule as AWStream's).
    if (const auto b = ctx.budget_bytes()) next = fit(*b, measured);
    current_ = next;  // applies from the next interval: the decision arrives late
    ctx.trace()["profiled"] = cands.size();
    ctx.trace()["knob"] = knob;
  }

  json options() const override {
    return {
        {"beta", beta_}, {"period", period_}, {"profile_budget", budget_}, {"grid", grid_.size()}};
  }

 private:
  std::size_t budget_, prefix_;
  bool profiling_ = false;
  std::size_t round_ = 0;
};

}  // namespace

std::unique_ptr<Policy> make_awstream(const PolicyArgs& a) { return std::make_unique<AWStream>(a); }
std::unique_ptr<Policy> make_chameleon(const PolicyArgs& a) {
  return std::make_unique<Chameleon>(a);
}

}  // namespace oneadapt::adapt
