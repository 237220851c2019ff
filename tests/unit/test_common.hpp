// Include this first in every unit test. ATen pulls in glog, whose CHECK macros would
// silently replace doctest's if doctest came first (stack.md G2).
#pragma once

#include <ATen/ATen.h>

#include <doctest/doctest.h>

#include "../guard.hpp"

#include <string>

#include "plugin_registry.hpp"

namespace test {
/// Directory of the test-only fixture plugins (good and deliberately broken ones).
inline const char* fixture_dir() { return ONEADAPT_FIXTURE_PLUGIN_DIR; }
/// True when `haystack` contains `needle`; doctest prints both on failure via INFO.
inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}
}  // namespace test
