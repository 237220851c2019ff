// The main() of every doctest executable, with a guard: a run that executes zero test cases
// (a CTest entry whose name matches nothing, e.g. a name that doctest_discover_tests split at a
// ';') or a test case that makes zero assertions fails, and a run whose test cases were all
// skipped (TEST_SKIP, tests/guard.hpp) exits 77, which CTest reports as skipped
// (SKIP_RETURN_CODE 77, set by tests/CMakeLists.txt on every doctest entry).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <iostream>
#include <string>
#include <vector>

#include "guard.hpp"

namespace {

struct GuardState {
  unsigned ran = 0, skipped = 0;
  bool current_skipped = false, run_ended = false;
  std::string current, skip_reason;
  std::vector<std::string> zero_assertions, skip_lines;
};

GuardState& state() {
  static GuardState s;
  return s;
}

// A doctest listener: counts the test cases that ran, their assertions and their skips.
struct GuardListener : doctest::IReporter {
  explicit GuardListener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override { state().run_ended = true; }
  void test_case_start(const doctest::TestCaseData& tc) override {
    auto& s = state();
    ++s.ran;
    s.current = tc.m_name;
    s.current_skipped = false;
  }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats& st) override {
    auto& s = state();
    if (s.current_skipped) {
      ++s.skipped;
      s.skip_lines.push_back(s.current + ": " + s.skip_reason);
    } else if (st.numAssertsCurrentTest == 0 && st.testCaseSuccess) {
      s.zero_assertions.push_back(s.current);
    }
  }
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

REGISTER_LISTENER("oneadapt-guard", 1, GuardListener);

}  // namespace

namespace test {
void skip(const std::string& why) {
  state().current_skipped = true;
  state().skip_reason = why;
}
}  // namespace test

int main(int argc, char** argv) {
  doctest::Context context;
  context.applyCommandLine(argc, argv);
  const int rc = context.run();
  if (context.shouldExit() || !state().run_ended) return rc;  // --list-test-cases, --help, ...
  const auto& s = state();
  for (const auto& line : s.skip_lines) std::cout << "[guard] SKIPPED " << line << '\n';
  if (rc != 0) return rc;
  if (s.ran == 0) {
    std::cout << "[guard] FAILED: no test case ran (a name that matches no test case: a CTest "
                 "entry split at ';' "
                 "by doctest_discover_tests, or a filter that selects nothing)\n";
    return 3;
  }
  if (!s.zero_assertions.empty()) {
    for (const auto& name : s.zero_assertions)
      std::cout << "[guard] FAILED: test case '" << name << "' made zero assertions\n";
    return 4;
  }
  if (s.skipped == s.ran) return 77;
  return 0;
}
