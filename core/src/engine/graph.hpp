// The one graph executor of the engine: the TensorFlow.js and ONNX front ends parse their
// formats and build a Graph of kernels (ATen ops, so autograd works); the Graph owns what they
// had each written on their own: values addressed by integer references resolved at load (no
// name lookups while a model runs), constant folding at load, sub-plans for conditional
// branches (ONNX If), freeing every value after its last reader, the "node 'x' (Op) failed"
// error context, and the per-op profile (ONEADAPT_PROFILE_OPS=1).
#pragma once

#include <ATen/core/Tensor.h>

#include <climits>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace oneadapt::engine {

using Tensors = std::vector<at::Tensor>;

class Graph {
 public:
  /// A node's computation: its input tensors (an absent optional input is undefined) to its
  /// outputs.
  using Kernel = std::function<Tensors(const Tensors&)>;
  /// The reference of an absent optional input.
  static constexpr int kAbsent = INT_MIN;

  /// `model` names the file in errors.
  explicit Graph(std::filesystem::path model);
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  /// A constant (weights, folded values): a reference < 0.
  int constant(at::Tensor t);
  /// A run-time input of the graph, in the order run() takes them: a slot reference >= 0.
  int input();
  /// A sub-plan (the branch of a conditional); plan 0, the main one, exists from the start.
  int plan();
  /// A node of `plan`: when every input is constant (or it has none) it is run at once (under
  /// no-grad) and its outputs become constants; otherwise it becomes a step with fresh slots.
  /// `outputs` is how many outputs its readers use (the kernel may return more, never fewer).
  /// Returns the references of its outputs.
  std::vector<int> node(int plan, const std::string& name, const std::string& op,
                        std::vector<int> inputs, std::size_t outputs, Kernel kernel);
  /// A conditional in `plan`: runs `then_plan` or `else_plan` by the boolean `condition` and
  /// hands their `*_results` on as its outputs. Returns the references of its outputs.
  std::vector<int> branch(int plan, const std::string& name, int condition, int then_plan,
                          std::vector<int> then_results, int else_plan,
                          std::vector<int> else_results);
  /// The graph's outputs, in the order run() returns them.
  void outputs(std::vector<int> refs);
  /// Ends the build: plans when each value of the main plan can be freed. Call once.
  void finish();

  /// Runs the graph (the inputs already on the right device and type).
  Tensors run(const Tensors& inputs);

  bool is_constant(int ref) const { return ref < 0 && ref != kAbsent; }
  const at::Tensor& constant_value(int ref) const {
    return constants_.at(static_cast<std::size_t>(-ref - 1));
  }
  /// Op -> steps of the main plan (folded nodes are not counted).
  const std::map<std::string, int>& histogram() const { return histogram_; }

 private:
  struct Step {
    std::string name, op;
    std::vector<int> in, out;
    Kernel kernel;  // empty for a conditional
    int then_plan = -1, else_plan = -1;
    std::vector<int> then_results, else_results;
    std::vector<int> frees;  // slots dead after this step (main plan)
  };
  const at::Tensor& value(int ref, const std::vector<at::Tensor>& slots) const;
  void run_plan(int plan, std::vector<at::Tensor>& slots);
  void reads_of(int plan,
                std::vector<int>& out) const;  // every ref a plan (and its sub-plans) reads
  [[noreturn]] void fail(const std::string& name, const std::string& op,
                         const std::exception& e) const;
  void check_broadcast(const std::string& name, const std::string& op,
                       const std::vector<at::Tensor>& args) const;

  std::filesystem::path model_;
  std::vector<at::Tensor> constants_;  // ref -1, -2, ...
  std::uint64_t constant_bytes_ = 0;   // their bytes together (max_model_bytes())
  std::vector<std::vector<Step>> plans_;
  std::vector<int> input_slots_, output_refs_;
  int slots_ = 0;
  std::map<std::string, int> histogram_;
  bool profile_ = false;
  std::map<std::string, std::pair<double, long>> op_profile_;  // op -> (total us, calls)
};

}  // namespace oneadapt::engine
