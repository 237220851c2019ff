// TorchScript models: torch::jit::load, parameters frozen, eval mode; outputs flattened from
// a tensor, a tuple or a list of tensors.
#include <torch/script.h>

#include "engine/engine.hpp"
#include "engine/model_common.hpp"

namespace oneadapt::engine {

namespace {

namespace fs = std::filesystem;

void flatten(const c10::IValue& v, std::vector<at::Tensor>& out, const fs::path& path) {
  if (v.isTensor()) {
    out.push_back(v.toTensor());
  } else if (v.isTuple()) {
    for (const auto& e : v.toTupleRef().elements()) flatten(e, out, path);
  } else if (v.isList()) {
    for (const auto& e : v.toListRef()) flatten(e, out, path);
  } else {
    throw Error(Errc::unsupported, path.string() + ": model returns a " + v.tagKind() +
                                       "; only tensors, tuples and lists of tensors are supported");
  }
}

class TorchScriptModel final : public EngineModel {
 public:
  TorchScriptModel(const fs::path& path, const LoadOptions& options) : path_(path) {
    device_ = resolve_device(options.device, path);
    try {
      module_ = torch::jit::load(path.string(), device_);
    } catch (const c10::Error& e) {
      throw Error(Errc::corrupt_data,
                  path.string() + ": not a loadable TorchScript file: " + one_line(e.what()));
    }
    module_.eval();
    for (auto p : module_.parameters()) {
      p.requires_grad_(false);
      parameters_ += p.numel();
    }
    if (!module_.find_method("forward"))
      throw Error(Errc::unsupported, path.string() + ": TorchScript module has no forward method");
    const auto& schema = module_.get_method("forward").function().getSchema();
    for (std::size_t i = 1; i < schema.arguments().size(); ++i)  // 0 is self
      inputs_.push_back({schema.arguments()[i].name(), {}, "float32"});
    const auto& returns = schema.returns();
    std::string ret = returns.empty() ? "output" : returns[0].type()->str();
    outputs_.push_back({ret, {}, "float32"});
    for (const auto& m : module_.modules()) {
      auto type = m.type()->name();
      histogram_[type ? type->name() : "module"]++;
    }
  }

  std::string format() const override { return "torchscript"; }
  const std::vector<TensorSpec>& inputs() const override { return inputs_; }
  const std::vector<TensorSpec>& outputs() const override { return outputs_; }
  ModelSummary summary() const override {
    return {format(), path_, parameters_, histogram_, device_.str()};
  }

  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& inputs) override {
    check_inputs(inputs, inputs_, path_);
    std::vector<c10::IValue> args;
    for (const auto& x : inputs) args.emplace_back(x.device() == device_ ? x : x.to(device_));
    std::vector<at::Tensor> out;
    try {
      flatten(module_.forward(args), out, path_);
    } catch (const c10::Error& e) {
      throw Error(Errc::model, path_.string() + ": forward failed: " + one_line(e.what()));
    }
    return out;
  }

 private:
  fs::path path_;
  c10::Device device_{at::kCPU};
  torch::jit::Module module_;
  std::vector<TensorSpec> inputs_, outputs_;
  std::int64_t parameters_ = 0;
  std::map<std::string, int> histogram_;
};

}  // namespace

std::shared_ptr<EngineModel> load_torchscript_model(const fs::path& path,
                                                    const LoadOptions& options) {
  return std::make_shared<TorchScriptModel>(path, options);
}

}  // namespace oneadapt::engine
