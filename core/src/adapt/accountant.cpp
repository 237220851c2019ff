#include "adapt/accountant.hpp"

#include <cmath>

namespace oneadapt::adapt {

std::uint64_t config_update_bytes(const Configuration& c) { return 4 + c.settings().size(); }

std::uint64_t map_update_bytes(const QualityMap& m, std::size_t levels) {
  std::uint64_t bits = 1;
  while ((std::uint64_t{1} << bits) < levels) ++bits;
  return 4 + (m.level.size() * bits + 7) / 8;
}

std::uint64_t Accountant::sent(const Configuration& c, std::uint64_t payload, std::uint64_t header,
                               bool reference_only) {
  now_.bytes += payload;
  if (reference_only) {
    now_.reference_bytes += payload + header;
    now_.header_bytes += header;  // profiling data is its own short stream
    return payload + header;
  }
  const bool changed = !last_sent_ || *last_sent_ != c;
  if (changed) now_.header_bytes += header;
  last_sent_ = c;
  return payload + (changed ? header : 0);
}

void Accountant::configure(const Configuration& c) {
  if (last_configured_ && *last_configured_ != c) now_.feedback_bytes += config_update_bytes(c);
  last_configured_ = c;
}

void Accountant::map(const QualityMap& m, std::size_t levels) {
  if (last_map_ && *last_map_ != m.level) now_.feedback_bytes += map_update_bytes(m, levels);
  last_map_ = m.level;
}

void Accountant::forward(double units, bool profiling) {
  now_.forwards += units;
  if (profiling) now_.profiling_forwards += units;
}

void Accountant::backward(long passes) {
  now_.backward_passes += passes;
  now_.backward_units += static_cast<double>(passes) * backward_weight_;
}

}  // namespace oneadapt::adapt
