// Static baselines: one configuration for the whole stream.
//   static:     policy.config.KNOB (default the most expensive value of each knob); with a
//               spatial knob, every tile at the best level (or policy.spatial_map = centre).
//   roi-static: the spatial baseline without feedback: a fixed centre-weighted map (centre
//               tiles best, the outer ring worst) at one value of the base quality knob (its
//               point; the other knobs at their best).
//   roi-hindsight: as roi-static, the map drawn from the whole run's saliency (hindsight): the
//               tiles where the DNN looked most, over the whole stream, best.
#include <cmath>
#include <cstdlib>

#include "adapt/policies/policies.hpp"
#include "adapt/spatial.hpp"

namespace oneadapt::adapt {

std::size_t find_on_ladder(const KnobSpec& knob, const std::string& label) {
  for (std::size_t i = 0; i < knob.values.size(); ++i)
    if (knob.values[i].label == label) return i;
  double v = 0;
  if (!parse_number(label, v)) return std::string::npos;
  for (std::size_t i = 0; i < knob.values.size(); ++i) {
    double w = 0;
    if (!parse_number(knob.values[i].label, w)) continue;
    if (std::abs(v - w) <= 1e-9 * std::max(1.0, std::abs(w))) return i;
  }
  return std::string::npos;
}

namespace {

std::string ladder_text(const KnobSpec& k) {
  std::string out;
  for (const auto& v : k.values) out += (out.empty() ? "" : " ") + v.label;
  return out;
}

class Static final : public Policy {
 public:
  Static(std::map<std::string, std::string> labels, std::string map_mode, std::string who,
         std::vector<double> saliency = {})
      : labels_(std::move(labels)),
        map_mode_(std::move(map_mode)),
        who_(std::move(who)),
        saliency_(std::move(saliency)) {
    if (map_mode_.empty()) map_mode_ = "best";
    if (map_mode_ == "hindsight" && saliency_.empty())
      throw Error(Errc::invalid_argument,
                  "roi-hindsight needs the whole run's saliency: list oneadapt before it in "
                  "compare.policies");
    if (map_mode_ != "centre" && map_mode_ != "best" && map_mode_ != "hindsight")
      throw Error(Errc::invalid_argument,
                  "policy.spatial_map: '" + map_mode_ +
                      "' is not centre or best for a static policy (the solver needs oneadapt)");
  }

  void begin(const StreamSpec& stream) override {
    std::vector<std::size_t> idx;
    for (const auto& k : stream.knobs) {
      std::size_t i = 0;
      if (auto it = labels_.find(k.key); it != labels_.end()) {
        i = find_on_ladder(k, it->second);
        if (i == std::string::npos)
          throw Error(Errc::invalid_argument, who_ + "." + k.key + ": '" + it->second +
                                                  "' is not on the knob's ladder (" +
                                                  ladder_text(k) + ")");
      }
      idx.push_back(i);
    }
    for (const auto& [key, label] : labels_)
      if (std::none_of(stream.knobs.begin(), stream.knobs.end(),
                       [&name = key](const KnobSpec& k) { return k.key == name; }))
        throw Error(Errc::invalid_argument, who_ + ": the modality has no knob '" + key + "'");
    config_ = Configuration::at_indices(stream.knobs, idx);
    if (stream.spatial)
      map_ = map_mode_ == "centre"      ? centre_weighted_map(*stream.spatial)
             : map_mode_ == "hindsight" ? saliency_bands_map(*stream.spatial, saliency_)
                                        : QualityMap::uniform(*stream.spatial, 0);
  }

  Decision decide(IntervalContext&) override {
    Decision d;
    d.config = config_;
    d.map = map_;
    return d;
  }

  nlohmann::json options() const override {
    return {{"config", config_.str()}, {"spatial_map", map_ ? map_mode_ : "none"}};
  }

 private:
  std::map<std::string, std::string> labels_;
  std::string map_mode_, who_;
  std::vector<double> saliency_;
  Configuration config_;
  std::optional<QualityMap> map_;
};

}  // namespace

std::unique_ptr<Policy> make_static(const PolicyArgs& a) {
  return std::make_unique<Static>(a.static_config, a.spatial_map, "policy.config");
}

std::unique_ptr<Policy> make_roi_static(const PolicyArgs& a) {
  return std::make_unique<Static>(
      std::map<std::string, std::string>{{"crf", KnobValue::of(a.point).label}}, "centre",
      "roi-static");
}

std::unique_ptr<Policy> make_roi_hindsight(const PolicyArgs& a) {
  return std::make_unique<Static>(
      std::map<std::string, std::string>{{"crf", KnobValue::of(a.point).label}}, "hindsight",
      "roi-hindsight", a.tile_saliency);
}

}  // namespace oneadapt::adapt
