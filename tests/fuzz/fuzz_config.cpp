// Fuzz target: a run config (TOML), parsed with the experiment-config reader.
#include <oneadapt/error.hpp>

#include "fuzz_common.hpp"
#include "run_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = fuzz::write("run.toml", data, size);
  try {
    oneadapt::load_run_config(path, {});
  } catch (const oneadapt::Error&) {
  }
  return 0;
}
