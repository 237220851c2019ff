#include "adapt/regions.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "adapt/grid.hpp"
#include "adapt/spatial.hpp"

namespace oneadapt::adapt {

std::vector<std::uint8_t> tiles_of(const SpatialSpec& s, const std::vector<Region>& regions, int dilate) {
  std::vector<std::uint8_t> on(static_cast<std::size_t>(s.cols) * static_cast<std::size_t>(s.rows), 0);
  for (const auto& r : regions) {
    const int c0 = std::max(0, static_cast<int>(std::floor(r.x0 * s.cols)) - dilate);
    const int c1 = std::min(s.cols - 1, static_cast<int>(std::floor(std::min(r.x1, 0.9999f) * s.cols)) + dilate);
    const int r0 = std::max(0, static_cast<int>(std::floor(r.y0 * s.rows)) - dilate);
    const int r1 = std::min(s.rows - 1, static_cast<int>(std::floor(std::min(r.y1, 0.9999f) * s.rows)) + dilate);
    for (int y = r0; y <= r1; ++y)
      for (int x = c0; x <= c1; ++x) on[static_cast<std::size_t>(y * s.cols + x)] = 1;
  }
  return on;
}

RunSummary run_region_baseline(host::HostSource& source, host::HostTask& task, const std::string& policy, double crf,
                               const RunSpec& spec, std::ostream& progress) {
  using json = nlohmann::json;
  if (policy != "eaar" && policy != "dds") throw Error(Errc::invalid_argument, "'" + policy + "' is not a region baseline (eaar, dds)");
  const auto spatial = source.spatial();
  if (!spatial) throw Error(Errc::invalid_argument, policy + " needs a source with a spatial knob (video: modality.params.roi_tile)");
  const auto knobs = source.knobs();
  std::vector<std::size_t> idx(knobs.size(), 0);
  bool found = false;
  for (std::size_t k = 0; k < knobs.size(); ++k)
    if (knobs[k].key == "crf")
      for (std::size_t i = 0; i < knobs[k].values.size(); ++i)
        if (knobs[k].values[i].number == crf) idx[k] = i, found = true;
  if (!found) throw Error(Errc::invalid_argument, policy + ": CRF " + KnobValue::of(crf).label + " is not on the crf ladder");
  const Configuration config = Configuration::at_indices(knobs, idx), reference = source.reference();
  const auto worst = static_cast<std::uint8_t>(spatial->levels.size() - 1);
  std::ofstream records = open_run_records(spec);
  RunSummary sum;
  sum.policy = policy;
  sum.final_config = config.str();
  double accuracy_sum = 0;
  QualityMap map = QualityMap::uniform(*spatial, 0);  // EAAR's first interval: nothing known yet
  task.reset();
  IntervalInfo info;
  while ((spec.max_intervals == 0 || sum.intervals < spec.max_intervals) && source.next_interval(info)) {
    Rendering ref = source.render(reference);
    double ref_frames = 0, frames = 0;
    const std::vector<ResultPtr> ref_results = infer_rendering(task, ref, ref_frames);
    std::vector<ResultPtr> results;
    std::uint64_t bytes = 0;
    long passes = 1;
    if (policy == "eaar") {
      Rendering r = source.render_map(config, map);
      results = infer_rendering(task, r, frames);
      bytes = r.bytes;
    } else {
      // DDS pass 1: everything at the worst level.
      map = QualityMap::uniform(*spatial, worst);
      Rendering low = source.render_map(config, map);
      results = infer_rendering(task, low, frames);
      bytes = low.bytes;
      std::vector<Region> unsure;
      for (const auto& res : results)
        for (const auto& reg : task.regions(*res))
          if (!reg.confident) unsure.push_back(reg);
      auto on = tiles_of(*spatial, unsure, 0);
      if (std::any_of(on.begin(), on.end(), [](std::uint8_t v) { return v > 0; })) {
        // Pass 2: the uncertain regions at the best level over the low-quality rest.
        for (std::size_t t = 0; t < on.size(); ++t) map.level[t] = on[t] ? 0 : worst;
        Rendering second = source.render_map(config, map);
        double frames2 = 0;
        results = infer_rendering(task, second, frames2);
        frames += frames2;
        bytes += second.bytes;
        passes = 2;
      }
    }
    const double accuracy = task.accuracy(results, ref_results);
    task.end_interval(ref_results);
    records << json{{"interval", info.index}, {"t_start", info.t_start}, {"duration", info.duration},
                    {"config", [&] { json c = json::object(); for (const auto& s : config.settings()) c[s.key] = s.value.number; return c; }()},
                    {"config_str", config.str()}, {"map", map_rle(map)}, {"passes", passes},
                    {"bytes", bytes}, {"bytes_ref", ref.bytes}, {"frames_inferred", frames},
                    {"frames_ref", static_cast<double>(ref.input.size(0))}, {"compute", frames}, {"accuracy", accuracy},
                    {"deployable", true}, {"overhead", {{"backward_passes", 0}, {"extra_renders", passes - 1}, {"extra_forwards", 0}}}}
                   .dump()
            << '\n'
            << std::flush;
    ++sum.intervals;
    accuracy_sum += accuracy;
    sum.bytes_total += bytes;
    sum.bytes_ref_total += ref.bytes;
    sum.frames_inferred_total += frames;
    sum.frames_ref_total += static_cast<double>(ref.input.size(0));
    sum.compute_total += frames;
    sum.extra_renders += passes - 1;
    progress << "[" << policy << " " << sum.intervals << "] t=" << info.t_start << "s " << passes << " pass(es), " << bytes << " B, accuracy "
             << accuracy << '\n';
    if (policy == "eaar") {
      // The next interval's map: the tiles around this interval's confident regions (last frame).
      std::vector<Region> seen;
      if (!results.empty())
        for (const auto& reg : task.regions(*results.back()))
          if (reg.confident) seen.push_back(reg);
      auto on = tiles_of(*spatial, seen, 1);
      for (std::size_t t = 0; t < on.size(); ++t) map.level[t] = on[t] ? 0 : worst;
    }
  }
  sum.accuracy_mean = sum.intervals ? accuracy_sum / static_cast<double>(sum.intervals) : 0;
  write_baseline_summary(spec, sum, crf, true, {{"spatial", {{"policy", policy}, {"crf", crf}, {"tile", spatial->tile}}}});
  return sum;
}

}  // namespace oneadapt::adapt
