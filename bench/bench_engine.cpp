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
#include <fstream>
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
at::Tensor proxy(const std::vector<at::Tensor>& out) {
  return at::sigmoid((out[0] - 0.5) * 20).sum();
}

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

// Silero VAD v5: one 32 ms chunk (64 samples of context + 512 at 16 kHz), state carried.
struct Silero {
  std::shared_ptr<engine::EngineModel> model =
      engine::load_model(asset_path("silero/silero_vad_op18_ifless.onnx"));
  at::Tensor sr = at::scalar_tensor(16000, at::kLong);
  std::vector<float> samples;  // 10 s of real speech, 16 kHz
  Silero() {
    std::ifstream in(asset_path("speech/librivox-0870.wav"), std::ios::binary);
    std::vector<char> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::size_t i = 44; i + 1 < b.size(); i += 2) {
      int16_t v;
      std::memcpy(&v, b.data() + i, 2);
      samples.push_back(static_cast<float>(v) / 32768.0f);
    }
    std::vector<float> loop;  // 10 s: the 7 s clip, then again
    while (loop.size() < 160000) loop.insert(loop.end(), samples.begin(), samples.end());
    loop.resize(160000);
    samples = loop;
  }
  at::Tensor chunk(std::size_t c) const {
    at::Tensor x = at::zeros({1, 576});
    const int64_t start = static_cast<int64_t>(c) * 512, ctx = std::min<int64_t>(64, start);
    at::Tensor all = at::from_blob(const_cast<float*>(samples.data()),
                                   {static_cast<int64_t>(samples.size())}, at::kFloat);
    if (ctx > 0) x.narrow(1, 64 - ctx, ctx).copy_(all.narrow(0, start - ctx, ctx));
    x.narrow(1, 64, 512).copy_(all.narrow(0, start, 512));
    return x;
  }
};

void silero_stream(benchmark::State& state) {
  Silero s;
  const std::size_t chunks = s.samples.size() / 512;
  std::vector<at::Tensor> inputs;
  for (std::size_t c = 0; c < chunks; ++c) inputs.push_back(s.chunk(c));
  at::NoGradGuard g;
  for (auto _ : state) {
    at::Tensor st = at::zeros({2, 1, 128});
    for (const auto& x : inputs) st = s.model->forward({x, s.sr, st})[1];
    benchmark::DoNotOptimize(st);
  }
  state.counters["ms_per_chunk"] = benchmark::Counter(
      static_cast<double>(chunks),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetLabel(std::to_string(chunks) + " chunks = 10 s of speech");
}

void silero_chunk(benchmark::State& state, bool grad) {
  Silero s;
  at::Tensor x0 = s.chunk(40), st = at::zeros({2, 1, 128});
  for (auto _ : state) {
    if (grad) {
      at::Tensor x = x0.clone().requires_grad_(true);
      auto out = s.model->forward({x, s.sr, st});
      benchmark::DoNotOptimize(engine::input_gradients(out[0].sum(), {x})[0]);
    } else {
      at::NoGradGuard g;
      benchmark::DoNotOptimize(s.model->forward({x0, s.sr, st}));
    }
  }
}

// Cross-stream batching (oneadapt serve): N frames in one pass of a graph that declares batch
// 1; the counter is the time per frame, to read against N = 1.
void forward_batch(benchmark::State& state, const std::string& asset, double range) {
  Loaded l = load(asset, range);
  const int64_t n = state.range(0);
  at::Tensor x = l.input.expand({n, -1, -1, -1}).contiguous();
  at::NoGradGuard g;
  for (auto _ : state) benchmark::DoNotOptimize(l.model->forward({x}));
  state.counters["per_frame"] = benchmark::Counter(
      static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate |
                                  benchmark::Counter::kInvert);  // CPU seconds per frame
}

// N streams of Silero VAD stepping through one 32 ms chunk together, each row its own state.
void silero_streams(benchmark::State& state) {
  Silero s;
  const int64_t n = state.range(0);
  std::vector<at::Tensor> rows;
  for (int64_t i = 0; i < n; ++i) rows.push_back(s.chunk(static_cast<std::size_t>(10 + 7 * i)));
  at::Tensor x = at::cat(rows), st = at::zeros({2, n, 128});
  at::NoGradGuard g;
  for (auto _ : state) benchmark::DoNotOptimize(s.model->forward({x, s.sr, st}));
  state.counters["per_stream"] = benchmark::Counter(
      static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate |
                                  benchmark::Counter::kInvert);  // CPU seconds per stream
}

}  // namespace

BENCHMARK(silero_streams)->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(forward_batch, nanodet_416, std::string("nanodet/nanodet.json"), 1.0)
    ->Arg(1)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK(silero_stream)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(silero_chunk, forward, false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(silero_chunk, forward_grad, true)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(forward, nanodet_416, std::string("nanodet/nanodet.json"), 1.0)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward_grad, nanodet_416, std::string("nanodet/nanodet.json"), 1.0)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward, centernet_512, std::string("centernet/centernet.json"), 255.0)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward_grad, centernet_512, std::string("centernet/centernet.json"), 255.0)
    ->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  bool threads = true, malloc_tuning = true;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runtime=default")
      threads = malloc_tuning = false;
    else if (a == "--runtime=tuned")
      threads = malloc_tuning = true;
    else if (a == "--runtime=threads")
      threads = true, malloc_tuning = false;
    else if (a == "--runtime=malloc")
      threads = false, malloc_tuning = true;
    else
      rest.push_back(argv[i]);
  }
  std::string what = engine::configure_runtime(threads, malloc_tuning);
  if (what.empty()) what = "LibTorch and glibc defaults";
  benchmark::AddCustomContext("runtime",
                              what + ", " + std::to_string(at::get_num_threads()) + " thread(s)");
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
