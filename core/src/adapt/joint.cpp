#include "adapt/joint.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <memory>
#include <ostream>
#include <sstream>

#include "adapt/harness.hpp"
#include "adapt/policies/policies.hpp"
#include "text.hpp"

namespace oneadapt::adapt {

namespace fs = std::filesystem;
using json = nlohmann::json;
using text::human_bytes;

json JointSummary::to_json() const {
  json j = {{"policy", policy},
            {"status", status},
            {"intervals", intervals},
            {"budget", budget},
            {"warmup", warmup},
            {"scored_intervals", scored},
            {"intervals_over", over},
            {"bytes_sent", bytes_sent},
            {"bytes_budget", bytes_budget},
            {"price_final", price_final},
            {"accuracy_weighted", accuracy_weighted},
            {"accuracy_min", accuracy_min}};
  if (!error.empty()) j["error"] = error;
  json ss = json::array();
  for (const auto& s : streams)
    ss.push_back({{"name", s.name},
                  {"weight", s.weight},
                  {"intervals", s.intervals},
                  {"accuracy_mean", s.accuracy_mean},
                  {"bytes", s.bytes},
                  {"final_config", s.final_config},
                  {"floor_hits", s.floor_hits},
                  {"protect", s.protect}});
  j["streams"] = ss;
  return j;
}

JointSummary JointSummary::from_json(const json& j, const std::string& from) {
  try {
    JointSummary s;
    s.policy = j.at("policy").get<std::string>();
    s.status = j.at("status").get<std::string>();
    s.error = j.value("error", std::string());
    s.intervals = j.at("intervals").get<std::size_t>();
    s.budget = j.at("budget").get<std::string>();
    s.warmup = j.at("warmup").get<std::size_t>();
    s.scored = j.at("scored_intervals").get<std::size_t>();
    s.over = j.at("intervals_over").get<std::size_t>();
    s.bytes_sent = j.at("bytes_sent").get<double>();
    s.bytes_budget = j.at("bytes_budget").get<double>();
    s.price_final = j.at("price_final").get<double>();
    s.accuracy_weighted = j.at("accuracy_weighted").get<double>();
    s.accuracy_min = j.at("accuracy_min").get<double>();
    for (const auto& e : j.at("streams")) {
      Stream st;
      st.name = e.at("name").get<std::string>();
      st.weight = e.at("weight").get<double>();
      st.intervals = e.at("intervals").get<std::size_t>();
      st.accuracy_mean = e.at("accuracy_mean").get<double>();
      st.bytes = e.at("bytes").get<double>();
      st.final_config = e.at("final_config").get<std::string>();
      st.floor_hits = e.at("floor_hits").get<std::size_t>();
      st.protect = e.at("protect").get<double>();
      s.streams.push_back(std::move(st));
    }
    return s;
  } catch (const json::exception& e) {
    throw Error(Errc::corrupt_data, from + ": not a joint run's summary (" + e.what() + ")");
  }
}

namespace {

// A stream's floor (JointStream::floor): its recent proxies and bytes per interval and the factor
// on its price.
struct Floor {
  std::deque<double> proxies, bytes;
  double protect = 1.0;
  // One interval: a fall of the proxy against its recent median in an interval whose bytes were
  // cut under theirs (not the content's own fall at unchanged bytes) halves the stream's price;
  // otherwise the price recovers towards the link's. True on such a fall.
  bool observe(double proxy, double sent, double floor) {
    auto median = [](const std::deque<double>& d) {
      std::vector<double> v(d.begin(), d.end());
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2),
                       v.end());
      return v[v.size() / 2];
    };
    bool hit = false;
    if (proxies.size() >= 3) {
      const double mp = median(proxies);
      hit = mp > 1e-12 && proxy < floor * mp && sent < median(bytes);
    }
    protect = hit ? std::max(protect * 0.5, 1.0 / 64) : std::min(protect * 1.25, 1.0);
    proxies.push_back(proxy), bytes.push_back(sent);
    if (proxies.size() > 5) proxies.pop_front(), bytes.pop_front();
    return hit;
  }
};

// OneAdapt-joint's streams with a floor (a split baseline's stream runs its own budget rule).
bool floored(const JointStream& s) { return s.floor > 0 && !s.policy; }

}  // namespace

JointSummary run_joint(std::vector<JointStream>& streams, const JointOptions& options,
                       std::ostream& progress, bool tty) {
  if (streams.empty()) throw Error(Errc::invalid_argument, "a joint run needs at least one stream");
  double price_now = options.price;
  std::vector<std::shared_ptr<SharedPrice>> prices;
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec)
    throw Error(Errc::io,
                options.out_dir.string() + ": cannot create output directory: " + ec.message());
  fs::remove(options.out_dir / "joint-summary.json", ec);
  const fs::path joint_path = options.out_dir / "joint.jsonl";
  std::ofstream joint(joint_path, std::ios::trunc);
  if (!joint) throw Error(Errc::io, joint_path.string() + ": cannot write");

  // One harness and one policy per stream; the runs keep references to both.
  std::vector<std::unique_ptr<Harness>> harnesses;
  std::vector<std::unique_ptr<Policy>> policies;
  std::vector<std::unique_ptr<HarnessRun>> runs;
  std::vector<std::ostringstream> quiet(streams.size());  // per-stream progress: the joint line
  std::vector<bool> active(streams.size(), true);
  JointSummary sum;
  sum.budget = options.budget.describe();
  sum.warmup = options.warmup;
  std::vector<double> acc_sum(streams.size(), 0.0);
  sum.policy = options.label;
  for (std::size_t i = 0; i < streams.size(); ++i) {
    JointStream& s = streams[i];
    prices.push_back(std::make_shared<SharedPrice>());
    Policy* policy = s.policy;  // a split baseline: the stream's own policy on its own share
    RunLabel label = s.label;
    if (!policy) {
      if (s.spec.policy != "oneadapt")
        throw Error(Errc::invalid_argument,
                    "stream '" + s.name + "': policy '" + s.spec.policy +
                        "' cannot run jointly yet (only oneadapt shares the link's price)");
      PolicyArgs args;
      args.point = s.spec.oneadapt.beta;
      args.oneadapt = s.spec.oneadapt;
      args.oneadapt.shared = prices.back();
      args.oneadapt.weight = s.weight;
      // A floor also sets where the stream's own step control backs off (method.md section 9:
      // a fall of the proxy right after a cheaper step; 0.5 by default).
      if (s.floor > 0) args.oneadapt.proxy_drop = std::max(args.oneadapt.proxy_drop, s.floor);
      args.warm_start = s.spec.warm_start;
      args.spatial_map = s.spec.spatial_map;
      policies.push_back(make_oneadapt(args));
      policy = policies.back().get();
      label = RunLabel{"oneadapt-joint", true, "price", 0};
    }
    HarnessOptions ho;
    ho.max_intervals = s.spec.max_intervals;
    ho.out_dir = options.out_dir / s.name;
    ho.provenance = s.spec.provenance;
    ho.backward_weight = s.spec.backward_weight;
    ho.cache = s.cache;
    if (s.policy) ho.budget = s.budget, ho.budget_warmup = options.warmup;
    harnesses.push_back(s.inference ? std::make_unique<Harness>(*s.inference, ho)
                                    : std::make_unique<Harness>(*s.task, ho));
    runs.push_back(std::make_unique<HarnessRun>(*harnesses.back(), *s.source, *policy, label,
                                                quiet[i], false));
    JointSummary::Stream st;
    st.name = s.name;
    st.weight = s.weight;
    sum.streams.push_back(st);
  }

  // Rounds of `options.interval` seconds (the longest stream interval): each stream serves the
  // intervals that start within the round (a 10 Hz LiDAR stream ten, a 1 s camera one); the
  // budget of the round is the link's over it; the price moves once a round.
  std::vector<double> clock(streams.size(), 0.0);
  std::vector<double> last_bytes(streams.size(), 0.0);  // each stream's bytes in the last round
  std::vector<Floor> floors(streams.size());
  double last_total = 0;
  try {
    for (std::size_t round = 0;; ++round) {
      const double t = static_cast<double>(round) * options.interval;
      const double round_end = t + options.interval;
      const double budget = options.budget.bytes_over(t, options.interval);
      json line = {
          {"interval", round}, {"t_start", t}, {"budget_bytes", budget}, {"price", price_now}};
      json per = json::object();
      double total = 0;
      bool any = false;
      for (std::size_t i = 0; i < runs.size(); ++i) {
        double bytes = 0, acc = 0;
        int served = 0;
        while (active[i] && clock[i] < round_end - 1e-9) {
          // A byte costs the same in every stream: each prices its own interval's bytes against
          // the link's budget over that interval.
          prices[i]->beta = price_now * floors[i].protect;
          prices[i]->bytes_scale = options.budget.bytes_over(clock[i], streams[i].interval);
          // A cut, never a cap on growth: when the last round's streams would not fit margin x
          // this round's link (it just dropped, or the price has not caught up), each stream
          // projects onto its last bytes scaled down in proportion, per interval of the stream
          // (OneAdapt projects onto margin x its allocation, hence the margin is left out
          // here). Under the link nothing binds: the price alone moves bytes between streams.
          double allocation = 0;
          if (options.project && last_total > options.margin * budget && last_bytes[i] > 0 &&
              budget > 0)
            allocation = last_bytes[i] / last_total * prices[i]->bytes_scale;
          prices[i]->allocation = allocation;
          if (!runs[i]->step()) {
            active[i] = false;
            runs[i]->finish();
            break;
          }
          const IntervalRecord& r = *runs[i]->last();
          clock[i] = r.t_start + r.duration;
          bytes += static_cast<double>(r.charges.uplink());
          acc += r.accuracy;
          if (floored(streams[i])) {
            if (floors[i].observe(r.proxy, static_cast<double>(r.charges.uplink()),
                                  streams[i].floor))
              ++sum.streams[i].floor_hits;
            sum.streams[i].protect = floors[i].protect;
          }
          ++served;
          sum.streams[i].final_config = r.config.str();
        }
        if (served == 0) continue;
        any = true;
        total += bytes;
        const double accuracy = acc / served;
        per[streams[i].name] = {{"bytes", bytes},
                                {"accuracy", accuracy},
                                {"intervals", served},
                                {"config", sum.streams[i].final_config}};
        if (floored(streams[i])) per[streams[i].name]["protect"] = floors[i].protect;
        if (round >= options.warmup) {
          auto& ss = sum.streams[i];
          ss.intervals += static_cast<std::size_t>(served);
          acc_sum[i] += acc;
          ss.bytes += bytes;
        }
      }
      if (!any) break;
      ++sum.intervals;
      for (std::size_t i = 0; i < runs.size(); ++i)
        last_bytes[i] =
            per.contains(streams[i].name) ? per[streams[i].name]["bytes"].get<double>() : 0.0;
      last_total = total;
      const double target = options.margin * budget;
      line["total_bytes"] = total;
      line["over"] = total > budget;
      line["streams"] = per;
      if (round >= options.warmup) {
        ++sum.scored;
        sum.over += total > budget ? 1 : 0;
        sum.bytes_sent += total;
        sum.bytes_budget += budget;
      }
      // Dual ascent on the shared price; the next round sees it (a round of lag: each stream
      // learns before the others of its round have sent). With price_ahead the excess is taken
      // against the coming round's budget (the link's rate now, which the sources know as they
      // send): a drop of the link raises the price before the round that would exceed it.
      const double ahead = options.price_ahead ? options.margin * options.budget.bytes_over(
                                                                      round_end, options.interval)
                                               : target;
      if (ahead > 0) {
        // A known drop of the link scales the price by the drop at once.
        if (options.price_ahead && ahead < target) price_now *= target / ahead;
        const double e = std::clamp((total - ahead) / ahead, -1.0, 2.0);
        price_now = std::clamp(price_now * std::exp(options.eta * e), 1e-4, 1e3);
      }
      joint << line.dump() << '\n' << std::flush;
      char buf[200];
      std::snprintf(buf, sizeof buf, "joint t=%.0fs: %s of %s (%d streams), price %.3g", t,
                    human_bytes(total).c_str(), human_bytes(budget).c_str(),
                    static_cast<int>(std::count(active.begin(), active.end(), true)), price_now);
      if (!options.quiet) progress << buf << (tty ? "\r" : "\n") << std::flush;
    }
  } catch (const std::exception& e) {
    if (tty) progress << '\n';
    sum.status = "failed";
    sum.error = one_line(e.what());
    write_atomically(options.out_dir / "joint-summary.json", sum.to_json().dump(2) + "\n");
    throw;
  }
  if (tty) progress << '\n';
  double wsum = 0, wacc = 0, amin = 1e300;
  for (std::size_t i = 0; i < sum.streams.size(); ++i) {
    auto& s = sum.streams[i];
    if (s.intervals == 0) continue;  // ended within the warm-up: nothing scored, not a zero
    s.accuracy_mean = acc_sum[i] / static_cast<double>(s.intervals);
    wsum += s.weight;
    wacc += s.weight * s.accuracy_mean;
    amin = std::min(amin, s.accuracy_mean);
  }
  sum.accuracy_weighted = wsum > 0 ? wacc / wsum : 0.0;
  sum.accuracy_min = wsum > 0 ? amin : 0.0;
  sum.price_final = price_now;
  write_atomically(options.out_dir / "joint-summary.json", sum.to_json().dump(2) + "\n");
  return sum;
}

std::string joint_table(const JointSummary& s) {
  std::ostringstream o;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-14s %7s %9s %10s  %s\n", "stream", "weight", "accuracy",
                "bytes", "final configuration");
  o << buf;
  for (const auto& st : s.streams) {
    char acc[32] = "-";  // no interval after the warm-up
    if (st.intervals > 0) std::snprintf(acc, sizeof acc, "%.3f", st.accuracy_mean);
    std::snprintf(buf, sizeof buf, "%-14s %7.2f %9s %10s  %s\n", st.name.c_str(), st.weight, acc,
                  human_bytes(st.bytes).c_str(), st.final_config.c_str());
    o << buf;
  }
  std::snprintf(buf, sizeof buf,
                "\nlink: %s; after %zu warm-up intervals: %s sent of %s (%.0f %%), %zu of %zu "
                "intervals over\naccuracy (streams scored after the warm-up): weighted mean %.3f, "
                "minimum %.3f; final price %.3g\n",
                s.budget.c_str(), s.warmup, human_bytes(s.bytes_sent).c_str(),
                human_bytes(s.bytes_budget).c_str(),
                s.bytes_budget > 0 ? 100.0 * s.bytes_sent / s.bytes_budget : 0.0, s.over, s.scored,
                s.accuracy_weighted, s.accuracy_min, s.price_final);
  o << buf;
  std::string floors;
  for (const auto& st : s.streams)
    if (st.floor_hits > 0) {
      std::snprintf(buf, sizeof buf, "%s %zu (price x%.3g at the end)", st.name.c_str(),
                    st.floor_hits, st.protect);
      floors += (floors.empty() ? "" : ", ") + std::string(buf);
    }
  if (!floors.empty()) o << "floors hit: " << floors << '\n';
  return o.str();
}

}  // namespace oneadapt::adapt
