// The detection task: an object detector (NanoDet-g-416 by default, or MobileNetV3-CenterNet)
// run through the core's engine on RGB frames; the accuracy proxy of method.md section 4
// (P = sum_j sigmoid(20 (s_j - tau)) over detections of the classes of interest); per-frame F1
// against the reference detections with one-to-one matching.
#include <ATen/ATen.h>
#include <oneadapt/batch.hpp>
#include <oneadapt/sdk.hpp>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <set>
#include <sstream>

namespace {

using namespace oneadapt;

const char* const kCoco[80] = {"person",        "bicycle",      "car",
                               "motorcycle",    "airplane",     "bus",
                               "train",         "truck",        "boat",
                               "traffic light", "fire hydrant", "stop sign",
                               "parking meter", "bench",        "bird",
                               "cat",           "dog",          "horse",
                               "sheep",         "cow",          "elephant",
                               "bear",          "zebra",        "giraffe",
                               "backpack",      "umbrella",     "handbag",
                               "tie",           "suitcase",     "frisbee",
                               "skis",          "snowboard",    "sports ball",
                               "kite",          "baseball bat", "baseball glove",
                               "skateboard",    "surfboard",    "tennis racket",
                               "bottle",        "wine glass",   "cup",
                               "fork",          "knife",        "spoon",
                               "bowl",          "banana",       "apple",
                               "sandwich",      "orange",       "broccoli",
                               "carrot",        "hot dog",      "pizza",
                               "donut",         "cake",         "chair",
                               "couch",         "potted plant", "bed",
                               "dining table",  "toilet",       "tv",
                               "laptop",        "mouse",        "remote",
                               "keyboard",      "cell phone",   "microwave",
                               "oven",          "toaster",      "sink",
                               "refrigerator",  "book",         "clock",
                               "vase",          "scissors",     "teddy bear",
                               "hair drier",    "toothbrush"};

/// One detection; box in [0, 1] frame coordinates (x0, y0, x1, y1).
struct Detection {
  float x0, y0, x1, y1, score;
  int cls;
};

float iou(const Detection& a, const Detection& b) {
  float ix = std::max(0.f, std::min(a.x1, b.x1) - std::max(a.x0, b.x0));
  float iy = std::max(0.f, std::min(a.y1, b.y1) - std::max(a.y0, b.y0));
  float inter = ix * iy;
  float uni = (a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter;
  return uni > 0 ? inter / uni : 0.f;
}

/// Greedy class-aware NMS over detections sorted by score; returns kept indices.
std::vector<std::size_t> nms(const std::vector<Detection>& dets, float iou_threshold) {
  std::vector<std::size_t> order(dets.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return dets[a].score > dets[b].score; });
  std::vector<std::size_t> kept;
  for (std::size_t i : order) {
    bool suppressed = false;
    for (std::size_t k : kept)
      if (dets[k].cls == dets[i].cls && iou(dets[k], dets[i]) > iou_threshold) {
        suppressed = true;
        break;
      }
    if (!suppressed) kept.push_back(i);
  }
  return kept;
}

/// F1 of `got` against `ref` on one frame: detections with score > tau, one-to-one greedy
/// matching by IoU (> 0.5, same class). An empty/empty frame scores 1.
double frame_f1(const std::vector<Detection>& got_all, const std::vector<Detection>& ref_all,
                float tau) {
  std::vector<Detection> got, ref;
  for (const auto& d : got_all)
    if (d.score > tau) got.push_back(d);
  for (const auto& d : ref_all)
    if (d.score > tau) ref.push_back(d);
  if (got.empty() && ref.empty()) return 1.0;
  struct Pair {
    float iou;
    std::size_t g, r;
  };
  std::vector<Pair> pairs;
  for (std::size_t g = 0; g < got.size(); ++g)
    for (std::size_t r = 0; r < ref.size(); ++r)
      if (got[g].cls == ref[r].cls) {
        float v = iou(got[g], ref[r]);
        if (v > 0.5f) pairs.push_back({v, g, r});
      }
  std::sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) { return a.iou > b.iou; });
  std::vector<char> used_g(got.size(), 0), used_r(ref.size(), 0);
  double tp = 0;
  for (const auto& p : pairs)
    if (!used_g[p.g] && !used_r[p.r]) used_g[p.g] = used_r[p.r] = 1, tp += 1;
  double fp = static_cast<double>(got.size()) - tp, fn = static_cast<double>(ref.size()) - tp;
  return 2 * tp / (2 * tp + fp + fn);
}

struct FrameDetections final : TaskResult {
  std::vector<Detection> dets;  // after NMS, classes of interest, score >= decode floor
  float tau = 0.5f;
  std::string summary() const override {
    std::map<std::string, int> counts;
    for (const auto& d : dets)
      if (d.score > tau) counts[kCoco[d.cls]]++;
    std::ostringstream out;
    for (const auto& [name, n] : counts) out << (out.tellp() > 0 ? ", " : "") << n << " " << name;
    return counts.empty() ? "nothing" : out.str();
  }
};

enum class Arch { nanodet, centernet };

class DetectionTask final : public Task {
 public:
  explicit DetectionTask(const TaskSpec& spec)
      : model_(spec.models.at("detector")),
        tau_(static_cast<float>(spec.params.number("tau"))),
        nms_iou_(static_cast<float>(spec.params.number("nms_iou"))),
        floor_(static_cast<float>(spec.params.number("score_floor"))) {
    const std::string arch = spec.params.str("architecture");
    if (arch == "nanodet")
      arch_ = Arch::nanodet;
    else if (arch == "centernet")
      arch_ = Arch::centernet;
    else
      throw Error(Errc::invalid_argument,
                  "parameter 'architecture': '" + arch + "' is not one of nanodet, centernet");
    for (const auto& name : spec.params.list("classes")) {
      auto it = std::find(std::begin(kCoco), std::end(kCoco), name);
      if (it == std::end(kCoco))
        throw Error(Errc::invalid_argument,
                    "parameter 'classes': '" + name + "' is not a COCO class name");
      classes_.insert(static_cast<int>(it - std::begin(kCoco)));
    }
    if (classes_.empty()) throw Error(Errc::invalid_argument, "parameter 'classes' is empty");
    const auto& in = model_->inputs();
    if (in.size() != 1 || in[0].shape.size() != 4)
      throw Error(Errc::model, "detector must take one image input [N,3,H,W] or [N,H,W,3]");
    const auto& s = in[0].shape;
    nchw_ = s[1] == 3;
    input_h_ = nchw_ ? s[2] : s[1];
    input_w_ = nchw_ ? s[3] : s[2];
    if (arch_ == Arch::nanodet && (model_->outputs().size() != 6 || !nchw_))
      throw Error(Errc::model,
                  "architecture 'nanodet' needs NanoDet's 6 outputs and an NCHW input");
    if (arch_ == Arch::centernet && model_->outputs().size() != 3)
      throw Error(Errc::model, "architecture 'centernet' needs CenterNet's 3 outputs");
  }

  // samples [N,3,H,W] RGB in [0,1] -> stretched (bilinear, half-pixel) to the model's input
  // size; NanoDet takes [0,1] NCHW, CenterNet [0,255] NHWC. The model runs one frame at a
  // time (its graphs have batch 1); outputs are concatenated along N.
  std::vector<at::Tensor> infer(const at::Tensor& samples) override {
    at::Tensor x = at::upsample_bilinear2d(samples, {input_h_, input_w_}, /*align_corners=*/false);
    if (arch_ == Arch::centernet) x = (x * 255.0).permute({0, 2, 3, 1});
    std::vector<std::vector<at::Tensor>> per_frame;
    for (int64_t i = 0; i < x.size(0); ++i)
      per_frame.push_back(model_->forward({x.narrow(0, i, 1)}));
    std::vector<at::Tensor> out;
    for (std::size_t k = 0; k < per_frame[0].size(); ++k) {
      std::vector<at::Tensor> parts;
      for (auto& f : per_frame) parts.push_back(f[k]);
      out.push_back(at::cat(parts, 0));
    }
    return out;
  }

  /// NanoDet's graph runs a batch (the engine reads its declared batch 1 as free): streams of
  /// one model share passes. CenterNet's is not checked for it: never batched.
  std::string batch_key() const override {
    if (arch_ != Arch::nanodet) return {};
    return "nanodet@" + std::to_string(reinterpret_cast<std::uintptr_t>(model_.get()));
  }

  /// Every part's frames stretched to the model's size and run together, at most 8 frames a
  /// pass (activations of a 416 x 416 frame are tens of MB).
  std::vector<std::vector<at::Tensor>> infer_batch(const std::vector<Task*>& tasks,
                                                   const std::vector<at::Tensor>& samples) override {
    std::vector<at::Tensor> xs;
    for (const auto& s : samples)
      xs.push_back(at::upsample_bilinear2d(s, {input_h_, input_w_}, /*align_corners=*/false));
    at::Tensor all = at::cat(xs, 0);
    constexpr int64_t kFramesPerPass = 8;
    std::vector<std::vector<at::Tensor>> passes;
    for (int64_t at_frame = 0; at_frame < all.size(0); at_frame += kFramesPerPass)
      passes.push_back(model_->forward(
          {all.narrow(0, at_frame, std::min(kFramesPerPass, all.size(0) - at_frame))}));
    std::vector<at::Tensor> outputs;
    for (std::size_t k = 0; k < passes[0].size(); ++k) {
      std::vector<at::Tensor> parts;
      for (auto& p : passes) parts.push_back(p[k]);
      outputs.push_back(at::cat(parts, 0));
    }
    (void)tasks;
    return split_batch(outputs, samples);
  }

  // Differentiable: the same decoding as decode(), keeping the selected scores in the graph.
  at::Tensor proxy(const std::vector<at::Tensor>& outputs) override {
    at::Tensor total = at::zeros({}, outputs[0].options());
    const int64_t n = outputs[0].size(0);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<Detection> dets;
      at::Tensor scores = candidates(outputs, i, dets);  // differentiable [K]
      auto kept = nms(dets, nms_iou_);
      if (kept.empty()) continue;
      std::vector<int64_t> idx(kept.begin(), kept.end());
      at::Tensor s = scores.index_select(0, at::tensor(idx, at::kLong));
      total = total + at::sigmoid((s - tau_) * 20.0).sum();
    }
    return total;
  }

  std::vector<ResultPtr> decode(const std::vector<at::Tensor>& outputs) override {
    at::NoGradGuard no_grad;
    std::vector<ResultPtr> out;
    for (int64_t i = 0; i < outputs[0].size(0); ++i) {
      auto r = std::make_shared<FrameDetections>();
      r->tau = tau_;
      std::vector<Detection> dets;
      candidates(outputs, i, dets);
      for (std::size_t k : nms(dets, nms_iou_)) r->dets.push_back(dets[k]);
      out.push_back(r);
    }
    return out;
  }

  double accuracy(const std::vector<ResultPtr>& results,
                  const std::vector<ResultPtr>& reference) override {
    if (results.size() != reference.size() || results.empty())
      throw Error(Errc::internal, "detection: " + std::to_string(results.size()) + " results for " +
                                      std::to_string(reference.size()) + " reference frames");
    double sum = 0;
    for (std::size_t i = 0; i < results.size(); ++i)
      sum += frame_f1(static_cast<const FrameDetections&>(*results[i]).dets,
                      static_cast<const FrameDetections&>(*reference[i]).dets, tau_);
    return sum / static_cast<double>(results.size());
  }

 private:
  // Candidate detections of frame i of the classes of interest with score >= floor, boxes in
  // [0,1] frame coordinates; returns their scores as a tensor still attached to the graph.
  at::Tensor candidates(const std::vector<at::Tensor>& out, int64_t i,
                        std::vector<Detection>& dets) const {
    return arch_ == Arch::nanodet ? nanodet(out, i, dets) : centernet(out, i, dets);
  }

  at::Tensor class_mask(int64_t num_classes, const at::TensorOptions& opts) const {
    at::Tensor m = at::zeros({num_classes}, opts.dtype(at::kBool));
    for (int c : classes_) m[c] = true;
    return m;
  }

  // NanoDet: per stride 8/16/32, sigmoid class scores [N,A,80] and box distributions [N,A,44]
  // (4 sides x 11 bins; softmax, expectation, times the stride, from the cell centre).
  at::Tensor nanodet(const std::vector<at::Tensor>& out, int64_t i,
                     std::vector<Detection>& dets) const {
    const int strides[3] = {8, 16, 32};
    std::vector<at::Tensor> kept_scores;
    for (int s = 0; s < 3; ++s) {
      at::Tensor cls = out[static_cast<std::size_t>(s)][i];  // [A,80]
      at::Tensor masked = cls.detach().masked_fill(~class_mask(cls.size(1), cls.options()), 0);
      at::Tensor sel = (masked >= floor_).nonzero();  // [K,2] (anchor, class)
      if (sel.size(0) == 0) continue;
      at::Tensor anchors = sel.select(1, 0).contiguous(), labels = sel.select(1, 1).contiguous();
      at::Tensor dist = out[static_cast<std::size_t>(s) + 3][i]
                            .detach()
                            .index_select(0, anchors)
                            .view({-1, 4, 11})
                            .softmax(-1);
      at::Tensor side = ((dist * at::arange(11, dist.options())).sum(-1) * strides[s])
                            .to(at::kFloat)
                            .contiguous();  // [K,4] px
      at::Tensor score = masked.index({anchors, labels}).to(at::kFloat).contiguous();
      const int64_t grid_w = (input_w_ + strides[s] - 1) / strides[s];
      const int64_t* a = anchors.data_ptr<int64_t>();
      const int64_t* l = labels.data_ptr<int64_t>();
      const float* sd = side.data_ptr<float>();
      const float* sc = score.data_ptr<float>();
      const float w = static_cast<float>(input_w_), h = static_cast<float>(input_h_),
                  st = static_cast<float>(strides[s]);
      for (int64_t k = 0; k < sel.size(0); ++k) {
        float cx = (static_cast<float>(a[k] % grid_w) + 0.5f) * st,
              cy = (static_cast<float>(a[k] / grid_w) + 0.5f) * st;
        const float* b = sd + 4 * k;
        dets.push_back({(cx - b[0]) / w, (cy - b[1]) / h, (cx + b[2]) / w, (cy + b[3]) / h, sc[k],
                        static_cast<int>(l[k])});
      }
      kept_scores.push_back(cls.index({anchors, labels}));
    }
    return kept_scores.empty() ? at::zeros({0}, out[0].options()) : at::cat(kept_scores);
  }

  // CenterNet: heatmap peaks (a cell equal to the max of its 3x3 neighbourhood) of the sigmoid
  // heatmap [N,128,128,80]; box = (4x - l, 4y - t, 4x + r, 4y + b) from the wh output, as the
  // graph's own decoding does.
  at::Tensor centernet(const std::vector<at::Tensor>& out, int64_t i,
                       std::vector<Detection>& dets) const {
    // Outputs in name order: detections, keypoints, wh.
    at::Tensor heat = out[1][i];         // [H,W,C]
    at::Tensor wh = out[2][i].detach();  // [H,W,4]
    at::Tensor h = heat.detach().permute({2, 0, 1}).unsqueeze(0);
    at::Tensor peaks =
        (h == at::max_pool2d(h, {3, 3}, {1, 1}, {1, 1})).squeeze(0).permute({1, 2, 0});
    at::Tensor masked =
        heat.detach().masked_fill(~class_mask(heat.size(2), heat.options()), 0) * peaks;
    at::Tensor sel = (masked >= floor_).nonzero().contiguous();  // [K,3] (y, x, class)
    const float stride_y = static_cast<float>(input_h_) / static_cast<float>(heat.size(0));
    const float stride_x = static_cast<float>(input_w_) / static_cast<float>(heat.size(1));
    if (sel.size(0) > 0) {
      at::Tensor ys = sel.select(1, 0), xs = sel.select(1, 1), cs = sel.select(1, 2);
      at::Tensor box = wh.index({ys, xs}).to(at::kFloat).contiguous();  // [K,4]
      at::Tensor score = masked.index({ys, xs, cs}).to(at::kFloat).contiguous();
      const int64_t* p = sel.data_ptr<int64_t>();
      const float* b = box.data_ptr<float>();
      const float* sc = score.data_ptr<float>();
      const float w = static_cast<float>(input_w_), h = static_cast<float>(input_h_);
      for (int64_t k = 0; k < sel.size(0); ++k) {
        float cx = static_cast<float>(p[3 * k + 1]) * stride_x,
              cy = static_cast<float>(p[3 * k]) * stride_y;
        dets.push_back({(cx - b[4 * k]) / w, (cy - b[4 * k + 1]) / h, (cx + b[4 * k + 2]) / w,
                        (cy + b[4 * k + 3]) / h, sc[k], static_cast<int>(p[3 * k + 2])});
      }
    }
    if (sel.size(0) == 0) return at::zeros({0}, heat.options());
    return heat.index({sel.select(1, 0), sel.select(1, 1), sel.select(1, 2)});
  }

  std::shared_ptr<Model> model_;
  Arch arch_ = Arch::nanodet;

 public:
  /// Every detection of the frame (after NMS, score >= score_floor); confident above tau.
  std::vector<Region> regions(const TaskResult& result) override {
    std::vector<Region> out;
    for (const auto& d : static_cast<const FrameDetections&>(result).dets)
      out.push_back({d.x0, d.y0, d.x1, d.y1, d.score, d.score > tau_});
    return out;
  }

 private:
  std::set<int> classes_;
  float tau_, nms_iou_, floor_;
  bool nchw_ = true;
  int64_t input_h_ = 0, input_w_ = 0;
};

void register_detection(Registrar& r) {
  r.add_task(
      {"detection",
       "Object detection (NanoDet or CenterNet, COCO classes); proxy and per-frame F1 of method.md",
       "image/rgb-f32-chw",
       {{"detector",
         "object detector graph",
         "nanodet/nanodet.json",
         {"tfjs-graph", "torchscript"},
         false}},
       {{"architecture", "Architecture",
         "How to decode the detector's outputs: 'nanodet' (NanoDet-g, "
         "6 outputs) or 'centernet' (MobileNetV3-CenterNet, detections/keypoints/wh).",
         ParamType::string, "nanodet"},
        {"classes", "Classes of interest", "COCO class names that the proxy and the metric count.",
         ParamType::list, "person,bicycle,car,motorcycle,bus,truck"},
        {"tau", "Confidence threshold",
         "Detections above it count in the metric; the proxy is "
         "sum sigmoid(20 (s - tau)).",
         ParamType::number, "0.5"},
        {"nms_iou", "NMS IoU", "Class-aware non-maximum suppression threshold.", ParamType::number,
         "0.6"},
        {"score_floor", "Score floor",
         "Candidates below it are dropped before NMS (their sigmoid "
         "term in the proxy is < 0.02 at the default tau).",
         ParamType::number, "0.3"}},
       [](const TaskSpec& spec) { return std::make_unique<DetectionTask>(spec); }});
}

}  // namespace

ONEADAPT_PLUGIN("detection", "0.1.0",
                "Detection task: NanoDet/CenterNet, detection proxy, per-frame F1",
                register_detection)
