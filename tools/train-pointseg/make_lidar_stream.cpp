// tools/make-lidar-stream: the LiDAR demo stream, a directory of KITTI-style .bin sweeps.
//
//   make-lidar-stream CACHE_DIR   (writes CACHE_DIR/lidar/stream/, once)
//
// Sweep 00 is the real Velodyne VLP-16 sweep (shared/docs/assets.md). Only one real outdoor
// sweep exists in the registries, so sweeps 01-19 are the same returns under SYNTHETIC sensor
// poses (a yaw of 17 degrees per sweep and a drift of 0.9 m per sweep along x, the motion of a
// slowly turning vehicle), named "NN-synthetic-pose.bin" so that they say what they are.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "../../modalities/lidar/lidar_io.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make-lidar-stream CACHE_DIR\n");
    return 2;
  }
  namespace fs = std::filesystem;
  const fs::path cache = argv[1], dir = cache / "lidar" / "stream";
  if (fs::exists(dir / "19-synthetic-pose.bin")) return 0;
  try {
    const auto c = oneadapt::lidar::read_cloud(cache / "lidar" / "vlp16.rawlog");
    fs::create_directories(dir);
    for (int k = 0; k < 20; ++k) {
      const double yaw = 17.0 * k * M_PI / 180.0, dx = 0.9 * k, cy = std::cos(yaw), sy = std::sin(yaw);
      char name[64];
      std::snprintf(name, sizeof name, k == 0 ? "%02d-real.bin" : "%02d-synthetic-pose.bin", k);
      std::ofstream f(dir / name, std::ios::binary);
      for (std::size_t i = 0; i < c.size(); ++i) {
        // The world seen from a sensor moved by (dx, 0) and turned by yaw.
        const double x = c.x[i] - dx, y = c.y[i];
        const float v[4] = {static_cast<float>(cy * x + sy * y), static_cast<float>(-sy * x + cy * y), c.z[i], c.intensity[i]};
        f.write(reinterpret_cast<const char*>(v), sizeof v);
      }
    }
    std::printf("make-lidar-stream: %s (1 real sweep, 19 synthetic poses of it)\n", dir.string().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make-lidar-stream: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
