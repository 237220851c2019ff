// The lidar modality: a point-cloud file or a directory of them (one sweep per interval, in
// name order) in PCD, PLY, KITTI .bin, LAS or the Velodyne VLP-16 rawlog. Knobs: voxel leaf
// size, maximum range, beam subsampling (ring-structured sensors) and coordinate precision
// through PCL's octree point-cloud compression (real compressed bytes, decoded back). The DNN
// input is a fixed bird's-eye-view grid [3, cells, cells] (docs/lidar.md says why), so that
// renderings at different configurations compare cell by cell.
#include <ATen/ATen.h>
#include <oneadapt/sdk.hpp>
#include <pcl/compression/octree_pointcloud_compression.h>
#include <pcl/point_types.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <sstream>
#include <unordered_map>

#include "lidar_io.hpp"

namespace {

using namespace oneadapt;
namespace fs = std::filesystem;

constexpr double kFullRange = 1e6;  // the number behind the label "full"

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<KnobSpec> lidar_knobs() {
  KnobSpec range{
      "range", "Maximum range", "Points farther than this from the sensor are not sent.", "m", {},
      0};
  range.values = {KnobValue::named("full", kFullRange), KnobValue::of(60), KnobValue::of(40),
                  KnobValue::of(25), KnobValue::of(15)};
  KnobSpec beams{"beams",
                 "Beam subsampling",
                 "Ring-structured sensors (Velodyne): send every laser ring, every second or every "
                 "fourth. Clouds without rings are not changed by it.",
                 "",
                 {},
                 0};
  beams.values = {KnobValue::named("all", 1), KnobValue::named("1/2", 2),
                  KnobValue::named("1/4", 4)};
  return {
      KnobSpec::numeric("voxel", "Voxel leaf size", "m", {0, 0.05, 0.1, 0.2, 0.4},
                        "Points are replaced by the centroid of each cubic voxel of this size (0 = "
                        "every point)."),
      range,
      beams,
      KnobSpec::numeric(
          "precision", "Coordinate precision", "m", {0.002, 0.01, 0.02, 0.05, 0.1},
          "Precision of the coordinates in PCL's octree point-cloud compression (the bytes sent)."),
  };
}

std::vector<ParamSpec> lidar_params() {
  return {
      {"cell", "BEV cell", "Size in metres of one cell of the bird's-eye-view grid the DNN sees.",
       ParamType::number, "0.5"},
      {"cells", "BEV cells", "Cells per side of the grid (centred on the sensor).",
       ParamType::integer, "160"},
      {"height_scale", "Height scale", "Heights in the grid are divided by this many metres.",
       ParamType::number, "2"},
      {"invalid_points", "Invalid points",
       "'error' (default): a NaN or infinite point is an error naming the file; "
       "'drop': such points are skipped (organised clouds from stereo or RGB-D cameras mark "
       "missing returns so).",
       ParamType::string, "error"},
  };
}

/// Centroid of each voxel (exact, hashed: no index overflow on large extents).
lidar::Cloud voxelise(const lidar::Cloud& c, double leaf) {
  if (leaf <= 0) return c;
  struct Acc {
    double x = 0, y = 0, z = 0, i = 0;
    int n = 0;
    int16_t ring = -1;
  };
  std::unordered_map<uint64_t, Acc> cells;
  std::vector<uint64_t> order;
  for (std::size_t k = 0; k < c.size(); ++k) {
    auto q = [&](float v) {
      return static_cast<uint64_t>(static_cast<int64_t>(std::floor(v / leaf)) + (1 << 20)) &
             0x1FFFFF;
    };
    const uint64_t key = q(c.x[k]) << 42 | q(c.y[k]) << 21 | q(c.z[k]);
    auto [it, fresh] = cells.try_emplace(key);
    if (fresh) order.push_back(key), it->second.ring = c.ring[k];
    Acc& a = it->second;
    a.x += c.x[k], a.y += c.y[k], a.z += c.z[k], a.i += c.intensity[k], ++a.n;
  }
  lidar::Cloud out;
  out.has_ring = c.has_ring;
  for (uint64_t key : order) {
    const Acc& a = cells[key];
    out.push(static_cast<float>(a.x / a.n), static_cast<float>(a.y / a.n),
             static_cast<float>(a.z / a.n), static_cast<float>(a.i / a.n), a.ring);
  }
  return out;
}

// The BEV grid of the plugin's parameters (the source's and the receiver's).
lidar::BevSpec bev_of(const Params& params) {
  lidar::BevSpec bev;
  bev.cell = params.number("cell");
  bev.cells = params.integer("cells");
  bev.height_scale = params.number("height_scale");
  if (!(bev.cell > 0)) throw Error(Errc::invalid_argument, "lidar: cell must be > 0 metres");
  if (bev.cells < 8 || bev.cells > 2048)
    throw Error(Errc::invalid_argument, "lidar: cells must be 8 ... 2048");
  if (!(bev.height_scale > 0))
    throw Error(Errc::invalid_argument, "lidar: height_scale must be > 0 metres");
  return bev;
}

at::Tensor bev_grid(const lidar::BevSpec& bev, const std::vector<float>& x,
                    const std::vector<float>& y, const std::vector<float>& z) {
  at::Tensor out = at::zeros({1, 3, bev.cells, bev.cells});
  lidar::bev(x, y, z, bev, out.data_ptr<float>());
  return out;
}

// PCL's octree decoder trusts its input: it searches for its header without end on bytes that
// lack one, and sizes its buffers from the stream. Bytes received from the network are checked
// first against what our encoder writes (one self-contained I-frame, XYZ without colour): the
// header at offset 0, a point count, a resolution and a bounding box in range, and a first
// buffer size that the bytes can hold. Beyond that the range-coded body is PCL's to decode.
void check_octree_header(const std::string& b, const std::string& what) {
  static const char kId[] = "<PCL-OCT-COMPRESSED>";
  constexpr std::size_t kIdLen = sizeof kId - 1;
  constexpr std::size_t kHeader = kIdLen + 4 + 1 + 1 + 1 + 8 + 8 + 1 + 8 + 6 * 8;
  auto bad = [&](const std::string& why) {
    return Error(Errc::corrupt_data,
                 "lidar: " + what + " is not one of our octree streams (" + why + ")");
  };
  if (b.size() < kHeader + 8) throw bad("only " + std::to_string(b.size()) + " bytes");
  if (b.compare(0, kIdLen, kId) != 0) throw bad("no PCL octree header at its start");
  std::size_t at = kIdLen + 4;
  auto u8 = [&] { return static_cast<unsigned char>(b[at++]); };
  auto f64 = [&] {
    double v;
    std::memcpy(&v, b.data() + at, 8);
    at += 8;
    return v;
  };
  auto u64 = [&] {
    std::uint64_t v;
    std::memcpy(&v, b.data() + at, 8);
    at += 8;
    return v;
  };
  if (u8() != 1) throw bad("not an intra frame");
  const unsigned char voxel_only = u8(), colour = u8();
  if (voxel_only != 0 || colour != 0) throw bad("unexpected coding flags");
  const std::uint64_t points = u64();
  const double resolution = f64();
  (void)u8();  // colour bit depth: unused without colour
  const double precision = f64();
  double box[6];
  for (double& v : box) v = f64();
  constexpr std::uint64_t kMaxPoints = 1u << 21;  // 2 M points: 8x a 128-beam sweep
  if (points > kMaxPoints) throw bad(std::to_string(points) + " points");
  if (!(resolution >= 1e-4 && resolution <= 1e3) || !(precision >= 1e-5 && precision <= 1e3))
    throw bad("resolution or precision out of range");
  for (int k = 0; k < 3; ++k) {
    if (!std::isfinite(box[k]) || !std::isfinite(box[k + 3]) || box[k + 3] < box[k] ||
        box[k + 3] - box[k] > resolution * (1 << 20))
      throw bad("bounding box out of range");
  }
  const std::uint64_t tree = u64();  // bytes of the octree's structure, one per branch node
  if (tree > 22 * (points + 1)) throw bad("an octree larger than its points need");  // depth <= 21
}

// PCL's octree decoder over `bytes`; `what` names them in errors.
void decode_octree(const std::string& bytes, std::vector<float>& x, std::vector<float>& y,
                   std::vector<float>& z, const std::string& what) {
  std::stringstream stream(bytes);
  pcl::io::OctreePointCloudCompression<pcl::PointXYZ> decoder;
  pcl::PointCloud<pcl::PointXYZ>::Ptr back(new pcl::PointCloud<pcl::PointXYZ>);
  try {
    decoder.decodePointCloud(stream, back);
  } catch (const std::exception& e) {
    throw Error(Errc::corrupt_data, "lidar: " + what + " does not decode: " + e.what());
  }
  if (stream.fail())  // PCL read past the end: the bytes were cut short
    throw Error(Errc::corrupt_data, "lidar: " + what + " is cut short");
  for (const auto& p : back->points) {
    if (!std::isfinite(p.x) || !std::isfinite(p.y) || !std::isfinite(p.z))
      throw Error(Errc::corrupt_data, "lidar: " + what + " decodes to a non-finite point");
    x.push_back(p.x), y.push_back(p.y), z.push_back(p.z);
  }
}

// S: |grad| summed over the BEV channels, averaged over 4x4 cells. The source and the receiver
// share it.
at::Tensor cell_saliency(const at::Tensor& grad) {
  at::Tensor s = grad.detach().abs().sum(0, /*keepdim=*/true).unsqueeze(0);
  at::Tensor pooled = at::avg_pool2d(s, {4, 4}, {4, 4}, {0, 0}, /*ceil_mode=*/true);
  return at::upsample_nearest2d(pooled, {grad.size(1), grad.size(2)}).squeeze(0);
}

class LidarSource final : public Source {
 public:
  explicit LidarSource(const SourceSpec& spec) : knobs_(lidar_knobs()) {
    if (spec.uri.empty()) throw Error(Errc::invalid_argument, "lidar: no input given");
    const fs::path path = spec.uri;
    std::error_code ec;
    if (!fs::exists(path, ec))
      throw Error(Errc::not_found, spec.uri + ": no such file or directory");
    if (fs::is_directory(path, ec)) {
      for (const auto& e : fs::directory_iterator(path))
        if (lidar::is_cloud_file(e.path())) files_.push_back(e.path());
      std::sort(files_.begin(), files_.end());
      if (files_.empty())
        throw Error(Errc::not_found,
                    spec.uri + ": directory has no point clouds (pcd, ply, bin, las, rawlog)");
    } else {
      files_.push_back(path);
    }
    bev_ = bev_of(spec.params);
    const std::string invalid = spec.params.str("invalid_points");
    if (invalid != "error" && invalid != "drop")
      throw Error(Errc::invalid_argument,
                  "lidar: invalid_points must be 'error' or 'drop', got '" + invalid + "'");
    drop_invalid_ = invalid == "drop";
    interval_seconds_ = spec.interval_seconds;
    override_ladders(spec);
    // The first sweep is read now, so that a broken input is reported before the run starts.
    first_ = lidar::read_cloud(files_[0], drop_invalid_);
  }

  std::vector<KnobSpec> knobs() const override { return knobs_; }

  bool next_interval(IntervalInfo& info) override {
    if (next_ >= files_.size()) return false;
    current_ = next_ == 0 ? std::move(first_) : lidar::read_cloud(files_[next_], drop_invalid_);
    if (next_ == 0) first_ = lidar::Cloud{};
    dropped_ += current_.dropped;
    original_ = grid(current_.x, current_.y, current_.z);
    info.index = next_;
    info.t_start = static_cast<double>(next_) * interval_seconds_;
    info.duration = interval_seconds_;
    info.samples = 1;
    ++next_;
    return true;
  }

  at::Tensor original() override { return original_; }

  Rendering render(const Configuration& config) override {
    require_ladder_values(config, knobs_, "lidar");
    Rendering r;
    auto t0 = std::chrono::steady_clock::now();
    const auto step = static_cast<int>(std::lround(config.number("beams")));
    const double range = config.number("range");
    lidar::Cloud kept;
    kept.has_ring = current_.has_ring;
    for (std::size_t k = 0; k < current_.size(); ++k) {
      if (current_.has_ring && step > 1 && current_.ring[k] % step != 0) continue;
      const double d2 = static_cast<double>(current_.x[k]) * current_.x[k] +
                        static_cast<double>(current_.y[k]) * current_.y[k] +
                        static_cast<double>(current_.z[k]) * current_.z[k];
      if (range < kFullRange && d2 > range * range) continue;
      kept.push(current_.x[k], current_.y[k], current_.z[k], current_.intensity[k],
                current_.ring[k]);
    }
    kept = voxelise(kept, config.number("voxel"));
    r.timings_ms["filter"] = ms_since(t0);

    // PCL's octree compression, one self-contained (I-)frame per sweep: real bytes.
    t0 = std::chrono::steady_clock::now();
    pcl::PointCloud<pcl::PointXYZ>::Ptr cloud(new pcl::PointCloud<pcl::PointXYZ>);
    cloud->reserve(kept.size());
    for (std::size_t k = 0; k < kept.size(); ++k)
      cloud->push_back(pcl::PointXYZ(kept.x[k], kept.y[k], kept.z[k]));
    const double precision = config.number("precision");
    std::stringstream stream;
    std::vector<float> x, y, z;
    if (!cloud->empty()) {
      pcl::io::OctreePointCloudCompression<pcl::PointXYZ> encoder(
          pcl::io::MANUAL_CONFIGURATION, false, precision, octree_resolution(precision), false, 0,
          false, 8);
      encoder.encodePointCloud(cloud, stream);
      const std::string bytes = stream.str();
      r.bytes = static_cast<std::uint64_t>(bytes.size());
      r.timings_ms["encode"] = ms_since(t0);
      t0 = std::chrono::steady_clock::now();
      decode_octree(bytes, x, y, z, "our own octree stream");
      r.timings_ms["decode"] = ms_since(t0);
      r.wire.assign(bytes.begin(), bytes.end());
    }
    r.input = grid(x, y, z);
    r.fresh = {1};
    r.compute_units = 1.0;
    return r;
  }

  at::Tensor saliency(const at::Tensor& grad) override { return cell_saliency(grad); }

  std::string describe() const override {
    const std::size_t dropped =
        dropped_ + first_.dropped;  // first_ counts until it is read as sweep 0
    return std::to_string(files_.size()) + " sweep" + (files_.size() == 1 ? "" : "s") + "; BEV " +
           std::to_string(bev_.cells) + "x" + std::to_string(bev_.cells) + " cells of " +
           KnobValue::of(bev_.cell).label + " m" +
           (dropped ? "; " + std::to_string(dropped) + " invalid points dropped so far" : "");
  }

 private:
  // The octree leaf: fixed at 0.2 m (coarser only for precisions above 0.1 m), so that the
  // precision alone sets the bits per coordinate inside a leaf.
  static double octree_resolution(double precision) { return std::max(0.2, 2 * precision); }

  at::Tensor grid(const std::vector<float>& x, const std::vector<float>& y,
                  const std::vector<float>& z) const {
    return bev_grid(bev_, x, y, z);
  }

  void override_ladders(const SourceSpec& spec) {
    for (auto& knob : knobs_) {
      auto it = spec.ladders.find(knob.key);
      if (it == spec.ladders.end()) continue;
      std::vector<KnobValue> values;
      for (const auto& label : it->second) {
        double v = 0;
        const bool num = parse_number(label, v);
        auto bad = [&](const std::string& must) {
          return Error(Errc::invalid_argument, "knob '" + knob.key + "': value '" + label +
                                                   "' is out of range (must be " + must + ")");
        };
        if (knob.key == "range") {
          if (label == "full")
            values.push_back(KnobValue::named("full", kFullRange));
          else if (num && v > 0 && v < kFullRange)
            values.push_back(KnobValue::of(v));
          else
            throw bad("'full' or a distance > 0 m");
        } else if (knob.key == "beams") {
          if (label == "all")
            values.push_back(KnobValue::named("all", 1));
          else if (label == "1/2" || label == "1/4" || label == "1/8")
            values.push_back(KnobValue::named(label, std::stod(label.substr(2))));
          else
            throw bad("'all', '1/2', '1/4' or '1/8'");
        } else if (knob.key == "voxel") {
          if (num && v >= 0 && v <= 100)
            values.push_back(KnobValue::of(v));
          else
            throw bad("a leaf size in [0, 100] m");
        } else {
          if (num && v >= 1e-4 && v <= 10)
            values.push_back(KnobValue::of(v));
          else
            throw bad("a precision in [0.0001, 10] m");
        }
      }
      knob.values = values;
      knob.default_index = 0;
    }
  }

  std::vector<KnobSpec> knobs_;
  std::size_t dropped_ = 0;
  std::vector<fs::path> files_;
  std::size_t next_ = 0;
  lidar::BevSpec bev_;
  bool drop_invalid_ = false;
  double interval_seconds_ = 1.0;
  lidar::Cloud current_, first_;
  at::Tensor original_;
};

// The server side: decodes the octree stream a source sent into the BEV grid, exactly as the
// source's own rendering did. An empty sweep is sent as no bytes and decodes to an empty grid.
class LidarReceiver final : public Receiver {
 public:
  at::Tensor saliency(const at::Tensor& grad) override { return cell_saliency(grad); }
  explicit LidarReceiver(const ReceiverSpec& spec) : bev_(bev_of(spec.params)) {}
  at::Tensor decode(const Configuration& config, const IntervalInfo& info,
                    const std::vector<std::uint8_t>& fresh,
                    const std::vector<std::uint8_t>& wire) override {
    (void)config, (void)fresh;
    if (info.samples != 1)
      throw Error(Errc::invalid_argument, "lidar: an interval is one sweep, got " +
                                              std::to_string(info.samples) + " samples");
    std::vector<float> x, y, z;
    const std::string what = "interval " + std::to_string(info.index) + " as received";
    if (!wire.empty()) {
      const std::string bytes(wire.begin(), wire.end());
      check_octree_header(bytes, what);
      decode_octree(bytes, x, y, z, what);
    }
    return bev_grid(bev_, x, y, z);
  }

 private:
  lidar::BevSpec bev_;
};

void register_lidar(Registrar& r) {
  ModalityInfo info{"lidar",
                    "Point clouds (PCD, PLY, KITTI .bin, LAS, VLP-16 rawlog; a directory is a "
                    "sequence); octree-compressed renderings",
                    "pointcloud/bev-3ch",
                    lidar_knobs(),
                    lidar_params(),
                    [](const SourceSpec& spec) { return std::make_unique<LidarSource>(spec); }};
  info.open_receiver = [](const ReceiverSpec& spec) {
    return std::make_unique<LidarReceiver>(spec);
  };
  r.add_modality(std::move(info));
}

}  // namespace

ONEADAPT_PLUGIN("lidar", "0.1.0",
                "LiDAR modality: PCL readers, voxel/range/beam knobs, octree compression, BEV grid",
                register_lidar)
