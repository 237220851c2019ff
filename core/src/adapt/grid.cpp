#include "adapt/grid.hpp"

#include <algorithm>

namespace oneadapt::adapt {

std::vector<Configuration> all_configurations(const std::vector<KnobSpec>& knobs) {
  std::vector<Configuration> out;
  if (knobs.empty()) return out;
  std::vector<std::size_t> pos(knobs.size(), 0);
  while (true) {
    out.push_back(Configuration::at_indices(knobs, pos));
    std::size_t k = 0;
    while (k < knobs.size() && ++pos[k] == knobs[k].values.size()) pos[k++] = 0;
    if (k == knobs.size()) break;
  }
  return out;
}

std::map<std::string, std::vector<std::string>> default_grid(const std::vector<KnobSpec>& knobs,
                                                             std::size_t max_configs) {
  std::vector<std::vector<std::string>> ladders;
  for (const auto& k : knobs) {
    std::vector<std::string> l;
    for (const auto& v : k.values) l.push_back(v.label);
    ladders.push_back(l);
  }
  auto product = [&] {
    std::size_t p = 1;
    for (const auto& l : ladders) p *= l.size();
    return p;
  };
  while (product() > std::max<std::size_t>(max_configs, 1)) {
    auto longest =
        std::max_element(ladders.begin(), ladders.end(),
                         [](const auto& a, const auto& b) { return a.size() < b.size(); });
    if (longest->size() <= 2) break;
    std::vector<std::string> thinned;
    for (std::size_t i = 0; i < longest->size(); ++i)
      if (i == 0 || i + 1 == longest->size() || i % 2 == 0) thinned.push_back((*longest)[i]);
    if (thinned.size() == longest->size())
      thinned.erase(thinned.begin() + 1);  // three values: drop the middle one
    *longest = thinned;
  }
  std::map<std::string, std::vector<std::string>> out;
  for (std::size_t k = 0; k < knobs.size(); ++k) out[knobs[k].key] = ladders[k];
  return out;
}

std::string grid_text(const std::map<std::string, std::vector<std::string>>& grid,
                      const std::vector<KnobSpec>& knobs) {
  std::string out;
  for (const auto& k : knobs) {
    auto it = grid.find(k.key);
    if (it == grid.end()) continue;
    std::string values;
    for (const auto& v : it->second) values += (values.empty() ? "" : ",") + v;
    out += (out.empty() ? "" : " ") + k.key + "=" + values;
  }
  return out;
}

}  // namespace oneadapt::adapt
