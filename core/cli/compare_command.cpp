// `oneadapt compare`: several policies at several betas on the same input, side by side.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "adapt/grid.hpp"
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
};

}  // namespace

int run_compare(const Invocation& inv) {
  po::options_description opts = experiment_options();
  opts.add_options()("policies", po::value<std::string>()->default_value("oneadapt,best-static,oracle,oracle-split"),
                     "comma-separated: oneadapt, static, awstream, best-static, oracle, oracle-split")(
      "profile-every", po::value<std::size_t>()->default_value(5), "awstream: profile the grid every N intervals")(
      "betas", po::value<std::string>()->default_value("0.03,0.1,0.3,1"), "comma-separated betas (each policy runs at each)")(
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
  adapt::Grid grid;
  if (vm.count("grid"))
    for (const auto& g : vm["grid"].as<std::vector<std::string>>()) {
      auto eq = g.find('=');
      if (eq == std::string::npos) throw UsageError("--grid '" + g + "': expected KNOB=V1,V2,...");
      grid.labels[g.substr(0, eq)] = split_list(g.substr(eq + 1));
    }
  for (const auto& p : policies)
    if (p != "oneadapt" && p != "static" && p != "awstream" && p != "best-static" && p != "oracle" && p != "oracle-split")
      throw UsageError("--policies: '" + p + "' is not one of oneadapt, static, awstream, best-static, oracle, oracle-split");

  Experiment x(c, global);
  const std::filesystem::path out = c.run.out_dir;
  std::vector<Row> rows;
  // Grid policies (the hindsight ones and awstream) share one evaluation of the grid.
  bool hindsight = std::any_of(policies.begin(), policies.end(), [](const std::string& p) { return p != "oneadapt" && p != "static"; });
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
    for (std::size_t bi = 0; bi < (beta_free ? 1 : betas.size()); ++bi) {
      const double beta = beta_free ? 0.0 : betas[bi];
      adapt::RunSpec spec = c.run;
      std::ostringstream dir;
      dir << p << (beta_free ? "" : "-beta" + std::to_string(beta).substr(0, 6));
      spec.out_dir = out / dir.str();
      spec.oneadapt.beta = beta;
      Row row{p, beta, p == "oneadapt" || p == "static" || p == "awstream", {}};
      if (p == "oneadapt" || p == "static") {
        auto source = x.source();
        auto task = x.task();
        spec.policy = p;
        spec.provenance = x.provenance(source);
        std::cerr << "== " << dir.str() << '\n';
        row.s = adapt::run_experiment(source, task, spec, std::cerr, false);
      } else {
        row.s = adapt::run_grid_policy(table, p, beta, spec, vm["profile-every"].as<std::size_t>());
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
     << "with knowledge of the outcomes and are not deployable; oracle-split chooses on even frames and is scored on odd "
     << "ones.\n\n| ";
  for (std::size_t i = 0; i < table_rows[0].size(); ++i) md << table_rows[0][i] << " | ";
  md << "\n|";
  for (std::size_t i = 0; i < table_rows[0].size(); ++i) md << "---|";
  md << '\n';
  for (std::size_t r = 1; r < table_rows.size(); ++r) {
    md << "| ";
    for (const auto& cell : table_rows[r]) md << cell << " | ";
    md << '\n';
  }
  std::cout << text::table(table_rows) << "\nTables: " << (out / "compare.csv").string() << ", " << (out / "compare.md").string() << '\n';
  return kOk;
}

}  // namespace oneadapt::cli
