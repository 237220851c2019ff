// `oneadapt compare`: several policies at several betas on the same input, side by side.
#include <unistd.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <iostream>
#include <sstream>

#include "adapt/grid.hpp"
#include "adapt/reducto.hpp"
#include "adapt/regions.hpp"
#include "adapt/savings.hpp"
#include "cli_common.hpp"

namespace po = boost::program_options;

namespace oneadapt::cli {

namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

struct Row {
  std::string policy;
  double beta;
  bool deployable;
  adapt::RunSummary s;
  std::filesystem::path dir;
};

// A run's sub-directory: "oneadapt-beta0.1000", "static".
// Reducto has no beta: its points are accuracy targets ("reducto-target0.900"); roi-static's
// are the CRF values of the base quality knob ("roi-static-crf28").
std::string run_dir_name(const std::string& policy, double beta, bool beta_free) {
  if (beta_free) return policy;
  if (policy == "roi-static" || policy == "eaar" || policy == "dds") return policy + "-crf" + KnobValue::of(beta).label;
  return policy + (policy == "reducto" ? "-target" : "-beta") + std::to_string(beta).substr(0, 6);
}

std::vector<adapt::IntervalPoint> read_points(const std::filesystem::path& dir) {
  std::vector<adapt::IntervalPoint> out;
  std::ifstream in(dir / "records.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    adapt::IntervalPoint p{j["accuracy"].get<double>(), j["bytes"].get<double>(), j["bytes_ref"].get<double>()};
    // DNN work: inferred samples + profiling runs + backward passes (one forward each).
    p.compute = j.value("compute", 0.0);
    if (j.contains("overhead"))
      p.compute += j["overhead"].value("extra_forwards", 0.0) + j["overhead"].value("backward_passes", 0.0);
    p.compute_ref = j.value("frames_ref", 0.0);
    out.push_back(p);
  }
  return out;
}

// OneAdapt's bandwidth saving at equal accuracy against each baseline curve (docs/compare.md).
std::string headline(const std::vector<Row>& rows, std::size_t warmup, const std::filesystem::path& out) {
  std::map<std::string, adapt::Curve> curves;
  for (const auto& r : rows) {
    auto& c = curves[r.policy];
    c.policy = r.policy;
    c.betas.push_back(r.beta);
    c.runs.push_back(read_points(r.dir));
  }
  if (!curves.count("oneadapt")) return "";
  double backward_ms = 0, forward_ms = 0, backwards = 0, forwards = 0;
  for (const auto& r : rows)
    if (r.policy == "oneadapt") {
      auto st = [&](const char* k) { auto it = r.s.stage_ms.find(k); return it == r.s.stage_ms.end() ? 0.0 : it->second; };
      backward_ms += st("backward"), forward_ms += st("forward");
      backwards += static_cast<double>(r.s.backward_passes), forwards += r.s.frames_inferred_total;
    }
  char ratio_buf[32];
  std::snprintf(ratio_buf, sizeof ratio_buf, "%.2f", forward_ms > 0 && backwards > 0 ? (backward_ms / backwards) / (forward_ms / forwards) : 0.0);
  const std::string backward_ratio = ratio_buf;
  std::ostringstream md;
  std::ofstream csv(out / "headline.csv");
  csv << "resource,baseline,oneadapt_beta,oneadapt_accuracy,saving,ci90_low,ci90_high,resamples_used\n";
  for (adapt::Resource res : {adapt::Resource::bytes, adapt::Resource::compute}) {
    const char* what = res == adapt::Resource::bytes ? "bandwidth" : "compute";
    md << "\n## " << (res == adapt::Resource::bytes ? "Bandwidth" : "Compute") << " saving of OneAdapt at equal accuracy\n\n"
       << (res == adapt::Resource::bytes
               ? "For each OneAdapt point, the baseline's bytes at the same mean accuracy, interpolated linearly on its "
                 "trade-off curve over beta (no extrapolation: outside its range there is no figure); saving = 1 - "
                 "OneAdapt's bytes / the baseline's. "
               : "The same with DNN work: inferred samples, plus profiling runs (AWStream, Chameleon) and backward passes "
                 "(OneAdapt), a backward pass counted as one forward (measured in this run's OneAdapt runs: one "
                 "backward pass took " + backward_ratio + "x the wall time of one inferred sample's forward pass). ")
       << "90% interval: 1000 bootstrap resamples of the intervals (the same resample for every run). Intervals left "
          "out as warm-up: "
       << warmup << ".\n\n| baseline | OneAdapt beta | accuracy | " << what << " saving | 90% interval |\n|---|---|---|---|---|\n";
    for (const auto& [policy, curve] : curves) {
      if (policy == "oneadapt" || policy == "static") continue;
      auto savings = adapt::savings_at_equal_accuracy(curves["oneadapt"], curve, warmup, 1000, 7, res);
      for (std::size_t k = 0; k < savings.size(); ++k) {
        char line[200];
        if (!savings[k]) {
          std::snprintf(line, sizeof line, "| %s | %g | - | outside the baseline's accuracy range | - |\n", policy.c_str(),
                        curves["oneadapt"].betas[k]);
          md << line;
          continue;
        }
        const auto& sv = *savings[k];
        std::snprintf(line, sizeof line, "| %s | %g | %.3f | %+.1f%% | [%+.1f%%, %+.1f%%] |\n", policy.c_str(), sv.beta, sv.accuracy,
                      100 * sv.saving, 100 * sv.low, 100 * sv.high);
        md << line;
        csv << what << ',' << policy << ',' << sv.beta << ',' << sv.accuracy << ',' << sv.saving << ',' << sv.low << ',' << sv.high
            << ',' << sv.resamples_used << '\n';
      }
    }
  }
  return md.str();
}

// Plots through gnuplot (PNG), with the data files and scripts beside them so that anyone can
// re-plot: accuracy vs bandwidth (one curve per policy over beta) and OneAdapt's knob
// trajectories (one panel per knob, one line per beta).
void write_plots(const std::filesystem::path& out, const std::vector<Row>& rows, const std::vector<KnobSpec>& ladders) {
  std::map<std::string, std::vector<const Row*>> by_policy;
  for (const auto& r : rows) by_policy[r.policy].push_back(&r);
  std::ofstream tradeoff(out / "tradeoff.gp");
  tradeoff << "set terminal pngcairo size 900,600 font 'Sans,11'\nset output '" << (out / "tradeoff.png").string() << "'\n"
           << "set title 'Accuracy vs bandwidth (each point: one beta)'\nset xlabel 'bytes sent, % of the reference configuration'\n"
           << "set ylabel 'accuracy (agreement with reference outputs)'\nset key bottom right\nset grid\nset termoption noenhanced\n";
  std::string plot = "plot ";
  for (const auto& [policy, list] : by_policy) {
    std::ofstream dat(out / ("tradeoff-" + policy + ".dat"));
    dat << "# bytes_percent accuracy beta\n";
    std::vector<const Row*> sorted = list;
    std::sort(sorted.begin(), sorted.end(), [](const Row* a, const Row* b) { return a->s.bytes_total < b->s.bytes_total; });
    for (const Row* r : sorted)
      dat << 100.0 * static_cast<double>(r->s.bytes_total) / static_cast<double>(std::max<std::uint64_t>(r->s.bytes_ref_total, 1)) << ' '
          << r->s.accuracy_mean << ' ' << r->beta << '\n';
    const bool hindsight = !list.front()->deployable;
    plot += std::string(plot == "plot " ? "" : ", ") + "'" + (out / ("tradeoff-" + policy + ".dat")).string() + "' using 1:2 with linespoints " +
            (hindsight ? "dt 2 " : "lw 2 ") + "pt 7 title '" + policy + (hindsight ? " (hindsight)" : "") + "'";
  }
  tradeoff << plot << '\n';
  tradeoff.close();

  std::vector<std::string> knobs;
  std::string lines;
  for (const auto& r : rows) {
    if (r.policy != "oneadapt") continue;
    const std::string dir = run_dir_name(r.policy, r.beta, false);
    std::ifstream rec(out / dir / "records.jsonl");
    std::ofstream dat(out / (dir + "-trajectory.dat"));
    std::string line;
    bool header = false;
    while (std::getline(rec, line)) {
      // One line per interval: t_start, then each knob's applied value.
      auto j = nlohmann::json::parse(line);
      if (!header) {
        dat << "# t_start";
        knobs.clear();
        for (const auto& [k, v] : j["config"].items()) knobs.push_back(k), dat << ' ' << k;
        for (const auto& k : knobs) dat << " accgrad_" << k;
        dat << '\n';
        header = true;
      }
      dat << j["t_start"].get<double>();
      // The applied value as its ladder position (0 = most expensive), so that named values
      // (codec) and numeric ones plot alike; the panel's tics carry the labels.
      for (const auto& k : knobs) {
        const double v = j["config"][k].get<double>();
        double pos = v;
        for (const auto& spec : ladders)
          if (spec.key == k)
            for (std::size_t i = 0; i < spec.values.size(); ++i)
              if (spec.values[i].number == v) pos = static_cast<double>(i);
        dat << ' ' << pos;
      }
      for (const auto& k : knobs) dat << ' ' << j["accgrad"].value(k, 0.0);
      dat << '\n';
    }
  }
  // One panel per knob, one line per OneAdapt beta, from the *-trajectory.dat files
  // (column 1: time; then the knobs' values; then their AccGrad).
  auto knob_panels = [&](const std::string& script, const std::string& title, const std::string& ylabel,
                         std::size_t first_column, const std::string& style) {
    std::ofstream gp(out / (script + ".gp"));
    gp << "set terminal pngcairo size 900," << 260 * knobs.size() << " font 'Sans,10'\nset output '"
       << (out / (script + ".png")).string() << "'\nset multiplot layout " << knobs.size() << ",1 title '" << title
       << "'\nset grid\nset key outside right\nset termoption noenhanced\n";
    const bool positions = ylabel.empty();  // the trajectories: ladder positions with value labels
    for (std::size_t k = 0; k < knobs.size(); ++k) {
      gp << "set ylabel '" << ylabel << knobs[k] << "'\n" << (k + 1 == knobs.size() ? "set xlabel 'time (s)'\n" : "unset xlabel\n");
      if (positions) {
        for (const auto& spec : ladders)
          if (spec.key == knobs[k]) {
            gp << "set yrange [" << static_cast<double>(spec.values.size()) - 0.5 << ":-0.5]\nset ytics (";
            for (std::size_t i = 0; i < spec.values.size(); ++i) gp << (i ? ", " : "") << "'" << spec.values[i].label << "' " << i;
            gp << ")\n";
          }
      } else {
        gp << "set autoscale y\nset ytics auto\n";
      }
      gp << "plot ";
      bool first = true;
      for (const auto& r : rows) {
        if (r.policy != "oneadapt") continue;
        gp << (first ? "" : ", ") << "'" << (out / (run_dir_name(r.policy, r.beta, false) + "-trajectory.dat")).string()
           << "' using 1:" << first_column + k << " with " << style << " title 'beta " << r.beta << "'";
        first = false;
      }
      gp << '\n';
    }
    gp << "unset multiplot\n";
  };
  if (!knobs.empty()) {
    knob_panels("trajectories", "OneAdapt: knob values applied per interval (top: most expensive)", "", 2, "steps lw 2");
    // AccGrad: the estimated gain of the normalised proxy per unit theta.
    knob_panels("accgrad", "OneAdapt: AccGrad per knob (proxy gain per unit theta, normalised)", "AccGrad ", 2 + knobs.size(),
                "linespoints lw 1.5 pt 7 ps 0.5");
  }
  for (const char* script : {"tradeoff.gp", "trajectories.gp", "accgrad.gp"}) {
    if (!std::filesystem::exists(out / script)) continue;
    std::string cmd = "gnuplot '" + (out / script).string() + "' 2>'" + (out / script).string() + ".log'";
    if (std::system(cmd.c_str()) != 0)
      std::cerr << "oneadapt: warning: gnuplot failed on " << (out / script).string() << " (is gnuplot installed? the data files are written)\n";
  }
  std::cout << "Plots: " << (out / "tradeoff.png").string() << ", " << (out / "trajectories.png").string() << ", "
            << (out / "accgrad.png").string() << '\n';
}

// The spatial knob's maps over time (maps.png): six intervals of one OneAdapt run (the beta
// nearest 0.3), each map drawn over a grey frame of the stream (the first interval's last
// frame), level 0 clear, higher levels increasingly red. Data files beside it for re-plotting.
void write_map_plot(const std::filesystem::path& out, const std::vector<Row>& rows, host::HostSource source) {
  const auto spatial = source.spatial();
  if (!spatial) return;
  const Row* run = nullptr;
  for (const auto& r : rows)
    if (r.policy == "oneadapt" && (!run || std::abs(std::log(r.beta / 0.3)) < std::abs(std::log(run->beta / 0.3)))) run = &r;
  if (!run) return;
  std::vector<std::pair<double, std::vector<int>>> maps;  // (t_start, levels)
  std::ifstream rec(run->dir / "records.jsonl");
  for (std::string line; std::getline(rec, line);) {
    auto j = nlohmann::json::parse(line);
    if (!j.contains("map")) return;
    std::vector<int> levels;
    std::stringstream rle(j["map"].get<std::string>());
    for (std::string part; std::getline(rle, part, ',');) {
      const auto star = part.find('*');
      levels.insert(levels.end(), std::stoul(part.substr(star + 1)), std::stoi(part.substr(0, star)));
    }
    maps.emplace_back(j["t_start"].get<double>(), levels);
  }
  if (maps.empty()) return;
  IntervalInfo info;
  if (!source.next_interval(info)) return;
  const at::Tensor G = source.original();
  at::Tensor grey = at::avg_pool2d(G[G.size(0) - 1].mean(0, true).unsqueeze(0), {4, 4}).squeeze(0).squeeze(0).contiguous();  // [H/4, W/4]
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
  const std::size_t panels = std::min<std::size_t>(6, maps.size());
  const int levels = static_cast<int>(spatial->levels.size());
  std::ofstream gp(out / "maps.gp");
  gp << "set terminal pngcairo size 1200,620 font 'Sans,10'\nset output '" << (out / "maps.png").string() << "'\n"
     << "set multiplot layout 2,3 title 'OneAdapt beta " << run->beta << ": per-tile quality map (clear: best level; red: level "
     << levels - 1 << ", the cheapest) over a frame'\nset termoption noenhanced\nunset key\nunset xtics\nunset ytics\n"
     << "set size ratio -1\nset yrange [*:*] reverse\n";
  for (std::size_t p = 0; p < panels; ++p) {
    const std::size_t i = panels == 1 ? 0 : p * (maps.size() - 1) / (panels - 1);
    const std::string dat = "maps-" + std::to_string(i) + ".dat";
    std::ofstream f(out / dat);
    for (int r = 0; r < spatial->rows; ++r) {
      for (int c = 0; c < spatial->cols; ++c) {
        const auto k = static_cast<std::size_t>(r * spatial->cols + c);
        const int level = k < maps[i].second.size() ? maps[i].second[k] : 0;
        const int alpha = levels > 1 ? 170 * level / (levels - 1) : 0;
        f << c * spatial->tile + spatial->tile / 2 << ' ' << r * spatial->tile + spatial->tile / 2 << " 255 40 0 " << alpha << '\n';
      }
      f << '\n';
    }
    gp << "set title 't = " << maps[i].first << " s'\nplot '" << (out / "maps-frame.dat").string()
       << "' using 1:2:3:4:5 with rgbimage, '" << (out / dat).string() << "' using 1:2:3:4:5:6 with rgbalpha\n";
  }
  gp << "unset multiplot\n";
  gp.close();
  const std::string cmd = "gnuplot '" + (out / "maps.gp").string() + "' 2>'" + (out / "maps.gp").string() + ".log'";
  if (std::system(cmd.c_str()) == 0) std::cout << "Maps: " << (out / "maps.png").string() << '\n';
}

}  // namespace

int run_compare(const Invocation& inv) {
  po::options_description opts = experiment_options();
  opts.add_options()("policies", po::value<std::string>()->default_value("oneadapt,best-static,oracle,oracle-split"),
                     "comma-separated: oneadapt, static, awstream, chameleon, reducto, roi-static, eaar, dds, best-static, oracle, "
                     "oracle-split")(
      "budget", po::value<std::size_t>()->default_value(3), "chameleon: configurations profiled per interval")(
      "warmup", po::value<std::size_t>()->default_value(0), "leave the first N intervals out of the savings statistic")(
      "profile-every", po::value<std::size_t>()->default_value(5), "awstream and reducto: profile every N intervals")(
      "betas", po::value<std::string>()->default_value("0.03,0.1,0.3,1"), "comma-separated betas (each policy runs at each)")(
      "targets", po::value<std::string>()->default_value("0.8,0.9,0.95,0.99"),
      "reducto: comma-separated accuracy targets (its points in place of betas)")(
      "grid", po::value<std::vector<std::string>>()->composing(),
      "KNOB=V1,V2,...: the values of a knob that the hindsight policies search (repeatable; a knob not named "
      "takes every value of its ladder)");
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "[--config FILE] [options]", opts, {}, vm, global)) return kOk;
  RunConfig c = load_run_config(vm.count("config") ? vm["config"].as<std::string>() : "", overrides_from_flags(vm));
  const auto policies = split_list(vm["policies"].as<std::string>());
  std::vector<double> betas;
  for (const auto& b : split_list(vm["betas"].as<std::string>())) {
    double v;
    if (!parse_number(b, v) || v < 0) throw UsageError("--betas: '" + b + "' is not a non-negative number");
    betas.push_back(v);
  }
  std::vector<double> targets;
  for (const auto& t : split_list(vm["targets"].as<std::string>())) {
    double v;
    if (!parse_number(t, v) || v <= 0 || v > 1) throw UsageError("--targets: '" + t + "' is not an accuracy in (0, 1]");
    targets.push_back(v);
  }
  adapt::Grid grid;
  if (vm.count("grid"))
    for (const auto& g : vm["grid"].as<std::vector<std::string>>()) {
      auto eq = g.find('=');
      if (eq == std::string::npos) throw UsageError("--grid '" + g + "': expected KNOB=V1,V2,...");
      grid.labels[g.substr(0, eq)] = split_list(g.substr(eq + 1));
    }
  for (const auto& p : policies)
    if (p != "oneadapt" && p != "static" && p != "awstream" && p != "chameleon" && p != "reducto" && p != "roi-static" &&
        p != "eaar" && p != "dds" && p != "best-static" && p != "oracle" && p != "oracle-split")
      throw UsageError("--policies: '" + p +
                       "' is not one of oneadapt, static, awstream, chameleon, reducto, roi-static, eaar, dds, best-static, oracle, "
                       "oracle-split");

  Experiment x(c, global);
  const std::filesystem::path out = c.run.out_dir;
  std::vector<Row> rows;
  // Grid policies (the hindsight ones and awstream) share one evaluation of the grid.
  bool hindsight = std::any_of(policies.begin(), policies.end(),
                               [](const std::string& p) { return p != "oneadapt" && p != "static" && p != "reducto" && p != "roi-static" && p != "eaar" && p != "dds"; });
  adapt::GridTable table;
  if (hindsight) {  // evaluated once, shared by every hindsight policy and beta
    auto source = x.source();
    auto task = x.task();
    const std::size_t size = grid.configurations(source.knobs()).size();  // validates the grid first
    std::cerr << "grid: " << size << " configurations per interval\n";
    table = adapt::evaluate_grid(source, task, grid, c.max_intervals, std::cerr);
  }
  for (const auto& p : policies) {
    const bool beta_free = p == "static";
    // roi-static: one run per CRF value of the base quality knob (the spatial knob must be on).
    std::vector<double> crfs;
    if (p == "roi-static" || p == "eaar" || p == "dds") {
      auto source = x.source();
      if (!source.spatial()) throw Error(Errc::invalid_argument, p + " needs a source with a spatial knob (video: modality.params.roi_tile)");
      for (const auto& k : source.knobs())
        if (k.key == "crf")
          for (const auto& v : k.values) crfs.push_back(v.number);
    }
    const std::vector<double>& points = p == "reducto" ? targets : p == "roi-static" || p == "eaar" || p == "dds" ? crfs : betas;
    for (std::size_t bi = 0; bi < (beta_free ? 1 : points.size()); ++bi) {
      const double beta = beta_free ? 0.0 : points[bi];
      adapt::RunSpec spec = c.run;
      const std::string dir = run_dir_name(p, beta, beta_free);
      spec.out_dir = out / dir;
      spec.oneadapt.beta = beta;
      Row row{p, beta, p == "oneadapt" || p == "static" || p == "awstream" || p == "chameleon" || p == "reducto" || p == "roi-static" || p == "eaar" ||
                  p == "dds",
              {}, spec.out_dir};
      if (p == "reducto") {
        auto source = x.source();
        auto task = x.task();
        spec.provenance = x.provenance(source);
        std::cerr << "== " << dir << '\n';
        row.s = adapt::run_reducto(source, task, adapt::ReductoSpec{beta, vm["profile-every"].as<std::size_t>()}, spec, std::cerr);
      } else if (p == "eaar" || p == "dds") {
        auto source = x.source();
        auto task = x.task();
        spec.provenance = x.provenance(source);
        std::cerr << "== " << dir << '\n';
        row.s = adapt::run_region_baseline(source, task, p, beta, spec, std::cerr);
      } else if (p == "roi-static") {
        auto source = x.source();
        auto task = x.task();
        spec.policy = "static";
        spec.spatial_map = "centre";
        spec.static_config["crf"] = KnobValue::of(beta).label;
        spec.provenance = x.provenance(source);
        std::cerr << "== " << dir << '\n';
        row.s = adapt::run_experiment(source, task, spec, std::cerr, false);
        row.s.policy = "roi-static";
      } else if (p == "oneadapt" || p == "static") {
        auto source = x.source();
        auto task = x.task();
        spec.policy = p;
        spec.provenance = x.provenance(source);
        std::cerr << "== " << dir << '\n';
        row.s = adapt::run_experiment(source, task, spec, std::cerr, false);
      } else {
        row.s = adapt::run_grid_policy(table, p, beta, spec, vm["profile-every"].as<std::size_t>(), vm["budget"].as<std::size_t>());
      }
      rows.push_back(row);
    }
  }

  std::ofstream csv(out / "compare.csv");
  csv << "policy,beta,deployable,intervals,accuracy_mean,bytes_total,bytes_ref_total,bytes_ratio,frames_inferred_total,"
         "compute_total,backward_passes,extra_renders,extra_forwards,final_config\n";
  std::vector<std::vector<std::string>> table_rows{{"policy", "beta", "accuracy", "bytes", "of reference", "compute", "backward",
                                                   "extra renders", "extra forwards", "deployable"}};
  for (const auto& r : rows) {
    const double ratio = r.s.bytes_ref_total ? static_cast<double>(r.s.bytes_total) / static_cast<double>(r.s.bytes_ref_total) : 0;
    csv << r.policy << ',' << r.beta << ',' << (r.deployable ? "yes" : "no") << ',' << r.s.intervals << ',' << r.s.accuracy_mean << ','
        << r.s.bytes_total << ',' << r.s.bytes_ref_total << ',' << ratio << ',' << r.s.frames_inferred_total << ','
        << r.s.compute_total << ',' << r.s.backward_passes << ',' << r.s.extra_renders << ',' << r.s.extra_forwards << ",\""
        << r.s.final_config << "\"\n";
    char acc[16], pct[16], beta[16];
    std::snprintf(acc, sizeof acc, "%.3f", r.s.accuracy_mean);
    std::snprintf(pct, sizeof pct, "%.1f%%", 100 * ratio);
    std::snprintf(beta, sizeof beta, "%g", r.beta);
    table_rows.push_back({r.policy, r.policy == "static" ? "-" : beta, acc, std::to_string(r.s.bytes_total), pct,
                          std::to_string(static_cast<long>(r.s.compute_total)), std::to_string(r.s.backward_passes),
                          std::to_string(r.s.extra_renders), std::to_string(r.s.extra_forwards), r.deployable ? "yes" : "no (hindsight)"});
  }
  std::ofstream md(out / "compare.md");
  md << "# oneadapt compare\n\nInput: " << x.uri << ", " << (rows.empty() ? 0 : rows[0].s.intervals) << " intervals. Accuracy: mean per-interval "
     << "metric against the reference configuration's outputs. Hindsight policies (best-static, oracle, oracle-split) choose "
     << "with knowledge of the outcomes and are not deployable; oracle-split chooses on even samples (frames) and is scored on odd "
     << "ones; with one sample per interval (audio) it cannot split and equals oracle. Reducto has no beta: its beta column holds its "
     << "accuracy target, roi-static's, eaar's and dds's the CRF of their base quality.\n\n| ";
  for (std::size_t i = 0; i < table_rows[0].size(); ++i) md << table_rows[0][i] << " | ";
  md << "\n|";
  for (std::size_t i = 0; i < table_rows[0].size(); ++i) md << "---|";
  md << '\n';
  for (std::size_t r = 1; r < table_rows.size(); ++r) {
    md << "| ";
    for (const auto& cell : table_rows[r]) md << cell << " | ";
    md << '\n';
  }
  const std::string savings = headline(rows, vm["warmup"].as<std::size_t>(), out);
  md << savings;
  md.close();
  std::cout << text::table(table_rows) << savings << "\nTables: " << (out / "compare.csv").string() << ", "
            << (out / "compare.md").string() << ", " << (out / "headline.csv").string() << '\n';
  write_plots(out, rows, x.source().knobs());
  write_map_plot(out, rows, x.source());
  return kOk;
}

}  // namespace oneadapt::cli
