// Plugin-host benchmarks: the cost of loading the plugin directory (what every `oneadapt`
// command pays at start-up) and of a guarded call into plugin code (render of the example
// plugin at its reference and its cheapest configuration).
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

#include "plugin_registry.hpp"

using oneadapt::Configuration;
using oneadapt::IntervalInfo;
using oneadapt::host::PluginRegistry;

static void BM_ScanPluginDirectory(benchmark::State& state) {
  for (auto _ : state) {
    PluginRegistry registry;
    registry.scan_directory(ONEADAPT_BENCH_PLUGIN_DIR);
    benchmark::DoNotOptimize(registry.modalities().size());
  }
}
BENCHMARK(BM_ScanPluginDirectory)->Unit(benchmark::kMillisecond);

static void BM_RenderExamplePattern(benchmark::State& state) {
  PluginRegistry registry;
  registry.scan_directory(ONEADAPT_BENCH_PLUGIN_DIR);
  oneadapt::host::ComponentSettings settings;
  settings.params = {{"width", "640"}, {"height", "384"}, {"seconds", "1000"}};
  auto source = registry.open_source("example-pattern", "", settings, 1.0);
  IntervalInfo info;
  source.next_interval(info);
  auto knobs = source.knobs();
  std::vector<std::size_t> idx(knobs.size(), 0);
  if (state.range(0) == 1)
    for (std::size_t k = 0; k < knobs.size(); ++k) idx[k] = knobs[k].values.size() - 1;
  Configuration config = Configuration::at_indices(knobs, idx);
  for (auto _ : state) benchmark::DoNotOptimize(source.render(config).bytes);
  state.SetLabel(config.str() + ", 10 frames 640x384");
}
BENCHMARK(BM_RenderExamplePattern)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
