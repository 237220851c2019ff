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

// The wire format: each sample's channel values as `bits`-bit integers, packed most significant
// bit first, frame after frame (planar RGB). Shared by the source and the receiver, so that the
// receiver's input equals the source's exactly.
std::vector<std::uint8_t> pack(const at::Tensor& levels_u8, int bits) {
  const auto v = levels_u8.contiguous();
  const auto* p = v.data_ptr<std::uint8_t>();
  const auto n = static_cast<std::size_t>(v.numel());
  std::vector<std::uint8_t> out((n * static_cast<std::size_t>(bits) + 7) / 8, 0);
  std::size_t bit = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (int b = bits - 1; b >= 0; --b, ++bit)
      if ((p[i] >> b) & 1) out[bit / 8] |= static_cast<std::uint8_t>(0x80 >> (bit % 8));
  return out;
}

at::Tensor unpack(const std::vector<std::uint8_t>& wire, int bits, at::IntArrayRef shape) {
  at::Tensor out = at::empty(shape, at::kByte);
  auto* p = out.data_ptr<std::uint8_t>();
  const auto n = static_cast<std::size_t>(out.numel());
  if (wire.size() != (n * static_cast<std::size_t>(bits) + 7) / 8)
    throw Error(Errc::corrupt_data, "example-pattern: received " + std::to_string(wire.size()) +
                                        " bytes, the configuration needs " +
                                        std::to_string((n * bits + 7) / 8));
  std::size_t bit = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint8_t x = 0;
    for (int b = 0; b < bits; ++b, ++bit)
      x = static_cast<std::uint8_t>((x << 1) | ((wire[bit / 8] >> (7 - bit % 8)) & 1));
    p[i] = x;
  }
  return out;
}

// What the DNN sees of `levels_u8` (values 0 .. 2^bits - 1 at the sent size): scaled back to
// [0, 1] and up to the native size.
at::Tensor to_input(const at::Tensor& levels_u8, int bits, int64_t width, int64_t height) {
  const double levels = std::pow(2.0, bits) - 1;
  at::Tensor x = levels_u8.to(at::kFloat) / levels;
  return x.size(2) != height || x.size(3) != width
             ? at::upsample_bilinear2d(x, {height, width}, /*align_corners=*/false)
             : x;
}

int64_t sent_size(int64_t native, double scale) {
  return std::max<int64_t>(1, std::lround(static_cast<double>(native) * scale));
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
    const int64_t w = sent_size(width_, scale), h = sent_size(height_, scale);

    at::Tensor sent = original_;
    if (w != width_ || h != height_)
      sent = at::upsample_bilinear2d(original_, {h, w}, /*align_corners=*/false);
    const double levels = std::pow(2.0, bits) - 1;
    const at::Tensor q = at::round(sent.clamp(0, 1) * levels).to(at::kByte);

    Rendering r;
    // Packed raw RGB at `bits` per channel: what this source puts on the wire. A receiver
    // (PatternReceiver below) turns it back into the input, with the same function.
    r.wire = pack(q, bits);
    r.bytes = r.wire.size();
    r.input = to_input(q, bits, width_, height_);
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

// The server side (docs/plugin-guide.md, "The server side"): what a server uses to turn the
// bytes a source sent back into the DNN input, without the source's data. The native size comes
// from the parameters; a modality whose receiver needs more says so in Source::stream_format().
class PatternReceiver final : public Receiver {
 public:
  explicit PatternReceiver(const ReceiverSpec& spec)
      : width_(spec.params.integer("width")), height_(spec.params.integer("height")) {}

  at::Tensor decode(const Configuration& config, const IntervalInfo& info,
                    const std::vector<std::uint8_t>& fresh,
                    const std::vector<std::uint8_t>& wire) override {
    (void)fresh;  // every frame is sent
    const int bits = static_cast<int>(config.number("bits"));
    if (bits < 1 || bits > 8)
      throw Error(Errc::invalid_argument, "example-pattern: bits must be 1..8");
    const double scale = config.number("scale");
    const at::Tensor q = unpack(wire, bits,
                                {static_cast<int64_t>(info.samples), 3, sent_size(height_, scale),
                                 sent_size(width_, scale)});
    return to_input(q, bits, width_, height_);
  }

 private:
  int64_t width_, height_;
};

void register_example(Registrar& registrar) {
  ModalityInfo info{"example-pattern",
                    "Synthetic moving test pattern, packed raw RGB (example plugin)",
                    "image/rgb-f32-chw",
                    pattern_knobs(),
                    pattern_params(),
                    [](const SourceSpec& spec) { return std::make_unique<PatternSource>(spec); }};
  info.open_receiver = [](const ReceiverSpec& spec) {
    return std::make_unique<PatternReceiver>(spec);
  };
  registrar.add_modality(std::move(info));
}

}  // namespace

ONEADAPT_PLUGIN("example", "0.1.0", "Example plugin: a synthetic test-pattern modality",
                register_example)
