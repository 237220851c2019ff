// The LiDAR pipeline: the readers on real files and on handmade files of every format; the
// lidar modality's contract (bytes along each ladder, stable BEV shape, zero InputGrad where a
// knob cannot change the input); bad input.
#include <ATen/ATen.h>

#include <doctest/doctest.h>

#include <pcl/io/pcd_io.h>
#include <pcl/point_types.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../../modalities/lidar/lidar_io.hpp"
#include "adapt/runner.hpp"
#include "adapt/inference.hpp"
#include "assets.hpp"
#include "engine/engine.hpp"
#include "plugin_registry.hpp"
#include "../support.hpp"

using namespace oneadapt;
using namespace oneadapt::adapt;
namespace fs = std::filesystem;
using json = nlohmann::json;
using test_support::plugins;
using test_support::record_lines;
using test_support::temp_dir;

namespace {

// A small handmade cloud: a 4 m x 4 m ground patch at z = -1.5 and a 1 m box on it.
pcl::PointCloud<pcl::PointXYZI> small_cloud() {
  pcl::PointCloud<pcl::PointXYZI> c;
  for (int i = 0; i < 20; ++i)
    for (int j = 0; j < 20; ++j) {
      pcl::PointXYZI p;
      p.x = 4.f + 0.2f * static_cast<float>(i), p.y = -2.f + 0.2f * static_cast<float>(j),
      p.z = -1.5f, p.intensity = 10;
      c.push_back(p);
    }
  for (int i = 0; i < 5; ++i)
    for (int k = 0; k < 5; ++k) {
      pcl::PointXYZI p;
      p.x = 6.f, p.y = -0.5f + 0.2f * static_cast<float>(i),
      p.z = -1.5f + 0.2f * static_cast<float>(k), p.intensity = 50;
      c.push_back(p);
    }
  return c;
}

void write_bin(const fs::path& p, const pcl::PointCloud<pcl::PointXYZI>& c) {
  std::ofstream f(p, std::ios::binary);
  for (const auto& q : c.points) {
    float v[4] = {q.x, q.y, q.z, q.intensity};
    f.write(reinterpret_cast<const char*>(v), sizeof v);
  }
}

void write_ply(const fs::path& p, const pcl::PointCloud<pcl::PointXYZI>& c) {
  std::ofstream f(p);
  f << "ply\nformat ascii 1.0\nelement vertex " << c.size()
    << "\nproperty float x\nproperty float y\nproperty float z\nend_header\n";
  for (const auto& q : c.points) f << q.x << ' ' << q.y << ' ' << q.z << '\n';
}

// LAS 1.2, point format 0 (20-byte records), scale 0.001.
void write_las(const fs::path& p, const pcl::PointCloud<pcl::PointXYZI>& c,
               std::uint32_t announce = 0) {
  std::vector<char> h(227, 0);
  std::memcpy(h.data(), "LASF", 4);
  h[24] = 1, h[25] = 2;
  auto put16 = [&](std::size_t at, uint16_t v) { std::memcpy(&h[at], &v, 2); };
  auto put32 = [&](std::size_t at, uint32_t v) { std::memcpy(&h[at], &v, 4); };
  auto putd = [&](std::size_t at, double v) { std::memcpy(&h[at], &v, 8); };
  put16(94, 227), put32(96, 227), put32(100, 0), h[104] = 0, put16(105, 20);
  put32(107, announce ? announce : static_cast<uint32_t>(c.size()));
  putd(131, 0.001), putd(139, 0.001), putd(147, 0.001);
  std::ofstream f(p, std::ios::binary);
  f.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& q : c.points) {
    char rec[20] = {0};
    int32_t xyz[3] = {static_cast<int32_t>(std::lround(q.x * 1000)),
                      static_cast<int32_t>(std::lround(q.y * 1000)),
                      static_cast<int32_t>(std::lround(q.z * 1000))};
    std::memcpy(rec, xyz, 12);
    uint16_t in = static_cast<uint16_t>(q.intensity);
    std::memcpy(rec + 12, &in, 2);
    f.write(rec, 20);
  }
}

host::HostSource open_lidar(const fs::path& p, const host::ComponentSettings& s = {}) {
  return plugins().open_source("lidar", p.string(), s, 1.0);
}

Configuration config_at(const std::vector<KnobSpec>& knobs, const std::string& key,
                        std::size_t index) {
  std::vector<std::size_t> idx(knobs.size(), 0);
  for (std::size_t k = 0; k < knobs.size(); ++k)
    if (knobs[k].key == key) idx[k] = index;
  return Configuration::at_indices(knobs, idx);
}

}  // namespace

TEST_CASE("lidar readers: the real VLP-16 sweep and the real LMS400 scan") {
  lidar::Cloud v = lidar::read_cloud(asset_path("lidar/vlp16.rawlog"));
  MESSAGE("VLP-16: " << v.size() << " returns");
  CHECK(v.size() == 22591);  // assets.md: 28,800 returns, 22,591 non-zero
  CHECK(v.has_ring);
  double far = 0, zmin = 1e9, zmax = -1e9;
  for (std::size_t k = 0; k < v.size(); ++k) {
    far = std::max(far, std::sqrt(double(v.x[k]) * v.x[k] + double(v.y[k]) * v.y[k] +
                                  double(v.z[k]) * v.z[k]));
    zmin = std::min(zmin, double(v.z[k])), zmax = std::max(zmax, double(v.z[k]));
    REQUIRE(v.ring[k] >= 0);
    REQUIRE(v.ring[k] < 16);
  }
  MESSAGE("farthest return " << far << " m, z in [" << zmin << ", " << zmax << "]");
  CHECK(far > 50);
  CHECK(far < 131);  // 2 mm x 65535
  lidar::Cloud t = lidar::read_cloud(asset_path("lidar/table_scene_lms400.pcd"));
  CHECK(t.size() == 460400);
  CHECK_FALSE(t.has_ring);
  // The stereo scan marks missing points with NaN: an error by default, skipped on request.
  CHECK_THROWS_WITH_AS(lidar::read_cloud(asset_path("lidar/table_scene_mug_stereo.pcd")),
                       doctest::Contains("NaN, infinite or absurd (beyond 100,000 km) coordinates"),
                       Error);
  CHECK(lidar::read_cloud(asset_path("lidar/table_scene_mug_stereo.pcd"), true).size() > 100000);
}

TEST_CASE("lidar readers: handmade files of every format give the same points") {
  const fs::path d = temp_dir("formats");
  auto c = small_cloud();
  pcl::PCDWriter w;
  w.writeASCII((d / "a.pcd").string(), c);
  w.writeBinary((d / "b.pcd").string(), c);
  w.writeBinaryCompressed((d / "c.pcd").string(), c);
  write_bin(d / "d.bin", c);
  write_ply(d / "e.ply", c);
  write_las(d / "f.las", c);
  for (const char* name : {"a.pcd", "b.pcd", "c.pcd", "d.bin", "e.ply", "f.las"}) {
    lidar::Cloud r = lidar::read_cloud(d / name);
    REQUIRE_MESSAGE(r.size() == c.size(), name);
    double err = 0;
    for (std::size_t k = 0; k < r.size(); ++k)
      err = std::max({err, std::abs(double(r.x[k]) - c[k].x), std::abs(double(r.y[k]) - c[k].y),
                      std::abs(double(r.z[k]) - c[k].z)});
    CHECK_MESSAGE(err < 1e-3, name << ": max coordinate error " << err);
  }
  fs::remove_all(d);
}

TEST_CASE("lidar readers: bad files give one error naming the file") {
  const fs::path d = temp_dir("bad");
  auto c = small_cloud();
  pcl::PCDWriter().writeBinary((d / "full.pcd").string(), c);
  {
    auto b = lidar::read_all(d / "full.pcd");
    std::ofstream(d / "truncated.pcd", std::ios::binary)
        .write(b.data(), static_cast<std::streamsize>(b.size() - 200));
  }
  std::ofstream(d / "empty.pcd").close();
  std::ofstream(d / "notes.pcd") << "these are not points\n";
  {
    std::ofstream f(d / "odd.bin", std::ios::binary);
    f << "0123456789";
  }
  write_las(d / "short.las", c, static_cast<uint32_t>(c.size() + 50));
  std::ofstream(d / "cloud.xyz") << "1 2 3\n";
  pcl::PointCloud<pcl::PointXYZ> none;
  none.push_back(pcl::PointXYZ(std::numeric_limits<float>::quiet_NaN(), 0, 0));
  pcl::PCDWriter().writeASCII((d / "nan.pcd").string(), none);
  const std::pair<const char*, const char*> cases[] = {
      {"truncated.pcd", "malformed or truncated"},
      {"empty.pcd", "is empty (0 bytes)"},
      {"notes.pcd", "not a PCD file (line 1"},
      {"odd.bin", "10 bytes is not a whole number of KITTI points"},
      {"short.las", "truncated: the header announces 475 points"},
      {"cloud.xyz", "unknown point-cloud format '.xyz'"},
      {"nan.pcd", "1 of 1 points have NaN"},
      {"missing.pcd", "no such file"}};
  for (const auto& [name, why] : cases) {
    CHECK_THROWS_WITH_AS(lidar::read_cloud(d / name), doctest::Contains(why), Error);
    try {
      lidar::read_cloud(d / name);
    } catch (const Error& e) {
      CHECK_MESSAGE(std::string(e.what()).find(name) != std::string::npos, e.what());
    }
  }
  fs::remove_all(d);
}

TEST_CASE(
    "lidar modality: bytes fall along every ladder on the real sweep and the BEV shape never "
    "changes") {
  auto source = open_lidar(asset_path("lidar/vlp16.rawlog"));
  const auto knobs = source.knobs();
  REQUIRE(knobs.size() == 4);
  IntervalInfo info;
  REQUIRE(source.next_interval(info));
  CHECK(info.samples == 1);
  const at::Tensor G = source.original();
  CHECK(G.sizes() == at::IntArrayRef({1, 3, 160, 160}));
  for (const auto& knob : knobs) {
    std::uint64_t last = UINT64_MAX;
    for (std::size_t i = 0; i < knob.values.size(); ++i) {
      auto t0 = std::chrono::steady_clock::now();
      Rendering r = source.render(config_at(knobs, knob.key, i));
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      CHECK(r.input.sizes() == G.sizes());
      MESSAGE(knob.key << "=" << knob.values[i].label << ": " << r.bytes << " bytes, " << ms
                       << " ms, |V-G| " << (r.input - G).abs().mean().item<double>());
      CHECK_MESSAGE(r.bytes < last, knob.key << "=" << knob.values[i].label
                                             << " is not cheaper than the previous value");
      last = r.bytes;
    }
  }
  // The reference rendering keeps the grid: at 2 mm precision only the few points within 2 mm
  // of a cell border can change cell.
  Rendering ref = source.render(source.reference());
  CHECK((ref.input - G).abs().mean().item<double>() < 1e-3);
}

TEST_CASE("lidar modality: InputGrad is zero where a knob cannot change the input") {
  // The LMS400 table scan: no laser rings, and every point within 3 m of the sensor.
  auto source = open_lidar(asset_path("lidar/table_scene_lms400.pcd"),
                           {{{"cell", "0.02"}, {"cells", "160"}}, {}});
  const auto knobs = source.knobs();
  IntervalInfo info;
  REQUIRE(source.next_interval(info));
  const at::Tensor ref = source.render(source.reference()).input;
  for (std::size_t i = 1; i < 3; ++i)
    CHECK(at::equal(source.render(config_at(knobs, "beams", i)).input, ref));
  for (std::size_t i = 1; i < 4; ++i)
    CHECK(at::equal(source.render(config_at(knobs, "range", i)).input, ref));  // full, 60, 40, 25 m
  CHECK_FALSE(at::equal(source.render(config_at(knobs, "voxel", 2)).input, ref));
}

namespace {

std::shared_ptr<Model> segmenter() {
  return engine::load_model(asset_path("pointseg/pointseg.onnx"));
}

RunSummary run_stream(double beta, fs::path& out, std::size_t intervals) {
  return test_support::run_oneadapt(
      open_lidar(asset_path("lidar/stream")),
      plugins().create_task("pointseg", {}, {{"segmenter", segmenter()}}), beta, intervals, out);
}

}  // namespace

TEST_CASE(
    "pointseg: the trained network finds ground and obstacles, its proxy is differentiable, "
    "nearest-cell mIoU") {
  auto task = plugins().create_task("pointseg", {}, {{"segmenter", segmenter()}});
  auto source = open_lidar(asset_path("lidar/vlp16.rawlog"));
  IntervalInfo info;
  REQUIRE(source.next_interval(info));
  at::Tensor x = source.original().clone().requires_grad_(true);
  auto out = task.infer(x);
  REQUIRE(out.size() == 2);
  CHECK(out[0].sizes() == at::IntArrayRef({1, 2, 160, 160}));
  // Points per cell, recovered from the BEV: the returns inside the 80 m x 80 m grid.
  lidar::Cloud c = lidar::read_cloud(asset_path("lidar/vlp16.rawlog"));
  double inside = 0;
  for (std::size_t k = 0; k < c.size(); ++k)
    inside += std::abs(c.x[k]) < 40 && std::abs(c.y[k]) < 40;
  CHECK(out[1].sum().item<double>() == doctest::Approx(inside).epsilon(0.002));
  auto results = task.decode(out);
  // Both classes, in numbers near the measured ones (the summary is "N ground cells, M obstacle
  // cells").
  const std::string summary = results[0]->summary();
  MESSAGE("VLP-16 sweep: " << summary);
  long ground = -1, obstacle = -1;
  REQUIRE(std::sscanf(summary.c_str(), "%ld ground cells, %ld obstacle cells", &ground,
                      &obstacle) == 2);
  CHECK(ground >= 500);     // measured 650
  CHECK(obstacle >= 1200);  // measured 1524
  at::Tensor proxy = task.proxy(out);
  auto g = engine::input_gradients(proxy, {x})[0];
  CHECK(at::isfinite(g).all().item<bool>());
  CHECK(g.abs().sum().item<double>() > 0);
  CHECK(task.accuracy(results, results) == 1.0);
  // A rendering with every fourth ring: its empty cells take the nearest occupied cell's label.
  Rendering sparse = source.render(config_at(source.knobs(), "beams", 2));
  at::NoGradGuard ng;
  auto sparse_results = task.decode(task.infer(sparse.input));
  const double a = task.accuracy(sparse_results, results);
  MESSAGE("beams 1/4 against all beams: mIoU " << a);
  CHECK(a == doctest::Approx(0.578).epsilon(0.05));  // measured 0.5779
}

TEST_CASE(
    "pointseg: streams batched in one pass equal each on its own, a grid of another size is "
    "run on its own") {
  auto model = segmenter();
  std::vector<host::HostTask> tasks;
  for (int i = 0; i < 4; ++i)
    tasks.push_back(plugins().create_task("pointseg", {}, {{"segmenter", model}}));
  CHECK(!tasks[0].batch_key().empty());
  CHECK(tasks[0].batch_key() == tasks[3].batch_key());
  auto source = open_lidar(asset_path("lidar/stream"));
  IntervalInfo info;
  std::vector<at::Tensor> sweeps;
  for (int i = 0; i < 3 && source.next_interval(info); ++i)
    sweeps.push_back(source.render(source.reference()).input);
  REQUIRE(sweeps.size() == 3);
  // Stream 1 sends two sweeps (one plain, one for DNNGrad); stream 3's grid has another size
  // (a cropped BEV): with it the passes split up, the answers stay right.
  std::vector<at::Tensor> xs = {sweeps[0], at::cat({sweeps[1], sweeps[2]}), sweeps[2],
                                sweeps[0].narrow(2, 0, 96).narrow(3, 0, 96).contiguous()};
  std::vector<host::HostTask*> who = {&tasks[0], &tasks[1], &tasks[2], &tasks[3]};
  const std::vector<bool> grad = {true, true, false, false};
  for (std::size_t n : {3, 4}) {
    std::vector<host::HostTask*> w(who.begin(), who.begin() + static_cast<std::ptrdiff_t>(n));
    std::vector<at::Tensor> x(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(n));
    std::vector<bool> g(grad.begin(), grad.begin() + static_cast<std::ptrdiff_t>(n));
    auto batched = infer_samples_batch(w, x, std::vector<std::vector<std::uint8_t>>(n), g);
    for (std::size_t s = 0; s < n; ++s) {
      auto alone = infer_samples(*w[s], x[s], {}, g[s]);
      CHECK(w[s]->accuracy(batched[s].results, alone.results) == 1.0);
      CHECK(batched[s].results[0]->summary() == alone.results[0]->summary());
      if (g[s]) {
        CHECK(batched[s].proxy == doctest::Approx(alone.proxy).epsilon(1e-5));
        const double rel = (batched[s].grad - alone.grad).norm().item<double>() /
                           alone.grad.norm().item<double>();
        MESSAGE(n << " streams, stream " << s << ": relative gradient difference " << rel);
        CHECK(rel < 1e-4);
      }
    }
  }
}

namespace {

// Point-segmentation results decoded from hand-made outputs: per cell a label (0 ground,
// 1 obstacle) and a point count (0 = empty cell), one row of `cols` cells.
std::vector<ResultPtr> seg_results(host::HostTask& task, const std::vector<int>& labels,
                                   const std::vector<float>& points) {
  const auto cols = static_cast<int64_t>(labels.size());
  at::Tensor logits = at::zeros({1, 2, 1, cols}), pts = at::zeros({1, 1, cols});
  for (int64_t c = 0; c < cols; ++c) {
    logits[0][labels[static_cast<std::size_t>(c)]][0][c] = 5.0f;
    pts[0][0][c] = points[static_cast<std::size_t>(c)];
  }
  return task.decode({logits, pts});
}

}  // namespace

TEST_CASE(
    "pointseg: per-point mIoU against hand-computed values (nearest-cell mapping, absent classes, "
    "empty sides)") {
  auto task = plugins().create_task("pointseg", {}, {{"segmenter", segmenter()}});
  const int G = 0, O = 1;
  // Reference: cell 0 ground (2 points), cell 1 obstacle (1), cell 2 empty, cell 3 obstacle (3).
  auto ref = seg_results(task, {G, O, G, O}, {2, 1, 0, 3});
  CHECK(ref[0]->summary() == "1 ground cells, 2 obstacle cells");
  // Result: cell 1 empty, so its reference point takes the nearest occupied cell's label
  // (ground, cell 0): ground TP 2, FP 1; obstacle TP 3, FN 1 -> (2/3 + 3/4) / 2 = 17/24.
  auto got = seg_results(task, {G, O, G, O}, {1, 0, 1, 3});
  CHECK(task.accuracy(got, ref) == doctest::Approx(17.0 / 24.0));
  CHECK(task.accuracy(ref, ref) == 1.0);
  // A class absent from both sides does not count: all ground against all ground is 1.
  auto ground = seg_results(task, {G, G}, {4, 1});
  CHECK(task.accuracy(ground, ground) == 1.0);
  // Every point on the wrong class: both IoUs 0.
  CHECK(task.accuracy(seg_results(task, {O, O}, {4, 1}), ground) == 0.0);
  // Weighted by points: cell 0 (4 points) right, cell 1 (1 point) wrong -> ground 4/5, obstacle
  // 0/1.
  CHECK(task.accuracy(seg_results(task, {G, O}, {4, 1}), ground) == doctest::Approx(0.4));
  // An empty result maps nothing: every reference point is missed.
  CHECK(task.accuracy(seg_results(task, {G, G}, {0, 0}), ground) == 0.0);
  // An empty reference has nothing to miss.
  CHECK(task.accuracy(ground, seg_results(task, {G, G}, {0, 0})) == 1.0);
}

TEST_CASE("OneAdapt on 6 sweeps of the LiDAR stream: beta = 0 keeps the reference, accuracy 1") {
  fs::path out;
  RunSummary s = run_stream(0.0, out, 6);
  auto records = record_lines(out);
  REQUIRE(records.size() == 6);
  for (const auto& r : records) {
    CHECK(r["config_str"] == "voxel=0 range=full beams=all precision=0.002");
    CHECK(r["accuracy"].get<double>() == 1.0);
    for (const char* k : {"voxel", "range", "beams", "precision"})
      CHECK(r["trace"]["accgrad"][k].is_number());
  }
  CHECK(s.charges.uplink() == s.bytes_ref_total);
  fs::remove_all(out);
}

TEST_CASE("OneAdapt on 6 sweeps of the LiDAR stream: a large beta cuts bytes") {
  fs::path out;
  RunSummary s = run_stream(5.0, out, 6);
  auto records = record_lines(out);
  REQUIRE(records.size() == 6);
  const double last =
      records.back()["bytes"].get<double>() / records.back()["bytes_ref"].get<double>();
  MESSAGE("sweep 5: " << records.back()["config_str"] << ", bytes " << 100 * last
                      << "% of the reference, mIoU " << records.back()["accuracy"] << "; run "
                      << 100.0 * s.charges.uplink() / s.bytes_ref_total << "%, accuracy "
                      << s.accuracy_mean);
  CHECK(last <= 0.6);
  CHECK(s.charges.uplink() < s.bytes_ref_total);
  fs::remove_all(out);
}
