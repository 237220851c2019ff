// The source/server split over NATS (issue 18; docs/deployment.md).
//
// `oneadapt serve` answers the task side of any number of streams: it decodes what a source
// sends with the modality's receiver, infers, runs the backward pass from the proxy, scores and
// keeps each stream's results and recurrent state. `oneadapt source` runs the interval loop and
// the policy next to its data (G and the probes OneAdapt compares with it never leave the
// source) and reaches the server through RemoteInference, the harness's Inference seam: the
// same harness, accountant and records as `oneadapt run`, so the two give the same
// configurations, bytes and accuracy on the same input.
//
// Subjects: `oneadapt.v1.hello` (request, queue group `servers`: one server takes the stream
// and answers with its own subject) and `oneadapt.v1.task.<server>.<stream>` (requests of one
// stream to its server). Every message is one envelope (net/wire.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "adapt/inference.hpp"
#include "net/nats_link.hpp"
#include "net/wire.hpp"
#include "plugin_registry.hpp"
#include "split/jobs.hpp"

namespace oneadapt::split {

inline constexpr const char* kHelloSubject = "oneadapt.v1.hello";
inline constexpr const char* kServerQueue = "servers";

/// "PREFIX-HOST-PID" as a subject token (1-64 of [A-Za-z0-9_-]): a default server or stream id.
std::string host_token(const std::string& prefix);

/// What a source tells a server about its stream (the hello's meta).
struct StreamHello {
  std::string stream;  ///< 1-64 of [A-Za-z0-9_-]
  std::string modality;
  host::ComponentSettings modality_settings;
  std::map<std::string, std::string> format;  ///< Source::stream_format()
  std::string task;
  host::ComponentSettings task_settings;
  std::map<std::string, std::string>
      models;  ///< role -> path or asset:NAME, resolved by the server
  nlohmann::json to_json() const;
  static StreamHello from_json(const nlohmann::json& j);  ///< throws Error(invalid_argument)
};

/// Traffic and round trips of one stream's remote calls, by operation.
struct CallStats {
  struct Op {
    std::uint64_t calls = 0, bytes_sent = 0, bytes_received = 0;
    std::vector<double> round_trip_ms;
    std::vector<double> server_ms;  ///< the server's own time per call (decode, DNN, scoring)
  };
  std::map<std::string, Op> ops;
  /// Per op: calls, bytes each way, round trip median and p90, the server's time (median, total).
  nlohmann::json to_json() const;
};

/// The task side of a stream, on a server over NATS.
class RemoteInference final : public adapt::Inference {
 public:
  /// Sends the hello (a server of the queue group takes the stream) and waits for the welcome.
  /// Throws Error naming the URL when no server answers within `timeout` or the server refuses.
  RemoteInference(net::NatsLink& link, StreamHello hello, std::chrono::milliseconds timeout);
  ~RemoteInference() override;
  adapt::Inferred infer(const Rendering& r, const Configuration& config, const IntervalInfo& info,
                        bool grad, bool full_grad) override;
  double backward_weight(const Rendering& r, const Configuration& config, const IntervalInfo& info,
                         std::size_t sample) override;
  double accuracy(const std::vector<ResultPtr>& results,
                  const std::vector<ResultPtr>& reference) override;
  std::vector<Region> regions(const TaskResult& result) override;
  void reset() override;
  void end_interval(const std::vector<ResultPtr>& reference) override;
  std::string describe() const override;
  /// Tells the server the stream ends (it drops the stream's state). Errors are ignored.
  void close() noexcept;
  const std::string& server() const { return server_; }
  const std::string& stream() const { return hello_.stream; }
  const CallStats& stats() const { return stats_; }
  /// Each time a server stopped answering and another took the stream over: the interval, the
  /// operation, from and to which server, how many inferences were told again, the error.
  const std::vector<nlohmann::json>& failovers() const { return failovers_; }

 private:
  struct Journal {
    std::string op;
    nlohmann::json meta;
    std::uint64_t interval;
    std::vector<std::uint8_t> payload;
  };
  void hello();
  nlohmann::json call(const std::string& op, nlohmann::json meta, std::uint64_t interval,
                      const std::vector<std::uint8_t>& payload,
                      std::vector<std::uint8_t>* reply_payload = nullptr);
  nlohmann::json call_once(const std::string& op, const nlohmann::json& meta,
                           std::uint64_t interval, const std::vector<std::uint8_t>& payload,
                           std::vector<std::uint8_t>* reply_payload);
  net::NatsLink& link_;
  StreamHello hello_;
  std::chrono::milliseconds timeout_;
  std::string server_, subject_, token_;
  /// Every server that took this stream and the token it gave: a fail-over that reaches a
  /// server which still holds the stream (a slow one given up, or one taken before) takes it
  /// back there with its token, never fails as a stranger's stream.
  std::map<std::string, std::string> held_;
  CallStats stats_;
  std::vector<Journal> journal_;
  std::vector<nlohmann::json> failovers_;
  std::uint64_t next_id_ = 1;
  std::uint64_t current_interval_ = 0;  // of the last inference (for the fail-over records)
  bool closed_ = false;
};

struct ServerOptions {
  std::string id;  ///< this server's id (a subject token); empty = "srv-<host>-<pid>"
  std::string device = "cpu";
  /// Stop after this many streams closed (0 = serve until SIGINT/SIGTERM); for tests.
  std::size_t exit_after_streams = 0;
  std::size_t max_open = 64;  ///< streams served at once; more hellos are refused
  /// A stream without a call for this long is closed (its source is gone); 0 = never.
  std::chrono::seconds idle_timeout{600};
  /// Model files a hello may name besides the server's assets (`asset:NAME`); empty = assets only.
  std::filesystem::path models_dir;
  /// Inferences of this many streams at most share one pass (their tasks' batch_key() equal:
  /// the same task plugin and model); 1 = each stream's alone.
  std::size_t max_batch = 16;
  /// Runs the jobs of distributed comparisons (split/jobs.hpp) between calls; empty = none.
  JobRunner jobs;
};

/// `oneadapt serve`: serves streams until a stop signal (adapt::stop_signal()).
class Server {
 public:
  Server(const host::PluginRegistry& registry, net::NatsLink& link, ServerOptions options);
  ~Server();
  /// Serves until stop() or a stop signal; logs one line per stream opened or closed to `log`.
  /// Streams outlive it: a later serve() serves them again.
  void serve(std::ostream& log);
  /// Asks serve() to return (from another thread; before it starts, it returns at once).
  void stop() { stop_ = true; }
  /// Streams served, calls, rejected messages by reason.
  nlohmann::json status() const;
  const std::string& id() const { return options_.id; }

 private:
  struct Stream;
  /// The envelope of `msg`, or nullopt once its rejection is counted and answered.
  std::optional<net::Message> open(const net::Received& msg);
  void reply_to(const net::Received& msg, const std::vector<std::uint8_t>& bytes);
  void on_hello(net::Received& msg, std::ostream& log);
  std::string model_path(const std::string& role, const std::string& where) const;
  struct Call;
  /// Answers the calls that were waiting: each stream's first call, inferences of streams that
  /// batch in one pass per batch key (run_batch), then streams' later calls in order.
  void on_calls(std::vector<net::Received>& msgs, std::ostream& log);
  /// Checks a call (envelope, stream, token; answers `close`): the call to run, or nullopt
  /// once it is answered.
  std::optional<Call> accept(net::Received& msg, std::ostream& log);
  void run(Call& call);
  void run_batch(const std::vector<Call*>& calls);
  void fail(const net::Received& msg, const std::string& id, const std::exception& e);
  at::Tensor decode_input(Stream& s, const nlohmann::json& meta,
                          const std::vector<std::uint8_t>& payload, std::vector<std::uint8_t>& fresh);
  std::vector<std::uint8_t> infer_reply(Stream& s, const nlohmann::json& meta,
                                        const adapt::Inferred& inf, double decode_ms,
                                        nlohmann::json& out);
  /// Hears announced comparisons and runs at most one of their jobs.
  void poll_jobs(net::Subscription& announce, std::ostream& log);
  std::vector<std::uint8_t> handle(Stream& s, const std::string& op, const nlohmann::json& meta,
                                   const std::vector<std::uint8_t>& payload, nlohmann::json& out);
  const host::PluginRegistry& registry_;
  net::NatsLink& link_;
  ServerOptions options_;
  std::map<std::string, std::unique_ptr<Stream>> streams_;
  std::map<std::string, std::shared_ptr<Model>> models_;  // shared by every stream
  std::map<std::string, std::chrono::steady_clock::time_point> compares_;  // announced, by id
  std::uint64_t jobs_ = 0, jobs_failed_ = 0;
  std::uint64_t batches_ = 0, batched_calls_ = 0;  // passes shared by streams, calls in them
  std::uint64_t calls_ = 0, opened_ = 0, closed_ = 0, errors_ = 0, dropped_ = 0, expired_ = 0;
  net::RejectCounts rejected_;
  std::atomic<bool> stop_{false};
};

}  // namespace oneadapt::split
