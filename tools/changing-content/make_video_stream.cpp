// make-video-stream IN OUT: a video stream whose content changes, made from one real clip (issue
// 16). Every frame is a frame of IN (vtest.avi: a real street scene, a fixed camera), in order;
// what is SYNTHETIC is the camera work and the crowd's leaving, in segments of the output:
//   0-12 s   the full view;
//   12-24 s  a cut to a 2x zoom on the left half (people twice as large);
//   24-36 s  a pan: a window of 5/8 of the frame moving left to right across it, scaled up;
//   36-48 s  the full view darkening from day to dusk (luma gain 1 -> 0.25, chroma towards grey);
//   48-62 s  the full view at day level while the crowd goes and comes back: people are erased
//            left to right over 48-51 s, the street is empty 51-59 s, and they reappear right
//            to left over 59-62 s. Erasing replaces the pixels that differ from an empty-street
//            plate (the per-pixel median of every 5th frame of IN) by more than 20 luma levels,
//            grown by 3 pixels, with the plate; the rest of each frame stays as recorded;
//   62 s-    a cut to a 1.5x zoom on the right part.
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
#include <cstdlib>
#include <functional>
#include <cstdio>
#include <string>
#include <vector>

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
  if (t < 12) return {0, 0, 1, 1};
  if (t < 24) return {0, 0.25, 2, 1};
  if (t < 36) {
    const double u = (t - 24) / 12;  // pan across: the window's left edge from 0 to 3/8
    return {u * 0.375, 0.1875, 1.6, 1};
  }
  if (t < 48) return {0, 0, 1, 1 - 0.75 * (t - 36) / 12};
  if (t < 62) return {0, 0, 1, 1};
  return {1 - 1 / 1.5, 0.1, 1.5, 1};
}

// The share of the frame's width, from the left, whose people are erased at time t.
double erased_at(double t) {
  if (t < 48 || t >= 62) return 0;
  if (t < 51) return (t - 48) / 3;
  if (t < 59) return 1;
  return 1 - (t - 59) / 3;  // they come back from the right: the erased part shrinks leftwards
}

// The empty-street plate: per-pixel medians of the sampled frames (YUV420P planes).
struct Plate {
  int w = 0, h = 0;
  std::vector<std::vector<uint8_t>> samples[3];  // per plane: one vector per sampled frame
  std::vector<uint8_t> plane[3];
  void add(const AVFrame* f) {
    for (int c = 0; c < 3; ++c) {
      const int pw = c ? w / 2 : w, ph = c ? h / 2 : h;
      std::vector<uint8_t> v(static_cast<std::size_t>(pw) * ph);
      for (int y = 0; y < ph; ++y)
        std::copy_n(f->data[c] + y * f->linesize[c], pw, v.begin() + static_cast<long>(y) * pw);
      samples[c].push_back(std::move(v));
    }
  }
  void finish() {
    for (int c = 0; c < 3; ++c) {
      const std::size_t n = samples[c].empty() ? 0 : samples[c][0].size();
      plane[c].resize(n);
      std::vector<uint8_t> col(samples[c].size());
      for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t k = 0; k < col.size(); ++k) col[k] = samples[c][k][i];
        std::nth_element(col.begin(), col.begin() + static_cast<long>(col.size() / 2), col.end());
        plane[c][i] = col[col.size() / 2];
      }
      samples[c].clear();
    }
  }
};

// Replaces the people in the left `share` of frame f (YUV420P, w x h) by the plate.
void erase_people(AVFrame* f, const Plate& p, double share) {
  const int w = p.w, h = p.h, xe = static_cast<int>(share * w), grow = 3;
  std::vector<uint8_t> fg(static_cast<std::size_t>(w) * h, 0), mask(fg.size(), 0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      fg[static_cast<std::size_t>(y) * w + x] =
          std::abs(f->data[0][y * f->linesize[0] + x] - p.plane[0][static_cast<std::size_t>(y) * w + x]) > 20;
  for (int y = 0; y < h; ++y)  // grown by `grow` pixels (a square max filter)
    for (int x = 0; x < std::min(w, xe); ++x) {
      bool any = false;
      for (int dy = -grow; dy <= grow && !any; ++dy)
        for (int dx = -grow; dx <= grow && !any; ++dx) {
          const int yy = y + dy, xx = x + dx;
          any = yy >= 0 && yy < h && xx >= 0 && xx < w && fg[static_cast<std::size_t>(yy) * w + xx];
        }
      mask[static_cast<std::size_t>(y) * w + x] = any;
    }
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      if (mask[static_cast<std::size_t>(y) * w + x]) {
        f->data[0][y * f->linesize[0] + x] = p.plane[0][static_cast<std::size_t>(y) * w + x];
        if ((x | y) % 2 == 0)
          for (int c = 1; c <= 2; ++c)
            f->data[c][(y / 2) * f->linesize[c] + x / 2] =
                p.plane[c][static_cast<std::size_t>(y / 2) * (w / 2) + x / 2];
      }
}

// Decodes every frame of `in` and hands it to `fn` as YUV420P at (w, h) (even sizes). Returns an
// error message, or "" on success; w, h and rate are set from the stream.
std::string decode(const std::string& in, int& w, int& h, AVRational& rate,
                   const std::function<void(AVFrame*)>& fn) {
  AVFormatContext* ic = nullptr;
  if (avformat_open_input(&ic, in.c_str(), nullptr, nullptr) < 0) return "cannot open";
  std::string err;
  AVCodecContext* dec = nullptr;
  AVFrame* src = av_frame_alloc();
  AVFrame* yuv = av_frame_alloc();
  AVPacket* pkt = av_packet_alloc();
  SwsContext* to_yuv = nullptr;
  const int vs = avformat_find_stream_info(ic, nullptr) < 0
                     ? -1
                     : av_find_best_stream(ic, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  const AVCodec* dcodec = vs >= 0 ? avcodec_find_decoder(ic->streams[vs]->codecpar->codec_id) : nullptr;
  if (vs < 0) {
    err = "no video stream";
  } else if (!dcodec || !(dec = avcodec_alloc_context3(dcodec)) ||
             avcodec_parameters_to_context(dec, ic->streams[vs]->codecpar) < 0 ||
             avcodec_open2(dec, dcodec, nullptr) < 0) {
    err = "cannot decode";
  } else {
    w = dec->width & ~1, h = dec->height & ~1;
    rate = av_guess_frame_rate(ic, ic->streams[vs], nullptr);
    if (rate.num <= 0 || rate.den <= 0) rate = {10, 1};
    yuv->format = AV_PIX_FMT_YUV420P, yuv->width = w, yuv->height = h;
    av_frame_get_buffer(yuv, 0);
    auto convert = [&](AVFrame* f) {
      to_yuv = sws_getCachedContext(to_yuv, f->width, f->height,
                                    static_cast<AVPixelFormat>(f->format), w, h,
                                    AV_PIX_FMT_YUV420P, SWS_BICUBIC, nullptr, nullptr, nullptr);
      av_frame_make_writable(yuv);
      sws_scale(to_yuv, f->data, f->linesize, 0, f->height, yuv->data, yuv->linesize);
      fn(yuv);
    };
    while (av_read_frame(ic, pkt) >= 0) {
      if (pkt->stream_index == vs && avcodec_send_packet(dec, pkt) >= 0)
        while (avcodec_receive_frame(dec, src) == 0) convert(src);
      av_packet_unref(pkt);
    }
    avcodec_send_packet(dec, nullptr);
    while (avcodec_receive_frame(dec, src) == 0) convert(src);
  }
  sws_freeContext(to_yuv);
  av_packet_free(&pkt);
  av_frame_free(&src);
  av_frame_free(&yuv);
  avcodec_free_context(&dec);
  avformat_close_input(&ic);
  return err;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make-video-stream IN OUT.mkv\n");
    return 2;
  }
  const std::string in = argv[1], out = argv[2];
  av_log_set_level(AV_LOG_ERROR);
  int w = 0, h = 0;
  AVRational rate{10, 1};
  // Pass 1: the empty-street plate from every 5th frame.
  Plate plate;
  int64_t k = 0;
  std::string err = decode(in, w, h, rate, [&](AVFrame* f) {
    plate.w = w, plate.h = h;
    if (k++ % 5 == 0) plate.add(f);
  });
  if (!err.empty()) return fail(in, err);
  if (k == 0) return fail(in, "no frame decoded");
  plate.finish();

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

  AVFrame* dst = av_frame_alloc();
  dst->format = AV_PIX_FMT_YUV420P, dst->width = w, dst->height = h;
  av_frame_get_buffer(dst, 0);
  AVPacket* opkt = av_packet_alloc();
  int64_t n = 0;
  auto drain = [&] {
    while (avcodec_receive_packet(enc, opkt) == 0) {
      av_packet_rescale_ts(opkt, enc->time_base, ost->time_base);
      opkt->stream_index = ost->index;
      av_interleaved_write_frame(oc, opkt);
    }
  };
  // Pass 2: every frame with the crowd's leaving and the camera work of its time.
  err = decode(in, w, h, rate, [&](AVFrame* yuv) {
    const double t = static_cast<double>(n) * rate.den / rate.num;
    if (const double share = erased_at(t); share > 0) erase_people(yuv, plate, share);
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
  });
  avcodec_send_frame(enc, nullptr);
  drain();
  av_write_trailer(oc);
  avio_closep(&oc->pb);
  av_packet_free(&opkt);
  av_frame_free(&dst);
  avcodec_free_context(&enc);
  avformat_free_context(oc);
  if (!err.empty()) return fail(in, err);
  std::printf("make-video-stream: %s: %lld frames at %d/%d fps from %s (plate from %lld frames)\n",
              out.c_str(), static_cast<long long>(n), rate.num, rate.den, in.c_str(),
              static_cast<long long>((k + 4) / 5));
  return n > 0 ? 0 : fail(in, "no frame decoded");
}
