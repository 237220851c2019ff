// The server of the source/server split (core/src/split/split.hpp) against bad messages on every
// subject, over a real nats-server started on a free loopback port: garbage, another version,
// the wrong kind, malformed or refused hellos, calls to a stream that is not served, unknown
// operations, damaged media, unknown result handles. Each gets an error answer naming the
// problem, is counted, and the server goes on serving (a good call afterwards still works).
// ATen (through split.hpp) before doctest: glog's CHECK must not replace doctest's (stack.md G2).
#include <ATen/ATen.h>

#include <doctest/doctest.h>

#include <iostream>
#include <sstream>
#include <thread>

#include "../guard.hpp"
#include "../support.hpp"
#include "run_config.hpp"
#include "nats_server.hpp"
#include "net/wire.hpp"
#include "split/jobs.hpp"
#include "split/split.hpp"

using namespace oneadapt;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

struct Answer {
  bool ok = false;  // a message that is not an error
  std::string error;
  net::Message message;
};

Answer ask(net::NatsLink& link, const std::string& subject,
           const std::vector<std::uint8_t>& bytes) {
  net::Received r = link.request(subject, bytes, 20s);
  auto d = net::decode(r.data(), r.size());
  Answer a;
  if (auto* rej = std::get_if<net::Rejection>(&d)) {
    a.error = "the answer is not a message: " + rej->text;
    return a;
  }
  a.message = std::get<net::Message>(d);
  a.error = a.message.meta.value("error", std::string());
  a.ok = a.error.empty();
  return a;
}

std::vector<std::uint8_t> envelope(net::Kind kind, json meta,
                                   std::vector<std::uint8_t> payload = {}) {
  net::Message m;
  m.kind = kind;
  m.meta = std::move(meta);
  m.payload = std::move(payload);
  return net::encode(m);
}

// A server serving on its own thread until join() (or the end of the scope); its log in `log`.
// The log is written by the serving thread: read it only after join(), or as here while
// waiting for the first line.
struct Serving {
  explicit Serving(split::Server& s) : server(s), thread([this] { server.serve(log); }) {
    for (int i = 0; i < 100 && log.str().find("serving on") == std::string::npos; ++i)
      std::this_thread::sleep_for(20ms);
  }
  void join() {
    server.stop();
    if (thread.joinable()) thread.join();
  }
  ~Serving() { join(); }
  split::Server& server;
  std::ostringstream log;
  std::thread thread;
};

// The test user's link to `nats`.
net::LinkOptions link_to(const test::NatsServer& nats) {
  net::LinkOptions lo;
  lo.url = nats.url();
  lo.credentials = net::Credentials{"oneadapt", "s3cret"};
  return lo;
}

// A real stream's hello: the video source's format and the detection task's default model.
split::StreamHello camera_hello(const host::HostSource& source) {
  split::StreamHello hello;
  hello.stream = "cam-1";
  hello.modality = "video";
  hello.format = source.stream_format();
  hello.task = "detection";
  return hello;
}

}  // namespace

TEST_CASE("split server: bad messages on every subject get one error each and it keeps serving") {
  if (!test::nats_server_binary()) TEST_SKIP("nats-server is not installed (tools/install-deps)");
  test::NatsServer nats({"oneadapt", "s3cret"});
  const net::LinkOptions lo = link_to(nats);
  auto& registry = test_support::plugins();
  net::NatsLink server_link(lo);
  split::ServerOptions so;
  so.id = "t1";
  split::Server server(registry, server_link, so);
  Serving serving(server);
  std::ostringstream& log = serving.log;
  net::NatsLink client(lo);

  auto source = registry.open_source("video", resolve_asset_uri("asset:video/vtest.avi"), {}, 1.0);
  split::StreamHello hello = camera_hello(source);
  const std::string hello_subject = split::kHelloSubject;

  // --- the hello subject
  CHECK(ask(client, hello_subject, {1, 2, 3}).error.find("not a message") != std::string::npos);
  {
    auto bytes = envelope(net::Kind::hello, hello.to_json());
    bytes[4] = 7;  // another version of the protocol
    CHECK(ask(client, hello_subject, bytes).error.find("version") != std::string::npos);
  }
  CHECK(ask(client, hello_subject, envelope(net::Kind::call, hello.to_json()))
            .error.find("expected a hello") != std::string::npos);
  CHECK(ask(client, hello_subject, envelope(net::Kind::hello, json{{"stream", "x"}}))
            .error.find("hello: ") != std::string::npos);
  {
    auto h = hello;
    h.modality = "sonar";
    CHECK(ask(client, hello_subject, envelope(net::Kind::hello, h.to_json()))
              .error.find("no modality named 'sonar'") != std::string::npos);
    h = hello;
    h.stream = "cam.1";  // not a subject token
    CHECK(ask(client, hello_subject, envelope(net::Kind::hello, h.to_json()))
              .error.find("stream id 'cam.1'") != std::string::npos);
    h = hello;
    h.models["nope"] = "asset:nanodet/nanodet.json";
    CHECK(ask(client, hello_subject, envelope(net::Kind::hello, h.to_json()))
              .error.find("no model role 'nope'") != std::string::npos);
    h = hello;
    h.models["detector"] = "/etc/passwd";  // a file of the server's: only its assets are loaded
    CHECK(ask(client, hello_subject, envelope(net::Kind::hello, h.to_json()))
              .error.find("this server loads assets only") != std::string::npos);
    h.models["detector"] = "asset:../../../etc/passwd";
    CHECK(ask(client, hello_subject, envelope(net::Kind::hello, h.to_json()))
              .error.find("not an asset name") != std::string::npos);
    h = hello;
    h.format["width"] = "-5";
    CHECK_FALSE(ask(client, hello_subject, envelope(net::Kind::hello, h.to_json())).ok);
  }
  const Answer welcome = ask(client, hello_subject, envelope(net::Kind::hello, hello.to_json()));
  REQUIRE_MESSAGE(welcome.ok, welcome.error);
  CHECK(welcome.message.kind == net::Kind::welcome);
  const std::string subject = welcome.message.meta.at("subject").get<std::string>();
  std::string token = welcome.message.meta.at("token").get<std::string>();
  CHECK(subject == "oneadapt.v1.task.t1.cam-1");
  CHECK(token.size() == 32);
  // Every call of the stream carries its token.
  auto call = [&](json meta, std::vector<std::uint8_t> payload = {}) {
    meta["token"] = token;
    return envelope(net::Kind::call, std::move(meta), std::move(payload));
  };
  // Another client cannot take the stream's id, nor call or close it without the token.
  CHECK(ask(client, hello_subject, envelope(net::Kind::hello, hello.to_json()))
            .error.find("stream id 'cam-1' is in use here") != std::string::npos);
  // A source failing over carries the tokens of every server that took its stream (the
  // queue group may bring the hello back to a server it gave up as slow): one of them being
  // this stream's, it takes the stream back here (a fresh stream, a new token).
  {
    json h = hello.to_json();
    const std::string other(32, 'f');
    h["token"] = other;
    h["tokens"] = json::array({other, std::string(32, '0')});
    CHECK(ask(client, hello_subject, envelope(net::Kind::hello, h))
              .error.find("is in use here") != std::string::npos);
    h["tokens"] = json::array();
    for (int i = 0; i < 16; ++i) h["tokens"].push_back(other);
    h["tokens"].push_back(token);  // 17: more than a source keeps
    CHECK(ask(client, hello_subject, envelope(net::Kind::hello, h))
              .error.find("is in use here") != std::string::npos);
    h["tokens"] = json::array({other, token});
    const Answer again = ask(client, hello_subject, envelope(net::Kind::hello, h));
    REQUIRE_MESSAGE(again.ok, again.error);
    CHECK(again.message.meta.at("token").get<std::string>() != token);
    token = again.message.meta.at("token").get<std::string>();
    CHECK(token.size() == 32);
  }
  {
    json m{{"op", "close"}, {"token", std::string(32, '0')}};
    CHECK(ask(client, subject, envelope(net::Kind::call, m)).error.find("token") !=
          std::string::npos);
    CHECK(ask(client, subject, envelope(net::Kind::call, json{{"op", "reset"}}))
              .error.find("token") != std::string::npos);
  }
  // An error quoting a huge client string stays one short line, and the server lives on.
  {
    const Answer a = ask(client, subject, call(json{{"op", std::string(250000, 'A')}}));
    CHECK(a.error.find("unknown operation") != std::string::npos);
    CHECK(a.error.size() < 1100);
  }

  // --- the stream's subject
  CHECK(
      ask(client, subject, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
          .error.find("not a message") != std::string::npos);
  CHECK(ask(client, subject, envelope(net::Kind::hello, json{{"op", "reset"}}))
            .error.find("expected a call") != std::string::npos);
  CHECK(ask(client, subject, call(json{{"op", "frobnicate"}}))
            .error.find("unknown operation 'frobnicate'") != std::string::npos);
  CHECK(ask(client, "oneadapt.v1.task.t1.cam-2", envelope(net::Kind::call, json{{"op", "reset"}}))
            .error.find("stream 'cam-2' is not served here") != std::string::npos);
  CHECK(ask(client, subject, call(json{{"op", "infer"}})).error.find("a malformed call") !=
        std::string::npos);
  CHECK(ask(client, subject, call(json{{"op", "accuracy"}, {"results", {41}}, {"reference", {42}}}))
            .error.find("no result #41") != std::string::npos);
  {
    // An interval's worth of garbage where the H.264 fragment should be.
    IntervalInfo info;
    source.next_interval(info);
    const auto knobs = source.knobs();
    const Configuration c = Configuration::most_expensive(knobs);
    json cfg = json::array();
    for (const auto& s : c.settings())
      cfg.push_back(json::array({s.key, s.index, s.value.number, s.value.label}));
    json meta{{"op", "infer"},
              {"config", cfg},
              {"info",
               {{"index", info.index},
                {"t_start", info.t_start},
                {"duration", info.duration},
                {"samples", info.samples}}},
              {"fresh", json::array()},
              {"grad", true}};
    const Answer a = ask(client, subject, call(meta, std::vector<std::uint8_t>(5000, 0x5a)));
    CHECK_FALSE(a.ok);
    CHECK(a.message.meta.value("code", 0) == static_cast<int>(Errc::corrupt_data));
    meta["fresh"] = json::array({1, 0});  // not one flag per sample
    CHECK(ask(client, subject, call(meta, {1})).error.find("fresh has 2 entries") !=
          std::string::npos);
    meta["fresh"] = json::array();
    meta["info"]["samples"] = 0;
    CHECK(ask(client, subject, call(meta, {1})).error.find("info.samples must be at least 1") !=
          std::string::npos);
    meta["info"]["samples"] = info.samples;
    meta["info"]["index"] = -1;
    CHECK(ask(client, subject, call(meta, {1})).error.find("info.index must be a non-negative") !=
          std::string::npos);
  }
  // Still serving: a good call works after all of that.
  CHECK(ask(client, subject, call(json{{"op", "reset"}})).ok);
  CHECK(ask(client, subject, call(json{{"op", "close"}})).ok);
  CHECK(ask(client, subject, call(json{{"op", "reset"}})).error.find("not served here") !=
        std::string::npos);

  serving.join();
  const json status = server.status();
  CHECK(status.at("rejected").at("truncated").get<int>() == 1);
  CHECK(status.at("rejected").at("bad_magic").get<int>() == 1);
  CHECK(status.at("rejected").at("wrong_version").get<int>() == 1);
  CHECK(status.at("opened").get<int>() == 2);
  CHECK(status.at("closed").get<int>() == 1);
  CHECK(status.at("errors").get<int>() >= 12);
  CHECK(log.str().find("stream cam-1 opened (video, detection)") != std::string::npos);
  CHECK(log.str().find("it replaces the stream of that id") != std::string::npos);
}

// A source fails over from server A to B (A stopped answering), then from B back to A, which
// still holds the stream from before (a server given up as slow under load does): A must give
// it back on the token A gave (CI found a source refused there as a stranger, "in use here").
TEST_CASE("split fail-over: back to a server that still holds the stream") {
  if (!test::nats_server_binary()) TEST_SKIP("nats-server is not installed (tools/install-deps)");
  test::NatsServer nats({"oneadapt", "s3cret"});
  const net::LinkOptions lo = link_to(nats);
  auto& registry = test_support::plugins();
  net::NatsLink link_a(lo), link_b(lo), client(lo);
  split::ServerOptions oa, ob;
  oa.id = "ta";
  ob.id = "tb";
  split::Server a(registry, link_a, oa), b(registry, link_b, ob);

  auto source = registry.open_source("video", resolve_asset_uri("asset:video/vtest.avi"), {}, 1.0);
  const split::StreamHello hello = camera_hello(source);

  auto serving_a = std::make_unique<Serving>(a);
  // Every server (not only one that runs compare's jobs) answers its alive subject: a source
  // in a call probes it to tell a busy server from a gone one.
  CHECK(client.ping(split::alive_subject("ta"), 5s) == net::NatsLink::Presence::answered);
  CHECK(client.ping(split::alive_subject("tb"), 5s) == net::NatsLink::Presence::gone);
  split::RemoteInference remote(client, hello, 3s);
  CHECK(remote.server() == "ta");
  serving_a.reset();  // A stops answering, its stream kept
  {
    Serving serving_b(b);
    remote.reset();  // no responders at A: B takes the stream
    CHECK(remote.server() == "tb");
    serving_a = std::make_unique<Serving>(a);
  }  // B stops answering
  remote.reset();  // the queue group has A only: A gives the stream back
  CHECK(remote.server() == "ta");
  REQUIRE(remote.failovers().size() == 2);
  CHECK(remote.failovers()[0].at("to") == "tb");
  CHECK(remote.failovers()[1].at("from") == "tb");
  CHECK(remote.failovers()[1].at("to") == "ta");
  remote.close();
  serving_a->join();
  CHECK(serving_a->log.str().find("it replaces the stream of that id") != std::string::npos);
  CHECK(a.status().at("closed").get<int>() == 1);
}

// The jobs of a distributed compare (split/jobs.hpp): a pool hands jobs to a server's runner
// and gets their results back in order; a job the runner refuses fails the pool with one line
// naming the server and the job; garbage on the announce and result subjects is counted or
// ignored; with no server that runs jobs the pool gives up after its wait.
TEST_CASE("split jobs: results in order, a refused job is one error, garbage is ignored") {
  if (!test::nats_server_binary()) TEST_SKIP("nats-server is not installed (tools/install-deps)");
  test::NatsServer nats({"oneadapt", "s3cret"});
  const net::LinkOptions lo = link_to(nats);
  net::NatsLink client(lo);
  {
    split::JobPool nobody(client, json{{"what", "nothing"}}, 1500ms);
    split::Job j;
    j.label = "lonely";
    CHECK_THROWS_WITH_AS(nobody.run({j}, std::cerr),
                         doctest::Contains("no server took a job of this comparison within 1 s"),
                         Error);
  }
  auto& registry = test_support::plugins();
  net::NatsLink server_link(lo);
  split::ServerOptions so;
  so.id = "j1";
  so.jobs = [](const std::string& id, const json& setup, const json& work,
               const std::vector<std::uint8_t>& payload) {
    if (work.value("fail", false))
      throw Error(Errc::invalid_argument, "refused " + work.value("label", std::string()));
    if (work.at("x").get<int>() == 0) std::this_thread::sleep_for(500ms);  // the noise lands
    split::JobDone d;
    d.meta = json{{"twice", work.at("x").get<int>() * 2}, {"setup", setup}, {"id", id}};
    d.payload.assign(payload.rbegin(), payload.rend());
    return d;
  };
  split::Server server(registry, server_link, so);
  Serving serving(server);

  client.publish(split::kCompareAnnounceSubject, {1, 2, 3});  // garbage: counted, ignored
  client.publish(split::kCompareAnnounceSubject,
                 envelope(net::Kind::job, json{{"op", "announce"}, {"compare", "no.such"}}));
  split::JobPool pool(client, json{{"config", "c.toml"}}, 10s);
  std::vector<split::Job> jobs;
  for (int x = 0; x < 5; ++x)
    jobs.push_back({"job" + std::to_string(x), json{{"x", x}}, {std::uint8_t(x), 7, 9}});
  std::thread noise([&] {  // garbage on the pool's own subjects while it runs
    const std::string base = "oneadapt.v1.compare." + pool.id();
    std::this_thread::sleep_for(150ms);  // the pool listens by now
    for (int i = 0; i < 5; ++i) {
      client.publish(base + ".result", {0, 1});
      // A forged result: right subject and job, no token.
      client.publish(base + ".result", envelope(net::Kind::job_result, json{{"server", "x"}}));
    }
    for (int i = 0; i < 3; ++i) {
      try {
        client.request(base + ".next", {9, 9, 9}, 20ms);  // not answered, not counted
      } catch (const Error&) {
      }
    }
  });
  const auto done = pool.run(jobs, std::cerr);
  noise.join();
  REQUIRE(done.size() == 5);
  for (int x = 0; x < 5; ++x) {
    CHECK(done[x].server == "j1");
    CHECK(done[x].meta.at("twice").get<int>() == 2 * x);
    CHECK(done[x].meta.at("setup").at("config") == "c.toml");
    CHECK(done[x].meta.at("id") == pool.id());
    CHECK(done[x].payload == std::vector<std::uint8_t>{9, 7, std::uint8_t(x)});
  }
  CHECK(pool.log().size() == 5);
  CHECK(pool.ignored() == 10);

  split::JobPool refused(client, json::object(), 10s);
  CHECK_THROWS_WITH_AS(refused.run({{"bad one", json{{"x", 1}, {"fail", true}}, {}}}, std::cerr),
                       doctest::Contains("server j1, job bad one: refused bad one"), Error);

  // Deflated text round-trips; damaged or over-long input is one error.
  const std::string text(100000, 'z');
  CHECK(split::inflate_text(split::deflate_text(text)) == text);
  auto packed = split::deflate_text(text);
  packed.resize(packed.size() / 2);
  CHECK_THROWS_AS(split::inflate_text(packed), Error);
  CHECK_THROWS_AS(split::inflate_text({1, 2, 3, 4}), Error);
  CHECK_THROWS_AS(split::inflate_text(split::deflate_text(text), 1000), Error);

  serving.join();
  const json status = server.status();
  CHECK(status.at("jobs").get<int>() == 5);
  CHECK(status.at("jobs_failed").get<int>() == 1);
  CHECK(status.at("rejected").at("truncated").get<int>() >= 1);
}
