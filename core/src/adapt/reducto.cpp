#include "adapt/reducto.hpp"

#include <ATen/ATen.h>

namespace oneadapt::adapt {

const std::vector<std::string>& reducto_features() {
  static const std::vector<std::string> f{"pixel", "area", "edge"};
  return f;
}

// Grey, 1/4 scale: what a camera can afford per frame.
at::Tensor grey_small(const at::Tensor& frame) {
  return at::avg_pool2d(frame.mean(0, /*keepdim=*/true).unsqueeze(0), {4, 4}).squeeze(0).squeeze(0);
}

namespace {

at::Tensor edges(const at::Tensor& g) {
  at::Tensor kx = at::tensor({-1.f, 0.f, 1.f, -2.f, 0.f, 2.f, -1.f, 0.f, 1.f}).view({1, 1, 3, 3});
  at::Tensor x = g.unsqueeze(0).unsqueeze(0);
  at::Tensor gx = at::conv2d(x, kx, {}, 1, 1), gy = at::conv2d(x, kx.transpose(2, 3), {}, 1, 1);
  return (gx * gx + gy * gy).sqrt().squeeze(0).squeeze(0) > 0.2;
}

}  // namespace

double feature_of_small(const std::string& feature, const at::Tensor& a, const at::Tensor& b) {
  if (feature == "pixel") return ((a - b).abs() > 0.08).to(at::kFloat).mean().item<double>();
  if (feature == "area") {
    at::Tensor d = at::avg_pool2d((a - b).abs().unsqueeze(0).unsqueeze(0), {8, 8});
    return (d > 0.08).to(at::kFloat).mean().item<double>();
  }
  if (feature == "edge") return (edges(a) != edges(b)).to(at::kFloat).mean().item<double>();
  throw Error(Errc::invalid_argument,
              "reducto: unknown feature '" + feature + "' (pixel, area, edge)");
}

std::vector<std::uint8_t> keep_small(const std::string& feature, double threshold,
                                     const std::vector<at::Tensor>& small) {
  std::vector<std::uint8_t> keep(small.size(), 0);
  std::size_t last = 0;
  for (std::size_t t = 0; t < small.size(); ++t)
    if (t == 0 || feature_of_small(feature, small[last], small[t]) > threshold)
      keep[t] = 1, last = t;
  return keep;
}

std::vector<ResultPtr> reused_results(const std::vector<ResultPtr>& all,
                                      const std::vector<std::uint8_t>& keep) {
  std::vector<ResultPtr> out;
  std::size_t last = 0;
  for (std::size_t t = 0; t < all.size(); ++t) {
    if (keep[t]) last = t;
    out.push_back(all[last]);
  }
  return out;
}

double reducto_feature(const std::string& feature, const at::Tensor& a, const at::Tensor& b) {
  return feature_of_small(feature, grey_small(a), grey_small(b));
}

std::vector<std::uint8_t> reducto_keep(const std::string& feature, double threshold,
                                       const at::Tensor& frames) {
  std::vector<at::Tensor> small;
  for (int64_t t = 0; t < frames.size(0); ++t) small.push_back(grey_small(frames[t]));
  return keep_small(feature, threshold, small);
}

}  // namespace oneadapt::adapt
