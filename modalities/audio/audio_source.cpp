// The audio modality: any file libsndfile opens (WAV, FLAC, Ogg Vorbis/Opus, AIFF, ...), any
// channel count (downmixed to mono) and rate (resampled to 16 kHz, the DNN's rate, with
// libswresample). Knobs: sample rate, sample bits (requantisation) and codec (lossless FLAC,
// then an Ogg Vorbis quality ladder). A rendering resamples the interval to the knob's rate,
// requantises it, encodes it in memory through libsndfile's virtual I/O (real bytes), decodes
// it and resamples it back to 16 kHz, so that every rendering is [1, L] at 16 kHz and renderings
// compare sample by sample.
#include <ATen/ATen.h>
#include <oneadapt/sdk.hpp>
#include <sndfile.h>

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
}

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace oneadapt;
namespace fs = std::filesystem;

constexpr int kModelRate = 16000;  // Silero VAD and most speech models take 16 kHz mono

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// --- in-memory files through libsndfile's virtual I/O ---------------------------------------

struct MemoryFile {
  std::vector<unsigned char> data;
  sf_count_t pos = 0;
};

sf_count_t mem_length(void* u) {
  return static_cast<sf_count_t>(static_cast<MemoryFile*>(u)->data.size());
}
sf_count_t mem_seek(sf_count_t offset, int whence, void* u) {
  auto* m = static_cast<MemoryFile*>(u);
  sf_count_t base = whence == SEEK_SET   ? 0
                    : whence == SEEK_CUR ? m->pos
                                         : static_cast<sf_count_t>(m->data.size());
  m->pos = std::max<sf_count_t>(0, base + offset);
  return m->pos;
}
sf_count_t mem_read(void* out, sf_count_t n, void* u) {
  auto* m = static_cast<MemoryFile*>(u);
  sf_count_t k = std::max<sf_count_t>(
      0, std::min<sf_count_t>(n, static_cast<sf_count_t>(m->data.size()) - m->pos));
  if (k > 0) std::memcpy(out, m->data.data() + m->pos, static_cast<std::size_t>(k));
  m->pos += k;
  return k;
}
sf_count_t mem_write(const void* in, sf_count_t n, void* u) {
  auto* m = static_cast<MemoryFile*>(u);
  if (m->pos + n > static_cast<sf_count_t>(m->data.size()))
    m->data.resize(static_cast<std::size_t>(m->pos + n));
  std::memcpy(m->data.data() + m->pos, in, static_cast<std::size_t>(n));
  m->pos += n;
  return n;
}
sf_count_t mem_tell(void* u) { return static_cast<MemoryFile*>(u)->pos; }
SF_VIRTUAL_IO kMemoryIo{mem_length, mem_seek, mem_read, mem_write, mem_tell};

struct SndCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndFile = std::unique_ptr<SNDFILE, SndCloser>;

// --- codecs ------------------------------------------------------------------------------------

/// A codec of the ladder: lossless FLAC (quality < 0) or Ogg Vorbis at a VBR quality in [0, 1].
struct Codec {
  bool vorbis = false;
  double quality = 0;
};

Codec codec_of(const KnobValue& v) {
  return v.label == "flac" ? Codec{false, 0} : Codec{true, v.number};
}

/// Encodes `pcm` (int16 values, mono, `rate` Hz) in memory; returns the file's bytes.
std::vector<unsigned char> encode(const std::vector<short>& pcm, int rate, const Codec& codec) {
  MemoryFile mem;
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  info.format =
      codec.vorbis ? (SF_FORMAT_OGG | SF_FORMAT_VORBIS) : (SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
  SndFile f(sf_open_virtual(&kMemoryIo, SFM_WRITE, &info, &mem));
  if (!f)
    throw Error(Errc::io, std::string("audio: cannot start the encoder: ") + sf_strerror(nullptr));
  if (codec.vorbis) {
    double q = codec.quality;
    sf_command(f.get(), SFC_SET_VBR_ENCODING_QUALITY, &q, sizeof q);
    // Vorbis is a float codec: hand it the requantised samples as floats (exact: s / 32768).
    std::vector<float> x(pcm.size());
    for (std::size_t i = 0; i < pcm.size(); ++i) x[i] = static_cast<float>(pcm[i]) / 32768.0f;
    if (!x.empty() && sf_writef_float(f.get(), x.data(), static_cast<sf_count_t>(x.size())) !=
                          static_cast<sf_count_t>(x.size()))
      throw Error(Errc::io, std::string("audio: Vorbis encoding failed: ") + sf_strerror(f.get()));
  } else if (!pcm.empty() &&
             sf_writef_short(f.get(), pcm.data(), static_cast<sf_count_t>(pcm.size())) !=
                 static_cast<sf_count_t>(pcm.size())) {
    throw Error(Errc::io, std::string("audio: FLAC encoding failed: ") + sf_strerror(f.get()));
  }
  f.reset();  // flushes the last pages
  return std::move(mem.data);
}

/// Decodes an in-memory file written by encode(); returns floats in [-1, 1).
/// `what` names the bytes in errors; with `rate` > 0 the file must be mono at that rate.
std::vector<float> decode(const std::vector<unsigned char>& bytes, const Codec& codec,
                          std::size_t expected, const std::string& what = "a rendering",
                          int rate = 0) {
  MemoryFile mem{bytes, 0};
  SF_INFO info{};
  SndFile f(sf_open_virtual(&kMemoryIo, SFM_READ, &info, &mem));
  if (!f)
    throw Error(Errc::corrupt_data, "audio: cannot decode " + what + ": " + sf_strerror(nullptr));
  const int want_format =
      codec.vorbis ? (SF_FORMAT_OGG | SF_FORMAT_VORBIS) : (SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
  if (rate > 0 && (info.samplerate != rate || info.channels != 1 || info.format != want_format))
    throw Error(Errc::corrupt_data, "audio: " + what + " is " + std::to_string(info.channels) +
                                        " channel(s) at " + std::to_string(info.samplerate) +
                                        " Hz in another format than the " +
                                        (codec.vorbis ? "Ogg Vorbis" : "FLAC") + " mono at " +
                                        std::to_string(rate) + " Hz its configuration says");
  std::vector<float> out(expected + 4096);
  sf_count_t got = 0;
  if (codec.vorbis) {
    got = sf_readf_float(f.get(), out.data(), static_cast<sf_count_t>(out.size()));
  } else {
    std::vector<short> s(out.size());  // FLAC: integers, exact
    got = sf_readf_short(f.get(), s.data(), static_cast<sf_count_t>(s.size()));
    for (sf_count_t i = 0; i < got; ++i)
      out[static_cast<std::size_t>(i)] =
          static_cast<float>(s[static_cast<std::size_t>(i)]) / 32768.0f;
  }
  if (rate > 0 && got != static_cast<sf_count_t>(expected))  // received: nothing is padded
    throw Error(Errc::corrupt_data, "audio: " + what + " holds " + std::to_string(got) +
                                        " samples, its configuration needs " +
                                        std::to_string(expected));
  out.resize(static_cast<std::size_t>(std::max<sf_count_t>(0, got)));
  out.resize(expected, 0.0f);  // a codec's priming never changes the length here; pad defensively
  return out;
}

// --- resampling -------------------------------------------------------------------------------

/// Resamples a whole block (mono float) from `in_rate` to `out_rate`, flushing the resampler
/// (stack.md G12) so that no tail is lost; returns exactly round(n * out/in) samples.
std::vector<float> resample(const std::vector<float>& x, int in_rate, int out_rate) {
  if (in_rate == out_rate) return x;
  SwrContext* swr = nullptr;
  AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
  if (swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLT, out_rate, &mono, AV_SAMPLE_FMT_FLT,
                          in_rate, 0, nullptr) < 0 ||
      swr_init(swr) < 0) {
    swr_free(&swr);
    throw Error(Errc::io, "audio: cannot resample " + std::to_string(in_rate) + " Hz to " +
                              std::to_string(out_rate) + " Hz");
  }
  const auto want =
      static_cast<std::size_t>(std::llround(static_cast<double>(x.size()) * out_rate / in_rate));
  std::vector<float> out(want + 256);
  const auto* in = reinterpret_cast<const uint8_t*>(x.data());
  auto* o = reinterpret_cast<uint8_t*>(out.data());
  int got = swr_convert(swr, &o, static_cast<int>(out.size()), &in, static_cast<int>(x.size()));
  if (got >= 0) {
    auto* tail = reinterpret_cast<uint8_t*>(out.data() + got);
    int more = swr_convert(swr, &tail, static_cast<int>(out.size()) - got, nullptr, 0);
    if (more > 0) got += more;
  }
  swr_free(&swr);
  if (got < 0) throw Error(Errc::io, "audio: resampling failed");
  out.resize(static_cast<std::size_t>(got));
  out.resize(want, 0.0f);
  return out;
}

/// A streaming resampler from the file's rate to 16 kHz (the source's own data, G).
class StreamResampler {
 public:
  StreamResampler(int in_rate, const std::string& file) : in_rate_(in_rate) {
    if (in_rate == kModelRate) return;
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    if (swr_alloc_set_opts2(&swr_, &mono, AV_SAMPLE_FMT_FLT, kModelRate, &mono, AV_SAMPLE_FMT_FLT,
                            in_rate, 0, nullptr) < 0 ||
        swr_init(swr_) < 0)
      throw Error(Errc::unsupported,
                  file + ": cannot resample " + std::to_string(in_rate) + " Hz to 16000 Hz");
  }
  ~StreamResampler() { swr_free(&swr_); }
  StreamResampler(const StreamResampler&) = delete;
  StreamResampler& operator=(const StreamResampler&) = delete;

  /// Appends the resampled `x` to `out`; `x` empty flushes.
  void push(const std::vector<float>& x, std::vector<float>& out) {
    if (!swr_) {
      out.insert(out.end(), x.begin(), x.end());
      return;
    }
    const std::size_t cap = x.size() * kModelRate / static_cast<std::size_t>(in_rate_) + 512;
    std::vector<float> tmp(cap);
    auto* o = reinterpret_cast<uint8_t*>(tmp.data());
    const auto* in = reinterpret_cast<const uint8_t*>(x.data());
    int got = x.empty()
                  ? swr_convert(swr_, &o, static_cast<int>(cap), nullptr, 0)
                  : swr_convert(swr_, &o, static_cast<int>(cap), &in, static_cast<int>(x.size()));
    if (got > 0) out.insert(out.end(), tmp.begin(), tmp.begin() + got);
  }

 private:
  int in_rate_;
  SwrContext* swr_ = nullptr;
};

// --- knobs and parameters ----------------------------------------------------------------------

std::vector<KnobSpec> audio_knobs() {
  KnobSpec codec{
      "codec",
      "Codec",
      "Lossless FLAC, then Ogg Vorbis at falling VBR quality (libvorbis quality 1.0 ... 0.0): "
      "fewer bytes, more coding noise. Override with labels 'flac' or 'vorbis-qQ', Q in [0, 1].",
      "",
      {},
      0};
  codec.values.push_back(KnobValue::named("flac", -1));
  for (double q : {0.8, 0.5, 0.3, 0.0}) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "vorbis-q%g", q);
    codec.values.push_back(KnobValue::named(buf, q));
  }
  return {
      KnobSpec::numeric("sample_rate", "Sample rate", "Hz", {16000, 12000, 11025, 8000, 6000, 4000},
                        "The rate the source sends at (resampled down at the source, back to 16 "
                        "kHz for the DNN): "
                        "removes the band above half the rate."),
      KnobSpec::numeric(
          "bits", "Sample bits", "bits", {16, 12, 10, 8, 6, 4},
          "Requantisation of every sample to this many bits (rounding to the nearest level): "
          "quantisation noise against bytes (FLAC stores the unused low bits for free)."),
      codec,
  };
}

std::vector<ParamSpec> audio_params() {
  return {
      {"start", "Start", "Seconds to skip at the start of the input.", ParamType::number, "0"},
      {"window", "Analysis window",
       "Samples at 16 kHz per analysis window (Silero VAD: 512). Intervals are a whole "
       "number of windows; the saliency map is averaged per window.",
       ParamType::integer, "512"},
  };
}

// --- the source ---------------------------------------------------------------------------------

// S: |grad| averaged over analysis windows, broadcast to the sample [L]. The source and the
// receiver share it.
at::Tensor window_saliency(const at::Tensor& grad, int64_t window) {
  at::Tensor g = grad.detach().abs().reshape({-1, window});
  return g.mean(1, /*keepdim=*/true).expand({g.size(0), window}).reshape(grad.sizes()).contiguous();
}

class AudioSource final : public Source {
 public:
  explicit AudioSource(const SourceSpec& spec) : knobs_(audio_knobs()), path_(spec.uri) {
    if (spec.uri.empty()) throw Error(Errc::invalid_argument, "audio: no input given");
    std::error_code ec;
    if (!fs::exists(path_, ec)) throw Error(Errc::not_found, spec.uri + ": no such file");
    if (fs::is_directory(path_, ec))
      throw Error(Errc::invalid_argument, spec.uri + ": is a directory, not an audio file");
    if (fs::file_size(path_, ec) == 0)
      throw Error(Errc::corrupt_data, spec.uri + ": is empty (0 bytes)");

    window_ = spec.params.integer("window");
    if (window_ < 16 || window_ > kModelRate)
      throw Error(Errc::invalid_argument,
                  "audio: window must be 16 ... 16000 samples, got " + std::to_string(window_));
    const double start = spec.params.number("start");
    if (!(start >= 0)) throw Error(Errc::invalid_argument, "audio: start must be >= 0 seconds");
    interval_len_ = std::max<int64_t>(1, std::llround(spec.interval_seconds * kModelRate /
                                                      static_cast<double>(window_))) *
                    window_;

    file_.reset(sf_open(spec.uri.c_str(), SFM_READ, &info_));
    if (!file_)
      throw Error(Errc::unsupported, spec.uri + ": cannot open as audio (libsndfile: " +
                                         first_line(sf_strerror(nullptr)) + ")");
    if (info_.channels < 1 || info_.channels > 256 || info_.samplerate < 1000 ||
        info_.samplerate > 768000)
      throw Error(Errc::corrupt_data, spec.uri + ": implausible header (" +
                                          std::to_string(info_.channels) + " channels at " +
                                          std::to_string(info_.samplerate) + " Hz)");
    if (info_.frames == 0) throw Error(Errc::corrupt_data, spec.uri + ": has no audio samples");
    check_truncation();
    resampler_ = std::make_unique<StreamResampler>(info_.samplerate, spec.uri);

    SourceSpec numeric = spec;  // the codec ladder has names, not numbers
    numeric.ladders.erase("codec");
    apply_numeric_ladder_overrides(
        knobs_, numeric, [](const std::string& key, double v) -> std::string {
          if (key == "sample_rate")
            return v >= 1000 && v <= kModelRate && v == std::floor(v)
                       ? ""
                       : "an integer in [1000, 16000] Hz";
          if (key == "bits")
            return v >= 1 && v <= 16 && v == std::floor(v) ? "" : "an integer in [1, 16]";
          return "";
        });
    if (auto it = spec.ladders.find("codec"); it != spec.ladders.end()) {
      auto& codec = knobs_[2];
      codec.values.clear();
      for (const auto& label : it->second) {
        double q = 0;
        if (label == "flac")
          codec.values.push_back(KnobValue::named("flac", -1));
        else if (label.rfind("vorbis-q", 0) == 0 && parse_number(label.substr(8), q) && q >= 0 &&
                 q <= 1)
          codec.values.push_back(KnobValue::named(label, q));
        else
          throw Error(
              Errc::invalid_argument,
              "knob 'codec': value '" + label + "' is not 'flac' or 'vorbis-qQ' with Q in [0, 1]");
      }
    }
    skip_ = static_cast<int64_t>(std::llround(start * kModelRate));
    name_ = path_.filename().string();
  }

  std::vector<KnobSpec> knobs() const override { return knobs_; }

  bool next_interval(IntervalInfo& info) override {
    // Fill the 16 kHz buffer until it holds one interval (after the skipped start).
    while (!eof_ && static_cast<int64_t>(pending_.size()) < skip_ + interval_len_) read_block();
    if (skip_ > 0) {
      const auto k = std::min<int64_t>(skip_, static_cast<int64_t>(pending_.size()));
      pending_.erase(pending_.begin(), pending_.begin() + k);
      skip_ -= k;
      while (!eof_ && static_cast<int64_t>(pending_.size()) < interval_len_) read_block();
    }
    if (static_cast<int64_t>(pending_.size()) < window_) return false;  // less than one window left
    const auto take = std::min<int64_t>(interval_len_, static_cast<int64_t>(pending_.size()));
    current_.assign(pending_.begin(), pending_.begin() + take);
    current_.resize(static_cast<std::size_t>(interval_len_),
                    0.0f);  // the last interval: padded with silence
    pending_.erase(pending_.begin(), pending_.begin() + take);
    original_ = at::from_blob(current_.data(), {1, interval_len_}, at::kFloat).clone();
    info.index = static_cast<std::size_t>(index_++);
    info.t_start = static_cast<double>(position_) / kModelRate;
    info.duration = static_cast<double>(take) / kModelRate;
    info.samples = 1;
    position_ += take;
    return true;
  }

  at::Tensor original() override { return original_; }

  Rendering render(const Configuration& config) override {
    require_ladder_values(config, knobs_, "audio");
    const int rate = static_cast<int>(std::lround(config.number("sample_rate")));
    const int bits = static_cast<int>(std::lround(config.number("bits")));
    const Codec codec = codec_of(config.at("codec").value);
    Rendering r;
    auto t0 = std::chrono::steady_clock::now();
    std::vector<float> x = resample(current_, kModelRate, rate);
    const int step = 1 << (16 - bits);
    const int top = 32768 - step;  // the largest level that fits in int16
    std::vector<short> pcm(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      double s = std::floor(static_cast<double>(x[i]) * 32768.0 / step + 0.5) * step;
      pcm[i] = static_cast<short>(std::clamp(s, -32768.0, static_cast<double>(top)));
    }
    r.timings_ms["resample"] = ms_since(t0);
    t0 = std::chrono::steady_clock::now();
    auto encoded = encode(pcm, rate, codec);
    r.timings_ms["encode"] = ms_since(t0);
    t0 = std::chrono::steady_clock::now();
    std::vector<float> y = decode(encoded, codec, pcm.size());
    r.timings_ms["decode"] = ms_since(t0);
    t0 = std::chrono::steady_clock::now();
    y = resample(y, rate, kModelRate);
    y.resize(static_cast<std::size_t>(interval_len_), 0.0f);
    r.timings_ms["resample"] += ms_since(t0);
    r.input = at::from_blob(y.data(), {1, interval_len_}, at::kFloat).clone();
    // The stream header (FLAC STREAMINFO; Vorbis identification, comment and codebook pages,
    // about 3-4 KB) is needed once per stream, and again whenever the rate, bits or codec change:
    // its size, measured by encoding an empty stream with the same settings, is reported apart
    // (Rendering::header_bytes) and the core charges it on every change.
    const std::uint64_t header = header_bytes(rate, codec);
    r.header_bytes = header;
    r.bytes = encoded.size() > header ? encoded.size() - header : 0;
    r.wire = std::move(encoded);  // what is sent: the whole file, header first
    r.fresh = {1};
    r.compute_units = 1.0;  // one window of the DNN per interval at every configuration
    return r;
  }

  at::Tensor saliency(const at::Tensor& grad) override { return window_saliency(grad, window_); }

  // The receiver needs the interval's length at 16 kHz.
  std::map<std::string, std::string> stream_format() const override {
    return {{"interval_samples", std::to_string(interval_len_)}};
  }

  std::string describe() const override {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "%s: %d Hz, %d channel%s, %.1f s; intervals of %lld samples at 16 kHz (%.3f s)",
                  name_.c_str(), info_.samplerate, info_.channels, info_.channels == 1 ? "" : "s",
                  static_cast<double>(info_.frames) / info_.samplerate,
                  static_cast<long long>(interval_len_),
                  static_cast<double>(interval_len_) / kModelRate);
    return buf;
  }

 private:
  static std::string first_line(const char* s) {
    std::string out = s ? s : "unknown error";
    if (auto nl = out.find('\n'); nl != std::string::npos) out.resize(nl);
    return out;
  }

  // libsndfile opens a WAV whose data chunk is cut short and silently reads what is there;
  // its log says so ("Data length ... > file length"). A truncated file is an error here: the
  // user would otherwise analyse less audio than the header announces without knowing.
  void check_truncation() {
    char log[4096] = {0};
    sf_command(file_.get(), SFC_GET_LOG_INFO, log, sizeof log);
    std::string text(log);
    for (const char* needle : {"should be", "> file length", "truncated", "Truncated"}) {
      auto at = text.find(needle);
      if (at == std::string::npos) continue;
      auto b = text.rfind('\n', at), e = text.find('\n', at);
      std::string line = text.substr(
          b == std::string::npos ? 0 : b + 1,
          e == std::string::npos ? std::string::npos : e - (b == std::string::npos ? 0 : b + 1));
      line.erase(0, line.find_first_not_of(" \t*"));
      throw Error(
          Errc::corrupt_data,
          path_.string() +
              ": truncated: the header announces more data than the file holds (libsndfile: " +
              line + ")");
    }
  }

  void read_block() {
    const int ch = info_.channels;
    std::vector<float> frames(static_cast<std::size_t>(4096 * ch));
    const sf_count_t got = sf_readf_float(file_.get(), frames.data(), 4096);
    if (sf_error(file_.get()) != SF_ERR_NO_ERROR)
      throw Error(Errc::corrupt_data, path_.string() + ": decoding failed after " +
                                          std::to_string(read_frames_) + " frames (" +
                                          first_line(sf_strerror(file_.get())) + ")");
    read_frames_ += got;
    std::vector<float> mono(static_cast<std::size_t>(got));
    for (sf_count_t i = 0; i < got; ++i) {
      float s = 0;
      for (int c = 0; c < ch; ++c) s += frames[static_cast<std::size_t>(i * ch + c)];
      mono[static_cast<std::size_t>(i)] = s / static_cast<float>(ch);
    }
    if (got > 0) resampler_->push(mono, pending_);
    if (got < 4096) {
      if (info_.frames != SF_COUNT_MAX && read_frames_ < info_.frames)
        throw Error(Errc::corrupt_data, path_.string() + ": truncated: the header announces " +
                                            std::to_string(info_.frames) + " frames, only " +
                                            std::to_string(read_frames_) + " could be read");
      resampler_->push({}, pending_);  // flush (stack.md G12)
      eof_ = true;
    }
  }

  std::uint64_t header_bytes(int rate, const Codec& codec) {
    const auto key = std::make_tuple(rate, codec.vorbis, codec.quality);
    auto it = headers_.find(key);
    if (it != headers_.end()) return it->second;
    return headers_[key] = encode({}, rate, codec).size();
  }

  std::vector<KnobSpec> knobs_;
  fs::path path_;
  std::string name_;
  SF_INFO info_{};
  SndFile file_;
  std::unique_ptr<StreamResampler> resampler_;
  int64_t window_ = 512, interval_len_ = 15872, skip_ = 0, index_ = 0, position_ = 0;
  sf_count_t read_frames_ = 0;
  bool eof_ = false;
  std::vector<float> pending_, current_;
  at::Tensor original_;
  std::map<std::tuple<int, bool, double>, std::uint64_t> headers_;
};

// The server side: decodes the FLAC or Ogg Vorbis file a source sent and resamples it to
// 16 kHz, exactly as the source's own rendering did.
class AudioReceiver : public Receiver {
 public:
  at::Tensor saliency(const at::Tensor& grad) override { return window_saliency(grad, window_); }
  explicit AudioReceiver(const ReceiverSpec& spec) {
    auto it = spec.format.find("interval_samples");
    double v = 0;
    // At most a minute at 16 kHz: the source's intervals are seconds long.
    if (it == spec.format.end() || !parse_number(it->second, v) || v < 1 || v > 60 * kModelRate ||
        v != std::floor(v))
      throw Error(Errc::invalid_argument,
                  "audio: the stream format needs 'interval_samples', an integer in [1, " +
                      std::to_string(60 * kModelRate) + "]" +
                      (it == spec.format.end() ? std::string(" (missing)")
                                               : " (got '" + it->second + "')"));
    interval_len_ = static_cast<int64_t>(v);
    window_ = spec.params.integer("window");
    if (window_ < 16 || window_ > kModelRate || interval_len_ % window_ != 0)
      throw Error(Errc::invalid_argument,
                  "audio: window must be 16 ... 16000 samples and divide the interval");
  }

  at::Tensor decode(const Configuration& config, const IntervalInfo& info,
                    const std::vector<std::uint8_t>& fresh,
                    const std::vector<std::uint8_t>& wire) override {
    const std::string what = "interval " + std::to_string(info.index) + " as received";
    if (info.samples != 1 || fresh.size() > 1)
      throw Error(Errc::corrupt_data, "audio: " + what + " is not one window of audio");
    const double r = config.number("sample_rate");
    if (!(r >= 1000 && r <= kModelRate))  // the source's own range
      throw Error(Errc::corrupt_data, "audio: " + what + ": a sample_rate outside [1000, 16000]");
    const int rate = static_cast<int>(std::lround(r));
    const Codec codec = codec_of(config.at("codec").value);
    // Only the container the configuration names reaches libsndfile's parsers.
    const char* magic = codec.vorbis ? "OggS" : "fLaC";
    if (wire.size() < 4 || std::memcmp(wire.data(), magic, 4) != 0)
      throw Error(Errc::corrupt_data,
                  "audio: " + what + " is not " + (codec.vorbis ? "an Ogg" : "a FLAC") + " stream");
    const auto expected = static_cast<std::size_t>(
        std::llround(static_cast<double>(interval_len_) * rate / kModelRate));
    std::vector<float> y = ::decode(wire, codec, expected, what, rate);
    y = resample(y, rate, kModelRate);
    y.resize(static_cast<std::size_t>(interval_len_), 0.0f);
    return at::from_blob(y.data(), {1, interval_len_}, at::kFloat).clone();
  }

 private:
  int64_t interval_len_ = 0;
  int64_t window_ = 512;
};

void register_audio(Registrar& r) {
  ModalityInfo info{"audio",
                    "Any file libsndfile reads (WAV, FLAC, Ogg Vorbis/Opus, ...), downmixed to "
                    "mono; FLAC/Vorbis renderings",
                    "audio/f32-mono-16k",
                    audio_knobs(),
                    audio_params(),
                    [](const SourceSpec& spec) { return std::make_unique<AudioSource>(spec); }};
  info.open_receiver = [](const ReceiverSpec& spec) {
    return std::make_unique<AudioReceiver>(spec);
  };
  r.add_modality(std::move(info));
}

}  // namespace

ONEADAPT_PLUGIN("audio", "0.1.0",
                "Audio modality: libsndfile input, FLAC/Ogg Vorbis renderings, libswresample",
                register_audio)
