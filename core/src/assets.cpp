#include "assets.hpp"

#include <oneadapt/error.hpp>

#include <cstdlib>

namespace oneadapt {

std::filesystem::path asset_cache_dir() {
  if (const char* c = std::getenv("ONEADAPT_CACHE"); c && *c) return c;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::filesystem::path(x) / "oneadapt";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home ? home : ".") / ".cache" / "oneadapt";
}

std::filesystem::path asset_path(const std::string& relative) {
  std::filesystem::path p = asset_cache_dir() / relative;
  std::error_code ec;
  if (!std::filesystem::exists(p, ec))
    throw Error(Errc::not_found,
                "asset " + p.string() + " is missing (run tools/fetch-assets, or make)");
  return p;
}

}  // namespace oneadapt
