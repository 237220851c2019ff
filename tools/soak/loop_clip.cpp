// loop-clip IN OUT N: remuxes the video stream of IN N times back to back into OUT (same codec,
// no re-encoding; presentation times continue across the joins), for soak runs over a long
// stream made from a short real clip (tools/soak). The container of OUT follows its extension.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>
}

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {
int fail(const std::string& file, const std::string& what) {
  std::fprintf(stderr, "loop-clip: error: %s: %s\n", file.c_str(), what.c_str());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || std::atoi(argv[3]) < 1) {
    std::fprintf(stderr, "usage: loop-clip IN OUT N   (N >= 1 copies)\n");
    return 2;
  }
  const std::string in = argv[1], out = argv[2];
  const int copies = std::atoi(argv[3]);
  av_log_set_level(AV_LOG_ERROR);
  AVFormatContext* ic = nullptr;
  if (avformat_open_input(&ic, in.c_str(), nullptr, nullptr) < 0) return fail(in, "cannot open");
  if (avformat_find_stream_info(ic, nullptr) < 0) return fail(in, "no stream information");
  const int vs = av_find_best_stream(ic, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (vs < 0) return fail(in, "no video stream");
  const AVRational itb = ic->streams[vs]->time_base;

  // One pass in memory: the packets and the loop's length (the end of its last frame).
  std::vector<AVPacket*> packets;
  int64_t first = AV_NOPTS_VALUE, end = 0;
  AVPacket* pkt = av_packet_alloc();
  while (av_read_frame(ic, pkt) >= 0) {
    if (pkt->stream_index == vs) {
      const int64_t t = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
      if (t != AV_NOPTS_VALUE) {
        if (first == AV_NOPTS_VALUE || t < first) first = t;
        end = std::max(end, t + std::max<int64_t>(pkt->duration, 1));
      }
      packets.push_back(av_packet_clone(pkt));
    }
    av_packet_unref(pkt);
  }
  if (packets.empty() || first == AV_NOPTS_VALUE) return fail(in, "no timed video packets");
  const int64_t span = end - first;

  AVFormatContext* oc = nullptr;
  if (avformat_alloc_output_context2(&oc, nullptr, nullptr, out.c_str()) < 0 || !oc)
    return fail(out, "unknown container");
  AVStream* st = avformat_new_stream(oc, nullptr);
  avcodec_parameters_copy(st->codecpar, ic->streams[vs]->codecpar);
  st->codecpar->codec_tag = 0;
  st->time_base = itb;
  st->avg_frame_rate = ic->streams[vs]->avg_frame_rate;
  st->r_frame_rate = ic->streams[vs]->r_frame_rate;
  if (avio_open(&oc->pb, out.c_str(), AVIO_FLAG_WRITE) < 0 ||
      avformat_write_header(oc, nullptr) < 0)
    return fail(out, "cannot write");
  for (int k = 0; k < copies; ++k) {
    for (const AVPacket* p : packets) {
      AVPacket* q = av_packet_clone(p);
      const int64_t shift = static_cast<int64_t>(k) * span - first;
      if (q->pts != AV_NOPTS_VALUE) q->pts += shift;
      if (q->dts != AV_NOPTS_VALUE) q->dts += shift;
      q->stream_index = st->index;
      q->pos = -1;
      av_packet_rescale_ts(q, itb, st->time_base);
      if (av_interleaved_write_frame(oc, q) < 0) return fail(out, "cannot write a packet");
      av_packet_free(&q);
    }
  }
  av_write_trailer(oc);
  avio_closep(&oc->pb);
  avformat_free_context(oc);
  for (AVPacket*& p : packets) av_packet_free(&p);
  av_packet_free(&pkt);
  avformat_close_input(&ic);
  std::printf("%s: %d copies of %s (%zu packets each)\n", out.c_str(), copies, in.c_str(),
              packets.size());
  return 0;
}
