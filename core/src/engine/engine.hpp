// The DNNGrad engine: loads models from the formats users have (TorchScript, TensorFlow.js
// graph models, ONNX) into LibTorch, runs them differentiably, and computes the
// gradient of a scalar built from the outputs with respect to the inputs.
//
// This header is torch-light (ATen's Tensor only): include it freely.
#pragma once

#include <oneadapt/error.hpp>
#include <oneadapt/model.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace oneadapt::engine {

struct LoadOptions {
  /// "cpu" or "cuda" (or "cuda:N"). CUDA fails with one clear error when unavailable.
  std::string device = "cpu";
  /// Compute in float64 (weights and activations): for gradient checks against finite
  /// differences, as torch.autograd.gradcheck does. Float32 otherwise.
  bool float64 = false;
};

/// What `oneadapt model info` prints.
struct ModelSummary {
  std::string format;
  std::filesystem::path path;
  std::int64_t parameters = 0;              ///< floating-point weight elements
  std::map<std::string, int> op_histogram;  ///< op type -> count (executed ops, not constants)
  std::string device;
};

/// A model loaded by the engine. Parameters are frozen, evaluation mode. forward() moves its
/// inputs to the model's device and checks them against inputs(); it records autograd
/// history when grad mode is on.
class EngineModel : public Model {
 public:
  virtual ModelSummary summary() const = 0;
};

/// Loads a model, picking the format from the file: `*.json` (or a directory holding
/// model.json) is a TensorFlow.js graph model, `*.pt`/`*.pth`/`*.torchscript` is TorchScript.
/// Throws Error (not_found, corrupt_data, unsupported, model) naming the file and the problem.
std::shared_ptr<EngineModel> load_model(const std::filesystem::path& path,
                                        const LoadOptions& options = {});

/// Gradient of `scalar` (a 0-dim tensor built from outputs of a forward pass that ran with
/// grad mode on) with respect to each tensor of `inputs` (which must require grad).
std::vector<at::Tensor> input_gradients(const at::Tensor& scalar,
                                        const std::vector<at::Tensor>& inputs);

/// Process-wide settings for fast CPU inference, applied once at start-up: LibTorch's
/// intra-op threads = hardware concurrency (unless OMP_NUM_THREADS is set; stack.md G8) and
/// glibc malloc thresholds that stop large activation buffers from being unmapped after every
/// backward pass (stack.md G10). Returns a one-line description of what it set.
std::string configure_runtime(bool threads = true, bool malloc_tuning = true);

// Format-specific loaders (used by load_model; exposed for tests).
std::shared_ptr<EngineModel> load_tfjs_graph_model(const std::filesystem::path& model_json,
                                                   const LoadOptions& options);
std::shared_ptr<EngineModel> load_torchscript_model(const std::filesystem::path& path,
                                                    const LoadOptions& options);
std::shared_ptr<EngineModel> load_onnx_model(const std::filesystem::path& path,
                                             const LoadOptions& options);

/// Reads a serialized ONNX TensorProto (the official test vectors' input_N.pb/output_N.pb).
at::Tensor read_onnx_tensor_file(const std::filesystem::path& path);

}  // namespace oneadapt::engine
