#include "adapt/grid.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <ostream>

namespace oneadapt::adapt {

namespace {
using json = nlohmann::json;


std::vector<ResultPtr> every_other(const std::vector<ResultPtr>& v, std::size_t first) {
  std::vector<ResultPtr> out;
  for (std::size_t i = first; i < v.size(); i += 2) out.push_back(v[i]);
  return out;
}
}  // namespace

// Inference on the fresh samples of a rendering; repeated samples reuse the last result.
std::vector<ResultPtr> infer_rendering(host::HostTask& task, const Rendering& r, double& frames) {
  std::vector<int64_t> fresh;
  for (std::size_t t = 0; t < static_cast<std::size_t>(r.input.size(0)); ++t)
    if (r.fresh.empty() || r.fresh[t] || fresh.empty()) fresh.push_back(static_cast<int64_t>(t));
  frames = static_cast<double>(fresh.size());
  at::NoGradGuard g;
  auto results = task.decode(task.infer(r.input.index_select(0, at::tensor(fresh, at::kLong))));
  std::vector<ResultPtr> out;
  std::size_t k = 0;
  for (int64_t t = 0; t < r.input.size(0); ++t) {
    if (k < fresh.size() && fresh[k] == t) ++k;
    out.push_back(results[k - 1]);
  }
  return out;
}


std::vector<Configuration> Grid::configurations(const std::vector<KnobSpec>& knobs) const {
  std::vector<std::vector<std::size_t>> axes;
  for (const auto& k : knobs) {
    std::vector<std::size_t> idx;
    auto it = labels.find(k.key);
    if (it == labels.end()) {
      for (std::size_t i = 0; i < k.values.size(); ++i) idx.push_back(i);
    } else {
      for (const auto& l : it->second) {
        auto v = std::find_if(k.values.begin(), k.values.end(), [&](const KnobValue& kv) { return kv.label == l; });
        if (v == k.values.end())
          throw Error(Errc::invalid_argument, "grid." + k.key + ": '" + l + "' is not on the knob's ladder");
        idx.push_back(static_cast<std::size_t>(v - k.values.begin()));
      }
    }
    axes.push_back(idx);
  }
  for (const auto& [key, l] : labels)
    if (std::none_of(knobs.begin(), knobs.end(), [&](const KnobSpec& k) { return k.key == key; }))
      throw Error(Errc::invalid_argument, "grid: the modality has no knob '" + key + "'");
  std::vector<Configuration> out;
  std::vector<std::size_t> pos(axes.size(), 0);
  while (true) {
    std::vector<std::size_t> idx;
    for (std::size_t k = 0; k < axes.size(); ++k) idx.push_back(axes[k][pos[k]]);
    out.push_back(Configuration::at_indices(knobs, idx));
    std::size_t k = 0;
    while (k < axes.size() && ++pos[k] == axes[k].size()) pos[k++] = 0;
    if (k == axes.size()) break;
  }
  return out;
}

GridTable evaluate_grid(host::HostSource& source, host::HostTask& task, const Grid& grid, std::size_t max_intervals,
                        std::ostream& progress) {
  GridTable table;
  table.knobs = source.knobs();
  table.configs = grid.configurations(table.knobs);
  const Configuration reference = source.reference();
  task.reset();
  IntervalInfo info;
  while ((max_intervals == 0 || table.outcomes.size() < max_intervals) && source.next_interval(info)) {
    auto t0 = std::chrono::steady_clock::now();
    double ref_frames = 0;
    Rendering ref = source.render(reference);
    std::vector<ResultPtr> ref_results = infer_rendering(task, ref, ref_frames);
    std::vector<Outcome> row;
    for (const auto& c : table.configs) {
      Outcome o;
      o.bytes_ref = ref.bytes;
      o.frames_ref = static_cast<double>(ref.input.size(0));
      std::vector<ResultPtr> results;
      if (c == reference) {
        results = ref_results;
        o.bytes = ref.bytes;
        o.frames_inferred = ref_frames;
        o.compute = ref.compute_units > 0 ? ref.compute_units : ref_frames;
      } else {
        Rendering r = source.render(c);
        results = infer_rendering(task, r, o.frames_inferred);
        o.bytes = r.bytes;
        o.compute = r.compute_units > 0 ? r.compute_units : o.frames_inferred;
      }
      o.accuracy = task.accuracy(results, ref_results);
      o.accuracy_even = task.accuracy(every_other(results, 0), every_other(ref_results, 0));
      o.accuracy_odd = results.size() > 1 ? task.accuracy(every_other(results, 1), every_other(ref_results, 1)) : o.accuracy;
      row.push_back(o);
    }
    task.end_interval(ref_results);  // recurrent tasks carry the reference stream's state
    table.outcomes.push_back(std::move(row));
    table.t_start.push_back(info.t_start);
    progress << "[grid " << table.outcomes.size() << (max_intervals ? "/" + std::to_string(max_intervals) : "") << "] t="
             << info.t_start << "s " << table.configs.size() << " configurations in "
             << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n"
             << std::flush;
  }
  return table;
}

RunSummary run_grid_policy(const GridTable& table, const std::string& policy, double beta, const RunSpec& spec,
                           std::size_t period, std::size_t budget) {
  if (policy != "best-static" && policy != "oracle" && policy != "oracle-split" && policy != "awstream" && policy != "chameleon")
    throw Error(Errc::invalid_argument,
                "policy '" + policy + "' is not a grid policy (best-static, oracle, oracle-split, awstream, chameleon)");
  if (period == 0) throw Error(Errc::invalid_argument, "awstream: the profiling period must be >= 1 interval");
  if (budget < 2) throw Error(Errc::invalid_argument, "chameleon: the profiling budget must be >= 2 configurations");
  const bool deployable = policy == "awstream" || policy == "chameleon";
  std::vector<std::vector<std::size_t>> profiled(table.outcomes.size());  // chameleon: what each interval profiled
  auto objective = [&](const Outcome& o, double accuracy) {
    return (1.0 - accuracy) + beta * static_cast<double>(o.bytes) / static_cast<double>(std::max<std::uint64_t>(o.bytes_ref, 1));
  };
  const std::size_t n = table.outcomes.size(), g = table.configs.size();
  std::vector<std::size_t> choice(n, 0);
  if (policy == "best-static") {
    std::size_t best = 0;
    double best_sum = std::numeric_limits<double>::infinity();
    for (std::size_t c = 0; c < g; ++c) {
      double sum = 0;
      for (std::size_t i = 0; i < n; ++i) sum += objective(table.outcomes[i][c], table.outcomes[i][c].accuracy);
      if (sum < best_sum) best_sum = sum, best = c;
    }
    choice.assign(n, best);
  } else if (policy == "awstream") {
    // Profile on interval i (served at reference quality), apply from i + 1 on.
    std::size_t current = 0;
    for (std::size_t i = 0; i < n; ++i) {
      choice[i] = current;
      if (i % period == 0) {
        double best = std::numeric_limits<double>::infinity();
        for (std::size_t c = 0; c < g; ++c) {
          double v = objective(table.outcomes[i][c], table.outcomes[i][c].accuracy);
          if (v < best) best = v, current = c;
        }
      }
    }
  } else if (policy == "chameleon") {
    // Start at the grid's most expensive configuration (index 0 of every knob's grid axis).
    std::size_t current = 0;
    for (std::size_t c = 0; c < g; ++c)
      if (table.configs[c] < table.configs[current]) current = c;
    for (std::size_t i = 0; i < n; ++i) {
      choice[i] = current;
      const std::string& knob = table.knobs[i % table.knobs.size()].key;
      // Candidates: the current configuration and those differing from it in `knob` only,
      // nearest on the ladder first, within the budget.
      std::vector<std::pair<std::size_t, std::size_t>> cands;  // (ladder distance, config)
      for (std::size_t c = 0; c < g; ++c) {
        bool same_elsewhere = true;
        for (const auto& s : table.configs[c].settings())
          if (s.key != knob && s.index != table.configs[current].index(s.key)) same_elsewhere = false;
        if (!same_elsewhere) continue;
        auto a = table.configs[c].index(knob), b = table.configs[current].index(knob);
        cands.push_back({a > b ? a - b : b - a, c});
      }
      std::sort(cands.begin(), cands.end());
      if (cands.size() > budget) cands.resize(budget);
      double best = std::numeric_limits<double>::infinity();
      std::size_t next = current;
      for (auto [dist, c] : cands) {
        profiled[i].push_back(c);
        double v = objective(table.outcomes[i][c], table.outcomes[i][c].accuracy);
        if (v < best) best = v, next = c;
      }
      current = next;  // applies from the next interval: the decision arrives late
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      double best = std::numeric_limits<double>::infinity();
      for (std::size_t c = 0; c < g; ++c) {
        const Outcome& o = table.outcomes[i][c];
        double v = objective(o, policy == "oracle" ? o.accuracy : o.accuracy_even);
        if (v < best) best = v, choice[i] = c;
      }
    }
  }

  std::ofstream records = open_run_records(spec);
  RunSummary sum;
  sum.policy = policy;
  double accuracy_sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const bool profiling = policy == "awstream" && i % period == 0;
    // AWStream's profiling interval is sent at the reference quality (config of the reference
    // column: its accuracy is 1, its bytes are the reference's).
    const Outcome& chosen = table.outcomes[i][choice[i]];
    Outcome o = chosen;
    if (profiling) {
      o.bytes = o.bytes_ref;
      o.accuracy = o.accuracy_even = o.accuracy_odd = 1.0;
      o.frames_inferred = o.frames_ref;
      o.compute = o.frames_ref;
    }
    // oracle-split is scored on the frames it did not choose on.
    const double accuracy = policy == "oracle-split" ? o.accuracy_odd : o.accuracy;
    json config = json::object();
    for (const auto& s : table.configs[choice[i]].settings()) config[s.key] = s.value.number;
    // Profiling charges: every grid configuration but the one served is rendered and inferred.
    long extra_renders = profiling ? static_cast<long>(g) - 1 : 0;
    double extra_forwards = 0;
    if (profiling)
      for (std::size_t c = 0; c < g; ++c) extra_forwards += table.outcomes[i][c].frames_inferred;
    for (std::size_t c : profiled[i])  // chameleon: the profiled candidates other than the one served
      if (c != choice[i]) ++extra_renders, extra_forwards += table.outcomes[i][c].frames_inferred;
    records << json{{"interval", i}, {"t_start", table.t_start[i]}, {"config", config},
                    {"config_str", profiling ? std::string("reference (profiling)") : table.configs[choice[i]].str()},
                    {"bytes", o.bytes}, {"bytes_ref", o.bytes_ref}, {"frames_inferred", o.frames_inferred}, {"frames_ref", o.frames_ref},
                    {"compute", o.compute}, {"accuracy", accuracy}, {"deployable", deployable},
                    {"overhead", {{"backward_passes", 0}, {"extra_renders", extra_renders}, {"extra_forwards", extra_forwards}}}}
                   .dump()
            << '\n';
    ++sum.intervals;
    accuracy_sum += accuracy;
    sum.bytes_total += o.bytes;
    sum.bytes_ref_total += o.bytes_ref;
    sum.frames_inferred_total += o.frames_inferred;
    sum.frames_ref_total += o.frames_ref;
    sum.compute_total += o.compute;
    sum.extra_renders += extra_renders;
    sum.extra_forwards += static_cast<long>(extra_forwards);
    sum.final_config = table.configs[choice[i]].str();
  }
  sum.accuracy_mean = n ? accuracy_sum / static_cast<double>(n) : 0;
  write_baseline_summary(spec, sum, beta, deployable,
                         {{"grid_size", g},
                          {"profiling_period", policy == "awstream" ? static_cast<long>(period) : 0L},
                          {"profiling_budget", policy == "chameleon" ? static_cast<long>(budget) : 0L}});
  return sum;
}

std::ofstream open_run_records(const RunSpec& spec) {
  std::error_code ec;
  std::filesystem::create_directories(spec.out_dir, ec);
  if (ec) throw Error(Errc::io, spec.out_dir.string() + ": cannot create output directory: " + ec.message());
  std::ofstream records(spec.out_dir / "records.jsonl", std::ios::trunc);
  if (!records) throw Error(Errc::io, (spec.out_dir / "records.jsonl").string() + ": cannot write");
  return records;
}

void write_baseline_summary(const RunSpec& spec, const RunSummary& sum, double beta, bool deployable, const nlohmann::json& extra) {
  json j = {{"status", "complete"}, {"policy", sum.policy}, {"beta", beta}, {"deployable", deployable}, {"intervals", sum.intervals},
            {"accuracy_mean", sum.accuracy_mean}, {"bytes_total", sum.bytes_total}, {"bytes_ref_total", sum.bytes_ref_total},
            {"bytes_ratio", sum.bytes_ref_total ? static_cast<double>(sum.bytes_total) / static_cast<double>(sum.bytes_ref_total) : 0},
            {"frames_inferred_total", sum.frames_inferred_total}, {"frames_ref_total", sum.frames_ref_total},
            {"compute_total", sum.compute_total}, {"final_config", sum.final_config},
            {"overhead", {{"backward_passes", 0}, {"extra_renders", sum.extra_renders}, {"extra_forwards", sum.extra_forwards}}},
            {"provenance", spec.provenance}};
  j.update(extra);
  std::ofstream(spec.out_dir / "summary.json") << j.dump(2) << '\n';
}

}  // namespace oneadapt::adapt
