#include "split/split.hpp"

#include <ATen/ATen.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ostream>
#include <numeric>
#include <set>
#include <thread>

#include "adapt/harness.hpp"
#include "engine/engine.hpp"
#include "net/wire.hpp"
#include "run_config.hpp"

namespace oneadapt::split {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
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
    s.index = e.at(1).get<std::size_t>();
    s.value.number = e.at(2).get<double>();
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
  i.index = j.at("index").get<std::size_t>();
  i.t_start = j.at("t_start").get<double>();
  i.duration = j.at("duration").get<double>();
  i.samples = j.at("samples").get<std::size_t>();
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
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || d > (int64_t{1} << 31)) throw Error(Errc::corrupt_data, "a bad tensor shape");
    n *= d;
  }
  if (static_cast<std::size_t>(n) * sizeof(float) != bytes.size())
    throw Error(Errc::corrupt_data,
                "a tensor of " + std::to_string(bytes.size()) + " bytes does not fill its shape");
  at::Tensor t = at::empty(shape, at::kFloat);
  if (!bytes.empty()) std::memcpy(t.data_ptr<float>(), bytes.data(), bytes.size());
  return t;
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

double median_of(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

std::string default_server_id() {
  char host[64] = {0};
  ::gethostname(host, sizeof host - 1);
  std::string id = "srv-";
  for (const char* p = host; *p; ++p)
    id += (std::isalnum(static_cast<unsigned char>(*p)) || *p == '-' || *p == '_') ? *p : '-';
  id += "-" + std::to_string(::getpid());
  return id.substr(0, 64);
}

std::vector<std::uint8_t> error_reply(const std::string& text, Errc code) {
  net::Message m;
  m.kind = net::Kind::reply;
  m.meta = json{{"error", one_line(text)}, {"code", static_cast<int>(code)}};
  return net::encode(m);
}

}  // namespace

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
             {"round_trip_ms_median", median_of(o.round_trip_ms, 0.5)},
             {"round_trip_ms_p90", median_of(o.round_trip_ms, 0.9)},
             {"server_ms_median", median_of(o.server_ms, 0.5)},
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
  try {
    this->hello();
  } catch (const Unreachable& e) {
    throw Error(Errc::io, e.what());
  }
}

void RemoteInference::hello() {
  net::Message m;
  m.kind = net::Kind::hello;
  m.meta = hello_.to_json();
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
    throw Error(static_cast<Errc>(w.meta.value("code", static_cast<int>(Errc::io))),
                link_.url() + ": the server refused stream '" + hello_.stream +
                    "': " + w.meta.value("error", std::string()));
  if (w.kind != net::Kind::welcome || !w.meta.contains("server") || !w.meta.contains("subject"))
    throw Error(Errc::io, link_.url() + ": the answer to hello is not a welcome");
  server_ = w.meta.at("server").get<std::string>();
  subject_ = w.meta.at("subject").get<std::string>();
}

RemoteInference::~RemoteInference() { close(); }

void RemoteInference::close() noexcept {
  if (closed_) return;
  try {
    call_once("close", json{{"op", "close"}}, 0, {}, nullptr);
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
  m.payload = payload;
  const auto bytes = net::encode(m);
  const auto t0 = Clock::now();
  net::Received r = [&] {
    try {
      return link_.request(subject_, bytes, timeout_);
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
  if (rep.meta.contains("error"))
    throw Error(static_cast<Errc>(rep.meta.value("code", static_cast<int>(Errc::io))),
                "server " + server_ + ": " + rep.meta.value("error", std::string()));
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
  for (int attempt = 0;; ++attempt) {
    try {
      json rep = call_once(op, meta, interval, payload, reply_payload);
      // What a new server must be told again to hold this interval's results: every inference
      // since the last end of interval (results keep their ids: the source numbers them).
      if (op == "infer") journal_.push_back({op, meta, interval, payload});
      if (op == "end_interval" || op == "reset") journal_.clear();
      return rep;
    } catch (const Unreachable& e) {
      if (attempt >= 3) throw Error(Errc::io, std::string(e.what()) + " (after 3 fail-overs)");
      // Fail over: another server of the queue group takes the stream, is told this interval's
      // inferences again, and the call is repeated. A task with recurrent state (a streaming
      // VAD) starts the new server from a fresh state.
      const std::string from = server_;
      const auto t0 = Clock::now();
      for (;;) {
        try {
          hello();
          break;
        } catch (const Unreachable&) {
          if (Clock::now() - t0 > timeout_) throw Error(Errc::io, e.what());
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
      }
      for (const auto& j : journal_) call_once(j.op, j.meta, j.interval, j.payload, nullptr);
      failovers_.push_back(json{{"interval", interval},
                                {"op", op},
                                {"from", from},
                                {"to", server_},
                                {"replayed", journal_.size()},
                                {"error", one_line(e.what())}});
    }
  }
}

adapt::Inferred RemoteInference::infer(const Rendering& r, const Configuration& config,
                                       const IntervalInfo& info, bool grad) {
  if (r.wire.empty())
    throw Error(Errc::unsupported, "modality '" + hello_.modality +
                                       "' rendered no wire bytes for " + config.str() +
                                       ": it cannot run over the split");
  std::vector<std::uint8_t> grad_bytes;
  json rep = call("infer",
                  json{{"config", config_json(config)},
                       {"info", info_json(info)},
                       {"fresh", r.fresh},
                       {"grad", grad},
                       {"first_id", next_id_}},
                  info.index, r.wire, &grad_bytes);
  adapt::Inferred out;
  for (const auto& id : rep.at("results")) {
    out.results.push_back(std::make_shared<RemoteResult>(id.get<std::uint64_t>()));
    next_id_ = std::max(next_id_, id.get<std::uint64_t>() + 1);
  }
  out.frames = rep.at("frames").get<double>();
  out.grad_sample = rep.at("grad_sample").get<std::size_t>();
  out.proxy = rep.at("proxy").get<double>();
  out.forward_ms = rep.at("forward_ms").get<double>();
  out.backward_ms = rep.at("backward_ms").get<double>();
  if (grad) out.grad = tensor_from(grad_bytes, rep.at("grad_shape").get<std::vector<int64_t>>());
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
  return call("accuracy", json{{"results", ids_of(results)}, {"reference", ids_of(reference)}}, 0,
              {})
      .at("value")
      .get<double>();
}

std::vector<Region> RemoteInference::regions(const TaskResult& result) {
  json rep = call("regions", json{{"result", id_of(result)}}, 0, {});
  std::vector<Region> out;
  for (const auto& r : rep.at("regions"))
    out.push_back(Region{r.at(0).get<float>(), r.at(1).get<float>(), r.at(2).get<float>(),
                         r.at(3).get<float>(), r.at(4).get<float>(), r.at(5).get<bool>()});
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

  ResultPtr result(const json& id) {
    auto it = results.find(id.get<std::uint64_t>());
    if (it == results.end())
      throw Error(Errc::invalid_argument, "no result #" + std::to_string(id.get<std::uint64_t>()) +
                                              " (dropped or never made)");
    return it->second.result;
  }
  std::vector<ResultPtr> results_of(const json& ids) {
    std::vector<ResultPtr> v;
    for (const auto& id : ids) v.push_back(result(id));
    return v;
  }
};

Server::Server(const host::PluginRegistry& registry, net::NatsLink& link, ServerOptions options)
    : registry_(registry), link_(link), options_(std::move(options)) {
  if (options_.id.empty()) options_.id = default_server_id();
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
              {"errors", errors_},
              {"rejected", rejected_.to_json()}};
}

void Server::serve(std::ostream& log) {
  net::Subscription hello = link_.subscribe(kHelloSubject, kServerQueue);
  net::Subscription work = link_.subscribe("oneadapt.v1.task." + options_.id + ".*");
  link_.flush();
  log << "server " << options_.id << " serving on " << link_.url() << " (device " << options_.device
      << ")\n"
      << std::flush;
  while (!adapt::stop_signal() && !stop_) {
    if (auto m = hello.next(std::chrono::milliseconds(1))) on_hello(*m, log);
    while (auto m = work.next(std::chrono::milliseconds(20))) {
      on_call(*m, log);
      if (adapt::stop_signal() || stop_) break;
    }
    if (options_.exit_after_streams && closed_ >= options_.exit_after_streams) break;
  }
  log << "server " << options_.id << " stops: " << status().dump() << "\n" << std::flush;
}

void Server::on_hello(net::Received& msg, std::ostream& log) {
  const std::string reply = msg.reply();
  auto answer = [&](const std::vector<std::uint8_t>& bytes) {
    if (!reply.empty()) link_.publish(reply, bytes);
  };
  auto d = net::decode(msg.data(), msg.size());
  if (auto* rej = std::get_if<net::Rejection>(&d)) {
    rejected_.count(rej->reason);
    answer(error_reply("not a message: " + rej->text, Errc::invalid_argument));
    return;
  }
  const net::Message& m = std::get<net::Message>(d);
  try {
    if (m.kind != net::Kind::hello)
      throw Error(Errc::invalid_argument,
                  std::string("expected a hello, got ") + net::kind_name(m.kind));
    auto s = std::make_unique<Stream>();
    s->hello = StreamHello::from_json(m.meta);
    const StreamHello& h = s->hello;
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
      // Models are loaded once per server and shared by every stream that names them.
      auto& model = models_[where + "@" + options_.device];
      if (!model) model = engine::load_model(resolve_asset_uri(where), {options_.device});
      models[req.role] = model;
    }
    s->task.emplace(registry_.create_task(h.task, h.task_settings, models, options_.device));
    const std::string id = h.stream;
    const bool replaced = streams_.count(id) > 0;
    streams_[id] = std::move(s);
    ++opened_;
    log << "stream " << id << " opened (" << h.modality << ", " << h.task
        << (replaced ? "; it replaces the stream of that id" : "") << ")\n"
        << std::flush;
    net::Message w;
    w.kind = net::Kind::welcome;
    w.meta =
        json{{"server", options_.id}, {"subject", "oneadapt.v1.task." + options_.id + "." + id}};
    answer(net::encode(w));
  } catch (const std::exception& e) {
    ++errors_;
    const Errc code =
        dynamic_cast<const Error*>(&e) ? static_cast<const Error&>(e).code() : Errc::internal;
    log << "hello refused: " << one_line(e.what()) << "\n" << std::flush;
    answer(error_reply(e.what(), code));
  }
}

void Server::on_call(net::Received& msg, std::ostream& log) {
  ++calls_;
  const std::string reply = msg.reply();
  auto answer = [&](const std::vector<std::uint8_t>& bytes) {
    if (!reply.empty()) link_.publish(reply, bytes);
  };
  auto d = net::decode(msg.data(), msg.size());
  if (auto* rej = std::get_if<net::Rejection>(&d)) {
    rejected_.count(rej->reason);
    answer(error_reply("not a message: " + rej->text, Errc::invalid_argument));
    return;
  }
  const net::Message& m = std::get<net::Message>(d);
  const std::string subject = msg.subject();
  const std::string id = subject.substr(subject.rfind('.') + 1);
  try {
    if (m.kind != net::Kind::call)
      throw Error(Errc::invalid_argument,
                  std::string("expected a call, got ") + net::kind_name(m.kind));
    auto it = streams_.find(id);
    if (it == streams_.end())
      throw Error(Errc::not_found, "stream '" + id + "' is not served here (send a hello first)");
    const std::string op = m.meta.value("op", std::string());
    if (op == "close") {
      streams_.erase(it);
      ++closed_;
      log << "stream " << id << " closed\n" << std::flush;
      net::Message r;
      r.kind = net::Kind::reply;
      answer(net::encode(r));
      return;
    }
    net::Message r;
    r.kind = net::Kind::reply;
    r.interval = m.interval;
    const auto t0 = Clock::now();
    r.payload = handle(*it->second, op, m.meta, m.interval, m.payload, r.meta);
    r.meta["server_ms"] = ms_since(t0);  // the server's own time for the call
    answer(net::encode(r));
  } catch (const json::exception& e) {
    ++errors_;
    answer(
        error_reply("stream '" + id + "': a malformed call: " + e.what(), Errc::invalid_argument));
  } catch (const std::exception& e) {
    ++errors_;
    const Errc code =
        dynamic_cast<const Error*>(&e) ? static_cast<const Error&>(e).code() : Errc::internal;
    answer(error_reply("stream '" + id + "': " + e.what(), code));
  }
}

std::vector<std::uint8_t> Server::handle(Stream& s, const std::string& op, const json& meta,
                                         std::uint64_t interval,
                                         const std::vector<std::uint8_t>& payload, json& out) {
  (void)interval;
  ++s.calls;
  auto decode_input = [&](std::vector<std::uint8_t>& fresh) {
    const Configuration config = config_from(meta.at("config"));
    const IntervalInfo info = info_from(meta.at("info"));
    fresh = meta.at("fresh").get<std::vector<std::uint8_t>>();
    if (!fresh.empty() && fresh.size() != info.samples)
      throw Error(Errc::invalid_argument, "fresh has " + std::to_string(fresh.size()) +
                                              " entries for " + std::to_string(info.samples) +
                                              " samples");
    return s.receiver->decode(config, info, fresh, payload);
  };
  if (op == "infer") {
    std::vector<std::uint8_t> fresh;
    const auto t0 = Clock::now();
    const at::Tensor input = decode_input(fresh);
    const double decode_ms = ms_since(t0);
    const bool grad = meta.at("grad").get<bool>();
    adapt::Inferred inf = adapt::infer_samples(*s.task, input, fresh, grad);
    json ids = json::array();
    // Results are numbered from the source's first_id (a server that takes the stream over
    // is told the interval's inferences again and gives their results the same ids).
    std::uint64_t next = meta.value("first_id", s.next_id);
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
    if (grad) {
      out["grad_shape"] = inf.grad.sizes().vec();
      return tensor_bytes(inf.grad);
    }
    return {};
  }
  if (op == "backward_weight") {
    std::vector<std::uint8_t> fresh;
    const at::Tensor input = decode_input(fresh);
    const auto sample = meta.at("sample").get<int64_t>();
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
