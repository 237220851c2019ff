// oneadapt SDK: the modality interface.
//
// A modality plugin owns a data source and its knobs. It cuts the stream into intervals and,
// for the current interval and a configuration, renders what the DNN would receive (the
// "DNN input" V), reporting the real bytes the source would send. The core computes
// InputGrad as the difference between renderings at neighbouring knob values: the objective's
// bytes term needs the real bytes of the cheaper neighbour anyway, so an analytic InputGrad
// would save no rendering (ABI 4 removed Source::input_grad for that reason).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "oneadapt/error.hpp"
#include "oneadapt/knobs.hpp"
#include "oneadapt/params.hpp"
#include "oneadapt/version.hpp"

namespace oneadapt {

/// Where the current interval lies in the stream.
struct IntervalInfo {
  std::size_t index = 0;    ///< 0-based
  double t_start = 0.0;     ///< seconds from the start of the stream
  double duration = 0.0;    ///< seconds
  std::size_t samples = 0;  ///< samples (frames, sweeps, windows) in the interval
};

/// The current interval rendered at one configuration.
struct Rendering {
  /// The DNN input, [T, ...] with T = IntervalInfo::samples. Its shape does not depend on the
  /// configuration, so renderings compare element by element.
  at::Tensor input;
  /// Per sample: 1 when it carries new data that must be inferred, 0 when it repeats the
  /// previous sample (e.g. a frame dropped by a frame-rate knob): its result is reused and
  /// not counted as compute. Empty means all fresh.
  std::vector<std::uint8_t> fresh;
  /// Real encoded bytes of the interval's payload as the source would send them. Never an
  /// estimate. Stream or container headers are not included: they go in header_bytes.
  std::uint64_t bytes = 0;
  /// Real bytes of the stream/container header that a receiver needs before this payload (an
  /// MP4's ftyp and moov with the codec's parameter sets, a codec's stream header). The core
  /// charges them when a stream starts or its configuration changes, not every interval. 0 when
  /// every interval's payload is self-contained.
  std::uint64_t header_bytes = 0;
  /// Inference cost of the interval in units of one sample at the reference configuration
  /// (e.g. the FLOP ratio summed over fresh samples). 0 means: the number of fresh samples.
  double compute_units = 0.0;
  /// Wall time of the rendering's stages in milliseconds, e.g. {"encode", 3.1}.
  std::map<std::string, double> timings_ms;
  /// What the source sends for this interval, as it goes on the wire: the stream header (when
  /// header_bytes > 0) followed by the payload, so that a Receiver decodes it alone. Empty when
  /// the modality has no receiver (ModalityInfo::open_receiver). May be left empty by probe().
  std::vector<std::uint8_t> wire;
};

/// A spatial quality knob (method.md section 3: a "special knob" with its own solver): the
/// frame is cut into `cols` x `rows` tiles of `tile` pixels (the last row/column may be
/// partial) and each tile takes one of `levels.size()` quality levels, 0 the best. `levels`
/// describes each level for users (e.g. "qoffset +0.5").
///
/// A source whose levels are offsets on one of its knobs names that knob in `base_knob` and
/// gives in `level_offsets` what each level adds to the knob's numeric value (video: the CRF
/// knob, level q adding about `level_offsets[q]` to the quantiser): a solver can then choose
/// the base value and the map together, a tile at base b and level q costing about what the
/// whole frame costs at base b + level_offsets[q]. Empty when the levels stand alone.
struct SpatialSpec {
  int tile = 0;
  int cols = 0, rows = 0;
  std::vector<std::string> levels;
  std::string description;
  std::string base_knob;
  std::vector<double> level_offsets;
};

/// One level per tile, row-major (rows x cols), each < SpatialSpec::levels.size().
struct QualityMap {
  int cols = 0, rows = 0;
  std::vector<std::uint8_t> level;
  static QualityMap uniform(const SpatialSpec& s, std::uint8_t level) {
    return {s.cols, s.rows,
            std::vector<std::uint8_t>(
                static_cast<std::size_t>(s.cols) * static_cast<std::size_t>(s.rows), level)};
  }
};

/// How to open a source: the URI or path, the plugin's declared parameters (already checked
/// by the host), and knob ladders overridden by the user (labels, most expensive first).
struct SourceSpec {
  std::string uri;
  Params params;
  std::map<std::string, std::vector<std::string>> ladders;
  double interval_seconds = 1.0;
};

/// Replaces the ladders of `knobs` by the user's overrides in `spec.ladders` (labels, most
/// expensive first), for knobs whose values are numbers. `check(key, value)` returns an empty
/// string when `value` is acceptable for knob `key`, else what it must be ("in (0, 1]"); a bad
/// label throws Error(invalid_argument) naming the knob and the value.
inline void apply_numeric_ladder_overrides(
    std::vector<KnobSpec>& knobs, const SourceSpec& spec,
    const std::function<std::string(const std::string&, double)>& check) {
  for (auto& knob : knobs) {
    auto it = spec.ladders.find(knob.key);
    if (it == spec.ladders.end()) continue;
    knob.values.clear();
    knob.default_index = 0;
    for (const auto& label : it->second) {
      double v = 0;
      std::string must = parse_number(label, v) ? check(knob.key, v) : "a number";
      if (!must.empty())
        throw Error(Errc::invalid_argument, "knob '" + knob.key + "': value '" + label +
                                                "' is out of range (must be " + must + ")");
      knob.values.push_back(KnobValue::of(v));
    }
  }
}

/// An opened stream. Not thread-safe; one interval is current at a time.
class ONEADAPT_API Source {
 public:
  virtual ~Source() = default;

  /// The knobs of this stream with their effective ladders (after overrides), in the order
  /// configurations list them.
  virtual std::vector<KnobSpec> knobs() const = 0;

  /// Advances to the next interval; returns false at the end of the stream. Throws Error
  /// (corrupt_data, io) naming the file when the data is broken.
  virtual bool next_interval(IntervalInfo& info) = 0;

  /// G: the current interval's own data before any knob degrades it, in the DNN input space
  /// (same shape as Rendering::input).
  virtual at::Tensor original() = 0;

  /// The current interval rendered at `config`. Rendering the same configuration twice in an
  /// interval must give the same result (the core may cache it).
  virtual Rendering render(const Configuration& config) = 0;

  /// A rendering made only to estimate a gradient: `bytes` must be real, but only sample
  /// `sample` of the input is needed, so Rendering::input may hold just that sample ([1, ...]).
  /// The default renders everything; a modality whose rendering is costly to convert (video:
  /// decoding every frame to float) can skip what is not needed.
  virtual Rendering probe(const Configuration& config, std::size_t sample) {
    (void)sample;
    return render(config);
  }

  /// The current interval at `config`, sending only the samples with keep[t] != 0 (sample 0 is
  /// always sent); the others repeat the last sent one (Rendering::fresh = what was sent).
  /// For on-source filtering baselines (Reducto). The default says the modality cannot.
  virtual Rendering render_selected(const Configuration& config,
                                    const std::vector<std::uint8_t>& keep) {
    (void)config;
    (void)keep;
    throw Error(Errc::unsupported,
                "this modality cannot send a chosen subset of an interval's samples");
  }

  /// The spatial knob of this stream, if it has one (video with `roi_tile` > 0).
  virtual std::optional<SpatialSpec> spatial() const { return std::nullopt; }

  /// The current interval at `config` with per-tile quality `map` (see spatial()). A map of
  /// the wrong size is an Error(invalid_argument). render(config) equals render_map(config, an
  /// all-zero map) for a source with a spatial knob.
  virtual Rendering render_map(const Configuration& config, const QualityMap& map) {
    (void)config;
    (void)map;
    throw Error(Errc::unsupported, "this modality has no spatial quality knob");
  }

  /// The highest-quality configuration, whose outputs are the accuracy reference.
  virtual Configuration reference() const { return Configuration::most_expensive(knobs()); }

  /// The saliency map S (method.md section 2) from DNNGrad of one sample (`grad`, shaped like
  /// one sample of Rendering::input): |grad| summed over channels and averaged over blocks of
  /// the knobs' natural granularity (16x16 macroblocks for video), broadcastable to one
  /// sample. The default sums |grad| over dimension 0 and does not pool.
  virtual at::Tensor saliency(const at::Tensor& grad) {
    return grad.abs().sum(0, /*keepdim=*/true);
  }

  /// One line about the stream for logs, e.g. "768x576 @ 10 fps, 795 frames".
  virtual std::string describe() const { return {}; }

  /// What a Receiver of this stream needs to know that the wire bytes and the plugin's
  /// parameters do not say (video: the native frame size), as text. Sent once per stream.
  virtual std::map<std::string, std::string> stream_format() const { return {}; }
};

using SourceFactory = std::function<std::unique_ptr<Source>(const SourceSpec&)>;

/// How to open a receiver: the plugin's declared parameters (the ones the source was opened
/// with) and the source's stream_format().
struct ReceiverSpec {
  Params params;
  std::map<std::string, std::string> format;
};

/// The server side of a modality: turns what a source sent (Rendering::wire) back into the DNN
/// input, where the source's data is not available. Not thread-safe.
class ONEADAPT_API Receiver {
 public:
  virtual ~Receiver() = default;
  /// The DNN input of an interval of `info.samples` samples rendered at `config`, from `wire`
  /// (Rendering::wire). `fresh` is Rendering::fresh as the source reported it (which samples
  /// carry new data; empty = all). Must equal the source's Rendering::input element by
  /// element. Throws Error(corrupt_data) naming what is wrong when the bytes do not decode.
  virtual at::Tensor decode(const Configuration& config, const IntervalInfo& info,
                            const std::vector<std::uint8_t>& fresh,
                            const std::vector<std::uint8_t>& wire) = 0;

  /// The saliency map of a DNNGrad of one decoded sample: must equal Source::saliency for the
  /// same gradient, element by element (`oneadapt plugins check` compares them). The server
  /// sends this to the source instead of DNNGrad (docs/deployment.md). The default is
  /// Source::saliency's default.
  virtual at::Tensor saliency(const at::Tensor& grad) {
    return grad.abs().sum(0, /*keepdim=*/true);
  }
};

using ReceiverFactory = std::function<std::unique_ptr<Receiver>(const ReceiverSpec&)>;

/// Registration record of a modality.
struct ModalityInfo {
  std::string name;         ///< unique across all plugins, e.g. "video"
  std::string description;  ///< one line
  /// What a sample of Rendering::input is, e.g. "image/rgb-f32-chw". A task declares the
  /// same string for what it accepts; the host refuses to pair mismatched ones.
  std::string sample_format;
  std::vector<KnobSpec> knobs;  ///< default ladders
  std::vector<ParamSpec> params;
  SourceFactory open;
  /// The receiver (server side) for this modality's wire bytes; empty when the modality can only
  /// run in one process.
  ReceiverFactory open_receiver = {};
};

}  // namespace oneadapt
