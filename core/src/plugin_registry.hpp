// The plugin host: finds plugin files, loads them through their C entry point, and hands out
// modalities and tasks whose lifetime keeps their library loaded and whose every call into
// plugin code is guarded (any exception becomes an oneadapt::Error naming plugin and file).
#pragma once

#include <oneadapt/modality.hpp>
#include <oneadapt/task.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace oneadapt::host {

class LoadedLibrary;  // a plugin file kept open (Boost.DLL), defined in plugin_registry.cpp

/// Descriptor fields of a loaded plugin file.
struct PluginFile {
  std::filesystem::path path;
  std::string name;
  std::string version;
  std::string description;
};

/// A plugin file that did not load, and why (one line).
struct LoadFailure {
  std::filesystem::path path;
  std::string reason;
};

enum class ComponentKind { modality, task };
const char* kind_name(ComponentKind kind);

/// Where a component came from, for messages: "modality 'video' (video.so)".
struct Origin {
  ComponentKind kind;
  std::string name;
  std::shared_ptr<const PluginFile> file;
  std::string describe() const;
};

/// A source opened through a plugin. Every call is guarded; the plugin stays loaded while
/// the source lives.
class HostSource {
 public:
  HostSource(Origin origin, std::shared_ptr<Source> source);
  std::vector<KnobSpec> knobs() const;
  bool next_interval(IntervalInfo& info);
  at::Tensor original();
  Rendering render(const Configuration& config);
  Rendering render_selected(const Configuration& config, const std::vector<std::uint8_t>& keep);
  std::optional<SpatialSpec> spatial() const;
  Rendering render_map(const Configuration& config, const QualityMap& map);
  Rendering probe(const Configuration& config, std::size_t sample);
  Configuration reference() const;
  at::Tensor saliency(const at::Tensor& grad);
  std::string describe() const;
  std::map<std::string, std::string> stream_format() const;
  const Origin& origin() const { return origin_; }

 private:
  Origin origin_;
  std::shared_ptr<Source> source_;
};

/// A receiver (the server side of a modality) opened through a plugin; every call is guarded.
class HostReceiver {
 public:
  HostReceiver(Origin origin, std::shared_ptr<Receiver> receiver);
  /// Receiver::decode; the result's shape is checked against `info.samples`.
  at::Tensor decode(const Configuration& config, const IntervalInfo& info,
                    const std::vector<std::uint8_t>& fresh, const std::vector<std::uint8_t>& wire);
  /// Receiver::saliency; the result must broadcast to `grad`'s shape.
  at::Tensor saliency(const at::Tensor& grad);
  const Origin& origin() const { return origin_; }

 private:
  Origin origin_;
  std::shared_ptr<Receiver> receiver_;
};

/// A task created through a plugin. Every call is guarded; the plugin stays loaded while the
/// task lives.
class HostTask {
 public:
  HostTask(Origin origin, std::shared_ptr<Task> task);
  std::vector<at::Tensor> infer(const at::Tensor& samples);
  at::Tensor proxy(const std::vector<at::Tensor>& outputs);
  std::vector<ResultPtr> decode(const std::vector<at::Tensor>& outputs);
  double accuracy(const std::vector<ResultPtr>& results, const std::vector<ResultPtr>& reference);
  void reset();
  void end_interval(const std::vector<ResultPtr>& reference);
  std::vector<Region> regions(const TaskResult& result);
  /// Task::batch_key() prefixed with the plugin file, so that only tasks of one plugin share a
  /// pass; empty when the task does not batch.
  std::string batch_key() const;
  /// Task::infer_batch() on tasks[0] (every task's batch_key() equal and not empty), its
  /// outputs checked: one list per task, each output with the task's sample count leading.
  static std::vector<std::vector<at::Tensor>> infer_batch(const std::vector<HostTask*>& tasks,
                                                          const std::vector<at::Tensor>& samples);
  const Origin& origin() const { return origin_; }

 private:
  Origin origin_;
  std::shared_ptr<Task> task_;
};

/// A registered modality: its declaration and the file it came from.
/// `library` is declared first so that it is destroyed last: the record holds functions whose
/// code lives in the library.
struct ModalityEntry {
  std::shared_ptr<LoadedLibrary> library;
  ModalityInfo info;
  std::shared_ptr<const PluginFile> file;
};

/// A registered task: its declaration and the file it came from.
struct TaskEntry {
  std::shared_ptr<LoadedLibrary> library;
  TaskInfo info;
  std::shared_ptr<const PluginFile> file;
};

/// User-facing settings for a component: parameter values and knob ladder overrides, as
/// text. Keys are checked against the declaration.
struct ComponentSettings {
  std::map<std::string, std::string> params;
  std::map<std::string, std::vector<std::string>> ladders;  // modalities only
};

class PluginRegistry {
 public:
  PluginRegistry();
  ~PluginRegistry();
  PluginRegistry(const PluginRegistry&) = delete;
  PluginRegistry& operator=(const PluginRegistry&) = delete;

  /// Loads every plugin file (*.so) in `dir`, in name order. A missing directory is ignored;
  /// each file that fails is recorded in failures() and never stops the others.
  void scan_directory(const std::filesystem::path& dir);

  /// Loads one plugin file. Returns false (and records the failure) when it does not load.
  bool load_file(const std::filesystem::path& path);

  const std::vector<std::shared_ptr<const PluginFile>>& files() const { return files_; }
  const std::vector<LoadFailure>& failures() const { return failures_; }
  const std::vector<ModalityEntry>& modalities() const { return modalities_; }
  const std::vector<TaskEntry>& tasks() const { return tasks_; }

  const ModalityEntry* find_modality(const std::string& name) const;
  const TaskEntry* find_task(const std::string& name) const;

  /// Opens a source of modality `name`. Throws Error: not_found (no such modality),
  /// invalid_argument (an undeclared parameter or knob, a bad value), or what the plugin
  /// reports (prefixed with the modality and its file).
  HostSource open_source(const std::string& name, const std::string& uri,
                         const ComponentSettings& settings, double interval_seconds) const;

  /// Opens the receiver of modality `name` for a stream opened with `settings` whose source
  /// reported `format` (Source::stream_format). Throws Error: not_found (no such modality),
  /// unsupported (the modality has no receiver), invalid_argument (a bad parameter).
  HostReceiver open_receiver(const std::string& name, const ComponentSettings& settings,
                             const std::map<std::string, std::string>& format) const;

  /// Creates a task `name` with the given models (by requirement role).
  HostTask create_task(const std::string& name, const ComponentSettings& settings,
                       std::map<std::string, std::shared_ptr<Model>> models,
                       const std::string& device = "cpu") const;

 private:
  std::vector<std::filesystem::path> scanned_;
  std::vector<std::shared_ptr<const PluginFile>> files_;
  std::vector<LoadFailure> failures_;
  std::vector<ModalityEntry> modalities_;
  std::vector<TaskEntry> tasks_;
};

/// Plugin directories in search order: `cli_dirs`, then ONEADAPT_PLUGIN_PATH (colon-separated),
/// then the default next to the executable (build tree: <bin>/../plugins; installed:
/// <prefix>/lib/oneadapt/plugins). Duplicates removed; missing directories kept (they are
/// skipped when scanned).
std::vector<std::filesystem::path> plugin_search_path(const std::vector<std::string>& cli_dirs);

/// Fills `params` with the declared defaults, then applies `given`; throws Error naming the
/// key when a key is not declared or a value does not fit its type.
Params resolve_params(const std::vector<ParamSpec>& specs,
                      const std::map<std::string, std::string>& given,
                      const std::string& component);

}  // namespace oneadapt::host
