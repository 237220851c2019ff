// Helpers shared by the pipeline tests (loop, audio, lidar): the built plugins, a fresh
// temporary directory per test, and a run's records.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <sstream>

#include "adapt/runner.hpp"
#include "plugin_registry.hpp"

namespace test_support {

/// The plugins of this build (ONEADAPT_PLUGIN_DIR), loaded once.
inline oneadapt::host::PluginRegistry& plugins() {
  static oneadapt::host::PluginRegistry r;
  static bool loaded = false;
  if (!loaded) {
    r.scan_directory(ONEADAPT_PLUGIN_DIR);
    loaded = true;
  }
  return r;
}

/// An empty directory under the system's temporary directory, unique to this process.
inline std::filesystem::path temp_dir(const std::string& tag) {
  std::filesystem::path d = std::filesystem::temp_directory_path() /
                            ("oneadapt-" + tag + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

/// The records.jsonl of a run directory, one JSON object per interval.
inline std::vector<nlohmann::json> record_lines(const std::filesystem::path& dir) {
  std::vector<nlohmann::json> out;
  std::ifstream in(dir / "records.jsonl");
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

/// Policy `name` from the table at `args` over the first `intervals` intervals of `source`, in a
/// harness (sharing `cache` when given); records go to `out`.
inline oneadapt::adapt::RunSummary run_policy(
    const std::string& name, oneadapt::host::HostSource source, oneadapt::host::HostTask& task,
    const oneadapt::adapt::PolicyArgs& args, const std::filesystem::path& out,
    std::size_t intervals, oneadapt::adapt::OutcomeCache* cache = nullptr,
    double backward_weight = 0) {
  const auto& info = oneadapt::adapt::find_policy(name);
  auto policy = info.make(args);
  oneadapt::adapt::HarnessOptions o;
  o.max_intervals = intervals;
  o.out_dir = out;
  o.cache = cache;
  o.backward_weight = backward_weight;
  oneadapt::adapt::Harness h(task, o);
  std::ostringstream progress;
  return h.run(source, *policy,
               {info.name, info.deployable, oneadapt::adapt::point_name(info.points), args.point},
               progress, false);
}

/// OneAdapt (default options) at `beta` over the first `intervals` intervals of `source`;
/// `out` receives the run directory.
inline oneadapt::adapt::RunSummary run_oneadapt(oneadapt::host::HostSource source,
                                                oneadapt::host::HostTask task, double beta,
                                                std::size_t intervals, std::filesystem::path& out) {
  oneadapt::adapt::RunSpec spec;
  spec.oneadapt.beta = beta;
  spec.max_intervals = intervals;
  out = temp_dir("run-" + std::to_string(beta));
  spec.out_dir = out;
  std::ostringstream progress;
  return oneadapt::adapt::run_experiment(source, task, spec, progress, false);
}

}  // namespace test_support
