// `oneadapt serve` and `oneadapt source`: the source/server split over NATS (docs/deployment.md).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <filesystem>
#include <sstream>

#include "adapt/runner.hpp"
#include "cli_common.hpp"
#include "split/split.hpp"

namespace po = boost::program_options;

namespace oneadapt::cli {

namespace {

// The hello of a stream: its id (--stream, or MODALITY-HOST-PID; `suffix` appended for a joint
// run's streams), the modality and task with their settings, the source's stream format.
split::StreamHello make_hello(const po::variables_map& vm, const RunConfig& c,
                              const host::HostSource& source, const std::string& suffix) {
  split::StreamHello hello;
  std::string id;
  if (vm.count("stream")) {
    id = vm["stream"].as<std::string>();
    if (!net::valid_stream_id(id))
      throw UsageError("--stream '" + id + "' is not 1-64 of [A-Za-z0-9_-]");
  } else {
    id = split::host_token(suffix.empty() ? c.modality : std::string("joint"));
  }
  if (!suffix.empty()) id += "-" + suffix;
  for (char& ch : id)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_')) ch = '-';
  hello.stream = id.substr(0, 64);
  hello.modality = c.modality;
  hello.modality_settings = c.modality_settings;
  hello.format = source.stream_format();
  hello.task = c.task;
  hello.task_settings = c.task_settings;
  hello.models = c.models;
  return hello;
}

void write_net_json(const std::filesystem::path& dir, const split::RemoteInference& remote,
                    const std::string& url, const std::string& stream) {
  if (dir.empty()) return;
  nlohmann::json j{{"server", remote.server()},
                   {"nats", url},
                   {"stream", stream},
                   {"calls", remote.stats().to_json()},
                   {"failovers", remote.failovers()}};
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  adapt::write_atomically(dir / "net.json", j.dump(2) + "\n");
}

}  // namespace

void add_nats_options(po::options_description& opts) {
  opts.add_options()("nats", po::value<std::string>(),
                     "NATS server URL, e.g. nats://127.0.0.1:4222 (required)")(
      "auth", po::value<std::string>(),
      "file holding one line user:password or a user's nkey seed (chmod 600); never credentials "
      "on the command line");
}

net::LinkOptions link_options(const po::variables_map& vm, const std::string& name) {
  if (!vm.count("nats")) throw UsageError("--nats URL is required");
  net::LinkOptions o;
  o.url = vm["nats"].as<std::string>();
  if (o.url.find('@') != std::string::npos)
    throw UsageError("--nats: put credentials in an --auth file, not in the URL");
  if (vm.count("auth")) o.credentials = net::read_auth_file(vm["auth"].as<std::string>());
  o.name = name;
  return o;
}

int run_serve(const Invocation& inv) {
  po::options_description opts("Options");
  add_nats_options(opts);
  opts.add_options()("id", po::value<std::string>(),
                     "this server's id, 1-64 of [A-Za-z0-9_-] (default srv-HOST-PID)")(
      "device", po::value<std::string>()->default_value("cpu"), "cpu, cuda or cuda:N")(
      "max-streams", po::value<std::size_t>()->default_value(0),
      "stop after this many streams have closed (0 = serve until SIGINT or SIGTERM)")(
      "max-open", po::value<std::size_t>()->default_value(64),
      "streams served at once; further hellos are refused")(
      "max-batch", po::value<std::size_t>()->default_value(16),
      "inferences of at most this many streams share one pass (streams of one task and model "
      "whose task batches, calls waiting at the same time); 1 = each stream alone")(
      "idle-timeout", po::value<double>()->default_value(600),
      "close a stream without a call for this many seconds (its source is gone); 0 = never")(
      "models-dir", po::value<std::string>(),
      "model files a source may name besides this server's assets (asset:NAME): files under DIR")(
      "jobs-dir", po::value<std::string>(),
      "run jobs of distributed comparisons (oneadapt compare --nats) whose config, input and "
      "models lie under DIR (or in the asset cache)");
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "--nats URL [--auth FILE] [options]", opts, {}, vm, global)) return kOk;
  const net::LinkOptions lo = link_options(vm, "oneadapt serve");
  split::ServerOptions so;
  if (vm.count("id")) {
    so.id = vm["id"].as<std::string>();
    if (!net::valid_stream_id(so.id))
      throw UsageError("--id '" + so.id + "' is not 1-64 of [A-Za-z0-9_-]");
  }
  so.device = vm["device"].as<std::string>();
  so.exit_after_streams = vm["max-streams"].as<std::size_t>();
  so.max_open = vm["max-open"].as<std::size_t>();
  if (so.max_open == 0) throw UsageError("--max-open must be at least 1");
  so.max_batch = vm["max-batch"].as<std::size_t>();
  if (so.max_batch == 0 || so.max_batch > 256) throw UsageError("--max-batch: 1 <= N <= 256");
  const double idle = vm["idle-timeout"].as<double>();
  if (!(idle >= 0) || idle > 1e6) throw UsageError("--idle-timeout: 0 <= seconds <= 1e6");
  so.idle_timeout = std::chrono::seconds(static_cast<std::int64_t>(std::ceil(idle)));
  if (vm.count("models-dir")) {
    so.models_dir = vm["models-dir"].as<std::string>();
    std::error_code ec;
    if (!std::filesystem::is_directory(so.models_dir, ec))
      throw Error(Errc::not_found, so.models_dir.string() + ": no such directory (--models-dir)");
  }
  if (vm.count("jobs-dir")) {
    const std::filesystem::path dir = vm["jobs-dir"].as<std::string>();
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
      throw Error(Errc::not_found, dir.string() + ": no such directory (--jobs-dir)");
    so.jobs = compare_job_runner(global, std::filesystem::absolute(dir), so.device);
  }
  host::PluginRegistry registry;
  load_plugins(global, registry);
  net::NatsLink link(lo);
  split::Server server(registry, link, so);
  server.serve(std::cerr);
  return adapt::stop_signal() ? 130 : kOk;
}

int run_source(const Invocation& inv) {
  po::options_description opts = experiment_options();
  add_nats_options(opts);
  opts.add_options()("stream", po::value<std::string>(),
                     "this stream's id, 1-64 of [A-Za-z0-9_-] (default MODALITY-HOST-PID)")(
      "timeout", po::value<double>()->default_value(120),
      "seconds to wait for a server to take the stream, and for a live server's answer to one "
      "request (a server that dies in a call is noticed within a second)");
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "--config FILE --nats URL [--auth FILE] [options]", opts, {}, vm, global))
    return kOk;
  const std::string config_file = vm.count("config") ? vm["config"].as<std::string>() : "";
  const net::LinkOptions lo = link_options(vm, "oneadapt source");
  const double timeout_s = vm["timeout"].as<double>();
  if (!(timeout_s > 0) || timeout_s > 3600) throw UsageError("--timeout: 0 < seconds <= 3600");
  const auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
  if (is_joint_config(config_file)) {
    // Several streams over one uplink (docs/joint.md): one source process, each stream's task
    // on a server of the queue group, one price for the link as in one process.
    const JointConfig j = load_joint_config(config_file, overrides_from_flags(vm));
    net::NatsLink link(lo);
    std::vector<std::pair<std::string, std::unique_ptr<split::RemoteInference>>> remotes;
    const InferenceFactory factory = [&](const std::string& name, const RunConfig& rc,
                                         const host::HostSource& source) -> adapt::Inference* {
      remotes.emplace_back(name, std::make_unique<split::RemoteInference>(
                                     link, make_hello(vm, rc, source, name), timeout));
      return remotes.back().second.get();
    };
    auto finish = [&] {
      for (auto& [name, r] : remotes) {
        r->close();
        write_net_json(j.out_dir / name, *r, link.url(), r->stream());
      }
    };
    int rc = kFailure;
    try {
      rc = run_joint(config_file, vm, global, factory);
    } catch (...) {
      finish();
      throw;
    }
    finish();
    return rc;
  }
  RunConfig c = load_run_config(config_file, overrides_from_flags(vm));
  Experiment x(c, global, /*load_models=*/false);
  auto source = x.source();

  split::StreamHello hello = make_hello(vm, c, source, "");

  net::NatsLink link(lo);
  split::RemoteInference remote(link, hello, timeout);
  c.run.provenance = x.provenance(source);
  c.run.provenance["server"] = remote.server();
  c.run.provenance["nats"] = link.url();
  c.run.provenance["stream"] = hello.stream;
  std::ostringstream header;
  header << "input   " << source.describe() << "\n"
         << "task    " << c.task << " on server " << remote.server() << " at " << link.url()
         << " (stream " << hello.stream << ")\n"
         << "policy  " << c.run.policy << ", beta " << c.run.oneadapt.beta << ", lr "
         << c.run.oneadapt.lr << "\n"
         << "output  " << c.run.out_dir.string() << "\n";
  if (c.run.budget) header << "budget  " << c.run.budget->describe() << "\n";
  c.run.header = header.str();
  auto write_net = [&] { write_net_json(c.run.out_dir, remote, link.url(), hello.stream); };
  adapt::RunSummary s;
  try {
    s = adapt::run_experiment(source, remote, c.run, std::cerr, ::isatty(2) != 0);
  } catch (...) {
    write_net();
    remote.close();
    throw;
  }
  remote.close();
  write_net();
  std::uint64_t up = 0, down = 0;
  for (const auto& [op, o] : remote.stats().ops) up += o.bytes_sent, down += o.bytes_received;
  const auto& inf =
      remote.stats().ops.count("infer") ? remote.stats().ops.at("infer") : split::CallStats::Op{};
  std::vector<double> rt = inf.round_trip_ms;
  std::sort(rt.begin(), rt.end());
  std::cout << adapt::summary_table(s) << "\nServer " << remote.server() << ": "
            << text::human_bytes(static_cast<double>(up)) << " to it, "
            << text::human_bytes(static_cast<double>(down))
            << " back (uncharged scoring included), " << inf.calls
            << " inferences, round trip median "
            << fmt("%.1f", rt.empty() ? 0.0 : rt[rt.size() / 2]) << " ms"
            << (remote.failovers().empty()
                    ? std::string()
                    : "\nFail-overs: " + std::to_string(remote.failovers().size()) +
                          " (another server took the stream over; net.json says when)")
            << "\nRecords: " << (c.run.out_dir / "records.jsonl").string()
            << "\nSummary: " << (c.run.out_dir / "summary.json").string()
            << "\nTraffic: " << (c.run.out_dir / "net.json").string() << '\n';
  return kOk;
}

}  // namespace oneadapt::cli
