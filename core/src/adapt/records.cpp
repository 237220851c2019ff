#include "adapt/records.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace oneadapt::adapt {

using json = nlohmann::json;
namespace fs = std::filesystem;

Charges& Charges::operator+=(const Charges& o) {
  bytes += o.bytes, header_bytes += o.header_bytes, reference_bytes += o.reference_bytes,
      feedback_bytes += o.feedback_bytes;
  source_renders += o.source_renders, server_renders += o.server_renders;
  forwards += o.forwards, profiling_forwards += o.profiling_forwards;
  backward_passes += o.backward_passes, backward_units += o.backward_units;
  return *this;
}

namespace {

json charges_json(const Charges& c) {
  return {{"header_bytes", c.header_bytes},
          {"reference_bytes", c.reference_bytes},
          {"feedback_bytes", c.feedback_bytes},
          {"payload_bytes", c.bytes},
          {"source_renders", c.source_renders},
          {"server_renders", c.server_renders},
          {"forwards", c.forwards},
          {"profiling_forwards", c.profiling_forwards},
          {"backward_passes", c.backward_passes},
          {"backward_units", c.backward_units}};
}

template <class T>
T field(const json& j, const char* key) {
  if (!j.contains(key))
    throw Error(Errc::corrupt_data, std::string("record has no field '") + key + "'");
  return j.at(key).get<T>();
}

}  // namespace

json config_json(const Configuration& c) {
  json j = json::object();
  for (const auto& s : c.settings()) j[s.key] = s.value.number;
  return j;
}

json IntervalRecord::to_json() const {
  json idx = json::object();
  for (const auto& s : config.settings()) idx[s.key] = s.index;
  json j = {{"interval", interval},
            {"t_start", t_start},
            {"duration", duration},
            {"policy", policy},
            {"config", config_json(config)},
            {"config_index", idx},
            {"config_str", config.str()},
            {"passes", passes},
            {"bytes", charges.uplink()},
            {"bytes_ref", bytes_ref},
            {"frames_inferred", frames_inferred},
            {"frames_ref", frames_ref},
            {"compute", charges.compute()},
            {"compute_ref", compute_ref},
            {"accuracy", accuracy},
            {"accuracy_first", accuracy_first},
            {"accuracy_second", accuracy_second},
            {"proxy", proxy},
            {"deployable", deployable},
            {"charges", charges_json(charges)},
            {"trace", trace},
            {"wall_ms", wall_ms},
            {"render_stages_ms", render_stages_ms}};
  if (!map.empty()) j["map"] = map;
  if (budget_bytes >= 0) {
    j["budget_bytes"] = budget_bytes;
    j["over_budget"] = over_budget;
    j["budget_infeasible"] = budget_infeasible;
  }
  if (lag_ms >= 0) {
    j["lag_ms"] = lag_ms;
    j["late"] = late;
  }
  return j;
}

IntervalRecord IntervalRecord::from_json(const json& j) {
  IntervalRecord r;
  r.interval = field<std::size_t>(j, "interval");
  r.t_start = field<double>(j, "t_start");
  r.duration = j.value("duration", 0.0);
  r.policy = j.value("policy", "");
  // The configuration: numbers, ladder indices and labels ("key=label ...").
  std::vector<KnobSetting> settings;
  const json& numbers = j.at("config");
  const json idx = j.value("config_index", json::object());
  std::map<std::string, std::string> labels;
  {
    std::istringstream in(j.value("config_str", ""));
    for (std::string kv; in >> kv;) {
      const auto eq = kv.find('=');
      if (eq != std::string::npos) labels[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  for (const auto& [key, v] : numbers.items()) {
    KnobSetting s{
        key, idx.value(key, std::size_t{0}),
        KnobValue{v.get<double>(),
                  labels.count(key) ? labels[key] : KnobValue::of(v.get<double>()).label}};
    settings.push_back(s);
  }
  r.config = Configuration(settings);
  r.map = j.value("map", "");
  r.passes = j.value("passes", 1);
  const json& c = j.at("charges");
  r.charges.bytes = c.value("payload_bytes", std::uint64_t{0});
  r.charges.header_bytes = c.value("header_bytes", std::uint64_t{0});
  r.charges.reference_bytes = c.value("reference_bytes", std::uint64_t{0});
  r.charges.feedback_bytes = c.value("feedback_bytes", std::uint64_t{0});
  r.charges.source_renders = c.value("source_renders", 0L);
  r.charges.server_renders = c.value("server_renders", 0L);
  r.charges.forwards = c.value("forwards", 0.0);
  r.charges.profiling_forwards = c.value("profiling_forwards", 0.0);
  r.charges.backward_passes = c.value("backward_passes", 0L);
  r.charges.backward_units = c.value("backward_units", 0.0);
  r.bytes_ref = field<std::uint64_t>(j, "bytes_ref");
  r.frames_inferred = j.value("frames_inferred", 0.0);
  r.frames_ref = j.value("frames_ref", 0.0);
  r.compute_ref = j.value("compute_ref", 0.0);
  r.accuracy = field<double>(j, "accuracy");
  r.accuracy_first = j.value("accuracy_first", r.accuracy);
  r.accuracy_second = j.value("accuracy_second", r.accuracy);
  r.proxy = j.value("proxy", 0.0);
  r.deployable = j.value("deployable", true);
  r.budget_bytes = j.value("budget_bytes", -1.0);
  r.over_budget = j.value("over_budget", false);
  r.budget_infeasible = j.value("budget_infeasible", false);
  r.lag_ms = j.value("lag_ms", -1.0);
  r.late = j.value("late", false);
  r.trace = j.value("trace", json::object());
  r.wall_ms = j.value("wall_ms", std::map<std::string, double>{});
  r.render_stages_ms = j.value("render_stages_ms", std::map<std::string, double>{});
  return r;
}

void RunSummary::add(const IntervalRecord& r) {
  ++intervals;
  accuracy_mean += r.accuracy;  // a sum until finish()
  charges += r.charges;
  bytes_ref_total += r.bytes_ref;
  frames_inferred_total += r.frames_inferred;
  frames_ref_total += r.frames_ref;
  compute_ref_total += r.compute_ref;
  for (const auto& [k, v] : r.wall_ms) stage_ms[k] += v;
  final_config = r.config.str();
  if (r.budget_bytes >= 0 && intervals > budget.warmup) {
    budget.active = true;
    ++budget.intervals;
    const double sent = static_cast<double>(r.charges.uplink());
    budget.bytes_budget += r.budget_bytes;
    budget.bytes_sent += sent;
    if (r.over_budget) ++budget.intervals_over, budget.bytes_over += sent - r.budget_bytes;
    if (r.budget_infeasible) ++budget.intervals_infeasible;
  }
  if (r.lag_ms >= 0) {
    realtime.active = true;
    if (r.late) ++realtime.late;
    realtime.lag_ms_max = std::max(realtime.lag_ms_max, r.lag_ms);
  }
}

void RunSummary::finish() {
  accuracy_mean = intervals ? accuracy_mean / static_cast<double>(intervals) : 0;
  auto st = [&](const char* k) {
    auto it = stage_ms.find(k);
    return it == stage_ms.end() ? 0.0 : it->second;
  };
  const double pipeline = st("decode") + st("render") + st("forward");
  overhead_fraction = pipeline > 0 ? (st("probe") + st("backward") + st("update")) / pipeline : 0;
}

double RunSummary::bytes_ratio() const {
  return bytes_ref_total
             ? static_cast<double>(charges.uplink()) / static_cast<double>(bytes_ref_total)
             : 0;
}

json RunSummary::to_json() const {
  json j = {{"status", status},
            {"policy", policy},
            {"deployable", deployable},
            {"intervals", intervals},
            {"accuracy_mean", accuracy_mean},
            {"bytes_total", charges.uplink()},
            {"bytes_ref_total", bytes_ref_total},
            {"bytes_ratio", bytes_ratio()},
            {"frames_inferred_total", frames_inferred_total},
            {"frames_ref_total", frames_ref_total},
            {"compute_total", charges.compute()},
            {"compute_ref_total", compute_ref_total},
            {"charges", charges_json(charges)},
            {"backward_weight", backward_weight},
            {"wall_s", wall_s},
            {"overhead_fraction", overhead_fraction},
            {"stage_ms", stage_ms},
            {"final_config", final_config}};
  if (!point_name.empty()) j[point_name] = point;
  if (!error.empty()) j["error"] = error;
  if (realtime.active)
    j["realtime"] = {{"intervals_late", realtime.late}, {"lag_ms_max", realtime.lag_ms_max}};
  if (budget.active || !budget.describe.empty()) {
    const double n = static_cast<double>(budget.intervals);
    j["budget"] = {{"budget", budget.describe},
                   {"warmup_intervals", budget.warmup},
                   {"intervals", budget.intervals},
                   {"intervals_over", budget.intervals_over},
                   {"fraction_over", n > 0 ? static_cast<double>(budget.intervals_over) / n : 0.0},
                   {"intervals_infeasible", budget.intervals_infeasible},
                   {"bytes_budget", budget.bytes_budget},
                   {"bytes_sent", budget.bytes_sent},
                   {"bytes_over", budget.bytes_over}};
  }
  return j;
}

void write_atomically(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw Error(Errc::io, tmp.string() + ": cannot write");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(Errc::io, path.string() + ": cannot replace: " + ec.message());
  }
}

std::vector<IntervalRecord> read_records(const fs::path& dir) {
  std::vector<IntervalRecord> out;
  const fs::path path = dir / "records.jsonl";
  std::ifstream in(path);
  if (!in) throw Error(Errc::not_found, path.string() + ": cannot open");
  std::size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    try {
      out.push_back(IntervalRecord::from_json(json::parse(line)));
    } catch (const std::exception& e) {
      throw Error(Errc::corrupt_data, path.string() + ":" + std::to_string(line_no) +
                                          ": malformed record: " + one_line(e.what()));
    }
  }
  return out;
}

std::string map_rle(const QualityMap& map) {
  std::string out;
  for (std::size_t i = 0; i < map.level.size();) {
    std::size_t j = i;
    while (j < map.level.size() && map.level[j] == map.level[i]) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(map.level[i]) + "*" + std::to_string(j - i);
    i = j;
  }
  return out;
}

std::vector<std::uint8_t> map_levels(const std::string& rle) {
  std::vector<std::uint8_t> out;
  std::stringstream in(rle);
  for (std::string part; std::getline(in, part, ',');) {
    const auto star = part.find('*');
    unsigned level = 0;
    unsigned long count = 0;
    if (star == std::string::npos || std::sscanf(part.c_str(), "%u*%lu", &level, &count) != 2 ||
        level > 255 || count > (1UL << 24))
      throw Error(Errc::corrupt_data, "malformed map run '" + part + "'");
    out.insert(out.end(), count, static_cast<std::uint8_t>(level));
  }
  return out;
}

}  // namespace oneadapt::adapt
