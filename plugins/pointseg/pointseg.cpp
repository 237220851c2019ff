// The point-segmentation task: ground vs obstacle per cell of the lidar modality's
// bird's-eye-view grid, by the network tools/train-pointseg trains on real scans (ONNX, run by
// the core's engine). Proxy (method.md section 4): sum over occupied cells, weighted by their
// points, of sigmoid(k (p_obstacle - 0.5)). Metric: per-point mIoU (ground, obstacle) against
// the reference output; a reference point whose cell is empty in the degraded rendering takes
// the label of the nearest occupied cell there (nearest-neighbour mapping at cell resolution).
#include <ATen/ATen.h>
#include <oneadapt/batch.hpp>
#include <oneadapt/sdk.hpp>

#include <cmath>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace {

using namespace oneadapt;

class SegResult final : public TaskResult {
 public:
  int64_t rows = 0, cols = 0;
  std::vector<int8_t> label;  // per cell: -1 empty, 0 ground, 1 obstacle
  std::vector<float> points;  // per cell: how many points fell in it
  std::string summary() const override {
    std::size_t g = 0, o = 0;
    for (auto l : label) g += l == 0, o += l == 1;
    return std::to_string(g) + " ground cells, " + std::to_string(o) + " obstacle cells";
  }
};

/// For every cell, the label of the nearest occupied cell of `r` (multi-source breadth-first
/// search, 8-neighbourhood); -1 everywhere when `r` has no occupied cell.
std::vector<int8_t> nearest_labels(const SegResult& r) {
  std::vector<int8_t> out(r.label.size(), -1);
  std::deque<int64_t> queue;
  for (int64_t i = 0; i < static_cast<int64_t>(r.label.size()); ++i)
    if (r.label[static_cast<std::size_t>(i)] >= 0)
      out[static_cast<std::size_t>(i)] = r.label[static_cast<std::size_t>(i)], queue.push_back(i);
  while (!queue.empty()) {
    const int64_t i = queue.front();
    queue.pop_front();
    const int64_t y = i / r.cols, x = i % r.cols;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        const int64_t ny = y + dy, nx = x + dx;
        if (ny < 0 || ny >= r.rows || nx < 0 || nx >= r.cols) continue;
        const auto j = static_cast<std::size_t>(ny * r.cols + nx);
        if (out[j] >= 0) continue;
        out[j] = out[static_cast<std::size_t>(i)];
        queue.push_back(static_cast<int64_t>(j));
      }
  }
  return out;
}

class PointSegTask final : public Task {
 public:
  explicit PointSegTask(const TaskSpec& spec)
      : model_(spec.models.at("segmenter")), sharpness_(spec.params.number("sharpness")) {
    if (!(sharpness_ > 0)) throw Error(Errc::invalid_argument, "pointseg: sharpness must be > 0");
    if (model_->inputs().size() != 1 || model_->outputs().size() != 1)
      throw Error(Errc::model,
                  "pointseg: expected a model with one input (BEV [N,3,H,W]) and one output "
                  "(logits [N,2,H,W])");
  }

  /// samples [N,3,H,W] -> {logits [N,2,H,W], points per cell [N,H,W]}.
  std::vector<at::Tensor> infer(const at::Tensor& samples) override {
    if (samples.dim() != 4 || samples.size(1) != 3)
      throw Error(Errc::invalid_argument, "pointseg: expected BEV samples [N,3,H,W], got " +
                                              std::to_string(samples.dim()) + "-d input");
    at::Tensor logits = model_->forward({samples})[0];
    if (logits.dim() != 4 || logits.size(1) != 2 || logits.size(2) != samples.size(2) ||
        logits.size(3) != samples.size(3))
      throw Error(Errc::model, "pointseg: the model's output is not [N,2,H,W] logits");
    // Channel 0 of the BEV is log(1 + points) / 4.
    return {logits, at::expm1(samples.select(1, 0).detach() * 4).round()};
  }

  /// Stateless, batch dimension free: streams of one model whose grids have one size run in
  /// one pass.
  std::string batch_key() const override {
    return "segmenter@" + std::to_string(reinterpret_cast<std::uintptr_t>(model_.get()));
  }

  std::vector<std::vector<at::Tensor>> infer_batch(const std::vector<Task*>& tasks,
                                                   const std::vector<at::Tensor>& samples) override {
    for (const auto& x : samples)
      if (x.dim() != 4 || x.sizes().slice(1) != samples[0].sizes().slice(1))
        return Task::infer_batch(tasks, samples);  // grids of other sizes: one by one
    return split_batch(infer(at::cat(samples, 0)), samples);
  }

  at::Tensor proxy(const std::vector<at::Tensor>& outputs) override {
    at::Tensor p = outputs.at(0).softmax(1).select(1, 1);
    return (outputs.at(1) * at::sigmoid(sharpness_ * (p - 0.5))).sum();
  }

  std::vector<ResultPtr> decode(const std::vector<at::Tensor>& outputs) override {
    at::Tensor cls = outputs.at(0).detach().argmax(1).to(at::kChar).contiguous();
    at::Tensor pts = outputs.at(1).detach().to(at::kFloat).contiguous();
    std::vector<ResultPtr> out;
    for (int64_t i = 0; i < cls.size(0); ++i) {
      auto r = std::make_shared<SegResult>();
      r->rows = cls.size(1), r->cols = cls.size(2);
      const int8_t* c = cls[i].data_ptr<int8_t>();
      const float* p = pts[i].data_ptr<float>();
      r->points.assign(p, p + r->rows * r->cols);
      r->label.assign(c, c + r->rows * r->cols);
      for (std::size_t k = 0; k < r->label.size(); ++k)
        if (r->points[k] <= 0) r->label[k] = -1;
      out.push_back(std::move(r));
    }
    return out;
  }

  /// Per-point mIoU over ground and obstacle, the reference's points mapped to the nearest
  /// occupied cell of the result; 1 when the reference has no points.
  double accuracy(const std::vector<ResultPtr>& results,
                  const std::vector<ResultPtr>& reference) override {
    double tp[2] = {0, 0}, fp[2] = {0, 0}, fn[2] = {0, 0}, total = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& got = static_cast<const SegResult&>(*results[i]);
      const auto& ref = static_cast<const SegResult&>(*reference.at(i));
      if (got.label.size() != ref.label.size())
        throw Error(Errc::invalid_argument, "pointseg: result and reference grids differ");
      const std::vector<int8_t> mapped = nearest_labels(got);
      for (std::size_t k = 0; k < ref.label.size(); ++k) {
        const int t = ref.label[k];
        if (t < 0) continue;
        const double w = ref.points[k];
        const int p = mapped[k];
        total += w;
        if (p == t)
          tp[t] += w;
        else {
          fn[t] += w;
          if (p >= 0) fp[p] += w;
        }
      }
    }
    if (total == 0) return 1.0;
    double sum = 0;
    int classes = 0;
    for (int c = 0; c < 2; ++c)
      if (tp[c] + fp[c] + fn[c] > 0) sum += tp[c] / (tp[c] + fp[c] + fn[c]), ++classes;
    return classes ? sum / classes : 1.0;
  }

 private:
  std::shared_ptr<Model> model_;
  double sharpness_;
};

void register_pointseg(Registrar& r) {
  r.add_task({"pointseg",
              "Ground/obstacle segmentation of a LiDAR bird's-eye-view grid (network trained in "
              "this project); per-point mIoU",
              "pointcloud/bev-3ch",
              {{"segmenter",
                "BEV ground/obstacle network (tools/train-pointseg)",
                "pointseg/pointseg.onnx",
                {"onnx", "torchscript"},
                false}},
              {{"sharpness", "Proxy sharpness",
                "k of the proxy: sum over cells of points x sigmoid(k (p_obstacle - 0.5)).",
                ParamType::number, "10"}},
              [](const TaskSpec& spec) { return std::make_unique<PointSegTask>(spec); }});
}

}  // namespace

ONEADAPT_PLUGIN("pointseg", "0.1.0",
                "Point-segmentation task: ground/obstacle per BEV cell, per-point mIoU",
                register_pointseg)
