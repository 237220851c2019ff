// oneadapt SDK: version numbers shared by the host and every plugin.
#pragma once

/// Plugin ABI version. Bump whenever a type or virtual function that crosses the plugin
/// boundary changes; the host refuses plugins built for another version.
#define ONEADAPT_ABI_VERSION \
  8u  // 2: Source::saliency(), Source::probe(); 3: Task::end_interval(), Source::render_selected(),
      // Source::spatial()/render_map(), Task::regions(); 4: Rendering::header_bytes,
      // Source::input_grad() removed; 5: SpatialSpec::base_knob, SpatialSpec::level_offsets;
      // 6: Rendering::wire, Source::stream_format(), Receiver, ModalityInfo::open_receiver;
      // 7: Receiver::saliency(); 8: Task::batch_key(), Task::infer_batch()

/// Version of the SDK headers (semantic versioning).
#define ONEADAPT_SDK_VERSION "0.8.0"

/// Symbol visibility for types that cross the plugin boundary. Plugins are built with
/// -fvisibility=hidden; their typeinfo and vtables must still be shared with the host.
#if defined(__GNUC__)
#define ONEADAPT_API __attribute__((visibility("default")))
#else
#define ONEADAPT_API
#endif
