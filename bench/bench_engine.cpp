// DNNGrad engine benchmarks on the real detectors and a real vtest.avi frame: forward (no
// autograd) and forward + gradient of a scalar proxy to the input.
//   bench_engine [--runtime=tuned|default|threads|malloc] [google-benchmark flags]
// --runtime=tuned (default) applies what `oneadapt` applies at start-up (threads = cores,
// malloc thresholds, stack.md G8/G10); --runtime=default leaves LibTorch and glibc as they come
// (1 thread on these VMs); threads / malloc apply one of the two, to separate their effects.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <cstring>
#include <iostream>

#include "assets.hpp"
#include "engine/engine.hpp"
#include "image_io.hpp"

using namespace oneadapt;

namespace {

struct Loaded {
  std::shared_ptr<engine::EngineModel> model;
  at::Tensor input;
};

Loaded load(const std::string& asset, double range) {
  Loaded l;
  l.model = engine::load_model(asset_path(asset));
  at::Tensor rgb = read_rgb_frame(asset_path("video/vtest.avi"), 100);
  l.input = image_to_input(rgb, l.model->inputs()[0].shape, range);
  return l;
}

// The proxy shape OneAdapt uses for detection: a sum of sharpened scores over output 0.
at::Tensor proxy(const std::vector<at::Tensor>& out) { return at::sigmoid((out[0] - 0.5) * 20).sum(); }

void forward(benchmark::State& state, const std::string& asset, double range) {
  Loaded l = load(asset, range);
  at::NoGradGuard g;
  for (auto _ : state) benchmark::DoNotOptimize(l.model->forward({l.input}));
}

void forward_grad(benchmark::State& state, const std::string& asset, double range) {
  Loaded l = load(asset, range);
  for (auto _ : state) {
    at::Tensor x = l.input.clone().requires_grad_(true);
    auto g = engine::input_gradients(proxy(l.model->forward({x})), {x});
    benchmark::DoNotOptimize(g[0]);
  }
}

}  // namespace

BENCHMARK_CAPTURE(forward, nanodet_416, std::string("nanodet/nanodet.json"), 1.0)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward_grad, nanodet_416, std::string("nanodet/nanodet.json"), 1.0)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward, centernet_512, std::string("centernet/centernet.json"), 255.0)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward_grad, centernet_512, std::string("centernet/centernet.json"), 255.0)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  bool threads = true, malloc_tuning = true;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runtime=default") threads = malloc_tuning = false;
    else if (a == "--runtime=tuned") threads = malloc_tuning = true;
    else if (a == "--runtime=threads") threads = true, malloc_tuning = false;
    else if (a == "--runtime=malloc") threads = false, malloc_tuning = true;
    else rest.push_back(argv[i]);
  }
  std::string what = engine::configure_runtime(threads, malloc_tuning);
  if (what.empty()) what = "LibTorch and glibc defaults";
  benchmark::AddCustomContext("runtime", what + ", " + std::to_string(at::get_num_threads()) + " thread(s)");
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
