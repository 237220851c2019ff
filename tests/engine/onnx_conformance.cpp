// Runs the official ONNX operator tests (Debian libonnx-testdata: node/<test>/model.onnx plus
// test_data_set_N/input_K.pb and output_K.pb) through the engine's ONNX importer.
//   onnx_conformance NODE_DIR [--expect FILE] [--markdown FILE]
// A test whose model the importer refuses (an op, opset or data type it does not support) is
// skipped with that reason: the importer does not claim it. Every test it loads must match the
// expected outputs (rtol 1e-3, atol 1e-5); any mismatch or crash fails the run. With --expect,
// FILE lists the tests that must pass (tests/engine/onnx_conformance.pass): one of them that
// skips or fails is a regression and fails the run (an importer that refused every model would
// otherwise pass), and a pass not in the list is printed so that the list can be raised.
#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "engine/engine.hpp"

namespace fs = std::filesystem;
using namespace oneadapt;

namespace {

struct Outcome {
  std::string test, status, reason;
};

std::string compare(const at::Tensor& got, const at::Tensor& want) {
  if (got.sizes() != want.sizes()) {
    std::ostringstream s;
    s << "shape " << got.sizes() << ", expected " << want.sizes();
    return s.str();
  }
  if (want.numel() == 0) return "";
  if (!want.is_floating_point()) {
    if (!got.to(want.scalar_type()).equal(want)) return "values differ";
    return "";
  }
  at::Tensor g = got.to(at::kDouble), w = want.to(at::kDouble);
  at::Tensor both_nan = at::isnan(g) & at::isnan(w);
  at::Tensor ok = ((g - w).abs() <= 1e-5 + 1e-3 * w.abs()) | both_nan | (g == w);
  if (!ok.all().item<bool>()) {
    double diff = (g - w).abs().masked_fill(both_nan, 0).max().item<double>();
    return "max abs diff " + std::to_string(diff);
  }
  return "";
}

Outcome run_test(const fs::path& dir) {
  Outcome o{dir.filename().string(), "pass", ""};
  std::shared_ptr<engine::EngineModel> model;
  try {
    model = engine::load_model(dir / "model.onnx");
  } catch (const Error& e) {
    std::string msg = e.what();
    auto at = msg.find("model.onnx: ");
    return {o.test, "skip", at == std::string::npos ? msg : msg.substr(at + 12)};
  }
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0)
      sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  for (const auto& set : sets) {
    std::vector<at::Tensor> inputs, expected;
    try {
      for (std::size_t i = 0; fs::exists(set / ("input_" + std::to_string(i) + ".pb")); ++i)
        inputs.push_back(
            engine::read_onnx_tensor_file(set / ("input_" + std::to_string(i) + ".pb")));
      for (std::size_t i = 0; fs::exists(set / ("output_" + std::to_string(i) + ".pb")); ++i)
        expected.push_back(
            engine::read_onnx_tensor_file(set / ("output_" + std::to_string(i) + ".pb")));
    } catch (const Error& e) {
      return {o.test, "skip", std::string("test data: ") + e.what()};
    }
    std::vector<at::Tensor> got;
    try {
      at::NoGradGuard g;
      got = model->forward(inputs);
    } catch (const Error& e) {
      std::string msg = e.what();
      if (e.code() == Errc::unsupported) return {o.test, "skip", msg.substr(msg.find(": ") + 2)};
      return {o.test, "fail", msg.substr(msg.find(": ") + 2)};
    } catch (const std::exception& e) {
      return {o.test, "fail", one_line(e.what())};
    }
    if (got.size() != expected.size())
      return {o.test, "fail",
              std::to_string(got.size()) + " outputs, expected " + std::to_string(expected.size())};
    for (std::size_t k = 0; k < got.size(); ++k) {
      std::string diff = compare(got[k], expected[k]);
      if (!diff.empty())
        return {o.test, "fail",
                set.filename().string() + " output " + std::to_string(k) + ": " + diff};
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: onnx_conformance NODE_DIR [--expect FILE] [--markdown FILE]\n";
    return 2;
  }
  fs::path root = argv[1];
  std::string markdown, expect;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--markdown")
      markdown = argv[i + 1];
    else if (flag == "--expect")
      expect = argv[i + 1];
    else {
      std::cerr << "onnx_conformance: unknown option " << flag << '\n';
      return 2;
    }
  }
  std::vector<std::string> expected_passes;
  if (!expect.empty()) {
    std::ifstream in(expect);
    if (!in) {
      std::cerr << "onnx_conformance: " << expect << ": cannot read the expected pass list\n";
      return 2;
    }
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line[0] != '#') expected_passes.push_back(line);
    if (expected_passes.empty()) {
      std::cerr << "onnx_conformance: " << expect << ": the expected pass list is empty\n";
      return 2;
    }
  }
  if (!fs::is_directory(root)) {
    std::cerr << "onnx_conformance: " << root << " is not a directory (install libonnx-testdata)\n";
    return 2;
  }
  std::vector<fs::path> tests;
  for (const auto& e : fs::directory_iterator(root))
    if (fs::exists(e.path() / "model.onnx")) tests.push_back(e.path());
  std::sort(tests.begin(), tests.end());
  std::vector<Outcome> outcomes;
  std::map<std::string, int> counts;
  for (const auto& t : tests) {
    outcomes.push_back(run_test(t));
    counts[outcomes.back().status]++;
    if (outcomes.back().status == "fail")
      std::cout << "FAIL " << outcomes.back().test << ": " << outcomes.back().reason << '\n';
  }
  if (!markdown.empty()) {
    std::ofstream md(markdown);
    md << "# ONNX operator conformance\n\nGenerated by `build/bin/onnx_conformance "
          "/usr/share/libonnx-testdata/data/node --markdown docs/onnx-conformance.md` (run by "
          "`make test` as "
          "`onnx.conformance`). Source: Debian libonnx-testdata 1.12 (the official per-operator "
          "node tests). "
          "A test is **run** when the importer loads its model; it then must match the expected "
          "outputs "
          "(rtol 1e-3, atol 1e-5). A test is **skipped** when the importer refuses the model or an "
          "input "
          "(the reason is the importer's own error message).\n\n"
       << "Totals: " << counts["pass"] << " passed, " << counts["fail"] << " failed, "
       << counts["skip"] << " skipped.\n\n"
       << "## Run and passed\n\n";
    for (const auto& o : outcomes)
      if (o.status == "pass") md << "- " << o.test << '\n';
    md << "\n## Skipped, with the reason\n\n| test | reason |\n|---|---|\n";
    for (const auto& o : outcomes)
      if (o.status != "pass")
        md << "| " << o.test << " | " << (o.status == "fail" ? "FAILED: " : "") << o.reason
           << " |\n";
  }
  int regressions = 0;
  if (!expect.empty()) {
    std::map<std::string, const Outcome*> by_name;
    for (const auto& o : outcomes) by_name[o.test] = &o;
    for (const auto& name : expected_passes) {
      auto it = by_name.find(name);
      if (it == by_name.end()) {
        std::cout << "REGRESSION " << name << ": listed in " << expect << " but not found under "
                  << root.string() << '\n';
        ++regressions;
      } else if (it->second->status != "pass") {
        std::cout << "REGRESSION " << name << ": " << it->second->status << " ("
                  << it->second->reason << "), listed as passing in " << expect << '\n';
        ++regressions;
      }
    }
    int fresh = 0;
    for (const auto& o : outcomes)
      if (o.status == "pass" && std::find(expected_passes.begin(), expected_passes.end(), o.test) ==
                                    expected_passes.end()) {
        std::cout << "NEW PASS " << o.test << " (add it to " << expect << ")\n";
        ++fresh;
      }
    std::cout << expected_passes.size() << " expected to pass, " << regressions << " regressed, "
              << fresh << " new\n";
  }
  std::cout << counts["pass"] << " passed, " << counts["fail"] << " failed, " << counts["skip"]
            << " skipped\n";
  if (counts["fail"] || regressions) {
    std::cerr << "onnx_conformance: error: " << counts["fail"] << " failed, " << regressions
              << " regressed against " << (expect.empty() ? std::string("(no pass list)") : expect)
              << '\n';
    return 1;
  }
  return 0;
}
