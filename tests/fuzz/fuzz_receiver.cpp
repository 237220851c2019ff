// Fuzz target: a modality's receiver (the server side, SDK ABI 6) on damaged or hostile bytes,
// the plugin's source file compiled in (FUZZ_MODALITY: video or audio). At the first input a real
// interval is rendered from a small synthetic recording (4 frames of 64x48 PPM images; 1 s of a
// 440 Hz tone) and its `wire` kept; each input then says what reaches the receiver:
//   byte 0 = 0: the rest of the input itself, as the interval's bytes;
//   byte 0 = 1: the real bytes with (position, value) pairs from the rest XORed in (3 bytes each);
//   byte 0 = 2: the real bytes cut at the 16-bit position in bytes 1-2, the rest appended;
//   empty: the real bytes (decoded, checked equal to the source's input).
// Anything other than a decoded input of the interval's shape or an oneadapt::Error aborts.
#include <ATen/ATen.h>

#include <oneadapt/error.hpp>
#include <oneadapt/plugin.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "fuzz_modality.hpp"

namespace {

using namespace oneadapt;

struct Setup {
  std::unique_ptr<Source> source;
  std::unique_ptr<Receiver> receiver;
  IntervalInfo info;
  Configuration config;
  Rendering rendering;
};

std::string recording() {
  const std::string name = FUZZ_MODALITY;
  if (name == "video") {
    const auto dir = fuzz::scratch() / "frames";
    std::filesystem::create_directories(dir);
    for (int f = 0; f < 4; ++f) {
      std::ofstream out(dir / ("frame" + std::to_string(f) + ".ppm"), std::ios::binary);
      out << "P6\n64 48\n255\n";
      for (int y = 0; y < 48; ++y)
        for (int x = 0; x < 64; ++x) {
          const unsigned char px[3] = {static_cast<unsigned char>((x * 4 + f * 9) & 255),
                                       static_cast<unsigned char>((y * 5) & 255),
                                       static_cast<unsigned char>(((x ^ y) * 3) & 255)};
          out.write(reinterpret_cast<const char*>(px), 3);
        }
    }
    return dir.string();
  }
  // 1 s of a tone, 16 kHz mono 16-bit WAV.
  const int n = 16000;
  std::vector<short> pcm(n);
  for (int i = 0; i < n; ++i)
    pcm[static_cast<std::size_t>(i)] =
        static_cast<short>(8000 * std::sin(2 * 3.14159265 * 440 * i / 16000.0));
  const auto p = fuzz::scratch() / "tone.wav";
  std::ofstream f(p, std::ios::binary);
  auto u32 = [&](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  f.write("RIFF", 4), u32(36 + 2 * n), f.write("WAVEfmt ", 8), u32(16), u16(1), u16(1);
  u32(16000), u32(32000), u16(2), u16(16), f.write("data", 4), u32(2 * n);
  f.write(reinterpret_cast<const char*>(pcm.data()), 2 * n);
  return p.string();
}

Setup& setup() {
  static Setup s = [] {
    Setup out;
    const auto& info = fuzz::modality();
    SourceSpec spec;
    spec.uri = recording();
    for (const auto& p : info.params) spec.params.set(p.key, p.default_value);
    out.source = info.open(spec);
    if (!out.source->next_interval(out.info)) {
      std::fprintf(stderr, "fuzz_receiver: the synthetic recording has no interval\n");
      std::abort();
    }
    out.config = out.source->reference();
    out.rendering = out.source->render(out.config);
    out.receiver = info.open_receiver(ReceiverSpec{spec.params, out.source->stream_format()});
    return out;
  }();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Setup& s = setup();
  const std::vector<std::uint8_t>& real = s.rendering.wire;
  std::vector<std::uint8_t> wire;
  if (size == 0) {
    wire = real;
  } else if (data[0] == 0) {
    wire.assign(data + 1, data + size);
  } else if (data[0] == 1) {
    wire = real;
    for (std::size_t k = 1; k + 2 < size; k += 3) {
      const std::size_t at = (static_cast<std::size_t>(data[k]) << 8 | data[k + 1]) % wire.size();
      wire[at] ^= data[k + 2];
    }
  } else {
    const std::size_t cut =
        size >= 3 ? (static_cast<std::size_t>(data[1]) << 8 | data[2]) % (real.size() + 1) : 0;
    wire.assign(real.begin(), real.begin() + static_cast<std::ptrdiff_t>(cut));
    if (size > 3) wire.insert(wire.end(), data + 3, data + size);
  }
  try {
    at::Tensor x = s.receiver->decode(s.config, s.info, s.rendering.fresh, wire);
    if (!x.defined() || x.sizes() != s.rendering.input.sizes()) std::abort();
    if (size == 0 && !at::equal(x, s.rendering.input)) std::abort();
  } catch (const oneadapt::Error&) {
  }
  return 0;
}
