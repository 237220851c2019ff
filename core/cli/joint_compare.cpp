// `oneadapt compare --config JOINT.toml`: OneAdapt-joint against the ways of splitting one link
// between several streams (docs/joint.md, "Comparing"), every policy in the same harnesses,
// charged by the same accountants, on the same grids and the same link:
//   oneadapt-joint               one price for the link (dual ascent), each stream's AccGrad
//   equal-split[-awstream]       each stream its equal share of the link (re-split among the
//                                streams still running), with its own budget rule: OneAdapt's
//                                per-stream budget controller, AWStream- or Chameleon-style
//                                profiling
//   proportional-split[-...]     shares in proportion to each stream's reference bytes rate,
//                                measured on its first interval (what a source knows at start)
//   best-static-split            hindsight: one grid configuration per stream, the most accurate
//                                weighted mean whose total bytes over the run fit the link's
// The verdict pairs OneAdapt-joint's weighted mean accuracy per round with each policy's (90 %
// moving-block bootstrap of the difference) and says whether it was at no more bytes.
#include <unistd.h>

#include <cstdlib>

#include <algorithm>
#include <cmath>
#include <functional>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>
#include <chrono>

#include "adapt/grid.hpp"
#include "adapt/joint.hpp"
#include "adapt/savings.hpp"
#include "cli_common.hpp"
#include "engine/engine.hpp"
#include "run_config.hpp"

namespace po = boost::program_options;

namespace oneadapt::cli {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::vector<std::string>& joint_policies() {
  static const std::vector<std::string> names{"oneadapt-joint",
                                              "equal-split",
                                              "proportional-split",
                                              "equal-split-awstream",
                                              "proportional-split-awstream",
                                              "equal-split-chameleon",
                                              "proportional-split-chameleon",
                                              "best-static-split"};
  return names;
}

// One stream of the comparison: its experiment (plugins, models), its grid, and the cache its
// grid evaluation filled (every run of the stream shares it: references inferred once).
struct StreamSetup {
  std::string name;
  double weight = 1;
  double floor = 0;  // OneAdapt-joint's (the splits run without)
  std::unique_ptr<Experiment> x;
  CompareGrid grid;
  std::unique_ptr<adapt::OutcomeCache> cache;
  std::size_t intervals = 0;
  double interval = 1;  // seconds
  double end = 0;       // seconds: when the stream ends
  double ref_rate = 0;  // reference bytes per second on the first interval
  double backward_weight = 0;
  Configuration reference;
  adapt::RunSpec spec;
  std::size_t profile_every = 5, profile_budget = 3;  // the stream's [compare] table
  std::size_t max_intervals = 0;                      // input.max_intervals
};

// A stream's share of the link over time: s_i over the sum of the s_j of the streams still
// running (a stream that ends leaves its share to the others, as a splitter re-splits when a
// stream closes).
adapt::BudgetTrace share_trace(const adapt::BudgetTrace& link, const std::vector<StreamSetup>& ss,
                               const std::vector<double>& s, std::size_t i,
                               const std::string& rule) {
  std::vector<double> times;
  for (const auto& [t, kbps] : link.steps()) times.push_back(t);
  times.push_back(0);
  for (const auto& st : ss) times.push_back(st.end);
  std::sort(times.begin(), times.end());
  times.erase(std::unique(times.begin(), times.end()), times.end());
  std::ostringstream csv;
  csv << "t_seconds,kbps\n";
  double last = -1;
  for (double t : times) {
    double total = 0;
    for (std::size_t j = 0; j < ss.size(); ++j)
      if (ss[j].end > t + 1e-9) total += s[j];
    const bool running = ss[i].end > t + 1e-9;
    // After the stream ends its trace is never read; keep a positive rate for the parser.
    const double kbps = running && total > 0 ? link.kbps_at(t) * s[i] / total : last;
    if (kbps > 0 && kbps != last) csv << fmt("%.17g", t) << ',' << fmt("%.17g", kbps) << '\n';
    if (kbps > 0) last = kbps;
  }
  return adapt::BudgetTrace::parse(csv.str(), rule + " of the link for " + ss[i].name);
}

// Hindsight, judged as the others are: one grid configuration per stream, the one combination
// with the largest weighted mean accuracy per round (the metric every policy is paired on) among
// those whose bytes exceed the link's budget in at most 5 % of the scored rounds (the
// single-stream best-static's tolerance, docs/budgets.md); none: the fewest rounds over. Each
// stream's bytes are its grid outcomes (headers with its first interval).
std::vector<Configuration> best_static_split(const std::vector<StreamSetup>& ss,
                                             const adapt::BudgetTrace& link, double round,
                                             std::size_t warmup) {
  struct Option {
    std::vector<double> bytes, accuracy;  // per round (accuracy: the mean of its intervals)
    std::vector<char> present;
    double total = 0;
  };
  std::size_t rounds = 0;
  for (const auto& st : ss)
    rounds = std::max(rounds, static_cast<std::size_t>(std::ceil(st.end / round - 1e-9)));
  if (rounds == 0) throw Error(Errc::invalid_argument, "best-static-split: the streams have no round");
  std::vector<std::vector<Option>> options(ss.size());
  for (std::size_t i = 0; i < ss.size(); ++i)
    for (const auto& c : ss[i].grid.configs) {
      Option o{std::vector<double>(rounds, 0.0), std::vector<double>(rounds, 0.0),
               std::vector<char>(rounds, 0), 0};
      std::vector<int> n(rounds, 0);
      for (std::size_t k = 0; k < ss[i].intervals; ++k) {
        const auto* ref = ss[i].cache->reference(k);
        const adapt::Outcome* out = ss[i].cache->find(k, c);
        adapt::Outcome at_ref;
        if (!out && c == ss[i].reference) {  // the reference itself: not in the cache
          at_ref.bytes = ref->bytes, at_ref.header_bytes = ref->header_bytes;
          at_ref.accuracy = 1;
          out = &at_ref;
        }
        if (!out) throw Error(Errc::internal, "best-static-split: the grid was not evaluated");
        const auto r = std::min(rounds - 1, static_cast<std::size_t>(ref->t_start / round + 1e-9));
        const double b = static_cast<double>(out->bytes) +
                         (k == 0 ? static_cast<double>(out->header_bytes) : 0.0);
        o.bytes[r] += b, o.total += b;
        o.accuracy[r] += out->accuracy, ++n[r], o.present[r] = 1;
      }
      for (std::size_t r = 0; r < rounds; ++r)
        if (n[r] > 0) o.accuracy[r] /= n[r];
      options[i].push_back(std::move(o));
    }
  std::vector<double> budget(rounds);
  for (std::size_t r = 0; r < rounds; ++r)
    budget[r] = link.bytes_over(static_cast<double>(r) * round, round);
  std::size_t scored = 0;
  for (std::size_t r = warmup; r < rounds; ++r) ++scored;
  const auto tolerated = static_cast<std::size_t>(std::floor(0.05 * static_cast<double>(scored)));
  // Every combination (the grids are small: the headline's 9 x 27 x 54 = 13,122).
  std::vector<std::size_t> pick(ss.size(), 0), best = pick;
  bool best_fits = false;
  std::size_t best_over = rounds + 1;
  double best_value = -1, best_total = 0;
  std::vector<double> bytes(rounds), acc(rounds), w(rounds);
  while (true) {
    std::fill(bytes.begin(), bytes.end(), 0.0);
    std::fill(acc.begin(), acc.end(), 0.0);
    std::fill(w.begin(), w.end(), 0.0);
    double total = 0;
    for (std::size_t i = 0; i < ss.size(); ++i) {
      const Option& o = options[i][pick[i]];
      total += o.total;
      for (std::size_t r = 0; r < rounds; ++r) {
        bytes[r] += o.bytes[r];
        if (o.present[r]) acc[r] += ss[i].weight * o.accuracy[r], w[r] += ss[i].weight;
      }
    }
    std::size_t over = 0, n = 0;
    double value = 0;
    for (std::size_t r = warmup; r < rounds; ++r) {
      over += bytes[r] > budget[r] ? 1 : 0;
      if (w[r] > 0) value += acc[r] / w[r], ++n;
    }
    value = n ? value / static_cast<double>(n) : 0.0;
    const bool fits = over <= tolerated;
    const bool better =
        fits ? (!best_fits || value > best_value + 1e-12 ||
                (std::abs(value - best_value) <= 1e-12 && total < best_total))
             : (!best_fits && (over < best_over || (over == best_over && value > best_value)));
    if (better)
      best_fits = fits, best_over = over, best_value = value, best_total = total, best = pick;
    std::size_t i = 0;  // the next combination
    while (i < ss.size() && ++pick[i] == options[i].size()) pick[i++] = 0;
    if (i == ss.size()) break;
  }
  std::vector<Configuration> out;
  for (std::size_t i = 0; i < ss.size(); ++i) out.push_back(ss[i].grid.configs[best[i]]);
  return out;
}

// The per-round figures of one joint run (OUT/POLICY/joint.jsonl) after the warm-up.
struct JointResult {
  std::string policy;
  bool deployable = true;
  double scale = 1;  // of the link it ran on (the splits' frontiers)
  adapt::JointSummary summary;
  std::vector<std::size_t> rounds;     // the rounds after the warm-up in which a stream sent
  std::vector<double> round_accuracy;  // weighted mean over the streams that sent in the round
  std::vector<double> round_bytes, round_budget;
  double over_bytes = 0;  // the sum of the excesses over the link's budget
  std::size_t over_rounds = 0;
  // The accountant's other charges, summed over the streams (their summary.json): renderings
  // beyond the one sent per interval, backward passes, forwards for profiling.
  double extra_renders = 0, backward_passes = 0, profiling_forwards = 0;
};

JointResult read_joint(const fs::path& dir, const std::string& policy, bool deployable,
                       const adapt::JointSummary& s, const std::vector<StreamSetup>& ss,
                       std::size_t warmup) {
  JointResult r;
  r.policy = policy, r.deployable = deployable, r.summary = s;
  try {
    for (const auto& st : ss) {
      std::ifstream f(dir / st.name / "summary.json");
      if (!f) continue;
      const json sj = json::parse(f);
      const json& c = sj.at("charges");
      r.extra_renders += c.at("source_renders").get<double>() + c.at("server_renders").get<double>() -
                         sj.at("intervals").get<double>();
      r.backward_passes += c.at("backward_passes").get<double>();
      r.profiling_forwards += c.at("profiling_forwards").get<double>();
    }
    std::ifstream in(dir / "joint.jsonl");
    for (std::string line; std::getline(in, line);) {
      const json j = json::parse(line);
      const auto round = j.at("interval").get<std::size_t>();
      if (round < warmup) continue;
      r.rounds.push_back(round);
      double w = 0, a = 0;
      for (const auto& st : ss)
        if (j.at("streams").contains(st.name))
          w += st.weight, a += st.weight * j.at("streams").at(st.name).at("accuracy").get<double>();
      r.round_accuracy.push_back(w > 0 ? a / w : 0);
      r.round_bytes.push_back(j.at("total_bytes").get<double>());
      r.round_budget.push_back(j.at("budget_bytes").get<double>());
      if (r.round_bytes.back() > r.round_budget.back())
        r.over_bytes += r.round_bytes.back() - r.round_budget.back(), ++r.over_rounds;
    }
  } catch (const json::exception& e) {
    throw Error(Errc::corrupt_data, dir.string() + ": a joint run's files that do not read (" +
                                        e.what() + ")");
  }
  return r;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

double sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

// joint-compare.png: total bytes per round of every policy against the link (top), weighted mean
// accuracy per round (bottom).
void plot_compare(const fs::path& out, const std::vector<JointResult>& rs, double round) {
  for (const auto& r : rs) {
    std::ofstream dat(out / (r.policy + "-rounds.dat"));
    for (std::size_t k = 0; k < r.round_bytes.size(); ++k)
      dat << static_cast<double>(r.rounds[k]) * round << ' ' << r.round_budget[k] / 1e3 << ' '
          << r.round_bytes[k] / 1e3 << ' ' << r.round_accuracy[k] << '\n';
  }
  std::ofstream gp(out / "joint-compare.gp");
  gp << "set terminal pngcairo size 1000,700 font 'Sans,10'\nset output '"
     << (out / "joint-compare.png").string() << "'\nset termoption noenhanced\n"
     << "set multiplot layout 2,1 title 'One link, several streams: bytes per round (top) and "
        "weighted mean accuracy (bottom)'\nset grid\nset key outside right\n"
     << "set ylabel 'kB per round'\nunset xlabel\nplot '"
     << (out / (rs.front().policy + "-rounds.dat")).string()
     << "' using 1:2 with steps lw 3 lc rgb '#000000' title 'link budget'";
  for (std::size_t k = 0; k < rs.size(); ++k)
    gp << ", '" << (out / (rs[k].policy + "-rounds.dat")).string()
       << "' using 1:3 with lines lw 1.5 lt " << k + 1 << " title '" << rs[k].policy << "'";
  gp << "\nset ylabel 'weighted accuracy'\nset xlabel 'time, s'\nplot ";
  for (std::size_t k = 0; k < rs.size(); ++k)
    gp << (k ? ", '" : "'") << (out / (rs[k].policy + "-rounds.dat")).string()
       << "' using 1:4 with lines lw 1.5 lt " << k + 1 << " title '" << rs[k].policy << "'";
  gp << "\nunset multiplot\n";
  gp.close();
  gnuplot(out / "joint-compare.gp");
}

// joint-frontier.png: each split's runs on the scaled links (bytes as a share of the link,
// weighted accuracy), joined in order of bytes, and OneAdapt-joint's point.
void plot_frontier(const fs::path& out, const JointResult& ours,
                   const std::map<std::string, std::vector<JointResult>>& frontiers) {
  if (frontiers.empty()) return;
  const double link = std::max(sum(ours.round_budget), 1.0);
  std::ofstream gp(out / "joint-frontier.gp");
  gp << "set terminal pngcairo size 900,600 font 'Sans,10'\nset output '"
     << (out / "joint-frontier.png").string() << "'\nset termoption noenhanced\n"
     << "set title 'Each split on the link scaled (its frontier) and OneAdapt-joint'\nset grid\n"
     << "set key outside right\nset xlabel 'bytes sent, % of the link'\n"
     << "set ylabel 'weighted accuracy (mean over rounds)'\nplot ";
  std::size_t k = 0;
  for (const auto& [name, runs] : frontiers) {
    const fs::path dat = out / (name + "-frontier.dat");
    std::vector<std::pair<double, double>> pts;
    for (const auto& r : runs)
      pts.emplace_back(100 * sum(r.round_bytes) / link, mean(r.round_accuracy));
    std::sort(pts.begin(), pts.end());
    std::ofstream d(dat);
    for (const auto& [x, y] : pts) d << x << ' ' << y << '\n';
    gp << (k ? ", '" : "'") << dat.string() << "' using 1:2 with linespoints lw 1.5 pt 7 lt "
       << k + 1 << " title '" << name << "'";
    ++k;
  }
  const fs::path dat = out / "oneadapt-joint-point.dat";
  std::ofstream(dat) << 100 * sum(ours.round_bytes) / link << ' ' << mean(ours.round_accuracy)
                     << '\n';
  gp << ", '" << dat.string()
     << "' using 1:2 with points pt 3 ps 2.5 lw 2 lc rgb '#000000' title 'oneadapt-joint'\n";
  gp.close();
  gnuplot(out / "joint-frontier.gp");
}

// A joint comparison's streams as the coordinator and each server of a distributed one set
// them up: experiments loaded, grids set as ladders, nothing evaluated yet.
struct JointSetup {
  JointConfig j;
  std::vector<StreamSetup> ss;
  double round = 0;  // seconds: the longest stream interval
};

JointSetup joint_setup(const JointConfig& j, const GlobalOptions& global) {
  JointSetup S;
  S.j = j;
  for (const auto& s : j.streams) {
    StreamSetup st;
    st.name = s.name;
    st.weight = s.weight;
    st.floor = s.floor;
    st.x = std::make_unique<Experiment>(s.config, global);
    st.grid = set_compare_grid(*st.x, s.config.compare);
    st.cache = std::make_unique<adapt::OutcomeCache>();
    st.interval = s.config.interval;
    st.spec = s.config.run;
    st.max_intervals = s.config.max_intervals;
    if (!s.config.compare.profile_every.empty())
      st.profile_every = s.config.compare.profile_every.front();
    st.profile_budget = s.config.compare.profile_budget;
    st.reference = st.x->source().reference();
    S.round = std::max(S.round, st.interval);
    S.ss.push_back(std::move(st));
  }
  return S;
}

// Evaluates `configs` of the stream's grid over the whole stream into its cache (the references
// too); returns the stream's intervals.
std::size_t evaluate_stream(StreamSetup& st, const std::vector<Configuration>& configs,
                            std::ostream& progress = std::cerr) {
  adapt::HarnessOptions ho;
  ho.max_intervals = st.max_intervals;
  ho.cache = st.cache.get();
  auto src = st.x->source();
  auto task = st.x->task();
  adapt::Harness h(task, ho);
  st.intervals = h.evaluate(src, configs, progress);
  return st.intervals;
}

// What a split reads of a stream once its grid is known: its end and its reference rate.
void finish_stream(StreamSetup& st) {
  if (st.intervals == 0)
    throw Error(Errc::invalid_argument, st.x->uri + ": the stream has no interval");
  const auto* first = st.cache->reference(0);
  const auto* last = st.cache->reference(st.intervals - 1);
  if (!first || !last)
    throw Error(Errc::internal, "stream '" + st.name + "': the grid's references are missing");
  st.end = last->t_start + last->duration;
  // The payload's rate: a stream header is paid once, not at this rate.
  st.ref_rate = static_cast<double>(first->bytes) / std::max(first->duration, 1e-9);
}

// A run's folder under the comparison's output: the policy, and the link's scale when not 1.
std::string run_label(const std::string& name, double scale) {
  return scale == 1.0 ? name : name + "-x" + fmt("%g", scale);
}

// One joint run of a policy on the link scaled by `scale` (the splits' frontiers; 1 otherwise)
// into OUT/LABEL.
JointResult run_policy(JointSetup& S, const std::string& name, double scale, const fs::path& out,
                       std::ostream& progress, bool plots) {
  const JointConfig& j = S.j;
  std::vector<StreamSetup>& ss = S.ss;
  const double round = S.round;
  const std::string label = run_label(name, scale);
  const adapt::BudgetTrace link = scale == 1.0 ? *j.budget : j.budget->scaled(scale);
  progress << "== " << label << '\n';
  // Fresh sources and tasks for this run; the policies they run (split baselines).
  std::vector<host::HostSource> sources;
  std::vector<host::HostTask> tasks;
  std::vector<std::unique_ptr<adapt::Policy>> owned;
  std::vector<adapt::BudgetTrace> traces;
  sources.reserve(ss.size()), tasks.reserve(ss.size()), traces.reserve(ss.size());
  std::vector<Configuration> statics;
  if (name == "best-static-split") statics = best_static_split(ss, *j.budget, round, j.warmup);
  std::vector<double> shares(ss.size(), 1.0);
  if (name.rfind("proportional-split", 0) == 0)
    for (std::size_t i = 0; i < ss.size(); ++i) shares[i] = std::max(ss[i].ref_rate, 1.0);
  std::vector<adapt::JointStream> streams;
  for (std::size_t i = 0; i < ss.size(); ++i) {
    StreamSetup& st = ss[i];
    sources.push_back(st.x->source());
    tasks.push_back(st.x->task());
    adapt::JointStream js;
    js.name = st.name;
    js.weight = st.weight;
    js.floor = st.floor;
    js.source = &sources.back();
    js.task = &tasks.back();
    js.interval = st.interval;
    js.spec = st.spec;
    js.spec.provenance = st.x->provenance(sources.back());
    js.spec.provenance["grid"] = st.grid.line;
    js.spec.backward_weight = st.backward_weight;
    js.cache = st.cache.get();
    if (name != "oneadapt-joint") {
      // Configured as OneAdapt-joint's streams are (their [policy] tables), and as a
      // single-stream comparison configures the profiling baselines (their [compare] tables).
      adapt::PolicyArgs args;
      args.grid = st.grid.configs;
      args.cache = st.cache.get();
      args.intervals = st.intervals;
      args.warm_start = st.spec.warm_start;
      args.spatial_map = st.spec.spatial_map;
      args.period = st.profile_every;
      args.profile_budget = st.profile_budget;
      // The warm-up is in rounds; the offline-profiling prefix in this stream's intervals.
      args.prefix = static_cast<std::size_t>(
          std::ceil(static_cast<double>(j.warmup) * round / st.interval - 1e-9));
      args.budget_tolerance = 0.05;
      std::string inner = "oneadapt";
      if (name == "best-static-split") {
        inner = "static";
        for (const auto& k : statics[i].settings()) args.static_config[k.key] = k.value.label;
      } else {
        if (name.find("awstream") != std::string::npos) inner = "awstream";
        if (name.find("chameleon") != std::string::npos) inner = "chameleon";
        const std::string rule =
            name.rfind("equal", 0) == 0 ? "an equal share" : "a share by reference bytes";
        traces.push_back(share_trace(link, ss, shares, i, rule));
        js.budget = traces.back();
        args.budget = &traces.back();
        args.point = st.spec.oneadapt.beta;
        args.oneadapt = st.spec.oneadapt;
      }
      const auto& info = adapt::find_policy(inner);
      owned.push_back(info.make(args));
      js.policy = owned.back().get();
      js.label = {name + ":" + inner, name != "best-static-split", adapt::point_name(info.points),
                  args.point};
    }
    streams.push_back(std::move(js));
  }
  adapt::JointOptions o;
  o.budget = link;
  o.price = j.price, o.eta = j.eta, o.margin = j.margin, o.warmup = j.warmup;
  o.project = j.project;
  o.price_ahead = j.price_ahead;
  o.interval = round;
  o.label = label;
  o.quiet = true;
  o.out_dir = out / label;
  adapt::JointSummary s = adapt::run_joint(streams, o, progress, false);
  std::vector<std::string> names;
  for (const auto& st : ss) names.push_back(st.name);
  if (plots) plot_joint(out / label, names);
  progress << adapt::joint_table(s);
  JointResult r = read_joint(out / label, name, name != "best-static-split", s, ss, j.warmup);
  r.scale = scale;
  return r;
}

// The text files of a run's folder (joint.jsonl, joint-summary.json, each stream's records,
// summary and state), by path relative to it: what a server sends back for a run job.
json run_files(const fs::path& dir) {
  json files = json::object();
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const auto ext = e.path().extension();
    if (ext != ".json" && ext != ".jsonl") continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    files[fs::relative(e.path(), dir).generic_string()] = text.str();
  }
  return files;
}

// Writes a run job's files under DIR; a path that would leave DIR is the server's error.
void write_run_files(const fs::path& dir, const json& files, const std::string& from) {
  if (!files.is_object() || !files.contains("joint-summary.json") || !files.contains("joint.jsonl"))
    throw Error(Errc::corrupt_data, from + ": a run's files without joint.jsonl and joint-summary.json");
  std::error_code ec;
  for (const auto& [rel, text] : files.items()) {
    const fs::path p = fs::path(rel).lexically_normal();
    if (rel.empty() || p.is_absolute() || p.begin()->string() == ".." || !text.is_string() ||
        (p.extension() != ".json" && p.extension() != ".jsonl"))
      throw Error(Errc::corrupt_data,
                  from + ": a run's file '" + rel + "' outside its folder or not JSON");
    fs::create_directories((dir / p).parent_path(), ec);
    if (ec)
      throw Error(Errc::io, (dir / p).parent_path().string() +
                                ": cannot create output directory: " + ec.message());
    adapt::write_atomically(dir / p, text.get<std::string>());
  }
}

}  // namespace

int compare_joint(const std::string& file, const po::variables_map& vm,
                  const GlobalOptions& global) {
  for (const char* flag : {"betas", "targets", "grid", "max-grid", "warmup", "profile-every",
                           "profile-budget", "backward-weight"})
    if (vm.count(flag))
      throw UsageError(std::string("--") + flag +
                       " does not apply to a joint comparison: a stream's grid goes in its "
                       "[compare] table, the warm-up in [joint] (docs/joint.md)");
  std::vector<std::string> sets = overrides_from_flags(vm);
  if (vm.count("split-scales")) {
    std::string list;
    for (const auto& v : split_list(vm["split-scales"].as<std::string>())) {
      double x;
      if (!parse_number(v, x) || !std::isfinite(x) || x < 0.01 || x > 100)
        throw UsageError("--split-scales: '" + v + "' is not a scale in [0.01, 100]");
      list += (list.empty() ? "" : ",") + fmt("%.17g", x);
    }
    if (list.empty()) throw UsageError("--split-scales: expected at least one scale");
    sets.push_back("joint.split_scales=[" + list + "]");
  }
  // The second reading: at equal weighted accuracy, this fraction fewer bytes.
  const double target_saving =
      vm.count("target-saving") ? vm["target-saving"].as<double>() : 0.2;
  if (!(target_saving >= 0 && target_saving < 1))
    throw UsageError("--target-saving: a fraction in [0, 1)");
  JointConfig j = load_joint_config(file, sets);
  std::vector<std::string> policies = joint_policies();
  if (vm.count("policies")) {
    policies = split_list(vm["policies"].as<std::string>());
    for (const auto& p : policies)
      if (std::find(joint_policies().begin(), joint_policies().end(), p) ==
          joint_policies().end()) {
        std::string names;
        for (const auto& n : joint_policies()) names += (names.empty() ? "" : ", ") + n;
        throw UsageError("--policies: '" + p + "' is not a policy of a joint comparison (" + names +
                         ")");
      }
  }
  for (std::size_t k = 0; k < policies.size(); ++k)  // each once, in the order given
    policies.erase(std::remove(policies.begin() + static_cast<std::ptrdiff_t>(k) + 1,
                               policies.end(), policies[k]),
                   policies.end());
  if (std::find(policies.begin(), policies.end(), "oneadapt-joint") == policies.end())
    throw UsageError("--policies: a joint comparison needs oneadapt-joint (the paired one)");
  std::stable_partition(policies.begin(), policies.end(),
                        [](const std::string& p) { return p == "oneadapt-joint"; });
  const int resamples = vm.count("resamples") ? vm["resamples"].as<int>() : 1000;
  const std::size_t block = vm.count("block") ? vm["block"].as<std::size_t>() : 5;
  if (resamples < 100) throw UsageError("--resamples: at least 100");
  const bool needs_grid = std::any_of(policies.begin(), policies.end(), [](const std::string& p) {
    return p == "best-static-split" || p.find("awstream") != std::string::npos ||
           p.find("chameleon") != std::string::npos;
  });

  // Every stream: its grid as its ladders (every policy searches the same values), a backward
  // weight measured once, and the grid evaluated into its cache (references inferred once), here
  // or, with --nats, as jobs on the servers (docs/deployment.md, "Distributed compare").
  std::unique_ptr<net::NatsLink> link = compare_link(vm);  // connected before anything is loaded
  JointSetup S = joint_setup(j, global);
  std::vector<StreamSetup>& ss = S.ss;
  const double round = S.round;
  json backward_weights = json::array(), grids = json::array();
  for (auto& st : ss) {
    {
      auto src = st.x->source();
      auto task = st.x->task();
      IntervalInfo info;
      if (src.next_interval(info)) {
        Rendering r = src.render(src.reference());
        task.reset();
        st.backward_weight =
            adapt::measure_backward_weight(task, r.input.narrow(0, r.input.size(0) - 1, 1));
      }
    }
    backward_weights.push_back(st.backward_weight);
    grids.push_back(st.grid.line);
    std::cerr << "stream " << st.name << ": grid " << st.grid.line << '\n';
  }
  const auto wall0 = std::chrono::steady_clock::now();
  std::unique_ptr<split::JobPool> pool;
  if (link) {
    json setup{{"joint", true},
               {"config", fs::absolute(file).string()},
               {"sets", sets},
               {"cwd", fs::current_path().string()},
               {"grids", grids},
               {"backward_weights", backward_weights},
               {"needs_grid", needs_grid}};
    pool = std::make_unique<split::JobPool>(
        *link, setup,
        std::chrono::milliseconds(static_cast<std::int64_t>(vm["timeout"].as<double>() * 1000)));
    std::cerr << "compare: jobs on the servers at " << link->url() << '\n';
    // Each stream's grid dealt out over --grid-jobs jobs (its references come with each).
    std::vector<split::Job> jobs;
    std::vector<std::size_t> stream_of;
    for (std::size_t i = 0; i < ss.size(); ++i) {
      std::vector<std::size_t> idx;
      if (needs_grid)
        for (std::size_t k = 0; k < ss[i].grid.configs.size(); ++k)
          if (!(ss[i].grid.configs[k] == ss[i].reference)) idx.push_back(k);
      const std::size_t n =
          std::max<std::size_t>(1, std::min(vm["grid-jobs"].as<std::size_t>(), idx.size()));
      for (std::size_t q = 0; q < n; ++q) {
        split::Job job;
        job.meta = json{{"part", "joint-grid"}, {"stream", i}, {"configs", json::array()}};
        for (std::size_t k = q; k < idx.size(); k += n) job.meta["configs"].push_back(idx[k]);
        job.label = ss[i].name + " grid " + std::to_string(q + 1) + "/" + std::to_string(n) + " (" +
                    std::to_string(job.meta["configs"].size()) + " configurations)";
        jobs.push_back(std::move(job));
        stream_of.push_back(i);
      }
    }
    const auto done = pool->run(jobs, std::cerr);
    for (std::size_t q = 0; q < done.size(); ++q) {
      StreamSetup& st = ss[stream_of[q]];
      const std::size_t n = done[q].meta.value("intervals", std::size_t{0});
      if (st.intervals != 0 && n != st.intervals)
        throw Error(Errc::corrupt_data, "server " + done[q].server + " saw " + std::to_string(n) +
                                            " intervals of stream '" + st.name + "', another " +
                                            std::to_string(st.intervals) +
                                            ": every server must read the same input");
      st.intervals = n;
      merge_table(*st.cache, st.grid.configs, json::parse(split::inflate_text(done[q].payload)),
                  "server " + done[q].server);
    }
  } else {
    for (auto& st : ss) evaluate_stream(st, needs_grid ? st.grid.configs : std::vector<Configuration>{});
  }
  for (auto& st : ss) finish_stream(st);
  const fs::path out = j.out_dir;
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw Error(Errc::io, out.string() + ": cannot create output directory: " + ec.message());

  double end = 0;
  for (const auto& s : ss) end = std::max(end, s.end);
  const double link_bytes = j.budget->bytes_over(0, end);

  // Every run: each policy on the link, each deployable split also on the scaled links (its
  // frontier; scales that print alike share a folder: run once).
  struct Planned {
    std::string name;
    double scale;
  };
  std::vector<Planned> plan;
  for (const auto& name : policies) {
    if (name == "oneadapt-joint" || name == "best-static-split") {
      plan.push_back({name, 1.0});
      continue;
    }
    plan.push_back({name, 1.0});        // the link itself first, as its own table's row
    std::set<std::string> labels{"1"};  // split_scales holds 1, sorted
    for (double scale : j.split_scales)
      if (scale != 1.0 && labels.insert(fmt("%g", scale)).second) plan.push_back({name, scale});
  }
  std::vector<std::string> names;
  for (const auto& st : ss) names.push_back(st.name);
  std::vector<JointResult> runs;
  if (!pool) {
    for (const auto& p : plan) runs.push_back(run_policy(S, p.name, p.scale, out, std::cerr, true));
  } else {
    std::vector<std::set<std::size_t>> all(ss.size());
    json tables = json::array(), intervals = json::array();
    for (std::size_t i = 0; i < ss.size(); ++i) {
      for (std::size_t k = 0; k < ss[i].grid.configs.size(); ++k) all[i].insert(k);
      tables.push_back(cache_table(*ss[i].cache, ss[i].grid.configs, all[i]));
      intervals.push_back(ss[i].intervals);
    }
    const auto payload = split::deflate_text(tables.dump());
    std::vector<split::Job> jobs;
    for (const auto& p : plan)
      jobs.push_back({run_label(p.name, p.scale),
                      json{{"part", "joint-run"},
                           {"policy", p.name},
                           {"scale", p.scale},
                           {"intervals", intervals}},
                      payload});
    const auto done = pool->run(jobs, std::cerr);
    for (std::size_t q = 0; q < done.size(); ++q) {
      const std::string label = run_label(plan[q].name, plan[q].scale);
      const fs::path dir = out / label;
      write_run_files(dir, json::parse(split::inflate_text(done[q].payload)),
                      "server " + done[q].server + ", job " + label);
      plot_joint(dir, names);
      std::ifstream f(dir / "joint-summary.json");
      const adapt::JointSummary s =
          adapt::JointSummary::from_json(json::parse(f), (dir / "joint-summary.json").string());
      std::cerr << "== " << label << '\n' << adapt::joint_table(s);
      JointResult r = read_joint(dir, plan[q].name, plan[q].name != "best-static-split", s, ss,
                                 j.warmup);
      r.scale = plan[q].scale;
      runs.push_back(std::move(r));
    }
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    std::set<std::string> servers;
    for (const auto& e : pool->log()) servers.insert(e.value("server", std::string()));
    adapt::write_atomically(
        out / "jobs.json",
        json{{"nats", link->url()}, {"servers", servers}, {"wall_s", wall}, {"jobs", pool->log()}}
                .dump(2) +
            "\n");
    std::cerr << "compare: " << pool->log().size() << " jobs on " << servers.size()
              << " server(s) in " << fmt("%.1f", wall) << " s (" << (out / "jobs.json").string()
              << ")\n";
  }
  std::vector<JointResult> results;
  std::map<std::string, std::vector<JointResult>> frontiers;
  for (std::size_t q = 0; q < plan.size(); ++q) {
    if (plan[q].scale == 1.0) results.push_back(runs[q]);
    if (plan[q].name != "oneadapt-joint" && plan[q].name != "best-static-split")
      frontiers[plan[q].name].push_back(runs[q]);
  }
  for (auto& [name, f] : frontiers)  // in the order of the link's scale
    std::stable_sort(f.begin(), f.end(),
                     [](const JointResult& a, const JointResult& b) { return a.scale < b.scale; });

  // The tables: every policy's figures; OneAdapt-joint's accuracy against each, paired per round.
  std::vector<std::vector<std::string>> table{
      {"policy", "deployable", "weighted accuracy (rounds)", "weighted accuracy (streams)",
       "minimum stream accuracy", "bytes", "of the link", "rounds over", "bytes over the link",
       "extra renders / backward / profiling forwards"}};
  for (const auto& st : ss) table[0].push_back(st.name + " accuracy / bytes");
  std::ofstream csv(out / "joint-compare.csv");
  csv << "policy,deployable,rounds,accuracy_rounds,accuracy_weighted,accuracy_min,bytes,"
         "budget_bytes,rounds_over,bytes_over,extra_renders,backward_passes,profiling_forwards";
  for (const auto& st : ss) csv << ',' << st.name << "_accuracy," << st.name << "_bytes";
  csv << '\n';
  for (const auto& r : results) {
    const auto& s = r.summary;
    std::vector<std::string> row{
        r.policy,
        r.deployable ? "yes" : "no (hindsight)",
        fmt("%.3f", mean(r.round_accuracy)),
        fmt("%.3f", s.accuracy_weighted),
        fmt("%.3f", s.accuracy_min),
        text::human_bytes(s.bytes_sent),
        fmt("%.1f%%", s.bytes_budget > 0 ? 100 * s.bytes_sent / s.bytes_budget : 0),
        std::to_string(s.over) + " of " + std::to_string(s.scored),
        text::human_bytes(r.over_bytes),
        fmt("%.0f", r.extra_renders) + " / " + fmt("%.0f", r.backward_passes) + " / " +
            fmt("%.0f", r.profiling_forwards)};
    csv << r.policy << ',' << (r.deployable ? 1 : 0) << ',' << r.round_accuracy.size() << ','
        << mean(r.round_accuracy) << ',' << s.accuracy_weighted << ',' << s.accuracy_min << ','
        << s.bytes_sent << ',' << s.bytes_budget << ',' << s.over << ',' << r.over_bytes << ','
        << r.extra_renders << ',' << r.backward_passes << ',' << r.profiling_forwards;
    for (const auto& st : s.streams) {
      row.push_back((st.intervals ? fmt("%.3f", st.accuracy_mean) : std::string("-")) + " / " +
                    text::human_bytes(st.bytes));
      csv << ',' << st.accuracy_mean << ',' << st.bytes;
    }
    csv << '\n';
    table.push_back(row);
  }
  const JointResult& ours = results.front();
  std::string scales_text;
  for (double x : j.split_scales) scales_text += (scales_text.empty() ? "" : ", ") + fmt("%g", x);
  std::vector<std::vector<std::string>> diff{{"policy", "rounds paired", "accuracy difference",
                                              "90% interval", "bytes: ours / theirs",
                                              "over the link: ours / theirs", "verdict"}};
  std::ofstream dcsv(out / "joint-accuracy.csv");
  dcsv << "policy,rounds,difference,low,high,bytes_ratio,over_bytes_ours,over_bytes_theirs,"
          "verdict\n";
  for (std::size_t k = 1; k < results.size(); ++k) {
    const JointResult& r = results[k];
    // Paired by round: every run serves the same streams to their ends, so the rounds agree; a
    // round that one run has and the other has not is left out and counted.
    std::vector<double> d;
    std::size_t unpaired = 0;
    for (std::size_t a = 0, b = 0; a < ours.rounds.size() || b < r.rounds.size();) {
      if (b == r.rounds.size() || (a < ours.rounds.size() && ours.rounds[a] < r.rounds[b]))
        ++unpaired, ++a;
      else if (a == ours.rounds.size() || r.rounds[b] < ours.rounds[a])
        ++unpaired, ++b;
      else
        d.push_back(ours.round_accuracy[a++] - r.round_accuracy[b++]);
    }
    const auto [lo, hi] = adapt::block_bootstrap_mean(d, block, resamples);
    const double ratio = sum(r.round_bytes) > 0 ? sum(ours.round_bytes) / sum(r.round_bytes) : 0;
    // "At equal bytes": no more bytes in total and no more over the link than the policy.
    std::string verdict;
    if (d.size() < 2 * block)
      verdict = "undetermined (" + std::to_string(d.size()) + " rounds paired)";
    else if (lo > 0)
      verdict = ratio > 1.0 ? "more accurate, but with more bytes (not at equal bytes)"
                : ours.over_bytes > r.over_bytes
                    ? "more accurate, but further over the link (not at equal bytes)"
                    : "more accurate at no more bytes";
    else
      verdict = hi < 0 ? "less accurate" : "parity";
    if (unpaired) verdict += "; " + std::to_string(unpaired) + " rounds unpaired";
    diff.push_back({r.policy, std::to_string(d.size()), fmt("%+.4f", mean(d)),
                    "[" + fmt("%+.4f", lo) + ", " + fmt("%+.4f", hi) + "]", fmt("%.3f", ratio),
                    text::human_bytes(ours.over_bytes) + " / " + text::human_bytes(r.over_bytes),
                    verdict});
    dcsv << r.policy << ',' << d.size() << ',' << mean(d) << ',' << lo << ',' << hi << ',' << ratio
         << ',' << ours.over_bytes << ',' << r.over_bytes << ',' << verdict << '\n';
  }
  // On each deployable split's frontier (its runs on the scaled links): OneAdapt-joint's weighted
  // accuracy against the frontier's at its bytes, and its bytes against the frontier's at its
  // accuracy, both with the 90 % block bootstrap (the hull recomputed per resample), as a
  // single-stream comparison reads its baselines (docs/compare.md). Per round: the weighted
  // accuracy and the bytes sent; the cost's reference is the link's budget of the round.
  std::vector<std::vector<std::string>> front{
      {"split", "its runs: link x / bytes (of the link) / weighted accuracy", "saturated",
       "accuracy - frontier's at our bytes", "90% interval", "verdict",
       "bytes saved at our accuracy", "90% interval",
       "verdict (" + fmt("%.0f", 100 * target_saving) + "%)"}};
  std::ofstream fcsv(out / "joint-frontier.csv");
  fcsv << "policy,scale,bytes,budget_bytes,accuracy\n";
  fcsv << ours.policy << ",1," << sum(ours.round_bytes) << ',' << sum(ours.round_budget) << ','
       << mean(ours.round_accuracy) << '\n';
  std::ofstream gcsv(out / "joint-frontier-verdicts.csv");
  gcsv << "policy,saturated,gain,gain_low,gain_high,gain_verdict,saving,saving_low,saving_high,"
          "saving_verdict\n";
  bool gains_met = !frontiers.empty(), savings_met = !frontiers.empty();
  std::string gains_short, savings_short;
  for (const auto& [name, runs] : frontiers) {
    // The rounds OneAdapt-joint and every run of the split have (they serve the same streams,
    // so normally all of them); every series is built on those.
    std::vector<std::size_t> common = ours.rounds;
    for (const auto& r : runs) {
      std::vector<std::size_t> both;
      std::set_intersection(common.begin(), common.end(), r.rounds.begin(), r.rounds.end(),
                            std::back_inserter(both));
      common = std::move(both);
    }
    auto round_series = [&](const JointResult& r) {
      adapt::Series sr{r.policy + " x" + fmt("%g", r.scale), {}};
      for (std::size_t k = 0, a = 0, b = 0; k < common.size(); ++k) {
        while (ours.rounds[a] < common[k]) ++a;
        while (r.rounds[b] < common[k]) ++b;
        sr.intervals.push_back({r.round_accuracy[b], r.round_bytes[b], ours.round_budget[a]});
      }
      return sr;
    };
    adapt::Series mine = round_series(ours);
    std::vector<adapt::Series> theirs;
    std::string points;
    for (const auto& r : runs) {
      theirs.push_back(round_series(r));
      const double link_share = sum(r.round_bytes) / std::max(sum(ours.round_budget), 1.0);
      points += (points.empty() ? "" : "; ") + fmt("%g", r.scale) + " / " +
                fmt("%.1f%%", 100 * link_share) + " / " + fmt("%.3f", mean(r.round_accuracy));
      fcsv << name << ',' << r.scale << ',' << sum(r.round_bytes) << ','
           << sum(ours.round_budget) << ',' << mean(r.round_accuracy) << '\n';
    }
    // Saturated: its bytes stopped growing between its two largest links (at most 2 % more on
    // the largest), so more link would not buy it more bytes and its frontier is flat beyond
    // its costliest run. Measured, not judged against a fraction of the link: each stream's
    // controller aims under its share anyway, and a split whose small streams leave their
    // shares unused is still capped on the hungry one.
    // Its accuracy must have stopped too (at most 0.005 more): a split that still gained
    // accuracy on its last 2 % of bytes might gain more with more link (the headline's
    // equal-split-chameleon: 70.8 % -> 72.0 % of the link, 0.922 -> 0.932).
    bool saturated = false;
    if (runs.size() >= 2) {
      const JointResult &r1 = runs[runs.size() - 2], &r2 = runs.back();
      saturated = sum(r2.round_bytes) <= 1.02 * sum(r1.round_bytes) &&
                  mean(r2.round_accuracy) <= mean(r1.round_accuracy) + 0.005;
    }
    adapt::SavingOptions so;
    so.resamples = resamples;
    so.block = block;
    const auto g = adapt::gain_on_frontier(mine, theirs, so, saturated);
    const auto sv = adapt::saving_on_frontier(mine, theirs, so);
    const bool few = mine.intervals.size() < 2 * block;
    const std::string rounds_note =
        "undetermined (" + std::to_string(mine.intervals.size()) + " rounds paired)";
    double least_accurate = 1e300;
    for (const auto& r : runs) least_accurate = std::min(least_accurate, mean(r.round_accuracy));
    const std::string gv =
        few ? rounds_note
        : g ? adapt::verdict(*g)
            : "undetermined (OneAdapt-joint sent more than the split's costliest run, which was "
              "not saturated: give a larger --split-scales)";
    const std::string sv_v =
        few  ? rounds_note
        : sv ? adapt::verdict(*sv, target_saving)
        : mean(ours.round_accuracy) < least_accurate
            ? "not met (OneAdapt-joint less accurate than every run of the split)"
            : "undetermined (the split never reached OneAdapt-joint's accuracy)";
    if (gv != "met") gains_met = false, gains_short += (gains_short.empty() ? "" : ", ") + name;
    if (sv_v != "met")
      savings_met = false, savings_short += (savings_short.empty() ? "" : ", ") + name;
    front.push_back({name, points, saturated ? "yes" : "no",
                     g ? fmt("%+.4f", g->gain) + " (" + fmt("%.3f", g->frontier) + ")" : "-",
                     g ? "[" + fmt("%+.4f", g->low) + ", " + fmt("%+.4f", g->high) + "]" : "-", gv,
                     sv ? fmt("%.1f%%", 100 * sv->saving) : "-",
                     sv ? "[" + fmt("%.1f%%", 100 * sv->low) + ", " + fmt("%.1f%%", 100 * sv->high) +
                              "]"
                        : "-",
                     sv_v});
    auto cell = [](bool known, double v) { return known ? fmt("%.17g", v) : std::string(); };
    gcsv << name << ',' << (saturated ? 1 : 0) << ',' << cell(g.has_value(), g ? g->gain : 0) << ','
         << cell(g.has_value(), g ? g->low : 0) << ',' << cell(g.has_value(), g ? g->high : 0)
         << ",\"" << gv << "\"," << cell(sv.has_value(), sv ? sv->saving : 0) << ','
         << cell(sv.has_value(), sv ? sv->low : 0) << ',' << cell(sv.has_value(), sv ? sv->high : 0)
         << ",\"" << sv_v << "\"\n";
  }
  std::string target_line;
  if (!frontiers.empty()) {
    target_line =
        gains_met ? "met: more accurate than every deployable split's frontier at the same bytes"
        : savings_met
            ? "met: " + fmt("%.0f", 100 * target_saving) +
                  "% fewer bytes than every deployable split's frontier at the same accuracy"
            : "not met (at the same bytes, not shown more accurate than: " + gains_short +
                  "; at the same accuracy, not shown " + fmt("%.0f", 100 * target_saving) +
                  "% fewer bytes than: " + savings_short + ")";
  }
  plot_frontier(out, ours, frontiers);

  std::ostringstream header;
  header << "Link: " << j.budget->describe() << ", " << text::human_bytes(link_bytes)
         << " over the run. Streams:";
  for (const auto& st : ss)
    header << ' ' << st.name << " (weight " << st.weight << ", " << st.intervals << " intervals of "
           << st.interval << " s, grid " << st.grid.configs.size() << " configurations)";
  header << ". Rounds of " << round << " s; the first " << j.warmup
         << " rounds are a warm-up, left out of every figure. Weighted accuracy (rounds): the "
            "mean over rounds of the streams' weighted mean accuracy in the round (what the "
            "paired differences use); (streams): the weighted mean of each stream's mean.";
  std::ofstream md(out / "joint-compare.md");
  md << "# oneadapt compare, several streams under one link\n\n"
     << header.str() << "\n\n"
     << text::markdown_table(table)
     << "\n## OneAdapt-joint's weighted accuracy against each policy, paired per round\n\n"
        "The 90 % interval is a moving-block bootstrap (blocks of "
     << block << " rounds, " << resamples
     << " resamples) of the mean difference; \"more accurate\" needs its lower end above 0, "
        "\"at no more bytes\" OneAdapt-joint's total bytes and its bytes over the link no more "
        "than the policy's; fewer than two blocks of paired rounds: undetermined. One interval "
        "per baseline, no correction for the several comparisons.\n\n"
     << text::markdown_table(diff);
  if (!frontiers.empty())
    md << "\n## On each split's frontier (at equal bytes, at equal accuracy)\n\n"
          "Each deployable split also ran on the link scaled by "
       << scales_text
       << " (`--split-scales`, `[joint] split_scales`): its runs' (bytes, weighted accuracy) "
          "points and their upper hull (a time-shared mix of two runs is deployable) are its "
          "frontier. OneAdapt-joint's weighted accuracy minus the frontier's at OneAdapt-joint's "
          "bytes (the frontier's accuracy in brackets), and the bytes it saves against the "
          "frontier's at its accuracy; 90 % moving-block bootstrap intervals over the rounds, "
          "the hull recomputed per resample. Below the split's cheapest run that run's accuracy "
          "is used (in the split's favour); from its most accurate run up to its costliest, the "
          "most accurate run's; above its costliest run only when it is saturated (from its "
          "second largest link to its largest its bytes grew at most 2 % and its accuracy at "
          "most 0.005). \"met\" at equal "
          "bytes: the interval above 0; at equal accuracy: the interval's lower end above the "
          "target; undetermined when fewer than 95 % of the resamples could be read.\n\n"
       << text::markdown_table(front) << "\n**Target (issue 19): " << target_line << ".**\n";
  md.close();
  plot_compare(out, results, round);
  std::cout << header.str() << "\n\n"
            << text::table(table) << "\nOneAdapt-joint against each (paired per round):\n"
            << text::table(diff);
  if (!frontiers.empty())
    std::cout << "\nOn each split's frontier (link x " << scales_text << "):\n"
              << text::table(front) << "\nTarget (issue 19): " << target_line << '\n';
  std::cout << "\nTables: " << (out / "joint-compare.md").string() << ", "
            << (out / "joint-compare.csv").string() << ", " << (out / "joint-accuracy.csv").string()
            << ", " << (out / "joint-frontier.csv").string() << "\nPlots: "
            << (out / "joint-compare.png").string() << ", "
            << (frontiers.empty() ? std::string() : (out / "joint-frontier.png").string() + ", ")
            << (out / "POLICY" / "joint-bytes.png").string() << '\n';
  return kOk;
}

split::JobRunner joint_job_runner(const GlobalOptions& global, const std::string& device,
                                  std::function<bool(const fs::path&)> allowed) {
  struct State {
    std::map<std::string, std::unique_ptr<JointSetup>> setups;  // by comparison id
    std::vector<std::string> order;                             // oldest first
  };
  auto state = std::make_shared<State>();
  auto run = [state, global, device, allowed](const std::string& id, const json& setup,
                                              const json& work,
                                              const std::vector<std::uint8_t>& payload) {
    auto found = state->setups.find(id);
    if (found == state->setups.end()) {  // set up once per comparison; a failure keeps nothing
      JointConfig j = load_joint_config(
          setup.at("config").get<std::string>(), setup.at("sets").get<std::vector<std::string>>(),
          refuse_outside(allowed));
      j.device = device;
      for (auto& s : j.streams) {
        s.config.device = device;
        // Checked before anything is opened: a URL or a file outside is never read.
        const std::string uri = resolve_asset_uri(s.config.uri);
        if (!allowed(uri))
          throw Error(Errc::invalid_argument, uri + ": input of stream '" + s.name +
                                                  "' not under this server's --jobs-dir or "
                                                  "asset cache");
      }
      auto made = std::make_unique<JointSetup>(joint_setup(j, global));
      const json& grids = setup.at("grids");
      const json& weights = setup.at("backward_weights");
      if (grids.size() != made->ss.size() || weights.size() != made->ss.size())
        throw Error(Errc::invalid_argument,
                    "the config here has " + std::to_string(made->ss.size()) +
                        " streams, the comparison's " + std::to_string(grids.size()));
      for (std::size_t i = 0; i < made->ss.size(); ++i) {
        StreamSetup& st = made->ss[i];
        if (!allowed(st.x->uri))
          throw Error(Errc::invalid_argument, st.x->uri + ": input of stream '" + st.name +
                                                  "' not under this server's --jobs-dir or "
                                                  "asset cache");
        for (const auto& [role, m] : st.x->models) {
          const fs::path p = std::static_pointer_cast<engine::EngineModel>(m)->summary().path;
          if (!allowed(p))
            throw Error(Errc::invalid_argument, p.string() + ": model '" + role +
                                                    "' of stream '" + st.name +
                                                    "' not under this server's --jobs-dir or "
                                                    "asset cache");
        }
        if (st.grid.line != grids[i].get<std::string>())
          throw Error(Errc::invalid_argument, "stream '" + st.name + "': the grid here is '" +
                                                  st.grid.line + "', not the comparison's '" +
                                                  grids[i].get<std::string>() + "'");
        st.backward_weight = weights[i].get<double>();
      }
      found = state->setups.emplace(id, std::move(made)).first;
      state->order.push_back(id);
      while (state->order.size() > 2) {  // a server keeps the last two comparisons
        state->setups.erase(state->order.front());
        state->order.erase(state->order.begin());
      }
    }
    auto& S = found->second;
    std::ostringstream quiet;  // the runs' progress stays on the server
    split::JobDone done;
    const std::string part = work.at("part").get<std::string>();
    if (part == "joint-grid") {
      const auto i = work.at("stream").get<std::size_t>();
      if (i >= S->ss.size()) throw Error(Errc::invalid_argument, "a stream index past the config's");
      StreamSetup& st = S->ss[i];
      std::vector<Configuration> configs;
      std::set<std::size_t> which;
      for (const auto& k : work.at("configs")) {
        const auto c = k.get<std::size_t>();
        if (c >= st.grid.configs.size())
          throw Error(Errc::invalid_argument, "a grid index past stream '" + st.name + "''s grid");
        configs.push_back(st.grid.configs[c]);
        which.insert(c);
      }
      done.meta = json{{"intervals", evaluate_stream(st, configs, quiet)}};
      done.payload = split::deflate_text(cache_table(*st.cache, st.grid.configs, which).dump());
    } else if (part == "joint-run") {
      const json tables = json::parse(split::inflate_text(payload));
      const json& intervals = work.at("intervals");
      if (!tables.is_array() || tables.size() != S->ss.size() || intervals.size() != S->ss.size())
        throw Error(Errc::invalid_argument, "a run job whose tables are not one per stream");
      for (std::size_t i = 0; i < S->ss.size(); ++i) {
        StreamSetup& st = S->ss[i];
        merge_table(*st.cache, st.grid.configs, tables[i], "the comparison's table");
        st.intervals = intervals[i].get<std::size_t>();
        finish_stream(st);
      }
      const std::string name = work.at("policy").get<std::string>();
      if (std::find(joint_policies().begin(), joint_policies().end(), name) ==
          joint_policies().end())
        throw Error(Errc::invalid_argument, "'" + name + "' is not a policy of a joint comparison");
      const double scale = work.at("scale").get<double>();
      if (!(scale >= 0.01 && scale <= 100))
        throw Error(Errc::invalid_argument, "a link scale outside [0.01, 100]");
      const ScratchDir scratch;
      const fs::path& tmp = scratch.path();
      run_policy(*S, name, scale, tmp, quiet, false);
      done.payload = split::deflate_text(run_files(tmp / run_label(name, scale)).dump());
    } else {
      throw Error(Errc::invalid_argument, "a job part '" + part + "' this server does not know");
    }
    return done;
  };
  return [run](const std::string& id, const json& setup, const json& work,
               const std::vector<std::uint8_t>& payload) {
    try {
      return run(id, setup, work, payload);
    } catch (const json::exception& e) {
      throw Error(Errc::invalid_argument, std::string("a malformed joint job (") + e.what() + ")");
    }
  };
}

}  // namespace oneadapt::cli
