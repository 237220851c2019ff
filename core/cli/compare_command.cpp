// `oneadapt compare`: policies from the table (adapt/policies/policies.hpp) at their points on
// the same input, in one harness, charged by one accountant, searching one grid; savings read on
// the baselines' lower convex hulls with a block bootstrap (docs/compare.md).
#include <unistd.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <nlohmann/json.hpp>
#include <random>
#include <memory>
#include <sstream>

#include "adapt/grid.hpp"
#include "adapt/policies/policies.hpp"
#include "adapt/savings.hpp"
#include "assets.hpp"
#include "cli_common.hpp"
#include "engine/engine.hpp"
#include "net/nats_link.hpp"
#include "split/jobs.hpp"

namespace po = boost::program_options;

namespace oneadapt::cli {

namespace {

using adapt::IntervalRecord;
using adapt::PointKind;
using adapt::RunSummary;
using json = nlohmann::json;
namespace fs = std::filesystem;

// One run of the comparison.
struct Row {
  std::string policy;  // the family: "awstream" or, with several periods, "awstream-p10"
  const adapt::PolicyInfo* info = nullptr;
  double point = 0;
  std::string point_label;  // "0.3", "target 0.9", "crf 28", "-"
  std::string dir;
  RunSummary s;
  std::vector<IntervalRecord> records;
};

std::string run_dir_name(const std::string& family, PointKind k, double point) {
  switch (k) {
    case PointKind::beta:
      return family + "-beta" + KnobValue::of(point).label;
    case PointKind::target:
      return family + "-target" + KnobValue::of(point).label;
    case PointKind::base_quality:
      return family + "-crf" + KnobValue::of(point).label;
    default:
      return family;
  }
}

// The resources a saving is read for: uplink bytes, DNN work (forward units), and renderings
// (the source's encodes and the server's re-encodes; the reference stream makes one per interval).
enum class Resource { bytes, compute, renders };
const char* resource_name(Resource r) {
  return r == Resource::bytes ? "bytes" : r == Resource::compute ? "compute" : "renders";
}

// A run's per-interval points for a resource; `second_half`: accuracy on the second half of the
// samples (the half oracle-split is scored on).
adapt::Series series_of(const std::string& label, const std::vector<IntervalRecord>& recs,
                        Resource r, bool second_half = false) {
  adapt::Series s{label, {}};
  for (const auto& rec : recs) {
    const double cost =
        r == Resource::bytes ? static_cast<double>(rec.charges.uplink())
        : r == Resource::compute
            ? rec.charges.compute()
            : static_cast<double>(rec.charges.source_renders + rec.charges.server_renders);
    const double ref = r == Resource::bytes     ? static_cast<double>(rec.bytes_ref)
                       : r == Resource::compute ? rec.compute_ref
                                                : 1.0;
    s.intervals.push_back({second_half ? rec.accuracy_second : rec.accuracy, cost, ref});
  }
  return s;
}

// A run's point over the scored intervals: (mean accuracy, bytes ratio).
adapt::TradePoint scored_point(const std::vector<IntervalRecord>& recs,
                               const std::vector<std::size_t>& scored) {
  return adapt::point_of(series_of("", recs, Resource::bytes), scored);
}

// The static grid's series: each configuration sent for the whole stream (its header once).
std::vector<adapt::Series> grid_series(const adapt::OutcomeCache& cache,
                                       const std::vector<Configuration>& configs,
                                       const Configuration& reference, std::size_t n, Resource r) {
  std::vector<adapt::Series> out;
  for (const auto& c : configs) {
    adapt::Series s{c.str(), {}};
    for (std::size_t i = 0; i < n; ++i) {
      const auto* ref = cache.reference(i);
      adapt::Outcome o;
      if (c == reference) {
        o.bytes = ref->bytes, o.header_bytes = ref->header_bytes, o.compute = ref->compute,
        o.accuracy = 1;
      } else {
        o = *cache.find(i, c);
      }
      const double head = i == 0 ? 1.0 : 0.0;
      const double cost = r == Resource::bytes ? static_cast<double>(o.bytes) +
                                                     head * static_cast<double>(o.header_bytes)
                          : r == Resource::compute ? o.compute
                                                   : 1.0;
      const double ref_cost =
          r == Resource::bytes
              ? static_cast<double>(ref->bytes) + head * static_cast<double>(ref->header_bytes)
          : r == Resource::compute ? ref->compute
                                   : 1.0;
      s.intervals.push_back({o.accuracy, cost, ref_cost});
    }
    out.push_back(s);
  }
  return out;
}

// Accuracy against bytes: one curve per policy family over its points, the static grid's
// configurations as dots and their lower convex hull as a line.
void plot_tradeoff(const fs::path& out, const std::vector<Row>& rows,
                   const std::vector<adapt::Series>& grid, const std::vector<std::size_t>& scored) {
  std::map<std::string, std::vector<const Row*>> families;
  for (const auto& r : rows) families[r.policy].push_back(&r);
  std::ofstream gp(out / "tradeoff.gp");
  gp << "set terminal pngcairo size 1000,650 font 'Sans,11'\nset output '"
     << (out / "tradeoff.png").string() << "'\n"
     << "set title 'Accuracy vs bandwidth over the scored intervals (policies at their points; "
        "grey: static grid, line: its hull)'\n"
     << "set xlabel 'bytes sent, % of the reference configuration'\nset ylabel 'mean accuracy "
        "(agreement with reference outputs)'\n"
     << "set key bottom right\nset grid\nset termoption noenhanced\n";
  const std::vector<std::size_t>& all = scored;
  std::string plot = "plot ";
  if (!grid.empty()) {
    std::vector<adapt::TradePoint> pts;
    std::ofstream dat(out / "tradeoff-grid.dat");
    for (std::size_t k = 0; k < grid.size(); ++k) {
      pts.push_back(adapt::point_of(grid[k], all, k));
      dat << 100 * pts.back().cost << ' ' << pts.back().accuracy << '\n';
    }
    std::ofstream hull(out / "tradeoff-hull.dat");
    const adapt::Frontier frontier(pts);  // named: vertices() refers into it
    for (const auto& v : frontier.vertices()) hull << 100 * v.cost << ' ' << v.accuracy << '\n';
    plot += "'" + (out / "tradeoff-grid.dat").string() +
            "' using 1:2 with points pt 7 ps 0.5 lc rgb '#bbbbbb' title 'static grid', '" +
            (out / "tradeoff-hull.dat").string() +
            "' using 1:2 with lines lw 2 lc rgb '#555555' title 'static hull'";
  }
  for (const auto& [family, list] : families) {
    std::vector<std::pair<adapt::TradePoint, double>> pts;
    for (const Row* r : list) pts.push_back({scored_point(r->records, scored), r->point});
    std::sort(pts.begin(), pts.end(),
              [](const auto& a, const auto& b) { return a.first.cost < b.first.cost; });
    const fs::path dat = out / ("tradeoff-" + family + ".dat");
    std::ofstream f(dat);
    f << "# bytes_percent accuracy point (over the scored intervals)\n";
    for (const auto& [p, point] : pts)
      f << 100 * p.cost << ' ' << p.accuracy << ' ' << point << '\n';
    const bool hindsight = !list.front()->info->deployable;
    plot += std::string(plot == "plot " ? "" : ", ") + "'" + dat.string() +
            "' using 1:2 with linespoints " + (hindsight ? "dt 2 " : "lw 2 ") + "pt 7 title '" +
            family + (hindsight ? " (hindsight)" : "") + "'";
  }
  gp << plot << '\n';
  gp.close();
  gnuplot(out / "tradeoff.gp");
}

// OneAdapt's knob values (as ladder positions, labelled) and AccGrad per knob over time, one
// panel per knob, one line per beta.
void plot_trajectories(const fs::path& out, const std::vector<Row>& rows,
                       const std::vector<KnobSpec>& knobs) {
  std::vector<const Row*> runs;
  for (const auto& r : rows)
    if (r.info->name == "oneadapt") runs.push_back(&r);
  if (runs.empty() || knobs.empty()) return;
  for (const Row* r : runs) {
    std::ofstream dat(out / (r->dir + "-trajectory.dat"));
    dat << "# t_start";
    for (const auto& k : knobs) dat << ' ' << k.key;
    for (const auto& k : knobs) dat << " accgrad_" << k.key;
    dat << '\n';
    for (const auto& rec : r->records) {
      dat << rec.t_start;
      for (const auto& k : knobs)
        dat << ' ' << (rec.config.has(k.key) ? static_cast<double>(rec.config.index(k.key)) : 0.0);
      for (const auto& k : knobs)
        dat << ' ' << rec.trace.value("accgrad", json::object()).value(k.key, 0.0);
      dat << '\n';
    }
  }
  auto panels = [&](const std::string& name, const std::string& title, bool positions,
                    std::size_t first_column, const std::string& style) {
    std::ofstream gp(out / (name + ".gp"));
    gp << "set terminal pngcairo size 900," << 260 * knobs.size() << " font 'Sans,10'\nset output '"
       << (out / (name + ".png")).string() << "'\nset multiplot layout " << knobs.size()
       << ",1 title '" << title
       << "'\nset grid\nset key outside right\nset termoption noenhanced\n";
    for (std::size_t k = 0; k < knobs.size(); ++k) {
      gp << "set ylabel '" << (positions ? "" : "AccGrad ") << knobs[k].key << "'\n"
         << (k + 1 == knobs.size() ? "set xlabel 'time (s)'\n" : "unset xlabel\n");
      if (positions) {
        gp << "set yrange [" << static_cast<double>(knobs[k].values.size()) - 0.5
           << ":-0.5]\nset ytics (";
        for (std::size_t i = 0; i < knobs[k].values.size(); ++i)
          gp << (i ? ", " : "") << "'" << knobs[k].values[i].label << "' " << i;
        gp << ")\n";
      } else {
        gp << "set autoscale y\nset ytics auto\n";
      }
      gp << "plot ";
      for (std::size_t r = 0; r < runs.size(); ++r)
        gp << (r ? ", " : "") << "'" << (out / (runs[r]->dir + "-trajectory.dat")).string()
           << "' using 1:" << first_column + k << " with " << style << " title 'beta "
           << runs[r]->point << "'";
      gp << '\n';
    }
    gp << "unset multiplot\n";
    gp.close();
    gnuplot(out / (name + ".gp"));
  };
  panels("trajectories", "OneAdapt: knob values applied per interval (top: most expensive)", true,
         2, "steps lw 2");
  panels("accgrad", "OneAdapt: AccGrad per knob (proxy gain per unit theta, normalised)", false,
         2 + knobs.size(), "linespoints lw 1.5 pt 7 ps 0.5");
}

// The spatial knob's maps over time (maps.png): six intervals of the OneAdapt run whose beta is
// nearest 0.3, each map over a grey frame of the stream (level 0 clear, cheaper levels redder).
void plot_maps(const fs::path& out, const std::vector<Row>& rows, host::HostSource source) {
  const auto spatial = source.spatial();
  if (!spatial) return;
  const Row* run = nullptr;
  for (const auto& r : rows)
    if (r.info->name == "oneadapt" && r.point > 0 &&
        (!run || std::abs(std::log(r.point / 0.3)) < std::abs(std::log(run->point / 0.3))))
      run = &r;
  if (!run || run->records.empty()) return;
  IntervalInfo info;
  if (!source.next_interval(info)) return;
  const at::Tensor G = source.original();
  at::Tensor grey = at::avg_pool2d(G[G.size(0) - 1].mean(0, true).unsqueeze(0), {4, 4})
                        .squeeze(0)
                        .squeeze(0)
                        .contiguous();
  {
    std::ofstream f(out / "maps-frame.dat");
    auto a = grey.accessor<float, 2>();
    for (int64_t y = 0; y < grey.size(0); ++y) {
      for (int64_t x = 0; x < grey.size(1); ++x) {
        const int v = static_cast<int>(std::clamp(a[y][x], 0.f, 1.f) * 255);
        f << x * 4 + 2 << ' ' << y * 4 + 2 << ' ' << v << ' ' << v << ' ' << v << '\n';
      }
      f << '\n';
    }
  }
  const std::size_t panels = std::min<std::size_t>(6, run->records.size());
  const int levels = static_cast<int>(spatial->levels.size());
  std::ofstream gp(out / "maps.gp");
  gp << "set terminal pngcairo size 1200,620 font 'Sans,10'\nset output '"
     << (out / "maps.png").string() << "'\n"
     << "set multiplot layout 2,3 title 'OneAdapt beta " << run->point
     << ": per-tile quality map (clear: best level; red: level " << levels - 1
     << ", the cheapest) over a frame'\nset termoption noenhanced\nunset key\nunset xtics\nunset "
        "ytics\nset size ratio -1\nset yrange [*:*] reverse\n";
  for (std::size_t p = 0; p < panels; ++p) {
    const std::size_t i = panels == 1 ? 0 : p * (run->records.size() - 1) / (panels - 1);
    const auto level = adapt::map_levels(run->records[i].map);
    const std::string dat = "maps-" + std::to_string(i) + ".dat";
    std::ofstream f(out / dat);
    for (int r = 0; r < spatial->rows; ++r) {
      for (int c = 0; c < spatial->cols; ++c) {
        const auto k = static_cast<std::size_t>(r * spatial->cols + c);
        const int l = k < level.size() ? level[k] : 0;
        f << c * spatial->tile + spatial->tile / 2 << ' ' << r * spatial->tile + spatial->tile / 2
          << " 255 40 0 " << (levels > 1 ? 170 * l / (levels - 1) : 0) << '\n';
      }
      f << '\n';
    }
    gp << "set title 't = " << run->records[i].t_start << " s'\nplot '"
       << (out / "maps-frame.dat").string() << "' using 1:2:3:4:5 with rgbimage, '"
       << (out / dat).string() << "' using 1:2:3:4:5:6 with rgbalpha\n";
  }
  gp << "unset multiplot\n";
  gp.close();
  const std::string cmd =
      "gnuplot '" + (out / "maps.gp").string() + "' 2>'" + (out / "maps.gp").string() + ".log'";
  if (std::system(cmd.c_str()) == 0) std::cout << "Maps: " << (out / "maps.png").string() << '\n';
}

// --- comparison under a budget (docs/budgets.md) ---------------------------------------------

// Bytes per interval against the budget over time (budget.png), and accuracy below it.
void plot_budget(const fs::path& out, const std::vector<Row>& rows) {
  if (rows.empty()) return;
  {
    std::ofstream f(out / "budget-trace.dat");
    f << "# t_start budget_kB\n";
    for (const auto& r : rows.front().records)
      f << r.t_start << ' ' << r.budget_bytes / 1e3 << '\n';
    if (!rows.front().records.empty()) {
      const auto& last = rows.front().records.back();
      f << last.t_start + last.duration << ' ' << last.budget_bytes / 1e3 << '\n';
    }
  }
  for (const auto& r : rows) {
    std::ofstream f(out / (r.dir + "-budget.dat"));
    f << "# t_start bytes_kB accuracy\n";
    for (const auto& rec : r.records)
      f << rec.t_start << ' ' << static_cast<double>(rec.charges.uplink()) / 1e3 << ' '
        << rec.accuracy << '\n';
  }
  std::ofstream gp(out / "budget.gp");
  gp << "set terminal pngcairo size 1100,800 font 'Sans,10'\nset output '"
     << (out / "budget.png").string()
     << "'\nset multiplot layout 2,1 title 'Under the budget: bytes sent per interval (top) and "
        "accuracy (bottom)'\nset grid\nset key outside right\nset termoption noenhanced\n"
     << "set ylabel 'kB per interval'\nunset xlabel\nplot '" << (out / "budget-trace.dat").string()
     << "' using 1:2 with steps lw 3 lc rgb '#000000' title 'budget'";
  // Each policy keeps its line type (colour) in both panels.
  for (std::size_t k = 0; k < rows.size(); ++k)
    gp << ", '" << (out / (rows[k].dir + "-budget.dat")).string()
       << "' using 1:2 with steps lw 1.5 lt " << k + 1 << " title '" << rows[k].policy << "'";
  gp << "\nset ylabel 'accuracy'\nset xlabel 'time (s)'\nset yrange [0:1.05]\nplot ";
  for (std::size_t k = 0; k < rows.size(); ++k)
    gp << (k ? ", " : "") << "'" << (out / (rows[k].dir + "-budget.dat")).string()
       << "' using 1:3 with lines lw 1.5 lt " << k + 1 << " title '" << rows[k].policy << "'";
  gp << "\nunset multiplot\n";
  gp.close();
  gnuplot(out / "budget.gp");
}

// The report of a comparison under a budget: per policy its accuracy, bytes, intervals over
// the budget after the warm-up; OneAdapt's accuracy difference against each policy, paired per
// interval, with a 90 % block-bootstrap interval.
// One policy's figures on one budget, for the summary over several traces.
struct BudgetLine {
  std::string policy;
  bool deployable = true;
  double accuracy = 0, bytes_ratio = 0, fraction_over = 0;
  std::string versus;  // OneAdapt: empty; others: OneAdapt's difference and its verdict
};

std::vector<BudgetLine> budget_report(const fs::path& out, const std::vector<Row>& rows,
                                      const std::vector<std::size_t>& scored,
                                      const CompareSpec& cmp, const std::string& header,
                                      double tolerance) {
  std::vector<BudgetLine> lines;
  std::ofstream csv(out / "budget.csv");
  csv << "policy,deployable,scored_intervals,accuracy,bytes_ratio,bytes,budget_bytes,"
         "intervals_over,fraction_over,bytes_over,intervals_infeasible,final_config\n";
  std::vector<std::vector<std::string>> table{{"policy", "accuracy", "of reference", "of budget",
                                               "over budget", "bytes over", "infeasible",
                                               "deployable"}};
  for (const auto& r : rows) {
    double acc = 0, bytes = 0, ref = 0, budget = 0, over_bytes = 0;
    std::size_t over = 0, infeasible = 0;
    for (std::size_t i : scored) {
      if (i >= r.records.size()) continue;
      const auto& rec = r.records[i];
      const double b = static_cast<double>(rec.charges.uplink());
      acc += rec.accuracy, bytes += b, ref += static_cast<double>(rec.bytes_ref);
      budget += rec.budget_bytes;
      if (rec.over_budget) ++over, over_bytes += b - rec.budget_bytes;
      infeasible += rec.budget_infeasible;
    }
    const double n = static_cast<double>(std::max<std::size_t>(scored.size(), 1));
    csv << r.policy << ',' << (r.info->deployable ? "yes" : "no") << ',' << scored.size() << ','
        << acc / n << ',' << (ref > 0 ? bytes / ref : 0) << ',' << bytes << ',' << budget << ','
        << over << ',' << static_cast<double>(over) / n << ',' << over_bytes << ',' << infeasible
        << ",\"" << r.s.final_config << "\"\n";
    lines.push_back({r.policy, r.info->deployable, acc / n, ref > 0 ? bytes / ref : 0,
                     static_cast<double>(over) / n, ""});
    table.push_back({r.policy, fmt("%.3f", acc / n), fmt("%.1f%%", ref > 0 ? 100 * bytes / ref : 0),
                     fmt("%.1f%%", budget > 0 ? 100 * bytes / budget : 0),
                     fmt("%.0f", static_cast<double>(over)) + " (" +
                         fmt("%.1f%%", 100.0 * static_cast<double>(over) / n) + ")",
                     fmt("%.0f", over_bytes), std::to_string(infeasible),
                     r.info->deployable ? "yes" : "no (hindsight)"});
  }
  csv.close();
  std::ostringstream diff;
  const Row* ours = nullptr;
  for (const auto& r : rows)
    if (r.info->name == "oneadapt") ours = &r;
  if (ours) {
    diff << "\n## OneAdapt's accuracy against each policy on the same budget\n\n"
         << "Paired per scored interval; 90% interval: " << cmp.resamples
         << " moving-block bootstrap resamples (blocks of " << cmp.block
         << " intervals). \"More accurate\" only when the interval's lower end is above 0; the "
            "budget target (over budget in at most "
         << fmt("%.0f%%", 100 * tolerance)
         << " of the scored intervals) is read on the table above.\n\n"
         << "| against | accuracy difference | 90% interval | verdict |\n|---|---|---|---|\n";
    std::ofstream dc(out / "budget-accuracy.csv");
    dc << "baseline,difference,ci_low,ci_high,verdict\n";
    for (const auto& r : rows) {
      if (&r == ours) continue;
      std::vector<double> d;
      for (std::size_t i : scored)
        if (i < r.records.size() && i < ours->records.size())
          d.push_back(ours->records[i].accuracy - r.records[i].accuracy);
      double mean = 0;
      for (double v : d) mean += v;
      mean /= static_cast<double>(std::max<std::size_t>(d.size(), 1));
      const auto [lo, hi] = adapt::block_bootstrap_mean(d, cmp.block, cmp.resamples);
      const char* verdict = lo > 0 ? "more accurate" : hi < 0 ? "less accurate" : "parity";
      diff << "| " << r.policy << " | " << fmt("%+.3f", mean) << " | [" << fmt("%+.3f", lo) << ", "
           << fmt("%+.3f", hi) << "] | " << verdict << " |\n";
      dc << r.policy << ',' << mean << ',' << lo << ',' << hi << ',' << verdict << '\n';
      for (auto& l : lines)
        if (l.policy == r.policy)
          l.versus = fmt("%+.3f", mean) + " [" + fmt("%+.3f", lo) + ", " + fmt("%+.3f", hi) + "] " +
                     verdict;
    }
  }
  std::ofstream md(out / "compare.md");
  md << "# oneadapt compare under a budget\n\n"
     << header << "\n\n"
     << text::markdown_table(table) << diff.str();
  md.close();
  std::cout << text::table(table) << diff.str() << "\nTables: " << (out / "budget.csv").string()
            << ", " << (out / "compare.md").string() << '\n';
  plot_budget(out, rows);
  std::cout << "Plot: " << (out / "budget.png").string() << '\n';
  return lines;
}

// budget-summary.md over several traces: per trace and policy, accuracy, bytes, the fraction
// of intervals over budget and OneAdapt's accuracy difference against it.
void budget_summary(const fs::path& out,
                    const std::vector<std::pair<std::string, std::vector<BudgetLine>>>& all) {
  std::ofstream md(out / "budget-summary.md");
  std::ofstream csv(out / "budget-summary.csv");
  csv << "trace,policy,deployable,accuracy,bytes_ratio,fraction_over,oneadapt_difference\n";
  md << "# Budgets: every policy on every trace\n\nPer trace: the scored intervals' mean accuracy, "
        "bytes (of the reference), intervals over budget, and OneAdapt's accuracy difference "
        "against the policy with its 90% block-bootstrap interval (details in each trace's "
        "compare.md).\n\n| trace | policy | accuracy | of reference | over budget | OneAdapt - "
        "policy |\n|---|---|---|---|---|---|\n";
  for (const auto& [trace, lines] : all)
    for (const auto& l : lines) {
      md << "| " << trace << " | " << l.policy << (l.deployable ? "" : " (hindsight)") << " | "
         << fmt("%.3f", l.accuracy) << " | " << fmt("%.1f%%", 100 * l.bytes_ratio) << " | "
         << fmt("%.1f%%", 100 * l.fraction_over) << " | " << (l.versus.empty() ? "-" : l.versus)
         << " |\n";
      csv << trace << ',' << l.policy << ',' << (l.deployable ? "yes" : "no") << ',' << l.accuracy
          << ',' << l.bytes_ratio << ',' << l.fraction_over << ",\"" << l.versus << "\"\n";
    }
  std::cout << "Summary over the traces: " << (out / "budget-summary.md").string() << '\n';
}

std::string cell(const char* f, double v) { return fmt(f, v); }

// roi-hindsight's map: the per-tile saliency of every interval of OneAdapt's runs so far
// (trace.tile_saliency), averaged over the whole run; empty when there is none.
std::vector<double> whole_run_saliency(const std::vector<Row>& rows) {
  std::vector<double> sum;
  for (const auto& r : rows) {
    if (r.info->name != "oneadapt") continue;
    for (const auto& rec : r.records) {
      const auto it = rec.trace.find("tile_saliency");
      if (it == rec.trace.end() || !it->is_array()) continue;
      if (sum.empty()) sum.assign(it->size(), 0.0);
      if (it->size() != sum.size()) continue;
      for (std::size_t t = 0; t < sum.size(); ++t) sum[t] += (*it)[t].get<double>();
    }
  }
  return sum;
}

// --- One comparison's set-up and its runs, in this process or as jobs on servers ----------------

// Everything a comparison needs, built the same way by `oneadapt compare` and by a server that
// runs its jobs (`oneadapt serve --jobs-dir`): the experiment, its grid, the policies and
// budgets, and the shared cache of the grid's outcomes.
struct CompareSetup {
  RunConfig c;
  Experiment x;
  CompareGrid g;
  std::vector<const adapt::PolicyInfo*> infos;
  std::vector<std::pair<std::string, adapt::BudgetTrace>> budgets;  // name ("" = [budget])
  adapt::OutcomeCache cache;
  double backward_weight = 0;
  std::size_t intervals = 0;
  static constexpr double kBudgetTolerance = 0.05;

  CompareSetup(const RunConfig& config, const GlobalOptions& global) : c(config), x(c, global) {
    for (const auto& p : c.compare.policies) infos.push_back(&adapt::find_policy(p));
    for (std::size_t i = 0; i < infos.size(); ++i)
      if (infos[i]->name == "roi-hindsight" &&
          std::none_of(infos.begin(), infos.begin() + static_cast<std::ptrdiff_t>(i),
                       [](const adapt::PolicyInfo* p) { return p->name == "oneadapt"; }))
        throw Error(Errc::invalid_argument,
                    "roi-hindsight needs the whole run's saliency: list oneadapt before it in "
                    "compare.policies");
    g = set_compare_grid(x, c.compare);
    if (c.run.budget) budgets.push_back({"", *c.run.budget});
    for (const auto& f : c.compare.budget_traces)
      budgets.push_back({fs::path(f).stem().string(), adapt::BudgetTrace::load(f)});
  }
  std::size_t budget_warmup() const {
    return c.compare.warmup > 0 ? c.compare.warmup : c.run.budget_warmup;
  }
  adapt::HarnessOptions base() {
    adapt::HarnessOptions o;
    o.max_intervals = c.max_intervals;
    o.cache = &cache;
    o.backward_weight = backward_weight;
    return o;
  }
  adapt::PolicyArgs policy_args(double point) {
    adapt::PolicyArgs args;
    args.point = point;
    args.oneadapt = c.run.oneadapt;
    args.oneadapt.beta = point;
    args.static_config = c.run.static_config;
    args.spatial_map = c.run.spatial_map;
    args.grid = g.configs;
    args.cache = &cache;
    args.intervals = intervals;
    args.profile_budget = c.compare.profile_budget;
    return args;
  }
};

// One run of a comparison as planned: which policy at which point, under which budget.
struct RowSpec {
  int budget = -1;  // index into CompareSetup::budgets; -1: no budget
  std::string policy, family, dir, point_label;
  double point = 0;
  std::size_t period = 0, prefix = 0;
  std::vector<double> tile_saliency;  // roi-hindsight's map (from OneAdapt's runs)
  json to_json() const {
    return json{{"budget", budget}, {"policy", policy},   {"family", family},
                {"dir", dir},       {"label", point_label}, {"point", point},
                {"period", period}, {"prefix", prefix},   {"tile_saliency", tile_saliency}};
  }
  static RowSpec from_json(const json& j) {
    RowSpec s;
    s.budget = j.at("budget").get<int>();
    s.policy = j.at("policy").get<std::string>();
    s.family = j.at("family").get<std::string>();
    s.dir = j.at("dir").get<std::string>();
    s.point_label = j.at("label").get<std::string>();
    s.point = j.at("point").get<double>();
    s.period = j.at("period").get<std::size_t>();
    s.prefix = j.at("prefix").get<std::size_t>();
    s.tile_saliency = j.at("tile_saliency").get<std::vector<double>>();
    if (s.dir.empty() || s.dir.find('/') != std::string::npos || s.dir.find("..") != std::string::npos)
      throw Error(Errc::invalid_argument, "a run's folder '" + s.dir + "' is not a plain name");
    return s;
  }
};

// The runs of a comparison: under budget `b` each policy with a budget rule once; without one
// every policy at each of its points (and profiling period).
std::vector<RowSpec> plan_rows(const CompareSetup& S, int b) {
  const auto& cmp = S.c.compare;
  std::vector<RowSpec> out;
  if (b >= 0) {
    const bool split = S.cache.reference(0) && S.cache.reference(0)->samples > 1;
    for (const auto* info : S.infos) {
      if (info->points == PointKind::target || info->points == PointKind::base_quality ||
          (info->name == "oracle-split" && !split))
        continue;
      RowSpec r;
      r.budget = b;
      r.policy = r.family = r.dir = info->name;
      r.point = info->points == PointKind::beta ? S.c.run.oneadapt.beta : 0.0;
      r.point_label = info->points == PointKind::beta ? KnobValue::of(r.point).label : "-";
      r.period = cmp.profile_every.empty() ? 5 : cmp.profile_every.front();
      r.prefix = S.budget_warmup();
      out.push_back(r);
    }
    return out;
  }
  for (const auto* info : S.infos) {
    std::vector<double> points{0.0};
    if (info->points == PointKind::beta)
      points = cmp.betas;
    else if (info->points == PointKind::target)
      points = cmp.targets;
    else if (info->points == PointKind::base_quality) {
      points.clear();
      for (const auto& k : S.g.knobs)
        if (k.key == "crf")
          for (const auto& v : k.values) points.push_back(v.number);
    }
    const bool periodic =
        info->name == "awstream" || info->name == "chameleon" || info->name == "reducto";
    std::vector<std::size_t> periods = periodic ? cmp.profile_every : std::vector<std::size_t>{0};
    for (std::size_t period : periods) {
      if (info->name != "awstream" && period == 0 && periodic)
        continue;  // only AWStream has an offline-only variant
      const std::string family =
          info->name + (periodic && periods.size() > 1 ? "-p" + std::to_string(period) : "");
      for (double point : points) {
        RowSpec r;
        r.policy = info->name;
        r.family = family;
        r.point = point;
        r.dir = run_dir_name(family, info->points, point);
        r.point_label = info->points == PointKind::none ? "-" : KnobValue::of(point).label;
        r.period = period;
        r.prefix = cmp.warmup;
        out.push_back(r);
      }
    }
  }
  return out;
}

// The folder a run's records go to under OUT: a budget trace's runs in their own folder.
fs::path row_root(const CompareSetup& S, const fs::path& out, int b) {
  return b < 0 || S.budgets[static_cast<std::size_t>(b)].first.empty()
             ? out
             : out / S.budgets[static_cast<std::size_t>(b)].first;
}

// Runs one planned run into ROOT/spec.dir (records.jsonl, summary.json, state.json).
Row run_planned(CompareSetup& S, const RowSpec& spec, const fs::path& root, std::ostream& progress) {
  Row row;
  row.policy = spec.family;
  row.info = &adapt::find_policy(spec.policy);
  row.point = spec.point;
  row.point_label = spec.point_label;
  row.dir = spec.dir;
  adapt::PolicyArgs args = S.policy_args(spec.point);
  args.period = spec.period;
  args.prefix = spec.prefix;
  if (!spec.tile_saliency.empty()) args.tile_saliency = spec.tile_saliency;
  adapt::HarnessOptions o = S.base();
  std::string budget_text;
  if (spec.budget >= 0) {
    const adapt::BudgetTrace& trace = S.budgets.at(static_cast<std::size_t>(spec.budget)).second;
    args.budget = &trace;
    args.budget_tolerance = CompareSetup::kBudgetTolerance;
    o.budget = trace;
    o.budget_warmup = S.budget_warmup();
    budget_text = trace.describe();
  }
  auto policy = row.info->make(args);
  auto source = S.x.source();
  auto task = S.x.task();
  o.out_dir = root / row.dir;
  o.provenance = S.x.provenance(source);
  o.provenance["grid"] = S.g.line;
  if (!budget_text.empty()) o.provenance["budget"] = budget_text;
  o.header =
      "== " + row.dir + (budget_text.empty() ? "" : " (budget: " + budget_text + ")") + "\n";
  adapt::Harness h(task, o);
  row.s = h.run(
      source, *policy,
      {row.info->name, row.info->deployable, adapt::point_name(row.info->points), row.point},
      progress, false);
  row.records = adapt::read_records(root / row.dir);
  return row;
}

// A run's summary as the coordinator keeps it: summed from its records like the harness's,
// with the run's own fields from summary.json.
RunSummary summary_of(const Row& row, const json& j) {
  RunSummary s;
  s.policy = row.info->name;
  s.deployable = row.info->deployable;
  s.point_name = adapt::point_name(row.info->points);
  s.point = row.point;
  if (j.contains("budget")) {
    s.budget.describe = j["budget"].value("budget", std::string());
    s.budget.warmup = j["budget"].value("warmup_intervals", std::size_t{0});
  }
  for (const auto& r : row.records) s.add(r);
  s.finish();
  s.status = j.value("status", std::string("complete"));
  s.error = j.value("error", std::string());
  s.wall_s = j.value("wall_s", 0.0);
  s.backward_weight = j.value("backward_weight", 0.0);
  s.final_config = j.value("final_config", s.final_config);  // in the knobs' order
  return s;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What a distributed comparison tells every server about itself (the job's "setup").
json setup_json(const RunConfig& c, const std::vector<std::string>& sets, const CompareSetup& S) {
  return json{{"config", c.file.empty() ? std::string() : fs::absolute(c.file).string()},
              {"sets", sets},
              {"cwd", fs::current_path().string()},
              {"grid", S.g.line},
              {"backward_weight", S.backward_weight}};
}

bool under(const fs::path& p, const fs::path& root) {
  // A URL (http://, file:, pipe:, concat:, ...) is not a file under anything: FFmpeg would open
  // it as it says.
  const std::string text = p.string();
  const auto colon = text.find(':');
  if (colon != std::string::npos && colon > 0 &&
      std::isalpha(static_cast<unsigned char>(text[0])) &&
      std::all_of(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(colon), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '.' || c == '-';
      }))
    return false;
  std::error_code ec;
  // Absolute first: a relative path none of whose parts exists stays relative in weakly_canonical.
  const fs::path a = fs::weakly_canonical(fs::absolute(p, ec), ec);
  if (ec) return false;
  const fs::path b = fs::weakly_canonical(fs::absolute(root, ec), ec);
  if (ec) return false;
  const fs::path rel = a.lexically_relative(b);
  return !rel.empty() && rel.native().rfind("..", 0) != 0;
}

// The working directory for a job's set-up and runs (configs name files relative to it).
class CwdGuard {
 public:
  explicit CwdGuard(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~CwdGuard() {
    std::error_code ec;
    fs::current_path(old_, ec);
  }
  CwdGuard(const CwdGuard&) = delete;
  CwdGuard& operator=(const CwdGuard&) = delete;

 private:
  fs::path old_;
};

}  // namespace

// The grid's figures for configurations `which` (indices into `configs`), with the references:
// what a grid job sends back and what a run job brings a server that lacks them.
json cache_table(const adapt::OutcomeCache& cache, const std::vector<Configuration>& configs,
                 const std::set<std::size_t>& which) {
  json refs = json::array(), outcomes = json::array();
  for (std::size_t i = 0; i < cache.intervals(); ++i) {
    const auto* r = cache.reference(i);
    if (!r) throw Error(Errc::internal, "the grid has no reference for interval " + std::to_string(i));
    refs.push_back({r->bytes, r->header_bytes, r->frames, r->compute, r->t_start, r->duration,
                    r->samples});
  }
  for (std::size_t k : which)
    for (std::size_t i = 0; i < cache.intervals(); ++i)
      if (const adapt::Outcome* o = cache.find(i, configs.at(k)))
        outcomes.push_back({i, k, o->bytes, o->header_bytes, o->frames, o->compute, o->accuracy,
                            o->accuracy_first, o->accuracy_second});
  return json{{"refs", refs}, {"outcomes", outcomes}};
}

// Takes a table's figures into the cache (what it already holds stays): references without
// their results, which a run infers where it first needs them and checks against these bytes.
void merge_table(adapt::OutcomeCache& cache, const std::vector<Configuration>& configs,
                 const json& table, const std::string& from) {
  try {
    const auto& refs = table.at("refs");
    for (std::size_t i = 0; i < refs.size(); ++i) {
      const json& r = refs[i];
      adapt::OutcomeCache::Reference ref;
      ref.bytes = r.at(0).get<std::uint64_t>(), ref.header_bytes = r.at(1).get<std::uint64_t>();
      ref.frames = r.at(2).get<double>(), ref.compute = r.at(3).get<double>();
      ref.t_start = r.at(4).get<double>(), ref.duration = r.at(5).get<double>();
      ref.samples = r.at(6).get<std::size_t>();
      ref.results_known = false;
      const double prev_start = i > 0 ? refs[i - 1].at(4).get<double>() : 0.0;
      if (!std::isfinite(ref.t_start) || !std::isfinite(ref.duration) || ref.t_start < 0 ||
          ref.t_start > 1e9 || !(ref.duration > 0) || ref.duration > 1e6 ||
          ref.t_start < prev_start || !std::isfinite(ref.frames) || !std::isfinite(ref.compute))
        throw Error(Errc::corrupt_data,
                    from + ": interval " + std::to_string(i) + "'s reference has a bad time");
      if (const auto* have = cache.reference(i)) {
        if (have->bytes != ref.bytes || have->samples != ref.samples)
          throw Error(Errc::corrupt_data,
                      from + ": interval " + std::to_string(i) + "'s reference is " +
                          std::to_string(ref.bytes) + " bytes there, " +
                          std::to_string(have->bytes) +
                          " here: every server must read the same input");
        continue;
      }
      cache.set_reference(i, ref);
    }
    for (const json& e : table.at("outcomes")) {
      const std::size_t i = e.at(0).get<std::size_t>(), k = e.at(1).get<std::size_t>();
      if (k >= configs.size() || i >= refs.size())
        throw Error(Errc::corrupt_data, from + ": an outcome outside the grid");
      if (cache.find(i, configs[k])) continue;
      adapt::Outcome o;
      o.bytes = e.at(2).get<std::uint64_t>(), o.header_bytes = e.at(3).get<std::uint64_t>();
      o.frames = e.at(4).get<double>(), o.compute = e.at(5).get<double>();
      o.accuracy = e.at(6).get<double>(), o.accuracy_first = e.at(7).get<double>();
      o.accuracy_second = e.at(8).get<double>();
      cache.put(i, configs[k], o);
    }
  } catch (const json::exception& e) {
    throw Error(Errc::corrupt_data, from + ": a malformed grid table (" + e.what() + ")");
  }
}

ScratchDir::ScratchDir() {
  std::string name = (fs::temp_directory_path() / "oneadapt-job-XXXXXX").string();
  if (!::mkdtemp(name.data())) throw Error(Errc::io, name + ": cannot create a scratch folder");
  path_ = name;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

ConfigFileCheck refuse_outside(std::function<bool(const fs::path&)> allowed) {
  return [allowed = std::move(allowed)](const fs::path& f, const std::string& what) {
    if (!allowed(f))
      throw Error(Errc::invalid_argument, f.string() + ": " + what +
                                              " not under this server's --jobs-dir or asset cache");
  };
}

std::unique_ptr<net::NatsLink> compare_link(const po::variables_map& vm) {
  if (!vm.count("nats")) return nullptr;
  const net::LinkOptions lo = link_options(vm, "oneadapt compare");
  const double wait = vm["timeout"].as<double>();
  if (!(wait > 0) || wait > 1e6) throw UsageError("--timeout: 0 < seconds <= 1e6");
  if (vm["grid-jobs"].as<std::size_t>() == 0) throw UsageError("--grid-jobs must be at least 1");
  return std::make_unique<net::NatsLink>(lo);
}

split::JobRunner compare_job_runner(const GlobalOptions& global, const fs::path& jobs_dir,
                                    const std::string& device) {
  struct State {
    std::map<std::string, std::unique_ptr<CompareSetup>> setups;  // by comparison id
    std::vector<std::string> order;                               // oldest first
  };
  auto state = std::make_shared<State>();
  auto allowed = [jobs_dir](const fs::path& p) {
    return under(p, jobs_dir) || under(p, asset_cache_dir());
  };
  split::JobRunner joint = joint_job_runner(global, device, allowed);
  return [state, global, jobs_dir, device, joint, allowed](
             const std::string& id, const json& setup, const json& work,
             const std::vector<std::uint8_t>& payload) {
    const fs::path cwd = setup.at("cwd").get<std::string>();
    if (!under(cwd, jobs_dir) && fs::weakly_canonical(cwd) != fs::weakly_canonical(jobs_dir))
      throw Error(Errc::invalid_argument, "the comparison's working directory " + cwd.string() +
                                              " is not under this server's --jobs-dir " +
                                              jobs_dir.string());
    std::error_code ec;
    if (!fs::is_directory(cwd, ec))
      throw Error(Errc::not_found, cwd.string() +
                                       ": no such directory on this server (a distributed "
                                       "compare needs the same files at the same paths)");
    CwdGuard guard(cwd);
    if (setup.value("joint", false)) {  // a joint comparison (docs/joint.md)
      const std::string config = setup.at("config").get<std::string>();
      if (!under(config, jobs_dir))
        throw Error(Errc::invalid_argument,
                    config + ": not under this server's --jobs-dir " + jobs_dir.string());
      return joint(id, setup, work, payload);
    }
    auto& S = state->setups[id];
    if (!S) {
      const std::string config = setup.at("config").get<std::string>();
      if (!config.empty() && !under(config, jobs_dir))
        throw Error(Errc::invalid_argument,
                    config + ": not under this server's --jobs-dir " + jobs_dir.string());
      RunConfig c = load_run_config(
          config, setup.at("sets").get<std::vector<std::string>>(),
          refuse_outside(allowed));
      c.device = device;
      // Checked before anything is opened: a URL or a file outside is never read.
      if (!allowed(resolve_asset_uri(c.uri)))
        throw Error(Errc::invalid_argument, resolve_asset_uri(c.uri) +
                                                ": input not under this server's --jobs-dir or "
                                                "asset cache");
      auto made = std::make_unique<CompareSetup>(c, global);
      if (!allowed(made->x.uri))
        throw Error(Errc::invalid_argument, made->x.uri + ": input not under this server's "
                                                          "--jobs-dir or asset cache");
      for (const auto& [role, m] : made->x.models) {
        const fs::path p = std::static_pointer_cast<engine::EngineModel>(m)->summary().path;
        if (!allowed(p))
          throw Error(Errc::invalid_argument, p.string() + ": model '" + role +
                                                  "' not under this server's --jobs-dir or "
                                                  "asset cache");
      }
      if (made->g.line != setup.at("grid").get<std::string>())
        throw Error(Errc::invalid_argument, "the grid here is '" + made->g.line +
                                                "', not the comparison's '" +
                                                setup.at("grid").get<std::string>() + "'");
      made->backward_weight = setup.at("backward_weight").get<double>();
      S = std::move(made);
      state->order.push_back(id);
      while (state->order.size() > 2) {  // a server keeps the last two comparisons
        state->setups.erase(state->order.front());
        state->order.erase(state->order.begin());
      }
    }
    std::ostringstream quiet;  // the runs' progress stays on the server
    split::JobDone done;
    const std::string part = work.at("part").get<std::string>();
    if (part == "grid") {
      std::vector<Configuration> configs;
      std::set<std::size_t> which;
      for (const auto& k : work.at("configs")) {
        const auto i = k.get<std::size_t>();
        if (i >= S->g.configs.size()) throw Error(Errc::invalid_argument, "a grid index past the grid");
        configs.push_back(S->g.configs[i]);
        which.insert(i);
      }
      auto source = S->x.source();
      auto task = S->x.task();
      adapt::Harness h(task, S->base());
      const std::size_t n = h.evaluate(source, configs, quiet);
      done.meta = json{{"intervals", n}};
      done.payload = split::deflate_text(cache_table(S->cache, S->g.configs, which).dump());
    } else if (part == "run") {
      merge_table(S->cache, S->g.configs, json::parse(split::inflate_text(payload)),
                  "the comparison's table");
      S->intervals = work.at("intervals").get<std::size_t>();
      const RowSpec spec = RowSpec::from_json(work.at("spec"));
      if (spec.budget >= static_cast<int>(S->budgets.size()))
        throw Error(Errc::invalid_argument, "a budget index past the comparison's budgets");
      const ScratchDir scratch;
      const fs::path& tmp = scratch.path();
      run_planned(*S, spec, tmp, quiet);
      json files = json::object();
      for (const char* f : {"records.jsonl", "summary.json", "state.json"})
        if (fs::exists(tmp / spec.dir / f)) files[f] = read_text(tmp / spec.dir / f);
      done.payload = split::deflate_text(files.dump());
    } else {
      throw Error(Errc::invalid_argument, "a job part '" + part + "' this server does not know");
    }
    return done;
  };
}

namespace {
}  // namespace

int run_compare(const Invocation& inv) {
  po::options_description opts = experiment_options();
  opts.add_options()("policies", po::value<std::string>(),
                     ("comma-separated: " + adapt::policy_names()).c_str())(
      "betas", po::value<std::string>(),
      "comma-separated betas (the points of oneadapt, awstream, chameleon, best-static, oracle, "
      "...)")("targets", po::value<std::string>(),
              "reducto: comma-separated accuracy targets (its points)")(
      "grid", po::value<std::vector<std::string>>()->composing(),
      "KNOB=V1,V2,...: the values of a knob that every policy uses (repeatable; knobs not named: "
      "the default grid)")("max-grid", po::value<std::size_t>(),
                           "the default grid's size at most (its ladders are subsampled to fit)")(
      "warmup", po::value<std::size_t>(),
      "intervals left out of the savings; the profiling baselines' offline prefix")(
      "profile-every", po::value<std::string>(),
      "awstream, chameleon, reducto: comma-separated profiling periods (0: offline only)")(
      "profile-budget", po::value<std::size_t>(),
      "chameleon: configurations profiled per profiling interval")(
      "target-saving", po::value<double>(),
      "a saving is met when its 90% interval's lower end exceeds this fraction")(
      "resamples", po::value<int>(), "bootstrap resamples")("block", po::value<std::size_t>(),
                                                            "bootstrap block length (intervals)")(
      "backward-weight", po::value<double>(),
      "a backward pass in forward units (0: measured once, on the first interval)")(
      "split-scales", po::value<std::string>(),
      "joint: comma-separated scales of the link at which each deployable split also runs (its "
      "frontier, read at OneAdapt-joint's bytes; 1 is always run; default 1,1.5,2,3)");
  po::options_description dist("Distributed (docs/deployment.md, \"Distributed compare\")");
  add_nats_options(dist);
  dist.add_options()("timeout", po::value<double>()->default_value(30),
                     "with --nats: seconds to wait for a server to take the first job")(
      "grid-jobs", po::value<std::size_t>()->default_value(4),
      "with --nats: the grid's configurations (on a joint config, each stream's) dealt out over "
      "this many jobs");
  opts.add(dist);
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "[--config FILE] [options]", opts, {}, vm, global)) return kOk;
  if (vm.count("auth") && !vm.count("nats")) throw UsageError("--auth goes with --nats URL");
  if (vm.count("config") && is_joint_config(vm["config"].as<std::string>())) {
    return compare_joint(vm["config"].as<std::string>(), vm, global);
  }
  if (vm.count("split-scales"))
    throw UsageError("--split-scales applies to a joint comparison only (a config with [[stream]] "
                     "tables, docs/joint.md)");
  std::unique_ptr<net::NatsLink> link = compare_link(vm);  // connected before anything is loaded
  std::vector<std::string> sets = overrides_from_flags(vm);
  auto list = [](const std::string& text) {
    std::string out;
    for (const auto& v : split_list(text)) out += (out.empty() ? "" : ",") + v;
    return "[" + out + "]";
  };
  auto quoted_list = [](const std::string& text) {
    std::string out;
    for (const auto& v : split_list(text))
      out += std::string(out.empty() ? "" : ",") + "\"" + v + "\"";
    return "[" + out + "]";
  };
  // Flags are config keys under [compare]; each value is checked here so that a mistake is a
  // usage error naming the flag.
  if (vm.count("policies")) {
    for (const auto& p : split_list(vm["policies"].as<std::string>()))
      if (std::none_of(adapt::policy_table().begin(), adapt::policy_table().end(),
                       [&](const adapt::PolicyInfo& i) { return i.name == p; }))
        throw UsageError("--policies: '" + p + "' is not one of " + adapt::policy_names());
    sets.push_back("compare.policies=" + quoted_list(vm["policies"].as<std::string>()));
  }
  auto numbers = [&](const char* flag, const char* key, double lo, double hi, const char* what) {
    if (!vm.count(flag)) return;
    for (const auto& b : split_list(vm[flag].as<std::string>())) {
      double v;
      if (!parse_number(b, v) || !std::isfinite(v) || v < lo || v > hi)
        throw UsageError(std::string("--") + flag + ": '" + b + "' is not " + what);
    }
    sets.push_back(std::string("compare.") + key + "=" + list(vm[flag].as<std::string>()));
  };
  numbers("betas", "betas", 0, 1e9, "a non-negative number");
  numbers("targets", "targets", 1e-9, 1, "an accuracy in (0, 1]");
  numbers("profile-every", "profile_every", 0, 1e6, "a number of intervals");
  if (vm.count("grid"))
    for (const auto& g : vm["grid"].as<std::vector<std::string>>()) {
      auto eq = g.find('=');
      if (eq == std::string::npos || eq == 0)
        throw UsageError("--grid '" + g + "': expected KNOB=V1,V2,...");
      sets.push_back("compare.grid." + g.substr(0, eq) + "=" + quoted_list(g.substr(eq + 1)));
    }
  if (vm.count("max-grid"))
    sets.push_back("compare.max_grid=" + std::to_string(vm["max-grid"].as<std::size_t>()));
  if (vm.count("warmup"))
    sets.push_back("compare.warmup=" + std::to_string(vm["warmup"].as<std::size_t>()));
  if (vm.count("profile-budget"))
    sets.push_back("compare.profile_budget=" +
                   std::to_string(vm["profile-budget"].as<std::size_t>()));
  if (vm.count("target-saving"))
    sets.push_back("compare.target_saving=" + fmt("%.17g", vm["target-saving"].as<double>()));
  if (vm.count("resamples"))
    sets.push_back("compare.resamples=" + std::to_string(vm["resamples"].as<int>()));
  if (vm.count("block"))
    sets.push_back("compare.block=" + std::to_string(vm["block"].as<std::size_t>()));
  if (vm.count("backward-weight"))
    sets.push_back("compare.backward_weight=" + fmt("%.17g", vm["backward-weight"].as<double>()));
  RunConfig c = load_run_config(vm.count("config") ? vm["config"].as<std::string>() : "", sets);
  if (c.run.realtime)
    throw UsageError(
        "input.realtime (--realtime) paces one run as if it were live: use it with "
        "'oneadapt run' or 'oneadapt source', not with compare");
  const auto& cmp = c.compare;
  CompareSetup S(c, global);
  Experiment& x = S.x;
  const CompareGrid& g = S.g;
  auto source0 = x.source();
  const std::vector<KnobSpec>& knobs = g.knobs;
  const auto& configs = g.configs;
  const std::string& grid_line = g.line;
  std::cerr << "grid: " << grid_line << '\n';
  for (const auto* info : S.infos) {
    if (info->needs_spatial && !source0.spatial())
      throw Error(
          Errc::invalid_argument,
          info->name + " needs a source with a spatial knob (video: modality.params.roi_tile)");
  }

  const fs::path out = c.run.out_dir;
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw Error(Errc::io, out.string() + ": cannot create output directory: " + ec.message());
  adapt::OutcomeCache& cache = S.cache;
  // One backward weight for every run: measured once on the first interval's reference.
  double& backward_weight = S.backward_weight;
  backward_weight = cmp.backward_weight;
  if (backward_weight <= 0) {
    auto s = x.source();
    auto t = x.task();
    IntervalInfo info;
    if (s.next_interval(info)) {
      Rendering r = s.render(s.reference());
      t.reset();
      backward_weight =
          adapt::measure_backward_weight(t, r.input.narrow(0, r.input.size(0) - 1, 1));
    }
  }
  std::cerr << "backward pass: " << fmt("%.2f", backward_weight) << " forward units\n";

  // With --nats the grid and the runs are jobs on the servers (docs/deployment.md, "Distributed
  // compare"); everything else (the plan, the tables, the plots) stays here.
  const auto wall0 = std::chrono::steady_clock::now();
  std::unique_ptr<split::JobPool> pool;
  if (link) {
    const double wait = vm["timeout"].as<double>();
    pool = std::make_unique<split::JobPool>(
        *link, setup_json(c, sets, S),
        std::chrono::milliseconds(static_cast<std::int64_t>(wait * 1000)));
    std::cerr << "compare: jobs on the servers at " << link->url() << '\n';
  }
  json job_log = json::array();

  // The grid, evaluated once: every policy's replays and the static frontier read it.
  std::size_t& intervals = S.intervals;
  if (!pool) {
    auto s = x.source();
    auto t = x.task();
    adapt::Harness h(t, S.base());
    intervals = h.evaluate(s, configs, std::cerr);
  } else {
    // Each job evaluates some of the configurations over the whole stream (a recurrent task's
    // state follows the reference, so a configuration's figures do not depend on its company);
    // the configurations are dealt out in turn, so that each job gets cheap and dear ones.
    std::vector<std::size_t> idx;
    const Configuration ref = source0.reference();
    for (std::size_t k = 0; k < configs.size(); ++k)
      if (!(configs[k] == ref)) idx.push_back(k);
    const std::size_t n_jobs =
        std::max<std::size_t>(1, std::min(vm["grid-jobs"].as<std::size_t>(), idx.size()));
    std::vector<split::Job> jobs(n_jobs);
    for (std::size_t j = 0; j < n_jobs; ++j) jobs[j].meta = json{{"part", "grid"}, {"configs", json::array()}};
    for (std::size_t i = 0; i < idx.size(); ++i) jobs[i % n_jobs].meta["configs"].push_back(idx[i]);
    for (std::size_t j = 0; j < n_jobs; ++j)
      jobs[j].label = "grid " + std::to_string(j + 1) + "/" + std::to_string(n_jobs) + " (" +
                      std::to_string(jobs[j].meta["configs"].size()) + " configurations)";
    const auto done = pool->run(jobs, std::cerr);
    for (std::size_t j = 0; j < done.size(); ++j) {
      const std::size_t n = done[j].meta.value("intervals", std::size_t{0});
      if (j > 0 && n != intervals)
        throw Error(Errc::corrupt_data, "server " + done[j].server + " saw " + std::to_string(n) +
                                            " intervals, another " + std::to_string(intervals) +
                                            ": every server must read the same input");
      intervals = n;
      merge_table(S.cache, g.configs, json::parse(split::inflate_text(done[j].payload)),
                  "server " + done[j].server);
    }
  }
  if (intervals == 0) throw Error(Errc::invalid_argument, x.uri + ": the stream has no interval");

  // The planned runs, here or as jobs; roi-hindsight reads OneAdapt's runs, so it runs after them.
  auto run_rows = [&](std::vector<RowSpec> specs, const fs::path& root) {
    std::vector<Row> rows(specs.size());
    auto saliency_for = [&](std::size_t i) {  // from the runs before i that are done
      std::vector<Row> before;
      for (std::size_t k = 0; k < i; ++k)
        if (rows[k].info) before.push_back(rows[k]);
      return whole_run_saliency(before);
    };
    const bool no_budget = !specs.empty() && specs.front().budget < 0;
    if (!pool) {
      for (std::size_t i = 0; i < specs.size(); ++i) {
        if (no_budget && specs[i].policy == "roi-hindsight") specs[i].tile_saliency = saliency_for(i);
        rows[i] = run_planned(S, specs[i], row_root(S, root, specs[i].budget), std::cerr);
      }
      return rows;
    }
    std::set<std::size_t> all;
    for (std::size_t k = 0; k < configs.size(); ++k) all.insert(k);
    const auto table = split::deflate_text(cache_table(S.cache, configs, all).dump());
    for (int wave = 0; wave < 2; ++wave) {
      std::vector<std::size_t> which;
      std::vector<split::Job> jobs;
      for (std::size_t i = 0; i < specs.size(); ++i) {
        const bool later = no_budget && specs[i].policy == "roi-hindsight";
        if (later != (wave == 1)) continue;
        if (later) specs[i].tile_saliency = saliency_for(i);
        which.push_back(i);
        jobs.push_back({specs[i].dir,
                        json{{"part", "run"}, {"spec", specs[i].to_json()}, {"intervals", intervals}},
                        table});
      }
      const auto done = pool->run(jobs, std::cerr);
      for (std::size_t j = 0; j < done.size(); ++j) {
        const RowSpec& spec = specs[which[j]];
        const json files = json::parse(split::inflate_text(done[j].payload));
        const fs::path dir = row_root(S, root, spec.budget) / spec.dir;
        fs::create_directories(dir, ec);
        if (ec) throw Error(Errc::io, dir.string() + ": cannot create output directory: " + ec.message());
        for (const char* f : {"records.jsonl", "summary.json", "state.json"}) {
          fs::remove(dir / f, ec);
          if (files.contains(f)) adapt::write_atomically(dir / f, files[f].get<std::string>());
        }
        Row& row = rows[which[j]];
        row.policy = spec.family;
        row.info = &adapt::find_policy(spec.policy);
        row.point = spec.point;
        row.point_label = spec.point_label;
        row.dir = spec.dir;
        row.records = adapt::read_records(dir);
        row.s = summary_of(row, files.contains("summary.json")
                                    ? json::parse(files["summary.json"].get<std::string>())
                                    : json::object());
      }
    }
    for (const auto& e : pool->log()) job_log.push_back(e);
    return rows;
  };
  auto write_jobs = [&] {
    if (!pool) return;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    std::set<std::string> servers;
    for (const auto& e : pool->log()) servers.insert(e.value("server", std::string()));
    adapt::write_atomically(out / "jobs.json",
                            json{{"nats", link->url()},
                                 {"servers", servers},
                                 {"wall_s", wall},
                                 {"jobs", pool->log()}}
                                    .dump(2) +
                                "\n");
    std::cerr << "compare: " << pool->log().size() << " jobs on " << servers.size()
              << " server(s) in " << fmt("%.1f", wall) << " s (" << (out / "jobs.json").string()
              << ")\n";
  };

  // Budgets: the config's one ([budget]) or each of compare.budget_traces, in a folder each.
  std::vector<std::pair<std::string, std::vector<BudgetLine>>> budget_lines;
  for (std::size_t b = 0; b < S.budgets.size(); ++b) {
    const auto& [budget_name, budget_trace] = S.budgets[b];
    const fs::path bout = row_root(S, out, static_cast<int>(b));
    // Under a budget every policy runs once on the same trace: OneAdapt from policy.beta as its
    // starting price, the profiling baselines and the hindsight ones by their budget rules;
    // policies without one (Reducto-style, the spatial baselines) are left out.
    const std::size_t warm = S.budget_warmup();
    const double tolerance = CompareSetup::kBudgetTolerance;
    const auto specs = plan_rows(S, static_cast<int>(b));
    for (const auto* info : S.infos)
      if (std::none_of(specs.begin(), specs.end(),
                       [&](const RowSpec& r) { return r.policy == info->name; }))
        std::cerr << "compare: " << info->name
                  << " has no rule for a budget here: left out of this comparison\n";
    std::vector<Row> rows = run_rows(specs, out);
    std::vector<std::size_t> scored;
    for (std::size_t i = std::min(warm, intervals); i < intervals; ++i) scored.push_back(i);
    const std::string header =
        "Input: " + x.uri + ", " + std::to_string(intervals) + " intervals, " +
        std::to_string(scored.size()) + " scored after a warm-up of " + std::to_string(warm) +
        ". Budget: " + budget_trace.describe() + ". Grid: " + grid_line +
        ". Every policy in one harness, charged by one accountant (uplink bytes with headers and "
        "profiling data count against the budget). OneAdapt starts from price (beta) " +
        KnobValue::of(c.run.oneadapt.beta).label +
        " and sets it by dual ascent; AWStream-style and Chameleon-style choose the most accurate "
        "profiled configuration under 0.9 x the budget and profile online only when the "
        "reference fits; best-static (hindsight) is the most accurate grid configuration over "
        "budget in at most 5% of the scored intervals; oracle (hindsight) the most accurate "
        "within each interval's budget. Accuracy: agreement with the reference configuration's "
        "outputs.";
    budget_lines.push_back(
        {budget_name, budget_report(bout, rows, scored, cmp, header, tolerance)});
  }
  if (!S.budgets.empty()) {
    if (S.budgets.size() > 1) budget_summary(out, budget_lines);
    write_jobs();
    return kOk;
  }

  std::vector<Row> rows = run_rows(plan_rows(S, -1), out);
  write_jobs();

  std::vector<std::size_t> scored;
  for (std::size_t i = std::min(cmp.warmup, intervals); i < intervals; ++i) scored.push_back(i);
  const bool splittable = cache.reference(0) && cache.reference(0)->samples > 1;

  // compare.csv (whole runs, and their points over the scored intervals) and the table.
  std::ofstream csv(out / "compare.csv");
  csv << "policy,point_kind,point,deployable,intervals,accuracy_mean,bytes_total,bytes_ref_total,"
         "bytes_ratio,header_bytes,feedback_bytes,"
         "reference_bytes,compute_total,compute_ref_total,source_renders,server_renders,profiling_"
         "forwards,backward_passes,"
         "accuracy_scored,bytes_ratio_scored,final_config\n";
  std::vector<std::vector<std::string>> table{{"policy", "point", "accuracy", "of reference",
                                               "bytes", "feedback", "DNN work", "backward",
                                               "renders/interval", "deployable"}};
  for (const auto& r : rows) {
    const auto& ch = r.s.charges;
    const adapt::TradePoint sp = scored_point(r.records, scored);
    csv << r.policy << ',' << adapt::point_name(r.info->points) << ',' << r.point << ','
        << (r.info->deployable ? "yes" : "no") << ',' << r.s.intervals << ',' << r.s.accuracy_mean
        << ',' << ch.uplink() << ',' << r.s.bytes_ref_total << ',' << r.s.bytes_ratio() << ','
        << ch.header_bytes << ',' << ch.feedback_bytes << ',' << ch.reference_bytes << ','
        << ch.compute() << ',' << r.s.compute_ref_total << ',' << ch.source_renders << ','
        << ch.server_renders << ',' << ch.profiling_forwards << ',' << ch.backward_passes << ','
        << sp.accuracy << ',' << sp.cost << ",\"" << r.s.final_config << "\"\n";
    const std::string kind = adapt::point_name(r.info->points);
    table.push_back(
        {r.policy, r.point_label == "-" ? "-" : (kind == "beta" ? "" : kind + " ") + r.point_label,
         cell("%.3f", sp.accuracy), cell("%.1f%%", 100 * sp.cost), std::to_string(ch.uplink()),
         std::to_string(ch.feedback_bytes),
         cell("%.1f%%", r.s.compute_ref_total > 0 ? 100 * ch.compute() / r.s.compute_ref_total : 0),
         std::to_string(ch.backward_passes),
         cell("%.1f", r.s.intervals ? static_cast<double>(ch.source_renders + ch.server_renders) /
                                          static_cast<double>(r.s.intervals)
                                    : 0),
         r.info->deployable ? "yes" : "no (hindsight)"});
  }
  csv.close();

  // frontier.csv: every grid configuration over the scored intervals, the hull flagged.
  const Configuration reference = source0.reference();
  const auto grid_bytes = grid_series(cache, configs, reference, intervals, Resource::bytes);
  {
    std::vector<adapt::TradePoint> pts;
    for (std::size_t k = 0; k < grid_bytes.size(); ++k)
      pts.push_back(adapt::point_of(grid_bytes[k], scored, k));
    const adapt::Frontier f(pts);
    std::set<std::size_t> on_hull;
    for (const auto& v : f.vertices()) on_hull.insert(v.series);
    std::ofstream fr(out / "frontier.csv");
    fr << "config,bytes,accuracy,bytes_ratio,hull\n";
    for (std::size_t k = 0; k < grid_bytes.size(); ++k) {
      double bytes = 0;
      for (std::size_t i : scored) bytes += grid_bytes[k].intervals[i].cost;
      fr << '"' << configs[k].str() << "\"," << static_cast<std::uint64_t>(bytes) << ','
         << pts[k].accuracy << ',' << pts[k].cost << ',' << (on_hull.count(k) ? 1 : 0) << '\n';
    }
  }

  // savings.csv: OneAdapt against every baseline family's lower convex hull, per resource.
  adapt::SavingOptions so;
  so.skip = cmp.warmup;
  so.resamples = cmp.resamples;
  so.block = cmp.block;
  std::ofstream sv(out / "savings.csv");
  sv << "resource,baseline,oneadapt_beta,accuracy,cost_ratio,saving,ci_low,ci_high,resamples,"
        "resamples_used,block,nearest,nearest_accuracy,"
        "nearest_cost_ratio,target,verdict\n";
  std::ostringstream md_savings;
  std::vector<const Row*> ours;
  std::map<std::string, std::vector<const Row*>> families;
  for (const auto& r : rows)
    (r.info->name == "oneadapt" ? ours.push_back(&r) : families[r.policy].push_back(&r));
  for (Resource res : {Resource::bytes, Resource::compute, Resource::renders}) {
    const char* title = res == Resource::bytes ? "Bandwidth"
                        : res == Resource::compute
                            ? "DNN work"
                            : "Renderings (source encodes and server re-encodes)";
    md_savings << "\n## " << title << ": saving of OneAdapt at equal accuracy\n\n"
               << "Read on each baseline's lower convex hull (time-sharing its points); `static "
                  "grid` is the hull of every grid "
                  "configuration sent for the whole stream. 90% interval: "
               << cmp.resamples << " moving-block bootstrap resamples (blocks of " << cmp.block
               << " intervals) of the " << scored.size() << " scored intervals (warm-up "
               << cmp.warmup << "). Target: " << fmt("%+.0f%%", 100 * cmp.target_saving)
               << ", met only when the interval's lower end exceeds it; undetermined when under "
                  "95% of the resamples fall in the baseline's "
                  "accuracy range. Against oracle-split OneAdapt is scored on the same half of the "
                  "samples.\n\n"
               << "| baseline | OneAdapt beta | accuracy | saving | 90% interval | nearest "
                  "baseline point | verdict |\n|---|---|---|---|---|---|---|\n";
    if (ours.empty()) continue;
    std::vector<std::pair<std::string, std::vector<adapt::Series>>> baselines;
    baselines.push_back(
        {"static grid", res == Resource::bytes
                            ? grid_bytes
                            : grid_series(cache, configs, reference, intervals, res)});
    for (const auto& [family, list] : families) {
      if (family == "oracle-split" && !splittable)
        continue;  // one sample per interval: it cannot split
      std::vector<adapt::Series> s;
      for (const Row* r : list)
        s.push_back(series_of(r->dir, r->records, res, family == "oracle-split"));
      baselines.push_back({family, s});
      if (family ==
          "roi-static") {  // the better of the two static frontiers: the hull of their union
        auto both = baselines.front().second;
        both.insert(both.end(), s.begin(), s.end());
        baselines.push_back({"static grid + roi-static", both});
      }
    }
    for (const auto& [name, series] : baselines)
      for (const Row* o : ours) {
        const auto s = adapt::saving_on_frontier(
            series_of(o->dir, o->records, res, name == "oracle-split"), series, so);
        if (!s) {
          const adapt::TradePoint p = adapt::point_of(series_of(o->dir, o->records, res), scored);
          md_savings << "| " << name << " | " << o->point << " | " << fmt("%.3f", p.accuracy)
                     << " | outside the baseline's accuracy range | - | - | - |\n";
          sv << resource_name(res) << ",\"" << name << "\"," << o->point << ',' << p.accuracy << ','
             << p.cost << ",,,," << cmp.resamples << ",0," << cmp.block << ",,,,"
             << cmp.target_saving << ",out of range\n";
          continue;
        }
        const std::string verdict = adapt::verdict(*s, cmp.target_saving);
        const std::string& nearest = series[s->nearest].label;
        sv << resource_name(res) << ",\"" << name << "\"," << o->point << ',' << s->accuracy << ','
           << s->cost << ',' << s->saving << ',' << s->low << ',' << s->high << ',' << cmp.resamples
           << ',' << s->resamples_used << ',' << cmp.block << ",\"" << nearest << "\","
           << s->nearest_accuracy << ',' << s->nearest_cost << ',' << cmp.target_saving << ','
           << verdict << '\n';
        md_savings << "| " << name << " | " << o->point << " | " << fmt("%.3f", s->accuracy)
                   << " | " << fmt("%+.1f%%", 100 * s->saving) << " | ["
                   << fmt("%+.1f%%", 100 * s->low) << ", " << fmt("%+.1f%%", 100 * s->high)
                   << "] | " << nearest << " (" << fmt("%.3f", s->nearest_accuracy) << ", "
                   << fmt("%.1f%%", 100 * s->nearest_cost) << ") | " << verdict << " |\n";
      }
  }
  sv.close();

  std::ofstream md(out / "compare.md");
  md << "# oneadapt compare\n\nInput: " << x.uri << ", " << intervals << " intervals, "
     << scored.size() << " scored after a warm-up of " << cmp.warmup
     << ". Grid (every policy's search space, OneAdapt's ladders included): " << grid_line
     << ". A backward pass (with "
     << "the autograd overhead of its forward) is charged as " << fmt("%.2f", backward_weight)
     << " forward units ("
     << (cmp.backward_weight > 0 ? "given in the config" : "measured on this model")
     << "). Accuracy: the task's metric against the reference "
     << "configuration's outputs; the table's accuracy and bytes are over the scored intervals "
        "(compare.csv also has whole-run totals). "
     << "Charges (docs/compare.md): uplink bytes with stream headers on every start or change of "
        "settings, reference-quality data sent for "
     << "profiling, feedback bytes to the source, source and server renderings, DNN work. "
        "Hindsight policies are not deployable."
     << (splittable ? ""
                    : " One sample per interval: oracle-split cannot split (it equals oracle) and "
                      "is left out of the savings.")
     << "\n\n"
     << text::markdown_table(table) << md_savings.str();
  md.close();
  std::cout << text::table(table) << md_savings.str()
            << "\nTables: " << (out / "compare.csv").string() << ", "
            << (out / "compare.md").string() << ", " << (out / "savings.csv").string() << ", "
            << (out / "frontier.csv").string() << '\n';
  plot_tradeoff(out, rows, grid_bytes, scored);
  plot_trajectories(out, rows, knobs);
  std::cout << "Plots: " << (out / "tradeoff.png").string() << ", "
            << (out / "trajectories.png").string() << ", " << (out / "accgrad.png").string()
            << '\n';
  plot_maps(out, rows, x.source());
  return kOk;
}

}  // namespace oneadapt::cli
