// tools/make-lidar-stream: the LiDAR streams, directories of binary PCD sweeps (x, y, z,
// intensity and the laser ring, so that the beams knob has the rings to thin; a KITTI .bin has
// no ring field and made that knob a no-op, found by `oneadapt plugins check lidar`).
//
//   make-lidar-stream CACHE_DIR   (writes CACHE_DIR/lidar/stream/ and lidar/stream-changing/,
//                                  each once)
//
// lidar/stream (the demo stream, 20 sweeps): sweep 00 is the real Velodyne VLP-16 sweep
// (shared/docs/assets.md). Only one real outdoor sweep exists in the registries, so sweeps 01-19
// are the same returns under SYNTHETIC sensor poses (a yaw of 17 degrees per sweep and a drift of
// 0.9 m per sweep along x, the motion of a slowly turning vehicle), named "NN-synthetic-pose.pcd"
// so that they say what they are.
//
// lidar/stream-changing (issue 16, 60 sweeps): the same real returns under the same kind of
// synthetic poses, in four segments of 15 sweeps whose density and range change, every change
// SYNTHETIC (named in each file's name):
//   00-14 "full"    every return;
//   15-29 "near"    returns beyond 12 m (horizontal) removed: a street canyon;
//   30-44 "sparse"  the odd rings removed (an 8-beam sensor) and 30 % of the rest dropped at
//                   random (rain, dust; a fixed seed);
//   45-59 "open"    x and y scaled by 1.8 about the sensor: the scene farther away.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "../../modalities/lidar/lidar_io.hpp"

namespace {

namespace fs = std::filesystem;

struct Point {
  float x, y, z, intensity;
  std::uint16_t ring;
};

void write_pcd(const fs::path& path, const std::vector<Point>& pts) {
  std::ofstream f(path, std::ios::binary);
  f << "# .PCD v0.7\nVERSION 0.7\nFIELDS x y z intensity ring\nSIZE 4 4 4 4 2\nTYPE F F F F "
       "U\nCOUNT 1 1 1 1 1\nWIDTH "
    << pts.size() << "\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS " << pts.size()
    << "\nDATA binary\n";
  for (const auto& p : pts) {
    const float v[4] = {p.x, p.y, p.z, p.intensity};
    f.write(reinterpret_cast<const char*>(v), sizeof v);
    f.write(reinterpret_cast<const char*>(&p.ring), sizeof p.ring);
  }
  if (!f) throw std::runtime_error(path.string() + ": cannot write");
}

// The returns of c seen from a sensor moved by (dx, 0) and turned by yaw (degrees).
std::vector<Point> posed(const oneadapt::lidar::Cloud& c, double yaw_deg, double dx) {
  const double yaw = yaw_deg * M_PI / 180.0, cy = std::cos(yaw), sy = std::sin(yaw);
  std::vector<Point> out(c.size());
  for (std::size_t i = 0; i < c.size(); ++i) {
    const double x = c.x[i] - dx, y = c.y[i];
    out[i] = {static_cast<float>(cy * x + sy * y), static_cast<float>(-sy * x + cy * y), c.z[i],
              c.intensity[i], static_cast<std::uint16_t>(c.ring[i])};
  }
  return out;
}

void write_demo(const oneadapt::lidar::Cloud& c, const fs::path& dir) {
  fs::remove_all(dir);  // an earlier stream (KITTI .bin, without rings) is replaced
  fs::create_directories(dir);
  for (int k = 0; k < 20; ++k) {
    char name[64];
    std::snprintf(name, sizeof name, k == 0 ? "%02d-real.pcd" : "%02d-synthetic-pose.pcd", k);
    write_pcd(dir / name, posed(c, 17.0 * k, 0.9 * k));
  }
  std::printf("make-lidar-stream: %s (1 real sweep, 19 synthetic poses of it)\n",
              dir.string().c_str());
}

void write_changing(const oneadapt::lidar::Cloud& c, const fs::path& dir) {
  const fs::path tmp = dir.string() + ".part";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  std::mt19937 rng(16);
  std::uniform_real_distribution<double> u(0, 1);
  const char* segment[4] = {"full", "near", "sparse", "open"};
  for (int k = 0; k < 60; ++k) {
    const int s = k / 15;
    auto pts = posed(c, 11.0 * k, 0.6 * (k % 15));
    std::vector<Point> kept;
    kept.reserve(pts.size());
    for (auto p : pts) {
      if (s == 1 && std::hypot(p.x, p.y) > 12.0) continue;
      if (s == 2 && (p.ring % 2 == 1 || u(rng) < 0.3)) continue;
      if (s == 3) p.x *= 1.8f, p.y *= 1.8f;
      kept.push_back(p);
    }
    char name[64];
    std::snprintf(name, sizeof name, "%02d-synthetic-%s.pcd", k, segment[s]);
    write_pcd(tmp / name, kept);
  }
  fs::remove_all(dir);
  fs::rename(tmp, dir);
  std::printf("make-lidar-stream: %s (60 sweeps of the real returns: poses, ranges, density "
              "synthetic)\n",
              dir.string().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make-lidar-stream CACHE_DIR\n");
    return 2;
  }
  const fs::path cache = argv[1], demo = cache / "lidar" / "stream",
                 changing = cache / "lidar" / "stream-changing";
  const bool need_demo = !fs::exists(demo / "19-synthetic-pose.pcd"),
             need_changing = !fs::exists(changing);
  if (!need_demo && !need_changing) return 0;
  try {
    const auto c = oneadapt::lidar::read_cloud(cache / "lidar" / "vlp16.rawlog");
    if (!c.has_ring) throw std::runtime_error("the VLP-16 sweep has no ring field");
    if (need_demo) write_demo(c, demo);
    if (need_changing) write_changing(c, changing);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make-lidar-stream: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
