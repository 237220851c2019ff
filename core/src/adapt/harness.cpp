#include "adapt/harness.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <deque>
#include <fstream>
#include <ostream>
#include <thread>

#include "adapt/inference.hpp"
#include "text.hpp"

namespace oneadapt::adapt {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<int> g_stop{0};

extern "C" void on_stop_signal(int sig) {
  request_stop(sig);
  std::signal(sig, SIG_DFL);  // a second one ends the process
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double compute_of(const Rendering& r, double frames) {
  return r.compute_units > 0 ? r.compute_units : frames;
}

// The first or second half of an interval's results: contiguous halves, so that a frame-rate
// knob's stale repeats fall into both (alternate samples would put every fresh frame of a
// half-rate configuration in one half and every repeat in the other).
std::vector<ResultPtr> half(const std::vector<ResultPtr>& v, bool second) {
  const std::size_t mid = v.size() / 2;
  return second ? std::vector<ResultPtr>(v.begin() + static_cast<std::ptrdiff_t>(mid), v.end())
                : std::vector<ResultPtr>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
}

bool all_best(const std::optional<QualityMap>& m) {
  return !m || std::all_of(m->level.begin(), m->level.end(), [](std::uint8_t l) { return l == 0; });
}

using text::human_bytes;

void progress_line(std::ostream& out, bool tty, std::size_t done, std::size_t total,
                   double elapsed_s, const std::string& detail) {
  const double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0;
  char head[96];
  if (tty) {
    std::string bar;
    if (total > 0) {
      const int width = 24;
      const int filled =
          static_cast<int>(width * static_cast<double>(done) / static_cast<double>(total));
      bar = "[" + std::string(static_cast<std::size_t>(filled), '=') +
            std::string(static_cast<std::size_t>(width - filled), ' ') + "] ";
      const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
      std::snprintf(head, sizeof head, "%zu/%zu  %.2f it/s  ETA %.0f s  ", done, total, rate, eta);
    } else {
      std::snprintf(head, sizeof head, "%zu  %.2f it/s  ", done, rate);
    }
    out << "\r\033[K" << bar << head << detail << std::flush;
  } else {
    std::snprintf(head, sizeof head, "[%zu%s] %.2f it/s ", done,
                  total ? ("/" + std::to_string(total)).c_str() : "", rate);
    out << head << detail << '\n' << std::flush;
  }
}

}  // namespace

void request_stop(int signal) { g_stop.store(signal); }
int stop_signal() { return g_stop.load(); }
void stop_on_signals() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

// --- OutcomeCache -----------------------------------------------------------------------------

const OutcomeCache::Reference* OutcomeCache::reference(std::size_t interval) const {
  return interval < refs_.size() && refs_[interval] ? &*refs_[interval] : nullptr;
}

void OutcomeCache::set_reference(std::size_t interval, Reference r) {
  if (refs_.size() <= interval) refs_.resize(interval + 1);
  refs_[interval] = std::move(r);
}

const Outcome* OutcomeCache::find(std::size_t interval, const Configuration& c) const {
  auto it = outcomes_.find({interval, c});
  return it == outcomes_.end() ? nullptr : &it->second;
}

void OutcomeCache::put(std::size_t interval, const Configuration& c, const Outcome& o) {
  outcomes_[{interval, c}] = o;
}

// --- IntervalContext --------------------------------------------------------------------------

const Rendering& IntervalContext::rendering(const Key& k, const QualityMap* map, double* ms) {
  if (auto it = renders_.find(k); it != renders_.end()) return it->second;
  const auto t0 = Clock::now();
  Rendering r = map ? source_.render_map(k.config, *map) : source_.render(k.config);
  if (ms) *ms += ms_since(t0);
  for (const auto& [stage, v] : r.timings_ms) stages_[stage] += v;
  if (!r.input.defined())
    throw Error(Errc::plugin_failure,
                source_.origin().describe() + " rendered no input for " + k.config.str());
  if (r.fresh.empty()) r.fresh.assign(static_cast<std::size_t>(r.input.size(0)), 1);
  return renders_.emplace(k, std::move(r)).first->second;
}

void IntervalContext::charge_source_render(const Key& k) {
  if (charged_.insert(k).second) acc_.source_render();
}

const Rendering& IntervalContext::render(const Configuration& c, const QualityMap* map) {
  const Key k{c, map && !all_best(*map) ? map_rle(*map) : ""};
  const Rendering& r = rendering(k, k.map.empty() ? nullptr : map, &probe_ms_);
  charge_source_render(k);
  return r;
}

const Rendering& IntervalContext::probe(const Configuration& c, std::size_t sample) {
  const Key k{c, ""};
  charge_source_render(k);
  if (auto it = renders_.find(k); it != renders_.end()) return it->second;
  if (auto it = probes_.find(k); it != probes_.end()) return it->second;
  const auto t0 = Clock::now();
  Rendering r = source_.probe(c, sample);
  probe_ms_ += ms_since(t0);
  for (const auto& [stage, v] : r.timings_ms) stages_[stage] += v;
  if (!r.input.defined())
    throw Error(Errc::plugin_failure,
                source_.origin().describe() + " probed no input for " + c.str());
  return probes_.emplace(k, std::move(r)).first->second;
}

std::uint64_t IntervalContext::reference_bytes() {
  if (!reference_sent_) charge_source_render(Key{stream_.reference, ""});
  return ref_.bytes;
}

void IntervalContext::ensure_reference_data() {
  if (reference_sent_ || reference_charged_) return;
  reference_charged_ = true;
  charge_source_render(Key{stream_.reference, ""});
  acc_.sent(stream_.reference, ref_.bytes, ref_.header_bytes, /*reference_only=*/true);
  acc_.forward(ref_.compute, /*profiling=*/true);
}

Outcome IntervalContext::score(const std::vector<ResultPtr>& results) const {
  Outcome o;
  o.accuracy = task_.accuracy(results, ref_.results);
  // A single sample (audio, LiDAR) cannot be split: both halves are the whole.
  o.accuracy_first = results.size() > 1
                         ? task_.accuracy(half(results, false), half(ref_.results, false))
                         : o.accuracy;
  o.accuracy_second = results.size() > 1
                          ? task_.accuracy(half(results, true), half(ref_.results, true))
                          : o.accuracy;
  return o;
}

Outcome IntervalContext::profile(const Configuration& c) {
  ensure_reference_data();
  if (c == stream_.reference) {
    Outcome o;
    o.bytes = ref_.bytes, o.header_bytes = ref_.header_bytes, o.frames = ref_.frames,
    o.compute = ref_.compute;
    o.accuracy = o.accuracy_first = o.accuracy_second = 1.0;
    return o;  // the reference data itself: already charged
  }
  if (auto it = served_.find(c); it != served_.end())
    return it->second;  // inferred when it was served
  Outcome o;
  if (const Outcome* cached = cache_ ? cache_->find(info_.index, c) : nullptr) {
    o = *cached;
  } else {
    const Rendering& r = rendering(Key{c, ""}, nullptr, &probe_ms_);
    Inferred inf = task_.infer(r, c, info_, false, false);
    o = score(inf.results);
    o.bytes = r.bytes, o.header_bytes = r.header_bytes, o.frames = inf.frames,
    o.compute = compute_of(r, inf.frames);
    if (cache_) cache_->put(info_.index, c, o);
  }
  acc_.server_render();
  acc_.forward(o.compute, /*profiling=*/true);
  served_[c] = o;  // profiled once per interval
  return o;
}

at::Tensor IntervalContext::saliency(const Served& served) {
  return served.saliency.defined() ? served.saliency : source_.saliency(served.dnn_grad);
}

void IntervalContext::feedback(std::uint64_t bytes) { acc_.feedback(bytes); }

Served IntervalContext::send(const Decision& d, int pass) {
  const std::size_t levels = stream_.spatial ? stream_.spatial->levels.size() : 0;
  if (d.map && !stream_.spatial)
    throw Error(Errc::invalid_argument,
                "a policy sent a quality map but the stream has no spatial knob");
  if (pass == 1) {
    acc_.configure(d.config);
    if (stream_.spatial)
      acc_.map(d.map ? *d.map : QualityMap::uniform(*stream_.spatial, 0), levels);
    reference_sent_ = d.config == stream_.reference && !d.keep && all_best(d.map);
  } else if (d.map) {
    acc_.feedback(map_update_bytes(*d.map, levels));  // a request within the interval
  }
  const Key k{d.config, all_best(d.map) ? "" : map_rle(*d.map)};
  const bool cacheable = k.map.empty() && !d.keep;
  Served s;
  // Replay: the outcome is known (an earlier run, the grid, or the reference itself).
  if (cacheable && !d.grad) {
    const Outcome* known = nullptr;
    Outcome ref_outcome;
    if (d.config == stream_.reference) {
      ref_outcome.bytes = ref_.bytes, ref_outcome.header_bytes = ref_.header_bytes,
      ref_outcome.frames = ref_.frames;
      ref_outcome.compute = ref_.compute;
      ref_outcome.accuracy = ref_outcome.accuracy_first = ref_outcome.accuracy_second = 1.0;
      known = &ref_outcome;
      s.results = ref_.results;
    } else if (cache_ && !d.need_results) {
      known = cache_->find(info_.index, d.config);
    }
    if (known) {
      s.outcome = *known;
      charge_source_render(k);
      const std::uint64_t charged = acc_.sent(d.config, known->bytes, known->header_bytes);
      if (d.profiling) acc_.note_reference(charged);
      acc_.forward(known->compute);
      served_[d.config] = *known;
      return s;
    }
  }
  const Rendering* r = nullptr;
  if (d.keep) {
    const auto t0 = Clock::now();
    selected_.push_back(source_.render_selected(d.config, *d.keep));
    render_ms_ += ms_since(t0);
    Rendering& sel = selected_.back();
    for (const auto& [stage, v] : sel.timings_ms) stages_[stage] += v;
    if (!sel.input.defined())
      throw Error(Errc::plugin_failure,
                  source_.origin().describe() + " rendered no input for " + d.config.str());
    if (sel.fresh.empty()) sel.fresh.assign(static_cast<std::size_t>(sel.input.size(0)), 1);
    acc_.source_render();
    r = &sel;
  } else {
    r = &rendering(k, k.map.empty() ? nullptr : &*d.map, &render_ms_);
    charge_source_render(k);
  }
  Inferred inf = task_.infer(*r, d.config, info_, d.grad, d.full_grad);
  forward_ms_ += inf.forward_ms;
  backward_ms_ += inf.backward_ms;
  s.outcome = score(inf.results);
  s.outcome.bytes = r->bytes, s.outcome.header_bytes = r->header_bytes,
  s.outcome.frames = inf.frames;
  s.outcome.compute = compute_of(*r, inf.frames);
  if (cache_ && cacheable && !cache_->find(info_.index, d.config))
    cache_->put(info_.index, d.config, s.outcome);
  if (cacheable) served_[d.config] = s.outcome;
  const std::uint64_t charged = acc_.sent(d.config, r->bytes, r->header_bytes);
  if (d.profiling) acc_.note_reference(charged);
  acc_.forward(s.outcome.compute);
  if (d.grad) {
    if (acc_.backward_weight() <= 0)
      acc_.set_backward_weight(task_.backward_weight(*r, d.config, info_, inf.grad_sample));
    acc_.backward();
  }
  s.rendering = r;
  s.results = std::move(inf.results);
  s.dnn_grad = inf.grad;
  s.saliency = inf.saliency;
  s.grad_sample = inf.grad_sample;
  s.proxy = inf.proxy;
  return s;
}

// --- Harness ----------------------------------------------------------------------------------

void Harness::begin_interval(IntervalContext& ctx, std::size_t index) {
  ctx.original_ = ctx.source_.original();
  const auto* cached = options_.cache ? options_.cache->reference(index) : nullptr;
  if (cached && cached->results_known) {
    ctx.ref_ = *cached;
    return;
  }
  // Scoring only: the reference rendering and its inference are never charged to the policy.
  const Rendering& r =
      ctx.rendering(IntervalContext::Key{ctx.stream_.reference, ""}, nullptr, nullptr);
  Inferred inf = task_.infer(r, ctx.stream_.reference, ctx.info_, false, false);
  ctx.ref_.bytes = r.bytes;
  ctx.ref_.header_bytes = r.header_bytes;
  ctx.ref_.frames = inf.frames;
  ctx.ref_.compute = compute_of(r, inf.frames);
  ctx.ref_.t_start = ctx.info_.t_start;
  ctx.ref_.duration = ctx.info_.duration;
  ctx.ref_.results = std::move(inf.results);
  ctx.ref_.samples = ctx.ref_.results.size();
  if (cached && (cached->bytes != ctx.ref_.bytes || cached->samples != ctx.ref_.samples))
    throw Error(Errc::corrupt_data,
                "interval " + std::to_string(index) + ": the reference here is " +
                    std::to_string(ctx.ref_.bytes) + " bytes in " +
                    std::to_string(ctx.ref_.samples) + " samples, but " +
                    std::to_string(cached->bytes) + " bytes in " +
                    std::to_string(cached->samples) +
                    " where the grid was evaluated: every server must read the same input");
  if (options_.cache) options_.cache->set_reference(index, ctx.ref_);
}

HarnessRun::HarnessRun(Harness& harness, host::HostSource& source, Policy& policy, RunLabel label,
                       std::ostream& progress, bool tty)
    : harness_(harness),
      source_(source),
      policy_(policy),
      label_(std::move(label)),
      progress_(progress),
      tty_(tty),
      stream_{source.knobs(), source.spatial(), source.reference()},
      acc_(harness.options_.backward_weight),
      write_(!harness.options_.out_dir.empty()),
      start_(Clock::now()) {
  const HarnessOptions& options = harness_.options_;
  policy_.begin(stream_);
  records_path_ = options.out_dir / "records.jsonl";
  if (write_) {
    std::error_code ec;
    fs::create_directories(options.out_dir, ec);
    if (ec)
      throw Error(Errc::io,
                  options.out_dir.string() + ": cannot create output directory: " + ec.message());
    // A new run never leaves an earlier run's summary beside its records.
    fs::remove(options.out_dir / "summary.json", ec);
    fs::remove(options.out_dir / "state.json", ec);
    records_.open(records_path_, std::ios::trunc);
    if (!records_) throw Error(Errc::io, records_path_.string() + ": cannot write");
  }
  progress_ << options.header << std::flush;
  sum_.policy = label_.policy;
  sum_.deployable = label_.deployable;
  sum_.point_name = label_.point_name;
  sum_.point = label_.point;
  if (options.budget) {
    sum_.budget.describe = options.budget->describe();
    sum_.budget.warmup = options.budget_warmup;
  }
  // The cheapest configuration (every ladder's last value): over budget there is infeasible.
  std::vector<std::size_t> last_index;
  for (const auto& k : stream_.knobs) last_index.push_back(k.values.size() - 1);
  cheapest_ = Configuration::at_indices(stream_.knobs, last_index);
  start_ = Clock::now();
  harness_.task_.reset();
}

HarnessRun::~HarnessRun() = default;

void HarnessRun::write_files() {
  sum_.wall_s = std::chrono::duration<double>(Clock::now() - start_).count();
  sum_.backward_weight = acc_.backward_weight();
  harness_.backward_weight_ = acc_.backward_weight();
  if (!write_) return;
  json j = sum_.to_json();
  j["options"] = policy_.options();
  j["provenance"] = harness_.options_.provenance;
  const fs::path& dir = harness_.options_.out_dir;
  write_atomically(dir / "summary.json", j.dump(2) + "\n");
  write_atomically(dir / "state.json", policy_.state().dump(2) + "\n");
}

bool HarnessRun::step() {
  if (done_ || ended_) return false;
  const HarnessOptions& options = harness_.options_;
  Inference& task = harness_.task_;
  if (options.max_intervals != 0 && sum_.intervals >= options.max_intervals)
    return !(ended_ = true);
  try {
    if (const int sig = stop_signal())
      throw Error(Errc::interrupted,
                  std::string("interrupted by ") + (sig == SIGINT    ? "SIGINT"
                                                    : sig == SIGTERM ? "SIGTERM"
                                                                     : "a signal"));
    auto t0 = Clock::now();
    IntervalContext ctx(source_, task, acc_, options.cache, stream_);
    if (!source_.next_interval(ctx.info_)) return !(ended_ = true);
    const double decode_ms = ms_since(t0);
    // Live pacing: the interval's data is complete at its end on the stream's clock.
    double lag_ms = -1;
    Clock::time_point next_complete;
    if (options.realtime) {
      const auto at = [&](double seconds) {
        return start_ +
               std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
      };
      const auto complete = at(ctx.info_.t_start + ctx.info_.duration);
      next_complete = at(ctx.info_.t_start + 2 * ctx.info_.duration);
      if (Clock::now() < complete) std::this_thread::sleep_until(complete);
      lag_ms =
          std::max(0.0, std::chrono::duration<double, std::milli>(Clock::now() - complete).count());
    }
    if (options.budget)
      ctx.budget_ = options.budget->bytes_over(ctx.info_.t_start, ctx.info_.duration);
    std::map<std::string, double> wall{{"decode", decode_ms}, {"render", 0},   {"forward", 0},
                                       {"probe", 0},          {"backward", 0}, {"update", 0},
                                       {"reference", 0}};
    t0 = Clock::now();
    harness_.begin_interval(ctx, sum_.intervals);
    wall["reference"] = ms_since(t0);
    acc_.begin_interval();
    t0 = Clock::now();
    Decision d = policy_.decide(ctx);
    double decide_ms = ms_since(t0);
    Served s = ctx.send(d, 1);
    int passes = 1;
    double frames = s.outcome.frames;
    Decision last = d;
    while (auto again = policy_.refine(ctx, s)) {
      if (++passes > 8)
        throw Error(Errc::internal,
                    "policy '" + label_.policy + "' asked for more than 8 passes in one interval");
      last = *again;
      s = ctx.send(last, passes);
      frames += s.outcome.frames;
    }
    const double probe_before = ctx.probe_ms_;
    t0 = Clock::now();
    policy_.learn(ctx, s);
    const double learn_ms = ms_since(t0) - (ctx.probe_ms_ - probe_before);
    task.end_interval(ctx.ref_.results);  // recurrent tasks carry the reference stream's state

    IntervalRecord rec;
    rec.interval = ctx.info_.index;
    rec.t_start = ctx.info_.t_start;
    rec.duration = ctx.info_.duration;
    rec.policy = label_.policy;
    rec.config = last.config;
    if (stream_.spatial)
      rec.map = map_rle(last.map ? *last.map : QualityMap::uniform(*stream_.spatial, 0));
    rec.passes = passes;
    rec.charges = acc_.take();
    rec.bytes_ref = ctx.ref_.bytes + (sum_.intervals == 0 ? ctx.ref_.header_bytes : 0);
    rec.frames_inferred = frames;
    rec.frames_ref = static_cast<double>(ctx.ref_.results.size());
    rec.compute_ref = ctx.ref_.compute;
    rec.accuracy = policy_.scored_accuracy(s.outcome);
    rec.accuracy_first = s.outcome.accuracy_first;
    rec.accuracy_second = s.outcome.accuracy_second;
    rec.proxy = s.proxy;
    rec.deployable = label_.deployable;
    if (ctx.budget_) {
      rec.budget_bytes = *ctx.budget_;
      rec.over_budget = static_cast<double>(rec.charges.uplink()) > *ctx.budget_;
      rec.budget_infeasible = rec.over_budget && last.config == cheapest_;
    }
    if (options.realtime) {
      rec.lag_ms = lag_ms;
      rec.late = Clock::now() > next_complete;
    }
    rec.trace = std::move(ctx.trace_);
    wall["render"] = ctx.render_ms_;
    wall["forward"] = ctx.forward_ms_;
    wall["backward"] = ctx.backward_ms_;
    wall["probe"] = ctx.probe_ms_;
    wall["update"] = decide_ms + learn_ms;
    rec.wall_ms = wall;
    rec.render_stages_ms = ctx.stages_;
    if (write_) records_ << rec.to_json().dump() << '\n' << std::flush;
    sum_.add(rec);

    char detail[240];
    std::snprintf(detail, sizeof detail, "t=%.0fs %s acc %.2f, %s (%.0f%% of ref)", rec.t_start,
                  rec.config.str().c_str(), rec.accuracy,
                  human_bytes(static_cast<double>(rec.charges.uplink())).c_str(),
                  100.0 * static_cast<double>(rec.charges.uplink()) /
                      static_cast<double>(std::max<std::uint64_t>(rec.bytes_ref, 1)));
    std::string line = label_.policy + " " + detail;
    if (ctx.budget_)
      line += ", budget " + human_bytes(*ctx.budget_) +
              (rec.budget_infeasible ? " (over: even the cheapest configuration exceeds it)"
               : rec.over_budget     ? " (over)"
                                     : "");
    progress_line(progress_, tty_, sum_.intervals, options.max_intervals,
                  std::chrono::duration<double>(Clock::now() - start_).count(), line);
    last_ = std::move(rec);
    return true;
  } catch (const std::exception& e) {
    done_ = true;
    if (tty_) progress_ << '\n';
    sum_.finish();
    const Errc code =
        dynamic_cast<const Error*>(&e) ? static_cast<const Error&>(e).code() : Errc::internal;
    sum_.status = code == Errc::interrupted ? "interrupted" : "failed";
    sum_.error = one_line(e.what());
    try {
      write_files();
    } catch (const std::exception&) {
      // The original error matters more than a summary that could not be written.
    }
    throw Error(code,
                sum_.error + " (stopped after " + std::to_string(sum_.intervals) +
                    " complete interval" + (sum_.intervals == 1 ? "" : "s") +
                    (write_ ? "; their records are in " + records_path_.string() : std::string()) +
                    ")");
  }
}

RunSummary HarnessRun::finish() {
  if (done_) throw Error(Errc::internal, "HarnessRun::finish after the run ended");
  done_ = true;
  if (tty_) progress_ << '\n';
  sum_.finish();
  write_files();
  return sum_;
}

RunSummary Harness::run(host::HostSource& source, Policy& policy, const RunLabel& label,
                        std::ostream& progress, bool tty) {
  HarnessRun run(*this, source, policy, label, progress, tty);
  while (run.step()) {
  }
  return run.finish();
}

std::size_t Harness::evaluate(host::HostSource& source, const std::vector<Configuration>& configs,
                              std::ostream& progress) {
  if (!options_.cache) throw Error(Errc::internal, "Harness::evaluate needs a shared cache");
  const StreamSpec stream{source.knobs(), source.spatial(), source.reference()};
  Accountant scratch(1.0);  // the grid is the ruler, not a policy: nothing here is charged
  task_.reset();
  std::size_t n = 0;
  while (options_.max_intervals == 0 || n < options_.max_intervals) {
    const auto t0 = Clock::now();
    IntervalContext ctx(source, task_, scratch, options_.cache, stream);
    if (!source.next_interval(ctx.info_)) break;
    begin_interval(ctx, n);
    std::size_t fresh = 0;
    for (const auto& c : configs) {
      if (c == stream.reference || options_.cache->find(n, c)) continue;
      const Rendering& r = ctx.rendering(IntervalContext::Key{c, ""}, nullptr, nullptr);
      Inferred inf = task_.infer(r, c, ctx.info_, false, false);
      Outcome o = ctx.score(inf.results);
      o.bytes = r.bytes, o.header_bytes = r.header_bytes, o.frames = inf.frames,
      o.compute = compute_of(r, inf.frames);
      options_.cache->put(n, c, o);
      ctx.renders_.erase(
          IntervalContext::Key{c, ""});  // the outcome is what is kept, not the tensors
      ++fresh;
    }
    task_.end_interval(ctx.ref_.results);
    ++n;
    char line[160];
    std::snprintf(
        line, sizeof line, "[grid %zu%s] t=%.0fs %zu configurations (%zu new) in %.1f s\n", n,
        options_.max_intervals ? ("/" + std::to_string(options_.max_intervals)).c_str() : "",
        ctx.info_.t_start, configs.size(), fresh, ms_since(t0) / 1000.0);
    progress << line << std::flush;
  }
  return n;
}

std::string summary_table(const RunSummary& s) {
  auto f = [](const char* fmt, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, v);
    return std::string(buf);
  };
  const double ref = static_cast<double>(s.bytes_ref_total);
  std::vector<std::vector<std::string>> rows{
      {"policy", "intervals", "accuracy", "bytes", "of reference", "frames inferred", "DNN work",
       "backward", "renders", "wall"},
      {s.policy, std::to_string(s.intervals), f("%.3f", s.accuracy_mean),
       human_bytes(static_cast<double>(s.charges.uplink())),
       f("%.1f%%", ref > 0 ? 100.0 * static_cast<double>(s.charges.uplink()) / ref : 0),
       f("%.0f", s.frames_inferred_total) + " / " + f("%.0f", s.frames_ref_total),
       f("%.1f%%", s.compute_ref_total > 0 ? 100.0 * s.charges.compute() / s.compute_ref_total : 0),
       std::to_string(s.charges.backward_passes),
       std::to_string(s.charges.source_renders + s.charges.server_renders), f("%.1f s", s.wall_s)},
      {"reference", std::to_string(s.intervals), "1.000", human_bytes(ref), "100.0%",
       f("%.0f", s.frames_ref_total) + " / " + f("%.0f", s.frames_ref_total), "100.0%", "0",
       std::to_string(s.intervals), "-"}};
  std::string out = text::table(rows);
  if (s.realtime.active)
    out += "real time: " + std::to_string(s.realtime.late) + " of " + std::to_string(s.intervals) +
           " intervals late (finished after the next one was complete), largest lag " +
           f("%.0f ms", s.realtime.lag_ms_max) + "\n";
  if (!s.budget.describe.empty()) {
    const auto& b = s.budget;
    out +=
        "budget: " + b.describe + "; over it in " + std::to_string(b.intervals_over) + " of " +
        std::to_string(b.intervals) + " intervals after a warm-up of " + std::to_string(b.warmup) +
        f(" (%.1f%%)", b.intervals ? 100.0 * static_cast<double>(b.intervals_over) /
                                         static_cast<double>(b.intervals)
                                   : 0.0) +
        ", " + human_bytes(b.bytes_over) + " over in total" +
        (b.intervals_infeasible ? "; " + std::to_string(b.intervals_infeasible) +
                                      " intervals where even the cheapest configuration exceeded it"
                                : std::string()) +
        "\n";
  }
  return out;
}

}  // namespace oneadapt::adapt
