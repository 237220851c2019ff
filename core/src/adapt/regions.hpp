// Tiles of a spatial map covered by regions (the EAAR- and DDS-style policies,
// policies/regions.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include <oneadapt/modality.hpp>
#include <oneadapt/task.hpp>

namespace oneadapt::adapt {

/// The tiles of a map covering `regions` ([0,1] coordinates), dilated by `dilate` tiles.
std::vector<std::uint8_t> tiles_of(const SpatialSpec& s, const std::vector<Region>& regions,
                                   int dilate);

}  // namespace oneadapt::adapt
