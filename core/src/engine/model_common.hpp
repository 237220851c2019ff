// Helpers shared by the engine's format loaders (internal to core/engine).
#pragma once

#include <ATen/ATen.h>
#include <oneadapt/error.hpp>
#include <oneadapt/model.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace oneadapt::engine {

/// "cpu", "cuda" or "cuda:N"; throws Error naming `model` when CUDA is asked for but absent.
c10::Device resolve_device(const std::string& device, const std::filesystem::path& model);

/// "float32", "int64", ...
std::string dtype_name(at::ScalarType t);

/// "[1,3,416,416]" (-1 prints as ?).
std::string shape_text(at::IntArrayRef shape);
std::string shape_text(const std::vector<int64_t>& shape);

/// Throws Error(invalid_argument) naming the file and the input when `inputs` do not match
/// the count, rank or static dimensions of `specs`.
void check_inputs(const std::vector<at::Tensor>& inputs, const std::vector<TensorSpec>& specs,
                  const std::filesystem::path& model);

/// Reduces `x` over `axes` (already non-negative): kind is "Mean", "Sum", "Max", "Min" or
/// "Prod"; the TensorFlow.js and ONNX importers share it.
at::Tensor reduce_axes(const at::Tensor& x, std::vector<int64_t> axes, bool keep, const std::string& kind);

/// Runs `build` (a loader's parsing and set-up) so that every error it raises names `model`
/// first: an Error keeps its code, a LibTorch error becomes Errc::model.
template <class F>
void with_model_context(const std::filesystem::path& model, F&& build) {
  try {
    build();
  } catch (const Error& e) {
    std::string msg = e.what();
    if (msg.rfind(model.string(), 0) == 0) throw;
    throw Error(e.code(), model.string() + ": " + msg);
  } catch (const c10::Error& e) {
    throw Error(Errc::model, model.string() + ": " + one_line(e.what()));
  }
}

/// Compares names with embedded numbers by value: "Identity_2" < "Identity_10".
int natural_compare(const std::string& a, const std::string& b);

}  // namespace oneadapt::engine
