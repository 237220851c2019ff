#include "split/jobs.hpp"

#include <zlib.h>

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <ostream>
#include <random>

#include <oneadapt/error.hpp>

#include "adapt/harness.hpp"
#include "net/wire.hpp"

namespace oneadapt::split {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string random_id() {
  std::random_device rd;
  char buf[33];
  std::snprintf(buf, sizeof buf, "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  return buf;
}

}  // namespace

std::string alive_subject(const std::string& server) { return "oneadapt.v1.alive." + server; }

std::vector<std::uint8_t> deflate_text(const std::string& text) {
  uLongf n = compressBound(static_cast<uLong>(text.size()));
  std::vector<std::uint8_t> out(n);
  if (compress2(out.data(), &n, reinterpret_cast<const Bytef*>(text.data()),
                static_cast<uLong>(text.size()), 6) != Z_OK)
    throw Error(Errc::internal, "zlib could not deflate " + std::to_string(text.size()) + " bytes");
  out.resize(n);
  return out;
}

std::string inflate_text(const std::vector<std::uint8_t>& packed, std::size_t max_bytes) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) throw Error(Errc::internal, "zlib could not start inflating");
  z.next_in = const_cast<Bytef*>(packed.data());
  z.avail_in = static_cast<uInt>(packed.size());
  std::string out;
  char buf[1 << 16];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
    if (out.size() > max_bytes) rc = Z_MEM_ERROR;
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // truncated
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END || z.avail_in != 0)
    throw Error(Errc::corrupt_data, "a deflated block that does not inflate (" +
                                        std::to_string(packed.size()) + " bytes)");
  return out;
}

JobPool::JobPool(net::NatsLink& link, json setup, std::chrono::milliseconds wait_for_server)
    : link_(link), setup_(std::move(setup)), wait_(wait_for_server), id_(random_id()) {}

std::vector<JobDone> JobPool::run(std::vector<Job> jobs, std::ostream& progress) {
  const std::size_t n = jobs.size();
  std::vector<JobDone> out(n);
  if (n == 0) return out;
  const std::string base = "oneadapt.v1.compare." + id_;
  net::Subscription next = link_.subscribe(base + ".next");
  net::Subscription results = link_.subscribe(base + ".result");
  link_.flush();
  std::deque<std::size_t> pending;
  for (std::size_t k = 0; k < n; ++k) pending.push_back(k);
  struct Taken {
    std::string server;
    Clock::time_point since;
  };
  std::map<std::size_t, Taken> taken;
  std::vector<bool> finished(n, false);
  std::vector<int> again(n, 0);
  std::vector<std::vector<std::string>> tokens(n);  // each handout's token (in its reply only)
  std::size_t done = 0;
  bool anyone = false;
  const auto start = Clock::now();
  auto last_announce = start - 10s, last_check = start;
  const auto announce =
      net::encode({net::Kind::job, 0, json{{"op", "announce"}, {"compare", id_}}, {}});
  const auto none = net::encode({net::Kind::job, 0, json{{"op", "none"}}, {}});
  const auto ack = net::encode({net::Kind::job_result, 0, json{{"op", "ack"}}, {}});
  auto label = [&](std::size_t k) {
    return "[job " + std::to_string(k + 1) + "/" + std::to_string(n) + "] " + jobs[k].label;
  };
  while (done < n) {
    if (adapt::stop_signal())
      throw Error(Errc::interrupted, "the distributed compare was interrupted");
    const auto now = Clock::now();
    if (!pending.empty() && now - last_announce >= 1s) {
      link_.publish(kCompareAnnounceSubject, announce);
      last_announce = now;
    }
    if (!anyone && now - start > wait_)
      throw Error(Errc::io, link_.url() + ": no server took a job of this comparison within " +
                                std::to_string(wait_.count() / 1000) +
                                " s (servers run compare jobs when started with --jobs-dir)");
    // A server asks for a job.
    if (auto m = next.next(20ms)) {
      auto d = net::decode(m->data(), m->size());
      const auto* msg = std::get_if<net::Message>(&d);
      const std::string server =
          msg && msg->meta.contains("server") && msg->meta["server"].is_string()
              ? msg->meta["server"].get<std::string>()
              : std::string();
      if (msg && net::valid_stream_id(server) && !m->reply().empty()) {
        if (pending.empty()) {
          link_.publish(m->reply(), none);
        } else {
          const std::size_t k = pending.front();
          pending.pop_front();
          json work = jobs[k].meta;
          work["label"] = jobs[k].label;
          const std::string token = random_id();
          net::Message job{net::Kind::job, k,
                           json{{"op", "job"},
                                {"compare", id_},
                                {"job", k},
                                {"token", token},
                                {"setup", setup_},
                                {"work", work}},
                           jobs[k].payload};
          link_.publish(m->reply(), net::encode(job));
          taken[k] = {server, Clock::now()};
          tokens[k].push_back(token);
          anyone = true;
          progress << label(k) << " to " << server << '\n' << std::flush;
        }
      }
    }
    // Results handed in.
    for (int r = 0; r < 16; ++r) {
      auto m = results.next(r == 0 ? 5ms : 1ms);
      if (!m) break;
      auto d = net::decode(m->data(), m->size());
      if (!m->reply().empty()) link_.publish(m->reply(), ack);
      const auto* msg = std::get_if<net::Message>(&d);
      if (!msg || msg->kind != net::Kind::job_result || msg->interval >= n) {
        ++ignored_;
        continue;
      }
      const std::size_t k = static_cast<std::size_t>(msg->interval);
      if (finished[k]) continue;  // a second delivery of a result already taken
      const json& meta = msg->meta;
      // A result counts only with the token of one of the job's handouts (a result of a job
      // handed out again after its server was thought gone is taken as well).
      const std::string token = meta.contains("token") && meta["token"].is_string()
                                    ? meta["token"].get<std::string>()
                                    : std::string();
      if (token.empty() ||
          std::find(tokens[k].begin(), tokens[k].end(), token) == tokens[k].end()) {
        ++ignored_;
        continue;
      }
      const std::string server = meta.value("server", std::string("?"));
      if (meta.contains("error")) {
        const int code = meta.value("code", static_cast<int>(Errc::io));
        throw Error(code >= 1 && code <= static_cast<int>(Errc::interrupted) ? static_cast<Errc>(code)
                                                                            : Errc::io,
                    "server " + server + ", job " + jobs[k].label + ": " +
                                      meta.value("error", std::string("failed")));
      }
      JobDone& o = out[k];
      o.meta = meta.value("result", json::object());
      o.payload = msg->payload;
      o.server = server;
      o.seconds = meta.value("seconds", 0.0);
      finished[k] = true;
      taken.erase(k);
      ++done;
      log_.push_back(json{{"job", jobs[k].label},
                          {"server", server},
                          {"seconds", o.seconds},
                          {"handed_out_again", again[k]}});
      char line[96];
      std::snprintf(line, sizeof line, " done on %s in %.1f s (%zu of %zu)\n", server.c_str(),
                    o.seconds, done, n);
      progress << label(k) << line << std::flush;
    }
    // A server that is gone (NATS has no subscriber for it any more) gives its jobs back.
    if (Clock::now() - last_check >= 2s) {
      for (auto it = taken.begin(); it != taken.end();) {
        if (link_.ping(alive_subject(it->second.server), 300ms) ==
            net::NatsLink::Presence::gone) {
          progress << label(it->first) << ": server " << it->second.server
                   << " is gone; handed out again\n"
                   << std::flush;
          ++again[it->first];
          pending.push_front(it->first);
          it = taken.erase(it);
        } else {
          ++it;
        }
      }
      last_check = Clock::now();
    }
  }
  return out;
}

}  // namespace oneadapt::split
