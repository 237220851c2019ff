// oneadapt SDK: what a plugin's source file uses to declare itself.
//
//   #include <oneadapt/sdk.hpp>
//   static void register_plugin(oneadapt::Registrar& r) {
//     r.add_modality({"my-sensor", "...", "image/rgb-f32-chw", knobs, params, open_my_sensor});
//   }
//   ONEADAPT_PLUGIN("my-sensor", "1.0.0", "Frames from my sensor", register_plugin)
#pragma once

#include <torch/csrc/api/include/torch/version.h>

#include <cstring>
#include <exception>

#include "oneadapt/modality.hpp"
#include "oneadapt/plugin.h"
#include "oneadapt/task.hpp"
#include "oneadapt/version.hpp"

/// LibTorch version this translation unit is compiled against, as the descriptor records it.
#define ONEADAPT_TORCH_VERSION (TORCH_VERSION_MAJOR * 10000u + TORCH_VERSION_MINOR * 100u)

#if defined(_GLIBCXX_USE_CXX11_ABI) && _GLIBCXX_USE_CXX11_ABI
#define ONEADAPT_BUILD_FLAGS ONEADAPT_FLAG_CXX11_ABI
#else
#define ONEADAPT_BUILD_FLAGS 0u
#endif

namespace oneadapt {

/// Receives a plugin's modalities and tasks. Implemented by the host; it validates each
/// record (names, knob ladders, parameter defaults) and throws Error when one is unusable.
class ONEADAPT_API Registrar {
 public:
  virtual ~Registrar() = default;
  virtual void add_modality(ModalityInfo info) = 0;
  virtual void add_task(TaskInfo info) = 0;
};

namespace detail {
/// The C edge of a plugin: runs the plugin's registration function and turns any exception
/// into an error code and a message, so that nothing is thrown across the C entry point.
inline int call_register(void (*fn)(Registrar&), void* registrar, char* error,
                         std::size_t error_size) noexcept {
  auto fail = [&](const char* what) {
    if (error && error_size) {
      std::strncpy(error, what ? what : "unknown error", error_size - 1);
      error[error_size - 1] = '\0';
    }
    return 1;
  };
  if (!registrar) return fail("no registrar");
  try {
    fn(*static_cast<Registrar*>(registrar));
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  } catch (...) {
    return fail("registration threw a non-standard exception");
  }
}
}  // namespace detail

}  // namespace oneadapt

/// Declares the plugin. Write it once, at namespace scope, in one source file of the plugin.
/// REGISTER_FN is a `void(oneadapt::Registrar&)` function.
#define ONEADAPT_PLUGIN(NAME, VERSION, DESCRIPTION, REGISTER_FN)                              \
  static int oneadapt_register_trampoline_(void* registrar, char* error,                      \
                                           std::size_t error_size) noexcept {                 \
    return ::oneadapt::detail::call_register(&REGISTER_FN, registrar, error, error_size);     \
  }                                                                                           \
  extern "C" __attribute__((visibility("default"))) const oneadapt_plugin_descriptor*         \
  oneadapt_plugin_entry(void) {                                                               \
    static const oneadapt_plugin_descriptor descriptor = {ONEADAPT_ABI_VERSION,               \
                                                          sizeof(oneadapt_plugin_descriptor), \
                                                          ONEADAPT_TORCH_VERSION,             \
                                                          ONEADAPT_BUILD_FLAGS,               \
                                                          NAME,                               \
                                                          VERSION,                            \
                                                          DESCRIPTION,                        \
                                                          &oneadapt_register_trampoline_};    \
    return &descriptor;                                                                       \
  }
