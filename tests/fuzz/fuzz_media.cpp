// Fuzz target: a media file opened through a modality plugin's own source (the plugin's source
// file is compiled in, MEDIA_SOURCE; FUZZ_EXT names the container), the way `oneadapt run`
// opens it: the source with its default parameters, two intervals read and their original
// samples taken. Rendering (encoding) is left out: it reads only what the decoder produced.
#include <ATen/ATen.h>

#include <oneadapt/error.hpp>
#include <oneadapt/plugin.hpp>

#include <memory>

#include "fuzz_common.hpp"
#include "fuzz_modality.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& info = fuzz::modality();
  oneadapt::SourceSpec spec;
  spec.uri = fuzz::write(std::string("media.") + FUZZ_EXT, data, size).string();
  for (const auto& p : info.params) spec.params.set(p.key, p.default_value);
  if (spec.params.has("max_interval_mb"))
    spec.params.set("max_interval_mb", "256");  // under libFuzzer's 2 GB
  try {
    auto source = info.open(spec);
    oneadapt::IntervalInfo interval;
    for (int k = 0; k < 2 && source->next_interval(interval); ++k) (void)source->original();
  } catch (const oneadapt::Error&) {
  }
  return 0;
}
