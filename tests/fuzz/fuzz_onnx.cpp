// Fuzz target: an ONNX model file, loaded and, when it loads, run once on small constant inputs.
#include <ATen/ATen.h>

#include <oneadapt/error.hpp>

#include "engine/engine.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = fuzz::write("model.onnx", data, size);
  try {
    auto model = oneadapt::engine::load_model(path);
    std::vector<at::Tensor> inputs;
    for (const auto& spec : model->inputs()) {
      std::vector<int64_t> shape;
      for (auto d : spec.shape)
        shape.push_back(d < 1 || d > 64 ? 2 : d);  // dynamic or large: small
      at::ScalarType t = spec.dtype == "int64"   ? at::kLong
                         : spec.dtype == "int32" ? at::kInt
                         : spec.dtype == "bool"  ? at::kBool
                                                 : at::kFloat;
      inputs.push_back(at::ones(shape, at::TensorOptions().dtype(t)));
    }
    at::NoGradGuard no_grad;
    model->forward(inputs);
  } catch (const oneadapt::Error&) {
    // a refusal with a message is the expected outcome
  }
  return 0;
}
