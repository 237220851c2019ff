#include "contract.hpp"

#include <ATen/ATen.h>

#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

#include "engine/engine.hpp"
#include "text.hpp"

namespace oneadapt::host {

bool ContractReport::passed() const {
  return std::none_of(rows.begin(), rows.end(),
                      [](const ContractRow& r) { return r.result == "FAIL"; });
}

namespace {

// A broken property: the check's failure, with what was found.
struct Broken : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string shape_of(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

using text::human_bytes;

// The reference configuration with knob `k` at ladder index `i`.
Configuration with_index(const std::vector<KnobSpec>& knobs, std::size_t k, std::size_t i) {
  std::vector<std::size_t> idx(knobs.size(), 0);
  idx[k] = i;
  return Configuration::at_indices(knobs, idx);
}

Configuration cheapest(const std::vector<KnobSpec>& knobs) {
  std::vector<std::size_t> idx;
  for (const auto& k : knobs) idx.push_back(k.values.size() - 1);
  return Configuration::at_indices(knobs, idx);
}

// Sample `t` of a rendering (a probe may hold only the probed sample).
at::Tensor sample_of(const Rendering& r, std::size_t t, std::size_t T) {
  if (r.input.size(0) == static_cast<int64_t>(T)) return r.input[static_cast<int64_t>(t)];
  if (r.input.size(0) == 1) return r.input[0];
  throw Broken("the probe's input has " + std::to_string(r.input.size(0)) +
               " samples (expected 1 or " + std::to_string(T) + ")");
}

// The check that is running, for the crash handler (a fixed buffer: read in a signal handler).
char g_current[256] = "";

extern "C" void on_crash(int sig) {
  char line[400];
  std::snprintf(
      line, sizeof line,
      "oneadapt: error: plugins check: the plugin crashed (signal %d, %s) in the check '%s'\n", sig,
      sig == SIGSEGV  ? "SIGSEGV"
      : sig == SIGBUS ? "SIGBUS"
      : sig == SIGFPE ? "SIGFPE"
      : sig == SIGILL ? "SIGILL"
                      : "SIGABRT",
      g_current);
  const ssize_t written = ::write(2, line, std::strlen(line));
  (void)written;
  ::_exit(1);
}

}  // namespace

void report_crashes_in_checks() {
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(sig, on_crash);
}

ContractReport check_contract(const std::function<HostSource()>& open, HostTask* task,
                              const ContractOptions& options, std::ostream* progress) {
  ContractReport report;
  auto check = [&](const std::string& name, const std::function<std::string(std::string&)>& body) {
    if (progress) *progress << "check: " << name << '\n' << std::flush;
    std::snprintf(g_current, sizeof g_current, "%s", name.c_str());
    std::string figure;
    try {
      std::string result = body(figure);
      report.rows.push_back({name, result, figure});
    } catch (const Broken& e) {
      report.rows.push_back({name, "FAIL", e.what()});
    } catch (const std::exception& e) {
      report.rows.push_back({name, "FAIL", one_line(e.what())});
    }
  };

  std::optional<HostSource> src;
  std::vector<KnobSpec> knobs;
  IntervalInfo info;
  at::Tensor G;
  std::size_t T = 0;
  check("opens a stream and yields an interval; original() has one entry per sample",
        [&](std::string& fig) {
          src.emplace(open());
          knobs = src->knobs();
          if (knobs.empty()) throw Broken("the source has no knobs");
          if (!src->next_interval(info)) throw Broken("the stream has no interval");
          G = src->original();
          T = info.samples;
          if (!G.defined() || G.dim() < 1) throw Broken("original() returned no tensor");
          if (T == 0 || G.size(0) != static_cast<int64_t>(T))
            throw Broken("IntervalInfo::samples is " + std::to_string(T) + " but original() is " +
                         shape_of(G));
          fig = src->describe() + "; " + std::to_string(T) + " samples of " + shape_of(G[0]) +
                "; " + std::to_string(knobs.size()) + " knobs";
          return "pass";
        });
  if (!src || !G.defined() || T == 0) return report;

  const Configuration ref = src->reference();
  const Configuration low = cheapest(knobs);
  std::map<Configuration, Rendering> rendered;
  auto render = [&](const Configuration& c) -> const Rendering& {
    auto it = rendered.find(c);
    if (it != rendered.end()) return it->second;
    Rendering r = src->render(c);
    if (!r.input.defined()) throw Broken("render(" + c.str() + ") returned no input");
    return rendered.emplace(c, std::move(r)).first->second;
  };

  check("the rendering's shape does not depend on the configuration", [&](std::string& fig) {
    std::vector<Configuration> configs{ref, low};
    for (std::size_t k = 0; k < knobs.size(); ++k)
      configs.push_back(with_index(knobs, k, knobs[k].values.size() - 1));
    for (const auto& c : configs) {
      const Rendering& r = render(c);
      if (r.input.sizes() != G.sizes())
        throw Broken(c.str() + " renders " + shape_of(r.input) + ", original() is " + shape_of(G));
      if (!r.fresh.empty() && r.fresh.size() != T)
        throw Broken(c.str() + ": Rendering::fresh has " + std::to_string(r.fresh.size()) +
                     " flags for " + std::to_string(T) + " samples");
    }
    fig = std::to_string(configs.size()) + " configurations, all " + shape_of(G);
    return "pass";
  });

  check("the same configuration renders the same bytes and tensor twice", [&](std::string& fig) {
    for (const auto& c : {ref, low}) {
      const Rendering& a = render(c);
      Rendering b = src->render(c);
      if (a.bytes != b.bytes)
        throw Broken(c.str() + ": " + std::to_string(a.bytes) + " bytes, then " +
                     std::to_string(b.bytes) + " bytes");
      if (!b.input.defined() || !at::equal(a.input, b.input)) {
        const double d = b.input.defined() && b.input.sizes() == a.input.sizes()
                             ? (a.input - b.input).abs().max().item<double>()
                             : NAN;
        throw Broken(c.str() + ": the second rendering's input differs (max |difference| " +
                     fmt("%g", d) + ")");
      }
    }
    fig = "reference and cheapest configurations";
    return "pass";
  });

  check("what the source sends decodes on the receiver to the rendered input",
        [&](std::string& fig) {
          if (!options.open_receiver) {
            fig = "no receiver given to the check";
            return "skip";
          }
          std::optional<HostReceiver> receiver;
          try {
            receiver.emplace(options.open_receiver(src->stream_format()));
          } catch (const Error& e) {
            if (e.code() != Errc::unsupported) throw;
            fig = "the modality has no receiver (it runs in one process only)";
            return "skip";
          }
          std::vector<Configuration> configs{ref, low};
          for (std::size_t k = 0; k < knobs.size(); ++k)
            configs.push_back(with_index(knobs, k, knobs[k].values.size() - 1));
          std::uint64_t total = 0;
          for (const auto& c : configs) {
            const Rendering& r = render(c);
            if (r.wire.size() != r.header_bytes + r.bytes)
              throw Broken(
                  c.str() + ": Rendering::wire holds " + std::to_string(r.wire.size()) +
                  " bytes, header_bytes + bytes = " + std::to_string(r.header_bytes + r.bytes));
            at::Tensor x = receiver->decode(c, info, r.fresh, r.wire);
            if (x.sizes() != r.input.sizes())
              throw Broken(c.str() + ": the receiver decodes " + shape_of(x) + ", the source " +
                           "rendered " + shape_of(r.input));
            if (!at::equal(x, r.input))
              throw Broken(c.str() + ": the received input differs from the rendered one (max " +
                           "|difference| " + fmt("%g", (x - r.input).abs().max().item<double>()) +
                           ")");
            total += r.wire.size();
          }
          // The server sends the saliency the receiver computes: it must be the source's.
          const Rendering& r = render(ref);
          at::Tensor g = at::randn_like(r.input[0]);
          at::Tensor s_src = src->saliency(g), s_rcv = receiver->saliency(g);
          if (!s_src.sizes().equals(s_rcv.sizes()) || !at::equal(s_src, s_rcv))
            throw Broken("Receiver::saliency differs from Source::saliency on the same gradient (" +
                         shape_of(s_rcv) + " against " + shape_of(s_src) + ")");
          fig = std::to_string(configs.size()) + " configurations, " + std::to_string(total) +
                " bytes received, identical inputs and saliency";
          return "pass";
        });

  check("probe() agrees with render() on the probed sample", [&](std::string& fig) {
    for (const auto& c : {ref, low}) {
      const Rendering& r = render(c);
      Rendering p = src->probe(c, T - 1);
      if (!p.input.defined()) throw Broken("probe(" + c.str() + ") returned no input");
      if (p.bytes != r.bytes)
        throw Broken(c.str() + ": probe reports " + std::to_string(p.bytes) + " bytes, render " +
                     std::to_string(r.bytes));
      at::Tensor ps = sample_of(p, T - 1, T), rs = r.input[static_cast<int64_t>(T - 1)];
      if (ps.sizes() != rs.sizes())
        throw Broken(c.str() + ": the probed sample is " + shape_of(ps) + ", the rendered one " +
                     shape_of(rs));
      const double d = (ps.to(at::kDouble) - rs.to(at::kDouble)).abs().max().item<double>();
      if (!(d <= 1e-6))
        throw Broken(c.str() +
                     ": the probed sample differs from the rendered one (max |difference| " +
                     fmt("%g", d) + ")");
    }
    fig = "sample " + std::to_string(T - 1) + ", reference and cheapest configurations";
    return "pass";
  });

  check("the finite-difference InputGrad of every knob is finite and not identically zero",
        [&](std::string& fig) {
          const Rendering& r0 = render(ref);
          for (std::size_t k = 0; k < knobs.size(); ++k) {
            const auto& knob = knobs[k];
            if (!fig.empty()) fig += "; ";
            if (knob.values.size() < 2) {
              fig += knob.key + ": one value";
              continue;
            }
            bool changed = false;
            for (std::size_t i = 1; i < knob.values.size() && !changed; ++i) {
              const Rendering& r = render(with_index(knobs, k, i));
              at::Tensor d = (r.input - r0.input).to(at::kDouble);
              if (!at::isfinite(d).all().item<bool>())
                throw Broken("knob '" + knob.key + "' at '" + knob.values[i].label +
                             "': the input has non-finite values");
              const double mean = d.abs().mean().item<double>();
              if (mean > 0) {
                changed = true;
                fig += knob.key + " mean |dV| " + fmt("%.3g", mean) +
                       (i > 1 ? " (first change at '" + knob.values[i].label + "')" : "");
              }
            }
            if (!changed)
              throw Broken("knob '" + knob.key + "' never changes the input over its ladder (" +
                           std::to_string(knob.values.size()) +
                           " values): OneAdapt gets no gradient for it on this input");
          }
          return "pass";
        });

  at::Tensor dnn_grad;  // from the task's proxy, when there is a task
  if (task) {
    check("task: one result per sample, and the reference scores 1 against itself",
          [&](std::string& fig) {
            task->reset();
            at::NoGradGuard no_grad;
            auto results = task->decode(task->infer(render(ref).input));
            if (results.size() != T)
              throw Broken("decode() gave " + std::to_string(results.size()) + " results for " +
                           std::to_string(T) + " samples");
            const double a = task->accuracy(results, results);
            if (!(std::abs(a - 1.0) < 1e-12))
              throw Broken("accuracy(reference, reference) = " + fmt("%.6f", a) + ", not 1");
            fig = "last sample: " + results.back()->summary();
            return "pass";
          });
    check("task: the proxy gives a finite, non-zero DNNGrad", [&](std::string& fig) {
      task->reset();
      at::Tensor x =
          render(ref).input.narrow(0, static_cast<int64_t>(T - 1), 1).clone().requires_grad_(true);
      at::Tensor p = task->proxy(task->infer(x));
      if (p.numel() != 1) throw Broken("the proxy is " + shape_of(p) + ", not a scalar");
      const double pv = p.item<double>();
      if (!std::isfinite(pv)) throw Broken("the proxy is " + fmt("%g", pv));
      if (!p.requires_grad())
        throw Broken("the proxy (" + fmt("%g", pv) + ") does not depend on the input: no DNNGrad");
      at::Tensor g = engine::input_gradients(p.reshape({}), {x})[0];
      if (!at::isfinite(g).all().item<bool>()) throw Broken("DNNGrad has non-finite values");
      const double norm = g.to(at::kDouble).norm().item<double>();
      if (!(norm > 0)) throw Broken("DNNGrad is identically zero (proxy " + fmt("%g", pv) + ")");
      dnn_grad = g[0].detach();
      fig = "proxy " + fmt("%.4g", pv) + ", |DNNGrad| L2 " + fmt("%.3g", norm);
      return "pass";
    });
  } else {
    report.rows.push_back({"task: one result per sample, and the reference scores 1 against itself",
                           "skip", "no --task given"});
    report.rows.push_back(
        {"task: the proxy gives a finite, non-zero DNNGrad", "skip", "no --task given"});
  }

  check("saliency() of a gradient is finite and broadcasts to one sample", [&](std::string& fig) {
    at::Tensor sample = G[0];
    at::Tensor grad =
        dnn_grad.defined()
            ? dnn_grad
            : at::randn(sample.sizes(), at::TensorOptions().dtype(sample.scalar_type()));
    at::Tensor S = src->saliency(grad);
    if (!S.defined()) throw Broken("saliency() returned no tensor");
    if (!at::isfinite(S).all().item<bool>()) throw Broken("the saliency map has non-finite values");
    std::vector<int64_t> out;
    try {
      auto inferred = at::infer_size(S.sizes(), sample.sizes());
      out.assign(inferred.begin(), inferred.end());
    } catch (const std::exception&) {
      throw Broken("the saliency map " + shape_of(S) + " does not broadcast to a sample " +
                   shape_of(sample));
    }
    if (at::IntArrayRef(out) != sample.sizes())
      throw Broken("the saliency map " + shape_of(S) + " broadcasts to " +
                   shape_of(at::empty(out)) + ", larger than a sample " + shape_of(sample));
    fig =
        shape_of(S) + (dnn_grad.defined() ? " from the task's DNNGrad" : " from a random gradient");
    return "pass";
  });

  check("a bad configuration raises oneadapt::Error", [&](std::string& fig) {
    std::vector<KnobSetting> nan_settings;
    for (const auto& k : knobs)
      nan_settings.push_back(
          {k.key, 0, KnobValue{std::numeric_limits<double>::quiet_NaN(), "nan"}});
    const std::vector<std::pair<std::string, Configuration>> bad{
        {"no knobs set", Configuration{}}, {"every knob NaN", Configuration(nan_settings)}};
    for (const auto& [what, c] : bad) {
      try {
        src->render(c);
      } catch (const Error& e) {
        if (e.code() == Errc::plugin_failure)
          throw Broken(what + ": the plugin threw something other than oneadapt::Error (" +
                       one_line(e.what()) + ")");
        fig += (fig.empty() ? "" : "; ") + what + ": " + one_line(e.what());
        continue;
      }
      throw Broken(what + ": rendered without an error (it must raise oneadapt::Error)");
    }
    return "pass";
  });

  check("bytes do not grow going down any ladder", [&](std::string& fig) {
    std::vector<std::vector<double>> bytes(knobs.size());
    for (std::size_t k = 0; k < knobs.size(); ++k) bytes[k].assign(knobs[k].values.size(), 0.0);
    std::size_t done = 0;
    for (;;) {
      for (std::size_t k = 0; k < knobs.size(); ++k)
        for (std::size_t i = 0; i < knobs[k].values.size(); ++i)
          bytes[k][i] += static_cast<double>(
              (done == 0 ? render(with_index(knobs, k, i)) : src->render(with_index(knobs, k, i)))
                  .bytes);
      if (++done >= options.intervals || !src->next_interval(info)) break;
    }
    for (std::size_t k = 0; k < knobs.size(); ++k) {
      const auto& v = knobs[k].values;
      for (std::size_t i = 1; i < v.size(); ++i)
        if (bytes[k][i] > bytes[k][i - 1])
          throw Broken("knob '" + knobs[k].key + "': '" + v[i].label + "' costs " +
                       human_bytes(bytes[k][i]) + ", more than '" + v[i - 1].label + "' (" +
                       human_bytes(bytes[k][i - 1]) + ") over " + std::to_string(done) +
                       " interval(s)");
      fig += (fig.empty() ? "" : "; ") + knobs[k].key + " " + human_bytes(bytes[k].front()) +
             " -> " + human_bytes(bytes[k].back());
    }
    fig += " (" + std::to_string(done) + " interval" + (done == 1 ? "" : "s") + ")";
    return "pass";
  });
  return report;
}

}  // namespace oneadapt::host
