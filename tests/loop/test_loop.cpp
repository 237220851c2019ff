// The adaptation loop and the video pipeline: relaxation, Adam, the objective; the detection
// plugin's NMS and F1 through the host (with a fake detector); bytes along the video knobs'
// ladders on real frames; OneAdapt on a real 5-second excerpt of vtest.avi.
#include <ATen/ATen.h>

#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "adapt/accountant.hpp"
#include "adapt/grid.hpp"
#include "adapt/harness.hpp"
#include "adapt/inference.hpp"
#include "adapt/reducto.hpp"
#include "adapt/regions.hpp"
#include "adapt/spatial.hpp"
#include "adapt/relaxation.hpp"
#include "adapt/savings.hpp"
#include "adapt/runner.hpp"
#include "assets.hpp"
#include "engine/engine.hpp"
#include "plugin_registry.hpp"
#include "../support.hpp"

using namespace oneadapt;
using namespace oneadapt::adapt;
namespace fs = std::filesystem;
using json = nlohmann::json;
using test_support::plugins;
using test_support::record_lines;
using test_support::temp_dir;

namespace {

// A detector that returns fixed NanoDet-shaped outputs (plus 0 * input, so gradients flow).
class FakeNanoDet final : public Model {
 public:
  explicit FakeNanoDet(std::vector<at::Tensor> outputs) : out_(std::move(outputs)) {
    in_ = {{"input_1", {1, 3, 416, 416}, "float32"}};
    const int64_t anchors[3] = {2704, 676, 169};
    for (int s = 0; s < 3; ++s)
      out_spec_.push_back({"cls" + std::to_string(s), {1, anchors[s], 80}, "float32"});
    for (int s = 0; s < 3; ++s)
      out_spec_.push_back({"box" + std::to_string(s), {1, anchors[s], 44}, "float32"});
  }
  std::string format() const override { return "fake"; }
  const std::vector<TensorSpec>& inputs() const override { return in_; }
  const std::vector<TensorSpec>& outputs() const override { return out_spec_; }
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& inputs) override {
    std::vector<at::Tensor> r;
    for (const auto& o : out_) r.push_back(o + 0 * inputs[0].sum());
    return r;
  }

 private:
  std::vector<at::Tensor> out_;
  std::vector<TensorSpec> in_, out_spec_;
};

// NanoDet-shaped outputs with the given (anchor on the stride-8 grid, class, score) detections;
// every box is 4 bins (32 px) on each side of its cell centre.
std::vector<at::Tensor> nanodet_outputs(const std::vector<std::tuple<int, int, float>>& dets) {
  const int64_t anchors[3] = {2704, 676, 169};
  std::vector<at::Tensor> out;
  for (int s = 0; s < 3; ++s) out.push_back(at::full({1, anchors[s], 80}, 0.01f));
  for (int s = 0; s < 3; ++s) {
    at::Tensor box = at::full({1, anchors[s], 4, 11}, -20.f);
    box.select(3, 4).fill_(20.f);  // all mass on bin 4
    out.push_back(box.view({1, anchors[s], 44}));
  }
  for (auto [anchor, cls, score] : dets) out[0][0][anchor][cls] = score;
  return out;
}

host::HostTask detection_with(const std::vector<at::Tensor>& outputs) {
  std::map<std::string, std::shared_ptr<Model>> models{
      {"detector", std::make_shared<FakeNanoDet>(outputs)}};
  return plugins().create_task("detection", {}, models);
}

std::vector<ResultPtr> detect(const std::vector<std::tuple<int, int, float>>& dets) {
  auto task = detection_with(nanodet_outputs(dets));
  return task.decode(task.infer(at::zeros({1, 3, 48, 64})));
}

}  // namespace

TEST_CASE("relaxation: theta and ladder index are inverse, rounding modes") {
  KnobRelaxation k{11};
  CHECK(k.delta() == doctest::Approx(0.1));
  for (std::size_t i = 0; i < 11; ++i) {
    CHECK(k.applied(k.theta_of(i), Rounding::hq) == i);
    CHECK(k.applied(k.theta_of(i), Rounding::nearest) == i);
  }
  CHECK(k.applied(1.0, Rounding::hq) == 0);
  CHECK(k.applied(0.0, Rounding::hq) == 10);  // theta = 0 applies the cheapest value
  CHECK(k.applied(0.86, Rounding::hq) == 1);  // position 1.4: HQ neighbour
  CHECK(k.applied(0.86, Rounding::nearest) == 1);
  CHECK(k.applied(0.84, Rounding::nearest) == 2);  // position 1.6
  CHECK(k.pair_hq(1.0) == 0);
  CHECK(k.pair_hq(0.86) == 1);
  CHECK(k.pair_hq(0.0) == 9);  // the last pair
  std::mt19937 rng(3);
  int lq = 0;
  for (int i = 0; i < 2000; ++i)
    lq += k.applied(0.87, Rounding::stochastic, &rng) == 2;  // position 1.3
  CHECK(lq / 2000.0 == doctest::Approx(0.3).epsilon(0.1));
  CHECK(KnobRelaxation{1}.applied(0.3, Rounding::hq) == 0);
  CHECK_THROWS_AS(parse_rounding("up"), Error);
}

TEST_CASE("Adam with betas (0.5, 0.5) steps about lr in the gradient's sign") {
  Adam a(0.3);
  CHECK(a.step(0.004) == doctest::Approx(0.3).epsilon(1e-3));  // first step: lr * sign(g)
  CHECK(a.step(0.004) == doctest::Approx(0.3).epsilon(1e-3));
  CHECK(a.step(-0.004) < 0.3);  // a sign change slows it down
  Adam b(0.3);
  CHECK(b.step(-5.0) == doctest::Approx(-0.3).epsilon(1e-3));
  CHECK(b.t() == 1);
}

TEST_CASE("objective: rec over its normaliser plus beta times the bytes ratio") {
  CHECK(objective(0.2, 0.1, 5000, 10000, 0.3) == doctest::Approx(2.0 + 0.15));
  CHECK(objective(0.2, 0.0, 5000, 10000, 0.0) ==
        doctest::Approx(0.2));  // no normaliser yet: raw rec
  CHECK(objective(0.0, 1.0, 10000, 10000, 1.0) == doctest::Approx(1.0));
}

TEST_CASE("detection: class-aware NMS keeps one box per object and class") {
  // Anchors 1000 and 1001 are neighbouring cells (8 px apart, boxes 64 px wide): IoU 0.78.
  auto r = detect({{1000, 0, 0.9f}, {1001, 0, 0.8f}, {1001, 2, 0.7f}, {2000, 0, 0.6f}});
  REQUIRE(r.size() == 1);
  CHECK(r[0]->summary() == "1 car, 2 person");  // 1001 survives as a car, not as a person
  // Classes outside the classes of interest never count (class 14 = bird).
  CHECK(detect({{1000, 14, 0.9f}})[0]->summary() == "nothing");
}

TEST_CASE("detection: per-frame F1 with one-to-one matching, empty frames") {
  auto task = detection_with(nanodet_outputs({}));
  auto both = detect({{1000, 0, 0.9f}, {2000, 0, 0.8f}});
  auto one = detect({{1000, 0, 0.9f}});
  auto shifted = detect({{1000, 0, 0.9f}, {2000, 2, 0.8f}});  // right place, wrong class
  auto empty = detect({});
  CHECK(task.accuracy(both, both) == 1.0);
  CHECK(task.accuracy(one, both) == doctest::Approx(2.0 / 3.0));  // TP 1, FN 1
  CHECK(task.accuracy(shifted, both) == doctest::Approx(0.5));    // TP 1, FP 1, FN 1
  CHECK(task.accuracy(empty, empty) == 1.0);                      // empty/empty scores 1
  CHECK(task.accuracy(empty, one) == 0.0);
  // Two detections cannot both match one reference box.
  auto twice = detect({{1000, 0, 0.9f}, {1300, 0, 0.85f}});
  CHECK(task.accuracy(twice, one) == doctest::Approx(2.0 / 3.0));
  // Below tau a detection is not counted.
  CHECK(task.accuracy(detect({{1000, 0, 0.45f}}), empty) == 1.0);
}

TEST_CASE("detection: the proxy is differentiable and grows with confidence") {
  auto low = detection_with(nanodet_outputs({{1000, 0, 0.55f}}));
  auto high = detection_with(nanodet_outputs({{1000, 0, 0.75f}}));
  at::Tensor x = at::zeros({1, 3, 48, 64}).requires_grad_(true);
  at::Tensor p_low = low.proxy(low.infer(x));
  at::Tensor p_high = high.proxy(high.infer(x));
  CHECK(p_high.item<double>() > p_low.item<double>());
  CHECK(p_low.item<double>() == doctest::Approx(1.0 / (1.0 + std::exp(-20 * 0.05))).epsilon(1e-4));
  CHECK(p_low.requires_grad());
}

TEST_CASE("video: bytes fall along the QP and resolution ladders on real frames") {
  auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  IntervalInfo info;
  REQUIRE(source.next_interval(info));
  auto knobs = source.knobs();
  REQUIRE(knobs.size() == 3);
  CHECK(knobs[2].values.size() == 4);  // 10 fps: 10 5 2 1
  at::Tensor G = source.original();
  CHECK(G.sizes() == at::IntArrayRef({10, 3, 576, 768}));
  for (std::size_t k : {std::size_t{0}, std::size_t{1}}) {
    std::uint64_t previous = UINT64_MAX;
    for (std::size_t i = 0; i < knobs[k].values.size(); i += (k == 1 ? 2 : 3)) {
      std::vector<std::size_t> idx{0, 0, 0};
      idx[k] = i;
      Rendering r = source.render(Configuration::at_indices(knobs, idx));
      MESSAGE(knobs[k].key << " = " << knobs[k].values[i].label << ": " << r.bytes << " bytes");
      CHECK(r.input.sizes() == G.sizes());
      CHECK(r.bytes < previous);
      previous = r.bytes;
    }
  }
  // Frame rate: 1 of every 5 frames sent, the others repeat it; not counted as compute.
  Rendering r = source.render(Configuration::at_indices(knobs, {0, 0, 2}));
  CHECK(r.fresh == std::vector<std::uint8_t>{1, 0, 0, 0, 0, 1, 0, 0, 0, 0});
  CHECK(r.compute_units == 2);
  CHECK(r.input[3].equal(r.input[0]));
  // A probe: real bytes, only the asked sample.
  Rendering p = source.probe(Configuration::at_indices(knobs, {0, 0, 2}), 9);
  CHECK(p.bytes == r.bytes);
  CHECK(p.input.size(0) == 1);
  CHECK(p.input[0].equal(r.input[9]));
  // Saliency: one value per 16x16 macroblock.
  at::Tensor s = source.saliency(at::randn({3, 576, 768}));
  CHECK(s.sizes() == at::IntArrayRef({1, 576, 768}));
  CHECK(s[0][0][0].item<float>() == s[0][15][15].item<float>());
}

TEST_CASE(
    "detection: NanoDet streams batched in one pass equal each on its own, frames of other "
    "sizes and more than one pass included") {
  auto model = engine::load_model(asset_path("nanodet/nanodet.json"));
  std::vector<host::HostTask> tasks;
  for (int i = 0; i < 3; ++i)
    tasks.push_back(plugins().create_task("detection", {}, {{"detector", model}}));
  CHECK(!tasks[0].batch_key().empty());
  CHECK(tasks[0].batch_key() == tasks[2].batch_key());
  auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  IntervalInfo info;
  REQUIRE(source.next_interval(info));
  at::Tensor frames = source.render(source.reference()).input;  // 10 frames, 768 x 576
  REQUIRE(frames.size(0) >= 6);
  // Stream 0: six frames (with stream 1's, more than the 8 frames of one pass); stream 1:
  // three frames at half size; stream 2: one frame, DNNGrad asked by streams 0 and 2.
  std::vector<at::Tensor> xs = {
      frames.narrow(0, 0, 6),
      at::upsample_bilinear2d(frames.narrow(0, 3, 3), {288, 384}, false),
      frames.narrow(0, 5, 1)};
  const std::vector<bool> grad = {true, false, true};
  std::vector<host::HostTask*> who = {&tasks[0], &tasks[1], &tasks[2]};
  auto batched = infer_samples_batch(who, xs, {{}, {}, {}}, grad);
  for (std::size_t s = 0; s < 3; ++s) {
    auto alone = infer_samples(tasks[s], xs[s], {}, grad[s]);
    REQUIRE(batched[s].results.size() == alone.results.size());
    for (std::size_t k = 0; k < alone.results.size(); ++k)
      CHECK(batched[s].results[k]->summary() == alone.results[k]->summary());
    CHECK(tasks[s].accuracy(batched[s].results, alone.results) == doctest::Approx(1.0));
    if (grad[s]) {
      CHECK(batched[s].proxy == doctest::Approx(alone.proxy).epsilon(1e-4));
      const double rel = (batched[s].grad - alone.grad).norm().item<double>() /
                         alone.grad.norm().item<double>();
      MESSAGE("stream " << s << ": relative gradient difference " << rel);
      CHECK(rel < 1e-3);
    }
  }
}

namespace {

RunSummary run_excerpt(const std::string& name, double beta, fs::path& out,
                       std::size_t intervals = 5) {
  auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  auto model = engine::load_model(asset_path("nanodet/nanodet.json"));
  auto task = plugins().create_task("detection", {}, {{"detector", model}});
  RunSpec spec;
  spec.oneadapt.beta = beta;
  spec.max_intervals = intervals;
  out = temp_dir(name);
  spec.out_dir = out;
  std::ostringstream progress;
  return run_experiment(source, task, spec, progress, false);
}

// The schema documented in docs/records.md.
void check_record_schema(const json& r) {
  for (const char* k : {"interval", "t_start", "duration", "bytes", "bytes_ref", "frames_inferred",
                        "frames_ref", "compute", "compute_ref", "accuracy", "accuracy_first",
                        "accuracy_second", "proxy", "passes"})
    CHECK_MESSAGE((r.contains(k) && r[k].is_number()), "record field " << k);
  for (const char* k :
       {"config", "config_index", "charges", "trace", "wall_ms", "render_stages_ms"})
    CHECK_MESSAGE((r.contains(k) && r[k].is_object()), "record field " << k);
  CHECK(r["config_str"].is_string());
  CHECK(r["policy"] == "oneadapt");
  for (const char* k : {"norm", "bytes_norm"}) CHECK(r["trace"][k].is_number());
  for (const char* k : {"resolution", "qp", "fps"}) {
    CHECK(r["config"][k].is_number());
    CHECK(r["trace"]["theta"][k].is_number());
    CHECK(r["trace"]["accgrad"][k].is_number());
  }
  for (const char* k :
       {"payload_bytes", "header_bytes", "reference_bytes", "feedback_bytes", "source_renders",
        "server_renders", "forwards", "profiling_forwards", "backward_passes", "backward_units"})
    CHECK_MESSAGE(r["charges"][k].is_number(), "charges field " << k);
  CHECK(r["bytes"].get<double>() ==
        r["charges"]["payload_bytes"].get<double>() + r["charges"]["header_bytes"].get<double>());
  for (const char* k : {"decode", "render", "forward", "probe", "backward", "update", "reference"})
    CHECK(r["wall_ms"][k].is_number());
  CHECK(r["accuracy"].get<double>() >= 0);
  CHECK(r["accuracy"].get<double>() <= 1);
}

void check_summary_schema(const json& s) {
  for (const char* k :
       {"intervals", "accuracy_mean", "bytes_total", "bytes_ref_total", "bytes_ratio",
        "frames_inferred_total", "frames_ref_total", "compute_total", "compute_ref_total",
        "backward_weight", "wall_s", "overhead_fraction", "beta"})
    CHECK_MESSAGE((s.contains(k) && s[k].is_number()), "summary field " << k);
  for (const char* k : {"status", "policy", "final_config"})
    CHECK_MESSAGE(s[k].is_string(), "summary field " << k);
  for (const char* k : {"charges", "options", "provenance", "stage_ms"})
    CHECK_MESSAGE(s[k].is_object(), "summary field " << k);
}

}  // namespace

TEST_CASE("OneAdapt on a 5 s excerpt of vtest.avi: beta = 0 keeps the reference, accuracy 1") {
  fs::path out;
  RunSummary s = run_excerpt("beta0", 0.0, out);
  CHECK(s.intervals == 5);
  auto records = record_lines(out);
  REQUIRE(records.size() == 5);
  for (const auto& r : records) {
    check_record_schema(r);
    CHECK(r["config_str"] == "resolution=1 qp=20 fps=10");
    CHECK(r["accuracy"].get<double>() == 1.0);
    CHECK(r["charges"]["backward_passes"] == 1);
  }
  CHECK(s.accuracy_mean == 1.0);
  CHECK(s.charges.uplink() == s.bytes_ref_total);
  std::ifstream in(out / "summary.json");
  json summary = json::parse(in);
  check_summary_schema(summary);
  CHECK(summary["status"] == "complete");
  fs::remove_all(out);
}

TEST_CASE(
    "OneAdapt on a 5 s excerpt of vtest.avi: a large beta cuts bytes to <= 50% within 5 "
    "intervals") {
  fs::path out;
  RunSummary s = run_excerpt("beta5", 5.0, out);
  auto records = record_lines(out);
  REQUIRE(records.size() == 5);
  double last_ratio =
      records.back()["bytes"].get<double>() / records.back()["bytes_ref"].get<double>();
  MESSAGE("interval 4: " << records.back()["config_str"] << ", bytes " << 100 * last_ratio
                         << "% of the reference, F1 " << records.back()["accuracy"]);
  CHECK(last_ratio <= 0.5);
  CHECK(s.charges.uplink() < s.bytes_ref_total);
  // A warm start continues from the saved state: its first interval is not the reference.
  json state = json::parse(std::ifstream(out / "state.json"));
  CHECK(state["knobs"]["qp"]["theta"].get<double>() < 1.0);
  auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  auto task = plugins().create_task(
      "detection", {}, {{"detector", engine::load_model(asset_path("nanodet/nanodet.json"))}});
  RunSpec warm;
  warm.oneadapt.beta = 5.0;
  warm.max_intervals = 1;
  warm.warm_start = out / "state.json";
  warm.out_dir = temp_dir("warm");
  std::ostringstream progress;
  run_experiment(source, task, warm, progress, false);
  auto warm_records = record_lines(warm.out_dir);
  REQUIRE(warm_records.size() == 1);
  CHECK(warm_records[0]["config_str"] != "resolution=1 qp=20 fps=10");
  CHECK(warm_records[0]["charges"]["source_renders"].get<int>() ==
        4);  // sent + 3 probes; calibrated: no reference encode
  fs::remove_all(out);
  fs::remove_all(warm.out_dir);
}

TEST_CASE("detection: CenterNet heatmap-peak decoding agrees with the graph's own detections") {
  // The graph decodes too (TopK over the peak-masked heatmap, boxes from wh). Our C++ peak
  // decoding must find the same confident detections: the per-class counts above tau of the
  // classes of interest, as TaskResult::summary() prints them ("N class, ...", by name).
  auto model = engine::load_model(asset_path("centernet/centernet.json"));
  host::ComponentSettings settings;
  settings.params["architecture"] = "centernet";
  settings.params["classes"] = "person,car,truck";
  auto task = plugins().create_task("detection", settings, {{"detector", model}});
  auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  IntervalInfo info;
  REQUIRE(source.next_interval(info));
  std::map<int, std::string> names{{0, "person"}, {2, "car"}, {7, "truck"}};
  at::NoGradGuard no_grad;
  for (int64_t t : {0, 9}) {
    auto outputs = task.infer(source.original().narrow(0, t, 1));
    auto ours = task.decode(outputs);
    REQUIRE(ours.size() == 1);
    at::Tensor graph = outputs[0][0];  // [100, 6]: x0, y0, x1, y1, score, class
    std::map<std::string, int> counts;
    for (int64_t k = 0; k < graph.size(0); ++k) {
      int cls = static_cast<int>(graph[k][5].item<float>());
      if (graph[k][4].item<float>() > 0.5f && names.count(cls)) counts[names[cls]]++;
    }
    std::string expected;
    for (const auto& [name, n] : counts)
      expected += (expected.empty() ? "" : ", ") + std::to_string(n) + " " + name;
    if (expected.empty()) expected = "nothing";
    MESSAGE("frame " << t << ": ours " << ours[0]->summary() << ", graph " << expected);
    CHECK(ours[0]->summary() == expected);
  }
}

TEST_CASE(
    "hindsight and profiling baselines on a real excerpt: oracle <= best-static, charges of "
    "profiling, replays equal real runs") {
  auto task = plugins().create_task(
      "detection", {}, {{"detector", engine::load_model(asset_path("nanodet/nanodet.json"))}});
  host::ComponentSettings grid_ladders{
      {}, {{"resolution", {"1", "0.6"}}, {"qp", {"20", "38"}}, {"fps", {"10"}}}};
  auto open = [&] {
    return plugins().open_source("video", asset_path("video/vtest.avi").string(), grid_ladders,
                                 1.0);
  };
  auto source = open();
  const auto configs = all_configurations(source.knobs());
  REQUIRE(configs.size() == 4);
  OutcomeCache cache;
  HarnessOptions ho;
  ho.max_intervals = 2;
  ho.cache = &cache;
  Harness h(task, ho);
  std::ostringstream progress;
  REQUIRE(h.evaluate(source, configs, progress) == 2);
  PolicyArgs args;
  args.point = 0.3;
  args.grid = configs;
  args.cache = &cache;
  args.intervals = 2;
  args.period = 5;
  args.profile_budget = 3;
  auto objective_sum = [&](const fs::path& dir) {
    double sum = 0;
    for (const auto& r : record_lines(dir))
      sum += (1 - r["accuracy"].get<double>()) + args.point *
                                                     r["charges"]["payload_bytes"].get<double>() /
                                                     r["bytes_ref"].get<double>();
    return sum;
  };
  const fs::path best_dir = temp_dir("best-static"), oracle_dir = temp_dir("oracle");
  RunSummary best =
      test_support::run_policy("best-static", open(), task, args, best_dir, 2, &cache);
  test_support::run_policy("oracle", open(), task, args, oracle_dir, 2, &cache);
  MESSAGE("best-static " << best.final_config << ": objective " << objective_sum(best_dir)
                         << "; oracle " << objective_sum(oracle_dir));
  CHECK(objective_sum(oracle_dir) <=
        objective_sum(best_dir) + 0.01);  // the reference's header in interval 0 aside
  CHECK(json::parse(std::ifstream(best_dir / "summary.json"))["deployable"] == false);
  // Chameleon-style: interval 0 profiles (the reference is sent, so scoring is free) along the
  // first knob, resolution: 2 candidates (the current one is the reference itself: one server
  // rendering); its choice applies from interval 1 only.
  const fs::path ch_dir = temp_dir("chameleon");
  test_support::run_policy("chameleon", open(), task, args, ch_dir, 2, &cache);
  auto ch = record_lines(ch_dir);
  REQUIRE(ch.size() == 2);
  CHECK(ch[0]["config_str"] == "resolution=1 qp=20 fps=10");  // late: still the start
  CHECK(ch[0]["charges"]["server_renders"] == 1);  // resolution 0.6 profiled on the server
  CHECK(ch[0]["charges"]["reference_bytes"] ==
        ch[0]["bytes"]);  // the reference was sent for profiling
  CHECK(ch[0]["charges"]["profiling_forwards"].get<double>() == 10.0);
  CHECK(ch[1]["charges"]["server_renders"] == 0);
  // AWStream-style: no offline prefix, so interval 0 profiles the whole grid at reference quality.
  const fs::path aw_dir = temp_dir("awstream");
  RunSummary aw = test_support::run_policy("awstream", open(), task, args, aw_dir, 2, &cache);
  auto awr = record_lines(aw_dir);
  REQUIRE(awr.size() == 2);
  CHECK(awr[0]["bytes"] == awr[0]["bytes_ref"]);
  CHECK(awr[0]["charges"]["server_renders"] == 3);  // every grid configuration but the reference
  CHECK(awr[0]["charges"]["profiling_forwards"].get<double>() == 30.0);  // 3 x 10 frames
  CHECK(awr[1]["charges"]["profiling_forwards"].get<double>() == 0.0);
  CHECK(aw.charges.profiling_forwards == 30.0);
  CHECK(json::parse(std::ifstream(aw_dir / "summary.json"))["deployable"] == true);
  // A replayed outcome is what a real static run of the same configuration measures.
  PolicyArgs fixed;
  const json first = record_lines(best_dir)[0];  // named: items() must not outlive it
  for (const auto& kv : first["config"].items())
    fixed.static_config[kv.key()] = KnobValue::of(kv.value().get<double>()).label;
  const fs::path static_dir = temp_dir("static-check");
  RunSummary real = test_support::run_policy("static", open(), task, fixed, static_dir, 2);
  CHECK(real.charges.uplink() == best.charges.uplink());
  CHECK(real.accuracy_mean == doctest::Approx(best.accuracy_mean));
  for (const auto& d : {best_dir, oracle_dir, ch_dir, aw_dir, static_dir}) fs::remove_all(d);
}

TEST_CASE(
    "reducto features: zero on identical frames, positive on a change, keep flags follow the "
    "threshold") {
  at::Tensor a = at::full({3, 64, 64}, 0.5f), b = a.clone();
  b.narrow(1, 16, 16).narrow(2, 16, 16).fill_(0.9f);  // one 16x16 bright square
  for (const char* f : {"pixel", "area", "edge"}) {
    CHECK(reducto_feature(f, a, a) == 0.0);
    CHECK_MESSAGE(reducto_feature(f, a, b) > 0.0, f);
  }
  CHECK(reducto_feature("pixel", a, b) == doctest::Approx(16.0 * 16 / (64 * 64)));
  CHECK_THROWS_AS(reducto_feature("colour", a, b), Error);
  at::Tensor frames = at::stack({a, a, b, b, a});
  CHECK(reducto_keep("pixel", 0.01, frames) == std::vector<std::uint8_t>{1, 0, 1, 0, 1});
  CHECK(reducto_keep("pixel", 0.5, frames) == std::vector<std::uint8_t>{1, 0, 0, 0, 0});
}

TEST_CASE(
    "reducto on a real excerpt: profiling sends everything, then frames are filtered on the "
    "source") {
  auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  auto task = plugins().create_task(
      "detection", {}, {{"detector", engine::load_model(asset_path("nanodet/nanodet.json"))}});
  // render_selected: the kept frames are sent, the others repeat the last kept one.
  IntervalInfo info;
  REQUIRE(source.next_interval(info));
  const Configuration ref = source.reference();
  std::vector<std::uint8_t> keep{1, 0, 0, 1, 0, 0, 1, 0, 0, 0};
  Rendering some = source.render_selected(ref, keep);
  Rendering all = source.render(ref);
  CHECK(some.fresh == keep);
  CHECK(some.bytes < all.bytes);
  CHECK(some.input.sizes() == all.input.sizes());
  CHECK(at::equal(some.input[1], some.input[0]));
  CHECK_THROWS_AS(source.render_selected(ref, {1, 0}), Error);
  // Reducto-style: interval 0 profiles the encoding (the reference is sent), interval 1 the
  // threshold (every frame at the encoding), interval 2 filters on the source.
  host::ComponentSettings ladders{
      {}, {{"resolution", {"1", "0.6"}}, {"qp", {"20", "38"}}, {"fps", {"10"}}}};
  auto filtered =
      plugins().open_source("video", asset_path("video/vtest.avi").string(), ladders, 1.0);
  PolicyArgs args;
  args.point = 0.9;
  args.period = 2;
  args.grid = all_configurations(filtered.knobs());
  const fs::path dir = temp_dir("reducto");
  RunSummary s = test_support::run_policy("reducto", filtered, task, args, dir, 3);
  auto records = record_lines(dir);
  REQUIRE(records.size() == 3);
  CHECK(records[0]["trace"]["phase"] == "profiling encoding");
  CHECK(records[0]["bytes"] == records[0]["bytes_ref"]);
  CHECK(records[0]["accuracy"].get<double>() == 1.0);
  CHECK(records[0]["charges"]["server_renders"] == 3);
  CHECK(records[1]["trace"]["phase"] == "profiling threshold");
  CHECK(records[1]["frames_inferred"].get<double>() == 10.0);
  CHECK(records[2]["trace"]["phase"] == "filtering");
  CHECK(records[2]["frames_inferred"].get<double>() ==
        records[2]["trace"]["frames_sent"].get<double>());
  CHECK(s.frames_inferred_total <= s.frames_ref_total);
  json summary = json::parse(std::ifstream(dir / "summary.json"));
  CHECK(summary["deployable"] == true);
  CHECK(summary["target"].get<double>() == 0.9);
  fs::remove_all(dir);
}

TEST_CASE(
    "spatial solver: a hot tile gets the best level, beta 0 all best, a huge beta all worst") {
  SpatialSpec spec{16, 4, 3, {"q0", "q1", "q2"}, "", "", {}};
  // Synthetic frames 3x48x64: G grey; level q adds noise of amplitude 0.1 q everywhere.
  at::Tensor G = at::full({3, 48, 64}, 0.5f);
  std::vector<at::Tensor> frames;
  for (int q = 0; q < 3; ++q) frames.push_back(G + 0.1f * static_cast<float>(q) * at::ones_like(G));
  std::vector<double> bytes{12000, 6000, 3000};
  at::Tensor S = at::full({1, 48, 64}, 1e-4f);
  S.narrow(1, 16, 16).narrow(2, 32, 16).fill_(1.0f);  // tile (row 1, col 2) is where the DNN looks
  TileCosts costs = tile_costs(spec, S, G, frames, bytes);
  REQUIRE(costs.z.size() == 3);
  REQUIRE(costs.z[0].size() == 12);
  double total_bytes = 0;
  for (double b : costs.bytes[1]) total_bytes += b;
  CHECK(total_bytes == doctest::Approx(6000));  // the level's real bytes, shared out over tiles
  const double rec_norm = 0.01, bytes_norm = 12000;
  QualityMap m = solve_map(spec, costs, rec_norm, bytes_norm, 0.5);
  CHECK(m.level[1 * 4 + 2] == 0);
  for (std::size_t t = 0; t < m.level.size(); ++t)
    if (t != 6) CHECK_MESSAGE(m.level[t] == 2, "tile " << t);
  for (auto l : solve_map(spec, costs, rec_norm, bytes_norm, 0.0).level) CHECK(l == 0);
  for (auto l : solve_map(spec, costs, rec_norm, bytes_norm, 1e9).level) CHECK(l == 2);
  CHECK(map_rle(m) == "2*6,0*1,2*5");
  CHECK(map_levels("2*6,0*1,2*5") == m.level);
  CHECK_THROWS_AS(map_levels("2*6,x"), Error);
  // Costs that do not match the map are refused.
  TileCosts bad = costs;
  bad.z[1].pop_back();
  CHECK_THROWS_WITH_AS(solve_map(spec, bad, rec_norm, bytes_norm, 1),
                       doctest::Contains("costs for 11 tiles, the map has 12"), Error);
  // The roi-static map: the centre best, the corners worst.
  QualityMap c = centre_weighted_map(SpatialSpec{32, 24, 18, {"a", "b", "c"}, "", "", {}});
  CHECK(c.level[9 * 24 + 12] == 0);
  CHECK(c.level[0] == 2);
}

TEST_CASE(
    "spatial knob on real frames: ROI offsets cut bytes, per-tile quality follows the map, bad "
    "maps refused") {
  host::ComponentSettings roi{{{"roi_tile", "64"}, {"roi_offsets", "0,0.5,1"}}, {}};
  auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), roi, 1.0);
  const auto knobs = source.knobs();
  CHECK(knobs[1].key == "crf");  // x264 ignores ROI offsets under constant QP
  auto spec = source.spatial();
  REQUIRE(spec.has_value());
  CHECK(spec->cols == 12);  // 768 / 64
  CHECK(spec->rows == 9);   // 576 / 64
  IntervalInfo info;
  REQUIRE(source.next_interval(info));
  const Configuration c = Configuration::at_indices(knobs, {0, 2, 0});  // crf 28
  Rendering best = source.render_map(c, QualityMap::uniform(*spec, 0));
  Rendering plain = source.render(c);
  CHECK(best.bytes == plain.bytes);
  QualityMap half = QualityMap::uniform(*spec, 0);
  for (int r = 0; r < spec->rows; ++r)
    for (int col = 0; col < spec->cols / 2; ++col)
      half.level[static_cast<std::size_t>(r * spec->cols + col)] = 2;
  Rendering left_low = source.render_map(c, half);
  Rendering worst = source.render_map(c, QualityMap::uniform(*spec, 2));
  MESSAGE("crf 28: best " << best.bytes << " B, left half +1.0 " << left_low.bytes
                          << " B, all +1.0 " << worst.bytes << " B");
  CHECK(left_low.bytes < best.bytes);
  CHECK(worst.bytes < left_low.bytes);
  // Per-tile error against the source frames: the left half's tiles lose quality, the right
  // half's stay as at the best level.
  const at::Tensor G = source.original();
  const std::vector<int64_t> frames_channels{0, 1};
  at::Tensor e_map = (left_low.input - G).abs().mean(frames_channels);  // [H,W]
  at::Tensor e_best = (best.input - G).abs().mean(frames_channels);
  auto half_mean = [](const at::Tensor& e, int64_t from) {
    return e.narrow(1, from, 384).mean().item<double>();
  };
  const double left_map = half_mean(e_map, 0), left_best = half_mean(e_best, 0);
  const double right_map = half_mean(e_map, 384), right_best = half_mean(e_best, 384);
  MESSAGE("mean |V - G|: left " << left_best << " -> " << left_map << ", right " << right_best
                                << " -> " << right_map);
  CHECK(left_map > 1.2 * left_best);
  CHECK(right_map < 1.1 * right_best);
  // Bad maps: wrong size, a level outside the ladder; and a source without the knob.
  QualityMap small{3, 3, std::vector<std::uint8_t>(9, 0)};
  CHECK_THROWS_WITH_AS(
      source.render_map(c, small),
      doctest::Contains("quality map is 3x3 tiles (9 levels), this stream needs 12x9"), Error);
  QualityMap high = QualityMap::uniform(*spec, 3);
  CHECK_THROWS_WITH_AS(source.render_map(c, high),
                       doctest::Contains("level 3 is outside the 3 levels"), Error);
  auto plain_source =
      plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  CHECK_FALSE(plain_source.spatial().has_value());
  CHECK_THROWS_WITH_AS(plugins().open_source("video", asset_path("video/vtest.avi").string(),
                                             {{{"roi_tile", "48"}}, {}}, 1.0),
                       doctest::Contains("roi_tile must be 0 (off), 16, 32 or 64"), Error);
}

TEST_CASE(
    "OneAdapt with the spatial knob on a 4 s excerpt: maps recorded, a large beta lowers tiles") {
  host::ComponentSettings roi{{{"roi_tile", "64"}}, {}};
  auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), roi, 1.0);
  auto task = plugins().create_task(
      "detection", {}, {{"detector", engine::load_model(asset_path("nanodet/nanodet.json"))}});
  RunSpec spec;
  spec.oneadapt.beta = 1.0;
  spec.max_intervals = 4;
  spec.out_dir = temp_dir("spatial");
  std::ostringstream progress;
  run_experiment(source, task, spec, progress, false);
  auto records = record_lines(spec.out_dir);
  REQUIRE(records.size() == 4);
  CHECK(records[0]["map"] == "0*108");  // the first interval: every tile at the best level
  CHECK(records[1]["map"] != "0*108");  // then the solver's map
  CHECK(records[0]["charges"]["source_renders"].get<long>() >=
        4);  // sent, probes, and the uniform levels the solver needs
  CHECK(records[0]["charges"]["feedback_bytes"] == 0);  // the first map is the deployment's
  CHECK(records[1]["charges"]["feedback_bytes"].get<double>() >=
        4 + (108 * 3 + 7) / 8);  // the solver's new map, 3 bits a tile (and config)
  // The cost model's prediction of the map sent, against its real bytes, and the joint
  // solve's base (the CRF), every interval.
  for (const auto& r : records) {
    REQUIRE(r["trace"].contains("map_bytes_error"));
    CHECK(std::abs(r["trace"]["map_bytes_error"].get<double>()) < 0.5);
    CHECK(r["trace"].contains("spatial_base"));
  }
  MESSAGE("interval 1 map: " << records[1]["map"] << ", " << records[1]["config_str"]);
  fs::remove_all(spec.out_dir);
}

TEST_CASE("eaar and dds on a real excerpt: maps from the detections, both DDS passes charged") {
  SpatialSpec grid{64, 12, 9, {"a", "b", "c"}, "", "", {}};
  auto on = tiles_of(grid, {Region{0.5f, 0.5f, 0.55f, 0.6f, 0.9f, true}}, 1);
  std::size_t n = 0;
  for (auto v : on) n += v;
  CHECK(n == 12);  // the region's 1x2 tiles dilated by one tile: 3x4
  CHECK(on[static_cast<std::size_t>(4 * 12 + 6)] == 1);
  host::ComponentSettings roi{{{"roi_tile", "64"}}, {}};
  auto task = plugins().create_task(
      "detection", {}, {{"detector", engine::load_model(asset_path("nanodet/nanodet.json"))}});
  std::ostringstream progress;
  for (const char* policy : {"eaar", "dds"}) {
    auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), roi, 1.0);
    PolicyArgs args;
    args.point = 28;
    const fs::path dir = temp_dir(policy);
    RunSummary s = test_support::run_policy(policy, source, task, args, dir, 2);
    auto records = record_lines(dir);
    REQUIRE(records.size() == 2);
    MESSAGE(std::string(policy) << ": " << records[1]["map"] << ", " << records[1]["bytes"]
                                << " B of " << records[1]["bytes_ref"] << ", F1 "
                                << records[1]["accuracy"]);
    CHECK(s.charges.uplink() < s.bytes_ref_total);
    if (std::string(policy) == "eaar") {
      CHECK(records[0]["map"] == "0*108");            // nothing known before the first interval
      CHECK(records[1]["map"] != records[0]["map"]);  // then the tiles around the detections
      CHECK(records[1]["charges"]["feedback_bytes"].get<double>() ==
            4 + (108 * 3 + 7) / 8);  // the new map, 3 bits a tile (six levels)
    } else {
      CHECK(records[0]["frames_inferred"].get<double>() ==
            10.0 * records[0]["passes"].get<double>());  // both passes inferred
      if (records[0]["passes"] == 2)
        CHECK(records[0]["charges"]["feedback_bytes"].get<double>() ==
              4 + (108 * 3 + 7) / 8);  // the request (six levels: 3 bits a tile)
    }
    fs::remove_all(dir);
  }
  auto plain = plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  PolicyArgs args;
  args.point = 28;
  CHECK_THROWS_WITH_AS(
      test_support::run_policy("eaar", plain, task, args, temp_dir("eaar-plain"), 1),
      doctest::Contains("needs a source with a spatial knob"), Error);
}

namespace {

// The fixture ramp's bytes (tests/fixtures/plugins/good.cpp): 4 samples of 8x8 per interval,
// ceil(4 / stride) kept, ceil(log2 levels) bits per pixel; a 16-byte stream header.
double ramp_payload(double levels, double stride) {
  const double kept = std::ceil(4 / stride), bits = std::ceil(std::log2(levels));
  return std::ceil(kept * 64 * bits / 8);
}

}  // namespace

TEST_CASE("accountant: every charge of a synthetic run equals its hand-computed value") {
  host::PluginRegistry fixtures;
  fixtures.scan_directory(ONEADAPT_FIXTURE_PLUGIN_DIR);
  auto task = fixtures.create_task("fixture-brightness", {}, {});
  auto open = [&] { return fixtures.open_source("fixture-ramp", "", {}, 1.0); };
  SUBCASE("static: the header once, the payload every interval, the fresh samples as DNN work") {
    PolicyArgs args;
    args.static_config = {{"levels", "16"}, {"stride", "2"}};
    const fs::path dir = temp_dir("acct-static");
    RunSummary s = test_support::run_policy("static", open(), task, args, dir, 3);
    CHECK(s.charges.bytes == 3 * 64);  // 2 kept samples x 64 pixels x 4 bits
    CHECK(s.charges.header_bytes == 16);
    CHECK(s.charges.uplink() == 208);
    CHECK(s.bytes_ref_total ==
          3 * 256 + 16);  // the reference stream: 4 x 64 x 8 bits, its header once
    CHECK(s.charges.forwards == 6);
    CHECK(s.charges.source_renders == 3);
    CHECK(s.charges.feedback_bytes == 0);
    CHECK(s.charges.backward_units == 0);
    CHECK(s.compute_ref_total == 12);
    fs::remove_all(dir);
  }
  SUBCASE(
      "oneadapt: headers and configuration updates on every change, probes, weighted backward "
      "passes") {
    PolicyArgs args;
    args.point = 10;  // a large beta: it moves every interval
    args.oneadapt.beta = 10;
    const fs::path dir = temp_dir("acct-oneadapt");
    RunSummary s = test_support::run_policy("oneadapt", open(), task, args, dir, 3, nullptr,
                                            /*backward_weight=*/0.5);
    const auto recs = record_lines(dir);
    REQUIRE(recs.size() == 3);
    double uplink = 0, feedback = 0;
    std::string previous;
    for (const auto& r : recs) {
      const double levels = r["config"]["levels"], stride = r["config"]["stride"];
      const bool changed = previous != r["config_str"].get<std::string>();
      const double head = changed ? 16 : 0,
                   update = changed && !previous.empty() ? 4 + 2 : 0;  // 4 + one byte per knob
      CHECK(r["charges"]["payload_bytes"].get<double>() == ramp_payload(levels, stride));
      CHECK(r["charges"]["header_bytes"].get<double>() == head);
      CHECK(r["charges"]["feedback_bytes"].get<double>() == update);
      CHECK(r["charges"]["forwards"].get<double>() == std::ceil(4 / stride));
      CHECK(r["charges"]["backward_units"].get<double>() == 0.5);
      CHECK(r["charges"]["source_renders"] == 3);  // sent + one cheaper neighbour per knob
      CHECK(r["compute"].get<double>() == std::ceil(4 / stride) + 0.5);
      uplink += ramp_payload(levels, stride) + head, feedback += update;
      previous = r["config_str"];
    }
    CHECK(recs[2]["config_str"] != recs[0]["config_str"]);  // it did move
    CHECK(static_cast<double>(s.charges.uplink()) == uplink);
    CHECK(static_cast<double>(s.charges.feedback_bytes) == feedback);
    CHECK(s.charges.backward_passes == 3);
    CHECK(s.backward_weight == 0.5);
    fs::remove_all(dir);
  }
  SUBCASE(
      "awstream: a profiling interval sends the reference and pays every other grid "
      "configuration") {
    PolicyArgs args;
    args.point = 0.3;
    args.period = 5;
    const fs::path dir = temp_dir("acct-aws");
    RunSummary s = test_support::run_policy("awstream", open(), task, args, dir, 3);
    const auto recs = record_lines(dir);
    REQUIRE(recs.size() == 3);
    // Grid: 4 levels x 3 strides; the 11 others are re-rendered on the server and inferred:
    // 4 levels x (4 + 2 + 1) kept samples, less the reference's 4 = 24 forwards.
    CHECK(recs[0]["charges"]["payload_bytes"] == 256);
    CHECK(recs[0]["charges"]["header_bytes"] == 16);
    CHECK(recs[0]["charges"]["reference_bytes"] == 272);
    CHECK(recs[0]["charges"]["server_renders"] == 11);
    CHECK(recs[0]["charges"]["profiling_forwards"] == 24);
    CHECK(recs[0]["charges"]["forwards"] == 28);
    CHECK(recs[0]["accuracy"] == 1.0);
    for (std::size_t i = 1; i < 3; ++i) {
      CHECK(recs[i]["charges"]["server_renders"] == 0);
      CHECK(recs[i]["charges"]["reference_bytes"] == 0);
    }
    CHECK(s.charges.profiling_forwards == 24);
    fs::remove_all(dir);
  }
}

TEST_CASE("frontier: the lower convex hull, monotone, no extrapolation") {
  // (0.92, 0.45) and (0.95, 0.50) lie above the chord from (0.90, 0.20) to (0.98, 0.60), which
  // time-sharing those two reaches: chords through them would overstate the cost (at 0.95:
  // 0.50 measured, 0.45 on the hull). (0.85, 0.30) is dominated by the cheaper and more
  // accurate (0.90, 0.20).
  Frontier f({{0.90, 0.20, 0}, {0.95, 0.50, 1}, {0.98, 0.60, 2}, {0.92, 0.45, 3}, {0.85, 0.30, 4}});
  REQUIRE(f.vertices().size() == 2);
  CHECK(f.vertices()[0].series == 0);
  CHECK(f.vertices()[1].series == 2);
  CHECK(*f.cost_at(0.92) == doctest::Approx(0.2 + 0.4 * 0.02 / 0.08));  // 0.30, not 0.45
  CHECK(*f.cost_at(0.95) == doctest::Approx(0.45));
  CHECK(*f.cost_at(0.85) == doctest::Approx(0.20));  // the cheapest point is more accurate
  CHECK_FALSE(f.cost_at(0.99).has_value());          // above the most accurate point
  CHECK_FALSE(
      f.cost_at(0.80).has_value());  // below the least accurate: a collapse is not "equal accuracy"
  CHECK(f.nearest(0.93)->series == 3);
  // A point below the chord of its neighbours becomes a vertex.
  Frontier g({{0.90, 0.20, 0}, {0.94, 0.25, 1}, {0.98, 0.60, 2}});
  CHECK(g.vertices().size() == 3);
  CHECK(*g.cost_at(0.94) == doctest::Approx(0.25));
  CHECK_FALSE(Frontier({}).cost_at(0.5).has_value());
}

TEST_CASE("savings on the frontier: a block bootstrap, the verdict on the interval's lower end") {
  auto series = [](const std::string& label, std::vector<double> acc, double ratio) {
    Series s{label, {}};
    for (double a : acc) s.intervals.push_back({a, ratio * 1000, 1000});
    return s;
  };
  // Identical intervals: OneAdapt at 0.94 with 0.30 of the bytes; the baseline's hull needs
  // 0.40 there (between (0.90, 0.20) and (0.98, 0.60)): a 25 % saving with no spread.
  const std::vector<double> flat(8, 0.94);
  Series ours = series("oneadapt", flat, 0.30);
  std::vector<Series> base{series("a", std::vector<double>(8, 0.98), 0.60),
                           series("b", std::vector<double>(8, 0.90), 0.20)};
  SavingOptions o;
  o.resamples = 200;
  auto s = saving_on_frontier(ours, base, o);
  REQUIRE(s.has_value());
  CHECK(s->saving == doctest::Approx(0.25));
  CHECK(s->low == doctest::Approx(0.25));
  CHECK(s->high == doctest::Approx(0.25));
  CHECK(std::string(verdict(*s, 0.2)) == "met");
  CHECK(std::string(verdict(*s, 0.25)) == "not met");  // the lower end must exceed the target
  Saving thin = *s;
  thin.resamples_used = thin.resamples / 2;  // half the resamples outside the baseline's range
  CHECK(std::string(verdict(thin, 0.2)) == "undetermined");
  // Above the baseline's best accuracy: no figure.
  CHECK_FALSE(saving_on_frontier(series("oneadapt", std::vector<double>(8, 0.99), 0.1), base, o)
                  .has_value());
  // Intervals that vary: the interval widens and the point estimate sits inside it.
  Series noisy = series("oneadapt", {0.90, 0.98, 0.92, 0.96, 0.91, 0.97, 0.93, 0.95}, 0.30);
  auto n = saving_on_frontier(noisy, base, o);
  REQUIRE(n.has_value());
  CHECK(n->low < n->saving);
  CHECK(n->high > n->saving);
  CHECK(n->resamples_used > 150);
  // Warm-up intervals are left out.
  SavingOptions skip = o;
  skip.skip = 7;
  auto last = saving_on_frontier(noisy, base, skip);
  REQUIRE(last.has_value());
  CHECK(last->accuracy == doctest::Approx(0.95));
}

TEST_CASE("gain on the frontier: accuracy at equal cost, time-shared, flat above only when saturated") {
  Frontier f({{0.90, 0.20, 0}, {0.98, 0.60, 1}, {0.92, 0.45, 2}});
  CHECK(*f.accuracy_at(0.40, false) == doctest::Approx(0.94));  // halfway along the hull
  CHECK(*f.accuracy_at(0.45, false) == doctest::Approx(0.95));  // not the measured 0.92
  CHECK(*f.accuracy_at(0.10, false) == doctest::Approx(0.90));  // below: the cheapest's (a bound)
  CHECK_FALSE(f.accuracy_at(0.70, false).has_value());  // above: unknown unless saturated
  CHECK(*f.accuracy_at(0.70, true) == doctest::Approx(0.98));
  CHECK_FALSE(Frontier({}).accuracy_at(0.5, true).has_value());
  // A costlier run that is less accurate (noise): up to its cost the frontier is the most
  // accurate vertex's, measured; beyond it only when saturated.
  Frontier h({{0.90, 0.20, 0}, {0.98, 0.60, 1}, {0.97, 0.80, 2}});
  CHECK(h.vertices().size() == 2);
  CHECK(*h.accuracy_at(0.70, false) == doctest::Approx(0.98));
  CHECK(*h.accuracy_at(0.80, false) == doctest::Approx(0.98));
  CHECK_FALSE(h.accuracy_at(0.90, false).has_value());

  auto series = [](std::vector<double> acc, double ratio) {
    Series s{"", {}};
    for (double a : acc) s.intervals.push_back({a, ratio * 1000, 1000});
    return s;
  };
  std::vector<Series> base{series(std::vector<double>(8, 0.98), 0.60),
                           series(std::vector<double>(8, 0.90), 0.20)};
  SavingOptions o;
  o.resamples = 200;
  // At 0.40 of the cost the frontier reaches 0.94: 0.96 is 0.02 above it, with no spread.
  auto g = gain_on_frontier(series(std::vector<double>(8, 0.96), 0.40), base, o, false);
  REQUIRE(g.has_value());
  CHECK(g->frontier == doctest::Approx(0.94));
  CHECK(g->gain == doctest::Approx(0.02));
  CHECK(g->low == doctest::Approx(0.02));
  CHECK(std::string(verdict(*g)) == "met");
  // Below the frontier: not met.
  g = gain_on_frontier(series(std::vector<double>(8, 0.93), 0.40), base, o, false);
  REQUIRE(g.has_value());
  CHECK(g->gain == doctest::Approx(-0.01));
  CHECK(std::string(verdict(*g)) == "not met");
  // More cost than the baseline's costliest run: read only when it was saturated.
  CHECK_FALSE(
      gain_on_frontier(series(std::vector<double>(8, 0.99), 0.80), base, o, false).has_value());
  g = gain_on_frontier(series(std::vector<double>(8, 0.99), 0.80), base, o, true);
  REQUIRE(g.has_value());
  CHECK(g->gain == doctest::Approx(0.01));
  // Intervals that vary: the hull is recomputed per resample and the interval widens.
  g = gain_on_frontier(series({0.90, 0.99, 0.93, 0.97, 0.91, 0.98, 0.94, 0.96}, 0.40), base, o,
                       false);
  REQUIRE(g.has_value());
  CHECK(g->low < g->gain);
  CHECK(g->high > g->gain);
  CHECK(g->resamples_used == 200);
}

TEST_CASE(
    "grid: every configuration, a default subsample that keeps the ladders' ends, numbers found on "
    "ladders") {
  const KnobSpec res =
      KnobSpec::numeric("resolution", "", "", {1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3}, "");
  const KnobSpec qp =
      KnobSpec::numeric("qp", "", "", {20, 22, 24, 26, 28, 30, 34, 38, 42, 46, 50}, "");
  const KnobSpec fps = KnobSpec::numeric("fps", "", "", {10, 5, 2, 1}, "");
  CHECK(all_configurations({res, qp, fps}).size() == 352);
  auto g = default_grid({res, qp, fps}, 64);
  std::size_t n = 1;
  for (const auto& [k, v] : g) {
    n *= v.size();
    CHECK(v.size() >= 2);
  }
  CHECK(n <= 64);
  CHECK(g["qp"].front() == "20");
  CHECK(g["qp"].back() == "50");
  CHECK(g["resolution"].front() == "1");
  CHECK(g["resolution"].back() == "0.3");
  CHECK(default_grid({res, qp, fps}, 1000)["qp"].size() == 11);  // fits: the full ladders
  CHECK(grid_text(g, {res, qp, fps}).rfind("resolution=1,", 0) == 0);
  CHECK(find_on_ladder(res, "0.7") == 3);
  CHECK(find_on_ladder(res, "0.69999999999999996") ==
        3);  // a TOML float printed back at full precision
  CHECK(find_on_ladder(res, "0.75") == std::string::npos);
  CHECK(find_on_ladder(KnobSpec{"codec", "", "", "", {KnobValue::named("flac", 0)}, 0}, "flac") ==
        0);
}
