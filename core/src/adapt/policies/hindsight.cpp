// Hindsight baselines over the evaluated grid (not deployable: they choose with the outcomes of
// every configuration of every interval, which only the grid evaluation knows):
//   best-static:  the one grid configuration minimising the objective over the whole stream;
//   oracle:       per interval, the grid configuration minimising the objective;
//   oracle-split: per interval, chosen on the first half of the samples and scored on the second
//                 half, so that per-interval metric noise is not mistaken for headroom
//                 (method.md section 8; contiguous halves keep a frame-rate knob's staleness in
//                 both). With one sample per interval it cannot split: comparisons skip it.
// All three choose on the scored intervals only (after the warm-up prefix).
// Objective: (1 - accuracy) + beta * bytes / bytes_reference. Served through the harness like
// every other policy: charged the same, replayed from the shared cache.
#include <limits>

#include "adapt/policies/policies.hpp"

namespace oneadapt::adapt {

namespace {

class Hindsight final : public Policy {
 public:
  enum class Kind { best_static, oracle, oracle_split };
  Hindsight(const PolicyArgs& a, Kind kind)
      : beta_(a.point),
        kind_(kind),
        grid_(a.grid),
        cache_(a.cache),
        intervals_(a.intervals),
        skip_(a.prefix) {
    if (!cache_ || grid_.empty() || intervals_ == 0)
      throw Error(Errc::internal, "a hindsight policy needs the evaluated grid");
  }

  void begin(const StreamSpec& stream) override {
    auto objective = [&](std::size_t i, const Configuration& c, bool even) {
      const Outcome* o = cache_->find(i, c);
      const auto* ref = cache_->reference(i);
      double acc = 1.0, cost = 1.0;
      if (c != stream.reference) {
        if (!o)
          throw Error(Errc::internal, "the grid evaluation has no outcome for " + c.str() +
                                          " in interval " + std::to_string(i));
        acc = even ? o->accuracy_first : o->accuracy;
        cost =
            ref && ref->bytes ? static_cast<double>(o->bytes) / static_cast<double>(ref->bytes) : 0;
      }
      return (1.0 - acc) + beta_ * cost;
    };
    choice_.assign(intervals_, grid_.front());
    if (kind_ == Kind::best_static) {
      double best = std::numeric_limits<double>::infinity();
      for (const auto& c : grid_) {
        double sum = 0;
        for (std::size_t i = std::min(skip_, intervals_ - 1); i < intervals_; ++i)
          sum += objective(i, c, false);
        if (sum < best) best = sum, choice_.assign(intervals_, c);
      }
    } else {
      for (std::size_t i = 0; i < intervals_; ++i) {
        double best = std::numeric_limits<double>::infinity();
        for (const auto& c : grid_) {
          const double v = objective(i, c, kind_ == Kind::oracle_split);
          if (v < best) best = v, choice_[i] = c;
        }
      }
    }
  }

  Decision decide(IntervalContext& ctx) override {
    const std::size_t i = ctx.info().index;
    if (i >= choice_.size())
      throw Error(Errc::internal, "a hindsight policy ran past the evaluated grid");
    Decision d;
    d.config = choice_[i];
    return d;
  }

  double scored_accuracy(const Outcome& o) const override {
    return kind_ == Kind::oracle_split ? o.accuracy_second : o.accuracy;
  }
  nlohmann::json options() const override { return {{"beta", beta_}, {"grid", grid_.size()}}; }

 private:
  double beta_;
  Kind kind_;
  std::vector<Configuration> grid_;
  const OutcomeCache* cache_;
  std::size_t intervals_, skip_;
  std::vector<Configuration> choice_;
};

}  // namespace

std::unique_ptr<Policy> make_best_static(const PolicyArgs& a) {
  return std::make_unique<Hindsight>(a, Hindsight::Kind::best_static);
}
std::unique_ptr<Policy> make_oracle(const PolicyArgs& a) {
  return std::make_unique<Hindsight>(a, Hindsight::Kind::oracle);
}
std::unique_ptr<Policy> make_oracle_split(const PolicyArgs& a) {
  return std::make_unique<Hindsight>(a, Hindsight::Kind::oracle_split);
}

}  // namespace oneadapt::adapt
