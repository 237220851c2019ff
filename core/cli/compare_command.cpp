// `oneadapt compare`: policies from the table (adapt/policies/policies.hpp) at their points on
// the same input, in one harness, charged by one accountant, searching one grid; savings read on
// the baselines' lower convex hulls with a block bootstrap (docs/compare.md).
#include <unistd.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "adapt/grid.hpp"
#include "adapt/policies/policies.hpp"
#include "adapt/savings.hpp"
#include "cli_common.hpp"

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
      "a backward pass in forward units (0: measured once, on the first interval)");
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "[--config FILE] [options]", opts, {}, vm, global)) return kOk;
  if (vm.count("config") && is_joint_config(vm["config"].as<std::string>()))
    return compare_joint(vm["config"].as<std::string>(), vm, global);
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
  std::vector<const adapt::PolicyInfo*> infos;
  for (const auto& p : cmp.policies) infos.push_back(&adapt::find_policy(p));
  for (std::size_t i = 0; i < infos.size(); ++i)
    if (infos[i]->name == "roi-hindsight" &&
        std::none_of(infos.begin(), infos.begin() + static_cast<std::ptrdiff_t>(i),
                     [](const adapt::PolicyInfo* p) { return p->name == "oneadapt"; }))
      throw Error(Errc::invalid_argument,
                  "roi-hindsight needs the whole run's saliency: list oneadapt before it in "
                  "compare.policies");

  Experiment x(c, global);
  const CompareGrid g = set_compare_grid(x, cmp);
  auto source0 = x.source();
  const std::vector<KnobSpec>& knobs = g.knobs;
  const auto& configs = g.configs;
  const std::string& grid_line = g.line;
  std::cerr << "grid: " << grid_line << '\n';
  for (const auto* info : infos) {
    if (info->needs_spatial && !source0.spatial())
      throw Error(
          Errc::invalid_argument,
          info->name + " needs a source with a spatial knob (video: modality.params.roi_tile)");
  }

  const fs::path out = c.run.out_dir;
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw Error(Errc::io, out.string() + ": cannot create output directory: " + ec.message());
  adapt::OutcomeCache cache;
  // One backward weight for every run: measured once on the first interval's reference.
  double backward_weight = cmp.backward_weight;
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
  adapt::HarnessOptions base;
  base.max_intervals = c.max_intervals;
  base.cache = &cache;
  base.backward_weight = backward_weight;
  // The grid, evaluated once: every policy's replays and the static frontier read it.
  std::size_t intervals = 0;
  {
    auto s = x.source();
    auto t = x.task();
    adapt::Harness h(t, base);
    intervals = h.evaluate(s, configs, std::cerr);
  }
  if (intervals == 0) throw Error(Errc::invalid_argument, x.uri + ": the stream has no interval");

  // What every run of this comparison shares: the policy's arguments (its point, period and
  // budget set by the caller) and the run itself, in the shared harness set-up.
  auto policy_args = [&](double point) {
    adapt::PolicyArgs args;
    args.point = point;
    args.oneadapt = c.run.oneadapt;
    args.oneadapt.beta = point;
    args.static_config = c.run.static_config;
    args.spatial_map = c.run.spatial_map;
    args.grid = configs;
    args.cache = &cache;
    args.intervals = intervals;
    args.profile_budget = cmp.profile_budget;
    return args;
  };
  auto run_row = [&](Row& row, const adapt::PolicyArgs& args, const fs::path& dir,
                     adapt::HarnessOptions o, const std::string& budget_text) {
    auto policy = row.info->make(args);
    auto source = x.source();
    auto task = x.task();
    o.out_dir = dir / row.dir;
    o.provenance = x.provenance(source);
    o.provenance["grid"] = grid_line;
    if (!budget_text.empty()) o.provenance["budget"] = budget_text;
    o.header =
        "== " + row.dir + (budget_text.empty() ? "" : " (budget: " + budget_text + ")") + "\n";
    adapt::Harness h(task, o);
    row.s = h.run(
        source, *policy,
        {row.info->name, row.info->deployable, adapt::point_name(row.info->points), row.point},
        std::cerr, false);
    row.records = adapt::read_records(dir / row.dir);
  };

  // Budgets: the config's one ([budget]) or each of compare.budget_traces, in a folder each.
  std::vector<std::pair<std::string, adapt::BudgetTrace>> budgets;
  if (c.run.budget) budgets.push_back({"", *c.run.budget});
  for (const auto& f : cmp.budget_traces)
    budgets.push_back({fs::path(f).stem().string(), adapt::BudgetTrace::load(f)});
  std::vector<std::pair<std::string, std::vector<BudgetLine>>> budget_lines;
  for (const auto& [budget_name, budget_trace] : budgets) {
    const fs::path bout = budget_name.empty() ? out : out / budget_name;
    // Under a budget every policy runs once on the same trace: OneAdapt from policy.beta as its
    // starting price, the profiling baselines and the hindsight ones by their budget rules;
    // policies without one (Reducto-style, the spatial baselines) are left out.
    const std::size_t warm = cmp.warmup > 0 ? cmp.warmup : c.run.budget_warmup;
    const double tolerance = 0.05;
    const bool split = cache.reference(0) && cache.reference(0)->results.size() > 1;
    std::vector<Row> rows;
    for (const auto* info : infos) {
      if (info->points == PointKind::target || info->points == PointKind::base_quality ||
          (info->name == "oracle-split" && !split)) {
        std::cerr << "compare: " << info->name
                  << " has no rule for a budget here: left out of this comparison\n";
        continue;
      }
      Row row;
      row.policy = info->name;
      row.info = info;
      row.point = info->points == PointKind::beta ? c.run.oneadapt.beta : 0.0;
      row.dir = info->name;
      row.point_label = info->points == PointKind::beta ? KnobValue::of(row.point).label : "-";
      adapt::PolicyArgs args = policy_args(row.point);
      args.period = cmp.profile_every.empty() ? 5 : cmp.profile_every.front();
      args.prefix = warm;
      args.budget = &budget_trace;
      args.budget_tolerance = tolerance;
      adapt::HarnessOptions o = base;
      o.budget = budget_trace;
      o.budget_warmup = warm;
      run_row(row, args, bout, o, budget_trace.describe());
      rows.push_back(std::move(row));
    }
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
  if (!budgets.empty()) {
    if (budgets.size() > 1) budget_summary(out, budget_lines);
    return kOk;
  }

  std::vector<Row> rows;
  for (const auto* info : infos) {
    std::vector<double> points{0.0};
    if (info->points == PointKind::beta)
      points = cmp.betas;
    else if (info->points == PointKind::target)
      points = cmp.targets;
    else if (info->points == PointKind::base_quality) {
      points.clear();
      for (const auto& k : knobs)
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
        Row row;
        row.policy = family;
        row.info = info;
        row.point = point;
        row.dir = run_dir_name(family, info->points, point);
        row.point_label = info->points == PointKind::none ? "-" : KnobValue::of(point).label;
        adapt::PolicyArgs args = policy_args(point);
        args.period = period;
        args.prefix = cmp.warmup;
        if (info->name == "roi-hindsight") args.tile_saliency = whole_run_saliency(rows);
        run_row(row, args, out, base, "");
        rows.push_back(std::move(row));
      }
    }
  }

  std::vector<std::size_t> scored;
  for (std::size_t i = std::min(cmp.warmup, intervals); i < intervals; ++i) scored.push_back(i);
  const bool splittable = cache.reference(0) && cache.reference(0)->results.size() > 1;

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
