// Budgets and step control (issue 16) on synthetic sources whose right answer is known (the
// fixture-shift source and fixture-spots task, tests/fixtures/plugins/shift.cpp): the budget
// trace and its config keys, a budget step, a shift of the optimum at a known interval,
// detections that vanish below some quality, and the budget rules of the baselines.
#include <ATen/ATen.h>

#include <doctest/doctest.h>  // after ATen: glog's CHECK must not replace doctest's (stack.md G2)

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "adapt/budget.hpp"
#include "adapt/grid.hpp"
#include "adapt/harness.hpp"
#include "adapt/policies/policies.hpp"
#include "plugin_registry.hpp"
#include "run_config.hpp"
#include "../guard.hpp"
#include "../support.hpp"
#include "shift_support.hpp"

using namespace oneadapt;
using namespace oneadapt::adapt;
namespace fs = std::filesystem;
using json = nlohmann::json;
using test_support::record_lines;
using test_support::temp_dir;

namespace {

using test_support::shift_plugins;

host::HostSource shift_source(int intervals, int shift_at, double before, double after) {
  host::ComponentSettings s;
  s.params = {{"intervals", std::to_string(intervals)},
              {"shift_at", std::to_string(shift_at)},
              {"before", std::to_string(before)},
              {"after", std::to_string(after)}};
  return shift_plugins().open_source("fixture-shift", "", s, 1.0);
}

host::HostTask spots(double threshold) {
  host::ComponentSettings s;
  s.params = {{"threshold", std::to_string(threshold)}};
  return shift_plugins().create_task("fixture-spots", s, {});
}

// Runs `name` over `source` with `args` (and a budget), returning the records.
std::vector<json> run(const std::string& name, host::HostSource source, host::HostTask& task,
                      const PolicyArgs& args, const std::optional<BudgetTrace>& budget,
                      const std::string& tag, RunSummary* summary = nullptr,
                      OutcomeCache* cache = nullptr) {
  const auto& info = find_policy(name);
  auto policy = info.make(args);
  HarnessOptions o;
  o.out_dir = temp_dir(tag);
  o.budget = budget;
  o.budget_warmup = 3;
  o.backward_weight = 1.0;
  o.cache = cache;
  Harness h(task, o);
  std::ostringstream progress;
  RunSummary s =
      h.run(source, *policy, {info.name, info.deployable, point_name(info.points), args.point},
            progress, false);
  if (summary) *summary = s;
  auto recs = record_lines(o.out_dir);
  fs::remove_all(o.out_dir);
  return recs;
}

double quality(const json& rec) { return rec.at("config").at("quality").get<double>(); }

BudgetTrace trace(const std::string& text) { return BudgetTrace::parse(text, "test.csv"); }

}  // namespace

TEST_CASE("budget trace: a step function of time, integrated over each interval") {
  const BudgetTrace c = BudgetTrace::constant(8);
  CHECK(c.bytes_over(0, 1) == doctest::Approx(1000));  // 8 kbit/s for 1 s = 1000 bytes
  CHECK(c.bytes_over(5, 0.5) == doctest::Approx(500));
  CHECK(c.describe() == "constant 8 kbit/s");
  const BudgetTrace t = trace("# a comment\nt_seconds,kbps\n2,16\n 4 , 8\n\n10,24\n");
  CHECK(t.steps().size() == 3);
  CHECK(t.kbps_at(0) == 16);  // before the first row: the first row's rate
  CHECK(t.kbps_at(3.9) == 16);
  CHECK(t.kbps_at(4) == 8);
  CHECK(t.kbps_at(100) == 24);
  CHECK(t.bytes_over(3.5, 1) == doctest::Approx((16 * 0.5 + 8 * 0.5) * 125));  // a step inside
  CHECK(t.bytes_over(9, 2) == doctest::Approx((8 + 24) * 125));
  CHECK(t.describe() == "trace test.csv (3 steps, 8-24 kbit/s)");
}

TEST_CASE("budget trace: every malformed file is one error naming the file and line") {
  auto fails = [](const std::string& text, const std::string& what) {
    CHECK_THROWS_WITH_AS(trace(text), doctest::Contains(what.c_str()), Error);
  };
  fails("", "test.csv: the budget trace has no rows");
  fails("t_seconds,kbps\n", "test.csv: the budget trace has no rows");
  fails("0,100\n1,2,3\n", "test.csv:2: expected two comma-separated fields");
  fails("0,100\n5,100\n5,200\n", "test.csv:3: time 5 does not increase");
  fails("0,-4\n", "test.csv:1: rate -4 kbit/s is not positive");
  fails("0,0\n", "test.csv:1: rate 0 kbit/s is not positive");
  fails("-1,100\n", "test.csv:1: time -1 is negative");
  fails("0,nan\n", "test.csv:1: '0,nan' is not two finite numbers");
  fails("0,100\nx,y\n", "test.csv:2: 'x,y' is not two finite numbers");  // a header only first
  fails("0,1e400\n", "not two finite numbers");
  fails("0;100\n", "test.csv:1: expected two comma-separated fields, got '0;100'");
  fails(std::string("0,1\x01\n"), "'0,1?' is not two finite numbers");
  CHECK_THROWS_WITH_AS(BudgetTrace::load("/nonexistent/trace.csv"),
                       "/nonexistent/trace.csv: no such budget trace (a CSV file)", Error);
  CHECK_THROWS_WITH_AS(BudgetTrace::constant(0), doctest::Contains("is not a positive"), Error);
  CHECK_THROWS_WITH_AS(BudgetTrace::constant(NAN), doctest::Contains("is not a positive"), Error);
}

TEST_CASE("config: [budget] takes a rate or a trace, never both, and the flags replace it") {
  const fs::path dir = temp_dir("budget-config");
  std::ofstream(dir / "t.csv") << "0,100\n10,50\n";
  const std::string t = (dir / "t.csv").string();
  RunConfig c = load_run_config("", {"budget.kbps=250"});
  REQUIRE(c.run.budget);
  CHECK(c.run.budget->describe() == "constant 250 kbit/s");
  CHECK(c.run.budget_warmup == 3);
  c = load_run_config("", {"budget.trace=\"" + t + "\"", "budget.warmup=5"});
  REQUIRE(c.run.budget);
  CHECK(c.run.budget->steps().size() == 2);
  CHECK(c.run.budget_warmup == 5);
  // What --budget-trace / --budget turn into: the other form is cleared.
  c = load_run_config("", {"budget.kbps=250", "budget.trace=\"" + t + "\"", "budget.kbps=0"});
  CHECK(c.run.budget->steps().size() == 2);
  CHECK_FALSE(load_run_config("", {}).run.budget);
  CHECK_THROWS_WITH_AS(load_run_config("", {"budget.kbps=250", "budget.trace=\"" + t + "\""}),
                       doctest::Contains("budget: give one of budget.kbps"), Error);
  CHECK_THROWS_WITH_AS(load_run_config("", {"budget.kbps=-3"}),
                       doctest::Contains("budget.kbps: must be a rate"), Error);
  CHECK_THROWS_WITH_AS(load_run_config("", {"budget.rate=3"}),
                       doctest::Contains("budget.rate: unknown key"), Error);
  CHECK_THROWS_WITH_AS(load_run_config("", {"budget.trace=\"/nonexistent/b.csv\""}),
                       doctest::Contains("/nonexistent/b.csv: no such budget trace"), Error);
  CHECK_THROWS_WITH_AS(load_run_config("", {"policy.budget_margin=1.5"}),
                       doctest::Contains("policy.budget_margin: must be in (0, 1]"), Error);
  CHECK_THROWS_WITH_AS(load_run_config("", {"policy.step_control=3"}),
                       doctest::Contains("policy.step_control: expected true or false"), Error);
  CHECK_THROWS_WITH_AS(load_run_config("", {"policy.budget=3"}),
                       doctest::Contains("policy.budget: unknown key"), Error);
  fs::remove_all(dir);
}

TEST_CASE("a budget step: OneAdapt's bytes fall under it within a few intervals, then rise") {
  // 8 kbit/s is 1000 bytes per interval (everything fits); from t = 10 s 2 kbit/s, 250 bytes:
  // only quality 0.4 (160 bytes) and 0.2 fit; from t = 25 s 8 kbit/s again.
  auto task = spots(0.55);
  PolicyArgs args;
  args.point = 0.05;
  args.oneadapt.beta = 0.05;
  RunSummary s;
  const auto recs = run("oneadapt", shift_source(40, 0, 1.0, 1.0), task, args,
                        trace("0,8\n10,2\n25,8\n"), "budget-step", &s);
  REQUIRE(recs.size() == 40);
  for (std::size_t i = 12; i < 25; ++i) {
    CAPTURE(i);
    CHECK(recs[i].at("bytes").get<double>() <= recs[i].at("budget_bytes").get<double>());
  }
  int late_over = 0;
  for (std::size_t i = 10; i < 12; ++i) late_over += recs[i].at("over_budget").get<bool>();
  CHECK(late_over <= 1);
  // Back at 8 kbit/s it climbs again (one value per interval under a budget).
  CHECK(quality(recs[39]) >= 0.8);
  CHECK(s.budget.intervals == 37);
  CHECK(static_cast<double>(s.budget.intervals_over) <= 0.05 * 37);
  CHECK(s.budget.intervals_infeasible == 0);
  // A budget under the cheapest configuration's 40 bytes: reported, never hidden.
  const auto low = run("oneadapt", shift_source(12, 0, 1.0, 1.0), task, args,
                       BudgetTrace::constant(0.1), "budget-infeasible", &s);
  CHECK(low.back().at("budget_infeasible").get<bool>());
  CHECK(quality(low.back()) == doctest::Approx(0.2));
  CHECK(s.budget.intervals_infeasible >= 8);
}

TEST_CASE("the optimum shifts at a known interval: OneAdapt follows within a few intervals") {
  // rec of quality q on the spot is (b - 0.5)(1 - q), bytes 1000 q^2: with the normaliser
  // calibrated on the first scene, the objective's optimum is q* = (b - 0.5) / (2 beta b0)
  // with b0 = 0.6 the first spot: q* = 0.28 before (b = 0.6, at beta 0.3), q* = 1.4 (the
  // best value) after the spot brightens to 1.0 at interval 15.
  auto task = spots(0.52);
  PolicyArgs args;
  args.point = 0.3;
  args.oneadapt.beta = 0.3;
  const auto recs =
      run("oneadapt", shift_source(40, 15, 0.6, 1.0), task, args, std::nullopt, "shift");
  REQUIRE(recs.size() == 40);
  double before = 0, after = 0;
  for (std::size_t i = 10; i < 15; ++i) before += quality(recs[i]) / 5;
  for (std::size_t i = 20; i < 40; ++i) after += quality(recs[i]) / 20;
  CHECK(before <= 0.5);
  CHECK(after >= 0.8);
  std::size_t reached = 40;
  for (std::size_t i = 15; i < 40 && reached == 40; ++i)
    if (quality(recs[i]) >= 0.8) reached = i;
  CHECK(reached <= 15 + 5);
}

TEST_CASE("detections vanish below some quality: OneAdapt does not stay there") {
  // The spot (1.0) falls under the threshold (0.62) at quality 0.2 only: there the proxy has
  // no gradient at all. Started at 0.2 with a large beta, the plain method stays at 0.2 for
  // ever (nothing pulls it back); step control climbs out and does not return for long.
  auto task = spots(0.62);
  PolicyArgs args;
  args.point = 3.0;
  args.oneadapt.beta = 3.0;
  args.oneadapt.start = {{"quality", 0.0}};
  args.oneadapt.step_control = false;
  const auto plain =
      run("oneadapt", shift_source(30, 0, 1.0, 1.0), task, args, std::nullopt, "vanish-plain");
  int plain_low = 0;
  for (const auto& r : plain) plain_low += quality(r) < 0.3;
  CHECK(plain_low == 30);
  args.oneadapt.step_control = true;
  const auto recs =
      run("oneadapt", shift_source(30, 0, 1.0, 1.0), task, args, std::nullopt, "vanish");
  int low = 0;
  double acc = 0;
  for (std::size_t i = 5; i < 30; ++i) {
    low += quality(recs[i]) < 0.3;
    acc += recs[i].at("accuracy").get<double>() / 25;
  }
  CHECK(low <= 5);
  CHECK(acc >= 0.8);
}

TEST_CASE("under a budget the baselines choose by their budget rules") {
  auto task = spots(0.62);  // quality 0.2 sees nothing (accuracy 0), 0.4 and above all (1)
  OutcomeCache cache;
  auto configs = all_configurations(shift_source(1, 0, 1, 1).knobs());
  HarnessOptions o;
  o.cache = &cache;
  o.max_intervals = 30;
  std::size_t n = 0;
  {
    Harness h(task, o);
    std::ostringstream progress;
    auto source = shift_source(30, 0, 1, 1);
    n = h.evaluate(source, configs, progress);
  }
  REQUIRE(n == 30);
  const BudgetTrace budget = trace("0,8\n10,2\n");  // 1000 bytes, then 250 from t = 10 s
  PolicyArgs args;
  args.point = 0.1;
  args.grid = configs;
  args.cache = &cache;
  args.intervals = n;
  args.prefix = 3;
  args.budget = &budget;
  RunSummary s;
  // best-static (hindsight): the most accurate configuration over budget in at most 5 % of the
  // scored intervals (ties: the cheaper): quality 0.4 (160 bytes) fits them all.
  auto recs = run("best-static", shift_source(30, 0, 1, 1), task, args, budget, "bs", &s, &cache);
  CHECK(quality(recs[5]) == doctest::Approx(0.4));
  CHECK(s.budget.intervals_over == 0);
  // oracle: the most accurate configuration within each interval's budget, never the blind 0.2.
  recs = run("oracle", shift_source(30, 0, 1, 1), task, args, budget, "oracle", &s, &cache);
  for (const auto& r : recs) CHECK(quality(r) == doctest::Approx(0.4));
  CHECK(s.budget.intervals_over == 0);
  // AWStream-style: the most accurate profiled configuration under 0.9 x the budget; online
  // profiling (the reference, 1000 bytes) only while the reference fits.
  recs = run("awstream", shift_source(30, 0, 1, 1), task, args, budget, "aw", &s, &cache);
  for (std::size_t i = 11; i < 30; ++i) {
    CAPTURE(i);
    CHECK(recs[i].at("bytes").get<double>() <= recs[i].at("budget_bytes").get<double>());
  }
  CHECK(quality(recs[20]) == doctest::Approx(0.4));
  recs = run("chameleon", shift_source(30, 0, 1, 1), task, args, budget, "ch", &s, &cache);
  for (std::size_t i = 11; i < 30; ++i) {
    CAPTURE(i);
    CHECK(recs[i].at("bytes").get<double>() <= recs[i].at("budget_bytes").get<double>());
  }
}

TEST_CASE("a quiet scene does not re-anchor the normaliser downwards") {
  // The spot dims from 1.5 to 0.56 at interval 8 (threshold 0.52): the proxy falls from about
  // 3.9 to 0.16 while a gradient remains, and the saliency-weighted level falls under 0.4 of
  // the calibrated one. Nothing to detect is not a new scene: with the rule (the default) the
  // normaliser keeps its calibrated value; with proxy_drop = 0 (which also turns the rule off)
  // it re-anchors to the dim scene, as before the rule (docs/changing-content.md).
  auto task = spots(0.52);
  PolicyArgs args;
  args.point = 0.03;
  args.oneadapt.beta = 0.03;  // stays near the best quality: the configuration holds still
  auto reanchors_after_shift = [&](const std::vector<json>& recs) {
    int n = 0;
    for (std::size_t i = 8; i < recs.size(); ++i) n += recs[i].at("trace").contains("reanchor");
    return n;
  };
  const auto with_rule =
      run("oneadapt", shift_source(24, 8, 1.5, 0.56), task, args, std::nullopt, "quiet");
  REQUIRE(with_rule.size() == 24);
  CHECK(reanchors_after_shift(with_rule) == 0);
  const double calibrated = with_rule[1].at("trace").at("norm").get<double>();
  CHECK(with_rule[20].at("trace").at("norm").get<double>() == doctest::Approx(calibrated));
  args.oneadapt.proxy_drop = 0;
  const auto without =
      run("oneadapt", shift_source(24, 8, 1.5, 0.56), task, args, std::nullopt, "quiet-off");
  CHECK(reanchors_after_shift(without) >= 1);
}
