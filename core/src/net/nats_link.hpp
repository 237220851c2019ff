// A connection to NATS (Debian's nats-server 2.9 with JetStream, through the C client
// libnats 3.4): authentication from a file, publish, subscribe, request/reply, JetStream
// streams with durable pull consumers (at-least-once delivery) and key-value buckets (a stream's
// owner and its policy state). The transport seam of the source/server split (issue 18) sits on
// it. Every failure is a oneadapt::Error with one line naming the URL (or the file) and the
// problem; nothing here needs LibTorch.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

// libnats's opaque handles, so that this header does not pull in <nats/nats.h>.
struct __natsConnection;
struct __natsSubscription;
struct __jsCtx;
struct __kvStore;
struct __natsMsg;

namespace oneadapt::net {

/// What --auth FILE holds: one line `user:password`, or a user's nkey seed (`SU...`, as NATS's
/// `nk -gen user` writes it); never credentials on the command line.
struct Credentials {
  Credentials() = default;
  Credentials(std::string u, std::string p) : user(std::move(u)), password(std::move(p)) {}
  std::string user;
  std::string password;
  std::string nkey_seed;  ///< with an nkey: the seed (then user and password are empty)
  std::string nkey;       ///< with an nkey: its public key (`U...`), derived from the seed
};

/// Reads an --auth file (a UTF-8 BOM and the line's end are ignored; nothing else is trimmed).
/// Throws oneadapt::Error naming the file (never the password or seed): missing, unreadable,
/// readable by group or others (chmod 600), over 4 KiB, empty, more than one line, a NUL byte,
/// no ':' or an empty user or password; a seed that is not a user's nkey seed (its checksum,
/// its length, another kind of key).
Credentials read_auth_file(const std::filesystem::path& file);

/// The public key (`U...`) of a user's nkey seed (`SU...`): Ed25519 through OpenSSL, encoded as
/// NATS encodes keys (a prefix byte, base32 without padding, a CRC-16 checksum). Throws
/// Error(invalid_argument) saying what is wrong with the seed (never quoting it).
std::string nkey_public_key(const std::string& seed);
/// A user's nkey seed for 32 raw bytes (tests make keys with it).
std::string nkey_user_seed(const std::array<std::uint8_t, 32>& raw);

struct LinkOptions {
  std::string url = "nats://127.0.0.1:4222";
  std::optional<Credentials> credentials;
  std::string name = "oneadapt";  ///< shown by the server's monitoring
  std::chrono::milliseconds connect_timeout{2000};
  bool reconnect = true;  ///< reconnect after a dropped connection (not when the first fails)
};

/// One received message. The data stays owned by the underlying natsMsg until destroyed; the
/// subscription it came from is kept alive as long as the message (ack() needs it).
class Received {
 public:
  Received() = default;
  Received(__natsMsg* msg, std::shared_ptr<__natsSubscription> sub)
      : msg_(msg), sub_(std::move(sub)) {}
  Received(Received&& other) noexcept : msg_(other.msg_), sub_(std::move(other.sub_)) {
    other.msg_ = nullptr;
  }
  Received& operator=(Received&& other) noexcept;
  Received(const Received&) = delete;
  Received& operator=(const Received&) = delete;
  ~Received();

  const std::uint8_t* data() const;
  std::size_t size() const;
  std::string subject() const;
  std::string reply() const;  ///< empty when the sender expects no reply
  /// JetStream: acknowledge (the message will not be delivered again) or ask for redelivery.
  void ack();
  void nak();

 private:
  __natsMsg* msg_ = nullptr;
  std::shared_ptr<__natsSubscription> sub_;
};

/// A subscription. Destroying it leaves a JetStream durable consumer on the server (a later
/// pull_subscribe with the same name resumes it); messages already received stay valid.
class Subscription {
 public:
  Subscription() = default;
  Subscription(__natsSubscription* sub, std::string what);

  /// The next message, or nullopt after `timeout`. Messages the client library dropped because
  /// this subscriber was too slow are counted (dropped()) and receiving goes on.
  std::optional<Received> next(std::chrono::milliseconds timeout);
  /// JetStream pull consumer: up to `batch` messages, waiting at most `timeout` (at least 1 ms);
  /// possibly none.
  std::vector<Received> fetch(int batch, std::chrono::milliseconds timeout);
  std::uint64_t dropped() const { return dropped_; }

 private:
  std::shared_ptr<__natsSubscription> sub_;
  std::string what_;
  std::uint64_t dropped_ = 0;
};

/// A JetStream key-value bucket. Revisions make compare-and-set possible: create() succeeds for
/// one writer only (a stream's claim), update() only over the revision the writer last read.
class KeyValue {
 public:
  struct Entry {
    std::vector<std::uint8_t> value;
    std::uint64_t revision = 0;
  };
  KeyValue(__kvStore* kv, std::string bucket) : kv_(kv), bucket_(std::move(bucket)) {}
  KeyValue(KeyValue&& other) noexcept;
  KeyValue(const KeyValue&) = delete;
  KeyValue& operator=(const KeyValue&) = delete;
  KeyValue& operator=(KeyValue&&) = delete;
  ~KeyValue();

  std::optional<Entry> get(const std::string& key);
  std::uint64_t put(const std::string& key, const std::vector<std::uint8_t>& value);
  /// nullopt when the key already exists (with another value: a write of this very value whose
  /// acknowledgement was lost counts as this writer's).
  std::optional<std::uint64_t> create(const std::string& key,
                                      const std::vector<std::uint8_t>& value);
  /// nullopt when the key's revision is no longer `last` (someone else wrote it).
  std::optional<std::uint64_t> update(const std::string& key,
                                      const std::vector<std::uint8_t>& value, std::uint64_t last);
  void erase(const std::string& key);

 private:
  __kvStore* kv_ = nullptr;
  std::string bucket_;
};

class NatsLink {
 public:
  explicit NatsLink(const LinkOptions& options);
  ~NatsLink();
  NatsLink(const NatsLink&) = delete;
  NatsLink& operator=(const NatsLink&) = delete;

  /// The server's URL as given, without any user:password@ (what error messages show).
  const std::string& url() const { return url_; }

  void publish(const std::string& subject, const std::vector<std::uint8_t>& data);
  /// Request/reply: the reply's bytes; throws Error{io} on timeout or when nobody listens (the
  /// probing request below with no probe).
  Received request(const std::string& subject, const std::vector<std::uint8_t>& data,
                   std::chrono::milliseconds timeout);
  /// Request/reply to a receiver that may be slow: every `probe_every` without a reply,
  /// `still_there()` is asked (a cheap liveness probe, e.g. ping() of the receiver's own
  /// subject); false gives up at once (throws Error{io}, "... gave up: the receiver is gone"),
  /// true waits on, up to `timeout` in all (then throws as request() does). A receiver killed
  /// in the middle of a request is noticed within about `probe_every`, a busy one is not given up.
  Received request(const std::string& subject, const std::vector<std::uint8_t>& data,
                   std::chrono::milliseconds timeout, std::chrono::milliseconds probe_every,
                   const std::function<bool()>& still_there);
  /// Whether anybody listens on `subject`: answered (a reply within `timeout`), busy (a
  /// subscriber that did not answer in time) or gone (nobody subscribes: NATS says so at once).
  enum class Presence { answered, busy, gone };
  Presence ping(const std::string& subject, std::chrono::milliseconds timeout);
  /// The largest message the server accepts (its max_payload).
  std::size_t max_payload() const;
  Subscription subscribe(const std::string& subject, const std::string& queue_group = "");
  void flush();

  /// JetStream: creates the stream `name` over `subjects` unless it exists (file storage). An
  /// existing stream of that name is used as it is (its subjects are not compared).
  void ensure_stream(const std::string& name, const std::vector<std::string>& subjects);
  /// JetStream publish; returns the stream sequence. Throws when no stream takes the subject.
  std::uint64_t js_publish(const std::string& subject, const std::vector<std::uint8_t>& data);
  /// A durable pull consumer `durable` on `subject` (created if absent; it resumes where an
  /// earlier one with the same name stopped). Unacknowledged messages are delivered again
  /// after `ack_wait`.
  Subscription pull_subscribe(const std::string& subject, const std::string& durable,
                              std::chrono::milliseconds ack_wait);
  /// The key-value bucket `bucket`, created if absent.
  KeyValue key_value(const std::string& bucket);

 private:
  [[noreturn]] void fail(int status, const std::string& what) const;
  __jsCtx* js();  // the JetStream context, made once (thread-safe)
  __natsConnection* nc_ = nullptr;
  __jsCtx* js_ = nullptr;
  std::mutex js_mutex_;
  std::string url_;
  std::unique_ptr<std::string> seed_;  // an nkey seed, for libnats's signing callback
};

}  // namespace oneadapt::net
