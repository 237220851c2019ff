#include "adapt/reducto.hpp"

#include <ATen/ATen.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "adapt/grid.hpp"

namespace oneadapt::adapt {

namespace {

using json = nlohmann::json;

const char* const kFeatures[] = {"pixel", "area", "edge"};

// Grey, 1/4 scale: what a camera can afford per frame.
at::Tensor grey_small(const at::Tensor& frame) {
  return at::avg_pool2d(frame.mean(0, /*keepdim=*/true).unsqueeze(0), {4, 4}).squeeze(0).squeeze(0);
}

at::Tensor edges(const at::Tensor& g) {
  at::Tensor kx = at::tensor({-1.f, 0.f, 1.f, -2.f, 0.f, 2.f, -1.f, 0.f, 1.f}).view({1, 1, 3, 3});
  at::Tensor x = g.unsqueeze(0).unsqueeze(0);
  at::Tensor gx = at::conv2d(x, kx, {}, 1, 1), gy = at::conv2d(x, kx.transpose(2, 3), {}, 1, 1);
  return (gx * gx + gy * gy).sqrt().squeeze(0).squeeze(0) > 0.2;
}

double feature_of_small(const std::string& feature, const at::Tensor& a, const at::Tensor& b) {
  if (feature == "pixel") return ((a - b).abs() > 0.08).to(at::kFloat).mean().item<double>();
  if (feature == "area") {
    at::Tensor d = at::avg_pool2d((a - b).abs().unsqueeze(0).unsqueeze(0), {8, 8});
    return (d > 0.08).to(at::kFloat).mean().item<double>();
  }
  if (feature == "edge") return (edges(a) != edges(b)).to(at::kFloat).mean().item<double>();
  throw Error(Errc::invalid_argument, "reducto: unknown feature '" + feature + "' (pixel, area, edge)");
}

std::vector<std::uint8_t> keep_small(const std::string& feature, double threshold, const std::vector<at::Tensor>& small) {
  std::vector<std::uint8_t> keep(small.size(), 0);
  std::size_t last = 0;
  for (std::size_t t = 0; t < small.size(); ++t)
    if (t == 0 || feature_of_small(feature, small[last], small[t]) > threshold) keep[t] = 1, last = t;
  return keep;
}

// The results a server holds when only the kept frames arrive: each frame reuses the last kept.
std::vector<ResultPtr> reused(const std::vector<ResultPtr>& all, const std::vector<std::uint8_t>& keep) {
  std::vector<ResultPtr> out;
  std::size_t last = 0;
  for (std::size_t t = 0; t < all.size(); ++t) {
    if (keep[t]) last = t;
    out.push_back(all[last]);
  }
  return out;
}

}  // namespace

double reducto_feature(const std::string& feature, const at::Tensor& a, const at::Tensor& b) {
  return feature_of_small(feature, grey_small(a), grey_small(b));
}

std::vector<std::uint8_t> reducto_keep(const std::string& feature, double threshold, const at::Tensor& frames) {
  std::vector<at::Tensor> small;
  for (int64_t t = 0; t < frames.size(0); ++t) small.push_back(grey_small(frames[t]));
  return keep_small(feature, threshold, small);
}

RunSummary run_reducto(host::HostSource& source, host::HostTask& task, const ReductoSpec& reducto, const RunSpec& spec,
                       std::ostream& progress) {
  if (reducto.period == 0) throw Error(Errc::invalid_argument, "reducto: the profiling period must be >= 1 interval");
  if (!(reducto.target > 0 && reducto.target <= 1)) throw Error(Errc::invalid_argument, "reducto: the accuracy target must be in (0, 1]");
  std::ofstream records = open_run_records(spec);
  const Configuration reference = source.reference();
  RunSummary sum;
  sum.policy = "reducto";
  sum.final_config = reference.str();
  double accuracy_sum = 0;
  std::string feature = "pixel";
  double threshold = 0;  // until the first profiling: send everything
  task.reset();
  IntervalInfo info;
  while ((spec.max_intervals == 0 || sum.intervals < spec.max_intervals) && source.next_interval(info)) {
    const at::Tensor G = source.original();
    if (G.dim() != 4 || G.size(1) != 3)
      throw Error(Errc::unsupported, "reducto: filters video frames; this modality's samples are not images [T,3,H,W]");
    std::vector<at::Tensor> small;
    for (int64_t t = 0; t < G.size(0); ++t) small.push_back(grey_small(G[t]));
    const bool profiling = sum.intervals % reducto.period == 0;
    Rendering ref = source.render(reference);
    double ref_frames = 0;
    std::vector<ResultPtr> ref_results = infer_rendering(task, ref, ref_frames);
    std::vector<std::uint8_t> keep(small.size(), 1);
    Rendering sent_rendering;
    const Rendering* sent = &ref;
    std::vector<ResultPtr> results = ref_results;
    double frames = ref_frames;
    if (profiling) {
      // Every frame sent and inferred; choose the feature and threshold for what follows: the
      // most frames skipped with the reused results at or above the target on this interval.
      std::size_t best_kept = small.size() + 1;
      for (const char* f : kFeatures) {
        std::vector<double> candidates{0.0};
        for (std::size_t t = 1; t < small.size(); ++t) candidates.push_back(feature_of_small(f, small[t - 1], small[t]));
        for (double th : candidates) {
          auto k = keep_small(f, th, small);
          std::size_t kept = 0;
          for (auto v : k) kept += v;
          if (kept < best_kept && task.accuracy(reused(ref_results, k), ref_results) >= reducto.target)
            best_kept = kept, feature = f, threshold = th;
        }
      }
    } else {
      keep = keep_small(feature, threshold, small);
      sent_rendering = source.render_selected(reference, keep);
      sent = &sent_rendering;
      results = infer_rendering(task, sent_rendering, frames);
    }
    const double accuracy = task.accuracy(results, ref_results);
    task.end_interval(ref_results);
    std::size_t kept = 0;
    for (auto v : keep) kept += v;
    const double compute = sent->compute_units > 0 ? sent->compute_units : frames;
    records << json{{"interval", info.index}, {"t_start", info.t_start}, {"duration", info.duration},
                    {"config", [&] { json c = json::object(); for (const auto& s : reference.settings()) c[s.key] = s.value.number; return c; }()},
                    {"config_str", profiling ? std::string("reference (profiling)") : reference.str()},
                    {"bytes", sent->bytes}, {"bytes_ref", ref.bytes}, {"frames_inferred", frames},
                    {"frames_ref", static_cast<double>(ref.input.size(0))}, {"compute", compute}, {"accuracy", accuracy},
                    {"deployable", true},
                    {"reducto", {{"profiling", profiling}, {"feature", feature}, {"threshold", threshold}, {"frames_sent", kept}}},
                    {"overhead", {{"backward_passes", 0}, {"extra_renders", 0}, {"extra_forwards", 0}}}}
                   .dump()
            << '\n'
            << std::flush;
    ++sum.intervals;
    accuracy_sum += accuracy;
    sum.bytes_total += sent->bytes;
    sum.bytes_ref_total += ref.bytes;
    sum.frames_inferred_total += frames;
    sum.frames_ref_total += static_cast<double>(ref.input.size(0));
    sum.compute_total += compute;
    progress << "[reducto " << sum.intervals << "] t=" << info.t_start << "s " << (profiling ? "profiling, " : "") << feature << " > "
             << threshold << ": " << kept << "/" << keep.size() << " frames sent, accuracy " << accuracy << '\n';
  }
  sum.accuracy_mean = sum.intervals ? accuracy_sum / static_cast<double>(sum.intervals) : 0;
  write_baseline_summary(spec, sum, reducto.target, true,
                         {{"reducto", {{"target", reducto.target}, {"profiling_period", reducto.period}, {"encoding", reference.str()}}}});
  return sum;
}

}  // namespace oneadapt::adapt
