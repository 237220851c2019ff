// `oneadapt model info PATH` and `oneadapt model run PATH [--image FILE] [--grad]`.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli_common.hpp"
#include "engine/engine.hpp"
#include "image_io.hpp"

namespace po = boost::program_options;

namespace oneadapt::cli {

namespace {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i)
    out += (i ? "," : "") + (shape[i] < 0 ? std::string("?") : std::to_string(shape[i]));
  return out + "]";
}

std::string fmt(double v, const char* f = "%.4g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

std::shared_ptr<engine::EngineModel> load(const po::variables_map& vm) {
  if (!vm.count("model")) throw UsageError("missing model PATH (see --help)");
  return engine::load_model(vm["model"].as<std::string>(), {vm["device"].as<std::string>()});
}

po::options_description model_options() {
  po::options_description opts("Options");
  opts.add_options()("model", po::value<std::string>(), "model file (model.json, .pt)")(
      "device", po::value<std::string>()->default_value("cpu"), "cpu or cuda");
  return opts;
}

}  // namespace

int run_model_info(const Invocation& inv) {
  po::positional_options_description positional;
  positional.add("model", 1);
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "PATH", model_options(), positional, vm, global)) return kOk;
  auto model = load(vm);
  auto s = model->summary();
  std::cout << text::table({{"Format", s.format},
                            {"File", s.path.string()},
                            {"Device", s.device},
                            {"Parameters", std::to_string(s.parameters)}});
  std::cout << "\nInputs:\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : model->inputs())
    rows.push_back({"  " + t.name, shape_str(t.shape), t.dtype});
  std::cout << text::table(rows) << "\nOutputs:\n";
  rows.clear();
  for (const auto& t : model->outputs())
    rows.push_back({"  " + t.name, shape_str(t.shape), t.dtype});
  std::cout << text::table(rows) << "\nOps (executed, after constant folding):\n";
  std::vector<std::pair<std::string, int>> ops(s.op_histogram.begin(), s.op_histogram.end());
  std::sort(ops.begin(), ops.end(), [](auto& a, auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  rows.clear();
  for (const auto& [op, n] : ops) rows.push_back({"  " + op, std::to_string(n)});
  std::cout << text::table(rows);
  return kOk;
}

int run_model_run(const Invocation& inv) {
  po::options_description opts = model_options();
  opts.add_options()("image", po::value<std::string>(),
                     "image file, or a video (see --frame); "
                     "without it the input is mid-grey")(
      "frame", po::value<int>()->default_value(0), "frame index when --image is a video")(
      "input-range", po::value<double>()->default_value(1.0),
      "pixel values span [0, RANGE] (1 or 255)")(
      "grad", po::bool_switch(),
      "also backpropagate the sum of all outputs to the input and print the "
      "input-gradient norm")("shape", po::value<std::vector<std::string>>()->composing(),
                             "NAME=D1,D2,...: the shape of an input whose dimensions are dynamic "
                             "(repeatable; default 1 each)")(
      "fill", po::value<std::vector<std::string>>()->composing(),
      "NAME=VALUE: fill an input with a constant (repeatable; default mid-range, 0.5 x "
      "--input-range)");
  po::positional_options_description positional;
  positional.add("model", 1);
  po::variables_map vm;
  GlobalOptions global;
  if (!parse_command(inv, "PATH", opts, positional, vm, global)) return kOk;
  auto model = load(vm);

  auto name_value = [&](const char* flag) {
    std::map<std::string, std::string> out;
    if (vm.count(flag))
      for (const auto& kv : vm[flag].as<std::vector<std::string>>()) {
        auto eq = kv.find('=');
        if (eq == std::string::npos)
          throw UsageError(std::string("--") + flag + " '" + kv + "': expected NAME=VALUE");
        std::string name = kv.substr(0, eq);
        if (std::none_of(model->inputs().begin(), model->inputs().end(),
                         [&](const TensorSpec& t) { return t.name == name; }))
          throw UsageError(std::string("--") + flag + ": the model has no input '" + name + "'");
        out[name] = kv.substr(eq + 1);
      }
    return out;
  };
  const auto shapes = name_value("shape"), fills = name_value("fill");
  std::vector<at::Tensor> inputs;
  for (std::size_t i = 0; i < model->inputs().size(); ++i) {
    const auto& spec = model->inputs()[i];
    std::string note;
    at::Tensor x;
    if (vm.count("image") && i == 0) {
      at::Tensor rgb = read_rgb_frame(vm["image"].as<std::string>(), vm["frame"].as<int>());
      x = image_to_input(rgb, spec.shape, vm["input-range"].as<double>(), &note);
    } else {
      std::vector<int64_t> shape = spec.shape;
      if (auto it = shapes.find(spec.name); it != shapes.end()) {
        shape.clear();
        std::stringstream dims(it->second);
        for (std::string d; std::getline(dims, d, ',');) {
          int64_t v = 0;
          if (!parse_integer(d, v) || v < 0)
            throw UsageError("--shape " + spec.name + ": '" + it->second +
                             "' is not a list of sizes");
          shape.push_back(v);
        }
      }
      for (auto& d : shape) d = d < 0 ? 1 : d;
      double value = 0.5 * vm["input-range"].as<double>();
      if (auto it = fills.find(spec.name); it != fills.end() && !parse_number(it->second, value))
        throw UsageError("--fill " + spec.name + ": '" + it->second + "' is not a number");
      at::ScalarType type = spec.dtype == "int64"   ? at::kLong
                            : spec.dtype == "int32" ? at::kInt
                                                    : at::kFloat;
      x = at::full(shape, value, at::TensorOptions().dtype(type));
      note = "constant " + fmt(value) + " " + shape_str(shape) + " " + spec.dtype;
    }
    std::cout << "input " << spec.name << ": " << note << '\n';
    inputs.push_back(x);
  }

  const bool grad = vm["grad"].as<bool>();
  std::vector<at::Tensor> outputs;
  double forward_ms = 0, backward_ms = 0;
  {
    std::unique_ptr<at::NoGradGuard> no_grad;
    if (grad) {
      for (auto& x : inputs)
        if (x.is_floating_point()) x.requires_grad_(true);
    } else {
      no_grad = std::make_unique<at::NoGradGuard>();
    }
    auto t0 = std::chrono::steady_clock::now();
    outputs = model->forward(inputs);
    forward_ms = ms_since(t0);
  }
  std::vector<std::vector<std::string>> rows{{"  output", "shape", "min", "max", "mean"}};
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    at::Tensor o = outputs[i].detach().to(at::kDouble);
    std::string name = i < model->outputs().size() ? model->outputs()[i].name : std::to_string(i);
    rows.push_back({"  " + name, shape_str(outputs[i].sizes().vec()), fmt(o.min().item<double>()),
                    fmt(o.max().item<double>()), fmt(o.mean().item<double>())});
  }
  std::cout << text::table(rows) << "forward: " << fmt(forward_ms, "%.1f") << " ms\n";
  if (grad) {
    at::Tensor total = at::zeros({}, outputs[0].options().dtype(at::kFloat));
    for (const auto& o : outputs)
      if (o.is_floating_point() && o.requires_grad()) total = total + o.to(at::kFloat).sum();
    auto t0 = std::chrono::steady_clock::now();
    std::vector<at::Tensor> wrt;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i].requires_grad())
        wrt.push_back(inputs[i]), names.push_back(model->inputs()[i].name);
    auto grads = engine::input_gradients(total, wrt);
    backward_ms = ms_since(t0);
    for (std::size_t i = 0; i < grads.size(); ++i)
      std::cout << "input-gradient of sum(outputs) w.r.t. " << names[i] << ": L2 norm "
                << fmt(grads[i].norm().item<double>()) << ", max |g| "
                << fmt(grads[i].abs().max().item<double>()) << '\n';
    std::cout << "backward: " << fmt(backward_ms, "%.1f") << " ms\n";
  }
  return kOk;
}

}  // namespace oneadapt::cli
