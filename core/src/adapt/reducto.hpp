// Reducto (Li et al., SIGCOMM 2020) as a baseline in the same harness: on-source frame
// filtering. The camera computes a cheap low-level difference between each frame and the last
// frame it sent (pixel, area or edge feature, on a grey 1/4-scale copy) and sends the frame only
// when the difference exceeds a threshold; the server reuses the last result for the frames not
// sent. Every `period` intervals the camera sends every frame, the server infers them all and
// picks, for the next intervals, the feature and threshold that skip the most frames while the
// reused results still reach the accuracy target on that interval (charged: the full interval's
// bytes; its forwards are the served inference). Video only: the samples must be images.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "adapt/runner.hpp"

namespace oneadapt::adapt {

struct ReductoSpec {
  double target = 0.9;      ///< accuracy the chosen threshold must reach on the profiled interval
  std::size_t period = 5;   ///< profile every `period` intervals (the first interval profiles)
};

/// The three Reducto features of frame `b` against frame `a` ([3,H,W] floats in [0,1]):
/// "pixel" = fraction of pixels whose grey level changed by > 0.08; "area" = fraction of 8x8
/// blocks whose mean change is > 0.08; "edge" = fraction of pixels whose Sobel edge map
/// (magnitude > 0.2) differs.
double reducto_feature(const std::string& feature, const at::Tensor& a, const at::Tensor& b);

/// Keep flags for an interval's frames [T,3,H,W]: frame 0 is always sent; frame t is sent when
/// its feature against the last sent frame exceeds `threshold`.
std::vector<std::uint8_t> reducto_keep(const std::string& feature, double threshold, const at::Tensor& frames);

/// Runs Reducto over the source's stream at the reference encoding configuration; writes
/// records.jsonl and summary.json like the other baselines (spec.out_dir).
RunSummary run_reducto(host::HostSource& source, host::HostTask& task, const ReductoSpec& reducto, const RunSpec& spec,
                       std::ostream& progress);

}  // namespace oneadapt::adapt
