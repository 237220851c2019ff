#include "image_io.hpp"

#include <ATen/ATen.h>
#include <oneadapt/error.hpp>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

#include <memory>

namespace oneadapt {

namespace {

std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

struct FormatCloser {
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

}  // namespace

at::Tensor read_rgb_frame(const std::filesystem::path& path, int index) {
  const std::string file = path.string();
  av_log_set_level(AV_LOG_FATAL);  // we report decoding problems ourselves, one line each
  if (!std::filesystem::exists(path)) throw Error(Errc::not_found, file + ": no such file");
  AVFormatContext* raw = nullptr;
  int rc = avformat_open_input(&raw, file.c_str(), nullptr, nullptr);
  if (rc < 0)
    throw Error(Errc::corrupt_data, file + ": cannot open as image or video: " + av_error(rc));
  std::unique_ptr<AVFormatContext, FormatCloser> fmt(raw);
  // FFmpeg's tty demuxer "decodes" any .txt/.asc file as ANSI art: not a picture.
  if (std::string(fmt->iformat->name) == "tty")
    throw Error(Errc::corrupt_data, file + ": cannot open as image or video: it is a text file");
  if ((rc = avformat_find_stream_info(fmt.get(), nullptr)) < 0)
    throw Error(Errc::corrupt_data, file + ": cannot read stream info: " + av_error(rc));
  const AVCodec* codec = nullptr;
  int stream = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (stream < 0 || !codec) throw Error(Errc::corrupt_data, file + ": has no decodable picture");
  std::unique_ptr<AVCodecContext, CodecCloser> dec(avcodec_alloc_context3(codec));
  avcodec_parameters_to_context(dec.get(), fmt->streams[stream]->codecpar);
  if ((rc = avcodec_open2(dec.get(), codec, nullptr)) < 0)
    throw Error(Errc::corrupt_data, file + ": cannot open decoder: " + av_error(rc));

  std::unique_ptr<AVPacket, PacketFree> pkt(av_packet_alloc());
  std::unique_ptr<AVFrame, FrameFree> frame(av_frame_alloc());
  int decoded = 0;
  bool draining = false;
  while (true) {
    rc = avcodec_receive_frame(dec.get(), frame.get());
    if (rc == 0) {
      if (decoded++ == index) break;
      continue;
    }
    if (rc == AVERROR_EOF)
      throw Error(Errc::corrupt_data, file + ": has " + std::to_string(decoded) +
                                          " frame(s), frame " + std::to_string(index) +
                                          " was asked for");
    if (rc != AVERROR(EAGAIN))
      throw Error(Errc::corrupt_data, file + ": decoding failed: " + av_error(rc));
    if (draining) continue;
    rc = av_read_frame(fmt.get(), pkt.get());
    if (rc == AVERROR_EOF) {
      avcodec_send_packet(dec.get(), nullptr);
      draining = true;
      continue;
    }
    if (rc < 0) throw Error(Errc::corrupt_data, file + ": reading failed: " + av_error(rc));
    if (pkt->stream_index == stream) {
      rc = avcodec_send_packet(dec.get(), pkt.get());
      if (rc < 0 && rc != AVERROR(EAGAIN))
        throw Error(Errc::corrupt_data, file + ": corrupt data: " + av_error(rc));
    }
    av_packet_unref(pkt.get());
  }
  const int w = frame->width, h = frame->height;
  at::Tensor rgb = at::empty({h, w, 3}, at::kByte);
  SwsContext* sws = sws_getContext(w, h, static_cast<AVPixelFormat>(frame->format), w, h,
                                   AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr);
  if (!sws) throw Error(Errc::unsupported, file + ": cannot convert its pixel format to RGB");
  uint8_t* dst[4] = {rgb.data_ptr<uint8_t>(), nullptr, nullptr, nullptr};
  int dst_stride[4] = {3 * w, 0, 0, 0};
  sws_scale(sws, frame->data, frame->linesize, 0, h, dst, dst_stride);
  sws_freeContext(sws);
  return rgb;
}

at::Tensor image_to_input(const at::Tensor& rgb_hwc, const std::vector<int64_t>& s, double range,
                          std::string* note) {
  auto shape_text = [&] {
    std::string t = "[";
    for (std::size_t i = 0; i < s.size(); ++i) t += (i ? "," : "") + std::to_string(s[i]);
    return t + "]";
  };
  if (s.size() != 4 || (s[1] != 3 && s[3] != 3))
    throw Error(Errc::unsupported, "input of shape " + shape_text() +
                                       " is not an RGB image batch ([N,3,H,W] or [N,H,W,3])");
  const bool nchw = s[1] == 3;
  int64_t h = nchw ? s[2] : s[1], w = nchw ? s[3] : s[2];
  if (h < 0 || w < 0) h = rgb_hwc.size(0), w = rgb_hwc.size(1);
  at::Tensor x = rgb_hwc.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat) / 255.0;
  at::Tensor resized =
      at::upsample_bilinear2d(x, {h, w}, /*align_corners=*/false).clamp(0, 1) * range;
  if (note)
    *note = "RGB " + std::to_string(rgb_hwc.size(1)) + "x" + std::to_string(rgb_hwc.size(0)) +
            " stretched (bilinear) to " + std::to_string(w) + "x" + std::to_string(h) +
            ", values in [0," + std::to_string(static_cast<int>(range)) + "], " +
            (nchw ? "NCHW" : "NHWC");
  return nchw ? resized.contiguous() : resized.permute({0, 2, 3, 1}).contiguous();
}

}  // namespace oneadapt
