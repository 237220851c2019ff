// Fuzz target: a point-cloud file of the extension FUZZ_EXT (pcd, ply, las, bin, rawlog), read
// by the lidar modality's reader.
#include <oneadapt/error.hpp>

#include "../../modalities/lidar/lidar_io.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = fuzz::write(std::string("cloud.") + FUZZ_EXT, data, size);
  try {
    oneadapt::lidar::read_cloud(path, size % 2 == 0);
  } catch (const oneadapt::Error&) {
  }
  return 0;
}
