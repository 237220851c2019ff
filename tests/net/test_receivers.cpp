// The server side of the built-in modalities (SDK ABI 6: Rendering::wire, Receiver): what a
// source sends decodes on a receiver, which has no access to the source's data, to exactly the
// DNN input the source rendered, on real video, speech and LiDAR; damaged bytes (cut, garbage,
// flipped, empty, another configuration's) give an oneadapt::Error naming the interval, never a
// crash or a hang (LiDAR: the damage its header check catches); a receiver opened with a bad
// stream format is refused.
#include <ATen/ATen.h>

#include <doctest/doctest.h>

#include "../guard.hpp"

#include <optional>
#include <random>
#include <utility>

#include "assets.hpp"
#include "plugin_registry.hpp"
#include "../support.hpp"

using namespace oneadapt;
using test_support::plugins;

namespace {

struct Stream {
  std::string modality;
  std::string input;
  host::ComponentSettings settings;
};

std::vector<Stream> streams() {
  return {{"video", "video/vtest.avi", {}},
          {"video", "video/vtest.avi", {{{"roi_tile", "64"}}, {}}},
          {"audio", "speech/librivox-0870.wav", {}},
          {"lidar", "lidar/vlp16.rawlog", {}}};
}

// Every configuration of one knob moved to its last value, plus the reference and the cheapest.
std::vector<Configuration> configurations(const std::vector<KnobSpec>& knobs) {
  std::vector<Configuration> out;
  std::vector<std::size_t> zero(knobs.size(), 0), last;
  for (const auto& k : knobs) last.push_back(k.values.size() - 1);
  out.push_back(Configuration::at_indices(knobs, zero));
  out.push_back(Configuration::at_indices(knobs, last));
  for (std::size_t k = 0; k < knobs.size(); ++k) {
    auto idx = zero;
    idx[k] = last[k];
    out.push_back(Configuration::at_indices(knobs, idx));
  }
  return out;
}

// Decodes `wire` and says how it ended: "ok", or the error's code and message. Anything that is
// not an oneadapt::Error fails the test.
std::string try_decode(host::HostReceiver& r, const Configuration& c, const IntervalInfo& info,
                       const std::vector<std::uint8_t>& fresh,
                       const std::vector<std::uint8_t>& wire, const at::Tensor& like) {
  try {
    at::Tensor x = r.decode(c, info, fresh, wire);
    CHECK(x.sizes() == like.sizes());
    return "ok";
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find('\n') == std::string::npos);
    return std::string(errc_name(e.code())) + ": " + e.what();
  }
}

}  // namespace

// The stream's source and its receiver; nullopt (the test reports itself skipped) when the
// asset is missing.
std::optional<std::pair<host::HostSource, host::HostReceiver>> opened(const Stream& s) {
  const auto path = asset_path(s.input);
  if (!std::filesystem::exists(path)) {
    ::test::skip(path.string() + " is missing (make assets)");
    return std::nullopt;
  }
  auto source = plugins().open_source(s.modality, path.string(), s.settings, 1.0);
  auto receiver = plugins().open_receiver(s.modality, s.settings, source.stream_format());
  return std::make_pair(std::move(source), std::move(receiver));
}

TEST_CASE("receiver: what the source sends decodes to the rendered input, on real data") {
  for (const auto& s : streams()) {
    auto both = opened(s);
    if (!both) return;
    auto& [source, receiver] = *both;
    IntervalInfo info;
    for (int interval = 0; interval < 2 && source.next_interval(info); ++interval) {
      for (const auto& c : configurations(source.knobs())) {
        CAPTURE(s.modality);
        CAPTURE(c.str());
        Rendering r = source.render(c);
        REQUIRE(r.wire.size() == r.header_bytes + r.bytes);
        at::Tensor x = receiver.decode(c, info, r.fresh, r.wire);
        REQUIRE(x.sizes() == r.input.sizes());
        CHECK(at::equal(x, r.input));
      }
    }
  }
}

TEST_CASE("receiver: damaged bytes give one error naming the interval, never a crash") {
  for (const auto& s : streams()) {
    auto both = opened(s);
    if (!both) return;
    auto& [source, receiver] = *both;
    IntervalInfo info;
    REQUIRE(source.next_interval(info));
    const Configuration c = source.reference();
    Rendering r = source.render(c);
    const auto& w = r.wire;
    CAPTURE(s.modality);
    // Cut at several places, empty, and garbage: refused with corrupt_data naming the interval.
    // PCL's octree decoder is not safe on damaged bytes (it sizes buffers and divides by values
    // from the stream): the LiDAR receiver checks the header, and only damage that the header
    // check catches is tried on it (docs/deployment.md, Security).
    const bool lidar = s.modality == "lidar";
    for (double keep : lidar ? std::vector<double>{0.0, 50.0 / static_cast<double>(w.size())}
                             : std::vector<double>{0.0, 0.1, 0.5, 0.9}) {
      std::vector<std::uint8_t> cut(
          w.begin(), w.begin() + static_cast<std::ptrdiff_t>(keep * static_cast<double>(w.size())));
      const std::string how = try_decode(receiver, c, info, r.fresh, cut, r.input);
      CAPTURE(keep);
      if (s.modality == "lidar" && cut.empty()) {
        CHECK(how == "ok");  // an empty sweep is sent as no bytes
      } else if (how != "ok") {
        CHECK(how.rfind("corrupt_data: ", 0) == 0);
        CHECK(how.find("interval 0 as received") != std::string::npos);
      } else {
        // A cut that leaves whole frames decodable must still not pass silently as the interval:
        // every built-in needs the whole payload.
        FAIL_CHECK("a cut stream decoded without an error");
      }
    }
    std::mt19937 rng(7);
    std::vector<std::uint8_t> garbage(w.size());
    for (auto& b : garbage) b = static_cast<std::uint8_t>(rng());
    CHECK(try_decode(receiver, c, info, r.fresh, garbage, r.input).rfind("corrupt_data: ", 0) == 0);
    if (lidar) {
      auto headless = w;
      headless[3] ^= 0x20;  // the header's identifier damaged
      CHECK(
          try_decode(receiver, c, info, r.fresh, headless, r.input).find("no PCL octree header") !=
          std::string::npos);
      continue;
    }
    // Bytes flipped inside the payload: an error or an input of the right shape, never a crash.
    for (int k = 0; k < 16; ++k) {
      auto flipped = w;
      flipped[static_cast<std::size_t>(rng()) % flipped.size()] ^= 0x5a;
      try_decode(receiver, c, info, r.fresh, flipped, r.input);
    }
    // Another configuration's bytes under this configuration's name.
    const auto configs = configurations(source.knobs());
    Rendering other = source.render(configs[1]);
    try_decode(receiver, c, info, r.fresh, other.wire, r.input);
  }
}

TEST_CASE("receiver: a bad stream format or a modality without a receiver is refused") {
  CHECK_THROWS_WITH_AS(plugins().open_receiver("video", {}, {{"width", "768"}}),
                       doctest::Contains("the stream format needs 'height'"), Error);
  CHECK_THROWS_WITH_AS(plugins().open_receiver("video", {}, {{"width", "0"}, {"height", "576"}}),
                       doctest::Contains("'width', an integer in [16, 16384] (got '0')"), Error);
  CHECK_THROWS_WITH_AS(
      plugins().open_receiver("audio", {}, {{"interval_samples", "-3"}}),
      doctest::Contains("'interval_samples', an integer in [1, 960000] (got '-3')"), Error);
  CHECK_THROWS_WITH_AS(plugins().open_receiver("nope", {}, {}),
                       doctest::Contains("no modality named 'nope'"), Error);
}
