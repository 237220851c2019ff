// Reducto-style on-source frame filtering (Li et al., SIGCOMM 2020), video only, on a tuned
// static encoding. Its point is an accuracy target t.
//   1. The encoding: over the offline prefix (the unscored warm-up; without one, the first
//      interval) the source sends the reference quality and the server profiles the grid; the
//      encoding is the cheapest grid configuration whose mean accuracy there reaches
//      1 - (1 - t) / 2 (half of the allowed loss goes to encoding, half to filtering).
//   2. The filter: every `period` intervals the source sends every frame at that encoding and
//      the server picks, among the interval's observed differences, the feature (pixel, area,
//      edge) and threshold that skip the most frames while the reused results still agree
//      with the unfiltered ones at t / (the encoding's accuracy) (capped at 1); the camera is
//      told the new feature and threshold (8 bytes). Between profilings the camera sends only
//      the frames whose feature against the last sent frame exceeds the threshold, encoded as
//      one GOP of the kept frames (Source::render_selected), so it saves bytes as well as DNN work.
// Left out: Reducto's offline-trained mapping from content to threshold (here: re-profiled
// online), and its per-query accuracy models.
#include <ATen/ATen.h>

#include <limits>

#include "adapt/policies/policies.hpp"
#include "adapt/reducto.hpp"

namespace oneadapt::adapt {

namespace {

using json = nlohmann::json;

class Reducto final : public Policy {
 public:
  explicit Reducto(const PolicyArgs& a)
      : target_(a.point), period_(a.period), prefix_(a.prefix), grid_(a.grid) {
    if (!(target_ > 0 && target_ <= 1))
      throw Error(Errc::invalid_argument, "reducto: the accuracy target must be in (0, 1]");
    if (period_ == 0)
      throw Error(Errc::invalid_argument, "reducto: the profiling period must be >= 1 interval");
  }

  void begin(const StreamSpec& stream) override {
    stream_ = stream;
    encoding_ = stream.reference;
    if (grid_.empty()) grid_.push_back(stream.reference);
  }

  Decision decide(IntervalContext& ctx) override {
    const at::Tensor& G = ctx.original();
    if (G.dim() != 4 || G.size(1) != 3)
      throw Error(
          Errc::unsupported,
          "reducto: filters video frames; this modality's samples are not images [T,3,H,W]");
    const std::size_t i = ctx.info().index;
    phase_ = i < std::max<std::size_t>(prefix_, 1)                    ? Phase::encoding
             : (i - std::max<std::size_t>(prefix_, 1)) % period_ == 0 ? Phase::threshold
                                                                      : Phase::filter;
    Decision d;
    if (phase_ == Phase::encoding) {
      d.config = stream_.reference;
      d.profiling = true;
    } else if (phase_ == Phase::threshold) {
      d.config = encoding_;
      d.need_results = true;  // served data at its own encoding, not reference-quality data
    } else {
      std::vector<at::Tensor> small;
      for (int64_t t = 0; t < G.size(0); ++t) small.push_back(grey_small(G[t]));
      d.config = encoding_;
      d.keep = keep_small(feature_, threshold_, small);
      std::size_t kept = 0;
      for (auto k : *d.keep) kept += k;
      ctx.trace()["frames_sent"] = kept;
    }
    ctx.trace()["phase"] = phase_ == Phase::encoding    ? "profiling encoding"
                           : phase_ == Phase::threshold ? "profiling threshold"
                                                        : "filtering";
    return d;
  }

  void learn(IntervalContext& ctx, const Served& served) override {
    if (phase_ == Phase::encoding) {
      const double ref_bytes = static_cast<double>(ctx.profile(stream_.reference).bytes);
      for (const auto& c : grid_) {
        const Outcome o = ctx.profile(c);
        auto& e = profile_[c];
        e.first += o.accuracy,
            e.second += ref_bytes > 0 ? static_cast<double>(o.bytes) / ref_bytes : 0;
      }
      ++profiled_;
      // The cheapest configuration reaching the encoding's share of the target.
      const double need = 1.0 - (1.0 - target_) / 2.0;
      double best_cost = std::numeric_limits<double>::infinity();
      encoding_ = stream_.reference;
      encoding_accuracy_ = 1.0;
      for (const auto& [c, e] : profile_) {
        const double acc = e.first / profiled_, cost = e.second / profiled_;
        if (acc >= need && cost < best_cost)
          best_cost = cost, encoding_ = c, encoding_accuracy_ = acc;
      }
      ctx.trace()["encoding"] = encoding_.str();
      return;
    }
    if (phase_ != Phase::threshold) return;
    // Every frame was sent at the encoding: choose the filter on its own results.
    const at::Tensor& G = ctx.original();
    std::vector<at::Tensor> small;
    for (int64_t t = 0; t < G.size(0); ++t) small.push_back(grey_small(G[t]));
    const double need = std::min(1.0, target_ / std::max(encoding_accuracy_, 1e-9));
    std::size_t best_kept = small.size() + 1;
    std::string feature = feature_;
    double threshold = threshold_;
    for (const auto& f : reducto_features()) {
      std::vector<double> candidates{0.0};
      for (std::size_t t = 1; t < small.size(); ++t)
        candidates.push_back(feature_of_small(f, small[t - 1], small[t]));
      for (double th : candidates) {
        const auto k = keep_small(f, th, small);
        std::size_t kept = 0;
        for (auto v : k) kept += v;
        if (kept < best_kept &&
            ctx.agreement(reused_results(served.results, k), served.results) >= need)
          best_kept = kept, feature = f, threshold = th;
      }
    }
    if (feature != feature_ || threshold != threshold_) ctx.feedback(8);  // the camera's new filter
    feature_ = feature, threshold_ = threshold;
    ctx.trace()["feature"] = feature_;
    ctx.trace()["threshold"] = threshold_;
  }

  json options() const override {
    return {{"target", target_},
            {"period", period_},
            {"prefix", prefix_},
            {"encoding", encoding_.str()},
            {"grid", grid_.size()}};
  }

 private:
  enum class Phase { encoding, threshold, filter };

  double target_;
  std::size_t period_, prefix_;
  std::vector<Configuration> grid_;
  StreamSpec stream_;
  Configuration encoding_;
  double encoding_accuracy_ = 1.0;
  std::map<Configuration, std::pair<double, double>> profile_;  // sums of accuracy and cost
  std::size_t profiled_ = 0;
  Phase phase_ = Phase::encoding;
  std::string feature_ = "pixel";
  double threshold_ = 0;
};

}  // namespace

std::unique_ptr<Policy> make_reducto(const PolicyArgs& a) { return std::make_unique<Reducto>(a); }

}  // namespace oneadapt::adapt
