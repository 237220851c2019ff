// tools/make-lidar-stream: the LiDAR demo stream, a directory of binary PCD sweeps (x, y, z,
// intensity and the laser ring, so that the beams knob has the rings to thin; a KITTI .bin has
// no ring field and made that knob a no-op, found by `oneadapt plugins check lidar`).
//
//   make-lidar-stream CACHE_DIR   (writes CACHE_DIR/lidar/stream/, once)
//
// Sweep 00 is the real Velodyne VLP-16 sweep (shared/docs/assets.md). Only one real outdoor
// sweep exists in the registries, so sweeps 01-19 are the same returns under SYNTHETIC sensor
// poses (a yaw of 17 degrees per sweep and a drift of 0.9 m per sweep along x, the motion of a
// slowly turning vehicle), named "NN-synthetic-pose.pcd" so that they say what they are.
#include <cmath>
#include <cstdint>
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
  if (fs::exists(dir / "19-synthetic-pose.pcd")) return 0;
  try {
    const auto c = oneadapt::lidar::read_cloud(cache / "lidar" / "vlp16.rawlog");
    if (!c.has_ring) throw std::runtime_error("the VLP-16 sweep has no ring field");
    fs::remove_all(dir);  // an earlier stream (KITTI .bin, without rings) is replaced
    fs::create_directories(dir);
    for (int k = 0; k < 20; ++k) {
      const double yaw = 17.0 * k * M_PI / 180.0, dx = 0.9 * k, cy = std::cos(yaw),
                   sy = std::sin(yaw);
      char name[64];
      std::snprintf(name, sizeof name, k == 0 ? "%02d-real.pcd" : "%02d-synthetic-pose.pcd", k);
      std::ofstream f(dir / name, std::ios::binary);
      f << "# .PCD v0.7\nVERSION 0.7\nFIELDS x y z intensity ring\nSIZE 4 4 4 4 2\nTYPE F F F F "
           "U\nCOUNT 1 1 1 1 1\nWIDTH "
        << c.size() << "\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS " << c.size()
        << "\nDATA binary\n";
      for (std::size_t i = 0; i < c.size(); ++i) {
        // The world seen from a sensor moved by (dx, 0) and turned by yaw.
        const double x = c.x[i] - dx, y = c.y[i];
        const float v[4] = {static_cast<float>(cy * x + sy * y),
                            static_cast<float>(-sy * x + cy * y), c.z[i], c.intensity[i]};
        const auto ring = static_cast<std::uint16_t>(c.ring[i]);
        f.write(reinterpret_cast<const char*>(v), sizeof v);
        f.write(reinterpret_cast<const char*>(&ring), sizeof ring);
      }
      if (!f) throw std::runtime_error((dir / name).string() + ": cannot write");
    }
    std::printf("make-lidar-stream: %s (1 real sweep, 19 synthetic poses of it)\n",
                dir.string().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make-lidar-stream: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
