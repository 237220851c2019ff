// Loading plugin files: the good fixtures load, each broken fixture is reported with its own
// reason, and one bad file never stops the others.
#include "test_common.hpp"

#include <cstdlib>
#include <filesystem>

using namespace oneadapt;
using oneadapt::host::PluginRegistry;
namespace fs = std::filesystem;

namespace {
std::string failure_for(const PluginRegistry& r, const std::string& file) {
  for (const auto& f : r.failures())
    if (f.path.filename() == file) return f.reason;
  return "<no failure recorded for " + file + ">";
}
}  // namespace

TEST_CASE("scanning the fixture directory loads the good plugins") {
  PluginRegistry r;
  r.scan_directory(test::fixture_dir());
  REQUIRE(r.find_modality("fixture-ramp"));
  REQUIRE(r.find_task("fixture-brightness"));
  REQUIRE(r.find_modality("fixture-throws"));
  REQUIRE(r.find_modality("fixture-contract"));
  CHECK(r.find_modality("fixture-ramp")->file->name == "oneadapt-fixtures");
  CHECK(r.find_modality("fixture-ramp")->file->version == "0.1.0");
  CHECK(r.find_modality("fixture-ramp")->info.knobs.size() == 2);
  CHECK(r.files().size() == 3);  // fixtures, throws_at_runtime, broken_contract
  CHECK_FALSE(r.find_modality("fixture-brightness"));  // names are per kind
}

TEST_CASE("each broken plugin file is reported with its specific reason") {
  PluginRegistry r;
  r.scan_directory(test::fixture_dir());
  struct Case {
    const char* file;
    const char* reason;
  } cases[] = {
      {"fixture_bad_abi.so", "built for plugin ABI 999, this oneadapt loads ABI 8"},
      {"fixture_torch_mismatch.so", "built against LibTorch 1.2, this oneadapt uses LibTorch 1.13"},
      {"fixture_no_entry.so", "no entry point 'oneadapt_plugin_entry'"},
      {"fixture_not_a_library.so", "not a loadable shared library: invalid ELF header"},
      {"fixture_register_throws.so",
       "plugin 'fixture-register-throws' failed to register: fixture: registration fails on "
       "purpose"},
      {"fixture_raw_throw.so",
       "plugin 'fixture-raw-throw' failed to register: it threw a non-standard exception"},
      {"fixture_unterminated.so",
       "descriptor's name, version or description is not a terminated string of at most 511 "
       "characters"},
      {"fixture_undefined_symbol.so",
       "not a loadable shared library: undefined symbol: oneadapt_fixture_symbol_nobody_defines"},
      {"fixture_bad_knob.so", "modality 'fixture-bad-knob': knob 'levels': ladder is empty"},
  };
  for (const auto& c : cases) {
    std::string reason = failure_for(r, c.file);
    INFO(c.file << ": " << reason);
    CHECK(test::contains(reason, c.reason));
  }
  CHECK(r.failures().size() == std::size(cases));
}

TEST_CASE("a name already provided by an earlier file is refused, first one wins") {
  fs::path tmp = fs::temp_directory_path() / ("oneadapt-dup-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  fs::copy_file(fs::path(test::fixture_dir()) / "fixture_good.so", tmp / "copy_of_good.so",
                fs::copy_options::overwrite_existing);
  PluginRegistry r;
  r.scan_directory(test::fixture_dir());
  r.scan_directory(tmp);
  CHECK(r.find_modality("fixture-ramp")->file->path.filename() == "fixture_good.so");
  std::string reason = failure_for(r, "copy_of_good.so");
  INFO(reason);
  CHECK(test::contains(reason, "modality 'fixture-ramp' is already provided by"));
  fs::remove_all(tmp);
}

TEST_CASE("missing files and directories") {
  PluginRegistry r;
  r.scan_directory("/nonexistent/oneadapt/plugins");
  CHECK(r.failures().empty());
  CHECK_FALSE(r.load_file("/nonexistent/plugin.so"));
  REQUIRE(r.failures().size() == 1);
  CHECK(test::contains(r.failures()[0].reason, "No such file"));
  r.scan_directory(test::fixture_dir());
  auto loaded = r.files().size();
  r.scan_directory(test::fixture_dir());  // the same directory twice loads nothing twice
  CHECK(r.files().size() == loaded);
}

TEST_CASE("search path: command line, then ONEADAPT_PLUGIN_PATH, then the default") {
  ::setenv("ONEADAPT_PLUGIN_PATH", "/tmp/oa-env-a:/tmp/oa-cli::/tmp/oa-env-b", 1);
  auto dirs = host::plugin_search_path({"/tmp/oa-cli"});
  ::unsetenv("ONEADAPT_PLUGIN_PATH");
  REQUIRE(dirs.size() >= 3);
  CHECK(dirs[0] == "/tmp/oa-cli");
  CHECK(dirs[1] == "/tmp/oa-env-a");
  CHECK(dirs[2] == "/tmp/oa-env-b");  // duplicates and empty entries dropped
  CHECK(dirs.back().filename() == "plugins");
}
