// The registry of the synthetic shift fixture (tests/fixtures/plugins/shift.cpp), shared by the
// budget and joint tests; their targets define ONEADAPT_SHIFT_PLUGIN_DIR.
#pragma once

#include "plugin_registry.hpp"

namespace test_support {

inline oneadapt::host::PluginRegistry& shift_plugins() {
  static oneadapt::host::PluginRegistry r;
  static const bool loaded = (r.scan_directory(ONEADAPT_SHIFT_PLUGIN_DIR), true);
  (void)loaded;
  return r;
}

}  // namespace test_support
