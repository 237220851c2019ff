// Shared pieces of the subcommands: option parsing that turns every mistake into a
// UsageError, the global options, the command table lookup, and plugin loading.
#pragma once

#include <boost/program_options.hpp>
#include <string>
#include <vector>

#include <functional>
#include <memory>
#include <set>
#include <nlohmann/json.hpp>

#include "adapt/inference.hpp"
#include "net/nats_link.hpp"
#include "split/jobs.hpp"
#include "cli.hpp"
#include "plugin_registry.hpp"
#include "run_config.hpp"
#include "text.hpp"

namespace oneadapt::adapt {
class OutcomeCache;
}  // namespace oneadapt::adapt

namespace oneadapt::cli {

/// Adds the options every command accepts (--plugin-dir).
void add_global_options(boost::program_options::options_description& opts);
void read_global_options(const boost::program_options::variables_map& vm, GlobalOptions& out);
/// True when `arg` is a global option that takes a separate value ("--plugin-dir").
bool takes_value(const std::string& arg);

/// Parses `args`; any error (unknown option, missing value, extra argument) becomes a
/// UsageError naming `who`.
void parse_or_usage(const std::string& who, const std::vector<std::string>& args,
                    const boost::program_options::options_description& opts,
                    const boost::program_options::positional_options_description& positional,
                    boost::program_options::variables_map& vm);

/// Parses a subcommand's arguments with its options plus --help and the global options.
/// Returns false when --help was given (the help was printed).
bool parse_command(const Invocation& inv, const std::string& synopsis,
                   boost::program_options::options_description opts,
                   const boost::program_options::positional_options_description& positional,
                   boost::program_options::variables_map& vm, GlobalOptions& global);

/// Finds the subcommand named by the leading `words` and runs it.
int run_command(const std::vector<std::string>& words, const GlobalOptions& global);

/// The options `oneadapt run` and `oneadapt compare` share (--config, --input, --beta, ...).
boost::program_options::options_description experiment_options();
/// Those options as config overrides ("policy.beta=0.3"), plus every --set.
std::vector<std::string> overrides_from_flags(const boost::program_options::variables_map& vm);

/// One experiment's set-up: plugins loaded, the modality and task checked against each other,
/// the task's models loaded. Each call of source() opens the input anew (a fresh stream).
struct Experiment {
  /// With `load_models` false (a source whose task runs on a server) no model is loaded.
  Experiment(const RunConfig& config, const GlobalOptions& global, bool load_models = true);
  host::HostSource source() const;
  host::HostTask task() const;
  std::map<std::string, std::string> provenance(const host::HostSource& source) const;
  RunConfig config;
  std::string uri;
  host::PluginRegistry registry;
  const host::TaskEntry* task_entry = nullptr;
  std::map<std::string, std::shared_ptr<Model>> models;
};

/// Loads each model `task` declares: the config's [task.models] path, else its default asset.
std::map<std::string, std::shared_ptr<Model>> load_task_models(const host::TaskEntry& task,
                                                               const RunConfig& c);

/// The grid a comparison searches (docs/compare.md): the config's compare.grid over the default
/// subsample of the ladders (compare.max_grid), the reference value always kept; set as the
/// experiment's ladder overrides, so that every source it opens has the grid as its ladders.
struct CompareGrid {
  std::vector<KnobSpec> knobs;         ///< the opened stream's knobs with the grid as ladders
  std::vector<Configuration> configs;  ///< every configuration of the grid
  std::string line;                    ///< "knob: values, ... (N configurations; ...)"
};
CompareGrid set_compare_grid(Experiment& x, const CompareSpec& cmp);

/// One number through a printf format ("%.3f") for tables.
std::string fmt(const char* f, double v);

/// "a,b,,c" -> {"a", "b", "c"}: a comma-separated flag value, empty items dropped.
std::vector<std::string> split_list(const std::string& text);

/// `oneadapt compare --config JOINT.toml` (docs/joint.md, "Comparing"): OneAdapt-joint against the
/// ways of splitting one link between the streams.
int compare_joint(const std::string& file, const boost::program_options::variables_map& vm,
                  const GlobalOptions& global);

/// OUT/joint-bytes.png from OUT/joint.jsonl (docs/joint.md): each stream's bytes per round, their
/// total and the link's budget over time.
void plot_joint(const std::filesystem::path& out, const std::vector<std::string>& names);

/// Runs gnuplot on `script`; a warning (not an error) when it fails: the data files stay.
void gnuplot(const std::filesystem::path& script);

/// The task side of one stream of a joint run (a server over NATS: `oneadapt source`), owned by
/// the caller and alive until run_joint returns.
using InferenceFactory = std::function<adapt::Inference*(
    const std::string& name, const RunConfig& config, const host::HostSource& source)>;
/// `oneadapt run --config JOINT.toml` (docs/joint.md); with `remote`, each stream's task runs
/// where it says (`oneadapt source --config JOINT.toml`).
int run_joint(const std::string& file, const boost::program_options::variables_map& vm,
              const GlobalOptions& global, const InferenceFactory& remote);

/// --nats URL and --auth FILE (serve, source, compare).
void add_nats_options(boost::program_options::options_description& opts);
/// The link those options name (a UsageError without --nats or with credentials in the URL).
net::LinkOptions link_options(const boost::program_options::variables_map& vm,
                              const std::string& name);

/// What a server started with --jobs-dir DIR runs for `oneadapt compare --nats`: each job's
/// comparison set up as in one process (its config, input and models under DIR or the asset
/// cache, its models on `device`), its grid part evaluated or its run run, the result returned.
split::JobRunner compare_job_runner(const GlobalOptions& global,
                                    const std::filesystem::path& jobs_dir,
                                    const std::string& device);

/// A fresh private folder under the temporary directory (mkdtemp), removed with what it holds
/// when this goes: where a job server runs a job before sending its files back.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// A job server's check of the files a config names (load_run_config's ConfigFileCheck): a file
/// `allowed` refuses is one error naming it and its key ("not under this server's --jobs-dir").
ConfigFileCheck refuse_outside(std::function<bool(const std::filesystem::path&)> allowed);

/// `compare --nats URL`: the link to the job servers with --timeout and --grid-jobs checked
/// (UsageError); null without --nats.
std::unique_ptr<net::NatsLink> compare_link(const boost::program_options::variables_map& vm);

/// The server's side of a distributed joint comparison (`compare --nats` on a config with
/// [[stream]] tables; compare_job_runner hands such jobs on once its --jobs-dir holds the
/// config): each stream's grid part evaluated, or one policy's joint run on the link scaled, its
/// files returned. `allowed` says whether an input or model path may be read.
split::JobRunner joint_job_runner(const GlobalOptions& global, const std::string& device,
                                  std::function<bool(const std::filesystem::path&)> allowed);

/// A comparison's grid figures for configurations `which` (indices into `configs`) with every
/// interval's reference (a grid job's result, a run job's table).
nlohmann::json cache_table(const adapt::OutcomeCache& cache,
                           const std::vector<Configuration>& configs,
                           const std::set<std::size_t>& which);
/// Takes such a table into `cache` (what it holds stays); Error(corrupt_data) naming `from` when
/// the table is malformed or its references disagree with the cache's.
void merge_table(adapt::OutcomeCache& cache, const std::vector<Configuration>& configs,
                 const nlohmann::json& table, const std::string& from);

/// Loads plugins from the search path for `global`; returns the directories searched.
std::vector<std::filesystem::path> load_plugins(const GlobalOptions& global,
                                                host::PluginRegistry& registry);

}  // namespace oneadapt::cli
