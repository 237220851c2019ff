// The test guard's API for test cases (tests/main.cpp implements it): a test case that cannot
// run here (an optional asset is absent, no CUDA device) says so with TEST_SKIP, and CTest
// reports it as skipped (exit code 77, SKIP_RETURN_CODE), never as passed.
// Include it after <doctest/doctest.h> (which, in a TU that uses ATen, comes after ATen:
// stack.md G2).
#pragma once

#include <string>

namespace test {
/// Marks the running test case as skipped with `why` (printed by the guard at the end).
void skip(const std::string& why);
}  // namespace test

/// Skips the rest of the current test case: TEST_SKIP("openWakeWord's models are absent");
#define TEST_SKIP(why) \
  do {                 \
    ::test::skip(why); \
    return;            \
  } while (false)
