// Example modality plugin: a synthetic moving test pattern (the videotestsrc idea), written
// as a template for your own modality. It shows every part of the SDK a modality uses:
// declaring knobs and parameters once, honouring ladder overrides, cutting the stream into
// intervals, rendering an interval at a configuration into the DNN input, and reporting the
// bytes the source would send. The data is synthetic; the byte counts are exact for the
// packed raw format it "sends" (no codec).
#include <ATen/ATen.h>
#include <oneadapt/sdk.hpp>

#include <chrono>
#include <cmath>

namespace {

using namespace oneadapt;

// Declared once: `oneadapt plugins inspect example-pattern` prints exactly this.
std::vector<KnobSpec> pattern_knobs() {
  return {
      KnobSpec::numeric("bits", "Bits per channel", "bit", {8, 6, 5, 4, 3},
                        "Requantises every colour channel to this many bits before sending."),
      KnobSpec::numeric("scale", "Resolution", "x native", {1.0, 0.5, 0.25},
                        "Sends frames at this fraction of the native size; the receiver scales "
                        "them back up (bilinear) so the DNN input keeps its shape."),
  };
}

std::vector<ParamSpec> pattern_params() {
  return {
      {"width", "Width", "Native frame width in pixels.", ParamType::integer, "64"},
      {"height", "Height", "Native frame height in pixels.", ParamType::integer, "48"},
      {"fps", "Frame rate", "Frames per second.", ParamType::number, "10"},
      {"seconds", "Length", "Length of the stream in seconds.", ParamType::number, "5"},
      {"pattern", "Pattern", "What to draw: 'bars' (moving colour bars) or 'gradient'.",
       ParamType::string, "bars"},
  };
}

class PatternSource final : public Source {
 public:
  explicit PatternSource(const SourceSpec& spec) : knobs_(pattern_knobs()) {
    width_ = spec.params.integer("width");
    height_ = spec.params.integer("height");
    fps_ = spec.params.number("fps");
    pattern_ = spec.params.str("pattern");
    if (width_ < 4 || height_ < 4 || fps_ <= 0 || spec.interval_seconds <= 0)
      throw Error(Errc::invalid_argument,
                  "example-pattern: width and height must be >= 4, fps and interval > 0");
    if (pattern_ != "bars" && pattern_ != "gradient")
      throw Error(Errc::invalid_argument, "example-pattern: parameter 'pattern': '" + pattern_ +
                                              "' is not one of bars, gradient");
    total_frames_ = static_cast<int64_t>(std::floor(spec.params.number("seconds") * fps_));
    frames_per_interval_ =
        std::max<int64_t>(1, static_cast<int64_t>(std::lround(spec.interval_seconds * fps_)));
    // Users may replace a ladder in their config (labels, most expensive first).
    apply_numeric_ladder_overrides(knobs_, spec,
                                   [](const std::string& key, double v) -> std::string {
                                     if (key == "bits" && !(v >= 1 && v <= 8 && v == std::floor(v)))
                                       return "an integer in 1..8";
                                     if (key == "scale" && !(v > 0 && v <= 1)) return "in (0, 1]";
                                     return "";
                                   });
  }

  std::vector<KnobSpec> knobs() const override { return knobs_; }

  bool next_interval(IntervalInfo& info) override {
    if (next_frame_ >= total_frames_) return false;
    first_frame_ = next_frame_;
    frames_ = std::min(frames_per_interval_, total_frames_ - first_frame_);
    next_frame_ += frames_;
    info.index = static_cast<std::size_t>(first_frame_ / frames_per_interval_);
    info.t_start = static_cast<double>(first_frame_) / fps_;
    info.duration = static_cast<double>(frames_) / fps_;
    info.samples = static_cast<std::size_t>(frames_);
    original_ = draw();
    return true;
  }

  at::Tensor original() override { return original_; }

  Rendering render(const Configuration& config) override {
    require_ladder_values(config, knobs_, "example-pattern");
    auto start = std::chrono::steady_clock::now();
    const double scale = config.number("scale");
    const int bits = static_cast<int>(config.number("bits"));
    const int64_t w = std::max<int64_t>(1, std::lround(width_ * scale));
    const int64_t h = std::max<int64_t>(1, std::lround(height_ * scale));

    at::Tensor sent = original_;
    if (w != width_ || h != height_)
      sent = at::upsample_bilinear2d(original_, {h, w}, /*align_corners=*/false);
    const double levels = std::pow(2.0, bits) - 1;
    sent = at::round(sent.clamp(0, 1) * levels) / levels;

    Rendering r;
    r.input = (w != width_ || h != height_)
                  ? at::upsample_bilinear2d(sent, {height_, width_}, false)
                  : sent;
    // Packed raw RGB at `bits` per channel: what this source would put on the wire.
    r.bytes = static_cast<std::uint64_t>((frames_ * w * h * 3 * bits + 7) / 8);
    r.timings_ms["render"] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    return r;
  }

  std::string describe() const override {
    return "synthetic " + pattern_ + " " + std::to_string(width_) + "x" + std::to_string(height_) +
           " @ " + std::to_string(fps_) + " fps, " + std::to_string(total_frames_) + " frames";
  }

 private:
  at::Tensor draw() const {
    auto t = at::arange(first_frame_, first_frame_ + frames_, at::kFloat).view({-1, 1, 1, 1});
    auto x = at::arange(width_, at::kFloat).view({1, 1, 1, -1}) / static_cast<float>(width_);
    auto y = at::arange(height_, at::kFloat).view({1, 1, -1, 1}) / static_cast<float>(height_);
    auto c = at::arange(3, at::kFloat).view({1, 3, 1, 1});
    at::Tensor img;
    if (pattern_ == "bars")
      img = (at::floor((x + t * 0.02) * 8 + c * 2).remainder(3) / 2.0)
                .expand({frames_, 3, height_, width_});
    else
      img = (at::sin((x * 6 + y * 4 + t * 0.1 + c) * 3.14159) * 0.5 + 0.5);
    return img.contiguous();  // [T, 3, H, W] RGB in [0, 1]
  }

  std::vector<KnobSpec> knobs_;
  int64_t width_ = 0, height_ = 0;
  double fps_ = 0;
  std::string pattern_;
  int64_t total_frames_ = 0, frames_per_interval_ = 0;
  int64_t next_frame_ = 0, first_frame_ = 0, frames_ = 0;
  at::Tensor original_;
};

void register_example(Registrar& registrar) {
  registrar.add_modality(
      {"example-pattern", "Synthetic moving test pattern, packed raw RGB (example plugin)",
       "image/rgb-f32-chw", pattern_knobs(), pattern_params(),
       [](const SourceSpec& spec) { return std::make_unique<PatternSource>(spec); }});
}

}  // namespace

ONEADAPT_PLUGIN("example", "0.1.0", "Example plugin: a synthetic test-pattern modality",
                register_example)
