// tools/train-pointseg: trains the point-segmentation network of plugins/pointseg (ground vs
// obstacle, per cell of the lidar modality's bird's-eye-view grid) with LibTorch on real scans,
// with labels computed geometrically, and writes it as ONNX for the core's engine.
//
//   train-pointseg CACHE_DIR [--steps N] [--out FILE]
//   train-pointseg CACHE_DIR --evaluate MODEL [--expect-heldout A --tolerance T]
//
// --evaluate runs a saved network (through the core's engine, as the pointseg task does) on the
// same evaluation sets and prints the agreements; with --expect-heldout it exits 1 unless the
// VLP-16 held-out sector's agreement lies within T of A (the test that pins the network).
//
// Scans (shared/docs/assets.md): the Velodyne VLP-16 sweep (outdoor; a 90-degree sector,
// azimuth 270-360, is held out for evaluation) and the SICK LMS400 table scan (indoor, table
// plane as the ground); the stereo table scene (NaN points dropped) is held out entirely.
// Labels: a RANSAC plane fit (PCL); a point within `tol` of the plane is ground, a point more
// than `tol` above it is an obstacle; a cell takes its points' majority label. Augmentation:
// rotation about z, jitter, dropout of laser rings, random subsampling, the modality's voxel
// and range degradations. Deterministic: fixed seeds, one thread for training.
#include <torch/torch.h>

#include <pcl/ModelCoefficients.h>
#include <pcl/point_types.h>
#include <pcl/sample_consensus/method_types.h>
#include <pcl/sample_consensus/model_types.h>
#include <pcl/segmentation/sac_segmentation.h>

#include <onnx/onnx_pb.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>

#include "../../modalities/lidar/lidar_io.hpp"
#include "engine/engine.hpp"

namespace {

using oneadapt::lidar::BevSpec;
using oneadapt::lidar::Cloud;

/// A scan prepared for training: points in a frame with z up, per-point labels (0 ground,
/// 1 obstacle, -1 neither), and the BEV geometry of its scale.
struct Scan {
  std::string name;
  Cloud cloud;
  std::vector<int> label;
  BevSpec bev;
};

// Fits the dominant plane; rotates the cloud so that its normal is +z (when `align`), and labels
// points by their height above it.
Scan prepare(const std::string& name, Cloud c, BevSpec bev, double tol, bool align,
             bool horizontal_only) {
  pcl::PointCloud<pcl::PointXYZ>::Ptr pc(new pcl::PointCloud<pcl::PointXYZ>);
  for (std::size_t k = 0; k < c.size(); k += (c.size() > 120000 ? 4 : 1))
    pc->push_back(pcl::PointXYZ(c.x[k], c.y[k], c.z[k]));
  pcl::SACSegmentation<pcl::PointXYZ> seg;
  seg.setOptimizeCoefficients(true);
  seg.setModelType(horizontal_only ? pcl::SACMODEL_PERPENDICULAR_PLANE : pcl::SACMODEL_PLANE);
  seg.setMethodType(pcl::SAC_RANSAC);
  seg.setDistanceThreshold(tol);
  seg.setMaxIterations(2000);
  if (horizontal_only) seg.setAxis(Eigen::Vector3f(0, 0, 1)), seg.setEpsAngle(15.0 * M_PI / 180.0);
  seg.setInputCloud(pc);
  pcl::PointIndices inliers;
  pcl::ModelCoefficients m;
  std::srand(7);  // PCL's RANSAC draws with rand()
  seg.segment(inliers, m);
  if (m.values.size() != 4) throw std::runtime_error(name + ": no plane found");
  Eigen::Vector3d n(m.values[0], m.values[1], m.values[2]);
  double d = m.values[3] / n.norm();
  n.normalize();
  if (n.z() < 0) n = -n, d = -d;
  Scan s{name, {}, {}, bev};
  Eigen::Matrix3d R = Eigen::Matrix3d::Identity();
  Eigen::Vector3d centre(0, 0, 0);
  if (align) {
    R = Eigen::Quaterniond::FromTwoVectors(n, Eigen::Vector3d(0, 0, 1)).toRotationMatrix();
    // Centre on the inliers' centroid, the plane at z = -0.5 height scales (like a sensor above
    // it).
    for (int i : inliers.indices)
      centre += Eigen::Vector3d((*pc)[static_cast<std::size_t>(i)].x,
                                (*pc)[static_cast<std::size_t>(i)].y,
                                (*pc)[static_cast<std::size_t>(i)].z);
    centre /= std::max<double>(1, static_cast<double>(inliers.indices.size()));
  }
  s.cloud.has_ring = c.has_ring;
  for (std::size_t k = 0; k < c.size(); ++k) {
    Eigen::Vector3d p(c.x[k], c.y[k], c.z[k]);
    const double h = n.dot(p) + d;  // height above the plane
    s.label.push_back(std::abs(h) <= tol ? 0 : h > tol ? 1 : -1);
    Eigen::Vector3d q =
        align ? Eigen::Vector3d(R * (p - centre)) + Eigen::Vector3d(0, 0, -0.5 * bev.height_scale)
              : p;
    s.cloud.push(static_cast<float>(q.x()), static_cast<float>(q.y()), static_cast<float>(q.z()),
                 c.intensity[k], c.ring[k]);
  }
  std::size_t g = 0, o = 0;
  for (int l : s.label) g += l == 0, o += l == 1;
  std::printf(
      "train-pointseg: %s: %zu points, %zu ground, %zu obstacle (plane normal %.2f %.2f %.2f)\n",
      name.c_str(), c.size(), g, o, n.x(), n.y(), n.z());
  return s;
}

// BEV input [3,H,W] and cell labels [H,W] (majority of the points' labels; -1 = empty/ignored)
// of a subset of a scan's points.
void rasterise(const Scan& s, const std::vector<std::size_t>& idx,
               const std::vector<Eigen::Vector3f>& pts, torch::Tensor& x, torch::Tensor& y) {
  std::vector<float> px, py, pz;
  for (const auto& p : pts) px.push_back(p.x()), py.push_back(p.y()), pz.push_back(p.z());
  x = torch::zeros({3, s.bev.cells, s.bev.cells});
  oneadapt::lidar::bev(px, py, pz, s.bev, x.data_ptr<float>());
  const int64_t n = s.bev.cells;
  std::vector<int> votes(static_cast<std::size_t>(2 * n * n), 0);
  const double half = static_cast<double>(n) * s.bev.cell / 2.0;
  for (std::size_t k = 0; k < pts.size(); ++k) {
    const int l = s.label[idx[k]];
    if (l < 0) continue;
    const auto col = static_cast<int64_t>(std::floor((pts[k].x() + half) / s.bev.cell)),
               row = static_cast<int64_t>(std::floor((half - pts[k].y()) / s.bev.cell));
    if (col < 0 || col >= n || row < 0 || row >= n) continue;
    votes[static_cast<std::size_t>(l * n * n + row * n + col)]++;
  }
  y = torch::full({n, n}, -1, torch::kLong);
  auto ya = y.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n * n; ++i) {
    const int g = votes[static_cast<std::size_t>(i)],
              o = votes[static_cast<std::size_t>(n * n + i)];
    if (g + o > 0) ya[i / n][i % n] = o > g ? 1 : 0;
  }
}

struct NetImpl : torch::nn::Module {
  // Dilated convolutions at full resolution: a 35-cell receptive field, no down/up-sampling
  // (so the ONNX export needs Conv and Relu only).
  NetImpl() {
    const int64_t ch[] = {3, 16, 16, 32, 32, 16};
    const int64_t dil[] = {1, 2, 4, 8, 1};
    for (int i = 0; i < 5; ++i)
      convs.push_back(register_module(
          "c" + std::to_string(i),
          torch::nn::Conv2d(
              torch::nn::Conv2dOptions(ch[i], ch[i + 1], 3).padding(dil[i]).dilation(dil[i]))));
    head = register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 2, 1)));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& c : convs) x = torch::relu(c->forward(x));
    return head->forward(x);
  }
  std::vector<torch::nn::Conv2d> convs;
  torch::nn::Conv2d head{nullptr};
};
TORCH_MODULE(Net);

void add_tensor(onnx::GraphProto* g, const std::string& name, const torch::Tensor& t) {
  auto* init = g->add_initializer();
  init->set_name(name);
  init->set_data_type(onnx::TensorProto::FLOAT);
  for (auto s : t.sizes()) init->add_dims(s);
  torch::Tensor c = t.detach().contiguous().to(torch::kFloat);
  init->set_raw_data(std::string(reinterpret_cast<const char*>(c.data_ptr<float>()),
                                 static_cast<std::size_t>(c.numel()) * sizeof(float)));
}

void conv_node(onnx::GraphProto* g, const std::string& in, const std::string& out,
               const std::string& w, const std::string& b, int64_t k, int64_t dil) {
  auto* node = g->add_node();
  node->set_op_type("Conv");
  node->set_name(out);
  node->add_input(in), node->add_input(w), node->add_input(b), node->add_output(out);
  auto ints = [&](const char* name, std::vector<int64_t> v) {
    auto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto x : v) a->add_ints(x);
  };
  const int64_t pad = k == 3 ? dil : 0;
  ints("kernel_shape", {k, k}), ints("dilations", {dil, dil}), ints("pads", {pad, pad, pad, pad}),
      ints("strides", {1, 1});
}

void export_onnx(Net& net, const std::string& path, const std::string& doc) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("oneadapt tools/train-pointseg");
  model.set_doc_string(doc);
  model.add_opset_import()->set_version(13);
  auto* g = model.mutable_graph();
  g->set_name("pointseg");
  auto value = [](onnx::ValueInfoProto* v, const char* name, int64_t c) {
    v->set_name(name);
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    auto* shape = tt->mutable_shape();
    shape->add_dim()->set_dim_param("N");
    shape->add_dim()->set_dim_value(c);
    shape->add_dim()->set_dim_param("H");
    shape->add_dim()->set_dim_param("W");
  };
  value(g->add_input(), "bev", 3);
  value(g->add_output(), "logits", 2);
  const int64_t dil[] = {1, 2, 4, 8, 1};
  std::string in = "bev";
  for (int i = 0; i < 5; ++i) {
    const std::string w = "c" + std::to_string(i) + ".weight",
                      b = "c" + std::to_string(i) + ".bias", conv = "conv" + std::to_string(i),
                      relu = "relu" + std::to_string(i);
    add_tensor(g, w, net->convs[static_cast<std::size_t>(i)]->weight);
    add_tensor(g, b, net->convs[static_cast<std::size_t>(i)]->bias);
    conv_node(g, in, conv, w, b, 3, dil[i]);
    auto* r = g->add_node();
    r->set_op_type("Relu"), r->set_name(relu), r->add_input(conv), r->add_output(relu);
    in = relu;
  }
  add_tensor(g, "head.weight", net->head->weight);
  add_tensor(g, "head.bias", net->head->bias);
  conv_node(g, in, "logits", "head.weight", "head.bias", 1, 1);
  std::ofstream f(path + ".part", std::ios::binary);
  if (!model.SerializeToOstream(&f)) throw std::runtime_error(path + ": cannot write");
  f.close();
  std::filesystem::rename(path + ".part", path);
}

// Agreement of the network's cell labels with the geometric point labels (per point).
double evaluate(const std::function<torch::Tensor(const torch::Tensor&)>& net, const Scan& s,
                const std::vector<std::size_t>& idx, double& ground_acc, double& obstacle_acc,
                double& points) {
  std::vector<Eigen::Vector3f> pts;
  for (auto k : idx) pts.emplace_back(s.cloud.x[k], s.cloud.y[k], s.cloud.z[k]);
  torch::Tensor x, y;
  rasterise(s, idx, pts, x, y);
  torch::NoGradGuard ng;
  torch::Tensor pred = net(x.unsqueeze(0)).argmax(1)[0];
  auto pa = pred.accessor<int64_t, 2>();
  const int64_t n = s.bev.cells;
  const double half = static_cast<double>(n) * s.bev.cell / 2.0;
  double agree = 0, total = 0, g_ok = 0, g_n = 0, o_ok = 0, o_n = 0;
  for (std::size_t k = 0; k < pts.size(); ++k) {
    const int l = s.label[idx[k]];
    const auto col = static_cast<int64_t>(std::floor((pts[k].x() + half) / s.bev.cell)),
               row = static_cast<int64_t>(std::floor((half - pts[k].y()) / s.bev.cell));
    if (l < 0 || col < 0 || col >= n || row < 0 || row >= n) continue;
    const bool ok = pa[row][col] == l;
    agree += ok, total += 1;
    (l == 0 ? g_ok : o_ok) += ok, (l == 0 ? g_n : o_n) += 1;
  }
  ground_acc = g_n ? g_ok / g_n : 0, obstacle_acc = o_n ? o_ok / o_n : 0, points = total;
  return total ? agree / total : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: train-pointseg CACHE_DIR [--steps N] [--out FILE]\n");
    return 2;
  }
  const std::filesystem::path cache = argv[1];
  int steps = 400;
  std::string out = (cache / "pointseg" / "pointseg.onnx").string(), evaluate_model;
  double expect_heldout = -1, tolerance = 0.01;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--steps")
      steps = std::stoi(argv[i + 1]);
    else if (a == "--out")
      out = argv[i + 1];
    else if (a == "--evaluate")
      evaluate_model = argv[i + 1];
    else if (a == "--expect-heldout")
      expect_heldout = std::atof(argv[i + 1]);
    else if (a == "--tolerance")
      tolerance = std::atof(argv[i + 1]);
  }
  try {
    const auto t0 = std::chrono::steady_clock::now();
    torch::manual_seed(1);
    torch::set_num_threads(1);  // deterministic reductions
    std::mt19937 rng(1);
    BevSpec outdoor{0.5, 160, 2.0}, table{0.01, 160, 0.05};
    Scan vlp = prepare("VLP-16 sweep", oneadapt::lidar::read_cloud(cache / "lidar/vlp16.rawlog"),
                       outdoor, 0.25, false, true);
    Scan lms =
        prepare("LMS400 table", oneadapt::lidar::read_cloud(cache / "lidar/table_scene_lms400.pcd"),
                table, 0.006, true, false);
    Scan mug =
        prepare("stereo table (held out)",
                oneadapt::lidar::read_cloud(cache / "lidar/table_scene_mug_stereo.pcd", true),
                table, 0.006, true, false);
    // The held-out sector of the sweep: azimuth 270-360 degrees (x < 0, y > 0 quadrant).
    std::vector<std::size_t> vlp_train, vlp_test, lms_all, mug_all;
    for (std::size_t k = 0; k < vlp.cloud.size(); ++k)
      (vlp.cloud.x[k] < 0 && vlp.cloud.y[k] > 0 ? vlp_test : vlp_train).push_back(k);
    for (std::size_t k = 0; k < lms.cloud.size(); ++k) lms_all.push_back(k);
    for (std::size_t k = 0; k < mug.cloud.size(); ++k) mug_all.push_back(k);

    if (!evaluate_model.empty()) {
      // The saved network, run by the engine as the pointseg task runs it.
      auto model = oneadapt::engine::load_model(evaluate_model);
      auto run = [&](const torch::Tensor& x) {
        torch::NoGradGuard ng;
        return model->forward({x})[0];
      };
      double g = 0, o = 0, pts = 0, heldout = 0;
      for (auto [what, scan, idx] :
           {std::make_tuple("VLP-16 held-out sector (azimuth 270-360)", &vlp, &vlp_test),
            std::make_tuple("stereo table scene (held-out scan)", &mug, &mug_all)}) {
        const double a = evaluate(run, *scan, *idx, g, o, pts);
        if (scan == &vlp) heldout = a;
        std::printf(
            "train-pointseg: %s: agreement with geometric labels %.4f over %.0f points (ground "
            "%.4f, obstacle %.4f)\n",
            what, a, pts, g, o);
      }
      if (expect_heldout >= 0 && !(std::abs(heldout - expect_heldout) <= tolerance)) {
        std::fprintf(stderr,
                     "train-pointseg: error: %s: held-out agreement %.4f is outside %.4f +- %.4f\n",
                     evaluate_model.c_str(), heldout, expect_heldout, tolerance);
        return 1;
      }
      return 0;
    }
    Net net;
    torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(3e-3));
    std::uniform_real_distribution<float> U(0, 1);
    std::normal_distribution<float> N(0, 1);
    const int64_t crop = 96, batch = 4;
    for (int step = 1; step <= steps; ++step) {
      std::vector<torch::Tensor> xs, ys;
      for (int b = 0; b < batch; ++b) {
        const bool outdoor_sample = b % 2 == 0;
        const Scan& s = outdoor_sample ? vlp : lms;
        const auto& pool = outdoor_sample ? vlp_train : lms_all;
        const float angle = U(rng) * 2 * static_cast<float>(M_PI), ca = std::cos(angle),
                    sa = std::sin(angle);
        const float keep = 0.3f + 0.7f * U(rng), jitter = static_cast<float>(s.bev.cell) * 0.1f;
        const int ring_step = s.cloud.has_ring && U(rng) < 0.5f ? (U(rng) < 0.5f ? 2 : 4) : 1;
        const double range = U(rng) < 0.3f ? (15 + 45 * U(rng)) * s.bev.cell / 0.5 : 1e9;
        std::vector<std::size_t> idx;
        std::vector<Eigen::Vector3f> pts;
        for (auto k : pool) {
          if (ring_step > 1 && s.cloud.ring[k] % ring_step != 0) continue;
          if (U(rng) > keep) continue;
          const float x = s.cloud.x[k], y = s.cloud.y[k], z = s.cloud.z[k];
          if (x * x + y * y + z * z > range * range) continue;
          idx.push_back(k);
          pts.emplace_back(ca * x - sa * y + jitter * N(rng), sa * x + ca * y + jitter * N(rng),
                           z + jitter * N(rng));
        }
        torch::Tensor x, y;
        rasterise(s, idx, pts, x, y);
        // A random crop that holds labelled cells.
        const int64_t off_r = static_cast<int64_t>(U(rng) * static_cast<float>(s.bev.cells - crop)),
                      off_c = static_cast<int64_t>(U(rng) * static_cast<float>(s.bev.cells - crop));
        xs.push_back(x.narrow(1, off_r, crop).narrow(2, off_c, crop));
        ys.push_back(y.narrow(0, off_r, crop).narrow(1, off_c, crop));
      }
      torch::Tensor X = torch::stack(xs), Y = torch::stack(ys);
      torch::Tensor logits = net->forward(X);
      torch::Tensor loss = torch::nn::functional::cross_entropy(
          logits, Y,
          torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-1).weight(
              torch::tensor({3.0f, 1.0f})));
      opt.zero_grad();
      loss.backward();
      opt.step();
      if (step % 50 == 0 || step == 1)
        std::printf("train-pointseg: step %d/%d loss %.4f\n", step, steps, loss.item<double>());
    }
    double g = 0, o = 0, pts = 0;
    std::string report;
    char line[256];
    for (auto [what, scan, idx] :
         {std::make_tuple("VLP-16 held-out sector (azimuth 270-360)", &vlp, &vlp_test),
          std::make_tuple("stereo table scene (held-out scan)", &mug, &mug_all),
          std::make_tuple("VLP-16 training sectors", &vlp, &vlp_train),
          std::make_tuple("LMS400 table (trained on)", &lms, &lms_all)}) {
      const double a =
          evaluate([&](const torch::Tensor& x) { return net->forward(x); }, *scan, *idx, g, o, pts);
      std::snprintf(
          line, sizeof line,
          "%s: agreement with geometric labels %.3f over %.0f points (ground %.3f, obstacle %.3f)",
          what, a, pts, g, o);
      std::printf("train-pointseg: %s\n", line);
      report += std::string(line) + "; ";
    }
    std::filesystem::create_directories(std::filesystem::path(out).parent_path());
    export_onnx(net, out,
                "Ground/obstacle per BEV cell (lidar modality: log-count, max z, mean z). Trained "
                "in this project by "
                "tools/train-pointseg on 2 real scans (VLP-16 sweep, LMS400 table) with geometric "
                "labels (RANSAC plane). " +
                    report);
    std::printf("train-pointseg: wrote %s (%d steps, %.0f s)\n", out.c_str(), steps,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train-pointseg: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
