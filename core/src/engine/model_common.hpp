// Helpers shared by the engine's format loaders (internal to core/engine).
#pragma once

#include <ATen/ATen.h>
#include <oneadapt/error.hpp>
#include <oneadapt/model.hpp>

#include <cstdint>
#include <exception>
#include <filesystem>
#include <new>
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

/// The most bytes one tensor that a model file makes the engine allocate may take (weights,
/// folded constants, shapes read from the file): ONEADAPT_MAX_TENSOR_BYTES, default 4 GiB.
std::uint64_t max_tensor_bytes();

/// The most bytes all of a model's constants may take together (weights, initializers and the
/// values folded at load; a view counts as its own size): ONEADAPT_MAX_MODEL_BYTES, default
/// 4 GiB. Many tensors each under max_tensor_bytes() must not exhaust the host either.
std::uint64_t max_model_bytes();

/// A limit for an error line: "4.3 GB", "536.9 MB" or "1000 bytes".
std::string limit_text(std::uint64_t bytes);

/// The element count of `shape`, checked: every dimension >= 0, the product without overflow
/// and at most max_tensor_bytes() / `element_size`; Error(model) naming `what` and the limit
/// otherwise (a 150-byte file must not make the engine allocate 100 GB).
int64_t checked_numel(const std::vector<int64_t>& shape, std::size_t element_size,
                      const std::string& what);

/// Reduces `x` over `axes` (already non-negative): kind is "Mean", "Sum", "Max", "Min" or
/// "Prod"; the TensorFlow.js and ONNX importers share it.
at::Tensor reduce_axes(const at::Tensor& x, std::vector<int64_t> axes, bool keep,
                       const std::string& kind);

/// Runs `build` (a loader's parsing and set-up) so that every error it raises names `model`
/// first: an Error keeps its code, any other exception becomes Errc::model.
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
  } catch (const std::bad_alloc&) {
    throw Error(Errc::model, model.string() + ": out of memory while loading");
  } catch (const std::exception&
               e) {  // JSON, filesystem and parsing errors: still one line naming the file
    throw Error(Errc::model, model.string() + ": " + one_line(e.what()));
  }
}

/// Compares names with embedded numbers by value: "Identity_2" < "Identity_10".
int natural_compare(const std::string& a, const std::string& b);

}  // namespace oneadapt::engine
