// The adaptation loop and the video pipeline: relaxation, Adam, the objective; the detection
// plugin's NMS and F1 through the host (with a fake detector); bytes along the video knobs'
// ladders on real frames; OneAdapt on a real 5-second excerpt of vtest.avi.
#include <ATen/ATen.h>

#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "adapt/grid.hpp"
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
using test_support::read_records;
using test_support::temp_dir;

namespace {

// A detector that returns fixed NanoDet-shaped outputs (plus 0 * input, so gradients flow).
class FakeNanoDet final : public Model {
 public:
  explicit FakeNanoDet(std::vector<at::Tensor> outputs) : out_(std::move(outputs)) {
    in_ = {{"input_1", {1, 3, 416, 416}, "float32"}};
    const int64_t anchors[3] = {2704, 676, 169};
    for (int s = 0; s < 3; ++s) out_spec_.push_back({"cls" + std::to_string(s), {1, anchors[s], 80}, "float32"});
    for (int s = 0; s < 3; ++s) out_spec_.push_back({"box" + std::to_string(s), {1, anchors[s], 44}, "float32"});
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
  std::map<std::string, std::shared_ptr<Model>> models{{"detector", std::make_shared<FakeNanoDet>(outputs)}};
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
  for (int i = 0; i < 2000; ++i) lq += k.applied(0.87, Rounding::stochastic, &rng) == 2;  // position 1.3
  CHECK(lq / 2000.0 == doctest::Approx(0.3).epsilon(0.1));
  CHECK(KnobRelaxation{1}.applied(0.3, Rounding::hq) == 0);
  CHECK_THROWS_AS(parse_rounding("up"), Error);
}

TEST_CASE("Adam with betas (0.5, 0.5) steps about lr in the gradient's sign") {
  Adam a(0.3);
  CHECK(a.step(0.004) == doctest::Approx(0.3).epsilon(1e-3));  // first step: lr * sign(g)
  CHECK(a.step(0.004) == doctest::Approx(0.3).epsilon(1e-3));
  CHECK(a.step(-0.004) < 0.3);                                 // a sign change slows it down
  Adam b(0.3);
  CHECK(b.step(-5.0) == doctest::Approx(-0.3).epsilon(1e-3));
  CHECK(b.t() == 1);
}

TEST_CASE("objective: rec over its normaliser plus beta times the bytes ratio") {
  CHECK(objective(0.2, 0.1, 5000, 10000, 0.3) == doctest::Approx(2.0 + 0.15));
  CHECK(objective(0.2, 0.0, 5000, 10000, 0.0) == doctest::Approx(0.2));  // no normaliser yet: raw rec
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

namespace {

RunSummary run_excerpt(const std::string& name, double beta, fs::path& out, std::size_t intervals = 5) {
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
  for (const char* k : {"interval", "t_start", "duration", "bytes", "bytes_ref", "frames_inferred", "frames_ref", "compute",
                        "accuracy", "proxy", "norm", "bytes_norm"})
    CHECK_MESSAGE((r.contains(k) && r[k].is_number()), "record field " << k);
  for (const char* k : {"config", "theta", "accgrad", "objgrad", "overhead", "wall_ms", "render_stages_ms"})
    CHECK_MESSAGE((r.contains(k) && r[k].is_object()), "record field " << k);
  CHECK(r["config_str"].is_string());
  for (const char* k : {"resolution", "qp", "fps"}) {
    CHECK(r["config"][k].is_number());
    CHECK(r["theta"][k].is_number());
    CHECK(r["accgrad"][k].is_number());
  }
  for (const char* k : {"backward_passes", "extra_renders", "extra_forwards"}) CHECK(r["overhead"][k].is_number());
  for (const char* k : {"decode", "render", "forward", "probe", "backward", "update", "reference"}) CHECK(r["wall_ms"][k].is_number());
  CHECK(r["accuracy"].get<double>() >= 0);
  CHECK(r["accuracy"].get<double>() <= 1);
}

void check_summary_schema(const json& s) {
  for (const char* k : {"intervals", "accuracy_mean", "bytes_total", "bytes_ref_total", "bytes_ratio", "frames_inferred_total",
                        "frames_ref_total", "compute_total", "wall_s", "overhead_fraction", "beta"})
    CHECK_MESSAGE((s.contains(k) && s[k].is_number()), "summary field " << k);
  for (const char* k : {"status", "policy", "final_config"}) CHECK_MESSAGE(s[k].is_string(), "summary field " << k);
  for (const char* k : {"overhead", "options", "provenance", "stage_ms"}) CHECK_MESSAGE(s[k].is_object(), "summary field " << k);
}

}  // namespace

TEST_CASE("OneAdapt on a 5 s excerpt of vtest.avi: beta = 0 keeps the reference, accuracy 1") {
  fs::path out;
  RunSummary s = run_excerpt("beta0", 0.0, out);
  CHECK(s.intervals == 5);
  auto records = read_records(out);
  REQUIRE(records.size() == 5);
  for (const auto& r : records) {
    check_record_schema(r);
    CHECK(r["config_str"] == "resolution=1 qp=20 fps=10");
    CHECK(r["accuracy"].get<double>() == 1.0);
    CHECK(r["overhead"]["backward_passes"] == 1);
  }
  CHECK(s.accuracy_mean == 1.0);
  CHECK(s.bytes_total == s.bytes_ref_total);
  std::ifstream in(out / "summary.json");
  json summary = json::parse(in);
  check_summary_schema(summary);
  CHECK(summary["status"] == "complete");
  fs::remove_all(out);
}

TEST_CASE("OneAdapt on a 5 s excerpt of vtest.avi: a large beta cuts bytes to <= 50% within 5 intervals") {
  fs::path out;
  RunSummary s = run_excerpt("beta5", 5.0, out);
  auto records = read_records(out);
  REQUIRE(records.size() == 5);
  double last_ratio = records.back()["bytes"].get<double>() / records.back()["bytes_ref"].get<double>();
  MESSAGE("interval 4: " << records.back()["config_str"] << ", bytes " << 100 * last_ratio << "% of the reference, F1 "
                         << records.back()["accuracy"]);
  CHECK(last_ratio <= 0.5);
  CHECK(s.bytes_total < s.bytes_ref_total);
  // A warm start continues from the saved state: its first interval is not the reference.
  json state = json::parse(std::ifstream(out / "state.json"));
  CHECK(state["knobs"]["qp"]["theta"].get<double>() < 1.0);
  auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  auto task = plugins().create_task("detection", {}, {{"detector", engine::load_model(asset_path("nanodet/nanodet.json"))}});
  RunSpec warm;
  warm.oneadapt.beta = 5.0;
  warm.max_intervals = 1;
  warm.warm_start = out / "state.json";
  warm.out_dir = temp_dir("warm");
  std::ostringstream progress;
  run_experiment(source, task, warm, progress, false);
  auto warm_records = read_records(warm.out_dir);
  REQUIRE(warm_records.size() == 1);
  CHECK(warm_records[0]["config_str"] != "resolution=1 qp=20 fps=10");
  CHECK(warm_records[0]["overhead"]["extra_renders"].get<int>() == 3);  // calibrated: no reference encode
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
    for (const auto& [name, n] : counts) expected += (expected.empty() ? "" : ", ") + std::to_string(n) + " " + name;
    if (expected.empty()) expected = "nothing";
    MESSAGE("frame " << t << ": ours " << ours[0]->summary() << ", graph " << expected);
    CHECK(ours[0]->summary() == expected);
  }
}

TEST_CASE("hindsight baselines on a real excerpt: oracle <= best-static on the objective, the grid equals real runs") {
  auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  auto task = plugins().create_task("detection", {}, {{"detector", engine::load_model(asset_path("nanodet/nanodet.json"))}});
  Grid grid;
  grid.labels = {{"resolution", {"1", "0.6"}}, {"qp", {"24", "38"}}, {"fps", {"10"}}};
  std::ostringstream progress;
  GridTable table = evaluate_grid(source, task, grid, 2, progress);
  REQUIRE(table.configs.size() == 4);
  REQUIRE(table.outcomes.size() == 2);
  const double beta = 0.3;
  auto objective_sum = [&](const fs::path& dir) {
    double sum = 0;
    for (const auto& r : read_records(dir))
      sum += (1 - r["accuracy"].get<double>()) + beta * r["bytes"].get<double>() / r["bytes_ref"].get<double>();
    return sum;
  };
  RunSpec spec;
  spec.out_dir = temp_dir("best-static");
  RunSummary best = run_grid_policy(table, "best-static", beta, spec);
  RunSpec ospec;
  ospec.out_dir = temp_dir("oracle");
  run_grid_policy(table, "oracle", beta, ospec);
  MESSAGE("best-static " << best.final_config << ": objective " << objective_sum(spec.out_dir) << "; oracle "
                         << objective_sum(ospec.out_dir));
  CHECK(objective_sum(ospec.out_dir) <= objective_sum(spec.out_dir) + 1e-12);
  json summary = json::parse(std::ifstream(spec.out_dir / "summary.json"));
  CHECK(summary["deployable"] == false);
  CHECK_THROWS_AS(run_grid_policy(table, "reducto", beta, spec), Error);
  // Chameleon: interval 0 profiles along the first knob (resolution) from the most expensive
  // configuration; its choice applies from interval 1 only.
  RunSpec cspec;
  cspec.out_dir = temp_dir("chameleon");
  RunSummary ch = run_grid_policy(table, "chameleon", beta, cspec, 5, 3);
  auto ch_records = read_records(cspec.out_dir);
  REQUIRE(ch_records.size() == 2);
  CHECK(ch_records[0]["config_str"] == "resolution=1 qp=24 fps=10");  // late: still the start
  CHECK(ch_records[0]["overhead"]["extra_renders"] == 1);             // resolution 0.6 profiled
  CHECK(ch.extra_forwards > 0);
  fs::remove_all(cspec.out_dir);
  // AWStream profiles interval 0 (sent at reference quality, charged), applies from 1 on.
  RunSpec aspec;
  aspec.out_dir = temp_dir("awstream");
  RunSummary aw = run_grid_policy(table, "awstream", beta, aspec, 5);
  auto aw_records = read_records(aspec.out_dir);
  REQUIRE(aw_records.size() == 2);
  CHECK(aw_records[0]["bytes"] == aw_records[0]["bytes_ref"]);
  CHECK(aw_records[0]["overhead"]["extra_renders"] == 3);
  CHECK(aw_records[0]["overhead"]["extra_forwards"].get<double>() == 40.0);  // 4 configurations x 10 frames
  CHECK(aw_records[1]["overhead"]["extra_forwards"].get<double>() == 0.0);
  CHECK(aw.extra_forwards == 40);
  CHECK(json::parse(std::ifstream(aspec.out_dir / "summary.json"))["deployable"] == true);
  fs::remove_all(aspec.out_dir);

  // The cached outcome of best-static's configuration is what a real static run measures.
  auto source2 = plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  RunSpec fixed;
  fixed.policy = "static";
  fixed.max_intervals = 2;
  const json first = read_records(spec.out_dir)[0];  // named: items() must not outlive it
  for (const auto& kv : first["config"].items())
    fixed.static_config[kv.key()] = KnobValue::of(kv.value().get<double>()).label;
  fixed.out_dir = temp_dir("static-check");
  RunSummary real = run_experiment(source2, task, fixed, progress, false);
  CHECK(real.bytes_total == best.bytes_total);
  CHECK(real.accuracy_mean == doctest::Approx(best.accuracy_mean));
  for (const auto& d : {spec.out_dir, ospec.out_dir, fixed.out_dir}) fs::remove_all(d);
}

TEST_CASE("reducto features: zero on identical frames, positive on a change, keep flags follow the threshold") {
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

TEST_CASE("reducto on a real excerpt: profiling sends everything, then frames are filtered on the source") {
  auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  auto task = plugins().create_task("detection", {}, {{"detector", engine::load_model(asset_path("nanodet/nanodet.json"))}});
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
  auto fresh_source = plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  RunSpec spec;
  spec.max_intervals = 3;
  spec.out_dir = temp_dir("reducto");
  std::ostringstream progress;
  RunSummary s = run_reducto(fresh_source, task, ReductoSpec{0.9, 2}, spec, progress);
  auto records = read_records(spec.out_dir);
  REQUIRE(records.size() == 3);
  CHECK(records[0]["reducto"]["profiling"] == true);
  CHECK(records[0]["bytes"] == records[0]["bytes_ref"]);
  CHECK(records[0]["accuracy"].get<double>() == 1.0);
  CHECK(records[1]["reducto"]["profiling"] == false);
  CHECK(records[2]["reducto"]["profiling"] == true);
  CHECK(records[1]["frames_inferred"].get<double>() == records[1]["reducto"]["frames_sent"].get<double>());
  CHECK(s.frames_inferred_total <= s.frames_ref_total);
  json summary = json::parse(std::ifstream(spec.out_dir / "summary.json"));
  CHECK(summary["deployable"] == true);
  CHECK(summary["reducto"]["target"].get<double>() == 0.9);
  MESSAGE(progress.str());
  fs::remove_all(spec.out_dir);
}

TEST_CASE("spatial solver: a hot tile gets the best level, beta 0 all best, a huge beta all worst") {
  SpatialSpec spec{16, 4, 3, {"q0", "q1", "q2"}, ""};
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
  // Costs that do not match the map are refused.
  TileCosts bad = costs;
  bad.z[1].pop_back();
  CHECK_THROWS_WITH_AS(solve_map(spec, bad, rec_norm, bytes_norm, 1), doctest::Contains("costs for 11 tiles, the map has 12"), Error);
  // The roi-static map: the centre best, the corners worst.
  QualityMap c = centre_weighted_map(SpatialSpec{32, 24, 18, {"a", "b", "c"}, ""});
  CHECK(c.level[9 * 24 + 12] == 0);
  CHECK(c.level[0] == 2);
}

TEST_CASE("spatial knob on real frames: ROI offsets cut bytes, per-tile quality follows the map, bad maps refused") {
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
    for (int col = 0; col < spec->cols / 2; ++col) half.level[static_cast<std::size_t>(r * spec->cols + col)] = 2;
  Rendering left_low = source.render_map(c, half);
  Rendering worst = source.render_map(c, QualityMap::uniform(*spec, 2));
  MESSAGE("crf 28: best " << best.bytes << " B, left half +1.0 " << left_low.bytes << " B, all +1.0 " << worst.bytes << " B");
  CHECK(left_low.bytes < best.bytes);
  CHECK(worst.bytes < left_low.bytes);
  // Per-tile error against the source frames: the left half's tiles lose quality, the right
  // half's stay as at the best level.
  const at::Tensor G = source.original();
  const std::vector<int64_t> frames_channels{0, 1};
  at::Tensor e_map = (left_low.input - G).abs().mean(frames_channels);  // [H,W]
  at::Tensor e_best = (best.input - G).abs().mean(frames_channels);
  auto half_mean = [](const at::Tensor& e, int64_t from) { return e.narrow(1, from, 384).mean().item<double>(); };
  const double left_map = half_mean(e_map, 0), left_best = half_mean(e_best, 0);
  const double right_map = half_mean(e_map, 384), right_best = half_mean(e_best, 384);
  MESSAGE("mean |V - G|: left " << left_best << " -> " << left_map << ", right " << right_best << " -> " << right_map);
  CHECK(left_map > 1.2 * left_best);
  CHECK(right_map < 1.1 * right_best);
  // Bad maps: wrong size, a level outside the ladder; and a source without the knob.
  QualityMap small{3, 3, std::vector<std::uint8_t>(9, 0)};
  CHECK_THROWS_WITH_AS(source.render_map(c, small), doctest::Contains("quality map is 3x3 tiles (9 levels), this stream needs 12x9"), Error);
  QualityMap high = QualityMap::uniform(*spec, 3);
  CHECK_THROWS_WITH_AS(source.render_map(c, high), doctest::Contains("level 3 is outside the 3 levels"), Error);
  auto plain_source = plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  CHECK_FALSE(plain_source.spatial().has_value());
  CHECK_THROWS_WITH_AS(plugins().open_source("video", asset_path("video/vtest.avi").string(), {{{"roi_tile", "48"}}, {}}, 1.0),
                       doctest::Contains("roi_tile must be 0 (off), 16, 32 or 64"), Error);
}

TEST_CASE("OneAdapt with the spatial knob on a 4 s excerpt: maps recorded, a large beta lowers tiles") {
  host::ComponentSettings roi{{{"roi_tile", "64"}}, {}};
  auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), roi, 1.0);
  auto task = plugins().create_task("detection", {}, {{"detector", engine::load_model(asset_path("nanodet/nanodet.json"))}});
  RunSpec spec;
  spec.oneadapt.beta = 1.0;
  spec.max_intervals = 4;
  spec.out_dir = temp_dir("spatial");
  std::ostringstream progress;
  run_experiment(source, task, spec, progress, false);
  auto records = read_records(spec.out_dir);
  REQUIRE(records.size() == 4);
  CHECK(records[0]["map"] == "0*108");  // the first interval: every tile at the best level
  CHECK(records[1]["map"] != "0*108");  // then the solver's map
  CHECK(records[1]["overhead"]["extra_renders"].get<long>() >= 2);  // the uniform levels the solver needs
  MESSAGE("interval 1 map: " << records[1]["map"] << ", " << records[1]["config_str"]);
  fs::remove_all(spec.out_dir);
}

TEST_CASE("eaar and dds on a real excerpt: maps from the detections, both DDS passes charged") {
  SpatialSpec grid{64, 12, 9, {"a", "b", "c"}, ""};
  auto on = tiles_of(grid, {Region{0.5f, 0.5f, 0.55f, 0.6f, 0.9f, true}}, 1);
  std::size_t n = 0;
  for (auto v : on) n += v;
  CHECK(n == 12);  // the region's 1x2 tiles dilated by one tile: 3x4
  CHECK(on[static_cast<std::size_t>(4 * 12 + 6)] == 1);
  host::ComponentSettings roi{{{"roi_tile", "64"}}, {}};
  auto task = plugins().create_task("detection", {}, {{"detector", engine::load_model(asset_path("nanodet/nanodet.json"))}});
  std::ostringstream progress;
  for (const char* policy : {"eaar", "dds"}) {
    auto source = plugins().open_source("video", asset_path("video/vtest.avi").string(), roi, 1.0);
    RunSpec spec;
    spec.max_intervals = 2;
    spec.out_dir = temp_dir(policy);
    RunSummary s = run_region_baseline(source, task, policy, 28, spec, progress);
    auto records = read_records(spec.out_dir);
    REQUIRE(records.size() == 2);
    MESSAGE(std::string(policy) << ": " << records[1]["map"] << ", " << records[1]["bytes"] << " B of " << records[1]["bytes_ref"] << ", F1 "
                   << records[1]["accuracy"]);
    CHECK(s.bytes_total < s.bytes_ref_total);
    if (std::string(policy) == "eaar") {
      CHECK(records[0]["map"] == "0*108");             // nothing known before the first interval
      CHECK(records[1]["map"] != records[0]["map"]);   // then the tiles around the detections
    } else {
      CHECK(records[0]["frames_inferred"].get<double>() == 10.0 * records[0]["passes"].get<double>());  // both passes inferred
    }
    fs::remove_all(spec.out_dir);
  }
  auto plain = plugins().open_source("video", asset_path("video/vtest.avi").string(), {}, 1.0);
  RunSpec spec;
  spec.out_dir = temp_dir("eaar-plain");
  CHECK_THROWS_WITH_AS(run_region_baseline(plain, task, "eaar", 28, spec, progress), doctest::Contains("needs a source with a spatial knob"), Error);
  fs::remove_all(spec.out_dir);
}

TEST_CASE("savings at equal accuracy: interpolation on the baseline's curve and a bootstrap interval") {
  // Baseline curve through (0.90, 0.20) and (0.98, 0.60): at 0.94 it needs 0.40 of the bytes.
  CHECK(*interpolate_bytes({{0.98, 0.60}, {0.90, 0.20}}, 0.94) == doctest::Approx(0.40));
  CHECK_FALSE(interpolate_bytes({{0.98, 0.60}, {0.90, 0.20}}, 0.99).has_value());  // no extrapolation
  // Runs over 4 identical intervals: OneAdapt at accuracy 0.94 with 0.30 of the bytes saves 25 %.
  auto run = [](double acc, double ratio) {
    return std::vector<IntervalPoint>(4, IntervalPoint{acc, ratio * 1000, 1000});
  };
  Curve ours{"oneadapt", {0.3}, {run(0.94, 0.30)}};
  Curve base{"awstream", {0.1, 1.0}, {run(0.98, 0.60), run(0.90, 0.20)}};
  auto s = savings_at_equal_accuracy(ours, base, 0, 200);
  REQUIRE(s.size() == 1);
  REQUIRE(s[0].has_value());
  CHECK(s[0]->saving == doctest::Approx(0.25));
  CHECK(s[0]->low == doctest::Approx(0.25));  // identical intervals: no spread
  CHECK(s[0]->high == doctest::Approx(0.25));
  Curve far{"oneadapt", {3}, {run(0.80, 0.05)}};
  CHECK_FALSE(savings_at_equal_accuracy(far, base, 0, 50)[0].has_value());
  // Compute: OneAdapt infers 10 samples + 1 backward, the baseline 10 + 30 profiling runs.
  auto with_compute = [](std::vector<IntervalPoint> r, double used) {
    for (auto& p : r) p.compute = used, p.compute_ref = 10;
    return r;
  };
  Curve oc{"oneadapt", {0.3}, {with_compute(run(0.94, 0.30), 11)}};
  Curve bc{"awstream", {0.1, 1.0}, {with_compute(run(0.98, 0.60), 40), with_compute(run(0.90, 0.20), 40)}};
  auto c = savings_at_equal_accuracy(oc, bc, 0, 50, 7, Resource::compute);
  REQUIRE(c[0].has_value());
  CHECK(c[0]->saving == doctest::Approx(1.0 - 11.0 / 40.0));
}
