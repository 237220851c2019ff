// Several streams under one budget (issue 19, docs/joint.md) on synthetic streams whose answer is
// known (tests/fixtures/plugins/shift.cpp): on fixture-shift, rec/norm at quality q is
// a (1 - q) with a = (s - 0.5) / s for a spot of brightness s, and the bytes are 1000 q^2, so
// under one price the objective sum_s a_s (1 - q_s) subject to sum_s 1000 q_s^2 <= margin x
// budget has an optimum found by enumerating the ladders; the joint run must settle around it.
// Also: a stream that ends mid-run leaves its bytes to the other; a budget under the cheapest
// configurations is reported, not a crash; the joint config's errors name the file and stream.
#include <ATen/ATen.h>
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../guard.hpp"
#include "../support.hpp"
#include "shift_support.hpp"
#include "adapt/joint.hpp"
#include "run_config.hpp"

using namespace oneadapt;
using namespace oneadapt::adapt;
namespace fs = std::filesystem;
using json = nlohmann::json;
using test_support::temp_dir;

namespace {

double quality_of(const json& config_str);

using test_support::shift_plugins;

host::HostSource spot(int intervals, double brightness) {
  host::ComponentSettings s;
  s.params = {{"intervals", std::to_string(intervals)},
              {"before", std::to_string(brightness)},
              {"after", std::to_string(brightness)}};
  return shift_plugins().open_source("fixture-shift", "", s, 1.0);
}

host::HostTask spots() {
  host::ComponentSettings s;
  s.params = {{"threshold", "0.55"}};  // every quality but the last keeps both spots detected
  return shift_plugins().create_task("fixture-spots", s, {});
}

struct Joint {
  std::vector<host::HostSource> sources;
  std::vector<host::HostTask> tasks;
  std::vector<JointStream> streams;
  fs::path out;
  JointSummary summary;
  std::vector<json> rounds;

  Joint(const std::vector<std::pair<int, double>>& specs, double kbps, const std::string& tag,
        const std::vector<double>& floors = {}) {
    sources.reserve(specs.size());
    tasks.reserve(specs.size());
    for (const auto& [n, b] : specs) {
      sources.push_back(spot(n, b));
      tasks.push_back(spots());
    }
    for (std::size_t i = 0; i < specs.size(); ++i) {
      JointStream s;
      s.name = "s" + std::to_string(i);
      s.source = &sources[i];
      s.task = &tasks[i];
      s.spec.backward_weight = 1.0;
      if (i < floors.size()) s.floor = floors[i];
      streams.push_back(s);
    }
    out = temp_dir(tag);
    JointOptions o;
    o.budget = BudgetTrace::constant(kbps);
    o.out_dir = out;
    std::ostringstream progress;
    summary = run_joint(streams, o, progress, false);
    std::ifstream in(out / "joint.jsonl");
    for (std::string line; std::getline(in, line);) rounds.push_back(json::parse(line));
  }
  ~Joint() {
    if (!std::getenv("KEEP_JOINT")) fs::remove_all(out);
  }

  // Mean quality of stream `name` over rounds [from, to).
  double mean_q(const std::string& name, std::size_t from, std::size_t to) const {
    double sum = 0;
    int n = 0;
    for (std::size_t r = from; r < to && r < rounds.size(); ++r) {
      const auto& st = rounds[r]["streams"];
      if (!st.contains(name)) continue;
      sum += quality_of(st[name]["config"]);
      ++n;
    }
    return n ? sum / n : -1;
  }
};

double quality_of(const json& config_str) {
  const std::string c = config_str;  // "quality=0.8"
  return std::stod(c.substr(c.find('=') + 1));
}

// The optimum of sum a_s (1 - q_s) with sum 1000 q_s^2 <= cap, by enumeration of the ladder.
std::pair<double, double> enumerated_optimum(double s1, double s2, double cap) {
  const double ladder[] = {1, 0.8, 0.6, 0.4, 0.2};
  const double a1 = (s1 - 0.5) / s1, a2 = (s2 - 0.5) / s2;
  double best = 1e9;
  std::pair<double, double> arg{0, 0};
  for (double q1 : ladder)
    for (double q2 : ladder) {
      if (1000 * (q1 * q1 + q2 * q2) > cap) continue;
      const double obj = a1 * (1 - q1) + a2 * (1 - q2);
      if (obj < best - 1e-12) best = obj, arg = {q1, q2};
    }
  return arg;
}

}  // namespace

TEST_CASE("two streams under one price settle around the enumerated optimum") {
  // 8 kbit/s = 1000 B an interval, aimed at 900 B. Spots of brightness 1.0 and 0.75: a = 0.5
  // and 1/3, so a byte buys more rec in the first stream. Enumerated: (0.8, 0.4), 800 B.
  const auto [q1, q2] = enumerated_optimum(1.0, 0.75, 900);
  CHECK(q1 == doctest::Approx(0.8));
  CHECK(q2 == doctest::Approx(0.4));
  Joint j({{40, 1.0}, {40, 0.75}}, 8.0, "joint-two");
  REQUIRE(j.rounds.size() == 40);
  const double m1 = j.mean_q("s0", 20, 40), m2 = j.mean_q("s1", 20, 40);
  MESSAGE("mean quality over the last 20 intervals: " << m1 << " and " << m2 << "; price "
                                                      << j.summary.price_final);
  CHECK(std::abs(m1 - q1) <= 0.2);  // within one ladder step of the optimum, on average
  CHECK(std::abs(m2 - q2) <= 0.2);
  CHECK(m1 > m2);  // the bytes went where they buy more
  // The link: on average within the budget after the warm-up, over it in few intervals.
  CHECK(j.summary.bytes_sent <= j.summary.bytes_budget);
  CHECK(j.summary.over <= j.summary.scored / 4);
  // No stream starved: the dim spot vanishes only at q = 0.2, visited in passing.
  CHECK(j.summary.accuracy_min >= 0.9);
  // Records per stream, as `oneadapt run` writes them, and the joint summary.
  CHECK(fs::exists(j.out / "s0" / "records.jsonl"));
  CHECK(fs::exists(j.out / "s1" / "summary.json"));
  CHECK(fs::exists(j.out / "joint-summary.json"));
  CHECK(j.rounds[5]["budget_bytes"].get<double>() == doctest::Approx(1000));
}

TEST_CASE("a stream that ends mid-run leaves its bytes to the others") {
  Joint j({{40, 0.75}, {15, 1.0}}, 8.0, "joint-end");
  REQUIRE(j.rounds.size() == 40);
  CHECK_FALSE(j.rounds[20]["streams"].contains("s1"));
  const double before = j.mean_q("s0", 8, 15), after = j.mean_q("s0", 30, 40);
  MESSAGE("stream 0's mean quality with the other stream: " << before << ", alone: " << after);
  CHECK(after > before + 0.1);
  CHECK(j.summary.streams[1].intervals == 15 - 3);  // after the warm-up
}

TEST_CASE("a floor protects its stream first, before the link") {
  // 4 kbit/s = 500 B an interval. The price alone trades the dim spot down to q = 0.2 now and
  // then (its pixels fall to the threshold: accuracy 0 there) since rec is blind to that cliff;
  // a floor of 0.8 on it backs it off at the first sharp fall of its proxy and halves its price,
  // so the bright stream gives up its bytes first.
  Joint free({{40, 1.0}, {40, 0.75}}, 4.0, "joint-nofloor");
  Joint floored({{40, 1.0}, {40, 0.75}}, 4.0, "joint-floor", {0.0, 0.8});
  REQUIRE(floored.rounds.size() == 40);
  auto collapses = [](const Joint& j) {
    int n = 0;
    for (std::size_t r = 3; r < j.rounds.size(); ++r)
      n += quality_of(j.rounds[r]["streams"]["s1"]["config"]) < 0.3 ? 1 : 0;
    return n;
  };
  const double dim_free = free.mean_q("s1", 10, 40), dim_floor = floored.mean_q("s1", 10, 40);
  const double bright_free = free.mean_q("s0", 10, 40), bright_floor = floored.mean_q("s0", 10, 40);
  MESSAGE("dim stream: mean quality " << dim_free << " -> " << dim_floor << ", " << collapses(free)
                                      << " -> " << collapses(floored)
                                      << " rounds at q = 0.2; bright: " << bright_free << " -> "
                                      << bright_floor);
  CHECK(collapses(free) >= 1);  // the cliff is reached without a floor (else nothing is tested)
  CHECK(collapses(floored) < collapses(free));
  CHECK(dim_floor > dim_free + 0.1);
  CHECK(bright_floor <= bright_free);
  CHECK(floored.summary.streams[1].accuracy_mean > free.summary.streams[1].accuracy_mean);
  CHECK(floored.summary.streams[1].floor_hits >= 1);
  CHECK(floored.summary.streams[0].floor_hits == 0);
  CHECK(floored.rounds[10]["streams"]["s1"].contains("protect"));
  CHECK_FALSE(floored.rounds[10]["streams"]["s0"].contains("protect"));
  CHECK(joint_table(floored.summary).find("floors hit: s1 ") != std::string::npos);
}

TEST_CASE("a budget under the cheapest configurations is reported, nothing crashes") {
  // 0.4 kbit/s = 50 B an interval; the cheapest pair costs 2 x 40 B.
  Joint j({{20, 1.0}, {20, 0.75}}, 0.4, "joint-under");
  REQUIRE(j.rounds.size() == 20);
  CHECK(j.summary.over == j.summary.scored);
  // Both go down to the cheapest value and back off one above it (step control: the proxy
  // halves at q = 0.2), never higher: the price is at its cap.
  for (const auto& r : {j.rounds.back(), j.rounds[j.rounds.size() - 3]}) {
    CHECK(quality_of(r["streams"]["s0"]["config"]) <= 0.4);
    CHECK(quality_of(r["streams"]["s1"]["config"]) <= 0.4);
  }
  CHECK(j.summary.price_final == doctest::Approx(1000));
  const std::string table = joint_table(j.summary);
  CHECK(table.find("17 of 17 intervals over") != std::string::npos);
}

TEST_CASE("joint config: streams from base configs, and its errors name the file and stream") {
  const fs::path dir = temp_dir("joint-config");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return dir / name;
  };
  write("cam.toml",
        "[input]\nmodality = \"video\"\nuri = \"a.avi\"\n[task]\nname = \"detection\"\n"
        "[policy]\nlr = 0.2\n");
  const auto good = write("joint.toml",
                          "[joint]\nkbps = 800\n[run]\nout = \"o\"\n"
                          "[[stream]]\nname = \"cam\"\nconfig = \"cam.toml\"\nweight = 2\n"
                          "[stream.policy]\nlr = 0.4\n"
                          "[[stream]]\nname = \"mic\"\n[stream.input]\nmodality = \"audio\"\n"
                          "uri = \"b.wav\"\n[stream.task]\nname = \"vad\"\n");
  CHECK(is_joint_config(good));
  CHECK_FALSE(is_joint_config(dir / "cam.toml"));
  JointConfig j = load_joint_config(good, {"input.max_intervals=7", "run.out=\"x\""});
  REQUIRE(j.streams.size() == 2);
  CHECK(j.streams[0].name == "cam");
  CHECK(j.streams[0].weight == 2);
  CHECK(j.streams[0].floor == 0.0);  // off unless set
  CHECK(j.streams[0].config.uri == "a.avi");
  CHECK(j.streams[0].config.run.oneadapt.lr == doctest::Approx(0.4));  // its table over the base
  CHECK(j.streams[1].config.modality == "audio");
  CHECK(j.streams[1].config.max_intervals == 7);
  CHECK(j.out_dir == "x");
  CHECK(j.budget->describe().find("800") != std::string::npos);
  const std::pair<std::string, std::string> bad[] = {
      {"[[stream]]\nname = \"a\"\n", "a joint run needs the shared link's budget"},
      {"[joint]\nkbps = 1\n[[stream]]\nname = \"a\"\n[[stream]]\nname = \"a\"\n",
       "stream[1].name: 'a' is used twice"},
      {"[joint]\nkbps = 1\n[[stream]]\nweight = 1\n", "stream[0].name: every stream needs a name"},
      {"[joint]\nkbps = 1\n[[stream]]\nname = \"a/b\"\n", "use letters, digits"},
      {"[joint]\nkbps = 1\nbogus = 2\n[[stream]]\nname = \"a\"\n", "bogus"},
      {"[joint]\nkbps = 1\n[[stream]]\nname = \"a\"\n[stream.budget]\nkbps = 5\n",
       "has no budget of its own"},
      {"[joint]\nkbps = 1\n[[stream]]\nname = \"a\"\nweight = -1\n", "stream[0].weight: must be > 0"},
      {"[joint]\nkbps = 1\n[[stream]]\nname = \"a\"\nfloor = 1.5\n",
       "stream[0].floor: must be in [0, 1)"},
      {"[joint]\nkbps = 1\n[[stream]]\nname = \"a\"\n[stream.policy]\nlr = -1\n",
       "[[stream]] 'a'"},
  };
  for (const auto& [text, why] : bad) {
    const auto f = write("bad.toml", text);
    CHECK_THROWS_WITH_AS(load_joint_config(f, {}), doctest::Contains(why.c_str()), Error);
    CHECK_THROWS_WITH_AS(load_joint_config(f, {}), doctest::Contains(f.string().c_str()), Error);
  }
  CHECK_THROWS_WITH_AS(load_joint_config(good, {"policy.beta=0.3"}),
                       doctest::Contains("cannot be set for a joint run from the command line"),
                       Error);
  fs::remove_all(dir);
}

TEST_CASE("a config's other files are shown to the check before they are read") {
  const fs::path dir = temp_dir("joint-config-check");
  std::ofstream(dir / "trace.csv") << "t_seconds,kbps\n0,500\n";
  std::ofstream(dir / "cam.toml") << "[input]\nuri = \"a.avi\"\n[task.models]\ndetector = \"m.pt\"\n"
                                     "[policy]\nwarm_start = \"s.json\"\n";
  std::ofstream(dir / "joint.toml") << "[joint]\ntrace = \"trace.csv\"\n"
                                       "[[stream]]\nname = \"cam\"\nconfig = \"cam.toml\"\n";
  std::vector<std::string> seen;
  auto record = [&seen](const fs::path& f, const std::string& what) {
    seen.push_back(what + " " + f.filename().string());
  };
  load_joint_config(dir / "joint.toml", {}, record);
  CHECK(seen == std::vector<std::string>{"joint.trace trace.csv", "stream[0].config cam.toml",
                                         "task.models.detector m.pt", "policy.warm_start s.json"});
  seen.clear();
  load_run_config(dir / "cam.toml", {"budget.trace=\"" + (dir / "trace.csv").string() + "\""},
                  record);
  CHECK(seen == std::vector<std::string>{"task.models.detector m.pt", "policy.warm_start s.json",
                                         "budget.trace trace.csv"});
  // A refusal is the check's own error, before the file is read (a missing trace is not
  // reported as missing).
  auto refuse = [](const fs::path& f, const std::string& what) {
    throw Error(Errc::invalid_argument, f.string() + ": " + what + " refused");
  };
  std::ofstream(dir / "plain.toml") << "[input]\nuri = \"a.avi\"\n";
  CHECK_THROWS_WITH_AS(
      load_run_config(dir / "plain.toml", {"budget.trace=\"/nonexistent.csv\""}, refuse),
      doctest::Contains("/nonexistent.csv: budget.trace refused"), Error);
  CHECK_THROWS_WITH_AS(load_joint_config(dir / "joint.toml", {}, refuse),
                       doctest::Contains("trace.csv: joint.trace refused"), Error);
  fs::remove_all(dir);
}
