// Driving plugins through the host: the fixture modality and task honour the SDK contract,
// gradients flow across the plugin boundary, plugin exceptions come back as one Error that
// names the component, and objects keep their library loaded.
#include "test_common.hpp"

#include <optional>

using namespace oneadapt;
using oneadapt::host::ComponentSettings;
using oneadapt::host::PluginRegistry;

namespace {

struct Loaded {
  PluginRegistry registry;
  Loaded() { registry.scan_directory(test::fixture_dir()); }
};

// Runs `f`, expects an Error with `code` whose message contains every fragment.
template <class F>
void expect_error(F&& f, Errc code, std::initializer_list<const char*> fragments) {
  try {
    f();
    FAIL("no error thrown");
  } catch (const Error& e) {
    INFO("message: " << e.what());
    CHECK(e.code() == code);
    for (const char* fragment : fragments) CHECK(test::contains(e.what(), fragment));
  }
}

}  // namespace

TEST_CASE("the fixture modality renders every interval at every configuration") {
  Loaded l;
  ComponentSettings settings;
  settings.params["intervals"] = "2";
  auto source = l.registry.open_source("fixture-ramp", "synthetic", settings, 1.0);
  auto knobs = source.knobs();
  REQUIRE(knobs.size() == 2);
  auto ref = source.reference();
  CHECK(ref.str() == "levels=256 stride=1");

  IntervalInfo info;
  int intervals = 0;
  while (source.next_interval(info)) {
    CHECK(info.index == static_cast<std::size_t>(intervals));
    CHECK(info.samples == 4);
    at::Tensor g = source.original();
    Rendering hq = source.render(ref);
    CHECK(hq.input.sizes() == g.sizes());
    CHECK(hq.bytes == 4 * 8 * 8 * 8 / 8);
    // Every step down either ladder changes the input and never costs more bytes.
    for (std::size_t k = 0; k < knobs.size(); ++k) {
      std::uint64_t previous = hq.bytes;
      for (std::size_t i = 1; i < knobs[k].values.size(); ++i) {
        std::vector<std::size_t> idx(knobs.size(), 0);
        idx[k] = i;
        Rendering r = source.render(Configuration::at_indices(knobs, idx));
        CHECK(r.input.sizes() == hq.input.sizes());
        CHECK(r.bytes <= previous);
        CHECK_FALSE(r.input.equal(hq.input));
        previous = r.bytes;
      }
    }
    Rendering cheap = source.render(Configuration::at_indices(knobs, {3, 2}));
    CHECK(cheap.fresh == std::vector<std::uint8_t>{1, 0, 0, 0});
    CHECK(cheap.bytes == (8 * 8 * 2 + 7) / 8);
    CHECK(source.render(ref).input.equal(hq.input));  // deterministic, so cacheable
    ++intervals;
  }
  CHECK(intervals == 2);
}

TEST_CASE("parameters and ladder overrides are checked against the declaration") {
  Loaded l;
  ComponentSettings s;
  s.params["intervalz"] = "2";
  expect_error(
      [&] { l.registry.open_source("fixture-ramp", "", s, 1.0); }, Errc::invalid_argument,
      {"modality 'fixture-ramp' has no parameter 'intervalz'", "intervals, samples, size"});
  s = {};
  s.params["samples"] = "four";
  expect_error([&] { l.registry.open_source("fixture-ramp", "", s, 1.0); }, Errc::invalid_argument,
               {"parameter 'samples': 'four' is not a valid integer"});
  s = {};
  s.ladders["qp"] = {"20"};
  expect_error([&] { l.registry.open_source("fixture-ramp", "", s, 1.0); }, Errc::invalid_argument,
               {"modality 'fixture-ramp' has no knob 'qp'"});
  s = {};
  s.ladders["levels"] = {"128", "x"};
  expect_error(
      [&] { l.registry.open_source("fixture-ramp", "", s, 1.0); }, Errc::invalid_argument,
      {"modality 'fixture-ramp'", "knob 'levels': value 'x' is out of range (must be a number)"});
  s = {};
  s.ladders["levels"] = {"128", "2"};
  auto source = l.registry.open_source("fixture-ramp", "", s, 1.0);
  CHECK(source.knobs()[0].values.size() == 2);
  CHECK(source.knobs()[0].values[1].label == "2");
  expect_error([&] { l.registry.open_source("no-such-modality", "", {}, 1.0); }, Errc::not_found,
               {"no modality named 'no-such-modality'"});
}

TEST_CASE("the fixture task: proxy gradient reaches the rendered input across the boundary") {
  Loaded l;
  auto source = l.registry.open_source("fixture-ramp", "", {}, 1.0);
  auto task = l.registry.create_task("fixture-brightness", {}, {});
  IntervalInfo info;
  REQUIRE(source.next_interval(info));
  Rendering hq = source.render(source.reference());

  at::Tensor x = hq.input.detach().clone().requires_grad_(true);
  auto outputs = task.infer(x);
  REQUIRE(outputs.size() == 1);
  CHECK(outputs[0].size(0) == 4);
  at::Tensor proxy = task.proxy(outputs);
  CHECK(proxy.dim() == 0);
  proxy.backward();
  REQUIRE(x.grad().defined());
  // d/dx sum_t sigmoid(20 (mean_t - 0.5)) = 20 s (1 - s) / numel(sample), per element.
  at::Tensor means = hq.input.flatten(1).mean(1);
  at::Tensor s = at::sigmoid((means - 0.5) * 20.0);
  at::Tensor expected = (20.0 * s * (1 - s) / 64.0).view({4, 1, 1, 1}).expand_as(x);
  CHECK(at::allclose(x.grad(), expected, 1e-5, 1e-7));

  auto ref_results = task.decode(outputs);
  REQUIRE(ref_results.size() == 4);
  CHECK_FALSE(ref_results[0]->summary().empty());
  CHECK(task.accuracy(ref_results, ref_results) == 1.0);
}

TEST_CASE("tasks: parameters and model roles are checked") {
  Loaded l;
  ComponentSettings s;
  s.params["threshold"] = "high";
  expect_error([&] { l.registry.create_task("fixture-brightness", s, {}); }, Errc::invalid_argument,
               {"parameter 'threshold': 'high' is not a valid number"});
  std::map<std::string, std::shared_ptr<Model>> models{{"detector", nullptr}};
  expect_error([&] { l.registry.create_task("fixture-brightness", {}, models); },
               Errc::invalid_argument, {"task 'fixture-brightness' has no model role 'detector'"});
  expect_error([&] { l.registry.create_task("nope", {}, {}); }, Errc::not_found,
               {"no task named 'nope'"});
}

TEST_CASE("exceptions thrown by plugin code come back as one Error naming the component") {
  Loaded l;
  expect_error([&] { l.registry.open_source("fixture-throws", "fail-open", {}, 1.0); },
               Errc::plugin_failure,
               {"modality 'fixture-throws' (",
                "fixture_throws_at_runtime.so) failed in open: ", "cannot open 'fail-open'"});
  auto source = l.registry.open_source("fixture-throws", "ok", {}, 1.0);
  IntervalInfo info;
  CHECK(source.next_interval(info));
  expect_error([&] { source.next_interval(info); }, Errc::plugin_failure,
               {"failed in next_interval(): deliberate failure in next_interval"});
  // A deliberate report keeps its code and message, prefixed with the component.
  expect_error([&] { source.render(source.reference()); }, Errc::corrupt_data,
               {"modality 'fixture-throws': frames.bin: truncated at byte 42"});
  expect_error([&] { source.original(); }, Errc::plugin_failure,
               {"failed in original(): deliberate failure in original"});

  auto task = l.registry.create_task("fixture-throws-task", {}, {});
  expect_error([&] { task.infer(at::zeros({1})); }, Errc::plugin_failure,
               {"task 'fixture-throws-task'", "failed in infer(): deliberate failure in infer"});
  expect_error([&] { task.proxy({}); }, Errc::plugin_failure,
               {"failed in proxy(): non-standard exception"});
}

TEST_CASE("objects keep their plugin library loaded after the registry is gone") {
  std::optional<host::HostSource> source;
  std::optional<host::HostTask> task;
  {
    PluginRegistry r;
    r.scan_directory(test::fixture_dir());
    source.emplace(r.open_source("fixture-ramp", "", {}, 1.0));
    task.emplace(r.create_task("fixture-brightness", {}, {}));
  }
  IntervalInfo info;
  REQUIRE(source->next_interval(info));
  Rendering r = source->render(source->reference());
  CHECK(task->decode(task->infer(r.input)).size() == 4);
  CHECK_FALSE(source->describe().empty());
}

namespace {

// A task whose infer_batch() misbehaves in the way `mode` says.
class BatchingTask final : public Task {
 public:
  explicit BatchingTask(int mode) : mode_(mode) {}
  std::vector<at::Tensor> infer(const at::Tensor& samples) override { return {samples * 2}; }
  at::Tensor proxy(const std::vector<at::Tensor>& outputs) override { return outputs[0].sum(); }
  std::vector<ResultPtr> decode(const std::vector<at::Tensor>&) override { return {}; }
  double accuracy(const std::vector<ResultPtr>&, const std::vector<ResultPtr>&) override {
    return 1;
  }
  std::string batch_key() const override { return mode_ == 0 ? "" : "k"; }
  std::vector<std::vector<at::Tensor>> infer_batch(const std::vector<Task*>& tasks,
                                                   const std::vector<at::Tensor>& samples) override {
    if (mode_ == 1) return Task::infer_batch(tasks, samples);   // each alone: fine
    if (mode_ == 2) return {{samples[0]}};                       // one part for two tasks
    if (mode_ == 3) return {{samples[0]}, {at::zeros({7, 1})}};  // part 1: wrong sample count
    throw std::runtime_error("deliberate failure in infer_batch");
  }

 private:
  int mode_;
};

host::HostTask batching_task(int mode) {
  return host::HostTask(host::Origin{host::ComponentKind::task, "fixture-batching", nullptr},
                        std::make_shared<BatchingTask>(mode));
}

}  // namespace

TEST_CASE("infer_batch: the default runs each part alone, a misbehaving one is one plugin error") {
  auto none = batching_task(0);
  CHECK(none.batch_key().empty());  // never batched
  auto a = batching_task(1), b = batching_task(1);
  CHECK(a.batch_key() == b.batch_key());
  CHECK(!a.batch_key().empty());
  std::vector<at::Tensor> xs = {at::ones({1, 3}), at::full({2, 3}, 3.0)};
  auto out = host::HostTask::infer_batch({&a, &b}, xs);
  REQUIRE(out.size() == 2);
  CHECK(at::equal(out[0][0], xs[0] * 2));
  CHECK(at::equal(out[1][0], xs[1] * 2));
  for (int mode : {2, 3, 4}) {
    auto c = batching_task(mode), d = batching_task(mode);
    expect_error([&] { host::HostTask::infer_batch({&c, &d}, xs); }, Errc::plugin_failure,
                 {"task 'fixture-batching'", mode == 2   ? "returned 1 parts for 2 tasks"
                                             : mode == 3 ? "part 1: an output without"
                                                         : "deliberate failure in infer_batch"});
  }
}
