// ONNX models in the engine: Silero VAD v5 streamed over real speech (LibriVox, Debian's
// pocketsphinx-testdata) with digital silence between the clips, checked chunk by chunk against
// onnxruntime itself; gradients that stay finite on exact zeros; bad ONNX files.
#include <ATen/ATen.h>

#include <doctest/doctest.h>

#include "../guard.hpp"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <tuple>

#include <onnx/onnx_pb.h>

#include "assets.hpp"
#include "engine/engine.hpp"

using namespace oneadapt;
namespace fs = std::filesystem;

namespace {

// 16-bit PCM mono WAV -> float samples in [-1, 1).
std::vector<float> read_wav16(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(b.size() > 44);
  REQUIRE(std::memcmp(b.data(), "RIFF", 4) == 0);
  std::size_t pos = 12;
  while (pos + 8 <= b.size()) {
    uint32_t size;
    std::memcpy(&size, b.data() + pos + 4, 4);
    if (std::memcmp(b.data() + pos, "data", 4) == 0) {
      std::vector<float> out(size / 2);
      for (std::size_t i = 0; i < out.size(); ++i) {
        int16_t v;
        std::memcpy(&v, b.data() + pos + 8 + 2 * i, 2);
        out[i] = static_cast<float>(v) / 32768.0f;
      }
      return out;
    }
    pos += 8 + size;
  }
  FAIL("no data chunk in " << p);
  return {};
}

// Speech 0870, 1 s of digital silence, speech 0880, 0.5 s of silence, speech 0890.
struct Stream {
  std::vector<float> samples;
  std::vector<std::pair<std::size_t, std::size_t>> speech, silence;  // chunk ranges
};

Stream demo_stream() {
  Stream s;
  auto add = [&](const std::vector<float>& part, bool speech) {
    std::size_t first = s.samples.size() / 512;
    s.samples.insert(s.samples.end(), part.begin(), part.end());
    (speech ? s.speech : s.silence).push_back({first, s.samples.size() / 512});
  };
  add(read_wav16(asset_path("speech/librivox-0870.wav")), true);
  add(std::vector<float>(16000, 0.f), false);
  add(read_wav16(asset_path("speech/librivox-0880.wav")), true);
  add(std::vector<float>(8000, 0.f), false);
  add(read_wav16(asset_path("speech/librivox-0890.wav")), true);
  return s;
}

// Silero streaming as onnxruntime runs it (tools/ort-run-silero.cjs): per 512-sample chunk,
// 64 samples of context, the state carried.
std::vector<float> silero_stream(engine::EngineModel& m, const std::vector<float>& x) {
  const std::size_t chunks = x.size() / 512;
  std::vector<float> probs;
  at::Tensor state = at::zeros({2, 1, 128});
  at::Tensor sr = at::scalar_tensor(16000, at::kLong);
  at::Tensor samples =
      at::from_blob(const_cast<float*>(x.data()), {static_cast<int64_t>(x.size())}, at::kFloat);
  at::NoGradGuard g;
  for (std::size_t c = 0; c < chunks; ++c) {
    const int64_t start = static_cast<int64_t>(c) * 512;
    at::Tensor input = at::zeros({1, 576});
    const int64_t ctx = std::min<int64_t>(64, start);
    if (ctx > 0) input.narrow(1, 64 - ctx, ctx).copy_(samples.narrow(0, start - ctx, ctx));
    input.narrow(1, 64, 512).copy_(samples.narrow(0, start, 512));
    auto out = m.forward({input, sr, state});
    probs.push_back(out[0].item<float>());
    state = out[1];
  }
  return probs;
}

}  // namespace

TEST_CASE("Silero VAD: the importer loads the 16 kHz model with its signature") {
  auto m = engine::load_model(asset_path("silero/silero_vad_op18_ifless.onnx"));
  CHECK(m->format() == "onnx");
  REQUIRE(m->inputs().size() == 3);
  CHECK(m->inputs()[0].name == "input");
  CHECK(m->inputs()[1].dtype == "int64");
  CHECK(m->inputs()[2].shape == std::vector<int64_t>{2, -1, 128});
  REQUIRE(m->outputs().size() == 2);
  CHECK(m->outputs()[1].name == "stateN");
  CHECK(m->summary().parameters > 300'000);
}

TEST_CASE(
    "Silero VAD matches onnxruntime over real speech and silence (max abs diff < 2e-5, measured "
    "1.8e-6)") {
  fs::path ort = asset_cache_dir() / "node" / "ort";
  REQUIRE_MESSAGE(fs::exists(ort / "node_modules" / "onnxruntime-node"),
                  "onnxruntime-node is not in the cache: run tools/fetch-assets ort");
  REQUIRE_MESSAGE(std::system("node --version >/dev/null 2>&1") == 0,
                  "node is not installed: run tools/install-deps");
  auto m = engine::load_model(asset_path("silero/silero_vad_op18_ifless.onnx"));
  Stream s = demo_stream();
  std::vector<float> ours = silero_stream(*m, s.samples);

  fs::path dir = fs::temp_directory_path() / ("oneadapt-ort-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "samples.f32", std::ios::binary)
      .write(reinterpret_cast<const char*>(s.samples.data()),
             static_cast<std::streamsize>(s.samples.size() * 4));
  std::string cmd = "ONEADAPT_ORT_DIR='" + ort.string() +
                    "' node '" ONEADAPT_SOURCE_DIR "/tools/ort-run-silero.cjs' '" +
                    asset_path("silero/silero_vad_op18_ifless.onnx").string() + "' '" +
                    (dir / "samples.f32").string() + "' '" + (dir / "probs.f32").string() +
                    "' > '" + (dir / "log").string() + "' 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream log(dir / "log");
  INFO("ort-run-silero: " << std::string((std::istreambuf_iterator<char>(log)),
                                         std::istreambuf_iterator<char>()));
  REQUIRE(rc == 0);
  std::ifstream in(dir / "probs.f32", std::ios::binary);
  std::vector<float> theirs(ours.size());
  in.read(reinterpret_cast<char*>(theirs.data()), static_cast<std::streamsize>(theirs.size() * 4));
  REQUIRE(in.gcount() == static_cast<std::streamsize>(theirs.size() * 4));
  double diff = 0;
  for (std::size_t i = 0; i < ours.size(); ++i)
    diff = std::max(diff, static_cast<double>(std::abs(ours[i] - theirs[i])));
  MESSAGE(ours.size() << " chunks (" << s.samples.size() / 16000.0
                      << " s): max |ours - onnxruntime| = " << diff);
  CHECK(diff < 2e-5);

  // What the probabilities say: speech is speech, digital silence is not.
  auto mean = [&](std::pair<std::size_t, std::size_t> r, std::size_t skip) {
    double sum = 0;
    std::size_t n = 0;
    for (std::size_t c = r.first + skip; c < r.second; ++c) sum += ours[c], ++n;
    return n ? sum / static_cast<double>(n) : 0.0;
  };
  for (auto r : s.speech) {
    MESSAGE("speech chunks " << r.first << "-" << r.second << ": mean probability " << mean(r, 0));
    CHECK(mean(r, 0) > 0.5);
  }
  for (auto r : s.silence) {
    MESSAGE("silence chunks " << r.first << "-" << r.second << ": mean probability after 5 chunks "
                              << mean(r, 5));
    CHECK(mean(r, 5) < 0.2);
  }
  fs::remove_all(dir);
}

TEST_CASE("Silero VAD: the input gradient is finite on exact digital silence") {
  auto m = engine::load_model(asset_path("silero/silero_vad_op18_ifless.onnx"));
  for (float level : {0.0f, 0.05f}) {
    at::Tensor x = at::full({1, 576}, level).requires_grad_(true);
    auto out = m->forward({x, at::scalar_tensor(16000, at::kLong), at::zeros({2, 1, 128})});
    at::Tensor g = engine::input_gradients(out[0].sum(), {x})[0];
    MESSAGE("input level " << level << ": output " << out[0].item<float>() << ", |grad| max "
                           << g.abs().max().item<double>());
    CHECK(at::isfinite(g).all().item<bool>());
  }
  // The same model from real speech: a non-zero, finite gradient.
  auto speech = read_wav16(asset_path("speech/librivox-0870.wav"));
  at::Tensor x =
      at::from_blob(speech.data() + 16000, {1, 576}, at::kFloat).clone().requires_grad_(true);
  auto out = m->forward({x, at::scalar_tensor(16000, at::kLong), at::zeros({2, 1, 128})});
  at::Tensor g = engine::input_gradients(out[0].sum(), {x})[0];
  CHECK(at::isfinite(g).all().item<bool>());
  CHECK(g.abs().max().item<double>() > 0);
}

TEST_CASE("bad ONNX files: one clear error naming the file") {
  fs::path dir = fs::temp_directory_path() / ("oneadapt-badonnx-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path good = asset_path("silero/silero_vad_op18_ifless.onnx");
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto expect = [&](const fs::path& p, Errc code, const std::string& fragment) {
    try {
      engine::load_model(p);
      FAIL("no error for " << p);
    } catch (const Error& e) {
      INFO(e.what());
      CHECK(e.code() == code);
      CHECK(std::string(e.what()).rfind(p.string(), 0) == 0);
      CHECK(std::string(e.what()).find(fragment) != std::string::npos);
    }
  };
  std::ofstream(dir / "truncated.onnx", std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  expect(dir / "truncated.onnx", Errc::corrupt_data, "not a valid ONNX model");
  std::ofstream(dir / "text.onnx") << "this is not a model\n";
  expect(dir / "text.onnx", Errc::corrupt_data, "not a valid ONNX model");
  // An op we do not implement: rename one op_type in the serialized bytes ("Tanh" -> "Tanx").
  std::string renamed = bytes;
  auto at = renamed.find("Tanh");
  REQUIRE(at != std::string::npos);
  renamed[at + 3] = 'x';
  std::ofstream(dir / "unsupported.onnx", std::ios::binary) << renamed;
  expect(dir / "unsupported.onnx", Errc::unsupported, "unsupported op Tanx (first at node");
  fs::remove_all(dir);
}

namespace {

// Runs `model` in onnxruntime on one float32 input; returns its outputs.
std::vector<at::Tensor> ort_run(const fs::path& model, const std::string& input_name,
                                const at::Tensor& x, const std::vector<at::Tensor>& like) {
  fs::path dir = fs::temp_directory_path() / ("oneadapt-ortrun-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  at::Tensor c = x.contiguous();
  std::ofstream(dir / "in.f32", std::ios::binary)
      .write(reinterpret_cast<const char*>(c.data_ptr<float>()),
             static_cast<std::streamsize>(c.numel() * 4));
  std::string dims;
  for (auto d : x.sizes()) dims += (dims.empty() ? "" : "x") + std::to_string(d);
  std::string cmd = "ONEADAPT_ORT_DIR='" + (asset_cache_dir() / "node" / "ort").string() +
                    "' node '" ONEADAPT_SOURCE_DIR "/tools/ort-run.cjs' '" + model.string() +
                    "' '" + (dir / "out").string() + "' '" + input_name + ":float32:" + dims + ":" +
                    (dir / "in.f32").string() + "' > '" + (dir / "log").string() + "' 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::vector<at::Tensor> out;
  for (std::size_t k = 0; k < like.size(); ++k) {
    at::Tensor t = at::empty(like[k].sizes(), at::kFloat);
    std::ifstream in(dir / "out" / ("out_" + std::to_string(k) + ".f32"), std::ios::binary);
    in.read(reinterpret_cast<char*>(t.data_ptr<float>()),
            static_cast<std::streamsize>(t.numel() * 4));
    REQUIRE(in.gcount() == static_cast<std::streamsize>(t.numel() * 4));
    out.push_back(t);
  }
  fs::remove_all(dir);
  return out;
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kFloat) - b).abs().max().item<double>();
}

}  // namespace

TEST_CASE(
    "openWakeWord (optional asset): mel, embedding and wake-word head match onnxruntime stage by "
    "stage") {
  const fs::path dir = asset_cache_dir() / "openwakeword";
  if (!fs::exists(dir / "hey_jarvis_v0.1.onnx")) {
    // Its models are CC BY-NC-SA (non-commercial): never a default download.
    TEST_SKIP(
        "openWakeWord's models are optional (non-commercial licence); fetch them with "
        "tools/fetch-assets openwakeword");
  }
  at::NoGradGuard g;
  auto speech = read_wav16(asset_path("speech/librivox-0870.wav"));
  speech.resize(48000);  // 3 s
  at::Tensor audio = at::from_blob(speech.data(), {1, 48000}, at::kFloat).clone();

  auto mel = engine::load_model(dir / "melspectrogram.onnx");
  auto mel_out = mel->forward({audio});
  double d_mel = max_diff(
      mel_out[0], ort_run(dir / "melspectrogram.onnx", mel->inputs()[0].name, audio, mel_out)[0]);
  MESSAGE("melspectrogram " << mel_out[0].sizes() << ": max |ours - onnxruntime| = " << d_mel);
  CHECK(d_mel < 1e-4);

  // openWakeWord's glue: mel / 10 + 2, windows of 76 frames every 8 frames.
  at::Tensor m = mel_out[0][0][0] / 10 + 2;  // [frames, 32]
  std::vector<at::Tensor> windows;
  for (int64_t start = 0; start + 76 <= m.size(0) && windows.size() < 16; start += 8)
    windows.push_back(m.narrow(0, start, 76));
  REQUIRE(windows.size() == 16);
  at::Tensor batch = at::stack(windows).unsqueeze(-1).contiguous();  // [16, 76, 32, 1]
  auto emb = engine::load_model(dir / "embedding_model.onnx");
  auto emb_out = emb->forward({batch});
  double d_emb = max_diff(
      emb_out[0], ort_run(dir / "embedding_model.onnx", emb->inputs()[0].name, batch, emb_out)[0]);
  MESSAGE("embedding " << emb_out[0].sizes() << ": max |ours - onnxruntime| = " << d_emb);
  CHECK(d_emb < 1e-4);

  at::Tensor features = emb_out[0].reshape({1, 16, 96}).contiguous();
  auto head = engine::load_model(dir / "hey_jarvis_v0.1.onnx");
  auto head_out = head->forward({features});
  double d_head = max_diff(head_out[0], ort_run(dir / "hey_jarvis_v0.1.onnx",
                                                head->inputs()[0].name, features, head_out)[0]);
  MESSAGE("hey_jarvis head: score " << head_out[0].item<float>()
                                    << " on read speech; max |ours - onnxruntime| = " << d_head);
  CHECK(d_head < 1e-4);
}

namespace {

// A one-node ONNX graph: y = Conv(x, w) with a 1-D kernel, `strides` and `pads` (begin, end), no
// bias; x [batch, 4, length], both dynamic.
fs::path write_conv1d_model(const fs::path& dir, const at::Tensor& w, int64_t stride,
                            int64_t pad_begin, int64_t pad_end) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("conv1d");
  auto* in = g->add_input();
  in->set_name("x");
  auto* t = in->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  t->mutable_shape()->add_dim()->set_dim_param("batch");
  t->mutable_shape()->add_dim()->set_dim_value(w.size(1));
  t->mutable_shape()->add_dim()->set_dim_param("length");
  auto* out = g->add_output();
  out->set_name("y");
  out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  auto* init = g->add_initializer();
  init->set_name("w");
  init->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : w.sizes()) init->add_dims(d);
  at::Tensor wc = w.contiguous();
  init->set_raw_data(std::string(reinterpret_cast<const char*>(wc.data_ptr<float>()),
                                 static_cast<std::size_t>(wc.numel()) * sizeof(float)));
  auto* n = g->add_node();
  n->set_op_type("Conv");
  n->add_input("x");
  n->add_input("w");
  n->add_output("y");
  auto* a = n->add_attribute();
  a->set_name("strides");
  a->set_type(onnx::AttributeProto::INTS);
  a->add_ints(stride);
  a = n->add_attribute();
  a->set_name("pads");
  a->set_type(onnx::AttributeProto::INTS);
  a->add_ints(pad_begin);
  a->add_ints(pad_end);
  const fs::path file = dir / ("conv1d-" + std::to_string(stride) + "-" +
                               std::to_string(pad_begin) + "-" + std::to_string(pad_end) + ".onnx");
  std::ofstream f(file, std::ios::binary);
  m.SerializeToOstream(&f);
  return file;
}

}  // namespace

TEST_CASE(
    "ONNX Conv 1-D: a batch (the one-sample kernel) equals ATen's conv1d and each row alone, "
    "forward and input gradient") {
  const fs::path dir = fs::temp_directory_path() / ("oneadapt-conv1d-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  at::manual_seed(7);
  const at::Tensor w = at::randn({5, 4, 3});
  for (auto [stride, pb, pe] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {2, 1, 2}, {3, 0, 0}}) {
    auto model = engine::load_model(write_conv1d_model(dir, w, stride, pb, pe));
    const at::Tensor x = at::randn({3, 4, 37});
    // Reference: ATen's own conv1d on the padded input.
    at::Tensor xr = x.clone().requires_grad_(true);
    at::Tensor ref = at::conv1d(at::constant_pad_nd(xr, {pb, pe}), w, {}, {stride});
    at::Tensor xb = x.clone().requires_grad_(true);
    at::Tensor y = model->forward({xb})[0];
    REQUIRE(y.sizes() == ref.sizes());
    CHECK((y - ref).abs().max().item<double>() < 1e-5);
    at::Tensor weights = at::randn(ref.sizes());  // a scalar that mixes every output
    auto g_ref = engine::input_gradients((ref * weights).sum(), {xr})[0];
    auto g = engine::input_gradients((y * weights).sum(), {xb})[0];
    CHECK((g - g_ref).abs().max().item<double>() < 1e-5);
    at::NoGradGuard no_grad;
    for (int64_t k = 0; k < 3; ++k)  // each row as alone, bit for bit
      CHECK(at::equal(model->forward({x.narrow(0, k, 1)})[0], y.detach().narrow(0, k, 1)));
  }
  fs::remove_all(dir);
}
