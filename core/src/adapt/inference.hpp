// The seam between the harness and the DNN (issue 18): everything the harness and the policies
// ask of the task side (inference with and without the backward pass, scoring, regions, the
// recurrent state) goes through Inference. LocalInference calls the task in this process
// (`oneadapt run`, `compare`); split::RemoteInference sends the rendering's wire bytes to a
// `oneadapt serve` over NATS, which decodes them with the modality's receiver and runs the same
// infer_samples() there. Results stay where they were decoded (opaque handles on the source).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <oneadapt/modality.hpp>
#include <oneadapt/task.hpp>

#include "plugin_registry.hpp"

namespace oneadapt::adapt {

/// What one inference of an interval's rendering gave.
struct Inferred {
  std::vector<ResultPtr> results;  ///< one per sample (repeated samples share a result)
  double frames = 0;               ///< fresh samples inferred
  at::Tensor grad;                 ///< with grad: dProxy/dInput of sample grad_sample
  /// With grad and without full_grad on a server: Source::saliency(grad) computed there by the
  /// receiver (grad is then not sent and stays undefined). Undefined in one process.
  at::Tensor saliency;
  std::size_t grad_sample = 0;
  double proxy = 0;
  double forward_ms = 0, backward_ms = 0;
};

/// Infers the fresh samples of `input` (`fresh` as Rendering::fresh; empty = all); repeated
/// samples reuse the last fresh result. With `grad`, the last fresh sample runs with autograd:
/// its forward is inference, its proxy and backward pass are the policy's overhead.
Inferred infer_samples(host::HostTask& task, const at::Tensor& input,
                       const std::vector<std::uint8_t>& fresh, bool grad);

/// infer_samples() of several streams in one pass each for the plain samples and for the
/// gradient samples (HostTask::infer_batch; every task's batch_key() equal and not empty): the
/// same results as infer_samples() on each, up to floating-point rounding. One backward pass
/// from the sum of the proxies gives each stream its own DNNGrad (the samples do not
/// interact). Each pass's time is shared out over the streams in it.
std::vector<Inferred> infer_samples_batch(const std::vector<host::HostTask*>& tasks,
                                          const std::vector<at::Tensor>& inputs,
                                          const std::vector<std::vector<std::uint8_t>>& fresh,
                                          const std::vector<bool>& grad);

/// Measures a backward pass's cost in forward units on `sample` ([1, ...]): the median of five
/// (forward with autograd + proxy + backward) over the median of five plain forwards, minus 1.
double measure_backward_weight(host::HostTask& task, const at::Tensor& sample);

class Inference {
 public:
  virtual ~Inference() = default;
  /// infer_samples() on what `r` renders (`config` and `info` are what the receiver needs).
  /// Without `full_grad` the caller needs only the gradient's saliency (a server then sends S,
  /// not DNNGrad).
  virtual Inferred infer(const Rendering& r, const Configuration& config, const IntervalInfo& info,
                         bool grad, bool full_grad) = 0;
  /// measure_backward_weight() on sample `sample` of `r`.
  virtual double backward_weight(const Rendering& r, const Configuration& config,
                                 const IntervalInfo& info, std::size_t sample) = 0;
  virtual double accuracy(const std::vector<ResultPtr>& results,
                          const std::vector<ResultPtr>& reference) = 0;
  virtual std::vector<Region> regions(const TaskResult& result) = 0;
  virtual void reset() = 0;
  virtual void end_interval(const std::vector<ResultPtr>& reference) = 0;
  /// Who answers, for error messages ("task 'detection' (libdetection.so)", "server S at URL").
  virtual std::string describe() const = 0;
};

/// The task in this process.
class LocalInference final : public Inference {
 public:
  explicit LocalInference(host::HostTask& task) : task_(task) {}
  Inferred infer(const Rendering& r, const Configuration&, const IntervalInfo&, bool grad,
                 bool) override {
    return infer_samples(task_, r.input, r.fresh, grad);
  }
  double backward_weight(const Rendering& r, const Configuration&, const IntervalInfo&,
                         std::size_t sample) override {
    return measure_backward_weight(task_, r.input.narrow(0, static_cast<int64_t>(sample), 1));
  }
  double accuracy(const std::vector<ResultPtr>& results,
                  const std::vector<ResultPtr>& reference) override {
    return task_.accuracy(results, reference);
  }
  std::vector<Region> regions(const TaskResult& result) override { return task_.regions(result); }
  void reset() override { task_.reset(); }
  void end_interval(const std::vector<ResultPtr>& reference) override {
    task_.end_interval(reference);
  }
  std::string describe() const override { return task_.origin().describe(); }
  host::HostTask& task() { return task_; }

 private:
  host::HostTask& task_;
};

}  // namespace oneadapt::adapt
