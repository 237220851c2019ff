// A bandwidth budget (docs/budgets.md): a constant rate or a trace, a step function of time read
// from a CSV file of `t_seconds,kbps` rows. The harness gives each interval its budget in bytes
// (the trace integrated over the interval) and records it; policies read it through
// IntervalContext::budget_bytes() (the rate the source's link offers now).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace oneadapt::adapt {

class BudgetTrace {
 public:
  /// A constant budget of `kbps` kbit/s (Error unless finite and > 0).
  static BudgetTrace constant(double kbps);
  /// A trace from a CSV file: an optional header line, '#' comments, rows `t_seconds,kbps` with
  /// t >= 0 strictly increasing and kbps finite and > 0; the first row's rate also holds before
  /// its time. Error naming the file and line on any problem.
  static BudgetTrace load(const std::filesystem::path& file);
  /// The same from text (`where` names it in errors).
  static BudgetTrace parse(const std::string& text, const std::string& where);

  /// The same link scaled by `factor` (> 0): a stream's share of a shared budget. Its
  /// description names the share.
  BudgetTrace scaled(double factor) const;

  /// The rate at time t (kbit/s).
  double kbps_at(double t) const;
  /// Bytes the link carries over [t, t + duration): the step function integrated (kbit = 125 B).
  double bytes_over(double t, double duration) const;
  /// "constant 2000 kbit/s" or "trace FILE (N steps, 300-2000 kbit/s)".
  std::string describe() const;
  const std::vector<std::pair<double, double>>& steps() const { return steps_; }
  const std::string& source() const { return source_; }

 private:
  std::vector<std::pair<double, double>> steps_;  // (t_seconds, kbps), t strictly increasing
  std::string source_;                            // the file, or empty for a constant
  double share_ = 1.0;                            // scaled(): the fraction of the trace
};

}  // namespace oneadapt::adapt
