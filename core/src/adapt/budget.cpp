#include "adapt/budget.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <oneadapt/error.hpp>

namespace oneadapt::adapt {

namespace {

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
}

bool number(const std::string& s, double& v) {
  const std::string t = trim(s);
  if (t.empty()) return false;
  char* end = nullptr;
  v = std::strtod(t.c_str(), &end);
  return end == t.c_str() + t.size() && std::isfinite(v);
}

// A row quoted in an error: at most 60 characters, anything unprintable as '?'.
std::string clip(const std::string& s) {
  std::string out = s.size() > 60 ? s.substr(0, 57) + "..." : s;
  for (char& ch : out)
    if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7f) ch = '?';
  return out;
}

std::string num(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

}  // namespace

BudgetTrace BudgetTrace::constant(double kbps) {
  if (!std::isfinite(kbps) || !(kbps > 0))
    throw Error(Errc::invalid_argument,
                "budget: " + num(kbps) + " kbit/s is not a positive finite rate");
  BudgetTrace b;
  b.steps_ = {{0.0, kbps}};
  return b;
}

BudgetTrace BudgetTrace::parse(const std::string& text, const std::string& where) {
  BudgetTrace b;
  b.source_ = where;
  std::istringstream in(text);
  std::string line;
  std::size_t n = 0;
  bool header_seen = false;
  constexpr std::size_t kMaxSteps = 10'000'000;
  while (std::getline(in, line)) {
    ++n;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    auto fail = [&](const std::string& what) {
      throw Error(Errc::invalid_argument,
                  where + ":" + std::to_string(n) + ": " + what + " (rows are t_seconds,kbps)");
    };
    const auto comma = t.find(',');
    if (comma == std::string::npos || t.find(',', comma + 1) != std::string::npos)
      fail("expected two comma-separated fields, got '" + clip(t) + "'");
    double ts = 0, kbps = 0;
    const bool a = number(t.substr(0, comma), ts), c = number(t.substr(comma + 1), kbps);
    if (!a || !c) {
      if (!header_seen && b.steps_.empty() && !a && !c) {  // a header line: t_seconds,kbps
        header_seen = true;
        continue;
      }
      fail("'" + clip(t) + "' is not two finite numbers");
    }
    if (ts < 0) fail("time " + num(ts) + " is negative");
    if (!(kbps > 0)) fail("rate " + num(kbps) + " kbit/s is not positive");
    if (!b.steps_.empty() && !(ts > b.steps_.back().first))
      fail("time " + num(ts) + " does not increase (the previous row has " +
           num(b.steps_.back().first) + ")");
    if (b.steps_.size() >= kMaxSteps) fail("more than 10,000,000 rows");
    b.steps_.push_back({ts, kbps});
  }
  if (b.steps_.empty())
    throw Error(Errc::invalid_argument, where + ": the budget trace has no rows (t_seconds,kbps)");
  return b;
}

BudgetTrace BudgetTrace::load(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    throw Error(Errc::not_found, file.string() + ": no such budget trace (a CSV file)");
  const auto size = std::filesystem::file_size(file, ec);
  if (ec || size > 256u << 20)
    throw Error(Errc::invalid_argument, file.string() + ": budget trace larger than 256 MB");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(Errc::io, file.string() + ": cannot read the budget trace");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), file.string());
}

double BudgetTrace::kbps_at(double t) const {
  auto it =
      std::upper_bound(steps_.begin(), steps_.end(), t,
                       [](double x, const std::pair<double, double>& s) { return x < s.first; });
  return it == steps_.begin() ? steps_.front().second : std::prev(it)->second;
}

double BudgetTrace::bytes_over(double t, double duration) const {
  const double end = t + std::max(0.0, duration);
  double kbit = 0, x = t;
  while (x < end) {
    auto it =
        std::upper_bound(steps_.begin(), steps_.end(), x,
                         [](double v, const std::pair<double, double>& s) { return v < s.first; });
    const double next = it == steps_.end() ? end : std::min(end, it->first);
    kbit += kbps_at(x) * (next - x);
    if (next <= x) break;
    x = next;
  }
  return kbit * 125.0;
}

BudgetTrace BudgetTrace::scaled(double factor) const {
  if (!std::isfinite(factor) || !(factor > 0))
    throw Error(Errc::invalid_argument, "budget: a share of " + num(factor) + " is not positive");
  BudgetTrace b = *this;
  for (auto& s : b.steps_) s.second *= factor;
  b.share_ *= factor;
  return b;
}

std::string BudgetTrace::describe() const {
  if (share_ != 1.0 && !source_.empty()) {
    BudgetTrace whole = *this;
    for (auto& s : whole.steps_) s.second /= share_;
    whole.share_ = 1.0;
    return num(100 * share_) + " % of " + whole.describe();
  }
  if (source_.empty()) return "constant " + num(steps_.front().second) + " kbit/s";
  double lo = steps_.front().second, hi = lo;
  for (const auto& s : steps_) lo = std::min(lo, s.second), hi = std::max(hi, s.second);
  return "trace " + source_ + " (" + std::to_string(steps_.size()) + " steps, " + num(lo) + "-" +
         num(hi) + " kbit/s)";
}

}  // namespace oneadapt::adapt
