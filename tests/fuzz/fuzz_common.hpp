// Shared by the fuzz targets (libFuzzer, `make fuzz`) and their replay driver (`make test`
// replays tests/fuzz/corpus/TARGET/ through replay_main.cpp with the normal build): the input
// written to a file under a per-process temporary directory, with the extension the parser
// expects (the parsers read files, as users give them files).
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace fuzz {

// The engine's allocation limits, lowered so that an input that reaches them fails with the
// engine's own error instead of libFuzzer's memory limit (-rss_limit_mb=6000 with ASan's
// overhead): 512 MB per tensor, 1 GB for a model's constants. Set before any target runs.
inline const bool limits_set = [] {
  ::setenv("ONEADAPT_MAX_TENSOR_BYTES", "536870912", 0);
  ::setenv("ONEADAPT_MAX_MODEL_BYTES", "1073741824", 0);
  return true;
}();

inline std::filesystem::path scratch() {
  static const std::filesystem::path dir = [] {
    auto d =
        std::filesystem::temp_directory_path() / ("oneadapt-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::filesystem::path write(const std::string& name, const uint8_t* data, std::size_t size) {
  const auto p = scratch() / name;
  std::ofstream(p, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return p;
}

}  // namespace fuzz
