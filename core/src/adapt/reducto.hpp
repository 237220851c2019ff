// Reducto's on-source frame features (Li et al., SIGCOMM 2020): the camera computes a cheap
// low-level difference between each frame and the last frame it sent, on a grey 1/4-scale copy,
// and sends the frame only when the difference exceeds a threshold; the server reuses the last
// result for the frames not sent. The Reducto-style policy is policies/reducto.cpp.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include <oneadapt/task.hpp>

namespace oneadapt::adapt {

/// "pixel", "area", "edge".
const std::vector<std::string>& reducto_features();

/// A frame [3,H,W] in [0,1] as the camera compares it: grey, 1/4 scale [H/4,W/4].
at::Tensor grey_small(const at::Tensor& frame);

/// The feature of frame `b` against frame `a` on their grey_small() copies: "pixel" = fraction
/// of pixels whose grey level changed by > 0.08; "area" = fraction of 8x8 blocks whose mean
/// change is > 0.08; "edge" = fraction of pixels whose Sobel edge map (magnitude > 0.2) differs.
double feature_of_small(const std::string& feature, const at::Tensor& a, const at::Tensor& b);

/// Keep flags: frame 0 is always sent; frame t when its feature against the last sent frame
/// exceeds `threshold`.
std::vector<std::uint8_t> keep_small(const std::string& feature, double threshold,
                                     const std::vector<at::Tensor>& small);

/// The results a server holds when only the kept frames arrive: each frame reuses the last kept.
std::vector<ResultPtr> reused_results(const std::vector<ResultPtr>& all,
                                      const std::vector<std::uint8_t>& keep);

/// The same on full frames ([3,H,W] and [T,3,H,W]).
double reducto_feature(const std::string& feature, const at::Tensor& a, const at::Tensor& b);
std::vector<std::uint8_t> reducto_keep(const std::string& feature, double threshold,
                                       const at::Tensor& frames);

}  // namespace oneadapt::adapt
