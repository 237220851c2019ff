// The voice-activity task: Silero VAD v5 (ONNX, through the core's engine) streaming over
// 512-sample chunks at 16 kHz with its LSTM state and 64 samples of context carried across
// chunks and across intervals. Proxy (method.md section 4): sum over chunks of
// sigmoid(k (p - threshold)); metric: chunk-level F1 of the speech decision (p > threshold) against
// the reference output.
#include <ATen/ATen.h>
#include <oneadapt/batch.hpp>
#include <oneadapt/sdk.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using namespace oneadapt;

constexpr int64_t kChunk = 512, kContext = 64, kStateWidth = 128;

/// One sample's (one interval window's) speech decisions.
class VadResult final : public TaskResult {
 public:
  std::vector<float> prob;      // per chunk
  std::vector<uint8_t> speech;  // per chunk: prob > threshold
  at::Tensor state, context;    // where the stream stands after this sample: [2,1,128], [1,64]

  std::string summary() const override {
    std::size_t n = 0;
    for (auto s : speech) n += s;
    return std::to_string(n) + "/" + std::to_string(speech.size()) + " chunks speech";
  }
};

class VadTask final : public Task {
 public:
  explicit VadTask(const TaskSpec& spec)
      : model_(spec.models.at("vad")),
        threshold_(spec.params.number("threshold")),
        sharpness_(spec.params.number("sharpness")) {
    if (!(threshold_ > 0 && threshold_ < 1))
      throw Error(Errc::invalid_argument, "vad: threshold must be in (0, 1)");
    if (!(sharpness_ > 0)) throw Error(Errc::invalid_argument, "vad: sharpness must be > 0");
    const auto& in = model_->inputs();
    const auto& out = model_->outputs();
    auto index_of = [](const std::vector<TensorSpec>& specs, const std::string& name,
                       const char* what) {
      for (std::size_t i = 0; i < specs.size(); ++i)
        if (specs[i].name == name) return i;
      throw Error(
          Errc::model,
          std::string("vad: the model has no ") + what + " named '" + name +
              "' (expected Silero VAD v5: inputs input, sr, state; outputs output, stateN)");
    };
    in_x_ = index_of(in, "input", "input");
    in_sr_ = index_of(in, "sr", "input");
    in_state_ = index_of(in, "state", "input");
    out_p_ = index_of(out, "output", "output");
    out_state_ = index_of(out, "stateN", "output");
    if (in.size() != 3)
      throw Error(Errc::model, "vad: expected 3 model inputs (input, sr, state), got " +
                                   std::to_string(in.size()));
    reset();
  }

  /// samples: [N, L], L a multiple of 512, 16 kHz. Each sample is one interval's window of the
  /// stream, processed chunk by chunk from the state carried into the interval. Outputs:
  /// probabilities [N, L/512], the state after the sample [N, 2, 128] and its context [N, 64].
  std::vector<at::Tensor> infer(const at::Tensor& samples) override {
    check_samples(samples);
    const int64_t n = samples.size(0);
    return run(samples, state_.expand({2, n, kStateWidth}).contiguous(),
               context_.expand({n, kContext}));
  }

  /// Streams served by one server share the model: any number of them step through their
  /// chunks together, each row from its own stream's state.
  std::string batch_key() const override {
    return "silero@" + std::to_string(reinterpret_cast<std::uintptr_t>(model_.get()));
  }

  std::vector<std::vector<at::Tensor>> infer_batch(const std::vector<Task*>& tasks,
                                                   const std::vector<at::Tensor>& samples) override {
    std::vector<at::Tensor> states, contexts;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      check_samples(samples.at(i));
      if (samples[i].size(1) != samples[0].size(1))  // intervals of other lengths: one by one
        return Task::infer_batch(tasks, samples);
      const auto& t = static_cast<const VadTask&>(*tasks[i]);
      const int64_t n = samples[i].size(0);
      states.push_back(t.state_.expand({2, n, kStateWidth}));
      contexts.push_back(t.context_.expand({n, kContext}));
    }
    return split_batch(
        run(at::cat(samples, 0), at::cat(states, 1).contiguous(), at::cat(contexts, 0)), samples);
  }

 private:
  static void check_samples(const at::Tensor& samples) {
    if (samples.dim() != 2 || samples.size(1) % kChunk != 0 || samples.size(1) == 0)
      throw Error(Errc::invalid_argument,
                  "vad: expected samples [N, L] with L a multiple of 512 at 16 kHz, got " +
                      std::to_string(samples.dim()) + "-d input of " +
                      std::to_string(samples.numel()) + " values");
  }

  // Steps rows [n, L] through their chunks from state [2, n, 128] and context [n, 64].
  std::vector<at::Tensor> run(const at::Tensor& samples, at::Tensor state, at::Tensor context) {
    const int64_t n = samples.size(0), chunks = samples.size(1) / kChunk;
    std::vector<at::Tensor> probs;
    probs.reserve(static_cast<std::size_t>(chunks));
    std::vector<at::Tensor> inputs(3);
    inputs[in_sr_] = sr_;
    for (int64_t c = 0; c < chunks; ++c) {
      at::Tensor chunk = samples.narrow(1, c * kChunk, kChunk);
      inputs[in_x_] = at::cat({context, chunk}, 1);
      inputs[in_state_] = state;
      auto out = model_->forward(inputs);
      probs.push_back(out[out_p_].reshape({n, 1}));
      state = out[out_state_];
      context = chunk.narrow(1, kChunk - kContext, kContext);
    }
    return {at::cat(probs, 1), state.transpose(0, 1), context};
  }

 public:

  at::Tensor proxy(const std::vector<at::Tensor>& outputs) override {
    return at::sigmoid(sharpness_ * (outputs.at(0) - threshold_)).sum();
  }

  std::vector<ResultPtr> decode(const std::vector<at::Tensor>& outputs) override {
    at::Tensor p = outputs.at(0).detach().to(at::kFloat).contiguous();
    std::vector<ResultPtr> results;
    for (int64_t i = 0; i < p.size(0); ++i) {
      auto r = std::make_shared<VadResult>();
      const float* row = p[i].data_ptr<float>();
      r->prob.assign(row, row + p.size(1));
      for (float v : r->prob) r->speech.push_back(v > threshold_ ? 1 : 0);
      r->state = outputs.at(1)[i].detach().unsqueeze(1).clone();    // [2,1,128]
      r->context = outputs.at(2)[i].detach().unsqueeze(0).clone();  // [1,64]
      results.push_back(std::move(r));
    }
    return results;
  }

  /// Chunk-level F1 of the speech decisions, pooled over the samples; 1 when neither side has
  /// speech.
  double accuracy(const std::vector<ResultPtr>& results,
                  const std::vector<ResultPtr>& reference) override {
    double tp = 0, fp = 0, fn = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& a = static_cast<const VadResult&>(*results[i]).speech;
      const auto& b = static_cast<const VadResult&>(*reference.at(i)).speech;
      if (a.size() != b.size())
        throw Error(Errc::invalid_argument, "vad: results and reference differ in length");
      for (std::size_t c = 0; c < a.size(); ++c) {
        tp += a[c] && b[c];
        fp += a[c] && !b[c];
        fn += !a[c] && b[c];
      }
    }
    return tp + fp + fn == 0 ? 1.0 : 2 * tp / (2 * tp + fp + fn);
  }

  void reset() override {
    state_ = at::zeros({2, 1, kStateWidth});
    context_ = at::zeros({1, kContext});
  }

  /// The stream continues from where the reference rendering left it.
  void end_interval(const std::vector<ResultPtr>& reference) override {
    if (reference.empty()) return;
    const auto& last = static_cast<const VadResult&>(*reference.back());
    state_ = last.state;
    context_ = last.context;
  }

 private:
  std::shared_ptr<Model> model_;
  double threshold_, sharpness_;
  std::size_t in_x_ = 0, in_sr_ = 1, in_state_ = 2, out_p_ = 0, out_state_ = 1;
  at::Tensor sr_ = at::scalar_tensor(16000, at::kLong);
  at::Tensor state_, context_;
};

void register_vad(Registrar& r) {
  r.add_task(
      {"vad",
       "Voice activity (Silero VAD v5, streaming with its LSTM state); proxy and chunk-level F1 of "
       "method.md",
       "audio/f32-mono-16k",
       {{"vad",
         "Silero VAD v5 (16 kHz, 512-sample chunks)",
         "silero/silero_vad_op18_ifless.onnx",
         {"onnx"},
         false}},
       {{"threshold", "Speech threshold",
         "A chunk is speech when its probability exceeds it (metric and decisions).",
         ParamType::number, "0.5"},
        {"sharpness", "Proxy sharpness",
         "k of the proxy sum sigmoid(k (p - threshold)) over chunks.", ParamType::number, "10"}},
       [](const TaskSpec& spec) { return std::make_unique<VadTask>(spec); }});
}

}  // namespace

ONEADAPT_PLUGIN("vad", "0.1.0", "Voice-activity task: Silero VAD v5, streaming, chunk-level F1",
                register_vad)
