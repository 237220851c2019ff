// The envelope of the source/server split (core/src/net/wire.hpp): round trips, and every kind
// of bad message rejected with its reason, never a crash or a read past the end.
#include <doctest/doctest.h>

#include <oneadapt/error.hpp>
#include <random>

#include "guard.hpp"
#include "net/wire.hpp"

using namespace oneadapt::net;

namespace {

Message sample(Kind kind) {
  Message m;
  m.kind = kind;
  m.interval = 0x0102030405060708ULL;
  m.meta = {{"stream", "cam-1"}, {"config", {{"crf", 23}, {"resolution", 0.8}}}};
  m.payload = {0, 1, 2, 250, 251, 252};
  return m;
}

Rejection rejected(const std::vector<std::uint8_t>& bytes, const Limits& limits = {}) {
  auto r = decode(bytes.data(), bytes.size(), limits);
  REQUIRE(std::holds_alternative<Rejection>(r));
  return std::get<Rejection>(r);
}

void set_u32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

}  // namespace

TEST_CASE("wire: every kind survives a round trip") {
  for (std::uint16_t k = 1; k <= kMaxKind; ++k) {
    const Message in = sample(static_cast<Kind>(k));
    const auto bytes = encode(in);
    auto out = decode(bytes.data(), bytes.size());
    REQUIRE(std::holds_alternative<Message>(out));
    const auto& m = std::get<Message>(out);
    CHECK(m.kind == in.kind);
    CHECK(m.interval == in.interval);
    CHECK(m.meta == in.meta);
    CHECK(m.payload == in.payload);
    CHECK(std::string(kind_name(m.kind)) != "unknown");
  }
  // An empty payload and an empty meta object are valid.
  Message empty;
  const auto bytes = encode(empty);
  CHECK(bytes.size() == kHeaderBytes + 2);
  CHECK(std::holds_alternative<Message>(decode(bytes.data(), bytes.size())));
}

TEST_CASE("wire: every truncation of a message is rejected") {
  const auto bytes = encode(sample(Kind::interval));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(n));
    const auto r = rejected(cut);
    CHECK((r.reason == (n < kHeaderBytes ? Reject::truncated : Reject::length_mismatch)));
  }
  auto longer = bytes;
  longer.push_back(0);
  CHECK(rejected(longer).reason == Reject::length_mismatch);
  CHECK(std::holds_alternative<Rejection>(decode(nullptr, 0)));
}

TEST_CASE("wire: a bad header is rejected with its reason") {
  const auto good = encode(sample(Kind::update));
  auto b = good;
  b[0] = 'X';
  CHECK(rejected(b).reason == Reject::bad_magic);
  b = good;
  b[4] = 2;  // version 2
  const auto v = rejected(b);
  CHECK(v.reason == Reject::wrong_version);
  CHECK(v.text == "wrong version 2 (this build speaks 1)");
  for (std::uint8_t kind : {0, kMaxKind + 1, 255}) {
    b = good;
    b[6] = kind;
    b[7] = 0;
    CHECK(rejected(b).reason == Reject::unknown_kind);
  }
  // Lengths that claim more than the limits are refused before anything is read or allocated.
  b = good;
  set_u32(b, 20, 0xFFFFFFFFu);
  CHECK(rejected(b).reason == Reject::payload_too_large);
  b = good;
  set_u32(b, 16, 0xFFFFFFFFu);
  CHECK(rejected(b).reason == Reject::meta_too_large);
  Limits small;
  small.max_payload = 3;
  const auto p = rejected(good, small);
  CHECK(p.reason == Reject::payload_too_large);
  CHECK(p.text == "payload of 6 bytes is over the limit of 3");
}

TEST_CASE("wire: meta that is not a shallow JSON object is rejected") {
  auto with_meta = [](const std::string& meta) {
    std::vector<std::uint8_t> b = encode(Message{});
    b.resize(kHeaderBytes);
    set_u32(b, 16, static_cast<std::uint32_t>(meta.size()));
    b.insert(b.end(), meta.begin(), meta.end());
    return b;
  };
  for (const std::string bad : {"", "{", "[1,2]", "42", "\"text\"", "{\"a\":}", "\xff\xfe"})
    CHECK(rejected(with_meta(bad)).reason == Reject::bad_meta);
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK(rejected(with_meta("{\"a\":" + deep + "}")).reason == Reject::bad_meta);
  const std::string ok_depth = "{\"a\":" + std::string(20, '[') + std::string(20, ']') + "}";
  const auto b = with_meta(ok_depth);
  CHECK(std::holds_alternative<Message>(decode(b.data(), b.size())));
}

TEST_CASE("wire: meta with many siblings decodes (no parser quadratic in them)") {
  // 80,000 empty objects in one array: 240 KB, under the meta limit. nlohmann's callback parser
  // scans siblings at every closing object (quadratic: seconds a message); decode uses none.
  std::string meta = "{\"a\":[";
  for (int i = 0; i < 80000; ++i) meta += i ? ",{}" : "{}";
  meta += "]}";
  Message m;
  m.kind = Kind::probe_result;
  m.meta = nlohmann::json::parse(meta);
  const auto bytes = encode(m);
  auto r = decode(bytes.data(), bytes.size());
  REQUIRE(std::holds_alternative<Message>(r));
  CHECK(std::get<Message>(r).meta.at("a").size() == 80000);
}

TEST_CASE("wire: random mutations never crash and every rejection is counted") {
  std::mt19937 rng(20261202);
  const auto good = encode(sample(Kind::probe_result));
  RejectCounts counts;
  int accepted = 0, refused = 0;
  for (int i = 0; i < 20000; ++i) {
    auto b = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 3) {
        case 0:
          b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
          break;
        case 1:
          b.resize(rng() % (b.size() + 1));
          break;
        default:
          b.push_back(static_cast<std::uint8_t>(rng()));
      }
      if (b.empty()) b.push_back(0);
    }
    auto r = decode(b.data(), b.size());
    if (std::holds_alternative<Message>(r)) {
      ++accepted;  // a mutation of the payload or the interval is still a valid message
    } else {
      ++refused;
      counts.count(std::get<Rejection>(r).reason);
      CHECK_FALSE(std::get<Rejection>(r).text.empty());
    }
  }
  CHECK(counts.total() == static_cast<std::uint64_t>(refused));
  CHECK(refused > 15000);
  CHECK(accepted > 0);
  const auto j = counts.to_json();
  CHECK(j.size() == kRejectReasons);
  CHECK(j.at("length_mismatch").get<std::uint64_t>() == counts[Reject::length_mismatch]);
}

TEST_CASE("wire: a sender never encodes what a receiver would refuse") {
  Limits small;
  small.max_payload = 4;
  CHECK_THROWS_AS(encode(sample(Kind::interval), small), oneadapt::Error);
  small = Limits{};
  small.max_meta = 8;
  CHECK_THROWS_AS(encode(sample(Kind::interval), small), oneadapt::Error);
  Message m;
  m.meta = nlohmann::json::array();
  CHECK_THROWS_AS(encode(m), oneadapt::Error);
  m.meta = {{"name", std::string("\xff\xfe")}};  // not UTF-8: nlohmann's dump would throw its own
  CHECK_THROWS_WITH_AS(encode(m), "wire: hello meta holds a string that is not valid UTF-8",
                       oneadapt::Error);
  m.meta = nlohmann::json::object();
  m.kind = static_cast<Kind>(42);
  CHECK_THROWS_WITH_AS(encode(m), "wire: unknown message kind 42", oneadapt::Error);
  m.kind = Kind::hello;
  nlohmann::json deep = 1;
  for (int i = 0; i < 40; ++i) deep = nlohmann::json::array({deep});
  m.meta = {{"deep", deep}};
  CHECK_THROWS_AS(encode(m), oneadapt::Error);
}

TEST_CASE("wire: stream ids are NATS subject tokens") {
  CHECK(valid_stream_id("cam-1"));
  CHECK(valid_stream_id("Mic_02"));
  CHECK_FALSE(valid_stream_id(""));
  CHECK_FALSE(valid_stream_id("a.b"));
  CHECK_FALSE(valid_stream_id("a*"));
  CHECK_FALSE(valid_stream_id("a>"));
  CHECK_FALSE(valid_stream_id("with space"));
  CHECK_FALSE(valid_stream_id(std::string(65, 'x')));
  CHECK(valid_stream_id(std::string(64, 'x')));
}
