// TensorFlow.js graph-model importer: parses model.json and its weight shards, folds constant
// subgraphs at load, and executes the graph as ATen ops so that autograd works end to end.
//
// Layout decision: every tensor keeps TensorFlow's own semantics (NHWC activations, TF axis
// numbers), so Reshape, Transpose, Concat and friends need no remapping. Convolutions and
// pooling hand ATen a permute(0,3,1,2) *view*: logically NCHW, physically whatever the producer
// wrote. Graphs converted from ONNX (NanoDet) wrap every conv in Transposes, which then cancel
// into plain NCHW-contiguous memory; native TF graphs (CenterNet) run channels-last, which
// oneDNN takes without a copy.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <memory>
#include <unordered_map>

#include "engine/engine.hpp"
#include "engine/graph.hpp"
#include "engine/model_common.hpp"

namespace oneadapt::engine {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Tensors = std::vector<at::Tensor>;

// ---------------------------------------------------------------------------------------------
// Attributes (protobuf JSON: ints as strings, strings base64-encoded).

std::string base64_decode(const std::string& in) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::uint32_t val = 0;  // only the low 24 bits matter (UBSan: a signed shift overflowed)
  int bits = -8;
  for (unsigned char c : in) {
    auto pos = chars.find(static_cast<char>(c));
    if (pos == std::string::npos) break;  // '=' padding or junk ends the data
    val = ((val << 6) | static_cast<std::uint32_t>(pos)) & 0xFFFFFFu;
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

int64_t json_int(const json& v) {
  if (!v.is_string()) return v.get<int64_t>();
  const std::string text = v.get<std::string>();
  std::size_t used = 0;
  int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size())
    throw Error(Errc::model, "'" + text.substr(0, 40) + "' is not an integer");
  return value;
}

struct Node {
  std::string name;
  std::string op;
  std::vector<std::pair<int, int>> inputs;  // (node index, output index)
  json attr;
  at::Tensor prepared_weight;  // conv filters converted to OIHW at load

  bool has(const char* key) const { return attr.contains(key); }
  int64_t i(const char* key, int64_t def) const {
    if (!attr.contains(key) || !attr[key].contains("i")) return def;
    return json_int(attr[key]["i"]);
  }
  double f(const char* key, double def) const {
    if (!attr.contains(key) || !attr[key].contains("f")) return def;
    return attr[key]["f"].get<double>();
  }
  bool b(const char* key, bool def) const {
    if (!attr.contains(key) || !attr[key].contains("b")) return def;
    return attr[key]["b"].get<bool>();
  }
  std::string s(const char* key, const std::string& def) const {
    if (!attr.contains(key) || !attr[key].contains("s")) return def;
    return base64_decode(attr[key]["s"].get<std::string>());
  }
  std::vector<int64_t> ints(const char* key) const {
    std::vector<int64_t> out;
    if (attr.contains(key) && attr[key].contains("list") && attr[key]["list"].contains("i"))
      for (const auto& v : attr[key]["list"]["i"]) out.push_back(json_int(v));
    return out;
  }
  std::vector<std::string> strings(const char* key) const {
    std::vector<std::string> out;
    if (attr.contains(key) && attr[key].contains("list") && attr[key]["list"].contains("s"))
      for (const auto& v : attr[key]["list"]["s"])
        out.push_back(base64_decode(v.get<std::string>()));
    return out;
  }
  std::string type(const char* key) const {
    if (!attr.contains(key) || !attr[key].contains("type")) return "";
    return attr[key]["type"].get<std::string>();
  }
};

[[noreturn]] void op_error(const Node& n, const std::string& what) {
  throw Error(Errc::model, "node '" + n.name + "' (" + n.op + "): " + what);
}

std::vector<int64_t> to_ints(const at::Tensor& t) {
  at::Tensor c = t.detach().to(at::kLong).contiguous().view({-1});
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}
int64_t to_int(const at::Tensor& t) {
  auto v = to_ints(t);
  if (v.size() != 1)
    throw Error(Errc::model, "expected a scalar, got " + std::to_string(v.size()) + " values");
  return v[0];
}
int64_t norm_axis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

// TensorFlow.js converters write batch 1 into the input's shape and into every Reshape's
// constant target. A graph whose every input declares batch 1 runs a batch of N samples
// (TfjsModel::forward) with the leading 1 of a Reshape's target read as the batch, when the
// tensor it reshapes has the batch leading; 1 outside such a run.
thread_local int64_t free_batch = 1;

// An axis in [-rank, rank), made non-negative; an error naming the node otherwise.
int64_t axis_of(const Node& n, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    op_error(n, "axis " + std::to_string(axis) + " is outside a rank-" + std::to_string(rank) +
                    " tensor");
  return axis < 0 ? axis + rank : axis;
}

// Strides and kernel sizes of the 4 NHWC dimensions must be positive (a zero divides by zero).
void check_positive4(const Node& n, const std::vector<int64_t>& v, const char* what) {
  if (v.size() != 4) op_error(n, std::string(what) + " must have 4 values");
  for (auto x : v)
    if (x < 1) op_error(n, std::string(what) + " must be positive, got " + std::to_string(x));
}

at::ScalarType tf_dtype(const std::string& t) {
  if (t == "DT_FLOAT") return at::kFloat;
  if (t == "DT_INT32") return at::kInt;
  if (t == "DT_INT64") return at::kLong;
  if (t == "DT_BOOL") return at::kBool;
  if (t == "DT_HALF") return at::kHalf;
  if (t == "DT_DOUBLE") return at::kDouble;
  throw Error(Errc::unsupported, "data type " + t + " is not supported");
}

at::Tensor nchw(const at::Tensor& x) { return x.permute({0, 3, 1, 2}); }
at::Tensor nhwc(const at::Tensor& x) { return x.permute({0, 2, 3, 1}); }

// TF "SAME"/"VALID"/"EXPLICIT" padding for one spatial dimension: (before, after).
std::pair<int64_t, int64_t> tf_pad(const std::string& padding, int64_t in, int64_t k,
                                   int64_t stride, int64_t dilation) {
  if (padding != "SAME") return {0, 0};
  int64_t eff = (k - 1) * dilation + 1;
  int64_t out = (in + stride - 1) / stride;
  int64_t total = std::max<int64_t>((out - 1) * stride + eff - in, 0);
  return {total / 2, total - total / 2};
}

struct Pads {
  int64_t top = 0, bottom = 0, left = 0, right = 0;
  bool symmetric() const { return top == bottom && left == right; }
};

// Paddings from the file, `p` = [before0, after0, before1, after1, ...] for `x`'s dimensions:
// each within 2^32 and the padded tensor within the tensor limit (checked_numel).
void check_padded(const Node& n, const at::Tensor& x, const std::vector<int64_t>& p) {
  std::vector<int64_t> padded(x.sizes().begin(), x.sizes().end());
  for (std::size_t d = 0; d < padded.size() && 2 * d + 1 < p.size(); ++d) {
    for (auto v : {p[2 * d], p[2 * d + 1]})
      if (v < -(int64_t{1} << 32) || v > (int64_t{1} << 32))
        op_error(n, "padding " + std::to_string(v) + " is beyond 2^32");
    padded[d] += p[2 * d] + p[2 * d + 1];
  }
  checked_numel(padded, x.element_size(), "node '" + n.name + "' (" + n.op + ")");
}

Pads spatial_pads(const Node& n, const at::Tensor& x, int64_t kh, int64_t kw,
                  const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations) {
  std::string padding = n.s("padding", "VALID");
  if (padding == "EXPLICIT") {
    auto e = n.ints("explicit_paddings");  // NHWC: [n0,n1,h0,h1,w0,w1,c0,c1]
    if (e.size() != 8) op_error(n, "explicit_paddings must have 8 values");
    for (auto v : e)
      if (v < 0) op_error(n, "explicit_paddings must not be negative");
    check_padded(n, x, e);
    return {e[2], e[3], e[4], e[5]};
  }
  if (padding != "SAME" && padding != "VALID")
    op_error(n, "padding '" + padding + "' is not supported");
  auto [t, b] = tf_pad(padding, x.size(1), kh, strides[1], dilations[1]);
  auto [l, r] = tf_pad(padding, x.size(2), kw, strides[2], dilations[2]);
  return {t, b, l, r};
}

void check_nhwc(const Node& n) {
  std::string fmt = n.s("data_format", "NHWC");
  if (fmt != "NHWC") op_error(n, "data_format " + fmt + " is not supported (NHWC only)");
}

// Conv2D / DepthwiseConv2dNative and their fused forms. `w` is already OIHW.
at::Tensor conv(const Node& n, const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias,
                int64_t groups) {
  check_nhwc(n);
  auto strides = n.ints("strides");
  auto dil = n.ints("dilations");
  if (strides.size() != 4) strides = {1, 1, 1, 1};
  if (dil.size() != 4) dil = {1, 1, 1, 1};
  check_positive4(n, strides, "strides");
  check_positive4(n, dil, "dilations");
  if (x.dim() != 4 || w.dim() != 4) op_error(n, "needs a 4-D input and a 4-D filter");
  Pads p = spatial_pads(n, x, w.size(2), w.size(3), strides, dil);
  at::Tensor in = x;
  std::vector<int64_t> pad_hw{0, 0};
  if (p.symmetric()) {
    pad_hw = {p.top, p.left};
  } else {
    in = at::constant_pad_nd(x, {0, 0, p.left, p.right, p.top, p.bottom}, 0);
  }
  at::Tensor y =
      at::conv2d(nchw(in), w, bias, {strides[1], strides[2]}, pad_hw, {dil[1], dil[2]}, groups);
  return nhwc(y);
}

at::Tensor activation(const Node& n, const std::string& name, const at::Tensor& x,
                      const Tensors& extra) {
  if (name == "Relu") return at::relu(x);
  if (name == "Relu6") return at::clamp(x, 0, 6);
  if (name == "LeakyRelu") return at::leaky_relu(x, n.f("leakyrelu_alpha", 0.2));
  if (name == "Elu") return at::elu(x);
  if (name == "Sigmoid") return at::sigmoid(x);
  if (name == "Tanh") return at::tanh(x);
  if (name == "Prelu") {
    if (extra.empty()) op_error(n, "Prelu without alpha");
    return at::where(x > 0, x, x * extra[0]);
  }
  op_error(n, "fused op '" + name + "' is not supported");
}

at::Tensor prepare_filter(const at::Tensor& hwio, bool depthwise) {
  if (hwio.dim() != 4)
    throw Error(Errc::model, "a conv filter must be 4-D, got " + std::to_string(hwio.dim()) + "-D");
  if (!depthwise) return hwio.permute({3, 2, 0, 1}).contiguous();  // HWIO -> OIHW
  // [kh, kw, C, M] -> [C*M, 1, kh, kw], groups = C
  return hwio.permute({2, 3, 0, 1})
      .reshape({hwio.size(2) * hwio.size(3), 1, hwio.size(0), hwio.size(1)})
      .contiguous();
}

Tensors fused_conv(const Node& n, const Tensors& in, bool depthwise) {
  at::Tensor w = n.prepared_weight.defined() ? n.prepared_weight : prepare_filter(in[1], depthwise);
  auto ops = n.strings("fused_ops");
  int64_t num_args = n.i("num_args", 0);
  if (static_cast<int64_t>(in.size()) < 2 + num_args) op_error(n, "missing fused arguments");
  at::Tensor bias;
  std::size_t next = 2;
  std::size_t k = 0;
  if (k < ops.size() && ops[k] == "BiasAdd") {
    if (in.size() <= next) op_error(n, "BiasAdd needs its bias");
    bias = in[next++];
    ++k;
  } else if (k < ops.size() && (ops[k] == "FusedBatchNorm" || ops[k] == "FusedBatchNormV3")) {
    // args: scale, offset, mean, variance
    if (in.size() < next + 4) op_error(n, "FusedBatchNorm needs 4 arguments");
    double eps = n.f("epsilon", 1e-3);
    at::Tensor scale = in[next] / at::sqrt(in[next + 3] + eps);
    bias = in[next + 1] - in[next + 2] * scale;
    w = w * scale.view({-1, 1, 1, 1});
    next += 4;
    ++k;
  }
  int64_t groups = depthwise ? in[0].size(3) : 1;
  at::Tensor y = conv(n, in[0], w, bias, groups);
  Tensors extra(in.begin() + static_cast<std::ptrdiff_t>(next), in.end());
  for (; k < ops.size(); ++k) y = activation(n, ops[k], y, extra);
  return {y};
}

Tensors pool(const Node& n, const Tensors& in, bool max) {
  check_nhwc(n);
  auto ksize = n.ints("ksize");
  auto strides = n.ints("strides");
  check_positive4(n, ksize, "ksize");
  check_positive4(n, strides, "strides");
  const at::Tensor& x = in[0];
  if (x.dim() != 4) op_error(n, "needs a 4-D input");
  Pads p = spatial_pads(n, x, ksize[1], ksize[2], strides, {1, 1, 1, 1});
  std::vector<int64_t> pad{0, 0, p.left, p.right, p.top, p.bottom};
  if (max) {
    at::Tensor xp = at::constant_pad_nd(x, pad, -std::numeric_limits<double>::infinity());
    return {nhwc(at::max_pool2d(nchw(xp), {ksize[1], ksize[2]}, {strides[1], strides[2]}))};
  }
  // TF's average excludes padding: divide the padded sum by the count of real elements.
  at::Tensor xp = at::constant_pad_nd(x, pad, 0);
  at::Tensor sum = at::avg_pool2d(nchw(xp), {ksize[1], ksize[2]}, {strides[1], strides[2]}) *
                   static_cast<double>(ksize[1] * ksize[2]);
  at::Tensor ones =
      at::constant_pad_nd(at::ones({1, x.size(1), x.size(2), 1}, x.options()), pad, 0);
  at::Tensor count = at::avg_pool2d(nchw(ones), {ksize[1], ksize[2]}, {strides[1], strides[2]}) *
                     static_cast<double>(ksize[1] * ksize[2]);
  return {nhwc(sum / count)};
}

// Source coordinates of TF's resize ops for one dimension.
at::Tensor resize_coords(int64_t in, int64_t out, bool align_corners, bool half_pixel,
                         const at::TensorOptions& opts) {
  at::Tensor d = at::arange(out, opts.dtype(at::kFloat));
  double scale = (align_corners && out > 1)
                     ? static_cast<double>(in - 1) / static_cast<double>(out - 1)
                     : static_cast<double>(in) / static_cast<double>(out);
  if (half_pixel) return (d + 0.5) * scale - 0.5;
  return d * scale;
}

Tensors resize_bilinear(const Node& n, const Tensors& in) {
  auto size = to_ints(in[1]);
  if (size.size() != 2 || size[0] < 1 || size[1] < 1)
    op_error(n, "size must have 2 positive values");
  bool align = n.b("align_corners", false), half = n.b("half_pixel_centers", false);
  const at::Tensor& x = in[0];
  if (x.dim() != 4) op_error(n, "needs a 4-D input");
  checked_numel({x.size(0), size[0], size[1], x.size(3)}, x.element_size(),
                "node '" + n.name + "' (ResizeBilinear)");
  checked_numel({x.size(0), size[0], x.size(2), x.size(3)}, x.element_size(),
                "node '" + n.name + "' (ResizeBilinear)");  // the first pass
  if (half && !align) return {nhwc(at::upsample_bilinear2d(nchw(x), {size[0], size[1]}, false))};
  if (align && !half) return {nhwc(at::upsample_bilinear2d(nchw(x), {size[0], size[1]}, true))};
  // Legacy TF mode (neither flag): src = dst * in / out, no half-pixel offset; edge-clamped.
  auto axis_lerp = [&](const at::Tensor& t, int64_t dim, int64_t out) {
    int64_t len = t.size(dim);
    at::Tensor src = resize_coords(len, out, align, half, t.options()).clamp_min(0);
    at::Tensor lo = src.floor().clamp_max(static_cast<double>(len - 1));
    at::Tensor frac = (src - lo).to(t.scalar_type());
    at::Tensor lo_i = lo.to(at::kLong);
    at::Tensor hi_i = (lo_i + 1).clamp_max(len - 1);
    std::vector<int64_t> shape(static_cast<std::size_t>(t.dim()), 1);
    shape[static_cast<std::size_t>(dim)] = out;
    frac = frac.view(shape);
    at::Tensor a = t.index_select(dim, lo_i), b = t.index_select(dim, hi_i);
    return a + (b - a) * frac;
  };
  return {axis_lerp(axis_lerp(x, 1, size[0]), 2, size[1])};
}

Tensors resize_nearest(const Node& n, const Tensors& in) {
  auto size = to_ints(in[1]);
  if (size.size() != 2 || size[0] < 1 || size[1] < 1)
    op_error(n, "size must have 2 positive values");
  bool align = n.b("align_corners", false), half = n.b("half_pixel_centers", false);
  at::Tensor x = in[0];
  if (x.dim() != 4) op_error(n, "needs a 4-D input");
  checked_numel({x.size(0), size[0], size[1], x.size(3)}, x.element_size(),
                "node '" + n.name + "' (ResizeNearestNeighbor)");
  checked_numel({x.size(0), size[0], x.size(2), x.size(3)}, x.element_size(),
                "node '" + n.name + "' (ResizeNearestNeighbor)");
  for (int64_t dim = 1; dim <= 2; ++dim) {
    int64_t len = x.size(dim), out = size[static_cast<std::size_t>(dim - 1)];
    at::Tensor d = at::arange(out, x.options().dtype(at::kDouble));
    double scale = (align && out > 1) ? static_cast<double>(len - 1) / static_cast<double>(out - 1)
                                      : static_cast<double>(len) / static_cast<double>(out);
    at::Tensor src = align ? at::round(d * scale) : at::floor(half ? (d + 0.5) * scale : d * scale);
    x = x.index_select(dim, src.clamp(0, static_cast<double>(len - 1)).to(at::kLong));
  }
  return {x};
}

Tensors strided_slice(const Node& n, const Tensors& in) {
  const at::Tensor& x = in[0];
  auto begin = to_ints(in[1]), end = to_ints(in[2]), strides = to_ints(in[3]);
  int64_t bm = n.i("begin_mask", 0), em = n.i("end_mask", 0), sm = n.i("shrink_axis_mask", 0);
  if (n.i("ellipsis_mask", 0) != 0 || n.i("new_axis_mask", 0) != 0)
    op_error(n, "ellipsis_mask and new_axis_mask are not supported");
  if (end.size() != begin.size() || strides.size() != begin.size() ||
      static_cast<int64_t>(begin.size()) > x.dim())
    op_error(n, "begin, end and strides must have as many values, at most one per dimension");
  at::Tensor y = x;
  std::vector<int64_t> squeeze;
  for (std::size_t d = 0; d < begin.size(); ++d) {
    int64_t len = x.size(static_cast<int64_t>(d));
    int64_t st = strides[d];
    if (st <= 0) op_error(n, "negative or zero strides are not supported");
    int64_t b = begin[d] < 0 ? begin[d] + len : begin[d];
    int64_t e = end[d] < 0 ? end[d] + len : end[d];
    const int64_t bit = d < 63 ? int64_t{1} << d : 0;
    if (bm & bit) b = 0;
    if (em & bit) e = len;
    if (sm & bit) {
      e = b + 1;
      squeeze.push_back(static_cast<int64_t>(d));
    }
    b = std::clamp<int64_t>(b, 0, len);
    e = std::clamp<int64_t>(e, b, len);
    y = y.slice(static_cast<int64_t>(d), b, e, st);
  }
  for (auto it = squeeze.rbegin(); it != squeeze.rend(); ++it) y = y.squeeze(*it);
  return {y};
}

Tensors reduce(const Node& n, const Tensors& in, const std::string& kind) {
  auto axes = to_ints(in[1]);
  bool keep = n.b("keep_dims", false);
  for (auto& a : axes) a = axis_of(n, a, in[0].dim());
  return {reduce_axes(in[0], axes, keep, kind)};
}

using OpFn = std::function<Tensors(const Node&, const Tensors&)>;

Tensors binary(const Tensors& in, at::Tensor (*f)(const at::Tensor&, const at::Tensor&)) {
  return {f(in[0], in[1])};
}

const std::unordered_map<std::string, OpFn>& op_table() {
  using T = const Tensors&;
  using N = const Node&;
  static const std::unordered_map<std::string, OpFn> table{
      {"Identity", [](N, T in) { return Tensors{in[0]}; }},
      {"Add", [](N, T in) { return Tensors{in[0] + in[1]}; }},
      {"AddV2", [](N, T in) { return Tensors{in[0] + in[1]}; }},
      {"BiasAdd",
       [](N n, T in) {
         check_nhwc(n);
         return Tensors{in[0] + in[1]};
       }},
      {"AddN",
       [](N, T in) {
         at::Tensor s = in[0];
         for (std::size_t i = 1; i < in.size(); ++i) s = s + in[i];
         return Tensors{s};
       }},
      {"Sub", [](N, T in) { return Tensors{in[0] - in[1]}; }},
      {"Mul", [](N, T in) { return Tensors{in[0] * in[1]}; }},
      {"RealDiv", [](N, T in) { return Tensors{in[0] / in[1]}; }},
      {"Div", [](N, T in) { return Tensors{in[0] / in[1]}; }},
      {"FloorDiv", [](N, T in) { return Tensors{at::div(in[0], in[1], "floor")}; }},
      {"FloorMod", [](N, T in) { return Tensors{at::remainder(in[0], in[1])}; }},
      {"Maximum", [](N, T in) { return binary(in, at::maximum); }},
      {"Minimum", [](N, T in) { return binary(in, at::minimum); }},
      {"Pow", [](N, T in) { return Tensors{at::pow(in[0], in[1])}; }},
      {"SquaredDifference", [](N, T in) { return Tensors{(in[0] - in[1]).square()}; }},
      {"Equal", [](N, T in) { return Tensors{at::eq(in[0], in[1])}; }},
      {"NotEqual", [](N, T in) { return Tensors{at::ne(in[0], in[1])}; }},
      {"Greater", [](N, T in) { return Tensors{at::gt(in[0], in[1])}; }},
      {"GreaterEqual", [](N, T in) { return Tensors{at::ge(in[0], in[1])}; }},
      {"Less", [](N, T in) { return Tensors{at::lt(in[0], in[1])}; }},
      {"LessEqual", [](N, T in) { return Tensors{at::le(in[0], in[1])}; }},
      {"LogicalAnd", [](N, T in) { return Tensors{at::logical_and(in[0], in[1])}; }},
      {"Relu", [](N, T in) { return Tensors{at::relu(in[0])}; }},
      {"Relu6", [](N, T in) { return Tensors{at::clamp(in[0], 0, 6)}; }},
      {"LeakyRelu", [](N n, T in) { return Tensors{at::leaky_relu(in[0], n.f("alpha", 0.2))}; }},
      {"Elu", [](N, T in) { return Tensors{at::elu(in[0])}; }},
      {"Selu", [](N, T in) { return Tensors{at::selu(in[0])}; }},
      {"Prelu", [](N, T in) { return Tensors{at::where(in[0] > 0, in[0], in[0] * in[1])}; }},
      {"Sigmoid", [](N, T in) { return Tensors{at::sigmoid(in[0])}; }},
      {"Tanh", [](N, T in) { return Tensors{at::tanh(in[0])}; }},
      {"Softplus", [](N, T in) { return Tensors{at::softplus(in[0])}; }},
      {"Exp", [](N, T in) { return Tensors{at::exp(in[0])}; }},
      {"Log", [](N, T in) { return Tensors{at::log(in[0])}; }},
      {"Sqrt", [](N, T in) { return Tensors{at::sqrt(in[0])}; }},
      {"Rsqrt", [](N, T in) { return Tensors{at::rsqrt(in[0])}; }},
      {"Square", [](N, T in) { return Tensors{at::square(in[0])}; }},
      {"Neg", [](N, T in) { return Tensors{at::neg(in[0])}; }},
      {"Abs", [](N, T in) { return Tensors{at::abs(in[0])}; }},
      {"Floor", [](N, T in) { return Tensors{at::floor(in[0])}; }},
      {"Ceil", [](N, T in) { return Tensors{at::ceil(in[0])}; }},
      {"Round", [](N, T in) { return Tensors{at::round(in[0])}; }},
      {"Softmax", [](N, T in) { return Tensors{at::softmax(in[0], -1)}; }},
      {"LogSoftmax", [](N, T in) { return Tensors{at::log_softmax(in[0], -1)}; }},
      {"Cast",
       [](N n, T in) {
         at::ScalarType to = tf_dtype(n.type("DstT"));
         if (to == at::kFloat && in[0].is_floating_point())
           to = in[0].scalar_type();  // keep float64 runs in float64
         return Tensors{in[0].to(to)};
       }},
      {"Conv2D",
       [](N n, T in) {
         at::Tensor w =
             n.prepared_weight.defined() ? n.prepared_weight : prepare_filter(in[1], false);
         return Tensors{conv(n, in[0], w, {}, 1)};
       }},
      {"DepthwiseConv2dNative",
       [](N n, T in) {
         at::Tensor w =
             n.prepared_weight.defined() ? n.prepared_weight : prepare_filter(in[1], true);
         return Tensors{conv(n, in[0], w, {}, in[0].size(3))};
       }},
      {"_FusedConv2D", [](N n, T in) { return fused_conv(n, in, false); }},
      {"FusedDepthwiseConv2dNative", [](N n, T in) { return fused_conv(n, in, true); }},
      {"MaxPool", [](N n, T in) { return pool(n, in, true); }},
      {"AvgPool", [](N n, T in) { return pool(n, in, false); }},
      {"FusedBatchNorm",
       [](N n, T in) {
         double eps = n.f("epsilon", 1e-3);
         return Tensors{(in[0] - in[3]) * at::rsqrt(in[4] + eps) * in[1] + in[2]};
       }},
      {"FusedBatchNormV3",
       [](N n, T in) {
         double eps = n.f("epsilon", 1e-3);
         return Tensors{(in[0] - in[3]) * at::rsqrt(in[4] + eps) * in[1] + in[2]};
       }},
      {"Pad",
       [](N n, T in) {
         auto p = to_ints(in[1]);
         if (static_cast<int64_t>(p.size()) != 2 * in[0].dim())
           op_error(n, "paddings must have 2 values per dimension");
         check_padded(n, in[0], p);
         std::vector<int64_t> pads;
         for (int64_t d = in[0].dim() - 1; d >= 0; --d) {
           pads.push_back(p[2 * d]);
           pads.push_back(p[2 * d + 1]);
         }
         return Tensors{at::constant_pad_nd(in[0], pads, 0)};
       }},
      {"PadV2",
       [](N n, T in) {
         auto p = to_ints(in[1]);
         if (static_cast<int64_t>(p.size()) != 2 * in[0].dim())
           op_error(n, "paddings must have 2 values per dimension");
         check_padded(n, in[0], p);
         std::vector<int64_t> pads;
         for (int64_t d = in[0].dim() - 1; d >= 0; --d) {
           pads.push_back(p[2 * d]);
           pads.push_back(p[2 * d + 1]);
         }
         double value = in.size() > 2 && in[2].numel() == 1 ? in[2].item<double>() : 0.0;
         return Tensors{at::constant_pad_nd(in[0], pads, value)};
       }},
      {"ConcatV2",
       [](N n, T in) {
         Tensors parts(in.begin(), in.end() - 1);
         return Tensors{at::cat(parts, axis_of(n, to_int(in.back()), in[0].dim()))};
       }},
      {"Concat",
       [](N n, T in) {
         Tensors parts(in.begin() + 1, in.end());
         return Tensors{at::cat(parts, axis_of(n, to_int(in[0]), in[1].dim()))};
       }},
      {"Reshape",
       [](N, T in) {
         auto shape = to_ints(in[1]);
         if (free_batch > 1 && !shape.empty() && shape[0] == 1 && in[0].dim() > 0 &&
             in[0].size(0) == free_batch)
           shape[0] = free_batch;
         return Tensors{in[0].reshape(shape)};
       }},
      {"Transpose", [](N, T in) { return Tensors{in[0].permute(to_ints(in[1]))}; }},
      {"ExpandDims",
       [](N n, T in) {
         return Tensors{in[0].unsqueeze(axis_of(n, to_int(in[1]), in[0].dim() + 1))};
       }},
      {"Squeeze",
       [](N n, T in) {
         auto dims = n.ints("squeeze_dims");
         if (dims.empty()) return Tensors{in[0].squeeze()};
         at::Tensor y = in[0];
         for (auto& d : dims) d = axis_of(n, d, in[0].dim());
         std::sort(dims.rbegin(), dims.rend());
         for (auto d : dims) y = y.squeeze(d);
         return Tensors{y};
       }},
      {"SplitV",
       [](N n, T in) {
         auto sizes = to_ints(in[1]);
         int64_t axis = axis_of(n, to_int(in[2]), in[0].dim());
         int64_t known = 0, unknown = -1;
         for (std::size_t i = 0; i < sizes.size(); ++i) {
           if (sizes[i] < 0)
             unknown = static_cast<int64_t>(i);
           else
             known += sizes[i];
         }
         if (unknown >= 0) sizes[static_cast<std::size_t>(unknown)] = in[0].size(axis) - known;
         if (static_cast<int64_t>(sizes.size()) !=
             n.i("num_split", static_cast<int64_t>(sizes.size())))
           op_error(n, "num_split does not match size_splits");
         return in[0].split_with_sizes(sizes, axis);
       }},
      {"Split",
       [](N n, T in) {
         int64_t axis = axis_of(n, to_int(in[0]), in[1].dim());
         int64_t parts = n.i("num_split", 1);
         if (parts < 1) op_error(n, "num_split must be positive");
         if (in[1].size(axis) % parts != 0) op_error(n, "dimension is not divisible by num_split");
         return in[1].split(in[1].size(axis) / parts, axis);
       }},
      {"Pack",
       [](N n, T in) {
         return Tensors{at::stack(in, axis_of(n, n.i("axis", 0), in[0].dim() + 1))};
       }},
      {"Unpack",
       [](N n, T in) {
         auto parts = in[0].unbind(axis_of(n, n.i("axis", 0), in[0].dim()));
         return Tensors(parts.begin(), parts.end());
       }},
      {"Shape",
       [](N, T in) { return Tensors{at::tensor(in[0].sizes().vec(), at::kLong).to(at::kInt)}; }},
      {"Fill",
       [](N n, T in) {
         const auto shape = to_ints(in[0]);
         checked_numel(shape, in[1].element_size(), "node '" + n.name + "' (Fill)");
         return Tensors{at::full(shape, in[1].item(), in[1].options())};
       }},
      {"Tile",
       [](N n, T in) {
         const auto reps = to_ints(in[1]);
         if (static_cast<int64_t>(reps.size()) != in[0].dim())
           op_error(n, "multiples must have one value per dimension");
         for (auto r : reps)
           if (r < 0) op_error(n, "multiples must not be negative");
         std::vector<int64_t> factors(in[0].sizes().begin(),
                                      in[0].sizes().end());  // the product is the result's size
         factors.insert(factors.end(), reps.begin(), reps.end());
         checked_numel(factors, in[0].element_size(), "node '" + n.name + "' (Tile)");
         return Tensors{in[0].repeat(reps)};
       }},
      {"Slice",
       [](N n, T in) {
         auto begin = to_ints(in[1]), size = to_ints(in[2]);
         if (begin.size() != size.size() || static_cast<int64_t>(begin.size()) > in[0].dim())
           op_error(n, "begin and size must have one value per dimension");
         at::Tensor y = in[0];
         for (std::size_t d = 0; d < begin.size(); ++d) {
           int64_t len = size[d] < 0 ? in[0].size(static_cast<int64_t>(d)) - begin[d] : size[d];
           y = y.narrow(static_cast<int64_t>(d), begin[d], len);
         }
         return Tensors{y};
       }},
      {"StridedSlice", [](N n, T in) { return strided_slice(n, in); }},
      {"GatherV2",
       [](N n, T in) {
         if (n.i("batch_dims", 0) != 0) op_error(n, "batch_dims != 0 is not supported");
         int64_t axis = axis_of(n, to_int(in[2]), in[0].dim());
         at::Tensor idx = in[1].to(at::kLong);
         at::Tensor flat = in[0].index_select(axis, idx.reshape({-1}));
         std::vector<int64_t> shape(in[0].sizes().begin(), in[0].sizes().begin() + axis);
         for (auto s : idx.sizes()) shape.push_back(s);
         for (int64_t d = axis + 1; d < in[0].dim(); ++d) shape.push_back(in[0].size(d));
         return Tensors{flat.reshape(shape)};
       }},
      {"TopKV2",
       [](N n, T in) {
         auto [values, indices] = at::topk(in[0], to_int(in[1]), -1, true, n.b("sorted", true));
         return Tensors{values, indices.to(at::kInt)};
       }},
      {"ArgMax",
       [](N n, T in) { return Tensors{in[0].argmax(axis_of(n, to_int(in[1]), in[0].dim()))}; }},
      {"MatMul",
       [](N n, T in) {
         at::Tensor a = n.b("transpose_a", false) ? in[0].t() : in[0];
         at::Tensor b = n.b("transpose_b", false) ? in[1].t() : in[1];
         return Tensors{at::matmul(a, b)};
       }},
      {"BatchMatMulV2",
       [](N n, T in) {
         at::Tensor a = n.b("adj_x", false) ? in[0].transpose(-1, -2) : in[0];
         at::Tensor b = n.b("adj_y", false) ? in[1].transpose(-1, -2) : in[1];
         return Tensors{at::matmul(a, b)};
       }},
      {"Mean", [](N n, T in) { return reduce(n, in, "Mean"); }},
      {"Sum", [](N n, T in) { return reduce(n, in, "Sum"); }},
      {"Max", [](N n, T in) { return reduce(n, in, "Max"); }},
      {"Min", [](N n, T in) { return reduce(n, in, "Min"); }},
      {"Prod", [](N n, T in) { return reduce(n, in, "Prod"); }},
      {"ResizeBilinear", [](N n, T in) { return resize_bilinear(n, in); }},
      {"ResizeNearestNeighbor", [](N n, T in) { return resize_nearest(n, in); }},
      {"SparseToDense",
       [](N n, T in) {
         auto shape = to_ints(in[1]);
         checked_numel(shape, in[2].element_size(), "node '" + n.name + "' (SparseToDense)");
         if (in[3].numel() != 1) op_error(n, "default_value must be a scalar");
         at::Tensor out = at::full(shape, in[3].item(), in[2].options());
         at::Tensor idx = in[0].to(at::kLong);
         if (idx.numel() == 0) return Tensors{out};
         if (idx.dim() < 2) idx = idx.view({-1, 1});
         at::Tensor values = in[2].numel() == 1 ? in[2].expand({idx.size(0)}) : in[2];
         for (int64_t k = 0; k < idx.size(0); ++k) {
           at::Tensor slot = out;
           for (int64_t d = 0; d < idx.size(1); ++d)
             slot = slot.select(0, idx[k][d].item<int64_t>());
           slot.fill_(values[k].item());
         }
         return Tensors{out};
       }},
      {"NoOp", [](N, T) { return Tensors{}; }},
  };
  return table;
}

// How many inputs each op takes (min, max; -1: any number). Checked at load, before a kernel
// can index an input that is not there.
const std::unordered_map<std::string, std::pair<int, int>>& op_arity() {
  static const std::unordered_map<std::string, std::pair<int, int>> a = [] {
    std::unordered_map<std::string, std::pair<int, int>> m;
    for (const char* op :
         {"Identity", "Relu",     "Relu6",   "LeakyRelu", "Elu",    "Selu",    "Sigmoid",
          "Tanh",     "Softplus", "Exp",     "Log",       "Sqrt",   "Rsqrt",   "Square",
          "Neg",      "Abs",      "Floor",   "Ceil",      "Round",  "Softmax", "LogSoftmax",
          "Cast",     "MaxPool",  "AvgPool", "Squeeze",   "Unpack", "Shape"})
      m[op] = {1, 1};
    for (const char* op : {"Add",
                           "AddV2",
                           "BiasAdd",
                           "Sub",
                           "Mul",
                           "RealDiv",
                           "Div",
                           "FloorDiv",
                           "FloorMod",
                           "Maximum",
                           "Minimum",
                           "Pow",
                           "SquaredDifference",
                           "Equal",
                           "NotEqual",
                           "Greater",
                           "GreaterEqual",
                           "Less",
                           "LessEqual",
                           "LogicalAnd",
                           "Prelu",
                           "Conv2D",
                           "DepthwiseConv2dNative",
                           "Pad",
                           "Reshape",
                           "Transpose",
                           "ExpandDims",
                           "Split",
                           "Fill",
                           "Tile",
                           "TopKV2",
                           "ArgMax",
                           "MatMul",
                           "BatchMatMulV2",
                           "Mean",
                           "Sum",
                           "Max",
                           "Min",
                           "Prod",
                           "ResizeBilinear",
                           "ResizeNearestNeighbor"})
      m[op] = {2, 2};
    m["AddN"] = {1, -1};
    m["Pack"] = {1, -1};
    m["ConcatV2"] = {2, -1};
    m["Concat"] = {2, -1};
    m["PadV2"] = {2, 3};
    m["SplitV"] = {3, 3};
    m["Slice"] = {3, 3};
    m["GatherV2"] = {3, 3};
    m["StridedSlice"] = {4, 4};
    m["SparseToDense"] = {4, 4};
    m["FusedBatchNorm"] = {5, 5};
    m["FusedBatchNormV3"] = {5, 5};
    m["_FusedConv2D"] = {2, -1};
    m["FusedDepthwiseConv2dNative"] = {2, -1};
    m["NoOp"] = {0, -1};
    return m;
  }();
  return a;
}

// ---------------------------------------------------------------------------------------------
// The model.

at::Tensor decode_weight(const json& w, const std::uint8_t* data, std::size_t& offset,
                         std::size_t total, const fs::path& shard_desc) {
  std::vector<int64_t> shape;
  for (const auto& d : w.at("shape")) shape.push_back(d.get<int64_t>());
  const std::string name = w.at("name").get<std::string>();
  const int64_t count = checked_numel(shape, 4, shard_desc.string() + ": weight '" + name + "'");
  const std::string dtype = w.at("dtype").get<std::string>();
  std::string stored = dtype;
  double scale = 1, min = 0;
  if (w.contains("quantization")) {
    const auto& q = w["quantization"];
    stored = q.at("dtype").get<std::string>();
    if (stored == "uint8" || stored == "uint16") {
      scale = q.at("scale").get<double>();
      min = q.at("min").get<double>();
    }
  }
  std::size_t elem = stored == "float32" || stored == "int32"    ? 4
                     : stored == "float16" || stored == "uint16" ? 2
                     : stored == "uint8" || stored == "bool"     ? 1
                                                                 : 0;
  if (elem == 0)
    throw Error(Errc::unsupported, shard_desc.string() + ": weight '" + name +
                                       "' has unsupported dtype '" + stored + "'");
  std::size_t bytes = elem * static_cast<std::size_t>(count);
  if (bytes > total || offset > total - bytes)
    throw Error(Errc::corrupt_data,
                shard_desc.string() + ": weight data ends at byte " + std::to_string(total) +
                    " but weight '" + name + "' needs bytes " + std::to_string(offset) + ".." +
                    std::to_string(offset + bytes) + " (missing or short shard)");
  at::Tensor raw;
  const void* p = data + offset;
  if (stored == "float32")
    raw = at::from_blob(const_cast<void*>(p), shape, at::kFloat).clone();
  else if (stored == "int32")
    raw = at::from_blob(const_cast<void*>(p), shape, at::kInt).clone();
  else if (stored == "float16")
    raw = at::from_blob(const_cast<void*>(p), shape, at::kHalf).to(at::kFloat);
  else if (stored == "uint8")
    raw = at::from_blob(const_cast<void*>(p), shape, at::kByte).to(at::kFloat) * scale + min;
  else if (stored == "uint16")
    raw = at::from_blob(const_cast<void*>(p), shape, at::kShort)
                  .to(at::kInt)
                  .bitwise_and(0xFFFF)
                  .to(at::kFloat) *
              scale +
          min;
  else
    raw = at::from_blob(const_cast<void*>(p), shape, at::kBool).clone();
  offset += bytes;
  if (dtype == "int32" && raw.scalar_type() != at::kInt) raw = raw.round().to(at::kInt);
  return raw;
}

class TfjsModel final : public EngineModel {
 public:
  TfjsModel(const fs::path& path, const LoadOptions& options)
      : path_(path), float64_(options.float64) {
    device_ = resolve_device(options.device, path);
    json doc;
    {
      std::ifstream in(path);
      if (!in) throw Error(Errc::not_found, path.string() + ": cannot open model file");
      try {
        doc = json::parse(in);
      } catch (const json::exception& e) {
        throw Error(Errc::corrupt_data, path.string() + ": not valid JSON: " + e.what());
      }
    }
    with_model_context(path, [&] {
      try {
        build(doc);
      } catch (const json::exception& e) {
        throw Error(Errc::corrupt_data, std::string("malformed graph model: ") + e.what());
      }
    });
  }

  std::string format() const override { return "tfjs-graph"; }
  const std::vector<TensorSpec>& inputs() const override { return input_specs_; }
  const std::vector<TensorSpec>& outputs() const override { return output_specs_; }

  ModelSummary summary() const override {
    return {format(), path_, parameters_, graph_->histogram(), device_.str()};
  }

  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& inputs) override {
    // A graph that declares batch 1 on every input runs any batch (free_batch above).
    int64_t batch = 1;
    bool declares_one = !input_specs_.empty() && inputs.size() == input_specs_.size();
    for (std::size_t i = 0; declares_one && i < inputs.size(); ++i) {
      const auto& shape = input_specs_[i].shape;
      declares_one = !shape.empty() && shape[0] == 1 && inputs[i].defined() &&
                     inputs[i].dim() == static_cast<int64_t>(shape.size()) &&
                     (i == 0 ? (batch = inputs[i].size(0)) > 0 : inputs[i].size(0) == batch);
    }
    if (declares_one && batch > 1) {
      std::vector<TensorSpec> specs = input_specs_;
      for (auto& spec : specs) spec.shape[0] = batch;
      check_inputs(inputs, specs, path_);
    } else {
      check_inputs(inputs, input_specs_, path_);
      batch = 1;
    }
    Tensors in;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      at::Tensor x = inputs[i];
      if (x.device() != device_) x = x.to(device_);
      in.push_back(x.to(input_dtypes_[i]));
    }
    struct Batch {
      int64_t saved = free_batch;
      explicit Batch(int64_t n) { free_batch = n; }
      ~Batch() { free_batch = saved; }
    } scope(batch);
    return graph_->run(in);
  }

 private:
  void build(const json& doc) {
    if (!doc.contains("modelTopology") || !doc["modelTopology"].contains("node"))
      throw Error(Errc::corrupt_data, "not a TensorFlow.js graph model (no modelTopology.node)");
    if (doc.value("format", "graph-model") != "graph-model")
      throw Error(Errc::unsupported, "format '" + doc["format"].get<std::string>() +
                                         "' is not supported (only TensorFlow.js graph models)");

    // Nodes and name lookup.
    std::unordered_map<std::string, int> index;
    for (const auto& j : doc["modelTopology"]["node"]) {
      Node n;
      n.name = j.at("name").get<std::string>();
      n.op = j.at("op").get<std::string>();
      if (j.contains("attr")) n.attr = j["attr"];
      if (index.count(n.name))
        throw Error(Errc::corrupt_data, "node name '" + n.name + "' appears twice");
      index[n.name] = static_cast<int>(nodes_.size());
      nodes_.push_back(std::move(n));
    }
    if (doc["modelTopology"].contains("library") &&
        doc["modelTopology"]["library"].contains("function") &&
        !doc["modelTopology"]["library"]["function"].empty())
      throw Error(Errc::unsupported, "graph functions (control flow) are not supported");
    auto resolve = [&](const std::string& ref, const std::string& user) -> std::pair<int, int> {
      std::string name = ref;
      int out = 0;
      auto colon = name.rfind(':');
      if (colon != std::string::npos) {
        const std::string index_text = name.substr(colon + 1);
        if (index_text.empty() || index_text.size() > 6 ||
            !std::all_of(index_text.begin(), index_text.end(),
                         [](char c) { return c >= '0' && c <= '9'; }))
          throw Error(Errc::corrupt_data, "node '" + user + "' reads '" + ref +
                                              "': the output index is not a number in 0..999999");
        out = std::stoi(index_text);
        name = name.substr(0, colon);
      }
      auto it = index.find(name);
      if (it == index.end())
        throw Error(Errc::corrupt_data,
                    "node '" + user + "' reads '" + ref + "', which is not in the graph");
      return {it->second, out};
    };
    {
      std::size_t k = 0;
      for (const auto& j : doc["modelTopology"]["node"]) {
        Node& n = nodes_[k++];
        if (!j.contains("input")) continue;
        for (const auto& in : j["input"]) {
          std::string ref = in.get<std::string>();
          if (!ref.empty() && ref[0] == '^') continue;  // control dependency
          n.inputs.push_back(resolve(ref, n.name));
        }
      }
    }

    // Unsupported ops: one error naming all of them.
    std::map<std::string, std::string> unsupported;
    for (const auto& n : nodes_)
      if (n.op != "Const" && n.op != "Placeholder" && !op_table().count(n.op) &&
          !unsupported.count(n.op))
        unsupported[n.op] = n.name;
    // Then every supported node's input count.
    for (const auto& n : nodes_) {
      if (n.op == "Const" || n.op == "Placeholder") {
        if (!n.inputs.empty())
          op_error(n, "takes no inputs, it has " + std::to_string(n.inputs.size()));
        continue;
      }
      auto it = op_arity().find(n.op);
      if (it == op_arity().end()) continue;  // reported as unsupported below
      const auto [lo, hi] = it->second;
      const int count = static_cast<int>(n.inputs.size());
      if (count < lo || (hi >= 0 && count > hi))
        op_error(n, "takes " +
                        (hi < 0     ? std::to_string(lo) + " or more"
                         : lo == hi ? std::to_string(lo)
                                    : std::to_string(lo) + " to " + std::to_string(hi)) +
                        " inputs, it has " + std::to_string(count));
    }
    if (!unsupported.empty()) {
      std::string ops, first;
      for (const auto& [op, node] : unsupported) ops += (ops.empty() ? "" : ", ") + op;
      first = unsupported.begin()->second;
      throw Error(Errc::unsupported, "unsupported op" +
                                         std::string(unsupported.size() > 1 ? "s " : " ") + ops +
                                         " (first at node '" + first + "')");
    }

    load_weights(doc);

    // Inputs and outputs from the signature (or the graph when there is none).
    std::vector<std::pair<std::string, json>> ins, outs;
    if (doc.contains("signature") && doc["signature"].contains("inputs")) {
      for (auto& [k, v] : doc["signature"]["inputs"].items()) ins.emplace_back(k, v);
      for (auto& [k, v] : doc["signature"]["outputs"].items()) outs.emplace_back(k, v);
    }
    if (ins.empty())
      for (const auto& n : nodes_)
        if (n.op == "Placeholder") ins.emplace_back(n.name, json::object());
    if (outs.empty()) {
      std::set<int> used;
      for (const auto& n : nodes_)
        for (auto [src, o] : n.inputs) used.insert(src);
      for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (!used.count(static_cast<int>(i)) && nodes_[i].op != "Const" && nodes_[i].op != "NoOp")
          outs.emplace_back(nodes_[i].name, json::object());
    }
    auto natural_less = [](const auto& a, const auto& b) {
      return natural_compare(a.first, b.first) < 0;
    };
    std::sort(ins.begin(), ins.end(), natural_less);
    std::sort(outs.begin(), outs.end(), natural_less);
    for (const auto& [key, sig] : ins) {
      auto [node, out] = resolve(sig.value("name", key), "signature");
      const Node& n = nodes_[static_cast<std::size_t>(node)];
      if (n.op != "Placeholder")
        throw Error(Errc::corrupt_data, "input '" + key + "' is not a Placeholder");
      TensorSpec spec{n.name, {}, "float32"};
      if (n.attr.contains("shape") && n.attr["shape"].contains("shape") &&
          n.attr["shape"]["shape"].contains("dim"))
        for (const auto& d : n.attr["shape"]["shape"]["dim"])
          spec.shape.push_back(json_int(d.value("size", json("-1"))));
      at::ScalarType dt = n.attr.contains("dtype") ? tf_dtype(n.type("dtype")) : at::kFloat;
      if (float64_ && dt == at::kFloat) dt = at::kDouble;
      spec.dtype = dtype_name(dt);
      input_nodes_.push_back(node);
      input_dtypes_.push_back(dt);
      input_specs_.push_back(spec);
    }
    for (const auto& [key, sig] : outs) {
      auto ref = resolve(sig.value("name", key), "signature");
      outputs_.push_back(ref);
      TensorSpec spec{nodes_[static_cast<std::size_t>(ref.first)].name, {}, "float32"};
      if (sig.contains("tensorShape") && sig["tensorShape"].contains("dim"))
        for (const auto& d : sig["tensorShape"]["dim"])
          spec.shape.push_back(json_int(d.value("size", json("-1"))));
      if (sig.contains("dtype")) spec.dtype = dtype_name(tf_dtype(sig["dtype"].get<std::string>()));
      output_specs_.push_back(spec);
    }

    plan_and_fold();
  }

  void load_weights(const json& doc) {
    if (!doc.contains("weightsManifest")) throw Error(Errc::corrupt_data, "no weightsManifest");
    const fs::path dir = path_.has_parent_path() ? path_.parent_path() : fs::path(".");
    for (const auto& group : doc["weightsManifest"]) {
      std::vector<std::uint8_t> data;
      std::string desc;
      for (const auto& p : group.at("paths")) {
        // A shard is named relative to the model's directory and stays in it: an absolute path
        // or "../" is refused before anything is read (the check is on the name, so a model
        // reached through links, as in a Hugging Face or DVC cache, finds its shards beside it).
        // What the name leads to must be a regular file (no /dev/zero, FIFO or directory).
        const std::string rel = p.get<std::string>();
        const fs::path norm = fs::path(rel).lexically_normal();
        if (rel.empty() || norm.is_absolute() || norm.has_root_name() ||
            norm.has_root_directory() || (!norm.empty() && *norm.begin() == ".."))
          throw Error(Errc::corrupt_data, "weight shard '" + rel +
                                              "' is outside the model's directory " + dir.string());
        const fs::path shard = dir / norm, real = shard;
        desc += (desc.empty() ? "" : "+") + shard.string();
        std::error_code ec;
        if (!fs::exists(shard, ec))
          throw Error(Errc::not_found, "weight shard " + shard.string() + " is missing");
        if (!fs::is_regular_file(shard, ec))
          throw Error(Errc::corrupt_data,
                      "weight shard " + shard.string() + " is not a regular file");
        const std::uintmax_t size = fs::file_size(shard, ec);
        if (ec)
          throw Error(Errc::io,
                      "weight shard " + shard.string() + ": cannot read its size: " + ec.message());
        if (size > max_tensor_bytes())
          throw Error(Errc::corrupt_data,
                      "weight shard " + shard.string() + " holds " + std::to_string(size) +
                          " bytes, more than the limit of " + std::to_string(max_tensor_bytes()) +
                          " (ONEADAPT_MAX_TENSOR_BYTES raises it)");
        std::ifstream in(real, std::ios::binary);
        if (!in) throw Error(Errc::not_found, "weight shard " + shard.string() + " cannot be read");
        const std::size_t at = data.size();
        data.resize(at + size);
        in.read(reinterpret_cast<char*>(data.data() + at), static_cast<std::streamsize>(size));
        if (static_cast<std::uintmax_t>(in.gcount()) != size)
          throw Error(Errc::corrupt_data,
                      "weight shard " + shard.string() + " changed while it was read");
      }
      std::size_t offset = 0;
      for (const auto& w : group.at("weights")) {
        at::Tensor t = decode_weight(w, data.data(), offset, data.size(), desc);
        if (t.is_floating_point()) {
          parameters_ += t.numel();
          if (float64_) t = t.to(at::kDouble);
        }
        weights_[w.at("name").get<std::string>()] = t.to(device_);
      }
      if (offset != data.size())
        throw Error(Errc::corrupt_data, desc + ": holds " + std::to_string(data.size()) +
                                            " bytes but the manifest describes " +
                                            std::to_string(offset) + " (wrong or corrupt shard)");
    }
  }

  // Builds the graph the outputs need, in dependency order (an explicit stack: no recursion
  // depth driven by the file): constants, the signature's inputs, and a kernel per node; the
  // Graph folds every node whose inputs are all constant. Conv filters of constant weights
  // are converted to ATen's layout once.
  void plan_and_fold() {
    const std::size_t count = nodes_.size();
    std::vector<int> order;
    {
      std::vector<int> state(count, 0);                // 0 new, 1 on the stack, 2 done
      std::vector<std::pair<int, std::size_t>> stack;  // (node, next input to visit)
      for (auto [root, o] : outputs_) {
        if (state[static_cast<std::size_t>(root)] == 2) continue;
        stack.push_back({root, 0});
        state[static_cast<std::size_t>(root)] = 1;
        while (!stack.empty()) {
          auto& [i, next] = stack.back();
          const Node& n = nodes_[static_cast<std::size_t>(i)];
          if (next < n.inputs.size()) {
            const int src = n.inputs[next++].first;
            if (state[static_cast<std::size_t>(src)] == 1)
              throw Error(Errc::corrupt_data, "graph has a cycle through node '" +
                                                  nodes_[static_cast<std::size_t>(src)].name + "'");
            if (state[static_cast<std::size_t>(src)] == 0) {
              state[static_cast<std::size_t>(src)] = 1;
              stack.push_back({src, 0});
            }
            continue;
          }
          state[static_cast<std::size_t>(i)] = 2;
          order.push_back(i);
          stack.pop_back();
        }
      }
    }
    // How many outputs of each node are read.
    std::vector<std::size_t> used(count, 1);
    for (const auto& n : nodes_)
      for (auto [src, o] : n.inputs)
        used[static_cast<std::size_t>(src)] =
            std::max(used[static_cast<std::size_t>(src)], static_cast<std::size_t>(o) + 1);
    for (auto [src, o] : outputs_)
      used[static_cast<std::size_t>(src)] =
          std::max(used[static_cast<std::size_t>(src)], static_cast<std::size_t>(o) + 1);

    graph_ = std::make_unique<Graph>(path_);
    std::vector<std::vector<int>> refs(count);
    for (int i : input_nodes_) refs[static_cast<std::size_t>(i)] = {graph_->input()};
    for (int i : order) {
      Node& n = nodes_[static_cast<std::size_t>(i)];
      if (n.op == "Const") {
        auto it = weights_.find(n.name);
        if (it == weights_.end())
          throw Error(Errc::corrupt_data,
                      "constant '" + n.name + "' has no weight in the manifest");
        refs[static_cast<std::size_t>(i)] = {graph_->constant(it->second)};
        continue;
      }
      if (n.op == "Placeholder") {
        if (refs[static_cast<std::size_t>(i)].empty())
          throw Error(Errc::unsupported, "placeholder '" + n.name + "' is not a signature input");
        continue;
      }
      std::vector<int> in;
      for (auto [src, o] : n.inputs) {
        const auto& r = refs[static_cast<std::size_t>(src)];
        if (static_cast<std::size_t>(o) >= r.size())
          throw Error(Errc::corrupt_data, "node '" + n.name + "' reads output " +
                                              std::to_string(o) + " of '" +
                                              nodes_[static_cast<std::size_t>(src)].name +
                                              "', which has " + std::to_string(r.size()));
        in.push_back(r[static_cast<std::size_t>(o)]);
      }
      // Conv filters are constant: convert their layout once.
      const bool depthwise =
          n.op == "DepthwiseConv2dNative" || n.op == "FusedDepthwiseConv2dNative";
      if ((n.op == "Conv2D" || n.op == "_FusedConv2D" || depthwise) && in.size() > 1 &&
          graph_->is_constant(in[1])) {
        const at::Tensor& f = graph_->constant_value(in[1]);
        if (f.dim() != 4) op_error(n, "filter must be 4-D");
        at::NoGradGuard no_grad;
        n.prepared_weight = prepare_filter(f, depthwise);
      }
      const Node* node = &n;  // nodes_ no longer changes size: the kernel may keep a pointer
      refs[static_cast<std::size_t>(i)] = graph_->node(
          0, n.name, n.op, in, used[static_cast<std::size_t>(i)],
          [node](const Tensors& args) { return op_table().at(node->op)(*node, args); });
    }
    std::vector<int> out;
    for (auto [src, o] : outputs_) {
      const auto& r = refs[static_cast<std::size_t>(src)];
      if (static_cast<std::size_t>(o) >= r.size())
        throw Error(Errc::corrupt_data, "output '" + nodes_[static_cast<std::size_t>(src)].name +
                                            ":" + std::to_string(o) + "' does not exist");
      out.push_back(r[static_cast<std::size_t>(o)]);
    }
    graph_->outputs(out);
    graph_->finish();
    weights_.clear();  // the graph's constants hold what is needed
  }

  fs::path path_;
  bool float64_ = false;
  c10::Device device_{at::kCPU};
  std::vector<Node> nodes_;
  std::unordered_map<std::string, at::Tensor> weights_;
  std::unique_ptr<Graph> graph_;
  std::vector<int> input_nodes_;
  std::vector<at::ScalarType> input_dtypes_;
  std::vector<std::pair<int, int>> outputs_;
  std::vector<TensorSpec> input_specs_, output_specs_;
  std::int64_t parameters_ = 0;
};

}  // namespace

std::shared_ptr<EngineModel> load_tfjs_graph_model(const fs::path& model_json,
                                                   const LoadOptions& options) {
  return std::make_shared<TfjsModel>(model_json, options);
}

}  // namespace oneadapt::engine
