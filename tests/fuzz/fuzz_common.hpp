// Shared by the fuzz targets (libFuzzer, `make fuzz`) and their replay driver (`make test`
// replays tests/fuzz/corpus/TARGET/ through replay_main.cpp with the normal build): the input
// written to a file under a per-process temporary directory, with the extension the parser
// expects (the parsers read files, as users give them files).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace fuzz {

inline std::filesystem::path scratch() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("oneadapt-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::filesystem::path write(const std::string& name, const uint8_t* data, std::size_t size) {
  const auto p = scratch() / name;
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return p;
}

}  // namespace fuzz
