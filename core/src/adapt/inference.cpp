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

namespace {
// The indices of the samples to infer: the fresh ones, and always the first.
std::vector<int64_t> fresh_indices(const at::Tensor& input, const std::vector<std::uint8_t>& flags) {
  std::vector<int64_t> fresh;
  const auto T = static_cast<std::size_t>(input.size(0));
  for (std::size_t t = 0; t < T; ++t)
    if (flags.empty() || flags[t] || fresh.empty()) fresh.push_back(static_cast<int64_t>(t));
  return fresh;
}

// One result per sample of `input`: repeated samples share the last fresh sample's result.
void spread_results(host::HostTask& task, const at::Tensor& input,
                    const std::vector<int64_t>& fresh, const std::vector<ResultPtr>& fresh_results,
                    Inferred& out) {
  if (fresh_results.size() != fresh.size())
    throw Error(Errc::plugin_failure, task.origin().describe() + " decoded " +
                                          std::to_string(fresh_results.size()) + " results for " +
                                          std::to_string(fresh.size()) + " samples");
  std::size_t k = 0;
  for (int64_t t = 0; t < input.size(0); ++t) {
    if (k < fresh.size() && fresh[k] == t) ++k;
    out.results.push_back(fresh_results[k - 1]);
  }
}

at::Tensor rows(const at::Tensor& input, const std::vector<int64_t>& index, std::size_t count) {
  return input.index_select(
      0, at::tensor(std::vector<int64_t>(index.begin(),
                                         index.begin() + static_cast<std::ptrdiff_t>(count)),
                    at::kLong));
}
}  // namespace

// Infers the fresh samples of `r`; repeated samples reuse the last result. With `grad`, the
// last fresh sample runs with autograd: its forward is inference, its proxy and backward pass
// are the policy's overhead.
Inferred infer_samples(host::HostTask& task, const at::Tensor& input,
                       const std::vector<std::uint8_t>& fresh_flags, bool grad) {
  Inferred out;
  const std::vector<int64_t> fresh = fresh_indices(input, fresh_flags);
  out.frames = static_cast<double>(fresh.size());
  std::vector<ResultPtr> fresh_results;
  auto t0 = Clock::now();
  const std::size_t plain = grad ? fresh.size() - 1 : fresh.size();
  if (plain > 0) {
    at::NoGradGuard no_grad;
    fresh_results = task.decode(task.infer(rows(input, fresh, plain)));
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
  spread_results(task, input, fresh, fresh_results, out);
  return out;
}

std::vector<Inferred> infer_samples_batch(const std::vector<host::HostTask*>& tasks,
                                          const std::vector<at::Tensor>& inputs,
                                          const std::vector<std::vector<std::uint8_t>>& flags,
                                          const std::vector<bool>& grad) {
  const std::size_t n = tasks.size();
  if (inputs.size() != n || flags.size() != n || grad.size() != n)
    throw Error(Errc::invalid_argument, "infer_samples_batch: one input per task");
  std::vector<Inferred> out(n);
  std::vector<std::vector<int64_t>> fresh(n);
  std::vector<std::vector<ResultPtr>> fresh_results(n);
  double plain_total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    fresh[i] = fresh_indices(inputs[i], flags[i]);
    out[i].frames = static_cast<double>(fresh[i].size());
    plain_total += static_cast<double>(fresh[i].size() - (grad[i] ? 1 : 0));
  }
  // The time of a pass is shared out in proportion to each part's samples in it.
  auto share = [](double ms, double mine, double all) { return all > 0 ? ms * mine / all : 0.0; };

  // Every part's plain samples in one pass.
  {
    std::vector<host::HostTask*> who;
    std::vector<at::Tensor> xs;
    std::vector<std::size_t> part;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t plain = fresh[i].size() - (grad[i] ? 1 : 0);
      if (plain == 0) continue;
      who.push_back(tasks[i]), xs.push_back(rows(inputs[i], fresh[i], plain)), part.push_back(i);
    }
    if (!who.empty()) {
      const auto t0 = Clock::now();
      at::NoGradGuard no_grad;
      auto outputs = host::HostTask::infer_batch(who, xs);
      for (std::size_t k = 0; k < who.size(); ++k)
        fresh_results[part[k]] = who[k]->decode(outputs[k]);
      const double ms = ms_since(t0);
      for (std::size_t k = 0; k < who.size(); ++k)
        out[part[k]].forward_ms = share(ms, static_cast<double>(xs[k].size(0)), plain_total);
    }
  }

  // Every part's gradient sample in one pass; one backward pass from the sum of their proxies
  // gives each sample its own proxy's gradient (the samples do not interact).
  std::vector<host::HostTask*> who;
  std::vector<at::Tensor> xs;
  std::vector<std::size_t> part;
  for (std::size_t i = 0; i < n; ++i) {
    if (!grad[i]) continue;
    who.push_back(tasks[i]);
    xs.push_back(inputs[i].narrow(0, fresh[i].back(), 1).clone().requires_grad_(true));
    part.push_back(i);
  }
  if (who.empty()) {
    for (std::size_t i = 0; i < n; ++i)
      spread_results(*tasks[i], inputs[i], fresh[i], fresh_results[i], out[i]);
    return out;
  }
  auto t0 = Clock::now();
  auto outputs = host::HostTask::infer_batch(who, xs);
  {
    at::NoGradGuard no_grad;
    for (std::size_t k = 0; k < who.size(); ++k) {
      auto last = who[k]->decode(outputs[k]);
      auto& r = fresh_results[part[k]];
      r.insert(r.end(), last.begin(), last.end());
    }
  }
  const double forward_ms = ms_since(t0);
  t0 = Clock::now();
  at::Tensor total;
  std::vector<at::Tensor> with_grad;
  std::vector<std::size_t> with_grad_part;
  for (std::size_t k = 0; k < who.size(); ++k) {
    Inferred& o = out[part[k]];
    at::Tensor proxy = who[k]->proxy(outputs[k]);
    o.proxy = proxy.item<double>();
    o.grad_sample = static_cast<std::size_t>(fresh[part[k]].back());
    if (proxy.requires_grad()) {
      total = total.defined() ? total + proxy.reshape({}) : proxy.reshape({});
      with_grad.push_back(xs[k]), with_grad_part.push_back(part[k]);
    } else {
      o.grad = at::zeros_like(xs[k][0]);  // nothing detected: no signal this interval
    }
  }
  if (total.defined()) {
    auto grads = engine::input_gradients(total, with_grad);
    for (std::size_t k = 0; k < with_grad.size(); ++k) out[with_grad_part[k]].grad = grads[k][0];
  }
  const double backward_ms = ms_since(t0);
  const auto parts = static_cast<double>(who.size());
  for (std::size_t k = 0; k < who.size(); ++k) {
    out[part[k]].forward_ms += forward_ms / parts;
    out[part[k]].backward_ms = backward_ms / parts;
  }
  for (std::size_t i = 0; i < n; ++i)
    spread_results(*tasks[i], inputs[i], fresh[i], fresh_results[i], out[i]);
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
