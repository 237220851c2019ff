// The policy interface: every policy (OneAdapt, the static and profiling baselines, the spatial
// baselines and the hindsight ones) is one class behind it, runs in the one harness
// (adapt/harness.hpp) and is charged by the one accountant. Per interval the harness asks the
// policy for a decision, sends it (renders, infers, charges), lets the policy refine it (a
// second pass, DDS), scores the result against the reference outputs (never charged) and hands
// the served result back so that the policy can learn for the next interval.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include <oneadapt/modality.hpp>
#include <oneadapt/task.hpp>

namespace oneadapt::adapt {

class IntervalContext;

/// What a policy knows of the stream when it starts.
struct StreamSpec {
  std::vector<KnobSpec> knobs;
  std::optional<SpatialSpec> spatial;
  Configuration reference;
};

/// What the source sends in this interval (one pass).
struct Decision {
  Configuration config;
  std::optional<QualityMap> map;                  ///< per-tile levels (spatial knob)
  std::optional<std::vector<std::uint8_t>> keep;  ///< on-source sample selection (Reducto)
  bool grad = false;  ///< backpropagate the proxy from the last fresh sample (DNNGrad)
  /// The policy reads Served::dnn_grad itself, not only its saliency (IntervalContext::saliency):
  /// over the split the server then sends DNNGrad whole (docs/deployment.md).
  bool full_grad = false;
  bool need_results = false;  ///< the policy reads the served results (no replay from the cache)
  bool profiling =
      false;  ///< sent so that the server can score candidates (reported as reference_bytes)
};

/// What one configuration achieved in one interval.
struct Outcome {
  std::uint64_t bytes = 0;         ///< payload
  std::uint64_t header_bytes = 0;  ///< the stream header of the configuration
  double frames = 0;               ///< samples inferred
  double compute = 0;              ///< DNN work in forward units
  double accuracy = 0, accuracy_first = 0, accuracy_second = 0;
};

/// A pass as served.
struct Served {
  Outcome outcome;
  const Rendering* rendering = nullptr;  ///< null when replayed from the shared cache
  std::vector<ResultPtr> results;        ///< empty when replayed from the shared cache
  at::Tensor dnn_grad;  ///< with Decision::grad: dProxy/dInput of sample grad_sample; over the
                        ///< split only with Decision::full_grad
  at::Tensor saliency;  ///< its saliency when the server computed it (else undefined)
  std::size_t grad_sample = 0;
  double proxy = 0;
};

class Policy {
 public:
  virtual ~Policy() = default;
  /// Called once the stream is open, before the first interval (validate options here).
  virtual void begin(const StreamSpec& stream) { (void)stream; }
  /// What to send in this interval.
  virtual Decision decide(IntervalContext& ctx) = 0;
  /// Another pass after `served` (DDS asks again for its uncertain regions); nullopt: done.
  virtual std::optional<Decision> refine(IntervalContext& ctx, const Served& served) {
    (void)ctx;
    (void)served;
    return std::nullopt;
  }
  /// Learns from the interval's final served result (gradient steps, profiling).
  virtual void learn(IntervalContext& ctx, const Served& served) {
    (void)ctx;
    (void)served;
  }
  /// The accuracy the run is scored with (oracle-split: on the samples it did not choose on).
  virtual double scored_accuracy(const Outcome& o) const { return o.accuracy; }
  /// state.json (for --warm-start where the policy supports it).
  virtual nlohmann::json state() const { return nlohmann::json::object(); }
  /// The options the run used, for summary.json.
  virtual nlohmann::json options() const { return nlohmann::json::object(); }
};

}  // namespace oneadapt::adapt
