// The asset cache: where tools/fetch-assets puts the pinned models and data.
#pragma once

#include <filesystem>
#include <string>

namespace oneadapt {

/// $ONEADAPT_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/oneadapt (as tools/fetch-assets).
std::filesystem::path asset_cache_dir();

/// The cached file `relative` (e.g. "nanodet/nanodet.json"). Throws Error(not_found) naming
/// the cache and telling how to fetch it when it is not there.
std::filesystem::path asset_path(const std::string& relative);

}  // namespace oneadapt
