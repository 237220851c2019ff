// NATS under the source/server split (core/src/net/nats_link.hpp), against a real nats-server
// started by each test on a free loopback port (tests/net/nats_server.hpp): authentication
// (a client without credentials is refused), request/reply, JetStream's at-least-once delivery
// with a durable consumer that resumes, key-value claims by revision, and garbage on a subject
// rejected and counted by the receiver.
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <oneadapt/error.hpp>
#include <thread>

#include "guard.hpp"
#include "net/nats_link.hpp"
#include "net/nats_server.hpp"
#include "net/wire.hpp"

using namespace oneadapt::net;
using namespace std::chrono_literals;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const oneadapt::Error& e) {
    return e.what();
  }
  return "(no error)";
}

struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& text) {
    path = std::filesystem::temp_directory_path() /
           ("oneadapt-auth-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    std::ofstream(path, std::ios::binary) << text;
    std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                           std::filesystem::perms::owner_write);
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

std::vector<std::uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string text(const Received& r) {
  return std::string(reinterpret_cast<const char*>(r.data()), r.size());
}

LinkOptions as(const test::NatsServer& server, std::optional<Credentials> c) {
  LinkOptions o;
  o.url = server.url();
  o.credentials = std::move(c);
  o.reconnect = false;
  return o;
}

// One client publishes "signed" on a subject the other subscribes to: what the other received.
std::string delivered(const test::NatsServer& server, const Credentials& from,
                      const Credentials& to) {
  NatsLink a(as(server, from));
  NatsLink b(as(server, to));
  auto sub = b.subscribe("oneadapt.test.delivered");
  b.flush();
  a.publish("oneadapt.test.delivered", bytes("signed"));
  a.flush();
  auto got = sub.next(2000ms);
  return got ? text(*got) : std::string("(nothing)");
}

}  // namespace

TEST_CASE("nats: the auth file holds one line user:password") {
  {
    TempFile f("alice:s3cret:with-colon\n");
    const auto c = read_auth_file(f.path);
    CHECK(c.user == "alice");
    CHECK(c.password == "s3cret:with-colon");
  }
  const std::string form = " (it holds one line user:password, or a user's nkey seed SU...)";
  const std::pair<std::string, std::string> bad[] = {
      {"", "the auth file is empty" + form},
      {"\n", "the auth file is empty" + form},
      {"alice", "no ':' in the auth file's line (expected user:password or an nkey seed SU...)"},
      {":pw", "the user before ':' is empty"},
      {"alice:", "the password after ':' is empty"},
      {"alice:pw\nbob:pw2\n", "the auth file has more than one line" + form},
      {std::string(5000, 'a'), "the auth file is over 4096 bytes" + form},
      {std::string("alice:p\0w", 9), "the auth file holds a NUL byte" + form},
  };
  for (const auto& [content, why] : bad) {
    TempFile f(content);
    CHECK(error_of([&] { read_auth_file(f.path); }) == f.path.string() + ": " + why);
  }
  CHECK(error_of([] { read_auth_file("/nonexistent/auth"); }) ==
        "/nonexistent/auth: no such auth file");
  {
    TempFile f("\xEF\xBB\xBF" "bob:pw\r\n");  // a BOM and a CRLF line end, as Windows editors write
    const auto c = read_auth_file(f.path);
    CHECK(c.user == "bob");
    CHECK(c.password == "pw");
    // Like an ssh key: refused when others can read it, and the password never in the error.
    std::filesystem::permissions(f.path, std::filesystem::perms::group_read,
                                 std::filesystem::perm_options::add);
    CHECK(error_of([&] { read_auth_file(f.path); }) ==
          f.path.string() + ": the auth file is readable by group or others (chmod 600 it)");
  }
}

TEST_CASE("nats: an nkey seed in the auth file authenticates, another key is refused") {
  // The user key pair of the NATS documentation's nkey example (docs.nats.io, "NKeys").
  CHECK(nkey_public_key("SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY") ==
        "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4");
  std::array<std::uint8_t, 32> raw{};
  for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<std::uint8_t>(7 * i + 1);
  const std::string seed = nkey_user_seed(raw);
  CHECK(seed.size() == 58);
  CHECK(seed.rfind("SU", 0) == 0);
  const std::string pub = nkey_public_key(seed);
  CHECK(pub.size() == 56);
  CHECK(pub.rfind("U", 0) == 0);
  {
    TempFile f(seed + "\n");
    const auto c = read_auth_file(f.path);
    CHECK(c.nkey_seed == seed);
    CHECK(c.nkey == pub);
    CHECK(c.user.empty());
  }
  // A typo, another kind of key, a cut seed: one line each, never quoting the seed.
  std::string typo = seed;
  typo[20] = typo[20] == 'A' ? 'B' : 'A';
  std::string account = seed;
  account[1] = 'A';  // SA...: an account's seed (its checksum is wrong too, checked first)
  const std::pair<std::string, std::string> bad[] = {
      {typo, "not a user's nkey seed: its checksum does not match (a typo?)"},
      {seed.substr(0, 40), "not a user's nkey seed: 58 characters expected, not 40"},
      {"S" + std::string(57, '1'), "not a user's nkey seed: not base32 (A-Z, 2-7)"},
  };
  for (const auto& [content, why] : bad) {
    TempFile f(content);
    const std::string e = error_of([&] { read_auth_file(f.path); });
    CHECK(e == f.path.string() + ": " + why);
    CHECK(e.find(seed.substr(2, 20)) == std::string::npos);
  }
  CHECK_THROWS_AS(nkey_public_key(account), oneadapt::Error);

  if (!test::nats_server_binary()) TEST_SKIP("nats-server is not installed (tools/install-deps)");
  test::NatsServer::Options so;
  so.nkey = pub;
  test::NatsServer server(so);
  Credentials c;
  c.nkey_seed = seed;
  c.nkey = pub;
  CHECK(delivered(server, c, c) == "signed");
  // Another user's key, and no credentials: refused.
  raw[0] ^= 0xff;
  Credentials other;
  other.nkey_seed = nkey_user_seed(raw);
  other.nkey = nkey_public_key(other.nkey_seed);
  CHECK(other.nkey != pub);
  const std::string e = error_of([&] { NatsLink link(as(server, other)); });
  CHECK(e.rfind(server.url() + ": the server refused the credentials (nkey " + other.nkey + ")", 0) == 0);
  CHECK(error_of([&] { NatsLink link(as(server, std::nullopt)); }).find("refused") != std::string::npos);
}

TEST_CASE("nats: a client without credentials, or with wrong ones, is refused") {
  if (!test::nats_server_binary()) TEST_SKIP("nats-server is not installed (tools/install-deps)");
  test::NatsServer server({"oneadapt", "pa55word"});
  const std::string none = error_of([&] { NatsLink link(as(server, std::nullopt)); });
  CHECK(none.rfind(server.url() + ": the server refused the credentials (none given: pass --auth FILE)", 0) == 0);
  const std::string wrong =
      error_of([&] { NatsLink link(as(server, Credentials{"oneadapt", "guess"})); });
  CHECK(wrong.rfind(server.url() + ": the server refused the credentials (user 'oneadapt')", 0) == 0);
  // The right ones connect, and messages flow.
  CHECK(delivered(server, Credentials{"oneadapt", "pa55word"},
                  Credentials{"oneadapt", "pa55word"}) == "signed");
}

TEST_CASE("nats: no server at the URL is one clear error, without the URL's password") {
  LinkOptions o;
  const std::string port = std::to_string(test::free_loopback_port());
  o.url = "nats://127.0.0.1:" + port;
  o.reconnect = false;
  o.connect_timeout = 500ms;
  CHECK(error_of([&] { NatsLink link(o); }) ==
        o.url + ": no NATS server answers there (is nats-server running?)");
  o.url = "nats://someone:hunter2@127.0.0.1:" + port;
  CHECK(error_of([&] { NatsLink link(o); }) ==
        "nats://127.0.0.1:" + port + ": no NATS server answers there (is nats-server running?)");
}

TEST_CASE("nats: request and reply, and a request nobody serves") {
  if (!test::nats_server_binary()) TEST_SKIP("nats-server is not installed (tools/install-deps)");
  test::NatsServer server({});
  NatsLink served(as(server, std::nullopt));
  NatsLink client(as(server, std::nullopt));
  auto sub = served.subscribe("oneadapt.test.echo", "servers");
  served.flush();
  std::thread replier([&] {
    auto req = sub.next(5000ms);
    if (req) served.publish(req->reply(), bytes("echo:" + text(*req)));
    served.flush();
  });
  const auto reply = client.request("oneadapt.test.echo", bytes("42"), 5000ms);
  replier.join();
  CHECK(text(reply) == "echo:42");
  CHECK(error_of([&] { client.request("oneadapt.test.nobody", bytes("x"), 1000ms); }) ==
        server.url() + ": nobody serves oneadapt.test.nobody (no server running?)");
}

// A request that probes its receiver while it waits (what a source does during a call): a busy
// receiver that answers after several probes is waited for, one whose process dies in the
// middle (its connection closed: NATS drops its subscriptions) is given up at the next probe,
// long before the timeout, and one that is there but never answers hits the timeout.
TEST_CASE("nats: a probing request waits for a busy receiver and gives up a gone one at once") {
  if (!test::nats_server_binary()) TEST_SKIP("nats-server is not installed (tools/install-deps)");
  test::NatsServer server({});
  NatsLink client(as(server, std::nullopt));
  int probes = 0;
  auto probe = [&] {
    ++probes;
    return client.ping("oneadapt.test.alive", 100ms) != NatsLink::Presence::gone;
  };
  {  // busy: answers after 1.2 s, probed every 200 ms
    NatsLink served(as(server, std::nullopt));
    auto work = served.subscribe("oneadapt.test.slow");
    auto alive = served.subscribe("oneadapt.test.alive");
    served.flush();
    std::thread replier([&] {
      auto req = work.next(5000ms);
      std::this_thread::sleep_for(1200ms);
      if (req) served.publish(req->reply(), bytes("late:" + text(*req)));
      served.flush();
    });
    const auto reply = client.request("oneadapt.test.slow", bytes("7"), 10000ms, 200ms, probe);
    replier.join();
    CHECK(text(reply) == "late:7");
    CHECK(probes >= 3);
  }
  {  // gone in the middle: its link closes 500 ms after the request arrived
    auto served = std::make_unique<NatsLink>(as(server, std::nullopt));
    auto work = served->subscribe("oneadapt.test.dies");
    auto alive = served->subscribe("oneadapt.test.alive");
    served->flush();
    std::thread killer([&] {
      auto req = work.next(5000ms);
      std::this_thread::sleep_for(500ms);
      alive = Subscription();
      work = Subscription();
      served.reset();  // the process's connection closes
    });
    const auto t0 = std::chrono::steady_clock::now();
    const std::string e =
        error_of([&] { client.request("oneadapt.test.dies", bytes("x"), 20000ms, 200ms, probe); });
    const auto waited = std::chrono::steady_clock::now() - t0;
    killer.join();
    CHECK(e.find("gave up: the receiver is gone") != std::string::npos);
    CHECK(e.find("oneadapt.test.dies") != std::string::npos);
    CHECK(waited < 10s);  // far from the 20 s timeout (a probe every 200 ms)
  }
  {  // there but silent: the timeout still ends the wait
    NatsLink served(as(server, std::nullopt));
    auto work = served.subscribe("oneadapt.test.silent");
    auto alive = served.subscribe("oneadapt.test.alive");
    served.flush();
    CHECK(error_of([&] {
            client.request("oneadapt.test.silent", bytes("x"), 800ms, 200ms, probe);
          }) == server.url() + ": no reply on oneadapt.test.silent within 800 ms");
  }
  // Nobody subscribes: told at once, as by request().
  CHECK(error_of([&] {
          client.request("oneadapt.test.nobody", bytes("x"), 5000ms, 200ms, probe);
        }) == server.url() + ": nobody serves oneadapt.test.nobody (no server running?)");
}

TEST_CASE("nats: JetStream delivers at least once and a durable consumer resumes") {
  if (!test::nats_server_binary()) TEST_SKIP("nats-server is not installed (tools/install-deps)");
  test::NatsServer server({"u", "p"});
  NatsLink link(as(server, Credentials{"u", "p"}));
  link.ensure_stream("OA_TEST", {"oneadapt.test.data.>"});
  link.ensure_stream("OA_TEST", {"oneadapt.test.data.>"});  // idempotent
  for (int i = 1; i <= 3; ++i)
    CHECK(link.js_publish("oneadapt.test.data.cam-1", bytes("interval " + std::to_string(i))) ==
          static_cast<std::uint64_t>(i));
  CHECK(error_of([&] { link.js_publish("oneadapt.test.elsewhere", bytes("x")); }) ==
        server.url() + ": no JetStream stream takes oneadapt.test.elsewhere");
  {
    // A consumer that takes all three but acknowledges only the first two, then dies.
    NatsLink first(as(server, Credentials{"u", "p"}));
    auto sub = first.pull_subscribe("oneadapt.test.data.cam-1", "server-cam-1", 500ms);
    auto msgs = sub.fetch(3, 2000ms);
    REQUIRE(msgs.size() == 3);
    CHECK(text(msgs[0]) == "interval 1");
    msgs[0].ack();
    msgs[1].ack();
    first.flush();
  }
  // Another process with the same durable name gets the unacknowledged one again, and only it.
  NatsLink second(as(server, Credentials{"u", "p"}));
  auto sub = second.pull_subscribe("oneadapt.test.data.cam-1", "server-cam-1", 500ms);
  std::vector<std::string> seen;
  for (int tries = 0; tries < 10 && seen.empty(); ++tries)
    for (auto& m : sub.fetch(5, 1000ms)) {
      seen.push_back(text(m));
      m.ack();
    }
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == "interval 3");
}

TEST_CASE("nats: a key-value claim succeeds once and updates need the last revision") {
  if (!test::nats_server_binary()) TEST_SKIP("nats-server is not installed (tools/install-deps)");
  test::NatsServer server({});
  NatsLink a(as(server, std::nullopt));
  NatsLink b(as(server, std::nullopt));
  auto kva = a.key_value("oneadapt-test-owners");
  auto kvb = b.key_value("oneadapt-test-owners");
  CHECK_FALSE(kva.get("cam-1").has_value());
  const auto rev = kva.create("cam-1", bytes("server-a"));
  REQUIRE(rev.has_value());
  CHECK_FALSE(kvb.create("cam-1", bytes("server-b")).has_value());  // taken
  const auto got = kvb.get("cam-1");
  REQUIRE(got.has_value());
  CHECK(got->value == bytes("server-a"));
  CHECK(got->revision == *rev);
  // A takeover: b replaces a's claim over the revision it read; a's stale update then fails.
  const auto rev_b = kvb.update("cam-1", bytes("server-b"), got->revision);
  REQUIRE(rev_b.has_value());
  CHECK_FALSE(kva.update("cam-1", bytes("server-a again"), *rev).has_value());
  CHECK(kva.get("cam-1")->value == bytes("server-b"));
  CHECK(kva.put("state-cam-1", bytes("{\"theta\":[1,0.5]}")) > 0);
  kva.erase("state-cam-1");
  CHECK_FALSE(kva.get("state-cam-1").has_value());
}

TEST_CASE("nats: garbage on a subject is rejected and counted by the receiver") {
  if (!test::nats_server_binary()) TEST_SKIP("nats-server is not installed (tools/install-deps)");
  test::NatsServer server({});
  NatsLink rx(as(server, std::nullopt));
  NatsLink tx(as(server, std::nullopt));
  auto sub = rx.subscribe("oneadapt.test.data.cam-1");
  rx.flush();
  Message good;
  good.kind = Kind::interval;
  good.interval = 7;
  good.payload = bytes("encoded bytes");
  auto wrong_version = encode(good);
  wrong_version[4] = 9;
  const std::vector<std::vector<std::uint8_t>> sent = {
      bytes("GET / HTTP/1.1\r\n"), {}, wrong_version, encode(good),
      std::vector<std::uint8_t>(1 << 16, 0xAB)};
  for (const auto& m : sent) tx.publish("oneadapt.test.data.cam-1", m);
  tx.flush();
  RejectCounts counts;
  int valid = 0;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    auto r = sub.next(2000ms);
    REQUIRE(r.has_value());
    auto d = decode(r->data(), r->size());
    if (std::holds_alternative<Message>(d)) {
      ++valid;
      CHECK(std::get<Message>(d).interval == 7);
    } else {
      counts.count(std::get<Rejection>(d).reason);
    }
  }
  CHECK(valid == 1);
  CHECK(counts.total() == 4);
  CHECK(counts[Reject::wrong_version] == 1);
  CHECK(counts[Reject::truncated] == 2);  // the empty message and the 16-byte HTTP line
  CHECK(counts[Reject::bad_magic] == 1);
}
