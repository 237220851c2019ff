#include "net/nats_link.hpp"

#include <nats/nats.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <mutex>
#include <oneadapt/error.hpp>
#include <optional>
#include <sstream>

namespace oneadapt::net {
namespace {

std::string status_text(natsStatus s) {
  // nats_GetLastError has the server's words (e.g. "Authorization Violation"); the status text
  // is the fallback.
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  std::string text = natsStatus_GetText(s);
  if (detail != nullptr && *detail != '\0' && last == s) text = detail;
  return text;
}

void check(natsStatus s, const std::string& what) {
  if (s != NATS_OK) throw Error(Errc::io, what + ": " + status_text(s));
}

// The URL without user:password@ (error messages never show a password).
std::string redacted(const std::string& url) {
  const auto scheme = url.find("://");
  const auto from = scheme == std::string::npos ? 0 : scheme + 3;
  const auto at = url.find('@', from);
  if (at == std::string::npos) return url;
  return url.substr(0, from) + url.substr(at + 1);
}

std::int64_t ms(std::chrono::milliseconds d) { return static_cast<std::int64_t>(d.count()); }

int checked_len(std::size_t size, const std::string& what) {
  if (size > static_cast<std::size_t>(INT32_MAX))
    throw Error(Errc::invalid_argument, what + ": message of " + std::to_string(size) +
                                            " bytes is too large for NATS");
  return static_cast<int>(size);
}

// NATS's key encoding (github.com/nats-io/nkeys, described in the NATS docs): base32 (RFC 4648
// alphabet, no padding) of prefix bytes, the 32 key bytes and a CRC-16/XMODEM little-endian.
constexpr std::uint8_t kPrefixSeed = 18 << 3;  // 'S'
constexpr std::uint8_t kPrefixUser = 20 << 3;  // 'U'
const char* const kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

std::uint16_t crc16(const std::vector<std::uint8_t>& bytes) {
  std::uint16_t crc = 0;
  for (std::uint8_t b : bytes) {
    crc ^= static_cast<std::uint16_t>(b) << 8;
    for (int i = 0; i < 8; ++i)
      crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<std::uint16_t>(crc << 1);
  }
  return crc;
}

std::string base32(const std::vector<std::uint8_t>& bytes) {
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (std::uint8_t b : bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += kBase32[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += kBase32[(buffer << (5 - bits)) & 31];
  return out;
}

std::optional<std::vector<std::uint8_t>> unbase32(const std::string& text) {
  std::vector<std::uint8_t> out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    const char* at = std::strchr(kBase32, c);
    if (c == '\0' || at == nullptr) return std::nullopt;
    buffer = (buffer << 5) | static_cast<unsigned>(at - kBase32);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<std::uint8_t>((buffer >> (bits - 8)) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

std::string with_checksum(std::vector<std::uint8_t> raw) {
  const std::uint16_t crc = crc16(raw);
  raw.push_back(static_cast<std::uint8_t>(crc & 0xff));
  raw.push_back(static_cast<std::uint8_t>(crc >> 8));
  return base32(raw);
}

// The 32 raw bytes of a user's seed, or why not.
std::array<std::uint8_t, 32> seed_bytes(const std::string& seed) {
  auto bad = [](const std::string& why) {
    return Error(Errc::invalid_argument, "not a user's nkey seed: " + why);
  };
  if (seed.size() != 58) throw bad("58 characters expected, not " + std::to_string(seed.size()));
  const auto raw = unbase32(seed);
  if (!raw || raw->size() != 36) throw bad("not base32 (A-Z, 2-7)");
  const std::vector<std::uint8_t> body(raw->begin(), raw->begin() + 34);
  const std::uint16_t crc = static_cast<std::uint16_t>((*raw)[34] | ((*raw)[35] << 8));
  if (crc16(body) != crc) throw bad("its checksum does not match (a typo?)");
  if (((*raw)[0] & 0xf8) != kPrefixSeed) throw bad("it does not start with 'S'");
  const std::uint8_t kind =
      static_cast<std::uint8_t>((((*raw)[0] & 7) << 5) | (((*raw)[1] & 0xf8) >> 3));
  if (kind != kPrefixUser) throw bad("the seed of another kind of key than a user's (SU...)");
  std::array<std::uint8_t, 32> out{};
  std::copy(raw->begin() + 2, raw->begin() + 34, out.begin());
  return out;
}

// Signs the server's nonce with the seed (libnats's own Ed25519).
natsStatus sign_nonce(char** error, unsigned char** signature, int* length, const char* nonce,
                      void* closure) {
  const auto* seed = static_cast<const std::string*>(closure);
  const natsStatus s = nats_Sign(seed->c_str(), nonce, signature, length);
  if (s != NATS_OK && error != nullptr) *error = strdup("signing the nonce with the nkey failed");
  return s;
}

}  // namespace

std::string nkey_public_key(const std::string& seed) {
  const std::array<std::uint8_t, 32> raw = seed_bytes(seed);
  EVP_PKEY* key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size());
  if (key == nullptr) throw Error(Errc::internal, "OpenSSL could not make an Ed25519 key");
  std::vector<std::uint8_t> pub(1 + 32);
  std::size_t len = 32;
  const int ok = EVP_PKEY_get_raw_public_key(key, pub.data() + 1, &len);
  EVP_PKEY_free(key);
  if (ok != 1 || len != 32) throw Error(Errc::internal, "OpenSSL could not derive the public key");
  pub[0] = kPrefixUser;
  return with_checksum(pub);
}

std::string nkey_user_seed(const std::array<std::uint8_t, 32>& raw) {
  std::vector<std::uint8_t> bytes{static_cast<std::uint8_t>(kPrefixSeed | (kPrefixUser >> 5)),
                                  static_cast<std::uint8_t>((kPrefixUser & 31) << 3)};
  bytes.insert(bytes.end(), raw.begin(), raw.end());
  return with_checksum(bytes);
}

Credentials read_auth_file(const std::filesystem::path& file) {
  namespace fs = std::filesystem;
  const std::string name = file.string();
  const std::string form = " (it holds one line user:password, or a user's nkey seed SU...)";
  std::error_code ec;
  const fs::file_status st = fs::status(file, ec);
  if (ec && st.type() != fs::file_type::not_found)
    throw Error(Errc::io, name + ": cannot read the auth file: " + ec.message());
  if (!fs::is_regular_file(st)) throw Error(Errc::not_found, name + ": no such auth file");
  if ((st.permissions() & (fs::perms::group_all | fs::perms::others_all)) != fs::perms::none)
    throw Error(Errc::invalid_argument,
                name + ": the auth file is readable by group or others (chmod 600 it)");
  const auto size = fs::file_size(file, ec);
  if (ec) throw Error(Errc::io, name + ": cannot read the auth file: " + ec.message());
  if (size > 4096)
    throw Error(Errc::invalid_argument, name + ": the auth file is over 4096 bytes" + form);
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(Errc::io, name + ": cannot read the auth file");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a UTF-8 BOM
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) throw Error(Errc::invalid_argument, name + ": the auth file is empty" + form);
  if (text.find_first_of("\r\n") != std::string::npos)
    throw Error(Errc::invalid_argument, name + ": the auth file has more than one line" + form);
  if (text.find('\0') != std::string::npos)
    throw Error(Errc::invalid_argument, name + ": the auth file holds a NUL byte" + form);
  const auto colon = text.find(':');
  if (colon == std::string::npos && text.rfind("S", 0) == 0) {
    Credentials c;
    try {
      c.nkey = nkey_public_key(text);
    } catch (const Error& e) {
      throw Error(Errc::invalid_argument, name + ": " + e.what());
    }
    c.nkey_seed = text;
    return c;
  }
  if (colon == std::string::npos)
    throw Error(Errc::invalid_argument,
                name + ": no ':' in the auth file's line (expected user:password or an nkey "
                       "seed SU...)");
  Credentials c{text.substr(0, colon), text.substr(colon + 1)};
  if (c.user.empty()) throw Error(Errc::invalid_argument, name + ": the user before ':' is empty");
  if (c.password.empty())
    throw Error(Errc::invalid_argument, name + ": the password after ':' is empty");
  return c;
}

// --- Received ------------------------------------------------------------------------------

Received& Received::operator=(Received&& other) noexcept {
  if (this != &other) {
    if (msg_ != nullptr) natsMsg_Destroy(msg_);
    msg_ = other.msg_;
    other.msg_ = nullptr;
  }
  return *this;
}
Received::~Received() {
  if (msg_ != nullptr) natsMsg_Destroy(msg_);
}
const std::uint8_t* Received::data() const {
  return msg_ ? reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(msg_)) : nullptr;
}
std::size_t Received::size() const {
  return msg_ ? static_cast<std::size_t>(natsMsg_GetDataLength(msg_)) : 0;
}
std::string Received::subject() const {
  const char* s = msg_ ? natsMsg_GetSubject(msg_) : nullptr;
  return s ? s : "";
}
std::string Received::reply() const {
  const char* s = msg_ ? natsMsg_GetReply(msg_) : nullptr;
  return s ? s : "";
}
void Received::ack() {
  if (msg_ != nullptr) check(natsMsg_Ack(msg_, nullptr), "nats: acknowledging " + subject());
}
void Received::nak() {
  if (msg_ != nullptr) check(natsMsg_Nak(msg_, nullptr), "nats: negative ack on " + subject());
}

// --- Subscription --------------------------------------------------------------------------

Subscription::Subscription(__natsSubscription* sub, std::string what)
    : sub_(sub, [](natsSubscription* p) { natsSubscription_Destroy(p); }), what_(std::move(what)) {}

std::optional<Received> Subscription::next(std::chrono::milliseconds timeout) {
  for (;;) {
    natsMsg* msg = nullptr;
    const natsStatus s = natsSubscription_NextMsg(&msg, sub_.get(), ms(timeout));
    if (s == NATS_TIMEOUT) return std::nullopt;
    if (s == NATS_SLOW_CONSUMER) {  // the library dropped messages: said once, then go on
      ++dropped_;
      continue;
    }
    check(s, what_);
    return Received(msg, sub_);
  }
}

std::vector<Received> Subscription::fetch(int batch, std::chrono::milliseconds timeout) {
  natsMsgList list{nullptr, 0};
  const natsStatus s = natsSubscription_Fetch(&list, sub_.get(), batch,
                                              std::max<std::int64_t>(1, ms(timeout)), nullptr);
  if (s == NATS_TIMEOUT) return {};
  check(s, what_);
  std::unique_ptr<natsMsgList, void (*)(natsMsgList*)> guard(&list, natsMsgList_Destroy);
  std::vector<Received> out;
  out.reserve(static_cast<std::size_t>(list.Count));
  for (int i = 0; i < list.Count; ++i) {
    out.emplace_back(list.Msgs[i], sub_);
    list.Msgs[i] = nullptr;  // owned by `out` now
  }
  return out;
}

// --- KeyValue ------------------------------------------------------------------------------

KeyValue::KeyValue(KeyValue&& other) noexcept : kv_(other.kv_), bucket_(std::move(other.bucket_)) {
  other.kv_ = nullptr;
}
KeyValue::~KeyValue() {
  if (kv_ != nullptr) kvStore_Destroy(kv_);
}

std::optional<KeyValue::Entry> KeyValue::get(const std::string& key) {
  kvEntry* e = nullptr;
  const natsStatus s = kvStore_Get(&e, kv_, key.c_str());
  if (s == NATS_NOT_FOUND) return std::nullopt;
  check(s, "nats: reading " + bucket_ + "/" + key);
  Entry entry;
  const auto* p = static_cast<const std::uint8_t*>(kvEntry_Value(e));
  entry.value.assign(p, p + kvEntry_ValueLen(e));
  entry.revision = kvEntry_Revision(e);
  kvEntry_Destroy(e);
  return entry;
}

std::uint64_t KeyValue::put(const std::string& key, const std::vector<std::uint8_t>& value) {
  std::uint64_t rev = 0;
  check(kvStore_Put(&rev, kv_, key.c_str(), value.data(), checked_len(value.size(), key)),
        "nats: writing " + bucket_ + "/" + key);
  return rev;
}

std::optional<std::uint64_t> KeyValue::create(const std::string& key,
                                              const std::vector<std::uint8_t>& value) {
  std::uint64_t rev = 0;
  const natsStatus s =
      kvStore_Create(&rev, kv_, key.c_str(), value.data(), checked_len(value.size(), key));
  if (s == NATS_OK) return rev;
  // The server refuses a create over an existing key; anything else is a real failure.
  const std::string text = status_text(s);
  if (auto now = get(key)) {
    if (now->value == value) return now->revision;  // ours: its acknowledgement was lost
    return std::nullopt;
  }
  throw Error(Errc::io, "nats: creating " + bucket_ + "/" + key + ": " + text);
}

std::optional<std::uint64_t> KeyValue::update(const std::string& key,
                                              const std::vector<std::uint8_t>& value,
                                              std::uint64_t last) {
  std::uint64_t rev = 0;
  const natsStatus s = kvStore_Update(&rev, kv_, key.c_str(), value.data(),
                                      checked_len(value.size(), key), last);
  if (s == NATS_OK) return rev;
  const std::string text = status_text(s);
  auto now = get(key);
  if (now && now->revision != last && now->value == value) return now->revision;  // ours
  if (!now || now->revision != last) return std::nullopt;
  throw Error(Errc::io, "nats: updating " + bucket_ + "/" + key + ": " + text);
}

void KeyValue::erase(const std::string& key) {
  check(kvStore_Delete(kv_, key.c_str()), "nats: deleting " + bucket_ + "/" + key);
}

// --- NatsLink ------------------------------------------------------------------------------

jsCtx* NatsLink::js() {
  std::lock_guard<std::mutex> lock(js_mutex_);
  if (js_ == nullptr) {
    const natsStatus s = natsConnection_JetStream(&js_, nc_, nullptr);
    if (s != NATS_OK) fail(s, "JetStream");
  }
  return js_;
}

void NatsLink::fail(int status, const std::string& what) const {
  throw Error(Errc::io, url_ + ": " + what + ": " + status_text(static_cast<natsStatus>(status)));
}

NatsLink::NatsLink(const LinkOptions& options) : url_(redacted(options.url)) {
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, options.url.c_str());
  if (s == NATS_OK) s = natsOptions_SetName(opts, options.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, ms(options.connect_timeout));
  if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, options.reconnect);
  // The seed lives as long as the connection: libnats signs each (re)connection's nonce.
  if (options.credentials && !options.credentials->nkey_seed.empty()) {
    seed_ = std::make_unique<std::string>(options.credentials->nkey_seed);
    if (s == NATS_OK)
      s = natsOptions_SetNKey(opts, options.credentials->nkey.c_str(), sign_nonce, seed_.get());
  } else if (s == NATS_OK && options.credentials) {
    s = natsOptions_SetUserInfo(opts, options.credentials->user.c_str(),
                                options.credentials->password.c_str());
  }
  if (s != NATS_OK) {
    natsOptions_Destroy(opts);
    fail(s, "bad connection options");
  }
  s = natsConnection_Connect(&nc_, opts);
  natsOptions_Destroy(opts);
  if (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED)
    throw Error(Errc::io, url_ + ": the server refused the credentials (" +
                              (!options.credentials ? std::string("none given: pass --auth FILE")
                               : options.credentials->nkey.empty()
                                   ? "user '" + options.credentials->user + "'"
                                   : "nkey " + options.credentials->nkey) +
                              "): " + status_text(s));
  if (s == NATS_NO_SERVER)
    throw Error(Errc::io, url_ + ": no NATS server answers there (is nats-server running?)");
  if (s != NATS_OK) fail(s, "cannot connect");
}

NatsLink::~NatsLink() {
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (nc_ != nullptr) {
    natsConnection_Close(nc_);
    natsConnection_Destroy(nc_);
  }
}

void NatsLink::publish(const std::string& subject, const std::vector<std::uint8_t>& data) {
  const natsStatus s = natsConnection_Publish(nc_, subject.c_str(), data.data(),
                                              checked_len(data.size(), subject));
  if (s != NATS_OK) fail(s, "publishing on " + subject);
}

Received NatsLink::request(const std::string& subject, const std::vector<std::uint8_t>& data,
                           std::chrono::milliseconds timeout) {
  return request(subject, data, timeout, timeout, [] { return true; });
}

Received NatsLink::request(const std::string& subject, const std::vector<std::uint8_t>& data,
                           std::chrono::milliseconds timeout, std::chrono::milliseconds probe_every,
                           const std::function<bool()>& still_there) {
  // natsConnection_Request forgets its inbox at the timeout; waiting in steps needs an inbox of
  // its own, subscribed before the request is published (one connection keeps the order).
  natsInbox* inbox_raw = nullptr;
  check(natsInbox_Create(&inbox_raw), "nats: an inbox for a request on " + subject);
  std::unique_ptr<natsInbox, void (*)(natsInbox*)> inbox(inbox_raw, natsInbox_Destroy);
  natsSubscription* sub_raw = nullptr;
  check(natsConnection_SubscribeSync(&sub_raw, nc_, inbox.get()),
        url_ + ": subscribing for a reply on " + subject);
  std::unique_ptr<natsSubscription, void (*)(natsSubscription*)> sub(
      sub_raw, [](natsSubscription* p) {
        natsSubscription_Unsubscribe(p);
        natsSubscription_Destroy(p);
      });
  const natsStatus p = natsConnection_PublishRequest(nc_, subject.c_str(), inbox.get(),
                                                     data.data(), checked_len(data.size(), subject));
  if (p != NATS_OK) fail(p, "request on " + subject);
  const auto t0 = std::chrono::steady_clock::now();
  auto waited = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0);
  };
  const auto step = std::max(probe_every, std::chrono::milliseconds(1));
  for (;;) {
    const auto left = timeout - waited();
    if (left.count() <= 0)
      throw Error(Errc::io, url_ + ": no reply on " + subject + " within " +
                                std::to_string(timeout.count()) + " ms");
    natsMsg* reply = nullptr;
    const natsStatus s = natsSubscription_NextMsg(&reply, sub.get(), ms(std::min(step, left)));
    // libnats says "no responders" as a status, or (older) as a message with status 503.
    const bool nobody = s == NATS_NO_RESPONDERS || (s == NATS_OK && natsMsg_IsNoResponders(reply));
    if (nobody && reply != nullptr) natsMsg_Destroy(reply);
    if (nobody)
      throw Error(Errc::io, url_ + ": nobody serves " + subject + " (no server running?)");
    if (s == NATS_OK) return Received(reply, nullptr);
    if (s != NATS_TIMEOUT) fail(s, "request on " + subject);
    if (waited() < timeout && !still_there())
      throw Error(Errc::io, url_ + ": no reply on " + subject + " after " +
                                std::to_string(waited().count()) +
                                " ms, and gave up: the receiver is gone");
  }
}

NatsLink::Presence NatsLink::ping(const std::string& subject, std::chrono::milliseconds timeout) {
  natsMsg* reply = nullptr;
  const std::uint8_t none = 0;
  const natsStatus s = natsConnection_Request(&reply, nc_, subject.c_str(), &none, 0, ms(timeout));
  if (reply != nullptr) natsMsg_Destroy(reply);
  if (s == NATS_OK) return Presence::answered;
  if (s == NATS_NO_RESPONDERS) return Presence::gone;
  if (s == NATS_TIMEOUT) return Presence::busy;
  fail(s, "request on " + subject);
}

std::size_t NatsLink::max_payload() const {
  const int64_t n = natsConnection_GetMaxPayload(nc_);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

Subscription NatsLink::subscribe(const std::string& subject, const std::string& queue_group) {
  natsSubscription* sub = nullptr;
  const natsStatus s =
      queue_group.empty()
          ? natsConnection_SubscribeSync(&sub, nc_, subject.c_str())
          : natsConnection_QueueSubscribeSync(&sub, nc_, subject.c_str(), queue_group.c_str());
  if (s != NATS_OK) fail(s, "subscribing to " + subject);
  return Subscription(sub, url_ + ": receiving on " + subject);
}

void NatsLink::flush() {
  const natsStatus s = natsConnection_Flush(nc_);
  if (s != NATS_OK) fail(s, "flush");
}

void NatsLink::ensure_stream(const std::string& name, const std::vector<std::string>& subjects) {
  std::vector<const char*> subj;
  for (const auto& s : subjects) subj.push_back(s.c_str());
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name.c_str();
  cfg.Subjects = subj.data();
  cfg.SubjectsLen = static_cast<int>(subj.size());
  cfg.Storage = js_FileStorage;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_AddStream(&si, js(), &cfg, nullptr, &jerr);
  if (si != nullptr) jsStreamInfo_Destroy(si);
  if (s == NATS_OK || jerr == JSStreamNameExistErr) return;
  if (jerr == JSNotEnabledErr || jerr == JSNotEnabledForAccountErr)
    throw Error(Errc::io, url_ + ": JetStream is not enabled on this server (start nats-server with -js)");
  fail(s, "creating the JetStream stream " + name);
}

std::uint64_t NatsLink::js_publish(const std::string& subject,
                                   const std::vector<std::uint8_t>& data) {
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_Publish(&ack, js(), subject.c_str(), data.data(),
                                  checked_len(data.size(), subject), nullptr, &jerr);
  if (s != NATS_OK) {
    if (s == NATS_NO_RESPONDERS)
      throw Error(Errc::io, url_ + ": no JetStream stream takes " + subject);
    fail(s, "JetStream publish on " + subject);
  }
  const std::uint64_t seq = ack->Sequence;
  jsPubAck_Destroy(ack);
  return seq;
}

Subscription NatsLink::pull_subscribe(const std::string& subject, const std::string& durable,
                                      std::chrono::milliseconds ack_wait) {
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Config.AckWait = static_cast<std::int64_t>(ack_wait.count()) * 1000000;  // ns
  so.Config.AckPolicy = js_AckExplicit;
  natsSubscription* sub = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s =
      js_PullSubscribe(&sub, js(), subject.c_str(), durable.c_str(), nullptr, &so, &jerr);
  if (s != NATS_OK) fail(s, "pull consumer " + durable + " on " + subject);
  return Subscription(sub, url_ + ": fetching " + subject + " (" + durable + ")");
}

KeyValue NatsLink::key_value(const std::string& bucket) {
  kvStore* kv = nullptr;
  natsStatus s = js_KeyValue(&kv, js(), bucket.c_str());
  if (s == NATS_NOT_FOUND) {
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = bucket.c_str();
    cfg.History = 1;
    cfg.StorageType = js_FileStorage;
    s = js_CreateKeyValue(&kv, js(), &cfg);
  }
  if (s != NATS_OK) fail(s, "key-value bucket " + bucket);
  return KeyValue(kv, bucket);
}

}  // namespace oneadapt::net
