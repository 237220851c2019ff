// oneadapt SDK: the model a task runs, as the core's DNNGrad engine provides it.
//
// Tasks never load model files themselves: they declare what they need (ModelRequirement) and
// the core loads it (TorchScript, TensorFlow.js graph models, ONNX) and hands over a Model.
// Forward passes are differentiable: with autograd enabled by the caller, gradients flow from
// the outputs back to the inputs.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "oneadapt/version.hpp"

namespace oneadapt {

/// Name, shape (-1 = dynamic dimension) and element type ("float32", "int64") of a tensor.
struct TensorSpec {
  std::string name;
  std::vector<std::int64_t> shape;
  std::string dtype;
};

/// A loaded model. Parameters are frozen and the model is in evaluation mode.
class ONEADAPT_API Model {
 public:
  virtual ~Model() = default;
  /// "torchscript", "tfjs-graph", "onnx", ...
  virtual std::string format() const = 0;
  virtual const std::vector<TensorSpec>& inputs() const = 0;
  virtual const std::vector<TensorSpec>& outputs() const = 0;
  /// Runs the model on `inputs` (in the order of inputs()) and returns outputs (in the order
  /// of outputs()). Records autograd history when the caller has grad mode on.
  virtual std::vector<at::Tensor> forward(const std::vector<at::Tensor>& inputs) = 0;
};

/// What a task needs loaded. `role` is the key under which the model is handed over and the
/// config key that overrides its path (`model.<role>`).
struct ModelRequirement {
  std::string role;
  std::string description;
  std::string default_asset;         ///< asset name in the core's asset cache, or a path
  std::vector<std::string> formats;  ///< accepted formats, e.g. {"tfjs-graph", "torchscript"}
  bool optional = false;
};

}  // namespace oneadapt
