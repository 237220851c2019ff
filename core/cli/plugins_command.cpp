// `oneadapt plugins list` and `oneadapt plugins inspect NAME` (the gst-inspect idea).
#include <iostream>
#include <optional>
#include <sstream>

#include "cli_common.hpp"
#include "contract.hpp"

namespace po = boost::program_options;

namespace oneadapt::cli {

namespace {

std::string param_line(const ParamSpec& p) {
  std::string line = p.key + " (" + param_type_name(p.type) + ", default ";
  line += p.default_value.empty() ? "empty" : "'" + p.default_value + "'";
  return line + ")" + (p.headline.empty() ? "" : " - " + p.headline);
}

void print_params(std::ostream& out, const std::vector<ParamSpec>& params) {
  out << "\nParameters:\n";
  if (params.empty()) out << "  (none)\n";
  for (const auto& p : params) {
    out << "  " << param_line(p) << '\n';
    out << text::wrap(p.description, 100, "      ");
  }
}

void print_header(std::ostream& out, const char* kind, const std::string& name,
                  const std::string& description, const std::string& sample_format,
                  const host::PluginFile& file) {
  out << kind << " '" << name << "'\n"
      << text::table({{"  Description", description},
                      {"  Sample format", sample_format},
                      {"  Plugin", file.name + " " + file.version + " - " + file.description},
                      {"  File", file.path.string()}});
}

void inspect_modality(std::ostream& out, const host::ModalityEntry& m) {
  print_header(out, "Modality", m.info.name, m.info.description, m.info.sample_format, *m.file);
  out << "\nKnobs (values from most expensive to cheapest; [*] marks where adaptation starts):\n";
  if (m.info.knobs.empty()) out << "  (none)\n";
  for (const auto& k : m.info.knobs) {
    out << "  " << k.key << (k.headline.empty() ? "" : " - " + k.headline)
        << (k.unit.empty() ? "" : " [" + k.unit + "]") << '\n';
    std::string values;
    for (std::size_t i = 0; i < k.values.size(); ++i)
      values += (i ? " " : "") + k.values[i].label + (i == k.default_index ? "[*]" : "");
    out << text::wrap("values: " + values, 100, "      ");
    out << text::wrap(k.description, 100, "      ");
  }
  print_params(out, m.info.params);
}

void inspect_task(std::ostream& out, const host::TaskEntry& t) {
  print_header(out, "Task", t.info.name, t.info.description, t.info.sample_format, *t.file);
  out << "\nModels:\n";
  if (t.info.models.empty()) out << "  (none: the task computes its outputs itself)\n";
  for (const auto& m : t.info.models) {
    std::string formats;
    for (const auto& f : m.formats) formats += (formats.empty() ? "" : ", ") + f;
    out << "  " << m.role << (m.optional ? " (optional)" : "") << " - " << m.description << '\n'
        << "      formats: " << (formats.empty() ? "any" : formats) << '\n'
        << "      default: " << (m.default_asset.empty() ? "none" : m.default_asset)
        << " (override with model." << m.role << " = PATH)\n";
  }
  print_params(out, t.info.params);
}

std::string failure_hint(const host::PluginRegistry& registry) {
  auto n = registry.failures().size();
  if (n == 0) return "";
  return "; " + std::to_string(n) + " plugin file" + (n == 1 ? "" : "s") +
         " failed to load: see 'oneadapt plugins list'";
}

}  // namespace

int run_plugins_list(const Invocation& inv) {
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "", po::options_description("Options"), {}, vm, global)) return kOk;

  host::PluginRegistry registry;
  auto dirs = load_plugins(global, registry);

  std::vector<std::vector<std::string>> rows{{"NAME", "KIND", "VERSION", "FILE"}};
  for (const auto& m : registry.modalities())
    rows.push_back({m.info.name, "modality", m.file->version, m.file->path.string()});
  for (const auto& t : registry.tasks())
    rows.push_back({t.info.name, "task", t.file->version, t.file->path.string()});
  if (rows.size() == 1)
    std::cout << "No plugins found.\n";
  else
    std::cout << text::table(rows);

  std::cout << "\nSearched:";
  if (dirs.empty()) std::cout << " (no directories)";
  std::cout << '\n';
  for (const auto& d : dirs) {
    std::error_code ec;
    std::cout << "  " << d.string() << (std::filesystem::is_directory(d, ec) ? "" : " (missing)")
              << '\n';
  }
  if (!registry.failures().empty()) {
    std::cout << "\nFailed to load (" << registry.failures().size() << "):\n";
    for (const auto& f : registry.failures())
      std::cout << "  " << f.path.string() << ": " << f.reason << '\n';
  }
  return kOk;
}

int run_plugins_inspect(const Invocation& inv) {
  po::options_description opts("Options");
  opts.add_options()("name", po::value<std::string>(), "modality or task name")(
      "input", po::value<std::string>(),
      "a modality: open this input and show the ladders of its stream (they may depend on it)")(
      "set", po::value<std::vector<std::string>>()->composing(),
      "with --input: a config key, e.g. --set modality.params.roi_tile=32");
  po::positional_options_description positional;
  positional.add("name", 1);
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "NAME [--input URI]", opts, positional, vm, global)) return kOk;
  if (!vm.count("name"))
    throw UsageError("oneadapt plugins inspect: missing NAME (see 'oneadapt plugins list')");
  const std::string name = vm["name"].as<std::string>();

  host::PluginRegistry registry;
  load_plugins(global, registry);
  const auto* modality = registry.find_modality(name);
  const auto* task = registry.find_task(name);
  if (!modality && !task)
    throw UsageError("no modality or task named '" + name + "'" + failure_hint(registry));
  if (modality && vm.count("input")) {
    // The opened stream's knobs: ladders that depend on the stream (video's frame rate) and
    // the effect of parameters (video's spatial knob replaces qp by crf).
    std::vector<std::string> sets{"input.modality=\"" + name + "\"",
                                  "input.uri=\"" + vm["input"].as<std::string>() + "\""};
    if (vm.count("set"))
      for (const auto& x : vm["set"].as<std::vector<std::string>>()) sets.push_back(x);
    const RunConfig c = load_run_config("", sets);
    auto source =
        registry.open_source(name, resolve_asset_uri(c.uri), c.modality_settings, c.interval);
    host::ModalityEntry opened = *modality;
    opened.info.knobs = source.knobs();
    inspect_modality(std::cout, opened);
    std::cout << "\nStream: " << source.describe() << " (the knobs above are this stream's)\n";
  } else if (modality) {
    inspect_modality(std::cout, *modality);
  }
  if (modality && task) std::cout << '\n';
  if (task) inspect_task(std::cout, *task);
  return kOk;
}

int run_plugins_check(const Invocation& inv) {
  po::options_description opts("Options");
  opts.add_options()("modality", po::value<std::string>(), "modality name")(
      "input", po::value<std::string>(), "input file or URI (asset:NAME for a cached asset)")(
      "task", po::value<std::string>(), "also check this task on the modality's renderings")(
      "config,c", po::value<std::string>(),
      "take parameters, ladders and models from an experiment config")(
      "intervals", po::value<std::size_t>()->default_value(2),
      "intervals whose bytes are summed along each ladder")(
      "set", po::value<std::vector<std::string>>()->composing(),
      "override a config key, e.g. --set modality.params.roi_tile=32 (repeatable)");
  po::positional_options_description positional;
  positional.add("modality", 1);
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "MODALITY [--input URI] [--task TASK] [options]", opts, positional, vm,
                     global))
    return kOk;
  if (!vm.count("modality"))
    throw UsageError("oneadapt plugins check: missing MODALITY (see 'oneadapt plugins list')");
  if (vm["intervals"].as<std::size_t>() == 0) throw UsageError("--intervals: must be >= 1");
  std::vector<std::string> sets{"input.modality=\"" + vm["modality"].as<std::string>() + "\""};
  if (vm.count("input")) sets.push_back("input.uri=\"" + vm["input"].as<std::string>() + "\"");
  if (vm.count("task")) sets.push_back("task.name=\"" + vm["task"].as<std::string>() + "\"");
  if (vm.count("set"))
    for (const auto& s : vm["set"].as<std::vector<std::string>>()) sets.push_back(s);
  const RunConfig c =
      load_run_config(vm.count("config") ? vm["config"].as<std::string>() : "", sets);

  host::PluginRegistry registry;
  load_plugins(global, registry);
  const auto* modality = registry.find_modality(c.modality);
  if (!modality)
    throw UsageError("no modality named '" + c.modality + "'" + failure_hint(registry));
  const std::string uri = c.uri.empty() ? "" : resolve_asset_uri(c.uri);
  std::optional<host::HostTask> task;
  // A task is checked when named, or when the config names one (RunConfig defaults to detection).
  if (!c.task.empty() && (vm.count("task") || vm.count("config"))) {
    const auto* entry = registry.find_task(c.task);
    if (!entry) throw UsageError("no task named '" + c.task + "'" + failure_hint(registry));
    if (entry->info.sample_format != modality->info.sample_format)
      throw Error(Errc::invalid_argument, "modality '" + c.modality + "' renders " +
                                              modality->info.sample_format + " but task '" +
                                              c.task + "' takes " + entry->info.sample_format);
    task.emplace(
        registry.create_task(c.task, c.task_settings, load_task_models(*entry, c), c.device));
  }
  std::cout << "Checking modality '" << c.modality << "'"
            << (task ? " with task '" + c.task + "'" : "") << (uri.empty() ? "" : " on " + uri)
            << '\n';
  host::report_crashes_in_checks();
  host::ContractOptions options;
  options.intervals = vm["intervals"].as<std::size_t>();
  options.open_receiver = [&](const std::map<std::string, std::string>& format) {
    return registry.open_receiver(c.modality, c.modality_settings, format);
  };
  auto report = host::check_contract(
      [&] { return registry.open_source(c.modality, uri, c.modality_settings, c.interval); },
      task ? &*task : nullptr, options, nullptr);
  std::vector<std::vector<std::string>> rows{{"CHECK", "RESULT", "FIGURE"}};
  for (const auto& r : report.rows) rows.push_back({r.check, r.result, r.figure});
  std::cout << text::table(rows);
  std::size_t failed = 0, skipped = 0;
  for (const auto& r : report.rows) failed += r.result == "FAIL", skipped += r.result == "skip";
  std::cout << '\n'
            << report.rows.size() - failed - skipped << " passed, " << failed << " failed, "
            << skipped << " skipped\n";
  if (failed) {
    std::string names;
    for (const auto& r : report.rows)
      if (r.result == "FAIL") names += (names.empty() ? "" : "; ") + r.check;
    throw Error(Errc::invalid_argument, "plugins check: modality '" + c.modality + "' (" +
                                            modality->file->path.string() +
                                            ") breaks the contract: " + names);
  }
  return kOk;
}

}  // namespace oneadapt::cli
