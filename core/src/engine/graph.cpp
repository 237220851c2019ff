#include "engine/graph.hpp"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <oneadapt/error.hpp>

#include "engine/model_common.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace oneadapt::engine {

Graph::Graph(std::filesystem::path model)
    : model_(std::move(model)),
      plans_(1),
      profile_(std::getenv("ONEADAPT_PROFILE_OPS") != nullptr) {}

Graph::~Graph() {
  if (!profile_ || op_profile_.empty()) return;
  std::vector<std::pair<std::string, std::pair<double, long>>> rows(op_profile_.begin(),
                                                                    op_profile_.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  std::fprintf(stderr, "ONEADAPT_PROFILE_OPS %s\n%-24s %12s %10s %10s\n", model_.string().c_str(),
               "op", "total us", "calls", "us/call");
  for (const auto& [op, p] : rows)
    std::fprintf(stderr, "%-24s %12.0f %10ld %10.2f\n", op.c_str(), p.first, p.second,
                 p.first / static_cast<double>(p.second));
}

int Graph::constant(at::Tensor t) {
  if (t.defined()) constant_bytes_ += t.nbytes();
  if (constant_bytes_ > max_model_bytes())
    throw Error(Errc::model, model_.string() +
                                 ": the model's constants (weights and values folded at load) need "
                                 "more than the limit of " +
                                 limit_text(max_model_bytes()) +
                                 " (ONEADAPT_MAX_MODEL_BYTES raises it)");
  constants_.push_back(std::move(t));
  return -static_cast<int>(constants_.size());
}

int Graph::input() {
  input_slots_.push_back(slots_);
  return slots_++;
}

int Graph::plan() {
  plans_.emplace_back();
  return static_cast<int>(plans_.size()) - 1;
}

// Folding runs at load on constants the file holds: the broadcast of two modest constants
// ([N, 1] and [1, N]: an elementwise op or an outer product) can be quadratic in the file's
// size. Where the inputs broadcast together, the broadcast shape must fit the tensor limit.
void Graph::check_broadcast(const std::string& name, const std::string& op,
                            const Tensors& args) const {
  std::vector<int64_t> shape;
  std::size_t element = 1;
  bool any = false;
  for (const auto& t : args) {
    if (!t.defined() || t.dim() == 0) continue;
    element = std::max<std::size_t>(element, t.element_size());
    if (!any) {
      shape = t.sizes().vec(), any = true;
      continue;
    }
    const auto& a = shape;
    const auto b = t.sizes();
    const std::size_t rank = std::max(a.size(), b.size());
    std::vector<int64_t> out(rank, 1);
    for (std::size_t i = 0; i < rank; ++i) {
      const int64_t x = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
      const int64_t y = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
      if (x != y && x != 1 && y != 1) return;  // not a broadcast: the op sizes its own result
      out[i] = x == 1 ? y : x;
    }
    shape = std::move(out);
  }
  if (any) checked_numel(shape, element, model_.string() + ": node '" + name + "' (" + op + ")");
}

void Graph::fail(const std::string& name, const std::string& op, const std::exception& e) const {
  throw Error(Errc::model,
              model_.string() + ": node '" + name + "' (" + op + ") failed: " + one_line(e.what()));
}

std::vector<int> Graph::node(int plan, const std::string& name, const std::string& op,
                             std::vector<int> inputs, std::size_t outputs, Kernel kernel) {
  for (int r : inputs)
    if (r != kAbsent && (r >= slots_ || -r - 1 >= static_cast<int>(constants_.size())))
      throw Error(Errc::internal, "node '" + name + "' reads a value the graph does not have");
  // Constant when every input is (a node without inputs, ONNX's Constant, is one too).
  const bool all_constant = std::all_of(inputs.begin(), inputs.end(),
                                        [&](int r) { return r == kAbsent || is_constant(r); });
  if (all_constant) {  // fold now
    Tensors args;
    for (int r : inputs) args.push_back(r == kAbsent ? at::Tensor() : constant_value(r));
    check_broadcast(name, op, args);
    Tensors outs;
    try {
      at::NoGradGuard no_grad;
      outs = kernel(args);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail(name, op, e);
    }
    if (outs.size() < outputs)
      throw Error(Errc::model, "node '" + name + "' (" + op + ") gives " +
                                   std::to_string(outs.size()) + " outputs, " +
                                   std::to_string(outputs) + " are read");
    std::vector<int> refs;
    for (std::size_t o = 0; o < outputs; ++o) refs.push_back(constant(outs[o]));
    return refs;
  }
  Step st{name, op, std::move(inputs), {}, std::move(kernel)};
  for (std::size_t o = 0; o < outputs; ++o) st.out.push_back(slots_++);
  std::vector<int> refs = st.out;
  if (plan == 0) histogram_[op]++;
  plans_.at(static_cast<std::size_t>(plan)).push_back(std::move(st));
  return refs;
}

std::vector<int> Graph::branch(int plan, const std::string& name, int condition, int then_plan,
                               std::vector<int> then_results, int else_plan,
                               std::vector<int> else_results) {
  if (then_results.size() != else_results.size())
    throw Error(Errc::model, "node '" + name + "' (If): its branches give " +
                                 std::to_string(then_results.size()) + " and " +
                                 std::to_string(else_results.size()) + " outputs");
  Step st;
  st.name = name;
  st.op = "If";
  st.in = {condition};
  st.then_plan = then_plan, st.else_plan = else_plan;
  st.then_results = std::move(then_results), st.else_results = std::move(else_results);
  for (std::size_t o = 0; o < st.then_results.size(); ++o) st.out.push_back(slots_++);
  std::vector<int> refs = st.out;
  if (plan == 0) histogram_["If"]++;
  plans_.at(static_cast<std::size_t>(plan)).push_back(std::move(st));
  return refs;
}

void Graph::outputs(std::vector<int> refs) { output_refs_ = std::move(refs); }

void Graph::reads_of(int plan, std::vector<int>& out) const {
  for (const Step& st : plans_[static_cast<std::size_t>(plan)]) {
    out.insert(out.end(), st.in.begin(), st.in.end());
    if (!st.kernel) {
      out.insert(out.end(), st.then_results.begin(), st.then_results.end());
      out.insert(out.end(), st.else_results.begin(), st.else_results.end());
      reads_of(st.then_plan, out);
      reads_of(st.else_plan, out);
    }
  }
}

void Graph::finish() {
  // The last step of the main plan that reads each slot (a conditional reads whatever its
  // branches read); values are dropped after it unless they are outputs.
  auto& main = plans_[0];
  std::vector<int> last(static_cast<std::size_t>(slots_), -1);
  for (std::size_t k = 0; k < main.size(); ++k) {
    std::vector<int> reads = main[k].in;
    if (!main[k].kernel) {
      reads.insert(reads.end(), main[k].then_results.begin(), main[k].then_results.end());
      reads.insert(reads.end(), main[k].else_results.begin(), main[k].else_results.end());
      reads_of(main[k].then_plan, reads);
      reads_of(main[k].else_plan, reads);
    }
    for (int r : reads)
      if (r >= 0) last[static_cast<std::size_t>(r)] = static_cast<int>(k);
  }
  for (int r : output_refs_)
    if (r >= 0) last[static_cast<std::size_t>(r)] = -1;
  for (std::size_t s = 0; s < last.size(); ++s)
    if (last[s] >= 0) main[static_cast<std::size_t>(last[s])].frees.push_back(static_cast<int>(s));
}

const at::Tensor& Graph::value(int ref, const std::vector<at::Tensor>& slots) const {
  return ref >= 0 ? slots[static_cast<std::size_t>(ref)]
                  : constants_[static_cast<std::size_t>(-ref - 1)];
}

void Graph::run_plan(int plan, std::vector<at::Tensor>& slots) {
  Tensors args;
  for (const Step& st : plans_[static_cast<std::size_t>(plan)]) {
    if (!st.kernel) {  // a conditional
      bool cond = false;
      try {
        cond = value(st.in[0], slots).item<bool>();
      } catch (const std::exception& e) {
        fail(st.name, st.op, e);
      }
      run_plan(cond ? st.then_plan : st.else_plan, slots);
      const auto& results = cond ? st.then_results : st.else_results;
      for (std::size_t o = 0; o < st.out.size(); ++o)
        slots[static_cast<std::size_t>(st.out[o])] = value(results[o], slots);
    } else {
      args.clear();
      for (int ref : st.in) args.push_back(ref == kAbsent ? at::Tensor() : value(ref, slots));
      Tensors outs;
      const auto t0 =
          profile_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
      try {
        outs = st.kernel(args);
      } catch (const Error& e) {
        const std::string msg = e.what();
        if (msg.rfind(model_.string(), 0) == 0) throw;
        throw Error(e.code(), model_.string() + ": " + msg);  // a kernel's refusal names the model
      } catch (const std::exception& e) {
        fail(st.name, st.op, e);
      }
      if (profile_) {
        auto& p = op_profile_[st.op];
        p.first += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                       .count();
        p.second += 1;
      }
      if (outs.size() < st.out.size())
        throw Error(Errc::model, model_.string() + ": node '" + st.name + "' (" + st.op +
                                     ") gave " + std::to_string(outs.size()) + " outputs, " +
                                     std::to_string(st.out.size()) + " are read");
      for (std::size_t o = 0; o < st.out.size(); ++o)
        slots[static_cast<std::size_t>(st.out[o])] = std::move(outs[o]);
    }
    // Free what no later step needs (activations are large; autograd keeps its own references).
    for (int dead : st.frees) slots[static_cast<std::size_t>(dead)] = at::Tensor();
  }
}

Tensors Graph::run(const Tensors& inputs) {
  if (inputs.size() != input_slots_.size())
    throw Error(Errc::invalid_argument, model_.string() + ": expects " +
                                            std::to_string(input_slots_.size()) +
                                            " input(s), got " + std::to_string(inputs.size()));
  std::vector<at::Tensor> slots(static_cast<std::size_t>(slots_));
  for (std::size_t i = 0; i < inputs.size(); ++i)
    slots[static_cast<std::size_t>(input_slots_[i])] = inputs[i];
  run_plan(0, slots);
  Tensors out;
  for (int ref : output_refs_) out.push_back(value(ref, slots));
  return out;
}

}  // namespace oneadapt::engine
