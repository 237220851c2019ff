// The wire format of the source/server split (issue 18; docs/deployment.md when it lands): every
// message on every subject is one envelope, versioned and size-bounded, so that a server can
// reject garbage, oversized or wrong-version messages, count them and go on.
//
//   offset  size  field
//        0     4  magic "OADP"
//        4     2  version (little-endian; this build speaks kWireVersion)
//        6     2  kind (Kind)
//        8     8  interval index (little-endian; 0 where a kind has none)
//       16     4  meta length M (little-endian, <= Limits::max_meta)
//       20     4  payload length P (little-endian, <= Limits::max_payload)
//       24     M  meta: one JSON object (UTF-8), nesting depth <= Limits::max_depth
//     24+M     P  payload: opaque bytes (encoded media, a serialised tensor)
//
// The message's size must be exactly 24 + M + P. Nothing here depends on NATS or LibTorch.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace oneadapt::net {

inline constexpr std::uint16_t kWireVersion = 1;
inline constexpr std::size_t kHeaderBytes = 24;

/// What a message is. Values are part of the wire format: never renumber, only append.
enum class Kind : std::uint16_t {
  hello = 1,          ///< source -> servers: a stream opens (its spec), or asks to be taken over
  welcome = 2,        ///< server -> source: the stream is served by this server from interval N
  interval = 3,       ///< source -> server: one interval's encoded payload at the applied config
  update = 4,         ///< server -> source: the configuration (and map) for the next interval
  probe_request = 5,  ///< server -> source: render these configurations, report bytes and rec
  probe_result = 6,   ///< source -> server: the probes' bytes and rec (no payload)
  close = 7,          ///< either way: the stream ends (the reason in meta)
  job = 8,            ///< compare -> servers: one unit of an experiment
  job_result = 9,     ///< server -> compare: its result
  call = 10,          ///< source -> its server: one operation of the task side (meta "op")
  reply = 11,         ///< server -> source: the operation's result, or meta "error"
};
inline constexpr std::uint16_t kMaxKind = 11;

const char* kind_name(Kind kind);

struct Limits {
  std::size_t max_meta = 256 * 1024;            ///< JSON meta bytes
  std::size_t max_payload = 64 * 1024 * 1024;   ///< payload bytes (NATS's own default is 1 MiB)
  int max_depth = 32;                           ///< JSON nesting
};

struct Message {
  Kind kind = Kind::hello;
  std::uint64_t interval = 0;
  nlohmann::json meta = nlohmann::json::object();
  std::vector<std::uint8_t> payload;
};

/// Why a message was rejected. Values index RejectCounts.
enum class Reject : std::uint8_t {
  truncated,          ///< shorter than the header
  bad_magic,          ///< not an envelope at all
  wrong_version,      ///< another version of the protocol
  unknown_kind,       ///< a kind this build does not know
  length_mismatch,    ///< size != 24 + M + P
  meta_too_large,     ///< M over the limit
  payload_too_large,  ///< P over the limit
  bad_meta,           ///< not a JSON object, or nested too deep
};
inline constexpr std::size_t kRejectReasons = 8;
const char* reject_name(Reject reason);

struct Rejection {
  Reject reason;
  std::string text;  ///< one line for the log, e.g. "wrong version 2 (this build speaks 1)"
};

/// The envelope of `message` (throws oneadapt::Error{invalid_argument} when it breaks `limits`,
/// has an unknown kind or meta strings that are not UTF-8: a sender never puts on the wire what
/// a receiver would reject).
std::vector<std::uint8_t> encode(const Message& message, const Limits& limits = {});

/// The message in `size` bytes at `data`, or why not. Never reads past `size`; throws nothing but
/// std::bad_alloc (lengths are checked against `limits` before anything is allocated).
std::variant<Message, Rejection> decode(const void* data, std::size_t size,
                                        const Limits& limits = {});

/// Rejected messages by reason, for a server's counters and its status (not thread-safe: one
/// per receiving thread, summed for a status).
class RejectCounts {
 public:
  void count(Reject reason) { ++counts_[static_cast<std::size_t>(reason)]; }
  std::uint64_t operator[](Reject reason) const { return counts_[static_cast<std::size_t>(reason)]; }
  std::uint64_t total() const;
  nlohmann::json to_json() const;  ///< {"truncated": n, ...}, every reason present

 private:
  std::array<std::uint64_t, kRejectReasons> counts_{};
};

/// Whether `id` may name a stream: 1-64 of [A-Za-z0-9_-] (it becomes a NATS subject token).
bool valid_stream_id(std::string_view id);

}  // namespace oneadapt::net
