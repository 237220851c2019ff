// The video modality: any FFmpeg-readable file (or a directory of images, as an image
// sequence) cut into intervals; knobs resolution, QP and frame rate. A rendering encodes the
// interval with libx264 at a constant QP, muxes it as fragmented MP4 in memory (the header
// bytes are its initialisation segment, ftyp and moov with the parameter sets, which a receiver
// needs once per stream; the payload bytes are the interval's fragment), decodes it back and scales
// it to the native resolution (bilinear), so every rendering has the source's shape.
#include <ATen/ATen.h>
#include <oneadapt/sdk.hpp>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavdevice/avdevice.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <mutex>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <memory>

namespace {

using namespace oneadapt;
namespace fs = std::filesystem;

// FFmpeg's libx264 wrapper scales AVRegionOfInterest.qoffset by the QP range of 8-bit video.
constexpr double kQpPerOffset = 51.0;

std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

struct FormatInputCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct CodecCloser {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFree {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFree {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using FramePtr = std::unique_ptr<AVFrame, FrameFree>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFree>;

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// Converts between pixel formats and sizes; bilinear (SWS_BILINEAR) in both directions.
void convert(const uint8_t* const src[], const int src_stride[], int sw, int sh, AVPixelFormat sf,
             uint8_t* const dst[], const int dst_stride[], int dw, int dh, AVPixelFormat df) {
  std::unique_ptr<SwsContext, SwsFree> sws(
      sws_getContext(sw, sh, sf, dw, dh, df, SWS_BILINEAR, nullptr, nullptr, nullptr));
  if (!sws) throw Error(Errc::unsupported, "video: cannot convert between these pixel formats");
  sws_scale(sws.get(), src, src_stride, 0, sh, dst, dst_stride);
}

// One source frame, converted once: YUV 4:2:0 planes (what the encoder takes) and planar
// float RGB in [0, 1] (G, the DNN input space).
struct Frame {
  at::Tensor yuv;  // uint8, the Y, U and V planes packed (av_image layout, alignment 1)
  at::Tensor rgb;  // float [3, H, W]
};

// Writes planar float RGB [3,H,W] from any frame via swscale's GBRPF32 output (bilinear when
// the size changes).
void to_float_rgb(const uint8_t* const data[], const int linesize[], int sw, int sh,
                  AVPixelFormat fmt, float* out, int dw, int dh) {
  const int64_t plane = static_cast<int64_t>(dw) * dh;
  uint8_t* dst[4] = {reinterpret_cast<uint8_t*>(out + plane),
                     reinterpret_cast<uint8_t*>(out + 2 * plane), reinterpret_cast<uint8_t*>(out),
                     nullptr};  // GBRP order: G, B, R
  int stride[4] = {4 * dw, 4 * dw, 4 * dw, 0};
  convert(data, linesize, sw, sh, fmt, dst, stride, dw, dh, AV_PIX_FMT_GBRPF32LE);
}

// Reads frames in order from a file, at the native size.
// Reads a video file as a player would show it: frames on the nominal frame-rate grid by
// presentation time. A frame missing from the stream (a variable-frame-rate capture, dropped
// frames) repeats the previous one; two frames in one slot keep the later. The stream ends
// one frame period after its last frame; a stamp that jumps more than a minute is a
// discontinuity, not a frozen picture. The container's frame count is a hint, not a
// A URI FFmpeg opens itself, not a path: a network stream (rtsp://, http://, udp://, ...) or a
// pipe (pipe:0 is standard input). Live: read as it arrives, an interval at a time.
bool is_url(const std::string& uri) {
  if (uri.rfind("pipe:", 0) == 0) return true;
  const auto p = uri.find("://");
  return p != std::string::npos && p > 0 && p <= 16 &&
         std::all_of(uri.begin(), uri.begin() + static_cast<std::ptrdiff_t>(p), [](char c) {
           return std::isalpha(static_cast<unsigned char>(c)) || c == '+';
         });
}

// A capture device libavdevice opens, named by its FFmpeg input device and a target:
// "v4l2:/dev/video0" (a camera), "lavfi:testsrc2=size=640x480:rate=10" (a generated stream),
// "x11grab::0.0" (a screen). The device's input format, or nullptr when `uri` names none (it
// is then a file or a URL). Live, like a URL: read as it arrives.
const AVInputFormat* capture_device(const std::string& uri) {
  static const char* const kDevices[] = {"v4l2", "video4linux2", "lavfi", "x11grab", "fbdev",
                                         "kmsgrab"};
  const auto colon = uri.find(':');
  if (colon == std::string::npos || uri.compare(colon, 3, "://") == 0) return nullptr;
  const std::string name = uri.substr(0, colon);
  std::error_code ec;
  if (std::none_of(std::begin(kDevices), std::end(kDevices),
                   [&](const char* d) { return name == d; }) ||
      std::filesystem::exists(uri, ec))  // a file named so is a file
    return nullptr;
  static std::once_flag registered;
  std::call_once(registered, [] { avdevice_register_all(); });
  const AVInputFormat* f = av_find_input_format(name.c_str());
  if (!f)
    throw Error(Errc::unsupported, uri + ": this FFmpeg has no '" + name + "' capture device");
  return f;
}

// contract: a stream whose last frame comes well before the duration its container declares
// is truncated (an error naming the file).
class FrameReader {
 public:
  explicit FrameReader(const std::string& file, const AVInputFormat* device = nullptr)
      : file_(file) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(file, ec) && std::filesystem::file_size(file, ec) == 0 &&
        !ec)
      throw Error(Errc::corrupt_data, file + ": is empty");
    AVFormatContext* raw = nullptr;
    // A capture device opens its target (what follows "v4l2:") with its own input format.
    const std::string target = device ? file.substr(file.find(':') + 1) : file;
    int rc = avformat_open_input(&raw, target.c_str(), device, nullptr);
    if (rc < 0)
      throw Error(device ? Errc::not_found : Errc::corrupt_data,
                  file + (device ? ": cannot open the capture device: "
                                 : ": cannot open as video: ") +
                      av_error(rc));
    fmt_.reset(raw);
    if (std::string(fmt_->iformat->name) == "tty")
      throw Error(Errc::corrupt_data, file + ": cannot open as video: it is a text file");
    if ((rc = avformat_find_stream_info(fmt_.get(), nullptr)) < 0)
      throw Error(Errc::corrupt_data, file + ": cannot read stream info: " + av_error(rc));
    const AVCodec* codec = nullptr;
    stream_ = av_find_best_stream(fmt_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream_ < 0 || !codec)
      throw Error(Errc::corrupt_data, file + ": has no decodable video stream");
    dec_.reset(avcodec_alloc_context3(codec));
    avcodec_parameters_to_context(dec_.get(), fmt_->streams[stream_]->codecpar);
    dec_->thread_count = 1;
    if ((rc = avcodec_open2(dec_.get(), codec, nullptr)) < 0)
      throw Error(Errc::corrupt_data, file + ": cannot open decoder: " + av_error(rc));
    width_ = dec_->width;
    height_ = dec_->height;
    if (width_ <= 0 || height_ <= 0 || width_ > 16384 || height_ > 16384)
      throw Error(Errc::corrupt_data, file + ": implausible frame size " + std::to_string(width_) +
                                          "x" + std::to_string(height_));
    const AVStream* st = fmt_->streams[stream_];
    // The nominal rate: the average, unless the stream's base rate is well above it (a variable
    // frame rate, e.g. dropped frames in an MP4 whose average counts only the frames present);
    // a base rate of exactly twice the average is interlaced field timing, not frames.
    const auto rate = [](AVRational q) { return q.num > 0 && q.den > 0 ? av_q2d(q) : 0.0; };
    const double avg = rate(st->avg_frame_rate), base = rate(st->r_frame_rate);
    fps_ = avg > 0 ? avg : base > 0 ? base : 25.0;
    if (avg > 0 && base > 1.2 * avg && base <= 240 && std::abs(base - 2 * avg) > 0.01 * avg)
      fps_ = base;
    if (!(fps_ > 0 && fps_ <= 1000))
      throw Error(Errc::corrupt_data,
                  file + ": implausible frame rate " + std::to_string(fps_) + " fps");
    time_base_ = av_q2d(st->time_base);
    if (!(time_base_ > 0) || !std::isfinite(time_base_))
      throw Error(Errc::corrupt_data, file + ": the video stream has no usable time base");
    // The duration the container declares for the video stream (a hint): the longer of its own
    // and its frame count over the rate (an AVI cut short keeps its header's frame count while
    // FFmpeg shortens the stream's duration to the packets it found). The file's duration is no
    // guide (audio may outlast the video).
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
      declared_s_ = static_cast<double>(st->duration) * time_base_;
    if (st->nb_frames > 0)
      declared_s_ = std::max(declared_s_, static_cast<double>(st->nb_frames) / fps_);
    pkt_.reset(av_packet_alloc());
    frame_.reset(av_frame_alloc());
  }

  int width() const { return width_; }
  int height() const { return height_; }
  double fps() const { return fps_; }

  // The frame shown at the next slot of the nominal grid; an undefined Frame at the end. A frame
  // belongs to the slot nearest its time (containers such as MKV keep whole milliseconds).
  Frame next() {
    const double slot = static_cast<double>(slot_) / fps_, eps = 1e-6, half = 0.5 / fps_;
    while (true) {
      if (!pending_ && !eof_) {
        Frame f;
        double t = 0;
        if (decode(f, t))
          pending_ = std::move(f), pending_t_ = t;
        else
          eof_ = true;
      }
      if (pending_ && (!current_.yuv.defined() || pending_t_ < slot + half - eps)) {
        current_ = std::move(*pending_), current_t_ = pending_t_;
        pending_.reset();
        continue;
      }
      break;
    }
    if (!current_.yuv.defined()) return Frame{};  // an empty stream
    if (eof_ && !pending_ && slot >= current_t_ + half - eps) {
      const double end = current_t_ + 1.0 / fps_ + skipped_s_;
      if (declared_s_ > 2.0 && end < 0.9 * declared_s_)
        throw Error(Errc::corrupt_data, file_ + ": stream ends at " + seconds(end) + " s of the " +
                                            seconds(declared_s_) +
                                            " s its container declares (truncated?)");
      return Frame{};
    }
    ++slot_;
    return current_;  // a repeat shares the previous frame's tensors
  }

 private:
  static std::string seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", s);
    return buf;
  }

  // The next decoded frame and its presentation time (seconds from the first frame); false at
  // the end of the stream.
  bool decode(Frame& f, double& t) {
    while (true) {
      int rc = avcodec_receive_frame(dec_.get(), frame_.get());
      if (rc == 0) {
        if (frame_->width != width_ || frame_->height != height_)
          throw Error(Errc::corrupt_data, file_ + ": frame " + std::to_string(decoded_) +
                                              " changes size to " + std::to_string(frame_->width) +
                                              "x" + std::to_string(frame_->height));
        const auto fmt = static_cast<AVPixelFormat>(frame_->format);
        f.yuv = at::empty({av_image_get_buffer_size(AV_PIX_FMT_YUV420P, width_, height_, 1)},
                          at::kByte);
        uint8_t* planes[4];
        int lines[4];
        av_image_fill_arrays(planes, lines, f.yuv.data_ptr<uint8_t>(), AV_PIX_FMT_YUV420P, width_,
                             height_, 1);
        if (fmt == AV_PIX_FMT_YUV420P)
          av_image_copy(planes, lines, const_cast<const uint8_t**>(frame_->data), frame_->linesize,
                        fmt, width_, height_);
        else
          convert(frame_->data, frame_->linesize, width_, height_, fmt, planes, lines, width_,
                  height_, AV_PIX_FMT_YUV420P);
        f.rgb = at::empty({3, height_, width_}, at::kFloat);
        to_float_rgb(frame_->data, frame_->linesize, width_, height_, fmt, f.rgb.data_ptr<float>(),
                     width_, height_);
        // Presentation time. A frame without one follows the previous by one frame period; the
        // first stamped frame after unstamped ones, and a jump of more than kMaxGap seconds
        // either way (a corrupt stamp, a broadcast discontinuity), continue one period after
        // the previous frame rather than repeat it for the gap; small reorders never run time
        // backwards.
        const int64_t ts = frame_->best_effort_timestamp;
        const double period = 1.0 / fps_;
        double abs_t = decoded_ > 0 ? last_abs_t_ + period : 0.0;
        if (ts != AV_NOPTS_VALUE) {
          double stamped = static_cast<double>(ts) * time_base_ + shift_;
          if (decoded_ > 0 && (!stamped_ || std::abs(stamped - last_abs_t_) > kMaxGap)) {
            if (stamped_ && stamped > abs_t) skipped_s_ += stamped - abs_t;
            shift_ += abs_t - stamped;
            stamped = abs_t;
          }
          abs_t = stamped;
          stamped_ = true;
        }
        if (decoded_ == 0) first_t_ = abs_t;
        if (decoded_ > 0 && abs_t < last_abs_t_) abs_t = last_abs_t_;
        last_abs_t_ = abs_t;
        t = abs_t - first_t_;
        ++decoded_;
        return true;
      }
      if (rc == AVERROR_EOF) return false;
      if (rc != AVERROR(EAGAIN))
        throw Error(Errc::corrupt_data, file_ + ": decoding failed at frame " +
                                            std::to_string(decoded_) + ": " + av_error(rc));
      if (draining_) continue;
      rc = av_read_frame(fmt_.get(), pkt_.get());
      if (rc == AVERROR_EOF) {
        avcodec_send_packet(dec_.get(), nullptr);
        draining_ = true;
        continue;
      }
      if (rc < 0)
        throw Error(Errc::corrupt_data, file_ + ": reading failed after frame " +
                                            std::to_string(decoded_) + ": " + av_error(rc));
      if (pkt_->stream_index == stream_) {
        rc = avcodec_send_packet(dec_.get(), pkt_.get());
        if (rc < 0 && rc != AVERROR(EAGAIN))
          throw Error(Errc::corrupt_data, file_ + ": corrupt data after frame " +
                                              std::to_string(decoded_) + ": " + av_error(rc));
      }
      av_packet_unref(pkt_.get());
    }
  }

  std::string file_;
  std::unique_ptr<AVFormatContext, FormatInputCloser> fmt_;
  std::unique_ptr<AVCodecContext, CodecCloser> dec_;
  PacketPtr pkt_;
  FramePtr frame_;
  int stream_ = -1, width_ = 0, height_ = 0;
  double fps_ = 25, time_base_ = 0, declared_s_ = 0;
  int64_t decoded_ = 0, slot_ = 0;
  static constexpr double kMaxGap = 60.0;  // seconds a stream may hold one frame
  double first_t_ = 0, last_abs_t_ = 0, shift_ = 0, skipped_s_ = 0;
  bool draining_ = false, eof_ = false, stamped_ = false;
  std::optional<Frame> pending_;
  double pending_t_ = 0;
  Frame current_;
  double current_t_ = 0;
};

// Encodes frames (YUV 4:2:0 at the native size nw x nh) at size w x h and a QP with libx264
// into fragmented MP4 in memory; returns the file bytes and the H.264 packets for decoding.
struct Encoded {
  std::vector<uint8_t> mp4;
  std::size_t header = 0;  // the initialisation segment (ftyp + moov) at the start of mp4
  std::vector<PacketPtr> packets;
  AVCodecParameters* params = nullptr;
  ~Encoded() { avcodec_parameters_free(&params); }
};

/// Region-of-interest quality offsets of the spatial knob, in native pixels.
struct RoiMap {
  const QualityMap* map = nullptr;
  int tile = 0;
  std::vector<double> offsets;  // per level
};

/// Encodes the frames at constant QP `quality` or, with `crf`, at that constant rate factor;
/// `roi` (CRF only) adds per-tile quantiser offsets as AV_FRAME_DATA_REGIONS_OF_INTEREST.
std::unique_ptr<Encoded> encode(const std::vector<const Frame*>& frames, int nw, int nh, int w,
                                int h, int quality, double fps, const std::string& preset,
                                bool crf = false, const RoiMap* roi = nullptr) {
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (!codec) throw Error(Errc::unsupported, "video: this FFmpeg has no libx264 encoder");
  std::unique_ptr<AVCodecContext, CodecCloser> enc(avcodec_alloc_context3(codec));
  enc->width = w;
  enc->height = h;
  enc->pix_fmt = AV_PIX_FMT_YUV420P;
  AVRational tb = av_d2q(1.0 / fps, 100000);
  enc->time_base = tb;
  enc->framerate = av_inv_q(tb);
  enc->gop_size = static_cast<int>(frames.size());  // each interval is its own GOP
  enc->max_b_frames = 0;                            // low latency: the source encodes ahead
  enc->thread_count = 1;
  enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  av_opt_set(enc->priv_data, "preset", preset.c_str(), 0);
  if (crf)
    av_opt_set_double(enc->priv_data, "crf", quality, 0);
  else
    av_opt_set_int(enc->priv_data, "qp", quality, 0);
  av_opt_set(enc->priv_data, "x264-params", "log-level=error", 0);
  int rc = avcodec_open2(enc.get(), codec, nullptr);
  if (rc < 0)
    throw Error(Errc::invalid_argument,
                "video: libx264 refused the settings (preset '" + preset + "'): " + av_error(rc));

  auto out = std::make_unique<Encoded>();
  AVFormatContext* oc = nullptr;
  avformat_alloc_output_context2(&oc, nullptr, "mp4", nullptr);
  std::unique_ptr<AVFormatContext, void (*)(AVFormatContext*)> mux(oc, [](AVFormatContext* c) {
    if (c->pb) {
      uint8_t* buf = nullptr;
      avio_close_dyn_buf(c->pb, &buf);
      av_free(buf);
    }
    avformat_free_context(c);
  });
  AVStream* st = avformat_new_stream(oc, nullptr);
  avcodec_parameters_from_context(st->codecpar, enc.get());
  st->time_base = enc->time_base;
  avio_open_dyn_buf(&oc->pb);
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "movflags", "frag_keyframe+empty_moov+default_base_moof", 0);
  rc = avformat_write_header(oc, &opts);
  av_dict_free(&opts);
  if (rc < 0) throw Error(Errc::internal, "video: mp4 muxer failed: " + av_error(rc));
  avio_flush(oc->pb);
  out->header = static_cast<std::size_t>(avio_tell(oc->pb));  // empty_moov: the whole init segment

  FramePtr yuv(av_frame_alloc());
  yuv->format = AV_PIX_FMT_YUV420P;
  yuv->width = w;
  yuv->height = h;
  av_frame_get_buffer(yuv.get(), 0);
  PacketPtr pkt(av_packet_alloc());
  auto drain = [&](bool flush) {
    while (true) {
      int r = avcodec_receive_packet(enc.get(), pkt.get());
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      if (r < 0) throw Error(Errc::internal, "video: encoding failed: " + av_error(r));
      PacketPtr copy(av_packet_clone(pkt.get()));
      out->packets.push_back(std::move(copy));
      av_packet_rescale_ts(pkt.get(), enc->time_base, st->time_base);
      pkt->stream_index = st->index;
      av_interleaved_write_frame(oc, pkt.get());
      (void)flush;
    }
  };
  for (std::size_t i = 0; i < frames.size(); ++i) {
    av_frame_make_writable(yuv.get());
    uint8_t* src[4];
    int src_lines[4];
    av_image_fill_arrays(src, src_lines, frames[i]->yuv.data_ptr<uint8_t>(), AV_PIX_FMT_YUV420P, nw,
                         nh, 1);
    if (w == nw && h == nh)
      av_image_copy(yuv->data, yuv->linesize, const_cast<const uint8_t**>(src), src_lines,
                    AV_PIX_FMT_YUV420P, w, h);
    else
      convert(src, src_lines, nw, nh, AV_PIX_FMT_YUV420P, yuv->data, yuv->linesize, w, h,
              AV_PIX_FMT_YUV420P);
    yuv->pts = static_cast<int64_t>(i);
    av_frame_remove_side_data(yuv.get(), AV_FRAME_DATA_REGIONS_OF_INTEREST);
    if (roi && roi->map) {
      // One region per tile whose level is not the best, in the encoded frame's pixels.
      std::vector<AVRegionOfInterest> regions;
      const double sx = static_cast<double>(w) / nw, sy = static_cast<double>(h) / nh;
      for (int r = 0; r < roi->map->rows; ++r)
        for (int c = 0; c < roi->map->cols; ++c) {
          const int level = roi->map->level[static_cast<std::size_t>(r * roi->map->cols + c)];
          if (level == 0 && roi->offsets[0] == 0) continue;
          AVRegionOfInterest reg{};
          reg.self_size = sizeof(AVRegionOfInterest);
          reg.left = static_cast<int>(std::lround(c * roi->tile * sx));
          reg.right = std::min(w, static_cast<int>(std::lround((c + 1) * roi->tile * sx)));
          reg.top = static_cast<int>(std::lround(r * roi->tile * sy));
          reg.bottom = std::min(h, static_cast<int>(std::lround((r + 1) * roi->tile * sy)));
          reg.qoffset = av_d2q(roi->offsets[static_cast<std::size_t>(level)], 1000);
          if (reg.right > reg.left && reg.bottom > reg.top) regions.push_back(reg);
        }
      if (!regions.empty()) {
        AVFrameSideData* sd = av_frame_new_side_data(yuv.get(), AV_FRAME_DATA_REGIONS_OF_INTEREST,
                                                     regions.size() * sizeof(AVRegionOfInterest));
        if (!sd) throw Error(Errc::internal, "video: cannot attach region-of-interest side data");
        std::memcpy(sd->data, regions.data(), regions.size() * sizeof(AVRegionOfInterest));
      }
    }
    if ((rc = avcodec_send_frame(enc.get(), yuv.get())) < 0)
      throw Error(Errc::internal, "video: encoding failed: " + av_error(rc));
    drain(false);
  }
  avcodec_send_frame(enc.get(), nullptr);
  drain(true);
  av_write_trailer(oc);
  uint8_t* buf = nullptr;
  int size = avio_close_dyn_buf(oc->pb, &buf);
  oc->pb = nullptr;
  out->mp4.assign(buf, buf + size);
  av_free(buf);
  out->params = avcodec_parameters_alloc();
  avcodec_parameters_from_context(out->params, enc.get());
  return out;
}

// Decodes the packets back, scales every frame to the native size (bilinear) and writes it as
// planar float RGB in [0, 1] straight into the returned [N,3,H,W] tensor (swscale's GBRPF32
// output: no RGB24 intermediate, no extra conversion pass).
// With `only` >= 0, every frame is decoded (H.264 needs them) but only frame `only` is
// converted, and the result is [1,3,H,W].
// `fail` is the error code for bytes that do not decode (internal for our own encodes,
// corrupt_data for bytes received) and `what` names them.
at::Tensor decode(const std::vector<PacketPtr>& packets, const AVCodecParameters* params,
                  int native_w, int native_h, std::size_t expected, int64_t only = -1,
                  Errc fail = Errc::internal, const std::string& what = "our own stream") {
  const AVCodec* codec = avcodec_find_decoder(AV_CODEC_ID_H264);
  std::unique_ptr<AVCodecContext, CodecCloser> dec(avcodec_alloc_context3(codec));
  avcodec_parameters_to_context(dec.get(), params);
  dec->thread_count = 1;
  // Never more than a native frame (a rendering is the native size or smaller, even-rounded): the
  // decoder refuses a hostile SPS before it allocates its reference frames.
  // (The decoder checks the coded size, whole macroblocks and alignment: 64 pixels of margin.)
  dec->max_pixels = static_cast<int64_t>(native_w + 64) * (native_h + 64);
  int rc = avcodec_open2(dec.get(), codec, nullptr);
  if (rc < 0)
    throw Error(fail, "video: cannot open the H.264 decoder for " + what + ": " + av_error(rc));
  at::Tensor out = at::empty(
      {only >= 0 ? 1 : static_cast<int64_t>(expected), 3, native_h, native_w}, at::kFloat);
  const int64_t plane = static_cast<int64_t>(native_w) * native_h;
  std::size_t n = 0;
  FramePtr frame(av_frame_alloc());
  std::unique_ptr<SwsContext, SwsFree> sws;
  int sws_w = 0, sws_h = 0, sws_f = -1;  // what sws was made for
  auto receive = [&] {
    while (avcodec_receive_frame(dec.get(), frame.get()) == 0) {
      if (n >= expected)
        throw Error(fail, "video: " + what + " holds more than the " + std::to_string(expected) +
                              " frames expected");
      if (frame->width < 16 || frame->height < 16 || frame->width > native_w + 2 ||
          frame->height > native_h + 2)
        throw Error(fail, "video: " + what + " decodes to a frame of " +
                              std::to_string(frame->width) + "x" + std::to_string(frame->height));
      if (only >= 0 && static_cast<int64_t>(n) != only) {
        ++n;
        continue;
      }
      if (sws && (frame->width != sws_w || frame->height != sws_h || frame->format != sws_f))
        throw Error(fail, "video: " + what + " changes frame size or format within the interval");
      sws_w = frame->width, sws_h = frame->height, sws_f = frame->format;
      if (!sws)
        sws.reset(sws_getContext(frame->width, frame->height,
                                 static_cast<AVPixelFormat>(frame->format), native_w, native_h,
                                 AV_PIX_FMT_GBRPF32LE, SWS_BILINEAR, nullptr, nullptr, nullptr));
      if (!sws) throw Error(fail, "video: cannot convert the frames of " + what + " to float RGB");
      float* base = out[only >= 0 ? 0 : static_cast<int64_t>(n)].data_ptr<float>();
      // GBRP plane order: G, B, R; our tensor is R, G, B.
      uint8_t* dst[4] = {reinterpret_cast<uint8_t*>(base + plane),
                         reinterpret_cast<uint8_t*>(base + 2 * plane),
                         reinterpret_cast<uint8_t*>(base), nullptr};
      int stride[4] = {4 * native_w, 4 * native_w, 4 * native_w, 0};
      if (sws_scale(sws.get(), frame->data, frame->linesize, 0, frame->height, dst, stride) !=
          native_h)
        throw Error(fail, "video: converting a frame of " + what + " failed");
      ++n;
    }
  };
  for (const auto& p : packets) {
    if ((rc = avcodec_send_packet(dec.get(), p.get())) < 0)
      throw Error(fail, "video: decoding " + what + " failed: " + av_error(rc));
    receive();
  }
  avcodec_send_packet(dec.get(), nullptr);
  receive();
  if (n != expected)
    throw Error(fail, "video: " + what + " decoded to " + std::to_string(n) + " of " +
                          std::to_string(expected) + " frames");
  return out;
}

// Reads the memory of a received fragmented MP4 for the demuxer.
struct MemoryReader {
  const std::vector<std::uint8_t>* data = nullptr;
  std::size_t pos = 0;
  static int read(void* opaque, uint8_t* buf, int size) {
    auto* m = static_cast<MemoryReader*>(opaque);
    const std::size_t left = m->data->size() - m->pos;
    if (left == 0) return AVERROR_EOF;
    const std::size_t n = std::min(left, static_cast<std::size_t>(std::max(size, 0)));
    std::memcpy(buf, m->data->data() + m->pos, n);
    m->pos += n;
    return static_cast<int>(n);
  }
  static int64_t seek(void* opaque, int64_t offset, int whence) {
    auto* m = static_cast<MemoryReader*>(opaque);
    const auto size = static_cast<int64_t>(m->data->size());
    if (whence == AVSEEK_SIZE) return size;
    int64_t to = (whence & ~AVSEEK_FORCE) == SEEK_SET   ? offset
                 : (whence & ~AVSEEK_FORCE) == SEEK_CUR ? static_cast<int64_t>(m->pos) + offset
                 : (whence & ~AVSEEK_FORCE) == SEEK_END ? size + offset
                                                        : -1;
    if (to < 0 || to > size) return AVERROR(EINVAL);
    m->pos = static_cast<std::size_t>(to);
    return to;
  }
};

// The H.264 packets and codec parameters of a received interval (Rendering::wire: the init
// segment and the interval's fragment). Throws Error(corrupt_data) naming `what`.
struct Demuxed {
  std::vector<PacketPtr> packets;
  AVCodecParameters* params = nullptr;
  ~Demuxed() { avcodec_parameters_free(&params); }
};
std::unique_ptr<Demuxed> demux(const std::vector<std::uint8_t>& wire, const std::string& what,
                               std::size_t max_packets, int native_w, int native_h) {
  if (wire.empty()) throw Error(Errc::corrupt_data, "video: " + what + " is empty");
  MemoryReader reader{&wire, 0};
  constexpr int kBuffer = 1 << 16;
  auto* buffer = static_cast<unsigned char*>(av_malloc(kBuffer));
  if (!buffer) throw Error(Errc::internal, "video: out of memory");
  AVIOContext* io = avio_alloc_context(buffer, kBuffer, 0, &reader, &MemoryReader::read, nullptr,
                                       &MemoryReader::seek);
  if (!io) {
    av_free(buffer);
    throw Error(Errc::internal, "video: out of memory");
  }
  std::unique_ptr<AVIOContext, void (*)(AVIOContext*)> io_guard(io, [](AVIOContext* c) {
    av_freep(&c->buffer);
    avio_context_free(&c);
  });
  AVFormatContext* ic = avformat_alloc_context();
  ic->pb = io;
  ic->flags |= AVFMT_FLAG_CUSTOM_IO;
  int rc = avformat_open_input(&ic, nullptr, av_find_input_format("mp4"), nullptr);
  if (rc < 0)
    throw Error(Errc::corrupt_data, "video: " + what + " is not a fragmented MP4: " + av_error(rc));
  std::unique_ptr<AVFormatContext, FormatInputCloser> in(ic);
  if (in->nb_streams != 1 || in->streams[0]->codecpar->codec_id != AV_CODEC_ID_H264)
    throw Error(Errc::corrupt_data, "video: " + what + " does not hold exactly one H.264 stream");
  const AVCodecParameters* cp = in->streams[0]->codecpar;
  if (cp->width < 16 || cp->height < 16 || cp->width > native_w + 2 || cp->height > native_h + 2)
    throw Error(Errc::corrupt_data, "video: " + what + " declares frames of " +
                                        std::to_string(cp->width) + "x" +
                                        std::to_string(cp->height) + ", not within the stream's " +
                                        std::to_string(native_w) + "x" + std::to_string(native_h));
  auto out = std::make_unique<Demuxed>();
  out->params = avcodec_parameters_alloc();
  avcodec_parameters_copy(out->params, in->streams[0]->codecpar);
  PacketPtr pkt(av_packet_alloc());
  while ((rc = av_read_frame(in.get(), pkt.get())) >= 0) {
    if (pkt->flags & AV_PKT_FLAG_CORRUPT)  // the demuxer read less than the sample's size
      throw Error(Errc::corrupt_data, "video: " + what + " is cut short inside frame " +
                                          std::to_string(out->packets.size()));
    if (out->packets.size() >= max_packets)  // the encoder writes one packet per frame
      throw Error(Errc::corrupt_data, "video: " + what + " holds more than the " +
                                          std::to_string(max_packets) + " frames sent");
    out->packets.emplace_back(av_packet_clone(pkt.get()));
    av_packet_unref(pkt.get());
  }
  if (rc != AVERROR_EOF)
    throw Error(Errc::corrupt_data, "video: " + what + " is cut or damaged: " + av_error(rc));
  return out;
}

// Which rendered sample each of an interval's samples shows: a sample that is not fresh repeats
// the last fresh one (the first sample is always sent).
std::vector<int64_t> repeat_index(const std::vector<std::uint8_t>& fresh, std::size_t samples,
                                  std::size_t& sent) {
  std::vector<int64_t> source_of;
  sent = 0;
  for (std::size_t t = 0; t < samples; ++t) {
    if (fresh.empty() || t == 0 || fresh[t]) ++sent;
    source_of.push_back(static_cast<int64_t>(sent) - 1);
  }
  return source_of;
}

const std::vector<double> kScales{1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3};
const std::vector<double> kQps{20, 22, 24, 26, 28, 30, 34, 38, 42, 46, 50};

// Frame-rate ladder: the native rate and the rates of its integer strides down to about 1 fps
// (10 fps: 10 5 2 1; 30 fps: 30 15 10 6 5 3 2 1).
std::vector<double> fps_ladder(double native) {
  std::vector<double> out;
  int n = std::max(1, static_cast<int>(std::lround(native)));
  for (int stride = 1; stride <= n; ++stride)
    if (n % stride == 0) out.push_back(native / stride);
  if (out.size() == 1 && native >= 2) out.push_back(native / std::floor(native));
  return out;
}

std::vector<KnobSpec> video_knobs(double native_fps) {
  return {
      KnobSpec::numeric("resolution", "Resolution", "x native", kScales,
                        "Encodes each frame scaled to this fraction of the native width and height "
                        "(bilinear, even sizes); the receiver scales it back up (bilinear)."),
      KnobSpec::numeric(
          "qp", "Quantisation parameter", "QP", kQps,
          "Constant H.264 quantiser (libx264 -qp): higher is fewer bytes and coarser detail."),
      KnobSpec::numeric(
          "fps", "Frame rate", "fps", fps_ladder(native_fps),
          "Sends every n-th frame of the interval; the receiver repeats the last "
          "received frame and reuses its DNN results, which are not counted as compute. "
          "The ladder depends on the opened stream: its native rate and the integer divisions of "
          "it "
          "down to about 1 fps (shown here for a 10 fps stream); any rate may be given, and rates "
          "at "
          "or above the native one send every frame."),
  };
}

std::vector<ParamSpec> video_params() {
  return {
      {"preset", "x264 preset", "libx264 speed preset of every rendering (ultrafast ... veryslow).",
       ParamType::string, "veryfast"},
      {"start", "Start", "Seconds to skip at the start of the input.", ParamType::number, "0"},
      {"fps", "Frame rate of an image directory",
       "Frames per second when the input is a directory of images.", ParamType::number, "10"},
      {"roi_tile", "Spatial knob tile",
       "0 (default): no spatial knob. 16, 32 or 64: a per-tile quality map of tiles "
       "this many native pixels wide, applied as x264 region-of-interest quantiser offsets; the "
       "base quality knob is then "
       "'crf' (x264 ignores ROI offsets under constant QP).",
       ParamType::integer, "0"},
      {"roi_offsets", "Spatial knob levels",
       "The quantiser offset of each level of the map, best first (FFmpeg's "
       "AVRegionOfInterest qoffset in [-1, 1]; FFmpeg scales it by 51 QP per unit for x264).",
       ParamType::list, "0,0.05,0.1,0.2,0.3,0.45"},
      {"max_interval_mb", "Interval memory limit",
       "The most memory (MB) one interval's decoded frames may take (YUV and float RGB, "
       "about 13.5 bytes per pixel): a clip declaring an absurd frame rate or size is refused "
       "before it is read.",
       ParamType::integer, "4096"},
  };
}

// S: |grad| summed over channels, averaged over 16x16 macroblocks (H.264's unit of quality
// decisions), broadcast back to [1,H,W]. The source and the receiver share it.
at::Tensor macroblock_saliency(const at::Tensor& grad) {
  at::Tensor s = grad.abs().sum(0, true).unsqueeze(0);  // [1,1,H,W]
  at::Tensor pooled = at::avg_pool2d(s, {16, 16}, {16, 16}, {0, 0}, /*ceil_mode=*/true,
                                     /*count_include_pad=*/false);
  return at::upsample_nearest2d(pooled, {s.size(2), s.size(3)}).squeeze(0);  // [1,H,W]
}

class VideoSource final : public Source {
 public:
  explicit VideoSource(const SourceSpec& spec) : preset_(spec.params.str("preset")) {
    const fs::path path = spec.uri;
    std::error_code ec;
    if (spec.uri.empty()) throw Error(Errc::invalid_argument, "video: no input given");
    // Checked here: libx264 prints its own line for an unknown preset before FFmpeg's log is set
    // up.
    static const char* const kPresets[] = {"ultrafast", "superfast", "veryfast", "faster",
                                           "fast",      "medium",    "slow",     "slower",
                                           "veryslow",  "placebo"};
    if (std::none_of(std::begin(kPresets), std::end(kPresets),
                     [&](const char* p) { return preset_ == p; }))
      throw Error(Errc::invalid_argument,
                  "video: modality.params.preset '" + preset_ +
                      "' is not an x264 preset (ultrafast, superfast, veryfast, faster, fast, "
                      "medium, slow, slower, veryslow, placebo)");
    const AVInputFormat* device = capture_device(spec.uri);
    const bool url = device || is_url(spec.uri);
    if (!url && !fs::exists(path, ec))
      throw Error(Errc::not_found, spec.uri + ": no such file or directory");
    if (!url && fs::is_directory(path, ec)) {
      for (const auto& e : fs::directory_iterator(path)) {
        std::string ext = e.path().extension().string();
        for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".ppm" ||
            ext == ".pgm")
          images_.push_back(e.path());
      }
      std::sort(images_.begin(), images_.end());
      if (images_.empty())
        throw Error(Errc::not_found, spec.uri + ": directory has no images (png, jpg, bmp, ppm)");
      fps_ = spec.params.number("fps");
      Frame first = read_image(images_[0]);
      height_ = static_cast<int>(first.rgb.size(1));
      width_ = static_cast<int>(first.rgb.size(2));
    } else {
      if (url) avformat_network_init();  // rtsp, http: once per process is enough, more is harmless
      reader_ = std::make_unique<FrameReader>(spec.uri, device);
      fps_ = reader_->fps();
      width_ = reader_->width();
      height_ = reader_->height();
    }
    if (!(fps_ > 0 && fps_ <= 1000))
      throw Error(Errc::invalid_argument, "video: frame rate must be in (0, 1000] fps");
    name_ = url ? spec.uri : path.filename().string();
    frames_per_interval_ = std::max<int64_t>(1, std::lround(spec.interval_seconds * fps_));
    {
      // One interval's frames live in memory (packed YUV 4:2:0 and float RGB): a cap before
      // anything is decoded.
      const double bytes = static_cast<double>(frames_per_interval_) * static_cast<double>(width_) *
                           static_cast<double>(height_) * 13.5;
      const int64_t cap_mb = spec.params.integer("max_interval_mb");
      if (bytes > static_cast<double>(cap_mb) * 1e6) {
        char need[64];
        std::snprintf(need, sizeof need, "%.0f MB", bytes / 1e6);
        throw Error(Errc::invalid_argument,
                    spec.uri + ": an interval of " + std::to_string(frames_per_interval_) +
                        " frames at " + std::to_string(width_) + "x" + std::to_string(height_) +
                        " needs " + need + ", more than modality.params.max_interval_mb = " +
                        std::to_string(cap_mb) + " (raise it, or shorten input.interval)");
      }
    }
    knobs_ = video_knobs(fps_);
    roi_tile_ = static_cast<int>(spec.params.integer("roi_tile"));
    if (roi_tile_ != 0 && roi_tile_ != 16 && roi_tile_ != 32 && roi_tile_ != 64)
      throw Error(Errc::invalid_argument, "video: roi_tile must be 0 (off), 16, 32 or 64, got " +
                                              std::to_string(roi_tile_));
    if (roi_tile_ > 0) {
      for (const auto& o : spec.params.list("roi_offsets")) {
        double v = 0;
        if (!parse_number(o, v) || v < -1 || v > 1)
          throw Error(Errc::invalid_argument,
                      "video: roi_offsets: '" + o + "' is not a number in [-1, 1]");
        if (!roi_offsets_.empty() && v <= roi_offsets_.back())
          throw Error(Errc::invalid_argument,
                      "video: roi_offsets must increase (best quality first)");
        roi_offsets_.push_back(v);
      }
      if (roi_offsets_.size() < 2 || roi_offsets_.size() > 8)
        throw Error(Errc::invalid_argument, "video: roi_offsets needs 2 to 8 levels");
      // x264 applies ROI offsets through adaptive quantisation, which constant QP disables:
      // with the spatial knob the base quality knob is the CRF ladder.
      knobs_[1] = KnobSpec::numeric(
          "crf", "Constant rate factor", "CRF", {18, 23, 28, 33, 38, 43},
          "x264 constant rate factor (libx264 -crf): higher is fewer bytes. Replaces 'qp' when the "
          "spatial knob (roi_tile) is on, because x264 ignores region-of-interest offsets under "
          "constant QP.");
    }
    apply_numeric_ladder_overrides(
        knobs_, spec, [this](const std::string& key, double v) -> std::string {
          if (key == "resolution" && !(v > 0 && v <= 1)) return "in (0, 1]";
          if (key == "qp" && !(v >= 0 && v <= 51 && v == std::floor(v)))
            return "an integer in 0..51";
          if (key == "crf" && !(v >= 0 && v <= 51)) return "in 0..51";
          if (key == "fps" && !(v > 0))
            return "a frame rate > 0 fps (at or above the native " + KnobValue::of(fps_).label +
                   " fps every frame is sent)";
          return "";
        });
    const auto skip = static_cast<int64_t>(std::lround(spec.params.number("start") * fps_));
    for (int64_t i = 0; i < skip; ++i)
      if (!next_frame().yuv.defined()) break;
    skipped_ = skip;
  }

  std::vector<KnobSpec> knobs() const override { return knobs_; }

  bool next_interval(IntervalInfo& info) override {
    frames_.clear();
    while (static_cast<int64_t>(frames_.size()) < frames_per_interval_) {
      Frame f = next_frame();
      if (!f.yuv.defined()) break;
      frames_.push_back(std::move(f));
    }
    if (frames_.empty()) return false;
    info.index = static_cast<std::size_t>(index_);
    info.t_start = static_cast<double>(skipped_ + index_ * frames_per_interval_) / fps_;
    info.duration = static_cast<double>(frames_.size()) / fps_;
    info.samples = frames_.size();
    ++index_;
    std::vector<at::Tensor> rgb;
    for (const auto& f : frames_) rgb.push_back(f.rgb);
    original_ = at::stack(rgb);
    return true;
  }

  at::Tensor original() override { return original_; }

  Rendering render(const Configuration& config) override { return make(config, -1); }

  std::optional<SpatialSpec> spatial() const override {
    if (roi_tile_ == 0) return std::nullopt;
    SpatialSpec s;
    s.tile = roi_tile_;
    s.cols = (width_ + roi_tile_ - 1) / roi_tile_;
    s.rows = (height_ + roi_tile_ - 1) / roi_tile_;
    for (double o : roi_offsets_) s.levels.push_back("qoffset " + KnobValue::of(o).label);
    s.description =
        "per-tile x264 quantiser offsets (region-of-interest side data) over the CRF base quality";
    // FFmpeg's libx264 wrapper multiplies AVRegionOfInterest.qoffset by the QP range (51 at 8
    // bits) and x264 adds the result to the macroblock's QP: level q costs about what the
    // frame costs at CRF + 51 x offset (docs/spatial.md has the measurement).
    s.base_knob = "crf";
    for (double o : roi_offsets_) s.level_offsets.push_back(kQpPerOffset * o);
    return s;
  }

  Rendering render_map(const Configuration& config, const QualityMap& map) override {
    const auto s = spatial();
    if (!s)
      throw Error(Errc::unsupported,
                  "video: the spatial knob is off (set modality.params.roi_tile to 16, 32 or 64)");
    if (map.cols != s->cols || map.rows != s->rows ||
        map.level.size() != static_cast<std::size_t>(s->cols) * static_cast<std::size_t>(s->rows))
      throw Error(Errc::invalid_argument,
                  "video: quality map is " + std::to_string(map.cols) + "x" +
                      std::to_string(map.rows) + " tiles (" + std::to_string(map.level.size()) +
                      " levels), this stream needs " + std::to_string(s->cols) + "x" +
                      std::to_string(s->rows));
    for (auto l : map.level)
      if (l >= roi_offsets_.size())
        throw Error(Errc::invalid_argument,
                    "video: quality map level " + std::to_string(l) + " is outside the " +
                        std::to_string(roi_offsets_.size()) + " levels of roi_offsets");
    return make(config, -1, nullptr, &map);
  }

  // Reducto-style filtering: only the kept frames (at the configuration's frame rate) are sent.
  Rendering render_selected(const Configuration& config,
                            const std::vector<std::uint8_t>& keep) override {
    if (keep.size() != frames_.size())
      throw Error(Errc::invalid_argument, "video: render_selected needs one keep flag per frame (" +
                                              std::to_string(frames_.size()) + "), got " +
                                              std::to_string(keep.size()));
    return make(config, -1, &keep);
  }

  // Only `sample` is converted to float; the bytes are those of the whole interval.
  Rendering probe(const Configuration& config, std::size_t sample) override {
    return make(config, static_cast<int64_t>(std::min(sample, frames_.size() - 1)));
  }

  at::Tensor saliency(const at::Tensor& grad) override { return macroblock_saliency(grad); }

  // The receiver scales decoded frames back to the native size.
  std::map<std::string, std::string> stream_format() const override {
    return {{"width", std::to_string(width_)},
            {"height", std::to_string(height_)},
            {"frames_per_interval", std::to_string(frames_per_interval_)}};
  }

  std::string describe() const override {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s: %dx%d @ %.3g fps, %lld frames per interval", name_.c_str(),
                  width_, height_, fps_, static_cast<long long>(frames_per_interval_));
    return buf;
  }

 private:
  static Frame read_image(const fs::path& p) {
    FrameReader r(p.string());
    Frame f = r.next();
    if (!f.yuv.defined()) throw Error(Errc::corrupt_data, p.string() + ": has no picture");
    return f;
  }

  // Renders the interval at `config`; with `only` >= 0 just that sample's input (a probe).
  Rendering make(const Configuration& config, int64_t only,
                 const std::vector<std::uint8_t>* keep = nullptr, const QualityMap* map = nullptr) {
    require_ladder_values(config, knobs_, "video");
    const double scale = config.number("resolution");
    const bool crf = roi_tile_ > 0;
    const int qp = static_cast<int>(std::lround(config.number(crf ? "crf" : "qp")));
    QualityMap best;
    if (crf && map == nullptr)
      best = QualityMap::uniform(*spatial(), 0), map = &best;  // render, probe: the best level
    RoiMap roi{map, roi_tile_, roi_offsets_};
    const auto stride = std::max<int64_t>(1, std::lround(fps_ / config.number("fps")));
    // Even sizes (4:2:0), at least 16 pixels.
    const int w = std::max(16, static_cast<int>(std::lround(width_ * scale / 2.0)) * 2);
    const int h = std::max(16, static_cast<int>(std::lround(height_ * scale / 2.0)) * 2);

    Rendering r;
    std::vector<const Frame*> sent;
    std::vector<int64_t> source_of;  // a dropped frame repeats the last received one
    for (std::size_t t = 0; t < frames_.size(); ++t) {
      bool fresh =
          static_cast<int64_t>(t) % stride == 0 && (keep == nullptr || t == 0 || (*keep)[t]);
      r.fresh.push_back(fresh ? 1 : 0);
      if (fresh) sent.push_back(&frames_[t]);
      source_of.push_back(static_cast<int64_t>(sent.size()) - 1);
    }
    auto t0 = std::chrono::steady_clock::now();
    auto encoded = encode(sent, width_, height_, w, h, qp, fps_ / static_cast<double>(stride),
                          preset_, crf, crf ? &roi : nullptr);
    r.timings_ms["encode"] = ms_since(t0);
    t0 = std::chrono::steady_clock::now();
    if (only >= 0) {
      r.input = decode(encoded->packets, encoded->params, width_, height_, sent.size(),
                       source_of[static_cast<std::size_t>(only)]);
    } else {
      at::Tensor decoded = decode(encoded->packets, encoded->params, width_, height_, sent.size());
      r.input = sent.size() == frames_.size()
                    ? decoded
                    : decoded.index_select(0, at::tensor(source_of, at::kLong));
    }
    r.timings_ms["decode"] = ms_since(t0);
    r.header_bytes = encoded->header;
    r.bytes = encoded->mp4.size() - encoded->header;
    if (only < 0) r.wire = std::move(encoded->mp4);  // a probe is never sent
    // Inference runs on the frames received, at the DNN's fixed input size: one unit each.
    r.compute_units = static_cast<double>(sent.size());
    return r;
  }

  Frame next_frame() {
    if (reader_) return reader_->next();
    if (next_image_ >= images_.size()) return Frame{};
    Frame f = read_image(images_[next_image_++]);
    if (f.rgb.size(1) != height_ || f.rgb.size(2) != width_)
      throw Error(Errc::corrupt_data,
                  images_[next_image_ - 1].string() + ": size differs from the first image");
    return f;
  }

  std::string preset_, name_;
  std::unique_ptr<FrameReader> reader_;
  std::vector<fs::path> images_;
  std::size_t next_image_ = 0;
  int width_ = 0, height_ = 0;
  double fps_ = 0;
  int64_t frames_per_interval_ = 1, index_ = 0, skipped_ = 0;
  int roi_tile_ = 0;
  std::vector<double> roi_offsets_;
  std::vector<KnobSpec> knobs_;
  std::vector<Frame> frames_;
  at::Tensor original_;
};

// The server side: demuxes the fragmented MP4 a source sent, decodes it and scales it back to
// the native size, exactly as the source's own rendering did.
class VideoReceiver : public Receiver {
 public:
  at::Tensor saliency(const at::Tensor& grad) override { return macroblock_saliency(grad); }
  explicit VideoReceiver(const ReceiverSpec& spec)
      : width_(dimension(spec, "width", 16384)),
        height_(dimension(spec, "height", 16384)),
        frames_(dimension(spec, "frames_per_interval", 100000, 1)) {
    // The source's own cap on an interval's memory (modality.params.max_interval_mb) holds here.
    const double bytes = static_cast<double>(frames_) * width_ * height_ * 13.5;
    const auto cap_mb = spec.params.integer("max_interval_mb");
    if (bytes > static_cast<double>(cap_mb) * 1e6)
      throw Error(Errc::invalid_argument,
                  "video: a received interval of " + std::to_string(frames_) + " frames at " +
                      std::to_string(width_) + "x" + std::to_string(height_) +
                      " needs more than modality.params.max_interval_mb = " +
                      std::to_string(cap_mb) + " MB");
  }

  at::Tensor decode(const Configuration& config, const IntervalInfo& info,
                    const std::vector<std::uint8_t>& fresh,
                    const std::vector<std::uint8_t>& wire) override {
    (void)config;
    const std::string what = "interval " + std::to_string(info.index) + " as received";
    if (info.samples == 0 || info.samples > static_cast<std::size_t>(frames_))
      throw Error(Errc::corrupt_data, "video: " + what + " announces " +
                                          std::to_string(info.samples) + " frames, the stream's " +
                                          "intervals have 1 to " + std::to_string(frames_));
    if (!fresh.empty() && fresh.size() != info.samples)
      throw Error(Errc::corrupt_data, "video: " + what + " flags " + std::to_string(fresh.size()) +
                                          " frames as fresh or repeated, the interval has " +
                                          std::to_string(info.samples));
    std::size_t sent = 0;
    const auto source_of = repeat_index(fresh, info.samples, sent);
    auto d = demux(wire, what, sent, width_, height_);
    at::Tensor decoded =
        ::decode(d->packets, d->params, width_, height_, sent, -1, Errc::corrupt_data, what);
    return sent == info.samples ? decoded
                                : decoded.index_select(0, at::tensor(source_of, at::kLong));
  }

 private:
  static int dimension(const ReceiverSpec& spec, const char* key, int most, int least = 16) {
    auto it = spec.format.find(key);
    double v = 0;
    if (it == spec.format.end() || !parse_number(it->second, v) || v < least || v > most ||
        v != std::floor(v))
      throw Error(Errc::invalid_argument,
                  std::string("video: the stream format needs '") + key + "', an integer in [" +
                      std::to_string(least) + ", " + std::to_string(most) + "]" +
                      (it == spec.format.end() ? std::string(" (missing)")
                                               : " (got '" + it->second + "')"));
    return static_cast<int>(v);
  }
  int width_, height_, frames_;
};

void register_video(Registrar& r) {
  av_log_set_level(AV_LOG_FATAL);  // we report decoding problems ourselves, one line each
  ModalityInfo info{"video",
                    "Any FFmpeg-readable video or image directory; H.264 (libx264) renderings",
                    "image/rgb-f32-chw",
                    video_knobs(10.0),
                    video_params(),
                    [](const SourceSpec& spec) { return std::make_unique<VideoSource>(spec); }};
  info.open_receiver = [](const ReceiverSpec& spec) {
    return std::make_unique<VideoReceiver>(spec);
  };
  r.add_modality(std::move(info));
}

}  // namespace

ONEADAPT_PLUGIN("video", "0.1.0", "Video modality: FFmpeg input, libx264 renderings",
                register_video)
