// oneadapt SDK: the task interface.
//
// A task plugin owns the DNN side: it runs the model(s) the core loaded for it on rendered
// samples, builds the differentiable accuracy proxy from the outputs, decodes outputs into
// results and scores results against the reference results.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "oneadapt/model.hpp"
#include "oneadapt/params.hpp"
#include "oneadapt/version.hpp"

namespace oneadapt {

/// The decoded result of one sample (a frame's detections, a window's speech decision).
class ONEADAPT_API TaskResult {
 public:
  virtual ~TaskResult() = default;
  /// Short human-readable form for logs, e.g. "3 person, 1 car".
  virtual std::string summary() const = 0;
};

using ResultPtr = std::shared_ptr<const TaskResult>;

/// Where in a sample a result found something: [0, 1] sample coordinates (x to the right, y
/// down), the score, and whether the task counts it (above its metric threshold).
struct Region {
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0, score = 0;
  bool confident = false;
};

/// How to create a task: its declared parameters (checked by the host) and the models the
/// core loaded for its requirements, by role.
struct TaskSpec {
  Params params;
  std::map<std::string, std::shared_ptr<Model>> models;
  std::string device = "cpu";
};

class ONEADAPT_API Task {
 public:
  virtual ~Task() = default;

  /// Runs the DNN on `samples` ([N, ...], N >= 1, the modality's sample format) and returns
  /// its raw outputs, each with leading dimension N. Differentiable with respect to
  /// `samples` (the core turns autograd on for the one sample it backpropagates from).
  virtual std::vector<at::Tensor> infer(const at::Tensor& samples) = 0;

  /// The accuracy proxy: a differentiable scalar from infer()'s outputs, larger when the
  /// outputs are more confident on what the metric counts.
  virtual at::Tensor proxy(const std::vector<at::Tensor>& outputs) = 0;

  /// One result per sample of infer()'s outputs.
  virtual std::vector<ResultPtr> decode(const std::vector<at::Tensor>& outputs) = 0;

  /// Agreement of `results` with `reference` (same length), in [0, 1]; 1 = identical.
  virtual double accuracy(const std::vector<ResultPtr>& results,
                          const std::vector<ResultPtr>& reference) = 0;

  /// Optional, for region-based baselines (EAAR, DDS): the regions of one result, confident
  /// ones and uncertain candidates alike. The default: none (those baselines then refuse).
  virtual std::vector<Region> regions(const TaskResult& result) {
    (void)result;
    return {};
  }

  /// Called before a new stream starts (clears recurrent state, if any).
  virtual void reset() {}

  /// Recurrent tasks (a streaming VAD's LSTM): called once at the end of every interval with
  /// the decoded results of the reference rendering; the task keeps from them the state that
  /// the next interval starts from. Every infer() within an interval starts from that same
  /// state, so an interval's results depend on the interval and the configuration only, which
  /// is what lets policies share renderings and results (docs/method-decisions.md).
  virtual void end_interval(const std::vector<ResultPtr>& reference) { (void)reference; }

  /// Optional, cross-stream batching (`oneadapt serve`, which runs one task per stream): tasks
  /// whose batch_key() is equal and not empty may run their samples in one pass through
  /// infer_batch(). The key names everything that makes two tasks' infer() compute differently
  /// apart from the per-stream state infer_batch() handles (the model, the input size); the
  /// host only compares keys of tasks of the same plugin. Default: empty, never batched.
  virtual std::string batch_key() const { return {}; }

  /// Runs tasks[i] on samples[i] ([N_i, ...], each stream's own state) in one pass and returns
  /// part i's outputs as tasks[i]->infer(samples[i]) would (equal up to floating-point
  /// rounding), each with leading dimension N_i and differentiable with respect to samples[i].
  /// Called on tasks[0]; every task is of this plugin with this task's batch_key().
  /// Default: each part on its own.
  virtual std::vector<std::vector<at::Tensor>> infer_batch(const std::vector<Task*>& tasks,
                                                           const std::vector<at::Tensor>& samples) {
    std::vector<std::vector<at::Tensor>> out;
    for (std::size_t i = 0; i < tasks.size(); ++i) out.push_back(tasks[i]->infer(samples.at(i)));
    return out;
  }
};

using TaskFactory = std::function<std::unique_ptr<Task>(const TaskSpec&)>;

/// Registration record of a task.
struct TaskInfo {
  std::string name;           ///< unique across all plugins, e.g. "detection"
  std::string description;    ///< one line
  std::string sample_format;  ///< the modality sample format it accepts
  std::vector<ModelRequirement> models;
  std::vector<ParamSpec> params;
  TaskFactory create;
};

}  // namespace oneadapt
