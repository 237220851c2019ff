// Shared by the fuzz targets that compile a modality plugin's source file in (fuzz_media.cpp,
// fuzz_receiver.cpp): the modality the plugin registers, captured once through its entry point.
#pragma once

#include <oneadapt/plugin.hpp>

#include <cstdio>
#include <cstdlib>
#include <optional>

extern "C" const oneadapt_plugin_descriptor* oneadapt_plugin_entry(void);

namespace fuzz {

struct Capture : oneadapt::Registrar {
  std::optional<oneadapt::ModalityInfo> modality;
  void add_modality(oneadapt::ModalityInfo info) override { modality = std::move(info); }
  void add_task(oneadapt::TaskInfo) override {}
};

inline const oneadapt::ModalityInfo& modality() {
  static const Capture captured = [] {
    Capture c;
    char error[512] = {0};
    if (oneadapt_plugin_entry()->register_plugin(&c, error, sizeof error) != 0 || !c.modality) {
      std::fprintf(stderr, "fuzz: the plugin did not register a modality: %s\n", error);
      std::abort();
    }
    return c;
  }();
  return *captured.modality;
}

}  // namespace fuzz
