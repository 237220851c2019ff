// oneadapt SDK: configuration knobs and configurations.
//
// A knob is declared once, with a key, a headline, a description, a unit and its ladder of
// values ordered from most expensive (best quality) to cheapest. The core relaxes each ladder
// into a continuous state theta in [0, 1] (theta = 1: the most expensive value) and moves it by
// gradient; a Configuration is one value per knob.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "oneadapt/error.hpp"

namespace oneadapt {

/// One value of a knob's ladder: a number (what the plugin computes with) and the label that
/// users write in configs and see in records ("0.8", "30", "flac").
struct KnobValue {
  double number = 0.0;
  std::string label;

  /// A numeric value; the label is the shortest exact decimal form ("0.8", "30").
  static KnobValue of(double number) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", number);
    return {number, buf};
  }
  /// A named value; `number` is what the plugin computes with (e.g. a quality level).
  static KnobValue named(std::string label, double number) { return {number, std::move(label)}; }
};

/// Declaration of one knob (the Holoscan `spec.param` idea: one place for docs, config
/// binding and `oneadapt plugins inspect`).
struct KnobSpec {
  std::string key;                ///< config key: lower case letters, digits, '_' or '-'
  std::string headline;           ///< a few words, e.g. "Quantisation parameter"
  std::string description;        ///< one or two sentences: what it trades and how
  std::string unit;               ///< e.g. "QP", "x native", "fps", "m"; may be empty
  std::vector<KnobValue> values;  ///< the ladder, most expensive first
  std::size_t default_index = 0;  ///< where adaptation starts unless configured

  /// A knob whose ladder is numbers, most expensive first.
  static KnobSpec numeric(std::string key, std::string headline, std::string unit,
                          const std::vector<double>& ladder, std::string description,
                          std::size_t default_index = 0) {
    KnobSpec spec{std::move(key), std::move(headline), std::move(description), std::move(unit), {},
                  default_index};
    for (double v : ladder) spec.values.push_back(KnobValue::of(v));
    return spec;
  }
};

inline bool is_valid_key(std::string_view key) {
  if (key.empty() || key.size() > 64) return false;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

/// Throws Error(invalid_argument) naming the knob when its declaration is unusable:
/// a bad key, an empty ladder, duplicate or empty labels, a non-finite number or a default
/// index outside the ladder.
inline void validate(const KnobSpec& knob) {
  const std::string who = "knob '" + knob.key + "'";
  if (!is_valid_key(knob.key))
    throw Error(Errc::invalid_argument,
                who + ": key must be 1-64 characters of a-z, 0-9, '_' or '-'");
  if (knob.values.empty()) throw Error(Errc::invalid_argument, who + ": ladder is empty");
  std::set<std::string> seen;
  for (const auto& v : knob.values) {
    if (v.label.empty()) throw Error(Errc::invalid_argument, who + ": a value has an empty label");
    if (!std::isfinite(v.number))
      throw Error(Errc::invalid_argument, who + ": value '" + v.label + "' is not finite");
    if (!seen.insert(v.label).second)
      throw Error(Errc::invalid_argument, who + ": value '" + v.label + "' appears twice");
  }
  if (knob.default_index >= knob.values.size())
    throw Error(Errc::invalid_argument,
                who + ": default index " + std::to_string(knob.default_index) +
                    " is outside its ladder of " + std::to_string(knob.values.size()) + " values");
}

/// One knob's setting in a configuration: the ladder index and its value.
struct KnobSetting {
  std::string key;
  std::size_t index = 0;
  KnobValue value;
};

/// One value per knob, in the order the knobs were declared.
class Configuration {
 public:
  Configuration() = default;
  explicit Configuration(std::vector<KnobSetting> settings) : settings_(std::move(settings)) {}

  /// The configuration that takes ladder index `indices[i]` of `knobs[i]`.
  static Configuration at_indices(const std::vector<KnobSpec>& knobs,
                                  const std::vector<std::size_t>& indices) {
    if (indices.size() != knobs.size())
      throw Error(Errc::invalid_argument, "configuration has " + std::to_string(indices.size()) +
                                              " values for " + std::to_string(knobs.size()) +
                                              " knobs");
    std::vector<KnobSetting> settings;
    for (std::size_t i = 0; i < knobs.size(); ++i) {
      if (indices[i] >= knobs[i].values.size())
        throw Error(Errc::invalid_argument, "knob '" + knobs[i].key + "': index " +
                                                std::to_string(indices[i]) +
                                                " is outside its ladder");
      settings.push_back({knobs[i].key, indices[i], knobs[i].values[indices[i]]});
    }
    return Configuration(std::move(settings));
  }

  /// The most expensive value of every knob (ladder index 0).
  static Configuration most_expensive(const std::vector<KnobSpec>& knobs) {
    return at_indices(knobs, std::vector<std::size_t>(knobs.size(), 0));
  }

  const std::vector<KnobSetting>& settings() const { return settings_; }
  bool has(std::string_view key) const { return find(key) != nullptr; }

  /// The setting of `key`; throws Error(not_found) naming the key when there is none.
  const KnobSetting& at(std::string_view key) const {
    if (const KnobSetting* s = find(key)) return *s;
    throw Error(Errc::not_found, "configuration has no knob '" + std::string(key) + "'");
  }
  double number(std::string_view key) const { return at(key).value.number; }
  const std::string& label(std::string_view key) const { return at(key).value.label; }
  std::size_t index(std::string_view key) const { return at(key).index; }

  /// "key=label key=label", in declaration order.
  std::string str() const {
    std::string out;
    for (const auto& s : settings_) {
      if (!out.empty()) out += ' ';
      out += s.key + '=' + s.value.label;
    }
    return out;
  }

  friend bool operator==(const Configuration& a, const Configuration& b) {
    return a.keyed() == b.keyed();
  }
  friend bool operator!=(const Configuration& a, const Configuration& b) { return !(a == b); }
  friend bool operator<(const Configuration& a, const Configuration& b) {
    return a.keyed() < b.keyed();
  }

 private:
  const KnobSetting* find(std::string_view key) const {
    for (const auto& s : settings_)
      if (s.key == key) return &s;
    return nullptr;
  }
  std::vector<std::tuple<std::string, std::size_t>> keyed() const {
    std::vector<std::tuple<std::string, std::size_t>> out;
    for (const auto& s : settings_) out.emplace_back(s.key, s.index);
    return out;
  }

  std::vector<KnobSetting> settings_;
};

/// Throws Error(invalid_argument) naming `who` and the knob unless `config` sets every knob of
/// `knobs` to a value of its ladder (a configuration from another stream, a missing knob or a
/// value such as NaN never reaches the renderer). Call it at the top of Source::render and the
/// other rendering calls.
inline void require_ladder_values(const Configuration& config, const std::vector<KnobSpec>& knobs,
                                  const std::string& who) {
  for (const auto& k : knobs) {
    if (!config.has(k.key))
      throw Error(Errc::invalid_argument, who + ": configuration '" + config.str() +
                                              "' has no value for knob '" + k.key + "'");
    const KnobSetting& s = config.at(k.key);
    if (s.index >= k.values.size() || k.values[s.index].label != s.value.label ||
        !(k.values[s.index].number == s.value.number))
      throw Error(Errc::invalid_argument, who + ": knob '" + k.key + "': value '" + s.value.label +
                                              "' is not on its ladder");
  }
}

}  // namespace oneadapt
