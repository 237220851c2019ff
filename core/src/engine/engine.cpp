#include "engine/engine.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <malloc.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "engine/model_common.hpp"

namespace fs = std::filesystem;

namespace oneadapt::engine {

c10::Device resolve_device(const std::string& device, const fs::path& model) {
  c10::Device d(at::kCPU);
  try {
    d = c10::Device(device);
  } catch (const c10::Error&) {
    throw Error(Errc::invalid_argument,
                "device '" + device + "' is not valid (use cpu, cuda or cuda:N)");
  }
  if (d.is_cuda() && !at::hasCUDA())
    throw Error(Errc::unsupported,
                model.string() + ": device '" + device +
                    "' requested, but this LibTorch has no CUDA or no GPU is visible");
  if (!d.is_cpu() && !d.is_cuda())
    throw Error(Errc::unsupported, "device '" + device + "' is not supported (use cpu or cuda)");
  return d;
}

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "float32";
    case at::kDouble:
      return "float64";
    case at::kHalf:
      return "float16";
    case at::kInt:
      return "int32";
    case at::kLong:
      return "int64";
    case at::kBool:
      return "bool";
    case at::kByte:
      return "uint8";
    default:
      return c10::toString(t);
  }
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i)
    out += (i ? "," : "") + (shape[i] < 0 ? std::string("?") : std::to_string(shape[i]));
  return out + "]";
}
std::string shape_text(at::IntArrayRef shape) { return shape_text(shape.vec()); }

void check_inputs(const std::vector<at::Tensor>& inputs, const std::vector<TensorSpec>& specs,
                  const fs::path& model) {
  if (inputs.size() != specs.size())
    throw Error(Errc::invalid_argument, model.string() + ": expects " +
                                            std::to_string(specs.size()) + " input(s), got " +
                                            std::to_string(inputs.size()));
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto& spec = specs[i];
    if (!inputs[i].defined())
      throw Error(Errc::invalid_argument,
                  model.string() + ": input '" + spec.name + "' is undefined");
    if (spec.shape.empty()) continue;  // unknown rank
    bool ok = inputs[i].dim() == static_cast<int64_t>(spec.shape.size());
    for (std::size_t d = 0; ok && d < spec.shape.size(); ++d)
      ok = spec.shape[d] < 0 || spec.shape[d] == inputs[i].size(static_cast<int64_t>(d));
    if (!ok)
      throw Error(Errc::invalid_argument, model.string() + ": input '" + spec.name +
                                              "' expects shape " + shape_text(spec.shape) +
                                              ", got " + shape_text(inputs[i].sizes()));
  }
}

namespace {
// A byte count from the environment, or `fallback` when unset or not a positive decimal number.
std::uint64_t env_bytes(const char* name, std::uint64_t fallback) {
  const char* env = std::getenv(name);
  if (env && *env >= '0' && *env <= '9') {  // strtoull would take "-1" as 2^64 - 1
    char* end = nullptr;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (end && *end == '\0' && v > 0) return static_cast<std::uint64_t>(v);
  }
  return fallback;
}
}  // namespace

std::string limit_text(std::uint64_t bytes) {
  char buf[64];
  if (bytes >= 1000000000ULL)
    std::snprintf(buf, sizeof buf, "%.1f GB", static_cast<double>(bytes) / 1e9);
  else if (bytes >= 1000000ULL)
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
  return buf;
}

std::uint64_t max_tensor_bytes() {
  static const std::uint64_t limit = env_bytes("ONEADAPT_MAX_TENSOR_BYTES", std::uint64_t{4} << 30);
  return limit;
}

std::uint64_t max_model_bytes() {
  static const std::uint64_t limit = env_bytes("ONEADAPT_MAX_MODEL_BYTES", std::uint64_t{4} << 30);
  return limit;
}

int64_t checked_numel(const std::vector<int64_t>& shape, std::size_t element_size,
                      const std::string& what) {
  const std::uint64_t limit = max_tensor_bytes() / std::max<std::size_t>(element_size, 1);
  std::uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      throw Error(Errc::model,
                  what + ": negative dimension " + std::to_string(d) + " in " + shape_text(shape));
    if (d != 0 && n > limit / static_cast<std::uint64_t>(d)) {
      throw Error(Errc::model, what + ": shape " + shape_text(shape) +
                                   " needs more than the limit of " +
                                   limit_text(max_tensor_bytes()) +
                                   " for one tensor (ONEADAPT_MAX_TENSOR_BYTES raises it)");
    }
    n *= static_cast<std::uint64_t>(d);
  }
  return static_cast<int64_t>(n);
}

at::Tensor reduce_axes(const at::Tensor& x, std::vector<int64_t> axes, bool keep,
                       const std::string& kind) {
  if (kind == "Mean") return x.mean(axes, keep);
  if (kind == "Sum") return x.sum(axes, keep);
  std::sort(axes.rbegin(), axes.rend());  // one axis at a time, highest first
  at::Tensor y = x;
  for (auto a : axes) {
    if (kind == "Max")
      y = std::get<0>(y.max(a, keep));
    else if (kind == "Min")
      y = std::get<0>(y.min(a, keep));
    else if (kind == "Prod")
      y = y.prod(a, keep);
    else
      throw Error(Errc::internal, "reduce_axes: unknown kind " + kind);
  }
  return y;
}

int natural_compare(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) &&
        std::isdigit(static_cast<unsigned char>(b[j]))) {
      std::size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      unsigned long long x = std::stoull(a.substr(i, ie - i)), y = std::stoull(b.substr(j, je - j));
      if (x != y) return x < y ? -1 : 1;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j] ? -1 : 1;
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j ? -1 : (a.size() - i > b.size() - j ? 1 : 0);
}

std::shared_ptr<EngineModel> load_model(const fs::path& path, const LoadOptions& options) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(Errc::not_found, path.string() + ": no such model file");
  fs::path file = path;
  if (fs::is_directory(path, ec)) {
    file = path / "model.json";
    if (!fs::exists(file, ec))
      throw Error(Errc::not_found, path.string() + ": directory has no model.json");
  }
  std::string ext = file.extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".json") return load_tfjs_graph_model(file, options);
  if (ext == ".pt" || ext == ".pth" || ext == ".torchscript")
    return load_torchscript_model(file, options);
  if (ext == ".onnx") return load_onnx_model(file, options);
  // No telling extension: look at the first bytes.
  std::ifstream in(file, std::ios::binary);
  char head[2] = {0, 0};
  in.read(head, 2);
  if (head[0] == 'P' && head[1] == 'K') return load_torchscript_model(file, options);
  if (head[0] == '{') return load_tfjs_graph_model(file, options);
  throw Error(Errc::unsupported, file.string() +
                                     ": unknown model format (expected a TensorFlow.js model.json, "
                                     "a TorchScript .pt or an ONNX .onnx file)");
}

std::vector<at::Tensor> input_gradients(const at::Tensor& scalar,
                                        const std::vector<at::Tensor>& inputs) {
  if (!scalar.defined() || scalar.numel() != 1)
    throw Error(Errc::invalid_argument,
                "gradient needs a scalar, got shape " +
                    (scalar.defined() ? shape_text(scalar.sizes()) : std::string("undefined")));
  if (!scalar.requires_grad())
    throw Error(Errc::invalid_argument,
                "the scalar does not depend on any input that requires grad "
                "(was the forward pass run with grad mode on?)");
  for (const auto& x : inputs)
    if (!x.requires_grad()) throw Error(Errc::invalid_argument, "an input does not require grad");
  auto grads = torch::autograd::grad({scalar.reshape({})}, inputs, {}, /*retain_graph=*/false,
                                     /*create_graph=*/false, /*allow_unused=*/true);
  for (std::size_t i = 0; i < grads.size(); ++i)
    if (!grads[i].defined()) grads[i] = at::zeros_like(inputs[i]);
  return grads;
}

std::string configure_runtime(bool threads, bool malloc_tuning) {
  std::string what;
  if (malloc_tuning) {
    // Keep big activation/gradient buffers in the heap between passes (stack.md G10).
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    what += "malloc mmap threshold 32 MiB";
  }
  if (threads) {
    int n = static_cast<int>(std::thread::hardware_concurrency());
    if (const char* env = std::getenv("OMP_NUM_THREADS")) n = std::max(1, std::atoi(env));
    if (n > 0) at::set_num_threads(n);
    what += std::string(what.empty() ? "" : ", ") + std::to_string(at::get_num_threads()) +
            " intra-op threads";
  }
  return what;
}

}  // namespace oneadapt::engine
