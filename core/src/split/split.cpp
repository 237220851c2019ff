#include "split/split.hpp"

#include <ATen/ATen.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <ostream>
#include <numeric>
#include <set>
#include <thread>

#include "adapt/harness.hpp"
#include "assets.hpp"
#include "engine/engine.hpp"
#include "net/wire.hpp"
#include "run_config.hpp"

namespace oneadapt::split {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// Tokens a source keeps (one per server that took its stream) and a hello may carry.
constexpr std::size_t kMaxHeldTokens = 16;
// While a call waits for its answer, the server's alive subject is probed this often (a killed
// server is noticed this late at most), each probe waiting this long for a reply (a busy
// server does not reply; a gone one is known at once: NATS has no subscriber for it).
constexpr std::chrono::milliseconds kProbeEvery{1000};
constexpr std::chrono::milliseconds kProbeWait{250};

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// A non-negative integer of at most `max` from a client's JSON (never a wrapped negative, never
// an out-of-range double).
template <class T>
T uint_of(const json& j, std::uint64_t max, const char* what) {
  if (!j.is_number_integer() || (!j.is_number_unsigned() && j.get<std::int64_t>() < 0))
    throw Error(Errc::invalid_argument, std::string(what) + " must be a non-negative integer");
  const auto v = j.get<std::uint64_t>();
  if (v > max)
    throw Error(Errc::invalid_argument, std::string(what) + " is over " + std::to_string(max));
  return static_cast<T>(v);
}

double finite_of(const json& j, const char* what) {
  if (!j.is_number()) throw Error(Errc::invalid_argument, std::string(what) + " must be a number");
  const double v = j.get<double>();
  if (!std::isfinite(v)) throw Error(Errc::invalid_argument, std::string(what) + " must be finite");
  return v;
}

json settings_json(const host::ComponentSettings& s) {
  return json{{"params", s.params}, {"ladders", s.ladders}};
}

host::ComponentSettings settings_from(const json& j, const char* what) {
  host::ComponentSettings s;
  if (!j.is_object())
    throw Error(Errc::invalid_argument, std::string("hello: ") + what + " is not an object");
  if (j.contains("params")) s.params = j.at("params").get<std::map<std::string, std::string>>();
  if (j.contains("ladders"))
    s.ladders = j.at("ladders").get<std::map<std::string, std::vector<std::string>>>();
  return s;
}

json config_json(const Configuration& c) {
  json a = json::array();
  for (const auto& s : c.settings())
    a.push_back(json::array({s.key, s.index, s.value.number, s.value.label}));
  return a;
}

Configuration config_from(const json& j) {
  std::vector<KnobSetting> settings;
  for (const auto& e : j) {
    KnobSetting s;
    s.key = e.at(0).get<std::string>();
    s.index = uint_of<std::size_t>(e.at(1), 1u << 20, "a knob's index");
    s.value.number = finite_of(e.at(2), "a knob's value");
    s.value.label = e.at(3).get<std::string>();
    settings.push_back(std::move(s));
  }
  return Configuration(std::move(settings));
}

json info_json(const IntervalInfo& i) {
  return json{
      {"index", i.index}, {"t_start", i.t_start}, {"duration", i.duration}, {"samples", i.samples}};
}

IntervalInfo info_from(const json& j) {
  IntervalInfo i;
  i.index = uint_of<std::size_t>(j.at("index"), std::uint64_t{1} << 40, "info.index");
  i.t_start = finite_of(j.at("t_start"), "info.t_start");
  i.duration = finite_of(j.at("duration"), "info.duration");
  i.samples = uint_of<std::size_t>(j.at("samples"), 100000, "info.samples");
  if (i.samples == 0) throw Error(Errc::invalid_argument, "info.samples must be at least 1");
  return i;
}

// A float tensor as its raw little-endian bytes (the shape goes in the meta): exact.
std::vector<std::uint8_t> tensor_bytes(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kFloat).contiguous();
  std::vector<std::uint8_t> out(static_cast<std::size_t>(c.numel()) * sizeof(float));
  if (!out.empty()) std::memcpy(out.data(), c.data_ptr<float>(), out.size());
  return out;
}

at::Tensor tensor_from(const std::vector<std::uint8_t>& bytes, const std::vector<int64_t>& shape) {
  std::uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || d > (int64_t{1} << 31)) throw Error(Errc::corrupt_data, "a bad tensor shape");
    n *= static_cast<std::uint64_t>(d);
    if (n > (std::uint64_t{1} << 28)) throw Error(Errc::corrupt_data, "a tensor over 2^28 values");
  }
  if (static_cast<std::size_t>(n) * sizeof(float) != bytes.size())
    throw Error(Errc::corrupt_data,
                "a tensor of " + std::to_string(bytes.size()) + " bytes does not fill its shape");
  at::Tensor t = at::empty(shape, at::kFloat);
  if (!bytes.empty()) std::memcpy(t.data_ptr<float>(), bytes.data(), bytes.size());
  return t;
}

std::vector<std::uint8_t> deflate(const std::vector<std::uint8_t>& raw) {
  uLongf n = compressBound(static_cast<uLong>(raw.size()));
  std::vector<std::uint8_t> out(n);
  if (compress2(out.data(), &n, raw.data(), static_cast<uLong>(raw.size()), 6) != Z_OK)
    throw Error(Errc::internal, "zlib could not deflate " + std::to_string(raw.size()) + " bytes");
  out.resize(n);
  return out;
}

// The float tensor of `shape` deflated in `packed`: never more than the shape's bytes.
std::vector<std::uint8_t> inflate(const std::vector<std::uint8_t>& packed,
                                  const std::vector<int64_t>& shape) {
  std::uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || d > (int64_t{1} << 31)) throw Error(Errc::corrupt_data, "a bad tensor shape");
    n *= static_cast<std::uint64_t>(d);
    if (n > (std::uint64_t{1} << 28)) throw Error(Errc::corrupt_data, "a tensor over 2^28 values");
  }
  std::vector<std::uint8_t> out(n * sizeof(float));
  uLongf len = static_cast<uLongf>(out.size());
  if (uncompress(out.data(), &len, packed.data(), static_cast<uLong>(packed.size())) != Z_OK ||
      len != out.size())
    throw Error(Errc::corrupt_data, "the server's saliency does not inflate to its shape");
  return out;
}

// A result decoded on the server: the source holds its handle.
class RemoteResult final : public TaskResult {
 public:
  explicit RemoteResult(std::uint64_t id) : id_(id) {}
  std::string summary() const override {
    return "result #" + std::to_string(id_) + " (on the server)";
  }
  std::uint64_t id() const { return id_; }

 private:
  std::uint64_t id_;
};

std::uint64_t id_of(const TaskResult& r) {
  const auto* rr = dynamic_cast<const RemoteResult*>(&r);
  if (!rr) throw Error(Errc::internal, "a result that did not come from the server");
  return rr->id();
}

json ids_of(const std::vector<ResultPtr>& v) {
  json a = json::array();
  for (const auto& r : v) a.push_back(id_of(*r));
  return a;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

// One line of at most 1,000 printable ASCII characters: an error may quote what a client sent.
std::string printable(const std::string& text) {
  std::string out = one_line(text.size() > 1000 ? text.substr(0, 1000) + "..." : text);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  return out;
}

// A server's error code (anything out of range is io) and a string field ("" when absent or
// not a string).
Errc code_of(const json& meta) {
  const json& c = meta.contains("code") ? meta.at("code") : json();
  const int v = c.is_number_integer() ? c.get<int>() : 0;
  return v >= 1 && v <= static_cast<int>(Errc::interrupted) ? static_cast<Errc>(v) : Errc::io;
}

std::string text_of(const json& meta, const char* key) {
  return meta.contains(key) && meta.at(key).is_string() ? meta.at(key).get<std::string>() : "";
}

std::vector<std::uint8_t> error_reply(const std::string& text, Errc code) {
  net::Message m;
  m.kind = net::Kind::reply;
  m.meta = json{{"error", printable(text)}, {"code", static_cast<int>(code)}};
  return net::encode(m);
}

// 128 random bits in hex: the capability a stream's source holds (welcome) and every call of
// that stream carries; compared in constant time.
std::string new_token() {
  std::random_device rd;
  char buf[33];
  std::snprintf(buf, sizeof buf, "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  return buf;
}

bool same_token(const std::string& a, const std::string& b) {
  if (a.size() != b.size() || a.empty()) return false;
  unsigned char d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

// The hello's token or one of its "tokens" (those a source got from each server that took its
// stream) is the stream's here.
bool hello_holds_token(const json& meta, const std::string& token) {
  if (same_token(meta.value("token", std::string()), token)) return true;
  const auto it = meta.find("tokens");
  if (it == meta.end() || !it->is_array() || it->size() > kMaxHeldTokens) return false;
  return std::any_of(it->begin(), it->end(), [&](const json& t) {
    return t.is_string() && same_token(t.get<std::string>(), token);
  });
}

}  // namespace

std::string host_token(const std::string& prefix) {
  char host[64] = {0};
  ::gethostname(host, sizeof host - 1);
  std::string id = prefix + "-" + host + "-" + std::to_string(::getpid());
  for (char& c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) c = '-';
  return id.substr(0, 64);
}

// --- StreamHello, CallStats ---------------------------------------------------------------------

json StreamHello::to_json() const {
  return json{{"stream", stream},
              {"modality", modality},
              {"modality_settings", settings_json(modality_settings)},
              {"format", format},
              {"task", task},
              {"task_settings", settings_json(task_settings)},
              {"models", models}};
}

StreamHello StreamHello::from_json(const json& j) {
  try {
    StreamHello h;
    h.stream = j.at("stream").get<std::string>();
    h.modality = j.at("modality").get<std::string>();
    h.modality_settings = settings_from(j.at("modality_settings"), "modality_settings");
    h.format = j.at("format").get<std::map<std::string, std::string>>();
    h.task = j.at("task").get<std::string>();
    h.task_settings = settings_from(j.at("task_settings"), "task_settings");
    h.models = j.at("models").get<std::map<std::string, std::string>>();
    if (!net::valid_stream_id(h.stream))
      throw Error(Errc::invalid_argument,
                  "hello: stream id '" + h.stream + "' is not 1-64 of [A-Za-z0-9_-]");
    return h;
  } catch (const json::exception& e) {
    throw Error(Errc::invalid_argument, std::string("hello: ") + e.what());
  }
}

json CallStats::to_json() const {
  json j = json::object();
  for (const auto& [op, o] : ops)
    j[op] = {{"calls", o.calls},
             {"bytes_sent", o.bytes_sent},
             {"bytes_received", o.bytes_received},
             {"round_trip_ms_median", quantile(o.round_trip_ms, 0.5)},
             {"round_trip_ms_p90", quantile(o.round_trip_ms, 0.9)},
             {"server_ms_median", quantile(o.server_ms, 0.5)},
             {"server_ms_total", std::accumulate(o.server_ms.begin(), o.server_ms.end(), 0.0)}};
  return j;
}

// --- RemoteInference ----------------------------------------------------------------------------

namespace {
// A request that reached no server (nobody listens on the subject, or no answer in time): the
// stream fails over to another server. An error the server reports is not one of these.
struct Unreachable : Error {
  using Error::Error;
};
}  // namespace

RemoteInference::RemoteInference(net::NatsLink& link, StreamHello hello,
                                 std::chrono::milliseconds timeout)
    : link_(link), hello_(std::move(hello)), timeout_(timeout) {
  // A server that is starting (or a NATS that has not yet seen its subscription) is waited for
  // up to the timeout.
  const auto t0 = Clock::now();
  for (;;) {
    try {
      this->hello();
      return;
    } catch (const Unreachable& e) {
      if (Clock::now() - t0 > timeout_) throw Error(Errc::io, e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
}

void RemoteInference::hello() {
  net::Message m;
  m.kind = net::Kind::hello;
  m.meta = hello_.to_json();
  if (!token_.empty()) m.meta["token"] = token_;  // a server that still has it gives it back
  if (!held_.empty()) {
    // Also the tokens of servers held before: the queue group may hand this hello to any.
    auto& all = m.meta["tokens"] = json::array();
    for (const auto& [server, token] : held_) all.push_back(token);
  }
  const auto bytes = net::encode(m);
  net::Received r = [&] {
    try {
      return link_.request(kHelloSubject, bytes, timeout_);
    } catch (const Error& e) {
      throw Unreachable(Errc::io, link_.url() + ": no server took stream '" + hello_.stream +
                                      "' (is `oneadapt serve` running there?): " + e.what());
    }
  }();
  auto d = net::decode(r.data(), r.size());
  if (auto* rej = std::get_if<net::Rejection>(&d))
    throw Error(Errc::io, link_.url() + ": the answer to hello is not a message: " + rej->text);
  const net::Message& w = std::get<net::Message>(d);
  if (w.meta.contains("error"))
    throw Error(code_of(w.meta), link_.url() + ": the server refused stream '" + hello_.stream +
                                     "': " + printable(text_of(w.meta, "error")));
  const std::string server = text_of(w.meta, "server"), token = text_of(w.meta, "token");
  if (w.kind != net::Kind::welcome || !net::valid_stream_id(server) || token.size() != 32 ||
      text_of(w.meta, "subject") != "oneadapt.v1.task." + server + "." + hello_.stream)
    throw Error(Errc::io, link_.url() + ": the answer to hello is not a welcome");
  server_ = server;
  subject_ = "oneadapt.v1.task." + server + "." + hello_.stream;
  token_ = token;
  if (held_.size() < kMaxHeldTokens || held_.count(server)) held_[server] = token;
}

RemoteInference::~RemoteInference() { close(); }

void RemoteInference::close() noexcept {
  if (closed_) return;
  try {
    if (!token_.empty()) call_once("close", json{{"op", "close"}}, 0, {}, nullptr);
  } catch (...) {
    // The server may already be gone: nothing to close there.
  }
  closed_ = true;
}

std::string RemoteInference::describe() const {
  return "task '" + hello_.task + "' on server " + server_ + " at " + link_.url();
}

json RemoteInference::call_once(const std::string& op, const json& meta, std::uint64_t interval,
                                const std::vector<std::uint8_t>& payload,
                                std::vector<std::uint8_t>* reply_payload) {
  net::Message m;
  m.kind = net::Kind::call;
  m.interval = interval;
  m.meta = meta;
  m.meta["token"] = token_;
  m.payload = payload;
  const auto bytes = net::encode(m);
  const auto t0 = Clock::now();
  net::Received r = [&] {
    try {
      // A server that is killed in the middle of the call is noticed at the next probe (NATS
      // has no subscriber on its alive subject any more); a busy one is waited for up to the
      // timeout (giving up a live server under load only piles the work up again elsewhere).
      return link_.request(subject_, bytes, timeout_, std::min(timeout_, kProbeEvery), [&] {
        return link_.ping(alive_subject(server_), kProbeWait) != net::NatsLink::Presence::gone;
      });
    } catch (const Error& e) {
      throw Unreachable(Errc::io, "server " + server_ + " at " + link_.url() + " did not answer '" +
                                      op + "' for stream '" + hello_.stream + "': " + e.what());
    }
  }();
  const double ms = ms_since(t0);
  auto d = net::decode(r.data(), r.size());
  if (auto* rej = std::get_if<net::Rejection>(&d))
    throw Error(Errc::io, "server " + server_ + ": the answer to '" + op +
                              "' is not a message: " + rej->text);
  net::Message& rep = std::get<net::Message>(d);
  if (rep.meta.contains("error") && rep.meta.value("lost", false) && op != "close")
    throw Unreachable(Errc::io, "server " + server_ + " no longer serves stream '" + hello_.stream +
                                    "'");  // fail over (to it or another)
  if (rep.meta.contains("error"))
    throw Error(code_of(rep.meta),
                "server " + server_ + ": " + printable(text_of(rep.meta, "error")));
  auto& o = stats_.ops[op];
  ++o.calls;
  o.bytes_sent += bytes.size();
  o.bytes_received += r.size();
  o.round_trip_ms.push_back(ms);
  o.server_ms.push_back(rep.meta.value("server_ms", 0.0));
  if (reply_payload) *reply_payload = std::move(rep.payload);
  return std::move(rep.meta);
}

json RemoteInference::call(const std::string& op, json meta, std::uint64_t interval,
                           const std::vector<std::uint8_t>& payload,
                           std::vector<std::uint8_t>* reply_payload) {
  if (closed_) throw Error(Errc::internal, "a call on a closed stream");
  meta["op"] = op;
  std::string lost;  // why the last server was given up, while failing over
  for (int attempt = 0;; ++attempt) {
    try {
      if (!lost.empty()) {
        // Fail over: another server of the queue group takes the stream, is told this
        // interval's inferences again, and the call is repeated. A task with recurrent state
        // (a streaming VAD) starts the new server from a fresh state.
        // The hello is retried for three timeouts: a server of the queue group that is alive
        // but busy (finishing the call this source gave up on, a cold first inference under
        // load) answers late, and giving up after one timeout lost the stream (CI, under load).
        const std::string from = server_;
        const auto t0 = Clock::now();
        for (;;) {
          try {
            hello();
            break;
          } catch (const Unreachable& e) {
            if (Clock::now() - t0 > 3 * timeout_)
              throw Error(Errc::io, lost + "; then no server took the stream: " + one_line(e.what()));
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
          }
        }
        for (const auto& j : journal_) call_once(j.op, j.meta, j.interval, j.payload, nullptr);
        failovers_.push_back(json{{"interval", current_interval_},
                                  {"op", op},
                                  {"from", from},
                                  {"to", server_},
                                  {"replayed", journal_.size()},
                                  {"error", lost}});
        lost.clear();
      }
      json rep = call_once(op, meta, interval, payload, reply_payload);
      // What a new server must be told again to hold this interval's results: every inference
      // since the last end of interval (results keep their ids: the source numbers them).
      if (op == "infer") journal_.push_back({op, meta, interval, payload});
      if (op == "end_interval" || op == "reset") journal_.clear();
      return rep;
    } catch (const Unreachable& e) {
      if (attempt >= 3) throw Error(Errc::io, std::string(e.what()) + " (after 3 fail-overs)");
      lost = one_line(e.what());
    }
  }
}

adapt::Inferred RemoteInference::infer(const Rendering& r, const Configuration& config,
                                       const IntervalInfo& info, bool grad, bool full_grad) {
  if (r.wire.empty())
    throw Error(Errc::unsupported, "modality '" + hello_.modality +
                                       "' rendered no wire bytes for " + config.str() +
                                       ": it cannot run over the split");
  std::vector<std::uint8_t> grad_bytes;
  current_interval_ = info.index;
  json rep = call("infer",
                  json{{"config", config_json(config)},
                       {"info", info_json(info)},
                       {"fresh", r.fresh},
                       {"grad", grad},
                       {"saliency", grad && !full_grad},
                       {"first_id", next_id_}},
                  info.index, r.wire, &grad_bytes);
  adapt::Inferred out;
  try {
    // Checked against what was sent: one result per sample, a gradient of one sample's shape,
    // a saliency of one sample's rank that broadcasts to it.
    const auto& ids = rep.at("results");
    if (!ids.is_array() || ids.size() != static_cast<std::size_t>(r.input.size(0)))
      throw Error(Errc::io, "server " + server_ + ": results for " +
                                std::to_string(ids.is_array() ? ids.size() : 0) + " samples of " +
                                std::to_string(r.input.size(0)));
    for (const auto& id : ids) {
      const auto v = uint_of<std::uint64_t>(id, std::uint64_t{1} << 53, "a result id");
      out.results.push_back(std::make_shared<RemoteResult>(v));
      next_id_ = std::max(next_id_, v + 1);
    }
    out.frames = finite_of(rep.at("frames"), "frames");
    out.grad_sample = uint_of<std::size_t>(
        rep.at("grad_sample"), static_cast<std::uint64_t>(r.input.size(0) - 1), "grad_sample");
    out.proxy = finite_of(rep.at("proxy"), "proxy");
    out.forward_ms = finite_of(rep.at("forward_ms"), "forward_ms");
    out.backward_ms = finite_of(rep.at("backward_ms"), "backward_ms");
    const auto sample = r.input.sizes().slice(1);
    if (grad && !full_grad) {
      const auto shape = rep.at("saliency_shape").get<std::vector<int64_t>>();
      bool fits = shape.size() == sample.size();
      for (std::size_t k = 0; fits && k < shape.size(); ++k)
        fits = shape[k] == sample[k] || shape[k] == 1;
      if (!fits) throw Error(Errc::io, "server " + server_ + ": a saliency of another shape");
      out.saliency = tensor_from(inflate(grad_bytes, shape), shape);
    } else if (grad) {
      const auto shape = rep.at("grad_shape").get<std::vector<int64_t>>();
      if (!at::IntArrayRef(shape).equals(sample))
        throw Error(Errc::io, "server " + server_ + ": a gradient of another shape");
      out.grad = tensor_from(grad_bytes, shape);
    }
  } catch (const json::exception& e) {
    throw Error(Errc::io, "server " + server_ + ": a malformed answer to 'infer': " + e.what());
  } catch (const Error& e) {
    throw Error(Errc::io, "server " + server_ + ": " + e.what());
  }
  return out;
}

double RemoteInference::backward_weight(const Rendering& r, const Configuration& config,
                                        const IntervalInfo& info, std::size_t sample) {
  json rep = call("backward_weight",
                  json{{"config", config_json(config)},
                       {"info", info_json(info)},
                       {"fresh", r.fresh},
                       {"sample", sample}},
                  info.index, r.wire);
  return rep.at("value").get<double>();
}

double RemoteInference::accuracy(const std::vector<ResultPtr>& results,
                                 const std::vector<ResultPtr>& reference) {
  const json rep =
      call("accuracy", json{{"results", ids_of(results)}, {"reference", ids_of(reference)}}, 0, {});
  try {
    return finite_of(rep.at("value"), "accuracy");
  } catch (const std::exception& e) {
    throw Error(Errc::io, "server " + server_ + ": a malformed answer to 'accuracy': " + e.what());
  }
}

std::vector<Region> RemoteInference::regions(const TaskResult& result) {
  json rep = call("regions", json{{"result", id_of(result)}}, 0, {});
  std::vector<Region> out;
  try {
    for (const auto& r : rep.at("regions"))
      out.push_back(Region{r.at(0).get<float>(), r.at(1).get<float>(), r.at(2).get<float>(),
                           r.at(3).get<float>(), r.at(4).get<float>(), r.at(5).get<bool>()});
  } catch (const json::exception& e) {
    throw Error(Errc::io, "server " + server_ + ": a malformed answer to 'regions': " + e.what());
  }
  return out;
}

void RemoteInference::reset() { call("reset", json::object(), 0, {}); }

void RemoteInference::end_interval(const std::vector<ResultPtr>& reference) {
  // The interval's index is not known here: the server ages results by its own count.
  call("end_interval", json{{"reference", ids_of(reference)}}, 0, {});
}

// --- Server
// ---------------------------------------------------------------------------------------

struct Server::Stream {
  StreamHello hello;
  std::optional<host::HostReceiver> receiver;
  std::optional<host::HostTask> task;
  struct Held {
    ResultPtr result;
    std::uint64_t age = 0;  // the stream's interval count when it was decoded
  };
  std::map<std::uint64_t, Held> results;
  std::uint64_t next_id = 1, intervals = 0, calls = 0;
  std::chrono::steady_clock::time_point last_call = std::chrono::steady_clock::now();

  std::string token;  // what every call of this stream carries

  ResultPtr result(const json& id) {
    auto it = results.find(uint_of<std::uint64_t>(id, std::uint64_t{1} << 53, "a result id"));
    if (it == results.end())
      throw Error(Errc::invalid_argument, "no result #" + std::to_string(id.get<std::uint64_t>()) +
                                              " (dropped or never made)");
    return it->second.result;
  }
  std::vector<ResultPtr> results_of(const json& ids) {
    if (!ids.is_array() || ids.size() > 100000)
      throw Error(Errc::invalid_argument, "result ids must be a list of at most 100000");
    std::vector<ResultPtr> v;
    for (const auto& id : ids) v.push_back(result(id));
    return v;
  }
};

Server::Server(const host::PluginRegistry& registry, net::NatsLink& link, ServerOptions options)
    : registry_(registry), link_(link), options_(std::move(options)) {
  if (options_.id.empty()) options_.id = host_token("srv");
  if (!net::valid_stream_id(options_.id))
    throw Error(Errc::invalid_argument, "--id '" + options_.id + "' is not 1-64 of [A-Za-z0-9_-]");
}

Server::~Server() = default;

json Server::status() const {
  json streams = json::array();
  for (const auto& [id, s] : streams_)
    streams.push_back({{"stream", id}, {"task", s->hello.task}, {"intervals", s->intervals}});
  return json{{"server", options_.id},
              {"streams", streams},
              {"opened", opened_},
              {"closed", closed_},
              {"calls", calls_},
              {"batches", batches_},
              {"batched_calls", batched_calls_},
              {"errors", errors_},
              {"dropped_slow_consumer", dropped_},
              {"expired", expired_},
              {"jobs", jobs_},
              {"jobs_failed", jobs_failed_},
              {"rejected", rejected_.to_json()}};
}

void Server::serve(std::ostream& log) {
  net::Subscription hello = link_.subscribe(kHelloSubject, kServerQueue);
  net::Subscription work = link_.subscribe("oneadapt.v1.task." + options_.id + ".*");
  // Sources (in a call) and compare's job pools probe this subject: while it has a subscriber
  // the server is alive, however busy.
  net::Subscription alive = link_.subscribe(alive_subject(options_.id));
  net::Subscription announce;
  if (options_.jobs) announce = link_.subscribe(kCompareAnnounceSubject);
  link_.flush();
  log << "server " << options_.id << " serving on " << link_.url() << " (device " << options_.device
      << ")\n"
      << std::flush;
  // Nothing a client sends may end the loop: a failure to answer (the reply could not be
  // encoded or published, memory ran out) is counted and the loop goes on.
  auto guarded = [&](auto&& handle) {
    try {
      handle();
    } catch (...) {
      ++errors_;
    }
  };
  while (!adapt::stop_signal() && !stop_) {
    if (auto m = hello.next(std::chrono::milliseconds(1))) guarded([&] { on_hello(*m, log); });
    // The calls waiting (at most 16, or --max-batch, before the next look at the hello
    // subject: new streams are not starved), answered together: inferences of streams whose
    // tasks batch run in one pass.
    std::vector<net::Received> calls;
    const std::size_t drain = std::max<std::size_t>(16, options_.max_batch);
    while (calls.size() < drain && !adapt::stop_signal() && !stop_) {
      auto m = work.next(std::chrono::milliseconds(calls.empty() ? 20 : 1));
      if (!m) break;
      calls.push_back(std::move(*m));
    }
    if (!calls.empty()) guarded([&] { on_calls(calls, log); });
    guarded([&] {
      while (auto m = alive.next(std::chrono::milliseconds(1))) reply_to(*m, {});
    });
    if (options_.jobs) guarded([&] { poll_jobs(announce, log); });
    dropped_ = hello.dropped() + work.dropped();
    // A source that died (killed, its machine gone) sends no close: its stream is closed once
    // it has been idle for idle_timeout, and nothing else is affected.
    if (options_.idle_timeout.count() > 0) {
      const auto now = Clock::now();
      for (auto it = streams_.begin(); it != streams_.end();) {
        if (now - it->second->last_call > options_.idle_timeout) {
          log << "stream " << it->first << " closed (no call for " << options_.idle_timeout.count()
              << " s: its source is gone)\n"
              << std::flush;
          it = streams_.erase(it);
          ++closed_, ++expired_;
        } else {
          ++it;
        }
      }
    }
    if (options_.exit_after_streams && closed_ >= options_.exit_after_streams) break;
  }
  log << "server " << options_.id << " stops: " << status().dump() << "\n" << std::flush;
  stop_ = false;  // a later serve() serves again (its streams kept)
}

void Server::poll_jobs(net::Subscription& announce, std::ostream& log) {
  using namespace std::chrono_literals;
  const auto now = Clock::now();
  while (auto m = announce.next(1ms)) {
    auto d = net::decode(m->data(), m->size());
    const auto* msg = std::get_if<net::Message>(&d);
    if (!msg) {
      rejected_.count(std::get<net::Rejection>(d).reason);
      continue;
    }
    const json& meta = msg->meta;
    if (msg->kind == net::Kind::job && meta.value("op", "") == "announce" &&
        meta.contains("compare") && meta["compare"].is_string() &&
        net::valid_stream_id(meta["compare"].get<std::string>()))
      compares_[meta["compare"].get<std::string>()] = now;
  }
  // Comparisons not announced for a minute are over (their coordinator stopped announcing).
  for (auto it = compares_.begin(); it != compares_.end();)
    it = now - it->second > 60s ? compares_.erase(it) : std::next(it);
  if (compares_.empty()) return;
  const std::string id = compares_.begin()->first;
  const std::string base = "oneadapt.v1.compare." + id;
  net::Message job;
  try {
    net::Received r = link_.request(
        base + ".next", net::encode({net::Kind::job, 0, json{{"op", "next"}, {"server", options_.id}}, {}}),
        5s);
    auto d = net::decode(r.data(), r.size());
    if (auto* rej = std::get_if<net::Rejection>(&d)) {
      rejected_.count(rej->reason);
      compares_.erase(id);
      return;
    }
    job = std::move(std::get<net::Message>(d));
  } catch (const Error&) {
    compares_.erase(id);  // its coordinator is gone
    return;
  }
  if (job.kind != net::Kind::job || job.meta.value("op", "") != "job" ||
      !job.meta.contains("setup") || !job.meta.contains("work")) {
    compares_.erase(id);  // "none": every job of it is taken
    return;
  }
  const std::uint64_t k = job.interval;
  const auto t0 = Clock::now();
  net::Message result{net::Kind::job_result, k,
                      json{{"op", "result"},
                           {"server", options_.id},
                           {"token", job.meta.value("token", std::string())}},
                      {}};
  try {
    JobDone done = options_.jobs(id, job.meta["setup"], job.meta["work"], job.payload);
    result.meta["result"] = std::move(done.meta);
    result.payload = std::move(done.payload);
    ++jobs_;
  } catch (const Error& e) {
    result.meta["error"] = printable(e.what());
    result.meta["code"] = static_cast<int>(e.code());
    ++jobs_failed_;
  } catch (const std::exception& e) {
    result.meta["error"] = printable(e.what());
    ++jobs_failed_;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  result.meta["seconds"] = seconds;
  log << "compare " << id.substr(0, 8) << " job " << k << " ("
      << (job.meta["work"].is_object() ? job.meta["work"].value("label", std::string("?"))
                                       : std::string("?"))
      << ") "
      << (result.meta.contains("error") ? "failed" : "done") << " in "
      << std::to_string(seconds).substr(0, 5) << " s\n"
      << std::flush;
  auto bytes = net::encode(result);
  if (bytes.size() > link_.max_payload()) {  // the coordinator would wait for it forever
    net::Message too_large{net::Kind::job_result, k,
                           json{{"op", "result"},
                                {"server", options_.id},
                                {"token", result.meta["token"]},
                                {"seconds", seconds},
                                {"code", static_cast<int>(Errc::io)},
                                {"error", "its result (" + std::to_string(bytes.size()) +
                                              " bytes) is over NATS's max_payload (" +
                                              std::to_string(link_.max_payload()) +
                                              "): raise max_payload in nats-server's config"}},
                           {}};
    ++jobs_failed_;
    bytes = net::encode(too_large);
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    try {
      link_.request(base + ".result", bytes, 30s);
      return;
    } catch (const Error&) {
    }
  }
  compares_.erase(id);
}

std::string Server::model_path(const std::string& role, const std::string& where) const {
  namespace fs = std::filesystem;
  const std::string what = "task.models." + role + " '" + where + "'";
  fs::path path, root;
  if (where.rfind("asset:", 0) == 0) {
    const std::string name = where.substr(6);
    const bool plain = !name.empty() && name.size() <= 200 && name.front() != '/' &&
                       name.find("..") == std::string::npos &&
                       std::all_of(name.begin(), name.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
                                c == '-' || c == '.' || c == '/';
                       });
    if (!plain) throw Error(Errc::invalid_argument, what + ": not an asset name");
    path = resolve_asset_uri(where);
    root = asset_cache_dir();
  } else {
    if (options_.models_dir.empty())
      throw Error(Errc::invalid_argument,
                  what +
                      ": this server loads assets only (asset:NAME); start it with "
                      "--models-dir DIR to allow model files under DIR");
    path = where;
    root = options_.models_dir;
  }
  std::error_code ec;
  const fs::path canon = fs::weakly_canonical(path, ec);
  const fs::path base = fs::weakly_canonical(root, ec);
  const auto rel = canon.lexically_relative(base);
  const fs::file_status st = fs::status(canon, ec);
  if (ec || rel.empty() || rel.native().rfind("..", 0) == 0 ||
      !(fs::is_regular_file(st) || fs::is_directory(st)))
    throw Error(Errc::not_found, what + ": no such model on this server");
  return canon.string();
}

void Server::reply_to(const net::Received& msg, const std::vector<std::uint8_t>& bytes) {
  const std::string reply = msg.reply();
  if (!reply.empty()) link_.publish(reply, bytes);
}

std::optional<net::Message> Server::open(const net::Received& msg) {
  auto d = net::decode(msg.data(), msg.size());
  if (auto* rej = std::get_if<net::Rejection>(&d)) {
    rejected_.count(rej->reason);
    reply_to(msg, error_reply("not a message: " + rej->text, Errc::invalid_argument));
    return std::nullopt;
  }
  return std::move(std::get<net::Message>(d));
}

void Server::on_hello(net::Received& msg, std::ostream& log) {
  auto answer = [&](const std::vector<std::uint8_t>& bytes) { reply_to(msg, bytes); };
  const auto opened = open(msg);
  if (!opened) return;
  const net::Message& m = *opened;
  try {
    if (m.kind != net::Kind::hello)
      throw Error(Errc::invalid_argument,
                  std::string("expected a hello, got ") + net::kind_name(m.kind));
    auto s = std::make_unique<Stream>();
    s->hello = StreamHello::from_json(m.meta);
    const StreamHello& h = s->hello;
    // A stream id in use here is taken again only by its own source (its token): no client
    // can replace or close another's stream.
    if (auto it = streams_.find(h.stream); it != streams_.end()) {
      if (!hello_holds_token(m.meta, it->second->token))
        throw Error(Errc::invalid_argument, "stream id '" + h.stream + "' is in use here");
    } else if (streams_.size() >= options_.max_open) {
      throw Error(Errc::unsupported, "this server serves its most streams (" +
                                         std::to_string(options_.max_open) + ", --max-open)");
    }
    const auto* modality = registry_.find_modality(h.modality);
    if (!modality) throw Error(Errc::not_found, "no modality named '" + h.modality + "' here");
    const auto* task = registry_.find_task(h.task);
    if (!task) throw Error(Errc::not_found, "no task named '" + h.task + "' here");
    if (modality->info.sample_format != task->info.sample_format)
      throw Error(Errc::invalid_argument, "modality '" + h.modality + "' renders " +
                                              modality->info.sample_format + " but task '" +
                                              h.task + "' takes " + task->info.sample_format);
    s->receiver.emplace(registry_.open_receiver(h.modality, h.modality_settings, h.format));
    std::map<std::string, std::shared_ptr<Model>> models;
    for (const auto& [role, where] : h.models)
      if (std::none_of(task->info.models.begin(), task->info.models.end(),
                       [&](const ModelRequirement& r) { return r.role == role; }))
        throw Error(Errc::invalid_argument,
                    "task '" + h.task + "' has no model role '" + role + "'");
    for (const auto& req : task->info.models) {
      auto it = h.models.find(req.role);
      const std::string where = it != h.models.end() ? it->second : "asset:" + req.default_asset;
      if (where == "asset:") {
        if (req.optional) continue;
        throw Error(Errc::invalid_argument,
                    "task '" + h.task + "' needs a model for role '" + req.role + "'");
      }
      // Models are loaded once per server and shared by every stream that names them; only
      // the server's assets or files under its --models-dir.
      const std::string path = model_path(req.role, where);
      auto it_m = models_.find(path);
      if (it_m == models_.end()) {
        if (models_.size() >= 64) throw Error(Errc::unsupported, "this server holds 64 models");
        it_m = models_.emplace(path, engine::load_model(path, {options_.device})).first;
      }
      models[req.role] = it_m->second;
    }
    s->task.emplace(registry_.create_task(h.task, h.task_settings, models, options_.device));
    const std::string id = h.stream;
    const bool replaced = streams_.count(id) > 0;
    s->token = new_token();
    const std::string token = s->token;
    streams_[id] = std::move(s);
    ++opened_;
    log << "stream " << id << " opened (" << h.modality << ", " << h.task
        << (replaced ? "; it replaces the stream of that id" : "") << ")\n"
        << std::flush;
    net::Message w;
    w.kind = net::Kind::welcome;
    w.meta = json{{"server", options_.id},
                  {"subject", "oneadapt.v1.task." + options_.id + "." + id},
                  {"token", token}};
    answer(net::encode(w));
  } catch (const std::exception& e) {
    ++errors_;
    const Errc code =
        dynamic_cast<const Error*>(&e) ? static_cast<const Error&>(e).code() : Errc::internal;
    log << "hello refused: " << one_line(e.what()) << "\n" << std::flush;
    answer(error_reply(e.what(), code));
  }
}

namespace {
// The stream id a call's subject names (oneadapt.v1.task.<server>.<stream>).
std::string stream_of(const net::Received& msg) {
  const std::string subject = msg.subject();
  return subject.substr(subject.rfind('.') + 1);
}
}  // namespace

struct Server::Call {
  net::Received* msg;
  net::Message m;
  std::string id, op;
  Stream* stream;
};

void Server::on_calls(std::vector<net::Received>& msgs, std::ostream& log) {
  // Each stream's first call now; a stream's later ones (a source that re-sent) after, in
  // order, so that no stream's calls are reordered. Inferences of streams whose tasks batch,
  // grouped by batch key, run last of the first calls: other streams' calls do not touch them.
  std::set<std::string> seen;
  std::vector<net::Received*> later;
  std::map<std::string, std::vector<Call>> groups;
  for (auto& msg : msgs) {
    if (!seen.insert(stream_of(msg)).second) {
      later.push_back(&msg);
      continue;
    }
    std::optional<Call> call;
    try {
      call = accept(msg, log);
    } catch (...) {
      ++errors_;
      continue;
    }
    if (!call) continue;
    std::string key;
    if (options_.max_batch > 1 && call->op == "infer") try {
        key = call->stream->task->batch_key();
      } catch (...) {  // a task that cannot say: served alone
      }
    if (key.empty())
      run(*call);
    else
      groups[key].push_back(std::move(*call));
  }
  for (auto& [key, group] : groups)
    for (std::size_t at = 0; at < group.size(); at += options_.max_batch) {
      const std::size_t end = std::min(group.size(), at + options_.max_batch);
      if (end - at == 1) {
        run(group[at]);
        continue;
      }
      std::vector<Call*> part;
      for (std::size_t k = at; k < end; ++k) part.push_back(&group[k]);
      try {
        run_batch(part);
      } catch (...) {  // run_batch answers each call itself; whatever escapes is counted
        ++errors_;
      }
    }
  for (net::Received* msg : later) try {
      if (auto call = accept(*msg, log)) run(*call);
    } catch (...) {
      ++errors_;
    }
}

std::optional<Server::Call> Server::accept(net::Received& msg, std::ostream& log) {
  ++calls_;
  auto answer = [&](const std::vector<std::uint8_t>& bytes) { reply_to(msg, bytes); };
  auto opened = open(msg);
  if (!opened) return std::nullopt;
  net::Message& m = *opened;
  const std::string id = stream_of(msg);
  try {
    if (m.kind != net::Kind::call)
      throw Error(Errc::invalid_argument,
                  std::string("expected a call, got ") + net::kind_name(m.kind));
    auto it = streams_.find(id);
    if (it == streams_.end()) {
      // Closed here (idle, or this server restarted): the source takes it up again by a hello.
      net::Message r;
      r.kind = net::Kind::reply;
      r.meta =
          json{{"error", printable("stream '" + id + "' is not served here (send a hello first)")},
               {"code", static_cast<int>(Errc::not_found)},
               {"lost", true}};
      ++errors_;
      answer(net::encode(r));
      return std::nullopt;
    }
    if (!same_token(m.meta.value("token", std::string()), it->second->token))
      throw Error(Errc::invalid_argument, "a call without stream '" + id + "''s token");
    it->second->last_call = Clock::now();
    const std::string op = m.meta.value("op", std::string());
    if (op == "close") {
      streams_.erase(it);
      ++closed_;
      log << "stream " << id << " closed\n" << std::flush;
      net::Message r;
      r.kind = net::Kind::reply;
      answer(net::encode(r));
      return std::nullopt;
    }
    return Call{&msg, std::move(m), id, op, it->second.get()};
  } catch (const std::exception& e) {
    fail(msg, id, e);
    return std::nullopt;
  }
}

void Server::fail(const net::Received& msg, const std::string& id, const std::exception& e) {
  ++errors_;
  try {  // an error reply that cannot be sent either is counted; the other calls go on
    if (dynamic_cast<const json::exception*>(&e)) {
      reply_to(msg, error_reply("stream '" + id + "': a malformed call: " + e.what(),
                                Errc::invalid_argument));
      return;
    }
    const Errc code =
        dynamic_cast<const Error*>(&e) ? static_cast<const Error&>(e).code() : Errc::internal;
    reply_to(msg, error_reply("stream '" + id + "': " + e.what(), code));
  } catch (...) {
  }
}

void Server::run(Call& call) {
  try {
    net::Message r;
    r.kind = net::Kind::reply;
    r.interval = call.m.interval;
    const auto t0 = Clock::now();
    r.payload = handle(*call.stream, call.op, call.m.meta, call.m.payload, r.meta);
    r.meta["server_ms"] = ms_since(t0);  // the server's own time for the call
    reply_to(*call.msg, net::encode(r));
  } catch (const std::exception& e) {
    fail(*call.msg, call.id, e);
  } catch (...) {
    ++errors_;
  }
}

void Server::run_batch(const std::vector<Call*>& calls) {
  const auto t0 = Clock::now();
  // Each call's input decoded on its own: a call that cannot be is answered alone.
  std::vector<Call*> ok;
  std::vector<host::HostTask*> tasks;
  std::vector<at::Tensor> inputs;
  std::vector<std::vector<std::uint8_t>> fresh;
  std::vector<bool> grad;
  std::vector<double> decode_ms;
  for (Call* c : calls) try {
      const auto t = Clock::now();
      std::vector<std::uint8_t> f;
      at::Tensor input = decode_input(*c->stream, c->m.meta, c->m.payload, f);
      const bool g = c->m.meta.at("grad").get<bool>();
      if (c->stream->results.size() > 4096)
        throw Error(Errc::unsupported, "the stream holds 4096 results: end the interval first");
      ok.push_back(c), tasks.push_back(&*c->stream->task), inputs.push_back(std::move(input));
      fresh.push_back(std::move(f)), grad.push_back(g), decode_ms.push_back(ms_since(t));
    } catch (const std::exception& e) {
      ++c->stream->calls;
      fail(*c->msg, c->id, e);
    }
  if (ok.empty()) return;
  std::vector<adapt::Inferred> inferred;
  if (ok.size() > 1) try {
      inferred = adapt::infer_samples_batch(tasks, inputs, fresh, grad);
      ++batches_, batched_calls_ += ok.size();
    } catch (const std::exception&) {
      inferred.clear();  // a failure in the shared pass: each call alone, with its own error
    }
  const bool shared = !inferred.empty();
  const double each_ms = ms_since(t0) / static_cast<double>(ok.size());
  for (std::size_t k = 0; k < ok.size(); ++k) {
    Call& c = *ok[k];
    try {
      ++c.stream->calls;
      net::Message r;
      r.kind = net::Kind::reply;
      r.interval = c.m.interval;
      const auto t1 = Clock::now();
      // Alone (one call left, or the shared pass failed): its input is decoded already.
      const adapt::Inferred inf =
          shared ? std::move(inferred[k])
                 : adapt::infer_samples(*tasks[k], inputs[k], fresh[k], grad[k]);
      r.payload = infer_reply(*c.stream, c.m.meta, inf, decode_ms[k], r.meta);
      r.meta["server_ms"] = (shared ? each_ms : decode_ms[k]) + ms_since(t1);
      if (shared) r.meta["batch"] = ok.size();
      reply_to(*c.msg, net::encode(r));
    } catch (const std::exception& e) {
      fail(*c.msg, c.id, e);
    }
  }
}

at::Tensor Server::decode_input(Stream& s, const json& meta, const std::vector<std::uint8_t>& payload,
                                std::vector<std::uint8_t>& fresh) {
  const Configuration config = config_from(meta.at("config"));
  const IntervalInfo info = info_from(meta.at("info"));
  fresh = meta.at("fresh").get<std::vector<std::uint8_t>>();
  if (!fresh.empty() && fresh.size() != info.samples)
    throw Error(Errc::invalid_argument, "fresh has " + std::to_string(fresh.size()) +
                                            " entries for " + std::to_string(info.samples) +
                                            " samples");
  return s.receiver->decode(config, info, fresh, payload);
}

std::vector<std::uint8_t> Server::infer_reply(Stream& s, const json& meta,
                                              const adapt::Inferred& inf, double decode_ms,
                                              json& out) {
  const bool grad = meta.at("grad").get<bool>();
  json ids = json::array();
  // Results are numbered from the source's first_id (a server that takes the stream over
  // is told the interval's inferences again and gives their results the same ids).
  std::uint64_t next =
      meta.contains("first_id")
          ? uint_of<std::uint64_t>(meta.at("first_id"), std::uint64_t{1} << 52, "first_id")
          : s.next_id;
  std::map<const TaskResult*, std::uint64_t> seen;  // repeated samples share a result
  for (const auto& r : inf.results) {
    auto [it, fresh_id] = seen.emplace(r.get(), next);
    if (fresh_id) s.results[next++] = Stream::Held{r, s.intervals};
    ids.push_back(it->second);
  }
  s.next_id = std::max(s.next_id, next);
  out = json{
      {"results", ids},        {"frames", inf.frames},         {"grad_sample", inf.grad_sample},
      {"proxy", inf.proxy},    {"forward_ms", inf.forward_ms}, {"backward_ms", inf.backward_ms},
      {"decode_ms", decode_ms}};
  if (grad && meta.value("saliency", false)) {
    // What the source's policy needs of DNNGrad: its saliency, computed here by the receiver
    // exactly as the source would, deflated (block-constant maps shrink a hundredfold).
    const at::Tensor S = s.receiver->saliency(inf.grad);
    out["saliency_shape"] = S.sizes().vec();
    return deflate(tensor_bytes(S));
  }
  if (grad) {
    out["grad_shape"] = inf.grad.sizes().vec();
    return tensor_bytes(inf.grad);
  }
  return {};
}

std::vector<std::uint8_t> Server::handle(Stream& s, const std::string& op, const json& meta,
                                         const std::vector<std::uint8_t>& payload, json& out) {
  ++s.calls;
  if (op == "infer") {
    if (s.results.size() > 4096)
      throw Error(Errc::unsupported, "the stream holds 4096 results: end the interval first");
    std::vector<std::uint8_t> fresh;
    const auto t0 = Clock::now();
    const at::Tensor input = decode_input(s, meta, payload, fresh);
    const double decode_ms = ms_since(t0);
    const adapt::Inferred inf =
        adapt::infer_samples(*s.task, input, fresh, meta.at("grad").get<bool>());
    return infer_reply(s, meta, inf, decode_ms, out);
  }
  if (op == "backward_weight") {
    std::vector<std::uint8_t> fresh;
    const at::Tensor input = decode_input(s, meta, payload, fresh);
    const auto sample = uint_of<int64_t>(meta.at("sample"), 100000, "sample");
    if (sample < 0 || sample >= input.size(0))
      throw Error(Errc::invalid_argument,
                  "sample " + std::to_string(sample) + " is outside the interval");
    out = json{{"value", adapt::measure_backward_weight(*s.task, input.narrow(0, sample, 1))}};
    return {};
  }
  if (op == "accuracy") {
    const auto a = s.results_of(meta.at("results"));
    const auto b = s.results_of(meta.at("reference"));
    if (a.size() != b.size())
      throw Error(Errc::invalid_argument, "accuracy of " + std::to_string(a.size()) +
                                              " results against " + std::to_string(b.size()));
    out = json{{"value", s.task->accuracy(a, b)}};
    return {};
  }
  if (op == "regions") {
    json regions = json::array();
    for (const Region& r : s.task->regions(*s.result(meta.at("result"))))
      regions.push_back(json::array({r.x0, r.y0, r.x1, r.y1, r.score, r.confident}));
    out = json{{"regions", regions}};
    return {};
  }
  if (op == "reset") {
    s.task->reset();
    s.results.clear();
    out = json::object();
    return {};
  }
  if (op == "end_interval") {
    s.task->end_interval(s.results_of(meta.at("reference")));
    ++s.intervals;
    // Results older than the interval before this one are no longer asked for: drop them.
    for (auto it = s.results.begin(); it != s.results.end();)
      it = it->second.age + 2 <= s.intervals ? s.results.erase(it) : std::next(it);
    out = json::object();
    return {};
  }
  throw Error(Errc::invalid_argument, "unknown operation '" + op + "'");
}

}  // namespace oneadapt::split
