// ONNX importer: parses a ModelProto with Debian's libonnx (protobuf classes, no checker: it
// rejects IR 10 / opset 18), folds constant subgraphs at load, and executes the graph as ATen
// ops so that autograd works. `If` runs the chosen branch at run time (Silero VAD selects its
// 8 kHz or 16 kHz branch from the `sr` input); a constant condition is folded at load.
// Sqrt, Log and Div have a gradient-safe backward (finite at exact zeros) and an exact forward.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <onnx/onnx_pb.h>
#include <torch/csrc/autograd/custom_function.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <unordered_map>

#include "engine/engine.hpp"
#include "engine/graph.hpp"
#include "engine/model_common.hpp"

namespace oneadapt::engine {

namespace {

namespace fs = std::filesystem;
using Tensors = std::vector<at::Tensor>;

// --- gradient-safe elementwise functions ------------------------------------------------------
// Forward exactly as ATen computes it; backward with the input kept away from zero by kEps, so
// that digital silence (exact zeros) gives a finite gradient instead of inf/NaN.
constexpr double kEps = 1e-12;

struct SafeSqrt : public torch::autograd::Function<SafeSqrt> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x) {
    at::Tensor y = at::sqrt(x);
    ctx->save_for_backward({x});
    return y;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list g) {
    at::Tensor x = ctx->get_saved_variables()[0];
    return {g[0] / (2 * at::sqrt(x.clamp_min(kEps)))};
  }
};

struct SafeLog : public torch::autograd::Function<SafeLog> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x) {
    ctx->save_for_backward({x});
    return at::log(x);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list g) {
    at::Tensor x = ctx->get_saved_variables()[0];
    return {g[0] / x.clamp_min(kEps)};
  }
};

struct SafeDiv : public torch::autograd::Function<SafeDiv> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a,
                            const at::Tensor& b) {
    ctx->save_for_backward({a, b});
    return at::div(a, b);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list g) {
    auto saved = ctx->get_saved_variables();
    at::Tensor a = saved[0], b = saved[1];
    at::Tensor bs =
        at::where(b.abs() < kEps, at::full_like(b, kEps) * at::where(b < 0, -1.0, 1.0), b);
    at::Tensor ga = g[0] / bs, gb = -g[0] * a / (bs * bs);
    // Reduce broadcast dimensions back to each operand's shape.
    auto reduce = [](at::Tensor grad, const at::Tensor& like) {
      while (grad.dim() > like.dim()) grad = grad.sum(0);
      for (int64_t d = 0; d < like.dim(); ++d)
        if (like.size(d) == 1 && grad.size(d) != 1) grad = grad.sum(d, true);
      return grad;
    };
    return {reduce(ga, a), reduce(gb, b)};
  }
};

bool needs_grad(const at::Tensor& t) { return t.requires_grad() && at::GradMode::is_enabled(); }
at::Tensor safe_sqrt(const at::Tensor& x) {
  return needs_grad(x) ? SafeSqrt::apply(x) : at::sqrt(x);
}
at::Tensor safe_log(const at::Tensor& x) { return needs_grad(x) ? SafeLog::apply(x) : at::log(x); }
at::Tensor safe_div(const at::Tensor& a, const at::Tensor& b) {
  if (!a.is_floating_point() && !b.is_floating_point()) return at::div(a, b, "trunc");
  return (needs_grad(a) || needs_grad(b)) ? SafeDiv::apply(a, b) : at::div(a, b);
}

// --- tensors and attributes ---------------------------------------------------------------------

at::ScalarType onnx_dtype(int t, const std::string& what) {
  switch (t) {
    case onnx::TensorProto::FLOAT:
      return at::kFloat;
    case onnx::TensorProto::DOUBLE:
      return at::kDouble;
    case onnx::TensorProto::FLOAT16:
      return at::kHalf;
    case onnx::TensorProto::INT64:
      return at::kLong;
    case onnx::TensorProto::INT32:
      return at::kInt;
    case onnx::TensorProto::INT16:
      return at::kShort;
    case onnx::TensorProto::INT8:
      return at::kChar;
    case onnx::TensorProto::UINT8:
      return at::kByte;
    case onnx::TensorProto::BOOL:
      return at::kBool;
    default:
      throw Error(Errc::unsupported,
                  what + ": tensor data type " + std::to_string(t) + " is not supported");
  }
}

}  // namespace

/// A TensorProto as an ATen tensor (raw_data or the typed fields). Exposed for the conformance
/// test runner, which reads the official test vectors (.pb files) with it.
at::Tensor onnx_tensor_from_proto(const onnx::TensorProto& t, const std::string& what) {
  std::vector<int64_t> shape(t.dims().begin(), t.dims().end());
  const at::ScalarType type = onnx_dtype(t.data_type(), what);
  if (t.data_location() == onnx::TensorProto::EXTERNAL)
    throw Error(Errc::unsupported,
                what + ": tensor '" + t.name() + "' keeps its data in an external file");
  const int64_t count =
      checked_numel(shape, c10::elementSize(type), what + ": tensor '" + t.name() + "'");
  if (t.has_raw_data()) {
    const std::string& raw = t.raw_data();
    const auto need = static_cast<std::size_t>(count) * c10::elementSize(type);
    if (raw.size() != need)
      throw Error(Errc::corrupt_data,
                  what + ": tensor '" + t.name() + "' has " + std::to_string(raw.size()) +
                      " bytes of data, its shape needs " + std::to_string(need));
    return at::from_blob(const_cast<char*>(raw.data()), shape, type).clone();
  }
  auto check = [&](int n) {
    if (n != count)
      throw Error(Errc::corrupt_data, what + ": tensor '" + t.name() + "' has " +
                                          std::to_string(n) + " values, its shape needs " +
                                          std::to_string(count));
  };
  switch (type) {
    case at::kFloat:
      check(t.float_data_size());
      return at::tensor(std::vector<float>(t.float_data().begin(), t.float_data().end()),
                        at::kFloat)
          .view(shape);
    case at::kDouble:
      check(t.double_data_size());
      return at::tensor(std::vector<double>(t.double_data().begin(), t.double_data().end()),
                        at::kDouble)
          .view(shape);
    case at::kLong:
      check(t.int64_data_size());
      return at::tensor(std::vector<int64_t>(t.int64_data().begin(), t.int64_data().end()),
                        at::kLong)
          .view(shape);
    case at::kHalf: {  // stored as uint16 bit patterns in int32_data
      check(t.int32_data_size());
      std::vector<int16_t> bits(t.int32_data().begin(), t.int32_data().end());
      return at::from_blob(bits.data(), shape, at::kHalf).clone();
    }
    default: {
      check(t.int32_data_size());
      return at::tensor(std::vector<int32_t>(t.int32_data().begin(), t.int32_data().end()),
                        at::kInt)
          .view(shape)
          .to(type);
    }
  }
}

namespace {

const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const char* name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}
int64_t attr_i(const onnx::NodeProto& n, const char* name, int64_t def) {
  auto a = find_attr(n, name);
  return a ? a->i() : def;
}
double attr_f(const onnx::NodeProto& n, const char* name, double def) {
  auto a = find_attr(n, name);
  return a ? a->f() : def;
}
std::string attr_s(const onnx::NodeProto& n, const char* name, const std::string& def) {
  auto a = find_attr(n, name);
  return a ? a->s() : def;
}
std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const char* name) {
  auto a = find_attr(n, name);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : std::vector<int64_t>{};
}
bool has_attr(const onnx::NodeProto& n, const char* name) { return find_attr(n, name) != nullptr; }

std::vector<int64_t> ints_of(const at::Tensor& t) {
  at::Tensor c = t.detach().to(at::kLong).contiguous().view({-1});
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}
int64_t norm_axis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }
bool present(const Tensors& in, std::size_t i) { return i < in.size() && in[i].defined(); }

[[noreturn]] void node_error(const onnx::NodeProto& n, const std::string& what) {
  throw Error(Errc::model, "node '" + n.name() + "' (" + n.op_type() + "): " + what);
}
// A feature of an op the importer does not implement (the op itself is supported).
[[noreturn]] void node_unsupported(const onnx::NodeProto& n, const std::string& what) {
  throw Error(Errc::unsupported,
              "node '" + n.name() + "' (" + n.op_type() + "): " + what + " is not supported");
}

// An axis in [-rank, rank), made non-negative; an error naming the node otherwise.
int64_t axis_of(const onnx::NodeProto& n, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    node_error(n, "axis " + std::to_string(axis) + " is outside a rank-" + std::to_string(rank) +
                      " tensor");
  return axis < 0 ? axis + rank : axis;
}

// Strides, dilations and kernel sizes must be positive (a zero divides by zero in the pads).
void check_positive(const onnx::NodeProto& n, const std::vector<int64_t>& v, const char* what,
                    std::size_t count) {
  if (v.size() != count)
    node_error(n, std::string(what) + " must have " + std::to_string(count) + " values, not " +
                      std::to_string(v.size()));
  for (auto x : v)
    if (x < 1) node_error(n, std::string(what) + " must be positive, got " + std::to_string(x));
}

// Pads for Conv/MaxPool: explicit `pads` [b1, b2, ..., e1, e2, ...] or auto_pad SAME_*.
std::vector<int64_t> spatial_pads(const onnx::NodeProto& n, const at::Tensor& x,
                                  const std::vector<int64_t>& kernel,
                                  const std::vector<int64_t>& strides,
                                  const std::vector<int64_t>& dil) {
  const std::size_t d = kernel.size();
  std::vector<int64_t> pads = attr_ints(n, "pads");
  std::string auto_pad = attr_s(n, "auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    pads.assign(2 * d, 0);
    for (std::size_t i = 0; i < d; ++i) {
      int64_t in = x.size(static_cast<int64_t>(2 + i));
      int64_t out = (in + strides[i] - 1) / strides[i];
      int64_t total =
          std::max<int64_t>((out - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - in, 0);
      int64_t small = total / 2, big = total - small;
      pads[i] = auto_pad == "SAME_UPPER" ? small : big;
      pads[i + d] = auto_pad == "SAME_UPPER" ? big : small;
    }
  } else if (auto_pad == "VALID" || pads.empty()) {
    pads.assign(2 * d, 0);
  }
  if (pads.size() != 2 * d) node_error(n, "pads must have 2 values per spatial dimension");
  std::vector<int64_t> padded(x.sizes().begin(), x.sizes().end());
  for (std::size_t i = 0; i < d && 2 + i < padded.size(); ++i) {
    if (pads[i] < 0 || pads[i + d] < 0 || pads[i] > (int64_t{1} << 24) ||
        pads[i + d] > (int64_t{1} << 24))
      node_error(n, "pads must be between 0 and 2^24, got " + std::to_string(pads[i]) + " and " +
                        std::to_string(pads[i + d]));
    padded[2 + i] += pads[i] + pads[i + d];
  }
  checked_numel(padded, x.element_size(), "node '" + n.name() + "' (" + n.op_type() + ")");
  return pads;
}

// Symmetric pads go to the op; asymmetric ones are applied first with `value`.
at::Tensor pre_pad(const at::Tensor& x, std::vector<int64_t>& pads, double value) {
  const std::size_t d = pads.size() / 2;
  bool symmetric = true;
  for (std::size_t i = 0; i < d; ++i) symmetric = symmetric && pads[i] == pads[i + d];
  if (symmetric) {
    pads.resize(d);
    return x;
  }
  std::vector<int64_t> torch_pads;
  for (std::size_t i = d; i-- > 0;) {
    torch_pads.push_back(pads[i]);
    torch_pads.push_back(pads[i + d]);
  }
  pads.assign(d, 0);
  return at::constant_pad_nd(x, torch_pads, value);
}

Tensors op_conv(const onnx::NodeProto& n, const Tensors& in) {
  const at::Tensor& w = in[1];
  if (w.dim() < 3 || w.dim() > 5)
    node_error(n, "the weight must be 3- to 5-D, got " + std::to_string(w.dim()) + "-D");
  if (in[0].dim() != w.dim()) node_error(n, "input and weight ranks differ");
  const std::size_t d = static_cast<std::size_t>(w.dim() - 2);
  std::vector<int64_t> kernel(w.sizes().begin() + 2, w.sizes().end());
  auto strides = attr_ints(n, "strides");
  auto dil = attr_ints(n, "dilations");
  if (strides.empty()) strides.assign(d, 1);
  if (dil.empty()) dil.assign(d, 1);
  check_positive(n, strides, "strides", d);
  check_positive(n, dil, "dilations", d);
  if (attr_i(n, "group", 1) < 1) node_error(n, "group must be positive");
  auto pads = spatial_pads(n, in[0], kernel, strides, dil);
  at::Tensor x = pre_pad(in[0], pads, 0.0);
  at::Tensor bias = present(in, 2) ? in[2] : at::Tensor();
  int64_t groups = attr_i(n, "group", 1);
  // ATen runs a small convolution of one sample through its own im2col kernel and any batch
  // above one through oneDNN, whose set-up costs 3-4 times the work on 1-D convolutions of a
  // few hundred samples (Silero VAD's: a batch of 2 took 54 us per Conv against 14 us for 1).
  // Batches of such samples (streams batched by a server) take the one-sample kernel, so that
  // each row is computed as it would be alone.
  if (d == 1 && groups == 1 && dil[0] == 1 && x.device().is_cpu() &&
      x.scalar_type() == at::kFloat && x.size(0) > 1 && x.numel() / x.size(0) <= 20480)
    return {at::thnn_conv2d(x.unsqueeze(2), w.unsqueeze(2), {1, kernel[0]}, bias, {1, strides[0]},
                            {0, pads[0]})
                .squeeze(2)};
  if (d == 1) return {at::conv1d(x, w, bias, strides, pads, dil, groups)};
  if (d == 2) return {at::conv2d(x, w, bias, strides, pads, dil, groups)};
  if (d == 3) return {at::conv3d(x, w, bias, strides, pads, dil, groups)};
  node_error(n, "only 1-, 2- and 3-D convolutions are supported");
}

Tensors op_maxpool(const onnx::NodeProto& n, const Tensors& in) {
  auto kernel = attr_ints(n, "kernel_shape");
  const std::size_t d = kernel.size();
  if (d < 1 || d > 3 || in[0].dim() != static_cast<int64_t>(d) + 2)
    node_error(n, "kernel_shape must have 1 to 3 values, one per spatial dimension of the input");
  check_positive(n, kernel, "kernel_shape", d);
  auto strides = attr_ints(n, "strides");
  auto dil = attr_ints(n, "dilations");
  if (strides.empty()) strides.assign(d, 1);
  if (dil.empty()) dil.assign(d, 1);
  check_positive(n, strides, "strides", d);
  check_positive(n, dil, "dilations", d);
  if (attr_i(n, "storage_order", 0) != 0) node_unsupported(n, "storage_order 1");
  if (n.output_size() > 1) node_unsupported(n, "the Indices output");
  auto pads = spatial_pads(n, in[0], kernel, strides, dil);
  // ATen pools integers in no dtype here and wants pads <= kernel/2: pool in float, pad first.
  const at::ScalarType type = in[0].scalar_type();
  at::Tensor x = in[0].is_floating_point() ? in[0] : in[0].to(at::kFloat);
  bool small = true;
  for (std::size_t i = 0; i < d; ++i)
    small = small && pads[i] <= kernel[i] / 2 && pads[i + d] <= kernel[i] / 2;
  if (!small) {
    std::vector<int64_t> torch_pads;
    for (std::size_t i = d; i-- > 0;)
      torch_pads.push_back(pads[i]), torch_pads.push_back(pads[i + d]);
    x = at::constant_pad_nd(x, torch_pads, -std::numeric_limits<double>::infinity());
    pads.assign(2 * d, 0);
  }
  x = pre_pad(x, pads, -std::numeric_limits<double>::infinity());
  bool ceil = attr_i(n, "ceil_mode", 0) != 0;
  at::Tensor y;
  if (d == 1)
    y = at::max_pool1d(x, kernel, strides, pads, dil, ceil);
  else if (d == 2)
    y = at::max_pool2d(x, kernel, strides, pads, dil, ceil);
  else if (d == 3)
    y = at::max_pool3d(x, kernel, strides, pads, dil, ceil);
  else
    node_unsupported(n, std::to_string(d) + "-D pooling");
  return {y.to(type)};
}

Tensors op_gemm(const onnx::NodeProto& n, const Tensors& in) {
  at::Tensor a = attr_i(n, "transA", 0) ? in[0].t() : in[0];
  at::Tensor b = attr_i(n, "transB", 0) ? in[1].t() : in[1];
  const double alpha = attr_f(n, "alpha", 1.0), beta = attr_f(n, "beta", 1.0);
  if (present(in, 2) && a.dim() == 2 && b.dim() == 2 && a.scalar_type() == in[2].scalar_type())
    return {at::addmm(in[2], a, b, beta, alpha)};  // one fused op (broadcasts C)
  at::Tensor y = at::matmul(a, b);
  if (alpha != 1.0) y = y * alpha;
  if (present(in, 2)) y = beta == 1.0 ? y + in[2] : y + in[2] * beta;
  return {y};
}

// Reductions: axes from the attribute (opset < 18; < 13 for ReduceSum) or the second input.
Tensors op_reduce(const onnx::NodeProto& n, const Tensors& in, const std::string& kind) {
  std::vector<int64_t> axes = present(in, 1) ? ints_of(in[1]) : attr_ints(n, "axes");
  bool keep = attr_i(n, "keepdims", 1) != 0;
  const at::Tensor& x = in[0];
  if (axes.empty()) {
    if (attr_i(n, "noop_with_empty_axes", 0)) return {x};
    for (int64_t d = 0; d < x.dim(); ++d) axes.push_back(d);
  }
  for (auto& a : axes) a = axis_of(n, a, x.dim());
  return {reduce_axes(x, axes, keep, kind.substr(6))};  // "ReduceMean" -> "Mean"
}

Tensors op_slice(const onnx::NodeProto& n, const Tensors& in) {
  const at::Tensor& x = in[0];
  std::vector<int64_t> starts, ends, axes, steps;
  if (in.size() >= 3) {  // opset >= 10
    starts = ints_of(in[1]);
    ends = ints_of(in[2]);
    if (present(in, 3)) axes = ints_of(in[3]);
    if (present(in, 4)) steps = ints_of(in[4]);
  } else {
    starts = attr_ints(n, "starts");
    ends = attr_ints(n, "ends");
    axes = attr_ints(n, "axes");
  }
  if (axes.empty())
    for (std::size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    node_error(n, "starts, ends, axes and steps must have as many values");
  at::Tensor y = x;
  for (std::size_t i = 0; i < starts.size(); ++i) {
    int64_t axis = axis_of(n, axes[i], x.dim()), len = x.size(axis), st = steps[i];
    if (st == 0) node_error(n, "step 0");
    int64_t b = starts[i], e = ends[i];
    if (b < 0) b += len;
    if (e < 0) e += len;
    if (st > 0) {
      b = std::clamp<int64_t>(b, 0, len);
      e = std::clamp<int64_t>(e, 0, len);
      y = y.slice(axis, b, std::max(b, e), st);
    } else {  // negative step: flip, then slice forward
      b = std::clamp<int64_t>(b, -1, len - 1);
      e = std::clamp<int64_t>(e, -1, len - 1);
      if (b <= e) {
        y = y.slice(axis, 0, 0);
        continue;
      }
      at::Tensor idx = at::arange(b, e, st, at::kLong);
      y = y.index_select(axis, idx);
    }
  }
  return {y};
}

Tensors op_pad(const onnx::NodeProto& n, const Tensors& in) {
  const at::Tensor& x = in[0];
  std::vector<int64_t> pads = present(in, 1) ? ints_of(in[1]) : attr_ints(n, "pads");
  double value = present(in, 2) ? in[2].item<double>() : attr_f(n, "value", 0.0);
  std::vector<int64_t> axes;
  if (present(in, 3)) axes = ints_of(in[3]);
  const int64_t r = x.dim();
  std::vector<int64_t> full(static_cast<std::size_t>(2 * r), 0);
  if (axes.empty()) {
    if (static_cast<int64_t>(pads.size()) != 2 * r)
      node_error(n, "pads must have 2 values per dimension");
    full = pads;
  } else {
    if (pads.size() != 2 * axes.size()) node_error(n, "pads must have 2 values per axis");
    for (std::size_t i = 0; i < axes.size(); ++i) {
      int64_t a = axis_of(n, axes[i], r);
      full[static_cast<std::size_t>(a)] = pads[i];
      full[static_cast<std::size_t>(a + r)] = pads[i + axes.size()];
    }
  }
  {
    for (auto p : full)
      if (p < -(int64_t{1} << 32) || p > (int64_t{1} << 32))
        node_error(n, "pad " + std::to_string(p) + " is beyond 2^32");
    std::vector<int64_t> padded(x.sizes().begin(), x.sizes().end());
    for (int64_t d = 0; d < r; ++d)
      padded[static_cast<std::size_t>(d)] +=
          full[static_cast<std::size_t>(d)] + full[static_cast<std::size_t>(d + r)];
    checked_numel(padded, x.element_size(), "node '" + n.name() + "' (Pad)");
  }
  std::string mode = attr_s(n, "mode", "constant");
  std::vector<int64_t> torch_pads;
  for (int64_t d = r - 1; d >= 0; --d) {
    torch_pads.push_back(full[static_cast<std::size_t>(d)]);
    torch_pads.push_back(full[static_cast<std::size_t>(d + r)]);
  }
  if (mode == "constant") return {at::constant_pad_nd(x, torch_pads, value)};
  // reflect/edge: ATen pads the trailing spatial dims only; allow padding of those alone.
  int64_t spatial = 0;
  for (int64_t d = 0; d < r; ++d)
    if (full[static_cast<std::size_t>(d)] || full[static_cast<std::size_t>(d + r)])
      spatial = std::max(spatial, r - d);
  torch_pads.resize(static_cast<std::size_t>(2 * spatial));
  if (spatial < 1 || spatial > 3 || spatial > r - 1)
    node_unsupported(n, "mode " + mode + " beyond the last 1-3 dimensions");
  if (spatial == r - 1 && r == 2) torch_pads.resize(2);  // ATen's 2-D input: pad the last dim only
  at::Tensor xin = x.is_floating_point() ? x : x.to(at::kDouble);
  at::Tensor y;
  if (r - spatial >= 1 && r - spatial <= 2) {
    y = at::pad(xin, torch_pads, mode == "reflect" ? "reflect" : "replicate");
  } else {  // ATen wants (N, C, spatial...): add the missing leading dimensions
    at::Tensor t = xin;
    while (t.dim() < spatial + 2) t = t.unsqueeze(0);
    y = at::pad(t, torch_pads, mode == "reflect" ? "reflect" : "replicate");
    while (y.dim() > r) y = y.squeeze(0);
  }
  return {y.to(x.scalar_type())};
}

Tensors op_split(const onnx::NodeProto& n, const Tensors& in, std::size_t outputs) {
  const at::Tensor& x = in[0];
  int64_t axis = axis_of(n, attr_i(n, "axis", 0), x.dim());
  std::vector<int64_t> sizes = present(in, 1) ? ints_of(in[1]) : attr_ints(n, "split");
  if (sizes.empty()) {
    int64_t parts =
        has_attr(n, "num_outputs") ? attr_i(n, "num_outputs", 1) : static_cast<int64_t>(outputs);
    if (parts < 1) node_error(n, "splits into " + std::to_string(parts) + " parts");
    if (parts != static_cast<int64_t>(outputs))
      node_error(n, "num_outputs is " + std::to_string(parts) + " but the node has " +
                        std::to_string(outputs) + " outputs");
    int64_t chunk = (x.size(axis) + parts - 1) / parts;
    for (int64_t p = 0, left = x.size(axis); p < parts; ++p, left -= chunk)
      sizes.push_back(std::min(chunk, left));
  }
  auto parts = x.split_with_sizes(sizes, axis);
  return Tensors(parts.begin(), parts.end());
}

Tensors op_unsqueeze(const onnx::NodeProto& n, const Tensors& in) {
  std::vector<int64_t> axes = present(in, 1) ? ints_of(in[1]) : attr_ints(n, "axes");
  const int64_t out_rank = in[0].dim() + static_cast<int64_t>(axes.size());
  for (auto& a : axes) a = norm_axis(a, out_rank);
  std::sort(axes.begin(), axes.end());
  at::Tensor y = in[0];
  for (auto a : axes) y = y.unsqueeze(a);
  return {y};
}

Tensors op_squeeze(const onnx::NodeProto& n, const Tensors& in) {
  std::vector<int64_t> axes = present(in, 1) ? ints_of(in[1]) : attr_ints(n, "axes");
  if (axes.empty()) return {in[0].squeeze()};
  for (auto& a : axes) a = norm_axis(a, in[0].dim());
  std::sort(axes.rbegin(), axes.rend());
  at::Tensor y = in[0];
  for (auto a : axes) y = y.squeeze(a);
  return {y};
}

Tensors op_reshape(const onnx::NodeProto& n, const Tensors& in) {
  std::vector<int64_t> shape = ints_of(in[1]);
  const bool allowzero = attr_i(n, "allowzero", 0) != 0;
  for (std::size_t i = 0; i < shape.size(); ++i)
    if (shape[i] == 0 && !allowzero) shape[i] = in[0].size(static_cast<int64_t>(i));
  return {in[0].reshape(shape)};
}

Tensors op_gather(const onnx::NodeProto& n, const Tensors& in) {
  const at::Tensor& x = in[0];
  int64_t axis = axis_of(n, attr_i(n, "axis", 0), x.dim());
  if (in[1].dim() == 0) {  // a scalar index (often a folded constant): a view, one op
    int64_t i = in[1].item<int64_t>();
    return {x.select(axis, i < 0 ? i + x.size(axis) : i)};
  }
  at::Tensor idx = in[1].to(at::kLong);
  idx = at::where(idx < 0, idx + x.size(axis), idx);
  at::Tensor flat = x.index_select(axis, idx.reshape({-1}));
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().begin() + axis);
  for (auto s : idx.sizes()) shape.push_back(s);
  for (int64_t d = axis + 1; d < x.dim(); ++d) shape.push_back(x.size(d));
  return {flat.reshape(shape)};
}

Tensors op_clip(const onnx::NodeProto& n, const Tensors& in) {
  at::Tensor y = in[0];
  if (in.size() > 1 || !has_attr(n, "min")) {  // opset >= 11: optional inputs
    if (present(in, 1)) y = at::maximum(y, in[1].to(y.scalar_type()));
    if (present(in, 2)) y = at::minimum(y, in[2].to(y.scalar_type()));
    return {y};
  }
  return {at::clamp(y, attr_f(n, "min", -3.4e38), attr_f(n, "max", 3.4e38))};
}

Tensors op_softmax(const onnx::NodeProto& n, const Tensors& in, int opset, bool log) {
  const at::Tensor& x = in[0];
  int64_t axis = axis_of(n, attr_i(n, "axis", opset >= 13 ? -1 : 1), std::max<int64_t>(x.dim(), 1));
  if (opset >= 13) return {log ? at::log_softmax(x, axis) : at::softmax(x, axis)};
  // Before opset 13: the input is flattened to 2-D at `axis`.
  at::Tensor flat = x.flatten(axis).flatten(0, axis - 1 < 0 ? 0 : axis - 1);
  if (axis == 0) flat = x.reshape({1, -1});
  at::Tensor y = log ? at::log_softmax(flat, 1) : at::softmax(flat, 1);
  return {y.reshape(x.sizes())};
}

Tensors op_flatten(const onnx::NodeProto& n, const Tensors& in) {
  const at::Tensor& x = in[0];
  int64_t axis = attr_i(n, "axis", 1);
  if (axis < -x.dim() || axis > x.dim())
    node_error(n, "axis " + std::to_string(axis) + " is outside a rank-" + std::to_string(x.dim()) +
                      " tensor");
  if (axis < 0) axis += x.dim();
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.size(d);
  return {x.reshape({outer, -1})};
}

Tensors op_cast(const onnx::NodeProto& n, const Tensors& in) {
  return {in[0].to(onnx_dtype(static_cast<int>(attr_i(n, "to", 1)), "Cast"))};
}

Tensors op_transpose(const onnx::NodeProto& n, const Tensors& in) {
  auto perm = attr_ints(n, "perm");
  if (perm.empty())
    for (int64_t d = in[0].dim() - 1; d >= 0; --d) perm.push_back(d);
  return {in[0].permute(perm)};
}

Tensors op_concat(const onnx::NodeProto& n, const Tensors& in) {
  Tensors parts;
  for (const auto& t : in)
    if (t.defined()) parts.push_back(t);
  if (parts.empty()) node_error(n, "nothing to concatenate");
  return {at::cat(parts, axis_of(n, attr_i(n, "axis", 0), parts[0].dim()))};
}

Tensors op_constant_of_shape(const onnx::NodeProto& n, const Tensors& in) {
  at::Tensor value = at::zeros({1}, at::kFloat);
  if (auto a = find_attr(n, "value")) value = onnx_tensor_from_proto(a->t(), "ConstantOfShape");
  if (value.numel() < 1) node_error(n, "value is empty");
  const std::vector<int64_t> shape = ints_of(in[0]);
  checked_numel(shape, value.element_size(), "node '" + n.name() + "' (ConstantOfShape)");
  return {at::full(shape, value.reshape({-1})[0].item(), value.options())};
}

Tensors op_constant(const onnx::NodeProto& n, const Tensors&) {
  if (auto a = find_attr(n, "value")) return {onnx_tensor_from_proto(a->t(), "Constant")};
  if (auto a = find_attr(n, "value_float")) return {at::scalar_tensor(a->f(), at::kFloat)};
  if (auto a = find_attr(n, "value_int")) return {at::scalar_tensor(a->i(), at::kLong)};
  if (auto a = find_attr(n, "value_floats"))
    return {at::tensor(std::vector<float>(a->floats().begin(), a->floats().end()), at::kFloat)};
  if (auto a = find_attr(n, "value_ints"))
    return {at::tensor(std::vector<int64_t>(a->ints().begin(), a->ints().end()), at::kLong)};
  node_error(n, "Constant without a supported value attribute");
}

Tensors op_expand(const onnx::NodeProto&, const Tensors& in) {
  std::vector<int64_t> shape = ints_of(in[1]);
  const at::Tensor& x = in[0];
  // Bidirectional broadcast: the result has the broadcast of both shapes.
  const std::size_t r = std::max(shape.size(), static_cast<std::size_t>(x.dim()));
  std::vector<int64_t> out(r, 1);
  for (std::size_t i = 0; i < r; ++i) {
    int64_t a = i + shape.size() >= r ? shape[i + shape.size() - r] : 1;
    int64_t b = i + static_cast<std::size_t>(x.dim()) >= r
                    ? x.size(static_cast<int64_t>(i + x.dim() - r))
                    : 1;
    out[i] = a == 1 ? b : a;
  }
  checked_numel(out, x.element_size(), "Expand");  // its readers materialise it
  return {x.expand(out)};
}

using Op =
    std::function<Tensors(const onnx::NodeProto&, const Tensors&, int opset, std::size_t outputs)>;

// How many inputs each op takes (min required, max; -1: any number). Checked at load, before a
// kernel can index an input that is not there.
struct Arity {
  int min, max;
};
const std::unordered_map<std::string, Arity>& onnx_arity() {
  static const std::unordered_map<std::string, Arity> a{
      {"Identity", {1, 1}},
      {"Add", {2, 2}},
      {"Sub", {2, 2}},
      {"Mul", {2, 2}},
      {"Div", {2, 2}},
      {"Pow", {2, 2}},
      {"Sqrt", {1, 1}},
      {"Log", {1, 1}},
      {"Exp", {1, 1}},
      {"Neg", {1, 1}},
      {"Abs", {1, 1}},
      {"Relu", {1, 1}},
      {"LeakyRelu", {1, 1}},
      {"Sigmoid", {1, 1}},
      {"Tanh", {1, 1}},
      {"Max", {1, -1}},
      {"Min", {1, -1}},
      {"Sum", {1, -1}},
      {"Equal", {2, 2}},
      {"Greater", {2, 2}},
      {"GreaterOrEqual", {2, 2}},
      {"Less", {2, 2}},
      {"LessOrEqual", {2, 2}},
      {"Not", {1, 1}},
      {"Where", {3, 3}},
      {"Conv", {2, 3}},
      {"MaxPool", {1, 1}},
      {"Gemm", {2, 3}},
      {"MatMul", {2, 2}},
      {"ReduceMean", {1, 2}},
      {"ReduceSum", {1, 2}},
      {"ReduceMax", {1, 2}},
      {"ReduceMin", {1, 2}},
      {"Reshape", {2, 2}},
      {"Flatten", {1, 1}},
      {"Transpose", {1, 1}},
      {"Unsqueeze", {1, 2}},
      {"Squeeze", {1, 2}},
      {"Concat", {1, -1}},
      {"Split", {1, 2}},
      {"Slice", {1, 5}},
      {"Gather", {2, 2}},
      {"Pad", {1, 4}},
      {"Clip", {1, 3}},
      {"Cast", {1, 1}},
      {"Softmax", {1, 1}},
      {"LogSoftmax", {1, 1}},
      {"Shape", {1, 1}},
      {"ConstantOfShape", {1, 1}},
      {"Constant", {0, 0}},
      {"Expand", {2, 2}},
      {"If", {1, 1}},
  };
  return a;
}

const std::unordered_map<std::string, Op>& onnx_ops() {
  using N = const onnx::NodeProto&;
  using T = const Tensors&;
#define OP(name, ...)                                                \
  {                                                                  \
    name, [](N n, T in, int opset, std::size_t outputs) -> Tensors { \
      (void)n;                                                       \
      (void)in;                                                      \
      (void)opset;                                                   \
      (void)outputs;                                                 \
      __VA_ARGS__                                                    \
    }                                                                \
  }
  static const std::unordered_map<std::string, Op> ops {
    OP("Identity", return {in[0]};), OP("Add", return {in[0] + in[1]};),
        OP("Sub", return {in[0] - in[1]};), OP("Mul", return {in[0] * in[1]};),
        OP("Div", return {safe_div(in[0], in[1])};),
        OP("Pow", if (in[1].numel() == 1 && in[1].dim() == 0 &&
                      in[0].is_floating_point()) return {at::pow(in[0], in[1].item())};
           return {at::pow(in[0], in[1].to(in[0].is_floating_point() ? in[0].scalar_type()
                                                                     : in[1].scalar_type()))};),
        OP("Sqrt", return {safe_sqrt(in[0])};), OP("Log", return {safe_log(in[0])};),
        OP("Exp", return {at::exp(in[0])};), OP("Neg", return {at::neg(in[0])};),
        OP("Abs", return {at::abs(in[0])};), OP("Relu", return {at::relu(in[0])};),
        OP("LeakyRelu", return {at::leaky_relu(in[0], attr_f(n, "alpha", 0.01))};),
        OP("Sigmoid", return {at::sigmoid(in[0])};), OP("Tanh", return {at::tanh(in[0])};),
        OP("Max", at::Tensor y = in[0];
           for (std::size_t i = 1; i < in.size(); ++i) y = at::maximum(y, in[i]); return {y};),
        OP("Min", at::Tensor y = in[0];
           for (std::size_t i = 1; i < in.size(); ++i) y = at::minimum(y, in[i]); return {y};),
        OP("Sum", at::Tensor y = in[0]; for (std::size_t i = 1; i < in.size(); ++i) y = y + in[i];
           return {y};),
        OP("Equal", return {at::eq(in[0], in[1])};), OP("Greater", return {at::gt(in[0], in[1])};),
        OP("GreaterOrEqual", return {at::ge(in[0], in[1])};),
        OP("Less", return {at::lt(in[0], in[1])};),
        OP("LessOrEqual", return {at::le(in[0], in[1])};),
        OP("Not", return {at::logical_not(in[0])};),
        OP("Where", return {at::where(in[0], in[1], in[2])};), OP("Conv", return op_conv(n, in);),
        OP("MaxPool", return op_maxpool(n, in);), OP("Gemm", return op_gemm(n, in);),
        OP("MatMul", return {at::matmul(in[0], in[1])};),
        OP("ReduceMean", return op_reduce(n, in, "ReduceMean");),
        OP("ReduceSum", return op_reduce(n, in, "ReduceSum");),
        OP("ReduceMax", return op_reduce(n, in, "ReduceMax");),
        OP("ReduceMin", return op_reduce(n, in, "ReduceMin");),
        OP("Reshape", return op_reshape(n, in);), OP("Flatten", return op_flatten(n, in);),
        OP("Transpose", return op_transpose(n, in);), OP("Unsqueeze", return op_unsqueeze(n, in);),
        OP("Squeeze", return op_squeeze(n, in);), OP("Concat", return op_concat(n, in);),
        OP("Split", return op_split(n, in, outputs);), OP("Slice", return op_slice(n, in);),
        OP("Gather", return op_gather(n, in);), OP("Pad", return op_pad(n, in);),
        OP("Clip", return op_clip(n, in);), OP("Cast", return op_cast(n, in);),
        OP("Softmax", return op_softmax(n, in, opset, false);),
        OP("LogSoftmax", return op_softmax(n, in, opset, true);),
        OP("Shape",
           {
             std::vector<int64_t> dims = in[0].sizes().vec();
             const int64_t r = static_cast<int64_t>(dims.size());
             int64_t start = attr_i(n, "start", 0), end = attr_i(n, "end", r);
             if (start < 0) start += r;
             if (end < 0) end += r;
             start = std::clamp<int64_t>(start, 0, r);
             end = std::clamp<int64_t>(end, start, r);
             return {at::tensor(std::vector<int64_t>(dims.begin() + start, dims.begin() + end),
                                at::kLong)};
           }),
        OP("ConstantOfShape", return op_constant_of_shape(n, in);),
        OP("Constant", return op_constant(n, in);), OP("Expand", return op_expand(n, in);),
  };
#undef OP
  return ops;
}

// --- the model ----------------------------------------------------------------------------------

class OnnxModel final : public EngineModel {
 public:
  OnnxModel(const fs::path& path, const LoadOptions& options) : path_(path) {
    device_ = resolve_device(options.device, path);
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(Errc::not_found, path.string() + ": cannot open model file");
    if (!model_.ParseFromIstream(&in))
      throw Error(Errc::corrupt_data,
                  path.string() + ": not a valid ONNX model (protobuf parse failed)");
    with_model_context(path, [&] { build(); });
  }

  std::string format() const override { return "onnx"; }
  const std::vector<TensorSpec>& inputs() const override { return input_specs_; }
  const std::vector<TensorSpec>& outputs() const override { return output_specs_; }
  ModelSummary summary() const override {
    return {format(), path_, parameters_, graph_->histogram(), device_.str()};
  }

  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& inputs) override {
    check_inputs(inputs, input_specs_, path_);
    // Without grad mode, InferenceMode also skips version counters and view tracking: the
    // many tiny ops of a streaming model (Silero: ~45 per 32 ms chunk) run measurably faster.
    c10::InferenceMode inference(!at::GradMode::is_enabled());
    Tensors in;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      at::Tensor x = inputs[i];
      if (x.device() != device_) x = x.to(device_);
      in.push_back(x.to(input_types_[i]));
    }
    return graph_->run(in);
  }

 private:
  // Compiles graph `g` into plan `plan` of the Graph, which folds what depends only on
  // constants. `names` maps visible names to references (outer scopes included; a branch
  // sees its enclosing graph's values). Returns the references of g's outputs.
  std::vector<int> compile(const onnx::GraphProto& g, std::unordered_map<std::string, int> names,
                           int plan) {
    const bool top = plan == 0;
    at::NoGradGuard no_grad;
    for (const auto& t : g.initializer()) {
      at::Tensor v = onnx_tensor_from_proto(t, "initializer").to(device_);
      if (top && v.is_floating_point()) parameters_ += v.numel();
      names[t.name()] = graph_->constant(v);
    }
    if (top)
      for (const auto& i : g.input())
        if (!names.count(i.name())) names[i.name()] = graph_->input();
    auto ref_of = [&](const std::string& name, const onnx::NodeProto& n) {
      if (name.empty()) return Graph::kAbsent;
      auto it = names.find(name);
      if (it == names.end()) node_error(n, "reads '" + name + "', which no earlier node computes");
      return it->second;
    };
    for (const auto& n : g.node()) {
      const Arity arity = onnx_arity().at(n.op_type());
      if (n.input_size() < arity.min || (arity.max >= 0 && n.input_size() > arity.max))
        node_error(n, "takes " +
                          (arity.max < 0 ? std::to_string(arity.min) + " or more"
                           : arity.min == arity.max
                               ? std::to_string(arity.min)
                               : std::to_string(arity.min) + " to " + std::to_string(arity.max)) +
                          " inputs, it has " + std::to_string(n.input_size()));
      for (int k = 0; k < arity.min; ++k)
        if (n.input(k).empty())
          node_error(n, "its required input " + std::to_string(k) + " is absent");
      if (n.output_size() < 1) node_error(n, "has no output");
      std::vector<int> in;
      for (const auto& name : n.input()) in.push_back(ref_of(name, n));
      std::vector<int> out;
      if (n.op_type() == "If") {
        const auto* then_b = find_attr(n, "then_branch");
        const auto* else_b = find_attr(n, "else_branch");
        if (!then_b || !else_b) node_error(n, "If without its branches");
        if (in.empty() || in[0] == Graph::kAbsent) node_error(n, "If without its condition");
        const int then_plan = graph_->plan(), else_plan = graph_->plan();
        auto then_results = compile(then_b->g(), names, then_plan);
        auto else_results = compile(else_b->g(), names, else_plan);
        if (static_cast<int>(then_results.size()) < n.output_size() ||
            static_cast<int>(else_results.size()) < n.output_size())
          node_error(n, "its branches give fewer outputs than it has");
        then_results.resize(static_cast<std::size_t>(n.output_size()));
        else_results.resize(static_cast<std::size_t>(n.output_size()));
        out =
            graph_->branch(plan, n.name(), in[0], then_plan, then_results, else_plan, else_results);
      } else {
        const Op* op = &onnx_ops().at(n.op_type());
        const onnx::NodeProto* node = &n;  // model_ outlives the graph
        const int opset = opset_;
        const auto outputs = static_cast<std::size_t>(n.output_size());
        out = graph_->node(
            plan, n.name(), n.op_type(), in, outputs,
            [op, node, opset, outputs](const Tensors& args) {
              Tensors r = (*op)(*node, args, opset, outputs);
              r.resize(std::max(r.size(),
                                outputs));  // optional outputs it does not produce stay undefined
              return r;
            });
      }
      for (int o = 0; o < n.output_size() && o < static_cast<int>(out.size()); ++o)
        names[n.output(o)] = out[static_cast<std::size_t>(o)];
    }
    std::vector<int> results;
    for (const auto& o : g.output()) {
      auto it = names.find(o.name());
      if (it == names.end())
        throw Error(Errc::corrupt_data, "graph output '" + o.name() + "' is not computed");
      results.push_back(it->second);
    }
    return results;
  }

  void collect_ops(const onnx::GraphProto& g, std::map<std::string, std::string>& unsupported) {
    for (const auto& n : g.node()) {
      if (!n.domain().empty() && n.domain() != "ai.onnx")
        unsupported.emplace(n.domain() + "." + n.op_type(), n.name());
      else if (n.op_type() != "If" && !onnx_ops().count(n.op_type()))
        unsupported.emplace(n.op_type(), n.name());
      for (const auto& a : n.attribute()) {
        if (a.type() == onnx::AttributeProto::GRAPH) collect_ops(a.g(), unsupported);
        for (const auto& sg : a.graphs()) collect_ops(sg, unsupported);
      }
    }
  }

  void build() {
    for (const auto& o : model_.opset_import())
      if (o.domain().empty() || o.domain() == "ai.onnx") opset_ = static_cast<int>(o.version());
    if (opset_ < 7 || opset_ > 18)
      throw Error(Errc::unsupported,
                  "opset " + std::to_string(opset_) + " is not supported (7 to 18 are)");
    const auto& g = model_.graph();
    std::map<std::string, std::string> unsupported;
    collect_ops(g, unsupported);
    if (!unsupported.empty()) {
      std::string ops;
      for (const auto& [op, node] : unsupported) ops += (ops.empty() ? "" : ", ") + op;
      throw Error(Errc::unsupported, "unsupported op" +
                                         std::string(unsupported.size() > 1 ? "s " : " ") + ops +
                                         " (first at node '" + unsupported.begin()->second + "')");
    }
    std::set<std::string> initialised;
    for (const auto& t : g.initializer()) initialised.insert(t.name());
    for (const auto& i : g.input()) {
      if (initialised.count(i.name())) continue;  // an initializer listed as input (IR < 4)
      TensorSpec spec{i.name(), {}, "float32"};
      at::ScalarType type = at::kFloat;
      if (i.type().has_tensor_type()) {
        type = onnx_dtype(i.type().tensor_type().elem_type(), "input '" + i.name() + "'");
        for (const auto& d : i.type().tensor_type().shape().dim())
          spec.shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
      }
      spec.dtype = dtype_name(type);
      input_specs_.push_back(spec);
      input_types_.push_back(type);
    }
    for (const auto& o : g.output()) {
      TensorSpec spec{o.name(), {}, "float32"};
      if (o.type().has_tensor_type()) {
        spec.dtype =
            dtype_name(onnx_dtype(o.type().tensor_type().elem_type(), "output '" + o.name() + "'"));
        for (const auto& d : o.type().tensor_type().shape().dim())
          spec.shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
      }
      output_specs_.push_back(spec);
    }
    graph_ = std::make_unique<Graph>(path_);
    graph_->outputs(compile(g, {}, 0));
    graph_->finish();
  }

  fs::path path_;
  c10::Device device_{at::kCPU};
  onnx::ModelProto model_;
  int opset_ = 0;
  std::unique_ptr<Graph> graph_;  // after model_: its kernels point into the model's nodes
  std::vector<TensorSpec> input_specs_, output_specs_;
  std::vector<at::ScalarType> input_types_;
  std::int64_t parameters_ = 0;
};

}  // namespace

at::Tensor read_onnx_tensor_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::TensorProto t;
  if (!in || !t.ParseFromIstream(&in))
    throw Error(Errc::corrupt_data, path.string() + ": not a serialized ONNX tensor");
  return onnx_tensor_from_proto(t, path.string());
}

std::shared_ptr<EngineModel> load_onnx_model(const fs::path& path, const LoadOptions& options) {
  return std::make_shared<OnnxModel>(path, options);
}

}  // namespace oneadapt::engine
