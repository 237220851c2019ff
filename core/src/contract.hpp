// The plugin contract check (`oneadapt plugins check`; GStreamer's GstHarness idea for our SDK):
// runs a modality, and optionally a task, through the properties the core relies on, on real
// input, and reports each as a row (check, result, figure):
//   - the rendering's shape does not depend on the configuration (and equals original()'s);
//   - the same configuration renders the same bytes and tensor twice;
//   - bytes do not grow going down any ladder (summed over the checked intervals);
//   - probe() agrees with render() on the probed sample (bytes and values);
//   - the finite-difference InputGrad of every knob is finite and not identically zero
//     somewhere on its ladder;
//   - saliency() of a gradient is finite and broadcasts to one sample;
//   - with a task: one result per sample, accuracy(reference, reference) = 1, and the proxy
//     gives a finite, non-zero DNNGrad;
//   - a bad configuration (knobs missing, non-finite values) raises oneadapt::Error;
//   - what the source sends (Rendering::wire) decodes on the modality's receiver to the
//     rendered input, element by element, and its size is header_bytes + bytes (skipped for a
//     modality without a receiver).
#pragma once

#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "plugin_registry.hpp"

namespace oneadapt::host {

struct ContractRow {
  std::string check;
  std::string result;  ///< "pass", "FAIL" or "skip"
  std::string figure;  ///< what was measured, or why it failed
};

struct ContractReport {
  std::vector<ContractRow> rows;
  bool passed() const;
};

struct ContractOptions {
  std::size_t intervals = 2;  ///< intervals whose bytes are summed along each ladder
  /// Opens the modality's receiver for a stream of this format (Source::stream_format); throws
  /// Error(unsupported) when the modality has none. Empty: the receiver check is skipped.
  std::function<HostReceiver(const std::map<std::string, std::string>&)> open_receiver;
};

/// Installs handlers for the signals a crashing plugin raises (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
/// SIGABRT): they print one line naming the check that was running and exit 1.
void report_crashes_in_checks();

/// Runs the checks. `open` opens the stream anew (each call a fresh source); `task` may be null.
/// Errors inside a check are that check's failure; the others still run. `progress` (may be
/// null) receives the name of each check as it starts.
ContractReport check_contract(const std::function<HostSource()>& open, HostTask* task,
                              const ContractOptions& options, std::ostream* progress = nullptr);

}  // namespace oneadapt::host
