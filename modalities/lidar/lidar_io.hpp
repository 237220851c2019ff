// Point-cloud readers and the bird's-eye-view (BEV) grid of the lidar modality, shared with
// tools/train-pointseg (header-only; PCL for PCD/PLY, zlib for the Velodyne rawlog).
//
// Formats: PCD (ascii, binary, binary_compressed), PLY (vertices), KITTI-style .bin (float32
// x y z intensity), LAS 1.2 (point formats 0-3), and the Velodyne VLP-16 MRPT rawlog
// (gzip; raw UDP packets, decoded as shared/docs/assets.md describes). Every failure throws
// oneadapt::Error naming the file and the problem.
#pragma once

#include <pcl/PCLPointCloud2.h>
#include <pcl/console/print.h>
#include <pcl/io/lzf.h>
#include <pcl/io/pcd_io.h>
#include <pcl/io/ply_io.h>
#include <zlib.h>

#include <oneadapt/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace oneadapt::lidar {

namespace fs = std::filesystem;

/// One sweep: coordinates in metres in the sensor frame (z up), optional intensity, and the
/// laser ring of each point for ring-structured sensors (-1 when unknown).
struct Cloud {
  std::vector<float> x, y, z, intensity;
  std::vector<int16_t> ring;
  bool has_ring = false;
  std::size_t dropped = 0;  ///< invalid points dropped when reading (invalid_points = "drop")
  std::size_t size() const { return x.size(); }
  void push(float px, float py, float pz, float i = 0.f, int16_t r = -1) {
    x.push_back(px), y.push_back(py), z.push_back(pz), intensity.push_back(i), ring.push_back(r);
  }
};

inline std::string lower_ext(const fs::path& p) {
  std::string e = p.extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

/// The extensions a directory sequence picks up.
inline bool is_cloud_file(const fs::path& p) {
  const std::string e = lower_ext(p);
  return e == ".pcd" || e == ".ply" || e == ".bin" || e == ".las" || e == ".rawlog";
}

inline std::vector<char> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(Errc::io, p.string() + ": cannot open");
  return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

template <typename T>
T read_le(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// --- PCD and PLY through PCL -----------------------------------------------------------------

/// The most points one sweep may declare (a header's WIDTH x HEIGHT): 50 million, far above a
/// real sensor's, far below what would exhaust memory.
constexpr std::uint64_t kMaxPoints = 50'000'000;

/// The most bytes one sweep's point records may take (PCL holds them all at once): 4 GiB.
constexpr std::uint64_t kMaxCloudBytes = std::uint64_t{4} << 30;

/// Absurd coordinates: beyond 100,000 km (a corrupt value, not a sensor's; UTM and other
/// georeferenced coordinates stay well inside).
constexpr float kAbsurdMetres = 1e8f;

inline Cloud from_pcl(const pcl::PCLPointCloud2& blob, const fs::path& path) {
  int ix = -1, iy = -1, iz = -1, ii = -1, ir = -1;
  for (std::size_t f = 0; f < blob.fields.size(); ++f) {
    const auto& fd = blob.fields[f];
    const bool f32 = fd.datatype == pcl::PCLPointField::FLOAT32;
    if (fd.name == "x" && f32) ix = static_cast<int>(f);
    if (fd.name == "y" && f32) iy = static_cast<int>(f);
    if (fd.name == "z" && f32) iz = static_cast<int>(f);
    if ((fd.name == "intensity" || fd.name == "reflectivity") && f32) ii = static_cast<int>(f);
    if (fd.name == "ring" &&
        (fd.datatype == pcl::PCLPointField::UINT16 || fd.datatype == pcl::PCLPointField::UINT8))
      ir = static_cast<int>(f);
  }
  if (ix < 0 || iy < 0 || iz < 0)
    throw Error(Errc::corrupt_data, path.string() + ": has no float32 x, y, z fields");
  Cloud c;
  const std::uint64_t n = static_cast<std::uint64_t>(blob.width) * blob.height;
  if (n > kMaxPoints)
    throw Error(Errc::corrupt_data, path.string() + ": declares " + std::to_string(n) +
                                        " points (at most " + std::to_string(kMaxPoints) + ")");
  if (blob.data.size() < n * blob.point_step)
    throw Error(Errc::corrupt_data, path.string() + ": truncated point data");
  for (int f : {ix, iy, iz, ii, ir})
    if (f >= 0 &&
        static_cast<std::uint64_t>(blob.fields[static_cast<std::size_t>(f)].offset) +
                (f != ir ? 4u
                 : blob.fields[static_cast<std::size_t>(f)].datatype == pcl::PCLPointField::UINT16
                     ? 2u
                     : 1u) >
            blob.point_step)
      throw Error(Errc::corrupt_data, path.string() + ": field '" +
                                          blob.fields[static_cast<std::size_t>(f)].name +
                                          "' lies outside its point record");
  auto off = [&](int f) { return blob.fields[static_cast<std::size_t>(f)].offset; };
  for (std::size_t k = 0; k < n; ++k) {
    const char* p = reinterpret_cast<const char*>(blob.data.data()) + k * blob.point_step;
    int16_t ring = -1;
    if (ir >= 0)
      ring = blob.fields[static_cast<std::size_t>(ir)].datatype == pcl::PCLPointField::UINT16
                 ? static_cast<int16_t>(read_le<uint16_t>(p + off(ir)))
                 : static_cast<int16_t>(read_le<uint8_t>(p + off(ir)));
    c.push(read_le<float>(p + off(ix)), read_le<float>(p + off(iy)), read_le<float>(p + off(iz)),
           ii >= 0 ? read_le<float>(p + off(ii)) : 0.f, ring);
  }
  c.has_ring = ir >= 0;
  return c;
}

/// A PCD file's layout, from its header: the fields (name, SIZE, TYPE, COUNT), the point record,
/// the points, the DATA kind and where the body starts.
struct PcdLayout {
  struct Field {
    std::string name;
    std::uint32_t size = 0, count = 1;
    char type = 'F';
  };
  std::vector<Field> fields;
  std::uint64_t point_size = 0, points = 0, width = 0, height = 0, body = 0, file = 0;
  std::string data;
};

/// Checks a PCD header against the bytes present (PCL's reader crashes on some non-PCD input and
/// on bodies that look like header lines, trusts WIDTH x HEIGHT, and loops on truncated
/// compressed data; read_pcd reads the body itself): the fields, their SIZE/TYPE/COUNT agree,
/// WIDTH x HEIGHT = POINTS within kMaxPoints, and a binary body holds POINTS records; a
/// compressed one declares sizes that fit the file and the points.
inline PcdLayout check_pcd_header(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  std::map<std::string, std::vector<std::string>> h;
  auto fail = [&](const std::string& what) -> void {
    throw Error(Errc::corrupt_data, path.string() + ": PCD header: " + what);
  };
  for (int n = 1; n <= 64 && std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string key;
    words >> key;
    static const std::set<std::string> keys = {"VERSION", "FIELDS", "SIZE",      "TYPE",   "COUNT",
                                               "WIDTH",   "HEIGHT", "VIEWPOINT", "POINTS", "DATA"};
    if (!keys.count(key))
      throw Error(Errc::corrupt_data, path.string() + ": not a PCD file (line " +
                                          std::to_string(n) + " is not a PCD header field)");
    for (std::string w; words >> w;) h[key].push_back(w);
    if (key == "DATA") break;
  }
  for (const char* need : {"FIELDS", "SIZE", "TYPE", "WIDTH", "HEIGHT", "POINTS", "DATA"})
    if (!h.count(need))
      throw Error(Errc::corrupt_data, path.string() + ": PCD header has no " + need + " line");
  const std::size_t fields = h["FIELDS"].size();
  if (fields == 0 || fields > 256) fail("FIELDS lists " + std::to_string(fields) + " fields");
  if (h["SIZE"].size() != fields || h["TYPE"].size() != fields ||
      (h.count("COUNT") && h["COUNT"].size() != fields))
    fail("FIELDS, SIZE, TYPE and COUNT do not list as many values");
  auto number = [&](const std::string& text, const char* what) {
    if (text.empty() || text.size() > 12 ||
        text.find_first_not_of("0123456789") != std::string::npos)
      fail(std::string(what) + " '" + text + "' is not a count");
    return std::stoull(text);
  };
  std::uint64_t point_size = 0, values = 0;
  PcdLayout layout;
  for (std::size_t f = 0; f < fields; ++f) {
    const auto size = number(h["SIZE"][f], "SIZE");
    const auto count = h.count("COUNT") ? number(h["COUNT"][f], "COUNT") : 1;
    const std::string& type = h["TYPE"][f];
    if ((size != 1 && size != 2 && size != 4 && size != 8) ||
        (type != "F" && type != "I" && type != "U") || (type == "F" && size < 4))
      fail("field '" + h["FIELDS"][f] + "' has SIZE " + h["SIZE"][f] + " and TYPE " + type);
    if (count < 1 || count > 4096)
      fail("field '" + h["FIELDS"][f] + "' has COUNT " + std::to_string(count));
    point_size += size * count;
    values += count;
    layout.fields.push_back({h["FIELDS"][f], static_cast<std::uint32_t>(size),
                             static_cast<std::uint32_t>(count), type[0]});
  }
  if (point_size > 65536)
    fail("a point takes " + std::to_string(point_size) + " bytes (at most 65536)");
  if (h["WIDTH"].size() != 1 || h["HEIGHT"].size() != 1 || h["POINTS"].size() != 1 ||
      h["DATA"].size() != 1)
    fail("WIDTH, HEIGHT, POINTS and DATA take one value each");
  const auto width = number(h["WIDTH"][0], "WIDTH"), height = number(h["HEIGHT"][0], "HEIGHT"),
             points = number(h["POINTS"][0], "POINTS");
  if (height != 0 && width > kMaxPoints / height)
    fail("WIDTH x HEIGHT is more than " + std::to_string(kMaxPoints) + " points");
  if (width * height != points)
    fail("WIDTH x HEIGHT = " + std::to_string(width * height) +
         " but POINTS = " + std::to_string(points));
  if (points * point_size > kMaxCloudBytes)
    fail(std::to_string(points) + " points of " + std::to_string(point_size) +
         " bytes are more than " + std::to_string(kMaxCloudBytes >> 30) + " GiB");
  const std::string& data = h["DATA"][0];
  std::error_code ec;
  const std::uint64_t file = fs::file_size(path, ec);
  const std::streamoff pos = in.tellg();
  const auto body = static_cast<std::uint64_t>(pos < 0 ? static_cast<std::streamoff>(file) : pos);
  const std::uint64_t left = file > body ? file - body : 0;
  if (data == "binary") {
    if (points * point_size > left)
      throw Error(Errc::corrupt_data,
                  path.string() + ": PCD header or data is malformed or truncated (" +
                      std::to_string(points) + " points of " + std::to_string(point_size) +
                      " bytes need " + std::to_string(points * point_size) + " bytes, " +
                      std::to_string(left) + " follow the header)");
  } else if (data == "binary_compressed") {
    char sizes[8];
    if (left < 8 || !in.read(sizes, 8))
      throw Error(
          Errc::corrupt_data,
          path.string() + ": PCD header or data is malformed or truncated (no compressed sizes)");
    const auto compressed = read_le<uint32_t>(sizes), uncompressed = read_le<uint32_t>(sizes + 4);
    // LZF expands at most about 90-fold: a few bytes cannot claim gigabytes of points
    if (compressed > left - 8 || uncompressed != points * point_size ||
        uncompressed > 200ull * compressed + 1024)
      throw Error(Errc::corrupt_data,
                  path.string() + ": PCD header or data is malformed or truncated (compressed " +
                      std::to_string(compressed) + " bytes of " + std::to_string(left - 8) + ", " +
                      std::to_string(uncompressed) + " uncompressed for " +
                      std::to_string(points * point_size) + " expected)");
  } else if (data == "ascii") {
    // every value takes at least a digit and a separator: PCL sizes its buffer from the header
    if (points * values * 2 > left)
      throw Error(Errc::corrupt_data, path.string() +
                                          ": PCD header or data is malformed or truncated (" +
                                          std::to_string(points) + " points of " +
                                          std::to_string(values) + " values cannot fit in the " +
                                          std::to_string(left) + " bytes that follow the header)");
  } else {
    fail("DATA '" + data + "' is not ascii, binary or binary_compressed");
  }
  layout.point_size = point_size, layout.points = points, layout.width = width,
  layout.height = height;
  layout.body = body, layout.file = file, layout.data = data;
  return layout;
}

/// Reads a PCD file (ascii, binary or binary_compressed) after check_pcd_header, without PCL's
/// reader: the body is read within the sizes the header declared and the file holds.
inline Cloud read_pcd(const fs::path& path) {
  const PcdLayout L = check_pcd_header(path);
  auto bad = [&](const std::string& what) {
    return Error(Errc::corrupt_data,
                 path.string() + ": PCD header or data is malformed or truncated (" + what + ")");
  };
  pcl::PCLPointCloud2 blob;
  blob.width = static_cast<std::uint32_t>(L.width),
  blob.height = static_cast<std::uint32_t>(L.height);
  blob.point_step = static_cast<std::uint32_t>(L.point_size);
  blob.row_step = static_cast<std::uint32_t>(L.point_size * L.width);
  std::uint32_t offset = 0;
  for (const auto& f : L.fields) {
    pcl::PCLPointField pf;
    pf.name = f.name, pf.offset = offset, pf.count = f.count;
    pf.datatype = f.type == 'F'
                      ? (f.size == 4 ? pcl::PCLPointField::FLOAT32 : pcl::PCLPointField::FLOAT64)
                  : f.type == 'I' ? (f.size == 1   ? pcl::PCLPointField::INT8
                                     : f.size == 2 ? pcl::PCLPointField::INT16
                                     : f.size == 4 ? pcl::PCLPointField::INT32
                                                   : 0)
                                  : (f.size == 1   ? pcl::PCLPointField::UINT8
                                     : f.size == 2 ? pcl::PCLPointField::UINT16
                                     : f.size == 4 ? pcl::PCLPointField::UINT32
                                                   : 0);
    blob.fields.push_back(pf);
    offset += f.size * f.count;
  }
  const std::uint64_t bytes = L.points * L.point_size;
  blob.data.resize(bytes);
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(L.body));
  if (L.data == "binary") {
    if (!in.read(reinterpret_cast<char*>(blob.data.data()), static_cast<std::streamsize>(bytes)))
      throw bad("the points end early");
  } else if (L.data == "binary_compressed") {
    char sizes[8];
    in.read(sizes, 8);
    const auto compressed = read_le<uint32_t>(sizes);
    std::vector<char> packed(compressed);
    if (!in.read(packed.data(), static_cast<std::streamsize>(compressed)))
      throw bad("the compressed points end early");
    std::vector<char> columns(bytes);
    if (bytes > 0 && pcl::lzfDecompress(packed.data(), compressed, columns.data(),
                                        static_cast<unsigned int>(bytes)) != bytes)
      throw bad("the LZF data does not decompress to " + std::to_string(bytes) + " bytes");
    // Stored field by field (all points' first field, then the second, ...): back to records.
    std::uint64_t column = 0;
    for (std::size_t f = 0; f < L.fields.size(); ++f) {
      const std::uint64_t width = std::uint64_t{L.fields[f].size} * L.fields[f].count;
      for (std::uint64_t k = 0; k < L.points; ++k)
        std::memcpy(blob.data.data() + k * L.point_size + blob.fields[f].offset,
                    columns.data() + column + k * width, width);
      column += width * L.points;
    }
  } else {  // ascii: a point a line, its values separated by spaces
    std::string line;
    std::uint64_t k = 0;
    while (k < L.points && std::getline(in, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const char* c = line.c_str();
      char* end = nullptr;
      std::uint8_t* rec = blob.data.data() + k * L.point_size;
      for (std::size_t f = 0; f < L.fields.size(); ++f) {
        const auto& fd = L.fields[f];
        for (std::uint32_t v = 0; v < fd.count; ++v) {
          std::uint8_t* out = rec + blob.fields[f].offset + std::uint64_t{v} * fd.size;
          if (fd.type == 'F') {
            const double x = std::strtod(c, &end);
            if (end == c)
              throw bad("line " + std::to_string(k + 1) + " of the points has too few values");
            if (fd.size == 4) {
              const float y = static_cast<float>(x);
              std::memcpy(out, &y, 4);
            } else
              std::memcpy(out, &x, 8);
          } else {
            const long long x = std::strtoll(c, &end, 10);
            if (end == c)
              throw bad("line " + std::to_string(k + 1) + " of the points has too few values");
            std::memcpy(out, &x, fd.size);  // little-endian: the low bytes
          }
          c = end;
        }
      }
      ++k;
    }
    if (k < L.points)
      throw bad(std::to_string(k) + " of " + std::to_string(L.points) + " points present");
  }
  return from_pcl(blob, path);
}

/// Checks a PLY header before PCL parses it: the magic, a format, an end_header within 256
/// lines, and element counts within kMaxPoints (and, for binary files, bytes to hold the
/// vertices' fixed-size properties).
inline void check_ply_header(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  auto fail = [&](const std::string& what) -> void {
    throw Error(Errc::corrupt_data, path.string() + ": PLY header: " + what);
  };
  if (!std::getline(in, line) || line.rfind("ply", 0) != 0)
    throw Error(Errc::corrupt_data, path.string() + ": not a PLY file (no 'ply' magic)");
  std::string format;
  std::uint64_t vertices = 0, vertex_bytes = 0, vertex_values = 0;
  bool in_vertex = false, ended = false;
  for (int n = 2; n <= 256 && std::getline(in, line); ++n) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "format")
      words >> format;
    else if (key == "element") {
      std::string name, count;
      words >> name >> count;
      if (count.empty() || count.size() > 12 ||
          count.find_first_not_of("0123456789") != std::string::npos)
        fail("element '" + name + "' count '" + count + "'");
      const auto k = std::stoull(count);
      if (k > kMaxPoints)
        fail("element '" + name + "' declares " + count + " items (at most " +
             std::to_string(kMaxPoints) + ")");
      in_vertex = name == "vertex";
      if (in_vertex) vertices = k;
    } else if (key == "property" && in_vertex) {
      std::string type;
      words >> type;
      static const std::map<std::string, int> sizes{
          {"char", 1},  {"uchar", 1},   {"int8", 1},   {"uint8", 1},  {"short", 2}, {"ushort", 2},
          {"int16", 2}, {"uint16", 2},  {"int", 4},    {"uint", 4},   {"int32", 4}, {"uint32", 4},
          {"float", 4}, {"float32", 4}, {"double", 8}, {"float64", 8}};
      auto it = sizes.find(type);
      if (it != sizes.end()) vertex_bytes += static_cast<std::uint64_t>(it->second);
      ++vertex_values;
    } else if (key == "end_header") {
      ended = true;
      break;
    }
  }
  if (!ended) fail("no end_header within 256 lines");
  if (format != "ascii" && format != "binary_little_endian" && format != "binary_big_endian")
    fail("format '" + format + "'");
  std::error_code ec;
  const std::uint64_t file = fs::file_size(path, ec),
                      body = static_cast<std::uint64_t>(std::max<std::streamoff>(0, in.tellg()));
  const std::uint64_t need = format == "ascii"
                                 ? vertices * vertex_values * 2
                                 : vertices * vertex_bytes;  // ascii: a digit and a separator
  if (need > (file > body ? file - body : 0))
    throw Error(Errc::corrupt_data,
                path.string() + ": PLY header or data is malformed or truncated (" +
                    std::to_string(vertices) + " vertices need more bytes than follow the header)");
}

inline Cloud read_ply(const fs::path& path) {
  check_ply_header(path);
  pcl::console::setVerbosityLevel(pcl::console::L_ALWAYS);
  pcl::PCLPointCloud2 blob;
  pcl::PLYReader reader;
  if (reader.read(path.string(), blob) < 0)
    throw Error(Errc::corrupt_data,
                path.string() + ": PLY header or data is malformed or truncated");
  return from_pcl(blob, path);
}

// --- KITTI .bin ------------------------------------------------------------------------------

inline Cloud read_kitti_bin(const fs::path& path) {
  std::error_code ec;
  if (fs::file_size(path, ec) > kMaxPoints * 16)
    throw Error(Errc::corrupt_data,
                path.string() + ": more than " + std::to_string(kMaxPoints) + " KITTI points");
  const auto b = read_all(path);
  if (b.size() % 16 != 0)
    throw Error(
        Errc::corrupt_data,
        path.string() + ": " + std::to_string(b.size()) +
            " bytes is not a whole number of KITTI points (16 bytes: float32 x y z intensity)");
  Cloud c;
  for (std::size_t k = 0; k + 16 <= b.size(); k += 16)
    c.push(read_le<float>(&b[k]), read_le<float>(&b[k + 4]), read_le<float>(&b[k + 8]),
           read_le<float>(&b[k + 12]));
  return c;
}

// --- LAS 1.2 -----------------------------------------------------------------------------------

inline Cloud read_las(const fs::path& path) {
  std::error_code ec;
  if (fs::file_size(path, ec) > kMaxPoints * 64)
    throw Error(Errc::corrupt_data, path.string() + ": larger than a single sweep may be");
  const auto b = read_all(path);
  if (b.size() < 227 || std::memcmp(b.data(), "LASF", 4) != 0)
    throw Error(Errc::corrupt_data, path.string() + ": not a LAS file (no LASF header)");
  const int major = static_cast<unsigned char>(b[24]), minor = static_cast<unsigned char>(b[25]);
  const auto offset = read_le<uint32_t>(&b[96]);
  const int format = static_cast<unsigned char>(b[104]);
  const auto record = read_le<uint16_t>(&b[105]);
  const auto count = read_le<uint32_t>(&b[107]);
  const double sx = read_le<double>(&b[131]), sy = read_le<double>(&b[139]),
               sz = read_le<double>(&b[147]);
  const double ox = read_le<double>(&b[155]), oy = read_le<double>(&b[163]),
               oz = read_le<double>(&b[171]);
  if (major != 1 || minor > 4)
    throw Error(Errc::unsupported, path.string() + ": LAS version " + std::to_string(major) + "." +
                                       std::to_string(minor) + " (1.0-1.4 read)");
  if (format > 3)
    throw Error(Errc::unsupported, path.string() + ": LAS point format " + std::to_string(format) +
                                       " (formats 0-3 read)");
  if (record < 20)
    throw Error(Errc::corrupt_data,
                path.string() + ": LAS point record length " + std::to_string(record) + " < 20");
  if (count > kMaxPoints)
    throw Error(Errc::corrupt_data, path.string() + ": declares " + std::to_string(count) +
                                        " points (at most " + std::to_string(kMaxPoints) + ")");
  if (offset < 227)
    throw Error(Errc::corrupt_data, path.string() + ": LAS point data offset " +
                                        std::to_string(offset) + " lies inside the header");
  if (static_cast<std::uint64_t>(offset) + static_cast<std::uint64_t>(count) * record > b.size())
    throw Error(Errc::corrupt_data,
                path.string() + ": truncated: the header announces " + std::to_string(count) +
                    " points, the file holds " +
                    std::to_string((b.size() > offset ? b.size() - offset : 0) / record));
  Cloud c;
  for (uint32_t k = 0; k < count; ++k) {
    const char* p = b.data() + offset + static_cast<std::size_t>(k) * record;
    c.push(static_cast<float>(read_le<int32_t>(p) * sx + ox),
           static_cast<float>(read_le<int32_t>(p + 4) * sy + oy),
           static_cast<float>(read_le<int32_t>(p + 8) * sz + oz),
           static_cast<float>(read_le<uint16_t>(p + 12)));
  }
  return c;
}

// --- Velodyne VLP-16 in an MRPT rawlog ---------------------------------------------------------

/// The most bytes a rawlog may inflate to (a VLP-16 sweep is 2 MB): a small gzip bomb stops here.
constexpr std::size_t kMaxInflated = 256u << 20;

/// Inflates a gzip file, at most kMaxInflated bytes; `check_head` sees the first bytes before
/// more is inflated (a file that is not what it should be stops early).
template <class Check>
inline std::vector<char> gunzip(const fs::path& path, Check check_head) {
  gzFile f = gzopen(path.string().c_str(), "rb");
  if (!f) throw Error(Errc::io, path.string() + ": cannot open");
  std::vector<char> out;
  char buf[65536];
  int n;
  bool checked = false;
  while ((n = gzread(f, buf, sizeof buf)) > 0) {
    out.insert(out.end(), buf, buf + n);
    if (!checked && out.size() >= 256) {
      checked = true;
      try {
        check_head(out);
      } catch (...) {
        gzclose(f);
        throw;
      }
    }
    if (out.size() > kMaxInflated) {
      gzclose(f);
      throw Error(Errc::corrupt_data, path.string() + ": inflates to more than " +
                                          std::to_string(kMaxInflated >> 20) +
                                          " MB (not a single sweep)");
    }
  }
  int err = 0;
  const char* msg = gzerror(f, &err);
  const bool bad = n < 0 || (err != Z_OK && err != Z_STREAM_END);
  const std::string why = bad ? msg : "";
  gzclose(f);
  if (bad)
    throw Error(Errc::corrupt_data,
                path.string() + ": gzip data is corrupt or truncated (" + why + ")");
  return out;
}

/// The VLP-16 packets of an MRPT CObservationVelodyneScan rawlog: 1206-byte UDP payloads from
/// byte 138, contiguous; 12 blocks of (0xFFEE, azimuth, 2 x 16 returns).
inline Cloud read_vlp16_rawlog(const fs::path& path) {
  static const char kTag[] = "CObservationVelodyneScan";
  auto not_velodyne = [&] {
    return Error(
        Errc::unsupported,
        path.string() + ": not an MRPT rawlog of a Velodyne scan (CObservationVelodyneScan)");
  };
  const auto b = gunzip(path, [&](const std::vector<char>& head) {
    if (std::search(head.begin(), head.begin() + 64, kTag, kTag + sizeof kTag - 1) ==
        head.begin() + 64)
      throw not_velodyne();
  });
  if (b.size() < 138 + 1206 ||
      std::search(b.begin(), b.begin() + 64, kTag, kTag + sizeof kTag - 1) == b.begin() + 64)
    throw not_velodyne();
  static const int kElevation[16] = {-15, 1, -13, 3, -11, 5, -9, 7, -7, 9, -5, 11, -3, 13, -1, 15};
  Cloud c;
  c.has_ring = true;
  std::size_t packets = 0;
  for (std::size_t p = 138; p + 1206 <= b.size(); p += 1206) {
    const char* pk = b.data() + p;
    if (static_cast<unsigned char>(pk[0]) != 0xFF || static_cast<unsigned char>(pk[1]) != 0xEE)
      break;  // end of the packets
    ++packets;
    for (int blk = 0; blk < 12; ++blk) {
      const char* bl = pk + blk * 100;
      if (static_cast<unsigned char>(bl[0]) != 0xFF || static_cast<unsigned char>(bl[1]) != 0xEE)
        throw Error(Errc::corrupt_data, path.string() + ": packet " + std::to_string(packets) +
                                            " block " + std::to_string(blk) +
                                            " has no 0xFFEE flag");
      const double az = read_le<uint16_t>(bl + 2) / 100.0;
      double next = az;
      if (blk < 11)
        next = read_le<uint16_t>(pk + (blk + 1) * 100 + 2) / 100.0;
      else if (blk > 0)
        next = az + (az - read_le<uint16_t>(pk + (blk - 1) * 100 + 2) / 100.0);
      double gap = next - az;
      if (gap < 0) gap += 360.0;
      for (int r = 0; r < 32; ++r) {
        const char* ret = bl + 4 + r * 3;
        const double d = read_le<uint16_t>(ret) * 0.002;
        if (d <= 0) continue;
        const int laser = r % 16;
        const double a = (az + (r >= 16 ? gap / 2 : 0.0)) * M_PI / 180.0,
                     w = kElevation[laser] * M_PI / 180.0;
        c.push(static_cast<float>(d * std::cos(w) * std::sin(a)),
               static_cast<float>(d * std::cos(w) * std::cos(a)),
               static_cast<float>(d * std::sin(w)),
               static_cast<float>(static_cast<unsigned char>(ret[2])),
               static_cast<int16_t>((kElevation[laser] + 15) / 2));
      }
    }
  }
  if (packets == 0)
    throw Error(Errc::corrupt_data, path.string() + ": no VLP-16 packet at byte 138");
  return c;
}

/// Reads one sweep by extension; NaN or infinite points are an error unless `drop_invalid`.
inline Cloud read_cloud(const fs::path& path, bool drop_invalid = false) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(Errc::not_found, path.string() + ": no such file");
  if (fs::file_size(path, ec) == 0)
    throw Error(Errc::corrupt_data, path.string() + ": is empty (0 bytes)");
  const std::string e = lower_ext(path);
  Cloud c = e == ".pcd"   ? read_pcd(path)
            : e == ".ply" ? read_ply(path)
            : e == ".bin" ? read_kitti_bin(path)
            : e == ".las" ? read_las(path)
            : e == ".rawlog"
                ? read_vlp16_rawlog(path)
                : throw Error(Errc::unsupported, path.string() + ": unknown point-cloud format '" +
                                                     e + "' (pcd, ply, bin, las, rawlog)");
  // NaN, infinite or absurd (beyond 100,000 km) coordinates: refused, or dropped and counted.
  auto valid = [&](std::size_t k) {
    return std::isfinite(c.x[k]) && std::isfinite(c.y[k]) && std::isfinite(c.z[k]) &&
           std::abs(c.x[k]) < kAbsurdMetres && std::abs(c.y[k]) < kAbsurdMetres &&
           std::abs(c.z[k]) < kAbsurdMetres;
  };
  std::size_t bad = 0;
  for (std::size_t k = 0; k < c.size(); ++k) bad += !valid(k);
  if (bad > 0) {
    if (!drop_invalid)
      throw Error(Errc::corrupt_data,
                  path.string() + ": " + std::to_string(bad) + " of " + std::to_string(c.size()) +
                      " points have NaN, infinite or absurd (beyond 100,000 km) coordinates (set "
                      "modality.params.invalid_points = \"drop\" to skip them)");
    Cloud kept;
    kept.has_ring = c.has_ring;
    for (std::size_t k = 0; k < c.size(); ++k)
      if (valid(k)) kept.push(c.x[k], c.y[k], c.z[k], c.intensity[k], c.ring[k]);
    kept.dropped = bad;
    c = std::move(kept);
  }
  if (c.size() == 0) throw Error(Errc::corrupt_data, path.string() + ": the cloud has no points");
  return c;
}

// --- the DNN input: a bird's-eye-view grid ---------------------------------------------------

/// BEV geometry: a square grid of `cells` x `cells` cells of `cell` metres centred on the
/// sensor; heights are divided by `height_scale` metres.
struct BevSpec {
  double cell = 0.5;
  int64_t cells = 160;
  double height_scale = 2.0;
};

/// Fills `out` ([3, cells, cells] float) with the cloud's BEV: channel 0 = log(1 + points) / 4,
/// channel 1 = the highest z, channel 2 = the mean z (both / height_scale; 0 in empty cells).
inline void bev(const std::vector<float>& x, const std::vector<float>& y,
                const std::vector<float>& z, const BevSpec& s, float* out) {
  const int64_t n = s.cells, plane = n * n;
  std::vector<float> count(static_cast<std::size_t>(plane), 0.f),
      top(static_cast<std::size_t>(plane), -std::numeric_limits<float>::infinity()),
      sum(static_cast<std::size_t>(plane), 0.f);
  const double half = static_cast<double>(n) * s.cell / 2.0;
  for (std::size_t k = 0; k < x.size(); ++k) {
    const auto col = static_cast<int64_t>(std::floor((x[k] + half) / s.cell)),
               row = static_cast<int64_t>(std::floor((half - y[k]) / s.cell));
    if (col < 0 || col >= n || row < 0 || row >= n) continue;
    const auto i = static_cast<std::size_t>(row * n + col);
    count[i] += 1, sum[i] += z[k], top[i] = std::max(top[i], z[k]);
  }
  const auto hs = static_cast<float>(s.height_scale);
  for (int64_t i = 0; i < plane; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const bool occupied = count[u] > 0;
    out[i] = std::log1p(count[u]) / 4.f;
    out[plane + i] = occupied ? top[u] / hs : 0.f;
    out[2 * plane + i] = occupied ? sum[u] / count[u] / hs : 0.f;
  }
}

}  // namespace oneadapt::lidar
