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
// Under a budget (docs/budgets.md) they choose by accuracy within it instead: best-static the
// most accurate configuration whose bytes (payload and header) exceed the interval's budget in
// at most `budget_tolerance` of the scored intervals (none: the cheapest overall); oracle and
// oracle-split the most accurate configuration within each interval's budget (none: the cheapest).
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
        skip_(a.prefix),
        budget_(a.budget),
        tolerance_(a.budget_tolerance) {
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
    if (budget_) {
      choose_within_budget(stream);
      return;
    }
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
  // (accuracy, bytes with the header) of `c` in interval i; `even`: on the first half.
  std::pair<double, double> outcome(std::size_t i, const Configuration& c, bool even,
                                    const StreamSpec& stream) const {
    const auto* ref = cache_->reference(i);
    if (c == stream.reference) return {1.0, static_cast<double>(ref->bytes + ref->header_bytes)};
    const Outcome* o = cache_->find(i, c);
    if (!o)
      throw Error(Errc::internal, "the grid evaluation has no outcome for " + c.str() +
                                      " in interval " + std::to_string(i));
    return {even ? o->accuracy_first : o->accuracy,
            static_cast<double>(o->bytes + o->header_bytes)};
  }
  double budget_of(std::size_t i) const {
    const auto* ref = cache_->reference(i);
    return budget_->bytes_over(ref->t_start, ref->duration);
  }
  void choose_within_budget(const StreamSpec& stream) {
    const std::size_t first = std::min(skip_, intervals_ - 1);
    if (kind_ == Kind::best_static) {
      const double n = static_cast<double>(intervals_ - first);
      double best_acc = -1, best_bytes = 0,
             cheapest_bytes = std::numeric_limits<double>::infinity();
      const Configuration* best = nullptr;
      const Configuration* cheapest = nullptr;
      for (const auto& c : grid_) {
        double acc = 0, bytes = 0, over = 0;
        for (std::size_t i = first; i < intervals_; ++i) {
          const auto [a, b] = outcome(i, c, false, stream);
          acc += a, bytes += b;
          over += b > budget_of(i);
        }
        if (bytes < cheapest_bytes) cheapest_bytes = bytes, cheapest = &c;
        if (over > tolerance_ * n) continue;
        if (acc > best_acc || (acc == best_acc && bytes < best_bytes))
          best_acc = acc, best_bytes = bytes, best = &c;
      }
      choice_.assign(intervals_, best ? *best : *cheapest);
      return;
    }
    for (std::size_t i = 0; i < intervals_; ++i) {
      const double budget = budget_of(i);
      double best_acc = -1, best_bytes = 0,
             cheapest_bytes = std::numeric_limits<double>::infinity();
      const Configuration* best = nullptr;
      const Configuration* cheapest = nullptr;
      for (const auto& c : grid_) {
        const auto [a, b] = outcome(i, c, kind_ == Kind::oracle_split, stream);
        if (b < cheapest_bytes) cheapest_bytes = b, cheapest = &c;
        if (b > budget) continue;
        if (a > best_acc || (a == best_acc && b < best_bytes))
          best_acc = a, best_bytes = b, best = &c;
      }
      choice_[i] = best ? *best : *cheapest;
    }
  }

  double beta_;
  Kind kind_;
  std::vector<Configuration> grid_;
  const OutcomeCache* cache_;
  std::size_t intervals_, skip_;
  const BudgetTrace* budget_;
  double tolerance_;
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
