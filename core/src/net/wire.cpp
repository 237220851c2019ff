#include "net/wire.hpp"

#include <algorithm>
#include <cstring>
#include <oneadapt/error.hpp>

namespace oneadapt::net {
namespace {

constexpr char kMagic[4] = {'O', 'A', 'D', 'P'};

void put_le(std::uint8_t* p, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::uint8_t>(value >> (8 * i));
}

std::uint64_t get_le(const std::uint8_t* p, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return value;
}

Rejection reject(Reject reason, std::string text) { return Rejection{reason, std::move(text)}; }

// The deepest nesting of [ and { in JSON text, strings (and their escapes) skipped.
int nesting_depth(const char* p, std::size_t n) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = p[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::hello:
      return "hello";
    case Kind::welcome:
      return "welcome";
    case Kind::interval:
      return "interval";
    case Kind::update:
      return "update";
    case Kind::probe_request:
      return "probe_request";
    case Kind::probe_result:
      return "probe_result";
    case Kind::close:
      return "close";
    case Kind::job:
      return "job";
    case Kind::job_result:
      return "job_result";
    case Kind::call:
      return "call";
    case Kind::reply:
      return "reply";
  }
  return "unknown";
}

const char* reject_name(Reject reason) {
  switch (reason) {
    case Reject::truncated:
      return "truncated";
    case Reject::bad_magic:
      return "bad_magic";
    case Reject::wrong_version:
      return "wrong_version";
    case Reject::unknown_kind:
      return "unknown_kind";
    case Reject::length_mismatch:
      return "length_mismatch";
    case Reject::meta_too_large:
      return "meta_too_large";
    case Reject::payload_too_large:
      return "payload_too_large";
    case Reject::bad_meta:
      return "bad_meta";
  }
  return "unknown";
}

std::vector<std::uint8_t> encode(const Message& message, const Limits& limits) {
  const auto kind = static_cast<std::uint16_t>(message.kind);
  if (kind == 0 || kind > kMaxKind)
    throw Error(Errc::invalid_argument, "wire: unknown message kind " + std::to_string(kind));
  const std::string what = std::string("wire: ") + kind_name(message.kind);
  if (!message.meta.is_object())
    throw Error(Errc::invalid_argument, what + " meta must be a JSON object");
  std::string meta;
  try {
    meta = message.meta.dump();
  } catch (const nlohmann::json::exception&) {
    throw Error(Errc::invalid_argument, what + " meta holds a string that is not valid UTF-8");
  }
  if (meta.size() > limits.max_meta || meta.size() > UINT32_MAX)
    throw Error(Errc::invalid_argument, what + " meta of " + std::to_string(meta.size()) +
                                            " bytes is over the limit of " +
                                            std::to_string(limits.max_meta));
  if (message.payload.size() > limits.max_payload || message.payload.size() > UINT32_MAX)
    throw Error(Errc::invalid_argument, what + " payload of " +
                                            std::to_string(message.payload.size()) +
                                            " bytes is over the limit of " +
                                            std::to_string(limits.max_payload));
  if (nesting_depth(meta.data(), meta.size()) > limits.max_depth)
    throw Error(Errc::invalid_argument, what + " meta nested deeper than " +
                                            std::to_string(limits.max_depth) + " levels");
  std::vector<std::uint8_t> out(kHeaderBytes + meta.size() + message.payload.size());
  std::uint8_t* p = out.data();
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(kMagic[i]);
  put_le(p + 4, kWireVersion, 2);
  put_le(p + 6, static_cast<std::uint16_t>(message.kind), 2);
  put_le(p + 8, message.interval, 8);
  put_le(p + 16, meta.size(), 4);
  put_le(p + 20, message.payload.size(), 4);
  std::copy(meta.begin(), meta.end(), p + kHeaderBytes);
  std::copy(message.payload.begin(), message.payload.end(), p + kHeaderBytes + meta.size());
  return out;
}

std::variant<Message, Rejection> decode(const void* data, std::size_t size, const Limits& limits) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  if (size < kHeaderBytes || p == nullptr)
    return reject(Reject::truncated, std::to_string(size) + " bytes, shorter than the " +
                                         std::to_string(kHeaderBytes) + "-byte header");
  if (std::memcmp(p, kMagic, 4) != 0)
    return reject(Reject::bad_magic, "not a oneadapt message (no OADP magic)");
  const auto version = static_cast<std::uint16_t>(get_le(p + 4, 2));
  if (version != kWireVersion)
    return reject(Reject::wrong_version, "wrong version " + std::to_string(version) +
                                             " (this build speaks " +
                                             std::to_string(kWireVersion) + ")");
  const auto kind = static_cast<std::uint16_t>(get_le(p + 6, 2));
  if (kind == 0 || kind > kMaxKind)
    return reject(Reject::unknown_kind, "unknown message kind " + std::to_string(kind));
  const std::uint64_t meta_len = get_le(p + 16, 4), payload_len = get_le(p + 20, 4);
  if (meta_len > limits.max_meta)
    return reject(Reject::meta_too_large, "meta of " + std::to_string(meta_len) +
                                              " bytes is over the limit of " +
                                              std::to_string(limits.max_meta));
  if (payload_len > limits.max_payload)
    return reject(Reject::payload_too_large, "payload of " + std::to_string(payload_len) +
                                                 " bytes is over the limit of " +
                                                 std::to_string(limits.max_payload));
  if (size != kHeaderBytes + meta_len + payload_len)
    return reject(Reject::length_mismatch,
                  std::to_string(size) + " bytes, the header says " +
                      std::to_string(kHeaderBytes + meta_len + payload_len));
  Message m;
  m.kind = static_cast<Kind>(kind);
  m.interval = get_le(p + 8, 8);
  const char* meta_begin = reinterpret_cast<const char*>(p + kHeaderBytes);
  // Depth first, on the bytes (no callback parser: nlohmann's is quadratic in siblings).
  if (nesting_depth(meta_begin, meta_len) > limits.max_depth)
    return reject(Reject::bad_meta,
                  "meta nested deeper than " + std::to_string(limits.max_depth) + " levels");
  m.meta = nlohmann::json::parse(meta_begin, meta_begin + meta_len, nullptr,
                                 /*allow_exceptions=*/false);
  if (m.meta.is_discarded() || !m.meta.is_object())
    return reject(Reject::bad_meta, "meta is not a JSON object");
  m.payload.assign(p + kHeaderBytes + meta_len, p + kHeaderBytes + meta_len + payload_len);
  return m;
}

std::uint64_t RejectCounts::total() const {
  std::uint64_t sum = 0;
  for (auto c : counts_) sum += c;
  return sum;
}

nlohmann::json RejectCounts::to_json() const {
  auto j = nlohmann::json::object();
  for (std::size_t i = 0; i < kRejectReasons; ++i)
    j[reject_name(static_cast<Reject>(i))] = counts_[i];
  return j;
}

bool valid_stream_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace oneadapt::net
