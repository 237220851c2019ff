// Experiments over the server pool (issue 18, `oneadapt compare --nats`; docs/deployment.md,
// "Distributed compare"): the comparison hands its expensive parts to the servers as jobs and
// gathers their results; the servers pull the jobs, so a server that is free takes the next one.
//
// Subjects: `oneadapt.v1.compare.announce` (the coordinator says, every second while jobs are
// left, that compare ID has work; every server that runs jobs hears it), then per comparison
// `oneadapt.v1.compare.ID.next` (a server asks for a job: the reply is one job or "none") and
// `oneadapt.v1.compare.ID.result` (a server hands a result in; the coordinator acknowledges).
// ID is a random token of the coordinator's: only who heard the announcement can take part; each
// job handed out carries a token of its own that its result must bring back.
// A job whose server is gone (NATS has no subscriber on its `oneadapt.v1.alive.SERVER` any more)
// is handed out again; a result that arrives twice is counted once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "net/nats_link.hpp"

namespace oneadapt::split {

inline constexpr const char* kCompareAnnounceSubject = "oneadapt.v1.compare.announce";
/// The subject a server listens on while it runs (`oneadapt.v1.alive.ID`): a coordinator learns
/// from NATS's "no responders" that the server is gone.
std::string alive_subject(const std::string& server);

/// One unit of an experiment: what the runner reads (meta) and its data (payload).
struct Job {
  std::string label;  ///< for progress lines: "grid 2/4", "oneadapt-beta0.3"
  nlohmann::json meta = nlohmann::json::object();
  std::vector<std::uint8_t> payload;
};

/// A job's result as the server returned it.
struct JobDone {
  nlohmann::json meta = nlohmann::json::object();
  std::vector<std::uint8_t> payload;
  std::string server;  ///< who ran it
  double seconds = 0;  ///< the server's time for it
};

/// The coordinator's side: hands `jobs` to the servers of the pool and returns their results in
/// the jobs' order. Throws Error with one line when a server reports a job's failure ("server S,
/// job LABEL: ..."), or when no server asks for a job within `wait_for_server`.
class JobPool {
 public:
  JobPool(net::NatsLink& link, nlohmann::json setup, std::chrono::milliseconds wait_for_server);
  std::vector<JobDone> run(std::vector<Job> jobs, std::ostream& progress);
  /// Per job run so far: label, server, seconds, times handed out again.
  const nlohmann::json& log() const { return log_; }
  const std::string& id() const { return id_; }
  /// Results not taken: damaged, of no job handed out, or without the job's token.
  std::uint64_t ignored() const { return ignored_; }

 private:
  net::NatsLink& link_;
  nlohmann::json setup_;
  std::chrono::milliseconds wait_;
  std::string id_;
  nlohmann::json log_ = nlohmann::json::array();
  std::uint64_t ignored_ = 0;
};

/// A server's side: runs one job of a comparison described by `setup` and returns its result;
/// throws Error (the line goes back to the coordinator) when it cannot.
using JobRunner = std::function<JobDone(const std::string& compare_id, const nlohmann::json& setup,
                                        const nlohmann::json& job,
                                        const std::vector<std::uint8_t>& payload)>;

/// Text deflated with zlib (jobs' tables and results).
std::vector<std::uint8_t> deflate_text(const std::string& text);
/// The text of deflate_text(); throws Error(corrupt_data) when it is not one or would inflate
/// past `max_bytes`.
std::string inflate_text(const std::vector<std::uint8_t>& packed,
                         std::size_t max_bytes = std::size_t{1} << 30);

}  // namespace oneadapt::split
