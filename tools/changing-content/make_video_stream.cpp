// make-video-stream IN OUT: a video stream whose content changes, made from one real clip (issue
// 16). Every frame is a frame of IN (vtest.avi: a real street scene, a fixed camera), in order;
// what is SYNTHETIC is the camera work applied to it, in segments of the output:
//   0-15 s   the full view;
//   15-30 s  a cut to a 2x zoom on the left half (people twice as large);
//   30-45 s  a pan: a window of 5/8 of the frame moving left to right across it, scaled up;
//   45-60 s  the full view darkening from day to dusk (luma gain 1 -> 0.25, chroma towards grey);
//   60 s-    a cut to a 1.5x zoom on the right part, back at day level.
// Output at IN's size and rate, libx264 CRF 16 (preset veryfast), in the container of OUT's
// extension (.mkv recommended). Deterministic for a given IN and FFmpeg build.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace {

int fail(const std::string& file, const std::string& what) {
  std::fprintf(stderr, "make-video-stream: error: %s: %s\n", file.c_str(), what.c_str());
  return 1;
}

struct View {
  double x0, y0, scale;  // crop window: top-left as a fraction of the frame, size 1/scale
  double gain;           // luma gain around black (16), chroma towards 128 with it
};

// The camera work at output time t (seconds).
View view_at(double t) {
  if (t < 15) return {0, 0, 1, 1};
  if (t < 30) return {0, 0.25, 2, 1};
  if (t < 45) {
    const double u = (t - 30) / 15;  // pan across: the window's left edge from 0 to 3/8
    return {u * 0.375, 0.1875, 1.6, 1};
  }
  if (t < 60) return {0, 0, 1, 1 - 0.75 * (t - 45) / 15};
  return {1 - 1 / 1.5, 0.1, 1.5, 1};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make-video-stream IN OUT.mkv\n");
    return 2;
  }
  const std::string in = argv[1], out = argv[2];
  av_log_set_level(AV_LOG_ERROR);
  AVFormatContext* ic = nullptr;
  if (avformat_open_input(&ic, in.c_str(), nullptr, nullptr) < 0) return fail(in, "cannot open");
  if (avformat_find_stream_info(ic, nullptr) < 0) return fail(in, "no stream information");
  const int vs = av_find_best_stream(ic, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (vs < 0) return fail(in, "no video stream");
  AVStream* ist = ic->streams[vs];
  const AVCodec* dcodec = avcodec_find_decoder(ist->codecpar->codec_id);
  AVCodecContext* dec = avcodec_alloc_context3(dcodec);
  avcodec_parameters_to_context(dec, ist->codecpar);
  if (!dcodec || avcodec_open2(dec, dcodec, nullptr) < 0) return fail(in, "cannot decode");
  const int w = dec->width & ~1, h = dec->height & ~1;
  AVRational rate = av_guess_frame_rate(ic, ist, nullptr);
  if (rate.num <= 0 || rate.den <= 0) rate = {10, 1};

  AVFormatContext* oc = nullptr;
  if (avformat_alloc_output_context2(&oc, nullptr, nullptr, out.c_str()) < 0 || !oc)
    return fail(out, "unknown container");
  const AVCodec* ecodec = avcodec_find_encoder_by_name("libx264");
  if (!ecodec) return fail(out, "FFmpeg has no libx264");
  AVCodecContext* enc = avcodec_alloc_context3(ecodec);
  enc->width = w, enc->height = h, enc->pix_fmt = AV_PIX_FMT_YUV420P;
  enc->time_base = av_inv_q(rate), enc->framerate = rate;
  enc->gop_size = 10 * rate.num / rate.den, enc->max_b_frames = 0;
  av_opt_set(enc->priv_data, "preset", "veryfast", 0);
  av_opt_set(enc->priv_data, "crf", "16", 0);
  if (oc->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (avcodec_open2(enc, ecodec, nullptr) < 0) return fail(out, "cannot open libx264");
  AVStream* ost = avformat_new_stream(oc, nullptr);
  avcodec_parameters_from_context(ost->codecpar, enc);
  ost->time_base = enc->time_base;
  ost->avg_frame_rate = rate;
  if (avio_open(&oc->pb, out.c_str(), AVIO_FLAG_WRITE) < 0 ||
      avformat_write_header(oc, nullptr) < 0)
    return fail(out, "cannot write");

  AVFrame* src = av_frame_alloc();
  AVFrame* yuv = av_frame_alloc();  // the decoded frame as YUV420P at (w, h)
  yuv->format = AV_PIX_FMT_YUV420P, yuv->width = w, yuv->height = h;
  av_frame_get_buffer(yuv, 0);
  AVFrame* dst = av_frame_alloc();
  dst->format = AV_PIX_FMT_YUV420P, dst->width = w, dst->height = h;
  av_frame_get_buffer(dst, 0);
  AVPacket* pkt = av_packet_alloc();
  AVPacket* opkt = av_packet_alloc();
  SwsContext* to_yuv = nullptr;
  int64_t n = 0;
  auto drain = [&] {
    while (avcodec_receive_packet(enc, opkt) == 0) {
      av_packet_rescale_ts(opkt, enc->time_base, ost->time_base);
      opkt->stream_index = ost->index;
      av_interleaved_write_frame(oc, opkt);
    }
  };
  auto emit = [&](AVFrame* f) {
    to_yuv =
        sws_getCachedContext(to_yuv, f->width, f->height, static_cast<AVPixelFormat>(f->format), w,
                             h, AV_PIX_FMT_YUV420P, SWS_BICUBIC, nullptr, nullptr, nullptr);
    av_frame_make_writable(yuv);
    sws_scale(to_yuv, f->data, f->linesize, 0, f->height, yuv->data, yuv->linesize);
    const double t = static_cast<double>(n) * rate.den / rate.num;
    const View v = view_at(t);
    // The crop window (even offsets and sizes for 4:2:0), scaled back to the full size.
    const int cw = static_cast<int>(w / v.scale) & ~1, ch = static_cast<int>(h / v.scale) & ~1;
    const int x0 = std::clamp(static_cast<int>(v.x0 * w) & ~1, 0, w - cw);
    const int y0 = std::clamp(static_cast<int>(v.y0 * h) & ~1, 0, h - ch);
    const uint8_t* planes[4] = {yuv->data[0] + y0 * yuv->linesize[0] + x0,
                                yuv->data[1] + (y0 / 2) * yuv->linesize[1] + x0 / 2,
                                yuv->data[2] + (y0 / 2) * yuv->linesize[2] + x0 / 2, nullptr};
    SwsContext* zoom = sws_getContext(cw, ch, AV_PIX_FMT_YUV420P, w, h, AV_PIX_FMT_YUV420P,
                                      SWS_BICUBIC, nullptr, nullptr, nullptr);
    av_frame_make_writable(dst);
    sws_scale(zoom, planes, yuv->linesize, 0, ch, dst->data, dst->linesize);
    sws_freeContext(zoom);
    if (v.gain < 1) {
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          uint8_t& p = dst->data[0][y * dst->linesize[0] + x];
          p = static_cast<uint8_t>(std::lround(16 + (p - 16) * v.gain));
        }
      for (int c = 1; c <= 2; ++c)
        for (int y = 0; y < h / 2; ++y)
          for (int x = 0; x < w / 2; ++x) {
            uint8_t& p = dst->data[c][y * dst->linesize[c] + x];
            p = static_cast<uint8_t>(std::lround(128 + (p - 128) * (0.5 + 0.5 * v.gain)));
          }
    }
    dst->pts = n++;
    avcodec_send_frame(enc, dst);
    drain();
  };
  while (av_read_frame(ic, pkt) >= 0) {
    if (pkt->stream_index == vs && avcodec_send_packet(dec, pkt) >= 0)
      while (avcodec_receive_frame(dec, src) == 0) emit(src);
    av_packet_unref(pkt);
  }
  avcodec_send_packet(dec, nullptr);
  while (avcodec_receive_frame(dec, src) == 0) emit(src);
  avcodec_send_frame(enc, nullptr);
  drain();
  av_write_trailer(oc);
  avio_closep(&oc->pb);
  std::printf("make-video-stream: %s: %lld frames at %d/%d fps from %s\n", out.c_str(),
              static_cast<long long>(n), rate.num, rate.den, in.c_str());
  sws_freeContext(to_yuv);
  av_packet_free(&pkt);
  av_packet_free(&opkt);
  av_frame_free(&src);
  av_frame_free(&yuv);
  av_frame_free(&dst);
  avcodec_free_context(&dec);
  avcodec_free_context(&enc);
  avformat_close_input(&ic);
  avformat_free_context(oc);
  return n > 0 ? 0 : fail(in, "no frame decoded");
}
