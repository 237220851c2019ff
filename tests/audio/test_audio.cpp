// The audio pipeline: the audio modality's contract on real speech (bytes along each ladder,
// stable rendering shape, zero InputGrad where a knob cannot change the input), the VAD task
// (streaming state carried across intervals equals one continuous pass; F1), and OneAdapt on
// real speech (beta = 0 stays at the reference; a large beta cuts bytes).
#include <ATen/ATen.h>

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <sndfile.h>

#include "adapt/inference.hpp"
#include "adapt/reducto.hpp"
#include "adapt/runner.hpp"
#include "assets.hpp"
#include "engine/engine.hpp"
#include "plugin_registry.hpp"
#include "../support.hpp"

using namespace oneadapt;
using namespace oneadapt::adapt;
namespace fs = std::filesystem;
using json = nlohmann::json;
using test_support::plugins;
using test_support::record_lines;
using test_support::temp_dir;

namespace {

// 16-bit PCM samples of a mono 16 kHz WAV (the LibriVox assets: a 44-byte header).
std::vector<int16_t> read_pcm16(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<int16_t> out((b.size() - 44) / 2);
  std::memcpy(out.data(), b.data() + 44, out.size() * 2);
  return out;
}

void write_wav(const fs::path& p, const std::vector<int16_t>& pcm, int rate = 16000,
               int channels = 1) {
  std::ofstream f(p, std::ios::binary);
  auto u32 = [&](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  const auto data = static_cast<uint32_t>(pcm.size() * 2);
  f.write("RIFF", 4), u32(36 + data), f.write("WAVEfmt ", 8), u32(16), u16(1),
      u16(static_cast<uint16_t>(channels));
  u32(static_cast<uint32_t>(rate)), u32(static_cast<uint32_t>(rate * channels * 2)),
      u16(static_cast<uint16_t>(channels * 2)), u16(16);
  f.write("data", 4), u32(data);
  f.write(reinterpret_cast<const char*>(pcm.data()), data);
}

host::HostSource open_audio(const fs::path& file, const host::ComponentSettings& settings = {}) {
  return plugins().open_source("audio", file.string(), settings, 1.0);
}

Configuration config_at(const std::vector<KnobSpec>& knobs, const std::string& key,
                        std::size_t index) {
  std::vector<std::size_t> idx(knobs.size(), 0);
  for (std::size_t k = 0; k < knobs.size(); ++k)
    if (knobs[k].key == key) idx[k] = index;
  return Configuration::at_indices(knobs, idx);
}

std::shared_ptr<Model> silero() {
  return engine::load_model(asset_path("silero/silero_vad_op18_ifless.onnx"));
}

}  // namespace

TEST_CASE(
    "audio: bytes fall along every ladder on real speech and the rendering shape never changes") {
  auto source = open_audio(asset_path("speech/librivox-0870.wav"));
  const auto knobs = source.knobs();
  REQUIRE(knobs.size() == 3);
  CHECK(knobs[0].key == "sample_rate");
  CHECK(knobs[1].key == "bits");
  CHECK(knobs[2].key == "codec");
  IntervalInfo info;
  REQUIRE(source.next_interval(info));
  REQUIRE(source.next_interval(info));  // the second second: speech throughout
  CHECK(info.samples == 1);
  CHECK(info.duration == doctest::Approx(31 * 512 / 16000.0));
  const at::Tensor G = source.original();
  CHECK(G.sizes() == at::IntArrayRef({1, 31 * 512}));
  // The reference (16 kHz, 16 bits, FLAC) of a 16-bit 16 kHz file is the file itself.
  CHECK(at::equal(source.render(source.reference()).input, G));
  for (const auto& knob : knobs) {
    std::uint64_t last = UINT64_MAX;
    for (std::size_t i = 0; i < knob.values.size(); ++i) {
      Rendering r = source.render(config_at(knobs, knob.key, i));
      CHECK(r.input.sizes() == G.sizes());
      CHECK((r.input.scalar_type() == at::kFloat));
      CHECK(at::isfinite(r.input).all().item<bool>());
      MESSAGE(knob.key << "=" << knob.values[i].label << ": " << r.bytes << " bytes");
      CHECK_MESSAGE(r.bytes < last, knob.key << "=" << knob.values[i].label
                                             << " is not cheaper than the previous value");
      last = r.bytes;
    }
  }
  // The cheapest corner still has the shape, and differs from G.
  Rendering cheap = source.render(Configuration::at_indices(knobs, {5, 5, 4}));
  CHECK(cheap.input.sizes() == G.sizes());
  CHECK((cheap.input - G).abs().mean().item<double>() > 1e-3);
  // The saliency map is constant over each 512-sample analysis window.
  at::Tensor s = source.saliency(at::randn({31 * 512}));
  CHECK(s.sizes() == at::IntArrayRef({31 * 512}));
  CHECK(s[0].item<float>() == s[511].item<float>());
  CHECK(s[0].item<float>() != s[512].item<float>());
}

TEST_CASE("audio: InputGrad is zero where a knob cannot change the input") {
  const fs::path dir = temp_dir("zero");
  // Real speech already at 8 bits (every sample a multiple of 256): 16, 12, 10 and 8 bits render
  // the same input; 6 bits does not.
  auto pcm = read_pcm16(asset_path("speech/librivox-0870.wav"));
  for (auto& v : pcm)
    v = static_cast<int16_t>(
        std::clamp(static_cast<int>(std::lround(v / 256.0)) * 256, -32768, 32512));
  write_wav(dir / "speech8.wav", pcm);
  auto source = open_audio(dir / "speech8.wav");
  const auto knobs = source.knobs();
  IntervalInfo info;
  REQUIRE(source.next_interval(info));
  REQUIRE(source.next_interval(info));
  const at::Tensor at16 = source.render(config_at(knobs, "bits", 0)).input;
  for (std::size_t i = 1; i <= 3; ++i)
    CHECK_MESSAGE(at::equal(source.render(config_at(knobs, "bits", i)).input, at16),
                  "bits index " << i);
  CHECK_FALSE(at::equal(source.render(config_at(knobs, "bits", 4)).input, at16));

  // Digital silence: no knob changes anything.
  write_wav(dir / "silence.wav", std::vector<int16_t>(16000 * 2, 0));
  auto quiet = open_audio(dir / "silence.wav");
  REQUIRE(quiet.next_interval(info));
  for (const auto& knob : quiet.knobs())
    for (std::size_t i = 0; i < knob.values.size(); ++i)
      CHECK_MESSAGE(
          quiet.render(config_at(knobs, knob.key, i)).input.abs().max().item<float>() == 0.0f,
          knob.key << "=" << knob.values[i].label);
  fs::remove_all(dir);
}

TEST_CASE("audio: any channel count and rate is read, downmixed and resampled to 16 kHz") {
  const fs::path dir = temp_dir("stereo");
  // 2 s of stereo at 48 kHz: left a 440 Hz tone at 0.5, right silent -> mono 0.25 peak.
  std::vector<int16_t> pcm;
  for (int i = 0; i < 96000; ++i) {
    pcm.push_back(
        static_cast<int16_t>(std::lround(16384 * std::sin(2 * M_PI * 440 * i / 48000.0))));
    pcm.push_back(0);
  }
  write_wav(dir / "stereo48k.wav", pcm, 48000, 2);
  auto source = open_audio(dir / "stereo48k.wav");
  IntervalInfo info;
  REQUIRE(source.next_interval(info));
  at::Tensor g = source.original();
  CHECK(g.sizes() == at::IntArrayRef({1, 15872}));
  CHECK(g.narrow(1, 1000, 10000).abs().max().item<double>() == doctest::Approx(0.25).epsilon(0.01));
  REQUIRE(source.next_interval(info));
  CHECK_FALSE(
      source.next_interval(info));  // 2 s = 2 intervals of 0.992 s and a 16 ms tail (< one window)
  fs::remove_all(dir);
}

TEST_CASE("vad: the state carried across intervals equals one continuous pass over the stream") {
  auto model = silero();
  auto task = plugins().create_task("vad", {}, {{"vad", model}});
  auto source = open_audio(asset_path("speech/librivox-0870.wav"));
  IntervalInfo info;
  std::vector<at::Tensor> probs, inputs;
  std::vector<ResultPtr> first;
  task.reset();
  at::NoGradGuard no_grad;
  for (int i = 0; i < 3 && source.next_interval(info); ++i) {
    at::Tensor x = source.render(source.reference()).input;
    auto out = task.infer(x);
    REQUIRE(out.size() == 3);
    CHECK(out[0].sizes() == at::IntArrayRef({1, 31}));
    auto results = task.decode(out);
    if (i == 1) first = results;
    // Every inference within an interval starts from the same carried state.
    CHECK(at::equal(task.infer(x)[0], out[0]));
    task.end_interval(results);
    probs.push_back(out[0][0]);
    inputs.push_back(x[0]);
  }
  REQUIRE(probs.size() == 3);
  // The same 93 chunks in one pass, context and state fed back chunk by chunk (assets.md).
  at::Tensor all = at::cat(inputs), state = at::zeros({2, 1, 128}), context = at::zeros({1, 64});
  at::Tensor sr = at::scalar_tensor(16000, at::kLong);
  std::vector<at::Tensor> continuous;
  for (int64_t c = 0; c < all.size(0) / 512; ++c) {
    at::Tensor chunk = all.narrow(0, c * 512, 512).unsqueeze(0);
    auto out = model->forward({at::cat({context, chunk}, 1), sr, state});
    continuous.push_back(out[0].reshape({1}));
    state = out[1];
    context = chunk.narrow(1, 448, 64);
  }
  const double diff = (at::cat(probs) - at::cat(continuous)).abs().max().item<double>();
  MESSAGE("max |p_interval - p_continuous| over 93 chunks: " << diff);
  CHECK(diff < 1e-5);
  // Starting the second interval from a fresh state instead changes its first chunks.
  task.reset();
  at::Tensor fresh = task.infer(inputs[1].unsqueeze(0))[0][0];
  CHECK((fresh - probs[1]).abs().max().item<double>() > 1e-3);
  // Identical decisions score 1 (hand-computed cases: the chunk-level F1 test case).
  CHECK(task.accuracy(first, first) == 1.0);
}

TEST_CASE(
    "vad: streams batched in one pass (a server's streams) equal each stream on its own, "
    "each from its own state, gradients included") {
  auto model = silero();
  // Three streams of one model, each at its own point of the recording (their own LSTM
  // states), one more task of another model instance.
  std::vector<host::HostTask> tasks;
  for (int i = 0; i < 3; ++i) tasks.push_back(plugins().create_task("vad", {}, {{"vad", model}}));
  auto other = plugins().create_task("vad", {}, {{"vad", silero()}});
  CHECK(!tasks[0].batch_key().empty());
  CHECK(tasks[0].batch_key() == tasks[2].batch_key());
  CHECK(tasks[0].batch_key() != other.batch_key());  // another model: never one pass
  auto source = open_audio(asset_path("speech/librivox-0870.wav"));
  IntervalInfo info;
  std::vector<at::Tensor> inputs;
  for (int i = 0; i < 6 && source.next_interval(info); ++i)
    inputs.push_back(source.render(source.reference()).input);
  REQUIRE(inputs.size() == 6);
  for (std::size_t s = 0; s < 3; ++s) {  // stream s has heard s intervals before the batch
    tasks[s].reset();
    for (std::size_t i = 0; i < s; ++i) {
      at::NoGradGuard no_grad;
      tasks[s].end_interval(tasks[s].decode(tasks[s].infer(inputs[2 * s + i])));
    }
  }
  // Stream 1 sends two samples (a probe's rendering), the others one; streams 0 and 2 ask
  // for DNNGrad.
  std::vector<at::Tensor> xs = {inputs[0], at::cat({inputs[3], inputs[4]}), inputs[5]};
  const std::vector<bool> grad = {true, false, true};
  std::vector<host::HostTask*> who = {&tasks[0], &tasks[1], &tasks[2]};
  auto batched = infer_samples_batch(who, xs, {{}, {}, {}}, grad);
  REQUIRE(batched.size() == 3);
  for (std::size_t s = 0; s < 3; ++s) {
    auto alone = infer_samples(tasks[s], xs[s], {}, grad[s]);
    REQUIRE(batched[s].results.size() == alone.results.size());
    CHECK(batched[s].frames == alone.frames);
    for (std::size_t k = 0; k < alone.results.size(); ++k) {
      const auto& a = static_cast<const TaskResult&>(*alone.results[k]);
      const auto& b = static_cast<const TaskResult&>(*batched[s].results[k]);
      CHECK(a.summary() == b.summary());
    }
    CHECK(tasks[s].accuracy(batched[s].results, alone.results) == 1.0);
    if (grad[s]) {
      CHECK(batched[s].proxy == doctest::Approx(alone.proxy).epsilon(1e-5));
      REQUIRE(batched[s].grad.defined());
      // Equal here bit for bit (each row takes the one-sample kernels); a BLAS that sums a
      // batch's matrix products in another order may differ by float32 rounding through 31
      // recurrent steps: within 1e-4 of the gradient's norm. The control below shows what a
      // wrong state does: order 1.
      const double norm = alone.grad.norm().item<double>();
      CHECK(norm > 0);
      const double rel = (batched[s].grad - alone.grad).norm().item<double>() / norm;
      MESSAGE("stream " << s << ": |grad_batched - grad_alone| / |grad_alone| = " << rel);
      CHECK(rel < 1e-4);
    }
  }
  // Control: stream 2's gradient from another stream's state (a fresh one) is far off.
  {
    auto control = plugins().create_task("vad", {}, {{"vad", model}});
    control.reset();
    auto wrong = infer_samples(control, xs[2], {}, true);
    const double rel = (wrong.grad - batched[2].grad).norm().item<double>() /
                       batched[2].grad.norm().item<double>();
    MESSAGE("stream 2 from a fresh state: relative gradient difference " << rel);
    CHECK(rel > 1e-2);
  }
  // The probabilities themselves, row by row, to rounding.
  {
    at::NoGradGuard no_grad;
    auto parts = host::HostTask::infer_batch(who, xs);
    for (std::size_t s = 0; s < 3; ++s) {
      auto alone = tasks[s].infer(xs[s]);
      CHECK(parts[s][0].sizes() == alone[0].sizes());
      CHECK((parts[s][0] - alone[0]).abs().max().item<double>() < 1e-5);
      CHECK((parts[s][1] - alone[1]).abs().max().item<double>() < 1e-5);  // the state after
    }
  }
}

namespace {

// VAD results decoded from hand-made outputs: one row of chunk probabilities per sample.
std::vector<ResultPtr> vad_results(host::HostTask& task,
                                   const std::vector<std::vector<float>>& probs) {
  const auto n = static_cast<int64_t>(probs.size()), c = static_cast<int64_t>(probs[0].size());
  at::Tensor p = at::empty({n, c});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
      p[i][k] = probs[static_cast<std::size_t>(i)][static_cast<std::size_t>(k)];
  return task.decode({p, at::zeros({n, 2, 128}), at::zeros({n, 64})});
}

}  // namespace

TEST_CASE(
    "vad: chunk-level F1 against hand-computed values (partial matches, empty sides, "
    "micro-averaged samples)") {
  auto task = plugins().create_task("vad", {}, {{"vad", silero()}});  // threshold 0.5
  auto ref = vad_results(task, {{0.9f, 0.9f, 0.1f, 0.1f, 0.9f}});
  // Speech at chunks 0, 2, 4 against the reference's 0, 1, 4: TP 2, FP 1, FN 1 -> 4 / 6.
  CHECK(task.accuracy(vad_results(task, {{0.9f, 0.1f, 0.9f, 0.1f, 0.9f}}), ref) ==
        doctest::Approx(2.0 / 3.0));
  // A probability equal to the threshold is not speech (strictly above): TP 2, FN 1 -> 4 / 5.
  CHECK(task.accuracy(vad_results(task, {{0.9f, 0.5f, 0.1f, 0.1f, 0.9f}}), ref) ==
        doctest::Approx(0.8));
  auto silent = vad_results(task, {{0.1f, 0.2f, 0.0f, 0.3f, 0.4f}});
  CHECK(task.accuracy(silent, silent) == 1.0);  // no speech on either side
  CHECK(task.accuracy(silent, ref) == 0.0);     // everything missed
  CHECK(task.accuracy(ref, silent) == 0.0);     // everything a false alarm
  // Two samples count together (micro-average), not as a mean of per-sample F1:
  // sample 0 TP 1 FN 1, sample 1 FP 1 -> 2 / (2 + 1 + 1) = 0.5 (a per-sample mean would be 1/3).
  auto ref2 = vad_results(task, {{0.9f, 0.9f}, {0.1f, 0.1f}});
  auto got2 = vad_results(task, {{0.9f, 0.1f}, {0.9f, 0.1f}});
  CHECK(task.accuracy(got2, ref2) == doctest::Approx(0.5));
  CHECK_THROWS_AS(task.accuracy(vad_results(task, {{0.9f, 0.9f, 0.9f}}), ref),
                  Error);  // lengths differ
}

TEST_CASE("vad: the proxy is differentiable with respect to the audio, also on digital silence") {
  auto task = plugins().create_task("vad", {}, {{"vad", silero()}});
  auto pcm = read_pcm16(asset_path("speech/librivox-0870.wav"));
  at::Tensor x = at::zeros({1, 31 * 512});
  for (int64_t i = 0; i < x.size(1); ++i)
    x[0][i] = pcm[static_cast<std::size_t>(16000 + i)] / 32768.0f;
  for (bool silent : {false, true}) {
    at::Tensor in = (silent ? at::zeros_like(x) : x).clone().requires_grad_(true);
    auto out = task.infer(in);
    at::Tensor proxy = task.proxy(out);
    auto g = engine::input_gradients(proxy, {in})[0];
    CHECK(at::isfinite(g).all().item<bool>());
    if (!silent) {
      CHECK(proxy.item<double>() > 20);  // read speech: most of the 31 chunks are confident speech
      CHECK(g.abs().sum().item<double>() > 0);
    }
  }
}

namespace {

RunSummary run_speech(double beta, fs::path& out, std::size_t intervals) {
  return test_support::run_oneadapt(open_audio(asset_path("speech/stream.wav")),
                                    plugins().create_task("vad", {}, {{"vad", silero()}}), beta,
                                    intervals, out);
}

}  // namespace

TEST_CASE("OneAdapt on 8 s of the speech stream: beta = 0 keeps the reference, accuracy 1") {
  fs::path out;
  RunSummary s = run_speech(0.0, out, 8);
  auto records = record_lines(out);
  REQUIRE(records.size() == 8);
  for (const auto& r : records) {
    CHECK(r["config_str"] == "sample_rate=16000 bits=16 codec=flac");
    CHECK(r["accuracy"].get<double>() == 1.0);
    CHECK(r["charges"]["backward_passes"] == 1);
    for (const char* k : {"sample_rate", "bits", "codec"})
      CHECK(r["trace"]["accgrad"][k].is_number());
  }
  CHECK(s.charges.uplink() == s.bytes_ref_total);
  fs::remove_all(out);
}

TEST_CASE("OneAdapt on 8 s of the speech stream: a large beta cuts bytes to <= 40%") {
  fs::path out;
  RunSummary s = run_speech(3.0, out, 8);
  auto records = record_lines(out);
  REQUIRE(records.size() == 8);
  const double ratio =
      static_cast<double>(s.charges.uplink()) / static_cast<double>(s.bytes_ref_total);
  MESSAGE("bytes " << 100 * ratio << "% of the reference, accuracy " << s.accuracy_mean << ", last "
                   << records.back()["config_str"]);
  CHECK(ratio <= 0.4);
  CHECK(records.back()["config_str"] != "sample_rate=16000 bits=16 codec=flac");
  fs::remove_all(out);
}

TEST_CASE("audio: frame filtering (Reducto) is refused with a clear error") {
  auto source = open_audio(asset_path("speech/librivox-0870.wav"));
  IntervalInfo info;
  REQUIRE(source.next_interval(info));
  CHECK_THROWS_WITH_AS(source.render_selected(source.reference(), {1}),
                       doctest::Contains("cannot send a chosen subset"), Error);
  auto task = plugins().create_task("vad", {}, {{"vad", silero()}});
  PolicyArgs args;
  args.point = 0.9;
  const fs::path dir = temp_dir("reducto");
  CHECK_THROWS_WITH_AS(
      test_support::run_policy("reducto", open_audio(asset_path("speech/librivox-0870.wav")), task,
                               args, dir, 2),
      doctest::Contains("reducto: filters video frames"), Error);
  fs::remove_all(dir);
}

TEST_CASE("audio: FLAC, Ogg Vorbis and Ogg Opus files open like WAV (libsndfile)") {
  const fs::path dir = temp_dir("formats");
  // 3 s of real speech written in each container by libsndfile itself.
  auto pcm = read_pcm16(asset_path("speech/librivox-0870.wav"));
  pcm.resize(48000);
  const std::pair<const char*, int> formats[] = {{"speech.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16},
                                                 {"speech.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS},
                                                 {"speech.opus", SF_FORMAT_OGG | SF_FORMAT_OPUS}};
  auto wav = open_audio(asset_path("speech/librivox-0870.wav"));
  IntervalInfo info;
  REQUIRE(wav.next_interval(info));
  REQUIRE(wav.next_interval(info));
  const at::Tensor G = wav.original();
  for (const auto& [name, format] : formats) {
    SF_INFO si{};
    si.samplerate = 16000;
    si.channels = 1;
    si.format = format;
    SNDFILE* f = sf_open((dir / name).string().c_str(), SFM_WRITE, &si);
    REQUIRE_MESSAGE(f != nullptr, name << ": " << sf_strerror(nullptr));
    sf_writef_short(f, pcm.data(), static_cast<sf_count_t>(pcm.size()));
    sf_close(f);
    auto source = open_audio(dir / name);
    REQUIRE(source.next_interval(info));
    REQUIRE(source.next_interval(info));
    const double diff = (source.original() - G).abs().mean().item<double>(),
                 level = G.abs().mean().item<double>();
    MESSAGE(std::string(name) << ": mean |x - wav| " << diff << " against a mean level " << level);
    CHECK(source.original().sizes() == G.sizes());
    CHECK(diff < (std::string(name) == "speech.flac"
                      ? 1e-9
                      : 0.5 * level));  // lossless; lossy but the same speech
  }
  fs::remove_all(dir);
}
