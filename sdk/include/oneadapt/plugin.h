/* oneadapt SDK: the plugin entry point, in C.
 *
 * A plugin exports exactly one symbol, `oneadapt_plugin_entry`, a function returning a pointer
 * to a static descriptor. The host reads `abi_version` and `size` before anything else and
 * refuses a plugin built for another ABI, LibTorch or C++ library ABI. Only then does it call
 * `register_plugin`, which never lets an exception out: it returns non-zero and writes a
 * one-line reason into `error`.
 *
 * Plugin authors do not write this by hand: they use ONEADAPT_PLUGIN from oneadapt/plugin.hpp.
 */
#ifndef ONEADAPT_PLUGIN_H
#define ONEADAPT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bits of oneadapt_plugin_descriptor::build_flags. */
#define ONEADAPT_FLAG_CXX11_ABI 0x1u /* built with _GLIBCXX_USE_CXX11_ABI=1 */

/* The layout of the first two fields never changes; the rest is versioned by abi_version. */
typedef struct oneadapt_plugin_descriptor {
  uint32_t abi_version;    /* ONEADAPT_ABI_VERSION the plugin was built against */
  uint32_t size;           /* sizeof(oneadapt_plugin_descriptor) in the plugin */
  uint32_t torch_version;  /* LibTorch major * 10000 + minor * 100 */
  uint32_t build_flags;    /* ONEADAPT_FLAG_* */
  const char* name;        /* plugin name, e.g. "video" */
  const char* version;     /* plugin version, e.g. "1.0.0" */
  const char* description; /* one line */
  /* Registers the plugin's modalities and tasks with `registrar` (a oneadapt::Registrar*).
   * Returns 0 on success; otherwise writes a NUL-terminated reason into `error`. */
  int (*register_plugin)(void* registrar, char* error, size_t error_size);
} oneadapt_plugin_descriptor;

typedef const oneadapt_plugin_descriptor* (*oneadapt_plugin_entry_fn)(void);

#define ONEADAPT_PLUGIN_ENTRY_SYMBOL "oneadapt_plugin_entry"

#ifdef __cplusplus
}
#endif

#endif /* ONEADAPT_PLUGIN_H */
