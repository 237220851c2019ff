// The search space of a comparison: one grid of knob values that every policy uses (OneAdapt's
// ladders included), so that no baseline searches a coarser space than the method.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include <oneadapt/knobs.hpp>

namespace oneadapt::adapt {

/// Every configuration of the knobs' ladders (their Cartesian product), the first knob fastest.
std::vector<Configuration> all_configurations(const std::vector<KnobSpec>& knobs);

/// The ladders of a grid of at most `max_configs` configurations: the knobs' own ladders when
/// their product fits, else subsampled (each ladder keeps both ends; the longest ladder loses
/// every other interior value first, until the product fits or every ladder has two values).
std::map<std::string, std::vector<std::string>> default_grid(const std::vector<KnobSpec>& knobs,
                                                             std::size_t max_configs);

/// "resolution=1,0.8,0.6 qp=20,28,36 fps=10" for messages and results.
std::string grid_text(const std::map<std::string, std::vector<std::string>>& grid,
                      const std::vector<KnobSpec>& knobs);

}  // namespace oneadapt::adapt
