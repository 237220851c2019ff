// Experiment configuration: a TOML file (configs/*.toml) with command-line overrides merged
// on top. Every key is checked: an unknown key or a value of the wrong type is one error
// naming the file and the key.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "adapt/runner.hpp"
#include "plugin_registry.hpp"

namespace oneadapt {

struct RunConfig {
  std::filesystem::path file;  ///< the config file (for messages); empty without one
  // [input]
  std::string modality;
  std::string uri;  ///< "asset:REL" names a file in the asset cache
  double interval = 1.0;
  std::size_t max_intervals = 0;
  host::ComponentSettings modality_settings;  ///< [modality.params], [modality.knobs]
  // [task]
  std::string task;
  host::ComponentSettings task_settings;      ///< [task.params]
  std::map<std::string, std::string> models;  ///< [task.models] role -> path or asset:REL
  // [policy] and [run]
  adapt::RunSpec run;
  std::string device = "cpu";
};

/// Parses `file` (TOML; empty path: start from nothing), then applies `overrides`, each
/// "dotted.key=value" with the value written as in TOML (a bare word is a string).
/// Throws Error(invalid_argument) naming the file and key on any problem.
RunConfig load_run_config(const std::filesystem::path& file, const std::vector<std::string>& overrides);

/// "asset:REL" -> the cached file (Error when missing); anything else unchanged.
std::string resolve_asset_uri(const std::string& uri);

}  // namespace oneadapt
