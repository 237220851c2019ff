// Region-based spatial baselines in the same harness (video with the spatial knob on, a task
// that reports regions, e.g. detection):
//   eaar: each interval is sent with the tiles around the previous interval's confident
//         regions (dilated by one tile) at the best level and the others at the worst
//         (Liu et al., MobiCom 2019: encode the regions the last results point at in high quality);
//   dds:  two passes per interval (Du et al., SIGCOMM 2020): the whole interval at the worst
//         level first; the server infers it and asks again, at the best level, for the tiles of
//         the regions it is unsure about (candidates below the task's threshold); the second
//         rendering's results are final. Both passes' bytes and inferences are charged.
// Both run at one CRF of the base quality knob (their points on the trade-off curve).
#pragma once

#include <string>

#include "adapt/runner.hpp"

namespace oneadapt::adapt {

RunSummary run_region_baseline(host::HostSource& source, host::HostTask& task, const std::string& policy, double crf,
                               const RunSpec& spec, std::ostream& progress);

/// The tiles of a map covering `regions` ([0,1] coordinates), dilated by `dilate` tiles.
std::vector<std::uint8_t> tiles_of(const SpatialSpec& s, const std::vector<Region>& regions, int dilate);

}  // namespace oneadapt::adapt
