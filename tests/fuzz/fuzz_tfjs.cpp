// Fuzz target: a TensorFlow.js model.json (beside a fixed 4 KB weight shard "w.bin"), loaded and,
// when it loads, run once on small constant inputs.
#include <ATen/ATen.h>

#include <oneadapt/error.hpp>

#include "engine/engine.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool shard = [] {
    std::string zeros(4096, '\0');
    fuzz::write("w.bin", reinterpret_cast<const uint8_t*>(zeros.data()), zeros.size());
    return true;
  }();
  (void)shard;
  const auto path = fuzz::write("model.json", data, size);
  try {
    auto model = oneadapt::engine::load_model(path);
    std::vector<at::Tensor> inputs;
    for (const auto& spec : model->inputs()) {
      std::vector<int64_t> shape;
      for (auto d : spec.shape) shape.push_back(d < 1 || d > 64 ? 2 : d);
      inputs.push_back(at::ones(
          shape, at::TensorOptions().dtype(spec.dtype == "int32" ? at::kInt : at::kFloat)));
    }
    at::NoGradGuard no_grad;
    model->forward(inputs);
  } catch (const oneadapt::Error&) {
  }
  return 0;
}
