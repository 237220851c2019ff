// One accountant for every policy: each action a policy takes through the harness is charged
// here, in the same units, by the same rules (docs/compare.md, "How policies are charged"):
//   - uplink bytes: every rendering sent (each pass), plus its stream/container header
//     (Rendering::header_bytes) whenever a stream starts or its settings (the configuration)
//     change from the last one sent; reference-quality data a policy sends to score candidates
//     is uplink too (and reported apart as reference_bytes);
//   - downlink (feedback) bytes: a configuration update when the configuration the source must
//     apply changes (4 + one byte per knob), a quality map when it changes (4 + the map packed at
//     ceil(log2 levels) bits per tile), and whatever else a policy tells the source (region
//     requests, filter settings) at the size of its message;
//   - source-side renderings (the ones sent included) and server-side ones (profiling);
//   - DNN work in forward units (a rendering's compute units, or its fresh samples), with
//     backward passes weighted by their measured cost relative to a forward of the same model.
// Nothing is counted twice: a rendering cached in the interval is charged when first made.
#pragma once

#include <cstdint>
#include <optional>

#include "adapt/records.hpp"

namespace oneadapt::adapt {

/// Bytes of the messages a server sends to a source.
std::uint64_t config_update_bytes(const Configuration& c);
std::uint64_t map_update_bytes(const QualityMap& m, std::size_t levels);

class Accountant {
 public:
  /// `backward_weight`: the cost of one backward pass in forward units (measured per model).
  explicit Accountant(double backward_weight) : backward_weight_(backward_weight) {}

  /// Starts an interval's charges (the previous interval's are returned by take()).
  void begin_interval() { now_ = Charges{}; }
  Charges take() const { return now_; }

  /// A rendering of `c` sent uplink: its payload, and its header when a stream starts or `c`
  /// differs from the configuration last sent. `reference_only`: data sent only to score
  /// candidates (profiling), reported apart.
  /// Returns the bytes charged.
  std::uint64_t sent(const Configuration& c, std::uint64_t payload, std::uint64_t header,
                     bool reference_only = false);
  /// Of the bytes sent, `bytes` were reference-quality data for profiling (reported apart).
  void note_reference(std::uint64_t bytes) { now_.reference_bytes += bytes; }
  /// The configuration the source applies this interval: charged when it changes (the first
  /// one is the deployment's, not a message).
  void configure(const Configuration& c);
  /// The quality map the source applies this interval: charged when it changes (the first one
  /// is the deployment's). A map the server asks for within an interval (DDS's second pass) is
  /// a request: feedback(map_update_bytes(...)).
  void map(const QualityMap& m, std::size_t levels);
  /// Any other message to the source (a region request, a filter threshold), `bytes` long.
  void feedback(std::uint64_t bytes) { now_.feedback_bytes += bytes; }
  void source_render(long n = 1) { now_.source_renders += n; }
  void server_render(long n = 1) { now_.server_renders += n; }
  /// DNN work: `units` forwards; `profiling` when it scored candidates or the reference for the
  /// policy rather than serving the result.
  void forward(double units, bool profiling = false);
  void backward(long passes = 1);
  double backward_weight() const { return backward_weight_; }
  void set_backward_weight(double w) { backward_weight_ = w; }

 private:
  double backward_weight_;
  Charges now_;
  std::optional<Configuration> last_sent_, last_configured_;
  std::optional<std::vector<std::uint8_t>> last_map_;
};

}  // namespace oneadapt::adapt
