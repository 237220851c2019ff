// Fuzz target: a warm-start state.json, read by the OneAdapt policy for the video knobs.
#include <oneadapt/error.hpp>

#include "adapt/policies/policies.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace oneadapt;
  static const adapt::StreamSpec stream = [] {
    adapt::StreamSpec s;
    s.knobs = {KnobSpec::numeric("resolution", "", "", {1, 0.5}, ""),
               KnobSpec::numeric("qp", "", "", {20, 30, 40}, "")};
    s.reference = Configuration::most_expensive(s.knobs);
    return s;
  }();
  adapt::PolicyArgs args;
  args.warm_start = fuzz::write("state.json", data, size);
  try {
    adapt::make_oneadapt(args)->begin(stream);
  } catch (const Error&) {
  }
  return 0;
}
