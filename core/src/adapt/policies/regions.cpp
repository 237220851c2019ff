// Region-based spatial baselines (video with the spatial knob on, a task that reports regions),
// at one value of the base quality knob (CRF, their point):
//   eaar-style (Liu et al., MobiCom 2019): each interval is sent with the tiles around the
//     previous interval's confident regions (dilated by one tile) at the best level, the others
//     at the worst; the map is a message to the camera when it changes. Left out: EAAR's
//     motion-vector tracking of the regions between results on the device.
//   dds-style (Du et al., SIGCOMM 2020): two passes per interval: everything at the worst level
//     first; the server infers it and asks again, at the best level, for the tiles of the
//     regions it is unsure about (candidates below the task's threshold); the second pass's
//     results are final. Both passes' bytes and inferences and the request are charged. Left
//     out: DDS's region-proposal network (the detector's own uncertain candidates stand in for it).
#include <algorithm>
#include <cmath>

#include "adapt/policies/policies.hpp"
#include "adapt/regions.hpp"

namespace oneadapt::adapt {

std::vector<std::uint8_t> tiles_of(const SpatialSpec& s, const std::vector<Region>& regions,
                                   int dilate) {
  std::vector<std::uint8_t> on(static_cast<std::size_t>(s.cols) * static_cast<std::size_t>(s.rows),
                               0);
  for (const auto& r : regions) {
    const int c0 = std::max(0, static_cast<int>(std::floor(r.x0 * s.cols)) - dilate);
    const int c1 = std::min(
        s.cols - 1, static_cast<int>(std::floor(std::min(r.x1, 0.9999f) * s.cols)) + dilate);
    const int r0 = std::max(0, static_cast<int>(std::floor(r.y0 * s.rows)) - dilate);
    const int r1 = std::min(
        s.rows - 1, static_cast<int>(std::floor(std::min(r.y1, 0.9999f) * s.rows)) + dilate);
    for (int y = r0; y <= r1; ++y)
      for (int x = c0; x <= c1; ++x) on[static_cast<std::size_t>(y * s.cols + x)] = 1;
  }
  return on;
}

namespace {

class RegionPolicy : public Policy {
 public:
  RegionPolicy(const PolicyArgs& a, std::string name) : crf_(a.point), name_(std::move(name)) {}

  void begin(const StreamSpec& stream) override {
    if (!stream.spatial)
      throw Error(Errc::invalid_argument,
                  name_ + " needs a source with a spatial knob (video: modality.params.roi_tile)");
    spatial_ = *stream.spatial;
    std::vector<std::size_t> idx(stream.knobs.size(), 0);
    bool found = false;
    for (std::size_t k = 0; k < stream.knobs.size(); ++k)
      if (stream.knobs[k].key == "crf") {
        const std::size_t i = find_on_ladder(stream.knobs[k], KnobValue::of(crf_).label);
        if (i != std::string::npos) idx[k] = i, found = true;
      }
    if (!found)
      throw Error(Errc::invalid_argument,
                  name_ + ": CRF " + KnobValue::of(crf_).label + " is not on the crf ladder");
    config_ = Configuration::at_indices(stream.knobs, idx);
    worst_ = static_cast<std::uint8_t>(spatial_.levels.size() - 1);
    map_ = QualityMap::uniform(spatial_, 0);
  }

  nlohmann::json options() const override { return {{"crf", crf_}, {"tile", spatial_.tile}}; }

 protected:
  QualityMap map_of(const std::vector<std::uint8_t>& on) const {
    QualityMap m = QualityMap::uniform(spatial_, worst_);
    for (std::size_t t = 0; t < on.size(); ++t)
      if (on[t]) m.level[t] = 0;
    return m;
  }

  double crf_;
  std::string name_;
  SpatialSpec spatial_;
  Configuration config_;
  std::uint8_t worst_ = 0;
  QualityMap map_;
};

class Eaar final : public RegionPolicy {
 public:
  explicit Eaar(const PolicyArgs& a) : RegionPolicy(a, "eaar") {}
  Decision decide(IntervalContext&) override {
    Decision d;
    d.config = config_;
    d.map = map_;  // the first interval: nothing known yet, every tile best
    d.need_results = true;
    return d;
  }
  void learn(IntervalContext& ctx, const Served& served) override {
    // The next interval's map: the tiles around this interval's confident regions (last sample).
    std::vector<Region> seen;
    if (!served.results.empty())
      for (const auto& r : ctx.regions(*served.results.back()))
        if (r.confident) seen.push_back(r);
    map_ = map_of(tiles_of(spatial_, seen, 1));
  }
};

class Dds final : public RegionPolicy {
 public:
  explicit Dds(const PolicyArgs& a) : RegionPolicy(a, "dds") {}
  Decision decide(IntervalContext&) override {
    second_ = false;
    Decision d;
    d.config = config_;
    d.map = QualityMap::uniform(spatial_, worst_);
    d.need_results = true;
    return d;
  }
  std::optional<Decision> refine(IntervalContext& ctx, const Served& served) override {
    if (second_) return std::nullopt;
    std::vector<Region> unsure;
    for (const auto& res : served.results)
      for (const auto& r : ctx.regions(*res))
        if (!r.confident) unsure.push_back(r);
    const auto on = tiles_of(spatial_, unsure, 0);
    if (std::none_of(on.begin(), on.end(), [](std::uint8_t v) { return v > 0; }))
      return std::nullopt;
    second_ = true;
    Decision d;
    d.config = config_;
    d.map = map_of(on);  // the uncertain regions at the best level over the low-quality rest
    d.need_results = true;
    return d;
  }

 private:
  bool second_ = false;
};

}  // namespace

std::unique_ptr<Policy> make_eaar(const PolicyArgs& a) { return std::make_unique<Eaar>(a); }
std::unique_ptr<Policy> make_dds(const PolicyArgs& a) { return std::make_unique<Dds>(a); }

}  // namespace oneadapt::adapt
