#include "plugin_registry.hpp"

#include <oneadapt/plugin.hpp>

#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <cstring>
#include <set>
#include <system_error>
#include <utility>

namespace fs = std::filesystem;

namespace oneadapt::host {

class LoadedLibrary {
 public:
  explicit LoadedLibrary(boost::dll::shared_library lib) : lib_(std::move(lib)) {}
  boost::dll::shared_library& get() { return lib_; }

 private:
  boost::dll::shared_library lib_;
};

const char* kind_name(ComponentKind kind) {
  return kind == ComponentKind::modality ? "modality" : "task";
}

std::string Origin::describe() const {
  std::string out = std::string(kind_name(kind)) + " '" + name + "'";
  if (file) out += " (" + file->path.string() + ")";
  return out;
}

namespace {

// Runs plugin code; whatever it throws comes out as an oneadapt::Error naming the component.
// An Error the plugin raised on purpose keeps its code and message; anything else is a
// plugin failure and names the call that failed.
template <class F>
auto guarded(const Origin& origin, const char* call, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(e.code(),
                std::string(kind_name(origin.kind)) + " '" + origin.name + "': " + e.what());
  } catch (const std::exception& e) {
    throw Error(Errc::plugin_failure,
                origin.describe() + " failed in " + call + ": " + one_line(e.what()));
  } catch (...) {
    throw Error(Errc::plugin_failure,
                origin.describe() + " failed in " + call + ": non-standard exception");
  }
}

// Keeps the plugin's library loaded for as long as an object it created lives. Members are
// destroyed in reverse order: the object first, then (possibly) the library.
template <class T>
struct Holder {
  std::shared_ptr<LoadedLibrary> library;
  std::unique_ptr<T> object;
};

template <class T>
std::shared_ptr<T> tie_to_library(std::shared_ptr<LoadedLibrary> library,
                                  std::unique_ptr<T> object) {
  auto holder = std::make_shared<Holder<T>>(Holder<T>{std::move(library), std::move(object)});
  T* raw = holder->object.get();
  return std::shared_ptr<T>(holder, raw);
}

void check_name(const std::string& name, const char* what) {
  if (!is_valid_key(name))
    throw Error(Errc::invalid_argument, std::string(what) + " name '" + name +
                                            "' must be 1-64 characters of a-z, 0-9, '_' or '-'");
}

void check_params(const std::vector<ParamSpec>& params, const std::string& owner) {
  std::set<std::string> seen;
  for (const auto& p : params) {
    if (!is_valid_key(p.key))
      throw Error(Errc::invalid_argument, owner + ": parameter key '" + p.key + "' is not valid");
    if (!seen.insert(p.key).second)
      throw Error(Errc::invalid_argument, owner + ": parameter '" + p.key + "' declared twice");
    try {
      check_param_value(p, p.default_value);
    } catch (const Error& e) {
      throw Error(Errc::invalid_argument, owner + ": default of " + e.what());
    }
  }
}

void check_knobs(const std::vector<KnobSpec>& knobs, const std::string& owner) {
  std::set<std::string> seen;
  for (const auto& k : knobs) {
    try {
      validate(k);
    } catch (const Error& e) {
      throw Error(Errc::invalid_argument, owner + ": " + e.what());
    }
    if (!seen.insert(k.key).second)
      throw Error(Errc::invalid_argument, owner + ": knob '" + k.key + "' declared twice");
  }
}

// Collects what one plugin file registers; validated record by record.
class StagingRegistrar final : public Registrar {
 public:
  void add_modality(ModalityInfo info) override {
    check_name(info.name, "modality");
    const std::string owner = "modality '" + info.name + "'";
    if (!info.open) throw Error(Errc::invalid_argument, owner + " has no open function");
    check_knobs(info.knobs, owner);
    check_params(info.params, owner);
    modalities.push_back(std::move(info));
  }
  void add_task(TaskInfo info) override {
    check_name(info.name, "task");
    const std::string owner = "task '" + info.name + "'";
    if (!info.create) throw Error(Errc::invalid_argument, owner + " has no create function");
    check_params(info.params, owner);
    std::set<std::string> roles;
    for (const auto& m : info.models)
      if (!is_valid_key(m.role) || !roles.insert(m.role).second)
        throw Error(Errc::invalid_argument,
                    owner + ": model role '" + m.role + "' is not valid or declared twice");
    tasks.push_back(std::move(info));
  }
  std::vector<ModalityInfo> modalities;
  std::vector<TaskInfo> tasks;
};

std::string torch_version_text(std::uint32_t v) {
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100);
}

// Boost.DLL wraps dlerror()'s text: "<prefix> (dlerror system message: <text>): <errno text>".
// Keep <text>, without the path it repeats (the failure line names the file already).
std::string load_error_text(const std::exception& e, const fs::path& path) {
  std::string what = e.what();
  const std::string marker = "dlerror system message: ";
  auto at = what.find(marker);
  if (at == std::string::npos) return one_line(what);
  std::string text = what.substr(at + marker.size());
  auto close = text.rfind("): ");
  if (close != std::string::npos) text = text.substr(0, close);
  const std::string repeated = path.string() + ": ";
  if (text.rfind(repeated, 0) == 0) text = text.substr(repeated.size());
  return one_line(text);
}

}  // namespace

PluginRegistry::PluginRegistry() = default;
PluginRegistry::~PluginRegistry() = default;

void PluginRegistry::scan_directory(const fs::path& dir) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(dir, ec);
  if (ec) canonical = dir;
  if (std::find(scanned_.begin(), scanned_.end(), canonical) != scanned_.end()) return;
  scanned_.push_back(canonical);
  if (!fs::is_directory(canonical, ec)) return;

  std::vector<fs::path> candidates;
  for (fs::directory_iterator it(canonical, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".so" && !it->is_directory()) candidates.push_back(it->path());
  }
  if (ec) {
    failures_.push_back({canonical, "cannot list plugin directory: " + ec.message()});
    return;
  }
  std::sort(candidates.begin(), candidates.end());
  for (const auto& path : candidates) load_file(path);
}

bool PluginRegistry::load_file(const fs::path& path) {
  auto fail = [&](std::string reason) {
    failures_.push_back({path, std::move(reason)});
    return false;
  };

  auto library = std::make_shared<LoadedLibrary>(boost::dll::shared_library());
  try {
    // rtld_now: an undefined symbol fails here, with its name, not in the middle of a run.
    library->get().load(path, boost::dll::load_mode::rtld_now);
  } catch (const std::exception& e) {
    return fail("not a loadable shared library: " + load_error_text(e, path));
  }
  if (!library->get().has(ONEADAPT_PLUGIN_ENTRY_SYMBOL))
    return fail(std::string("no entry point '") + ONEADAPT_PLUGIN_ENTRY_SYMBOL +
                "' (not a oneadapt plugin, or ONEADAPT_PLUGIN missing)");

  const oneadapt_plugin_descriptor* d = nullptr;
  try {
    d = library->get().get<const oneadapt_plugin_descriptor*()>(ONEADAPT_PLUGIN_ENTRY_SYMBOL)();
  } catch (const std::exception& e) {
    return fail(std::string("entry point failed: ") + one_line(e.what()));
  } catch (...) {
    return fail("entry point threw a non-standard exception");
  }
  if (!d) return fail("entry point returned no descriptor");
  if (d->abi_version != ONEADAPT_ABI_VERSION)
    return fail("built for plugin ABI " + std::to_string(d->abi_version) +
                ", this oneadapt loads ABI " + std::to_string(ONEADAPT_ABI_VERSION) +
                " (rebuild the plugin against this SDK)");
  if (d->size < sizeof(oneadapt_plugin_descriptor))
    return fail("descriptor is " + std::to_string(d->size) + " bytes, ABI " +
                std::to_string(ONEADAPT_ABI_VERSION) + " needs " +
                std::to_string(sizeof(oneadapt_plugin_descriptor)));
  if (d->torch_version != ONEADAPT_TORCH_VERSION)
    return fail("built against LibTorch " + torch_version_text(d->torch_version) +
                ", this oneadapt uses LibTorch " + torch_version_text(ONEADAPT_TORCH_VERSION));
  if ((d->build_flags & ONEADAPT_FLAG_CXX11_ABI) !=
      (ONEADAPT_BUILD_FLAGS & ONEADAPT_FLAG_CXX11_ABI))
    return fail("built with another C++ library ABI (_GLIBCXX_USE_CXX11_ABI differs)");
  if (!d->name || !d->version || !d->description || !d->register_plugin)
    return fail("descriptor has an empty name, version, description or register function");
  // The descriptor's strings are read with a bound: a string that is not terminated within it
  // is a broken plugin, not a reason to read on into the library's memory.
  constexpr std::size_t kMaxText = 512;
  for (const char* text : {d->name, d->version, d->description})
    if (strnlen(text, kMaxText) == kMaxText)
      return fail(
          "descriptor's name, version or description is not a terminated string of at most " +
          std::to_string(kMaxText - 1) + " characters");

  auto file = std::make_shared<PluginFile>(PluginFile{path, d->name, d->version, d->description});

  StagingRegistrar staging;
  char error[1024] = {0};
  int rc = 0;
  try {
    rc = d->register_plugin(&staging, error, sizeof error);
  } catch (const std::exception& e) {  // a register function not made by ONEADAPT_PLUGIN may throw
    return fail(std::string("plugin '") + file->name +
                "' failed to register: " + one_line(e.what()));
  } catch (...) {
    return fail(std::string("plugin '") + file->name +
                "' failed to register: it threw a non-standard exception");
  }
  error[sizeof error - 1] = '\0';  // whatever the plugin wrote, the message ends in the buffer
  if (rc != 0)
    return fail(std::string("plugin '") + file->name +
                "' failed to register: " + one_line(error[0] ? error : "no reason given"));
  if (staging.modalities.empty() && staging.tasks.empty())
    return fail("plugin '" + file->name + "' registered no modality and no task");

  // Names are unique across plugins: the first file in search order wins.
  for (const auto& m : staging.modalities)
    if (const ModalityEntry* other = find_modality(m.name))
      return fail("modality '" + m.name + "' is already provided by " + other->file->path.string());
  for (const auto& t : staging.tasks)
    if (const TaskEntry* other = find_task(t.name))
      return fail("task '" + t.name + "' is already provided by " + other->file->path.string());

  files_.push_back(file);
  for (auto& m : staging.modalities) modalities_.push_back({library, std::move(m), file});
  for (auto& t : staging.tasks) tasks_.push_back({library, std::move(t), file});
  return true;
}

const ModalityEntry* PluginRegistry::find_modality(const std::string& name) const {
  for (const auto& m : modalities_)
    if (m.info.name == name) return &m;
  return nullptr;
}

const TaskEntry* PluginRegistry::find_task(const std::string& name) const {
  for (const auto& t : tasks_)
    if (t.info.name == name) return &t;
  return nullptr;
}

Params resolve_params(const std::vector<ParamSpec>& specs,
                      const std::map<std::string, std::string>& given,
                      const std::string& component) {
  Params params;
  for (const auto& spec : specs) params.set(spec.key, spec.default_value);
  for (const auto& [key, value] : given) {
    auto spec = std::find_if(specs.begin(), specs.end(),
                             [&k = key](const ParamSpec& s) { return s.key == k; });
    if (spec == specs.end()) {
      std::string known;
      for (const auto& s : specs) known += (known.empty() ? "" : ", ") + s.key;
      throw Error(Errc::invalid_argument,
                  component + " has no parameter '" + key + "'" +
                      (known.empty() ? " (it declares none)" : " (it has: " + known + ")"));
    }
    try {
      check_param_value(*spec, value);
    } catch (const Error& e) {
      throw Error(Errc::invalid_argument, component + ": " + e.what());
    }
    params.set(key, value);
  }
  return params;
}

HostReceiver PluginRegistry::open_receiver(const std::string& name,
                                           const ComponentSettings& settings,
                                           const std::map<std::string, std::string>& format) const {
  const ModalityEntry* entry = find_modality(name);
  if (!entry) throw Error(Errc::not_found, "no modality named '" + name + "'");
  Origin origin{ComponentKind::modality, name, entry->file};
  if (!entry->info.open_receiver)
    throw Error(Errc::unsupported,
                origin.describe() + " has no receiver: its streams run in one process only");
  ReceiverSpec spec;
  spec.params = resolve_params(entry->info.params, settings.params, "modality '" + name + "'");
  spec.format = format;
  std::unique_ptr<Receiver> receiver =
      guarded(origin, "open_receiver", [&] { return entry->info.open_receiver(spec); });
  if (!receiver) throw Error(Errc::plugin_failure, origin.describe() + " returned no receiver");
  return HostReceiver(origin, tie_to_library(entry->library, std::move(receiver)));
}

HostSource PluginRegistry::open_source(const std::string& name, const std::string& uri,
                                       const ComponentSettings& settings,
                                       double interval_seconds) const {
  const ModalityEntry* entry = find_modality(name);
  if (!entry) throw Error(Errc::not_found, "no modality named '" + name + "'");
  Origin origin{ComponentKind::modality, name, entry->file};
  const std::string owner = "modality '" + name + "'";

  SourceSpec spec;
  spec.uri = uri;
  spec.params = resolve_params(entry->info.params, settings.params, owner);
  spec.interval_seconds = interval_seconds;
  for (const auto& [key, ladder] : settings.ladders)
    if (ladder.empty())
      throw Error(Errc::invalid_argument, owner + ": knob '" + key + "' ladder is empty");
  spec.ladders = settings.ladders;

  std::unique_ptr<Source> source = guarded(origin, "open", [&] { return entry->info.open(spec); });
  if (!source) throw Error(Errc::plugin_failure, origin.describe() + " returned no source");
  HostSource host(origin, tie_to_library(entry->library, std::move(source)));
  const auto knobs = host.knobs();
  check_knobs(knobs, owner + " (opened)");
  // Ladder overrides name the opened stream's knobs, which parameters may change (video's
  // spatial knob replaces 'qp' by 'crf').
  for (const auto& [key, ladder] : settings.ladders)
    if (std::none_of(knobs.begin(), knobs.end(),
                     [&name = key](const KnobSpec& k) { return k.key == name; }))
      throw Error(Errc::invalid_argument, owner + " has no knob '" + key + "'");
  return host;
}

HostTask PluginRegistry::create_task(const std::string& name, const ComponentSettings& settings,
                                     std::map<std::string, std::shared_ptr<Model>> models,
                                     const std::string& device) const {
  const TaskEntry* entry = find_task(name);
  if (!entry) throw Error(Errc::not_found, "no task named '" + name + "'");
  Origin origin{ComponentKind::task, name, entry->file};
  const std::string owner = "task '" + name + "'";
  if (!settings.ladders.empty())
    throw Error(Errc::invalid_argument, owner + " has no knobs (knobs belong to modalities)");

  TaskSpec spec;
  spec.params = resolve_params(entry->info.params, settings.params, owner);
  spec.device = device;
  for (const auto& req : entry->info.models)
    if (!req.optional && !models.count(req.role))
      throw Error(Errc::not_found, owner + " needs a model for role '" + req.role + "'");
  for (const auto& [role, model] : models) {
    bool declared =
        std::any_of(entry->info.models.begin(), entry->info.models.end(),
                    [&name = role](const ModelRequirement& r) { return r.role == name; });
    if (!declared) throw Error(Errc::invalid_argument, owner + " has no model role '" + role + "'");
  }
  spec.models = std::move(models);

  std::unique_ptr<Task> task = guarded(origin, "create", [&] { return entry->info.create(spec); });
  if (!task) throw Error(Errc::plugin_failure, origin.describe() + " returned no task");
  return HostTask(origin, tie_to_library(entry->library, std::move(task)));
}

// --- guarded wrappers --------------------------------------------------------------------

HostSource::HostSource(Origin origin, std::shared_ptr<Source> source)
    : origin_(std::move(origin)), source_(std::move(source)) {}

std::vector<KnobSpec> HostSource::knobs() const {
  return guarded(origin_, "knobs()", [&] { return source_->knobs(); });
}
bool HostSource::next_interval(IntervalInfo& info) {
  return guarded(origin_, "next_interval()", [&] { return source_->next_interval(info); });
}
at::Tensor HostSource::original() {
  return guarded(origin_, "original()", [&] { return source_->original(); });
}
Rendering HostSource::render_selected(const Configuration& config,
                                      const std::vector<std::uint8_t>& keep) {
  return guarded(origin_, "render_selected()",
                 [&] { return source_->render_selected(config, keep); });
}
std::optional<SpatialSpec> HostSource::spatial() const {
  return guarded(origin_, "spatial()", [&] { return source_->spatial(); });
}
Rendering HostSource::render_map(const Configuration& config, const QualityMap& map) {
  return guarded(origin_, "render_map()", [&] { return source_->render_map(config, map); });
}
Rendering HostSource::render(const Configuration& config) {
  return guarded(origin_, "render()", [&] { return source_->render(config); });
}
Rendering HostSource::probe(const Configuration& config, std::size_t sample) {
  return guarded(origin_, "probe()", [&] { return source_->probe(config, sample); });
}
Configuration HostSource::reference() const {
  return guarded(origin_, "reference()", [&] { return source_->reference(); });
}
at::Tensor HostSource::saliency(const at::Tensor& grad) {
  return guarded(origin_, "saliency()", [&] { return source_->saliency(grad); });
}
std::string HostSource::describe() const {
  return guarded(origin_, "describe()", [&] { return source_->describe(); });
}
std::map<std::string, std::string> HostSource::stream_format() const {
  return guarded(origin_, "stream_format()", [&] { return source_->stream_format(); });
}

HostReceiver::HostReceiver(Origin origin, std::shared_ptr<Receiver> receiver)
    : origin_(std::move(origin)), receiver_(std::move(receiver)) {}
at::Tensor HostReceiver::decode(const Configuration& config, const IntervalInfo& info,
                                const std::vector<std::uint8_t>& fresh,
                                const std::vector<std::uint8_t>& wire) {
  at::Tensor x = guarded(origin_, "Receiver::decode()",
                         [&] { return receiver_->decode(config, info, fresh, wire); });
  if (!x.defined() || x.dim() < 1 || x.size(0) != static_cast<int64_t>(info.samples))
    throw Error(Errc::plugin_failure,
                origin_.describe() + " decoded interval " + std::to_string(info.index) + " into " +
                    (x.defined() ? std::to_string(x.dim() ? x.size(0) : 0) : "no") +
                    " samples, the interval has " + std::to_string(info.samples));
  return x;
}

at::Tensor HostReceiver::saliency(const at::Tensor& grad) {
  at::Tensor s =
      guarded(origin_, "Receiver::saliency()", [&] { return receiver_->saliency(grad); });
  if (!s.defined() || s.dim() != grad.dim())
    throw Error(Errc::plugin_failure,
                origin_.describe() + " Receiver::saliency() returned " +
                    (s.defined() ? std::to_string(s.dim()) + " dimensions" : "nothing") +
                    " for a gradient of " + std::to_string(grad.dim()));
  for (int64_t d = 0; d < grad.dim(); ++d)
    if (s.size(d) != grad.size(d) && s.size(d) != 1)
      throw Error(Errc::plugin_failure, origin_.describe() +
                                            " Receiver::saliency() does not broadcast to the "
                                            "gradient's shape");
  return s;
}

HostTask::HostTask(Origin origin, std::shared_ptr<Task> task)
    : origin_(std::move(origin)), task_(std::move(task)) {}

std::vector<at::Tensor> HostTask::infer(const at::Tensor& samples) {
  return guarded(origin_, "infer()", [&] { return task_->infer(samples); });
}
at::Tensor HostTask::proxy(const std::vector<at::Tensor>& outputs) {
  return guarded(origin_, "proxy()", [&] { return task_->proxy(outputs); });
}
std::vector<ResultPtr> HostTask::decode(const std::vector<at::Tensor>& outputs) {
  return guarded(origin_, "decode()", [&] { return task_->decode(outputs); });
}
double HostTask::accuracy(const std::vector<ResultPtr>& results,
                          const std::vector<ResultPtr>& reference) {
  return guarded(origin_, "accuracy()", [&] { return task_->accuracy(results, reference); });
}
void HostTask::reset() {
  guarded(origin_, "reset()", [&] { task_->reset(); });
}
std::vector<Region> HostTask::regions(const TaskResult& result) {
  return guarded(origin_, "regions()", [&] { return task_->regions(result); });
}
void HostTask::end_interval(const std::vector<ResultPtr>& reference) {
  guarded(origin_, "end_interval()", [&] { task_->end_interval(reference); });
}

std::string HostTask::batch_key() const {
  std::string key = guarded(origin_, "batch_key()", [&] { return task_->batch_key(); });
  return key.empty() ? key : origin_.describe() + "\n" + key;
}

std::vector<std::vector<at::Tensor>> HostTask::infer_batch(const std::vector<HostTask*>& tasks,
                                                           const std::vector<at::Tensor>& samples) {
  if (tasks.empty() || tasks.size() != samples.size())
    throw Error(Errc::invalid_argument, "infer_batch: one sample tensor per task");
  std::vector<Task*> raw;
  for (HostTask* t : tasks) raw.push_back(t->task_.get());
  const Origin& origin = tasks[0]->origin_;
  auto out = guarded(origin, "infer_batch()", [&] { return raw[0]->infer_batch(raw, samples); });
  if (out.size() != tasks.size())
    throw Error(Errc::plugin_failure, origin.describe() + " infer_batch() returned " +
                                          std::to_string(out.size()) + " parts for " +
                                          std::to_string(tasks.size()) + " tasks");
  for (std::size_t i = 0; i < out.size(); ++i)
    for (const at::Tensor& o : out[i])
      if (!o.defined() || o.dim() == 0 || o.size(0) != samples[i].size(0))
        throw Error(Errc::plugin_failure,
                    origin.describe() + " infer_batch() part " + std::to_string(i) +
                        ": an output without the part's " + std::to_string(samples[i].size(0)) +
                        " samples leading");
  return out;
}

// --- search path -----------------------------------------------------------------------------

std::vector<fs::path> plugin_search_path(const std::vector<std::string>& cli_dirs) {
  std::vector<fs::path> dirs;
  auto add = [&](const fs::path& p) {
    if (p.empty()) return;
    std::error_code ec;
    fs::path c = fs::weakly_canonical(p, ec);
    if (ec) c = p;
    if (std::find(dirs.begin(), dirs.end(), c) == dirs.end()) dirs.push_back(c);
  };
  for (const auto& d : cli_dirs) add(d);
  if (const char* env = std::getenv("ONEADAPT_PLUGIN_PATH")) {
    std::string text = env;
    std::size_t start = 0;
    while (start <= text.size()) {
      std::size_t colon = text.find(':', start);
      if (colon == std::string::npos) colon = text.size();
      add(text.substr(start, colon - start));
      start = colon + 1;
    }
  }
  boost::dll::fs::error_code bec;
  fs::path exe = boost::dll::program_location(bec);
  if (!bec) {
    fs::path prefix = exe.parent_path().parent_path();
    std::error_code ec;
    if (fs::is_directory(prefix / "plugins", ec))
      add(prefix / "plugins");  // build tree: build/bin/oneadapt -> build/plugins
    else
      add(prefix / "lib" / "oneadapt" / "plugins");  // installed: <prefix>/bin/oneadapt
  }
  return dirs;
}

}  // namespace oneadapt::host
