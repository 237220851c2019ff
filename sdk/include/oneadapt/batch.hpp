// oneadapt SDK: a helper for Task::infer_batch() (cross-stream batching, task.hpp).
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace oneadapt {

/// Splits `outputs`, computed on every part's samples concatenated along dimension 0, back into
/// one list of outputs per part (part i has samples[i].size(0) rows), as infer_batch() returns.
inline std::vector<std::vector<at::Tensor>> split_batch(const std::vector<at::Tensor>& outputs,
                                                        const std::vector<at::Tensor>& samples) {
  std::vector<std::vector<at::Tensor>> parts;
  int64_t row = 0;
  for (const auto& s : samples) {
    std::vector<at::Tensor> part;
    for (const auto& o : outputs) part.push_back(o.narrow(0, row, s.size(0)));
    parts.push_back(std::move(part));
    row += s.size(0);
  }
  return parts;
}

}  // namespace oneadapt
