#include "adapt/inference.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>

#include "engine/engine.hpp"

namespace oneadapt::adapt {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}
}  // namespace

// Infers the fresh samples of `r`; repeated samples reuse the last result. With `grad`, the
// last fresh sample runs with autograd: its forward is inference, its proxy and backward pass
// are the policy's overhead.
Inferred infer_samples(host::HostTask& task, const at::Tensor& input,
                       const std::vector<std::uint8_t>& fresh_flags, bool grad) {
  Inferred out;
  const auto T = static_cast<std::size_t>(input.size(0));
  std::vector<int64_t> fresh;
  for (std::size_t t = 0; t < T; ++t)
    if (fresh_flags.empty() || fresh_flags[t] || fresh.empty())
      fresh.push_back(static_cast<int64_t>(t));
  out.frames = static_cast<double>(fresh.size());
  std::vector<ResultPtr> fresh_results;
  auto t0 = Clock::now();
  const std::size_t plain = grad ? fresh.size() - 1 : fresh.size();
  if (plain > 0) {
    at::NoGradGuard no_grad;
    at::Tensor x = input.index_select(
        0, at::tensor(std::vector<int64_t>(fresh.begin(),
                                           fresh.begin() + static_cast<std::ptrdiff_t>(plain)),
                      at::kLong));
    fresh_results = task.decode(task.infer(x));
  }
  out.forward_ms = ms_since(t0);
  if (grad) {
    t0 = Clock::now();
    at::Tensor x = input.narrow(0, fresh.back(), 1).clone().requires_grad_(true);
    auto outputs = task.infer(x);
    {
      at::NoGradGuard no_grad;
      auto last = task.decode(outputs);
      fresh_results.insert(fresh_results.end(), last.begin(), last.end());
    }
    out.forward_ms += ms_since(t0);
    t0 = Clock::now();
    at::Tensor proxy = task.proxy(outputs);
    out.proxy = proxy.item<double>();
    out.grad_sample = static_cast<std::size_t>(fresh.back());
    if (proxy.requires_grad())
      out.grad = engine::input_gradients(proxy.reshape({}), {x})[0][0];
    else
      out.grad = at::zeros_like(x[0]);  // nothing detected: no signal this interval
    out.backward_ms = ms_since(t0);
  }
  if (fresh_results.size() != fresh.size())
    throw Error(Errc::plugin_failure, task.origin().describe() + " decoded " +
                                          std::to_string(fresh_results.size()) + " results for " +
                                          std::to_string(fresh.size()) + " samples");
  std::size_t k = 0;
  for (std::size_t t = 0; t < T; ++t) {
    if (k < fresh.size() && fresh[k] == static_cast<int64_t>(t)) ++k;
    out.results.push_back(fresh_results[k - 1]);
  }
  return out;
}

double measure_backward_weight(host::HostTask& task, const at::Tensor& sample) {
  auto timed = [&](bool grad) {
    const auto t0 = Clock::now();
    if (grad) {
      at::Tensor x = sample.clone().requires_grad_(true);
      at::Tensor p = task.proxy(task.infer(x));
      if (p.requires_grad()) engine::input_gradients(p.reshape({}), {x});
    } else {
      at::NoGradGuard no_grad;
      task.infer(sample);
    }
    return ms_since(t0);
  };
  timed(false), timed(true);  // warm-up
  std::vector<double> f, fb;
  for (int i = 0; i < 5; ++i) f.push_back(timed(false)), fb.push_back(timed(true));
  std::sort(f.begin(), f.end());
  std::sort(fb.begin(), fb.end());
  return f[2] > 0 ? std::max(0.0, fb[2] / f[2] - 1.0) : 1.0;
}

}  // namespace oneadapt::adapt
