#include "run_config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>

#include "assets.hpp"

namespace oneadapt {

namespace {

namespace fs = std::filesystem;

class Reader {
 public:
  explicit Reader(std::string where) : where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(Errc::invalid_argument, where_ + ": " + key + ": " + what);
  }

  // Checks that `table` (at `path`) has only `allowed` keys.
  void only(const toml::table& table, const std::string& path,
            std::initializer_list<const char*> allowed) const {
    for (auto&& [k, v] : table) {
      std::string key(k.str());
      bool ok =
          std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; });
      if (!ok) {
        std::string list;
        for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        fail(path.empty() ? key : path + "." + key, "unknown key (allowed here: " + list + ")");
      }
      (void)v;
    }
  }

  const toml::table* table(const toml::table& parent, const std::string& path,
                           const char* key) const {
    const toml::node* n = parent.get(key);
    if (!n) return nullptr;
    if (!n->is_table()) fail(join(path, key), "expected a table");
    return n->as_table();
  }

  std::string string(const toml::table& t, const std::string& path, const char* key,
                     const std::string& def) const {
    const toml::node* n = t.get(key);
    if (!n) return def;
    if (!n->is_string()) fail(join(path, key), "expected a string, got " + type_of(*n));
    return n->value<std::string>().value();
  }

  double number(const toml::table& t, const std::string& path, const char* key, double def) const {
    const toml::node* n = t.get(key);
    if (!n) return def;
    if (n->is_integer()) return static_cast<double>(n->value<int64_t>().value());
    if (!n->is_floating_point()) fail(join(path, key), "expected a number, got " + type_of(*n));
    const double v = n->value<double>().value();
    if (!std::isfinite(v))
      fail(join(path, key), "expected a finite number, got " + text(*n, join(path, key)));
    return v;
  }

  bool boolean(const toml::table& t, const std::string& path, const char* key, bool def) const {
    const toml::node* n = t.get(key);
    if (!n) return def;
    if (!n->is_boolean()) fail(join(path, key), "expected true or false, got " + type_of(*n));
    return n->value<bool>().value();
  }

  int64_t integer(const toml::table& t, const std::string& path, const char* key,
                  int64_t def) const {
    const toml::node* n = t.get(key);
    if (!n) return def;
    if (!n->is_integer()) fail(join(path, key), "expected an integer, got " + type_of(*n));
    return n->value<int64_t>().value();
  }

  std::size_t count(const toml::table& t, const std::string& path, const char* key,
                    std::size_t def) const {
    const int64_t v = integer(t, path, key, static_cast<int64_t>(def));
    if (v < 0) fail(join(path, key), "must be >= 0");
    return static_cast<std::size_t>(v);
  }

  std::vector<std::string> strings(const toml::table& t, const std::string& path,
                                   const char* key) const {
    const toml::node* n = t.get(key);
    if (!n->is_array()) fail(join(path, key), "expected an array of strings");
    std::vector<std::string> out;
    for (const auto& e : *n->as_array()) {
      if (!e.is_string())
        fail(join(path, key), "expected an array of strings, got " + type_of(e) + " in it");
      out.push_back(e.value<std::string>().value());
    }
    if (out.empty()) fail(join(path, key), "is empty");
    return out;
  }

  std::vector<double> numbers(const toml::table& t, const std::string& path, const char* key,
                              double lo, double hi) const {
    const toml::node* n = t.get(key);
    if (!n->is_array()) fail(join(path, key), "expected an array of numbers");
    std::vector<double> out;
    for (const auto& e : *n->as_array()) {
      if (!e.is_number())
        fail(join(path, key), "expected an array of numbers, got " + type_of(e) + " in it");
      const double v = e.is_integer() ? static_cast<double>(e.value<int64_t>().value())
                                      : e.value<double>().value();
      if (!std::isfinite(v) || v < lo || v > hi)
        fail(join(path, key), "value " + text(e, key) + " is outside [" +
                                  text(toml::value<double>(lo), key) + ", " +
                                  text(toml::value<double>(hi), key) + "]");
      out.push_back(v);
    }
    if (out.empty()) fail(join(path, key), "is empty");
    return out;
  }

  // A parameter value as the text plugins receive: numbers in decimal, booleans true/false,
  // arrays comma-separated.
  std::string text(const toml::node& n, const std::string& key) const {
    if (n.is_string()) return n.value<std::string>().value();
    if (n.is_integer()) return std::to_string(n.value<int64_t>().value());
    if (n.is_floating_point()) {
      // The shortest text that reads back as the same double: 0.7, not 0.69999999999999996,
      // so that a number written in a config matches a ladder's label.
      const double v = n.value<double>().value();
      char buf[40];
      for (int digits = 1; digits <= 17; ++digits) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (std::strtod(buf, nullptr) == v) break;
      }
      return buf;
    }
    if (n.is_boolean()) return n.value<bool>().value() ? "true" : "false";
    if (n.is_array()) {
      std::string out;
      for (const auto& e : *n.as_array()) {
        if (e.is_array() || e.is_table())
          fail(key, "nested arrays and tables are not allowed here");
        out += (out.empty() ? "" : ",") + text(e, key);
      }
      return out;
    }
    fail(key, "expected a string, number, boolean or array, got " + type_of(n));
  }

  std::vector<std::string> labels(const toml::node& n, const std::string& key) const {
    if (!n.is_array()) fail(key, "expected an array of ladder values, most expensive first");
    std::vector<std::string> out;
    for (const auto& e : *n.as_array()) {
      if (e.is_array() || e.is_table())
        fail(key, "nested arrays and tables are not allowed in a ladder");
      out.push_back(text(e, key));
    }
    if (out.empty()) fail(key, "the ladder is empty");
    return out;
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  static std::string type_of(const toml::node& n) {
    switch (n.type()) {
      case toml::node_type::string:
        return "a string";
      case toml::node_type::integer:
        return "an integer";
      case toml::node_type::floating_point:
        return "a number";
      case toml::node_type::boolean:
        return "a boolean";
      case toml::node_type::array:
        return "an array";
      case toml::node_type::table:
        return "a table";
      default:
        return "a date or time";
    }
  }

 private:
  std::string where_;
};

// Sets dotted `key` to `value` (TOML syntax; a bare word is taken as a string) in `root`.
void apply_override(toml::table& root, const std::string& spec) {
  auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(Errc::invalid_argument,
                "--set '" + spec + "': expected KEY=VALUE, e.g. policy.beta=0.3");
  std::string key = spec.substr(0, eq), value = spec.substr(eq + 1);
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"v", value}};
  }
  toml::table* t = &root;
  std::size_t start = 0;
  while (true) {
    auto dot = key.find('.', start);
    std::string part =
        key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) throw Error(Errc::invalid_argument, "--set '" + spec + "': empty key part");
    if (dot == std::string::npos) {
      t->insert_or_assign(part, *parsed.get("v"));
      return;
    }
    toml::node* next = t->get(part);
    if (!next) next = &t->insert_or_assign(part, toml::table{}).first->second;
    if (!next->is_table())
      throw Error(Errc::invalid_argument, "--set '" + spec + "': '" + part + "' is not a table");
    t = next->as_table();
    start = dot + 1;
  }
}

}  // namespace

std::string resolve_asset_uri(const std::string& uri) {
  const std::string prefix = "asset:";
  if (uri.rfind(prefix, 0) == 0) return asset_path(uri.substr(prefix.size())).string();
  return uri;
}

namespace {

toml::table parse_toml_file(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) throw Error(Errc::not_found, file.string() + ": no such config file");
  try {
    return toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    throw Error(Errc::invalid_argument, file.string() + ":" +
                                            std::to_string(e.source().begin.line) + ":" +
                                            std::to_string(e.source().begin.column) +
                                            ": not valid TOML: " + std::string(e.description()));
  }
}

// `over` merged into `base`: tables key by key, anything else replaced.
void merge_into(toml::table& base, const toml::table& over) {
  for (auto&& [k, v] : over) {
    toml::node* mine = base.get(k.str());
    if (mine && mine->is_table() && v.is_table())
      merge_into(*mine->as_table(), *v.as_table());
    else
      base.insert_or_assign(k.str(), v);
  }
}

RunConfig run_config_from_table(const toml::table& root, const std::string& where,
                                const fs::path& file, const ConfigFileCheck& check);

}  // namespace

RunConfig load_run_config(const fs::path& file, const std::vector<std::string>& overrides,
                          const ConfigFileCheck& check) {
  toml::table root;
  if (!file.empty()) root = parse_toml_file(file);
  for (const auto& o : overrides) apply_override(root, o);
  return run_config_from_table(root, file.empty() ? "command line" : file.string(), file, check);
}

bool is_joint_config(const fs::path& file) {
  if (file.empty()) return false;
  return parse_toml_file(file).contains("stream");
}

JointConfig load_joint_config(const fs::path& file, const std::vector<std::string>& overrides,
                              const ConfigFileCheck& check) {
  JointConfig j;
  j.file = file;
  toml::table root = parse_toml_file(file);
  // Flags of `oneadapt run`: the output, the device and the budget apply to the joint run,
  // --max-intervals to every stream; a stream's own settings belong in its table.
  std::vector<std::string> per_stream;
  for (const auto& o : overrides) {
    const std::string key = o.substr(0, o.find('='));
    if (key == "input.max_intervals") {
      per_stream.push_back(o);
    } else if (key == "budget.kbps" || key == "budget.trace") {
      apply_override(root, "joint." + o.substr(std::string("budget.").size()));
    } else if (key.rfind("run.", 0) == 0 || key.rfind("joint.", 0) == 0) {
      apply_override(root, o);
    } else {
      throw Error(Errc::invalid_argument,
                  file.string() + ": '" + key +
                      "' cannot be set for a joint run from the command line: set it in the "
                      "stream's [[stream]] table");
    }
  }
  const std::string where = file.string();
  Reader r(where);
  r.only(root, "", {"joint", "stream", "run"});
  const toml::table empty;
  const toml::table& jt = r.table(root, "", "joint") ? *r.table(root, "", "joint") : empty;
  r.only(jt, "joint",
         {"kbps", "trace", "price", "eta", "margin", "warmup", "project", "price_ahead",
          "split_scales"});
  const double kbps = r.number(jt, "joint", "kbps", 0.0);
  const std::string trace = r.string(jt, "joint", "trace", "");
  if (!(kbps >= 0)) r.fail("joint.kbps", "must be a rate in kbit/s > 0");
  if (kbps > 0 && !trace.empty())
    r.fail("joint", "give one of joint.kbps (a constant rate) and joint.trace (a CSV file)");
  if (kbps > 0) j.budget = adapt::BudgetTrace::constant(kbps);
  if (!trace.empty()) {
    fs::path t = trace;
    if (t.is_relative() && !fs::exists(t)) t = file.parent_path() / t;
    if (check) check(t, "joint.trace");
    j.budget = adapt::BudgetTrace::load(t);
  }
  if (!j.budget)
    r.fail("joint", "a joint run needs the shared link's budget: joint.kbps or joint.trace");
  j.price = r.number(jt, "joint", "price", j.price);
  if (!(j.price > 0 && j.price <= 1000)) r.fail("joint.price", "must be in (0, 1000]");
  j.eta = r.number(jt, "joint", "eta", j.eta);
  if (!(j.eta > 0 && j.eta <= 10)) r.fail("joint.eta", "must be in (0, 10]");
  j.margin = r.number(jt, "joint", "margin", j.margin);
  if (!(j.margin > 0 && j.margin <= 1)) r.fail("joint.margin", "must be in (0, 1]");
  j.warmup = r.count(jt, "joint", "warmup", j.warmup);
  j.project = r.boolean(jt, "joint", "project", j.project);
  j.price_ahead = r.boolean(jt, "joint", "price_ahead", j.price_ahead);
  if (jt.get("split_scales")) {
    j.split_scales = r.numbers(jt, "joint", "split_scales", 0.01, 100.0);
  }
  // 1 (the link itself) is always run: its figures are the comparison's first table.
  j.split_scales.push_back(1.0);
  std::sort(j.split_scales.begin(), j.split_scales.end());
  j.split_scales.erase(std::unique(j.split_scales.begin(), j.split_scales.end()),
                       j.split_scales.end());

  const toml::table& run = r.table(root, "", "run") ? *r.table(root, "", "run") : empty;
  r.only(run, "run", {"out", "device"});
  j.out_dir = r.string(run, "run", "out", "runs/joint");
  j.device = r.string(run, "run", "device", "cpu");

  const toml::node* streams = root.get("stream");
  if (!streams->is_array_of_tables() || streams->as_array()->empty())
    r.fail("stream", "expected [[stream]] tables, one per stream");
  std::set<std::string> names;
  std::size_t i = 0;
  for (const auto& node : *streams->as_array()) {
    const toml::table& st = *node.as_table();
    const std::string at = "stream[" + std::to_string(i++) + "]";
    JointStreamConfig s;
    s.name = r.string(st, at, "name", "");
    if (s.name.empty()) r.fail(at + ".name", "every stream needs a name (its records' folder)");
    for (char ch : s.name)
      if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_'))
        r.fail(at + ".name", "'" + s.name + "': use letters, digits, '-' and '_' only");
    if (!names.insert(s.name).second) r.fail(at + ".name", "'" + s.name + "' is used twice");
    s.weight = r.number(st, at, "weight", 1.0);
    if (!(s.weight > 0 && std::isfinite(s.weight))) r.fail(at + ".weight", "must be > 0");
    s.floor = r.number(st, at, "floor", 0.0);
    if (!(s.floor >= 0 && s.floor < 1))
      r.fail(at + ".floor", "must be in [0, 1) (a fraction of the proxy's recent median; 0: off)");
    toml::table merged;
    fs::path base_file;
    if (st.contains("config")) {
      base_file = r.string(st, at, "config", "");
      if (base_file.is_relative()) base_file = file.parent_path() / base_file;
      if (check) check(base_file, at + ".config");
      merged = parse_toml_file(base_file);
    }
    toml::table own = st;
    own.erase("name");
    own.erase("weight");
    own.erase("floor");
    own.erase("config");
    merge_into(merged, own);
    for (const auto& o : per_stream) apply_override(merged, o);
    s.config = run_config_from_table(merged, where + " [[stream]] '" + s.name + "'",
                                     base_file.empty() ? file : base_file, check);
    if (s.config.run.budget)
      r.fail(at, "a stream of a joint run has no budget of its own: the [joint] budget is shared");
    s.config.device = j.device;
    j.streams.push_back(std::move(s));
  }
  return j;
}

namespace {

RunConfig run_config_from_table(const toml::table& root, const std::string& where,
                                const fs::path& file, const ConfigFileCheck& check) {
  RunConfig c;
  c.file = file;
  Reader r(where);
  r.only(root, "", {"input", "modality", "task", "policy", "run", "compare", "budget"});
  const toml::table empty;

  const toml::table& input = r.table(root, "", "input") ? *r.table(root, "", "input") : empty;
  r.only(input, "input", {"modality", "uri", "interval", "max_intervals", "realtime"});
  c.modality = r.string(input, "input", "modality", "video");
  c.uri = r.string(input, "input", "uri", "");
  c.interval = r.number(input, "input", "interval", 1.0);
  if (!(c.interval > 0)) r.fail("input.interval", "must be positive");
  int64_t mi = r.integer(input, "input", "max_intervals", 0);
  if (mi < 0) r.fail("input.max_intervals", "must be >= 0 (0 = the whole stream)");
  c.max_intervals = static_cast<std::size_t>(mi);
  c.run.realtime = r.boolean(input, "input", "realtime", false);

  if (const toml::table* m = r.table(root, "", "modality")) {
    r.only(*m, "modality", {"params", "knobs"});
    if (const toml::table* p = r.table(*m, "modality", "params"))
      for (auto&& [k, v] : *p)
        c.modality_settings.params[std::string(k.str())] =
            r.text(v, "modality.params." + std::string(k.str()));
    if (const toml::table* k = r.table(*m, "modality", "knobs"))
      for (auto&& [key, v] : *k)
        c.modality_settings.ladders[std::string(key.str())] =
            r.labels(v, "modality.knobs." + std::string(key.str()));
  }

  const toml::table& task = r.table(root, "", "task") ? *r.table(root, "", "task") : empty;
  r.only(task, "task", {"name", "params", "models"});
  c.task = r.string(task, "task", "name", "detection");
  if (const toml::table* p = r.table(task, "task", "params"))
    for (auto&& [k, v] : *p)
      c.task_settings.params[std::string(k.str())] =
          r.text(v, "task.params." + std::string(k.str()));
  if (const toml::table* m = r.table(task, "task", "models"))
    for (auto&& [k, v] : *m) {
      if (!v.is_string())
        r.fail("task.models." + std::string(k.str()), "expected a path or asset:NAME string");
      c.models[std::string(k.str())] = v.value<std::string>().value();
      if (check)
        check(resolve_asset_uri(c.models[std::string(k.str())]),
              "task.models." + std::string(k.str()));
    }

  const toml::table& policy = r.table(root, "", "policy") ? *r.table(root, "", "policy") : empty;
  r.only(policy, "policy",
         {"name",
          "beta",
          "lr",
          "rounding",
          "normalisation",
          "norm_constant",
          "estimator",
          "rec_frames",
          "seed",
          "start",
          "config",
          "warm_start",
          "spatial_map",
          "profile_every",
          "profile_budget",
          "prefix",
          "backward_weight",
          "budget_eta",
          "budget_margin",
          "step_control",
          "proxy_drop",
          "proxy_history",
          "rec_max",
          "spatial_decay",
          "spatial_joint",
          "spatial_probe_map"});
  auto& o = c.run.oneadapt;
  c.run.policy = r.string(policy, "policy", "name", "oneadapt");
  o.beta = r.number(policy, "policy", "beta", o.beta);
  if (!(o.beta >= 0) || !std::isfinite(o.beta))
    r.fail("policy.beta", "must be a finite number >= 0");
  o.lr = r.number(policy, "policy", "lr", o.lr);
  if (!(o.lr > 0) || !std::isfinite(o.lr)) r.fail("policy.lr", "must be a finite number > 0");
  c.run.period = r.count(policy, "policy", "profile_every", c.run.period);
  c.run.profile_budget = r.count(policy, "policy", "profile_budget", c.run.profile_budget);
  c.run.prefix = r.count(policy, "policy", "prefix", c.run.prefix);
  c.run.backward_weight = r.number(policy, "policy", "backward_weight", 0.0);
  if (!(c.run.backward_weight >= 0) || !std::isfinite(c.run.backward_weight))
    r.fail("policy.backward_weight", "must be a finite number >= 0 (0 = measure it)");
  try {
    o.rounding = adapt::parse_rounding(r.string(policy, "policy", "rounding", "hq"));
    o.normalisation =
        adapt::parse_normalisation(r.string(policy, "policy", "normalisation", "fixed"));
    o.estimator = adapt::parse_estimator(r.string(policy, "policy", "estimator", "abs"));
    o.rec_frames = adapt::parse_rec_frames(r.string(policy, "policy", "rec_frames", "last"));
  } catch (const Error& e) {
    r.fail("policy", e.what());
  }
  o.norm_constant = r.number(policy, "policy", "norm_constant", 0.0);
  if (o.norm_constant < 0)
    r.fail("policy.norm_constant", "must be >= 0 (0 = calibrate on the first interval)");
  o.seed = static_cast<unsigned>(r.integer(policy, "policy", "seed", 1));
  o.budget_eta = r.number(policy, "policy", "budget_eta", o.budget_eta);
  if (!(o.budget_eta > 0 && o.budget_eta <= 10))
    r.fail("policy.budget_eta", "must be in (0, 10] (the dual ascent's step on the price)");
  o.budget_margin = r.number(policy, "policy", "budget_margin", o.budget_margin);
  if (!(o.budget_margin > 0 && o.budget_margin <= 1))
    r.fail("policy.budget_margin", "must be in (0, 1] (the fraction of the budget aimed at)");
  o.step_control = r.boolean(policy, "policy", "step_control", o.step_control);
  o.proxy_drop = r.number(policy, "policy", "proxy_drop", o.proxy_drop);
  if (!(o.proxy_drop >= 0 && o.proxy_drop < 1))
    r.fail("policy.proxy_drop", "must be in [0, 1) (0: never back off)");
  o.proxy_history = r.count(policy, "policy", "proxy_history", o.proxy_history);
  if (o.proxy_history < 3 || o.proxy_history > 1000)
    r.fail("policy.proxy_history", "must be in 3..1000 intervals");
  o.rec_max = r.number(policy, "policy", "rec_max", o.rec_max);
  if (!(o.rec_max >= 0)) r.fail("policy.rec_max", "must be >= 0 (0: no rec floor)");
  o.spatial_decay = r.number(policy, "policy", "spatial_decay", o.spatial_decay);
  if (!(o.spatial_decay >= 0 && o.spatial_decay < 1))
    r.fail("policy.spatial_decay", "must be in [0, 1) (0: this interval's saliency only)");
  o.spatial_joint = r.boolean(policy, "policy", "spatial_joint", o.spatial_joint);
  o.spatial_probe_map = r.boolean(policy, "policy", "spatial_probe_map", o.spatial_probe_map);
  if (const toml::table* s = r.table(policy, "policy", "start"))
    for (auto&& [k, v] : *s) {
      std::string key = "policy.start." + std::string(k.str());
      if (!v.is_number()) r.fail(key, "expected a number (theta in [0, 1])");
      double theta = v.is_integer() ? static_cast<double>(v.value<int64_t>().value())
                                    : v.value<double>().value();
      if (theta < 0 || theta > 1) r.fail(key, "theta must be in [0, 1]");
      o.start[std::string(k.str())] = theta;
    }
  if (const toml::table* s = r.table(policy, "policy", "config"))
    for (auto&& [k, v] : *s)
      c.run.static_config[std::string(k.str())] =
          r.text(v, "policy.config." + std::string(k.str()));
  c.run.warm_start = r.string(policy, "policy", "warm_start", "");
  if (check && !c.run.warm_start.empty()) check(c.run.warm_start, "policy.warm_start");
  c.run.spatial_map = r.string(policy, "policy", "spatial_map", "");
  if (!c.run.spatial_map.empty() && c.run.spatial_map != "solver" &&
      c.run.spatial_map != "centre" && c.run.spatial_map != "best")
    r.fail("policy.spatial_map", "must be solver, centre or best");

  if (const toml::table* b = r.table(root, "", "budget")) {
    r.only(*b, "budget", {"kbps", "trace", "warmup"});
    const double kbps = r.number(*b, "budget", "kbps", 0.0);
    const std::string trace = r.string(*b, "budget", "trace", "");
    if (!(kbps >= 0)) r.fail("budget.kbps", "must be a rate in kbit/s > 0 (0: none)");
    if (kbps > 0 && !trace.empty())
      r.fail("budget", "give one of budget.kbps (a constant rate) and budget.trace (a CSV file)");
    if (kbps > 0) c.run.budget = adapt::BudgetTrace::constant(kbps);
    if (!trace.empty()) {
      if (check) check(trace, "budget.trace");
      c.run.budget = adapt::BudgetTrace::load(trace);
    }
    c.run.budget_warmup = r.count(*b, "budget", "warmup", c.run.budget_warmup);
  }

  const toml::table& run = r.table(root, "", "run") ? *r.table(root, "", "run") : empty;
  r.only(run, "run", {"out", "device"});
  c.run.out_dir = r.string(run, "run", "out", "runs/latest");
  c.device = r.string(run, "run", "device", "cpu");
  c.run.max_intervals = c.max_intervals;

  const toml::table& cmp = r.table(root, "", "compare") ? *r.table(root, "", "compare") : empty;
  r.only(cmp, "compare",
         {"policies", "betas", "targets", "grid", "max_grid", "warmup", "profile_every",
          "profile_budget", "target_saving", "resamples", "block", "backward_weight",
          "budget_traces"});
  auto& k = c.compare;
  if (cmp.get("policies")) k.policies = r.strings(cmp, "compare", "policies");
  if (cmp.get("betas")) k.betas = r.numbers(cmp, "compare", "betas", 0.0, 1e9);
  if (cmp.get("targets")) k.targets = r.numbers(cmp, "compare", "targets", 1e-9, 1.0);
  if (const toml::table* g = r.table(cmp, "compare", "grid"))
    for (auto&& [key, v] : *g)
      k.grid[std::string(key.str())] = r.labels(v, "compare.grid." + std::string(key.str()));
  k.max_grid = r.count(cmp, "compare", "max_grid", k.max_grid);
  if (k.max_grid == 0) r.fail("compare.max_grid", "must be >= 1");
  k.warmup = r.count(cmp, "compare", "warmup", k.warmup);
  if (cmp.get("profile_every")) {
    k.profile_every.clear();
    for (double v : r.numbers(cmp, "compare", "profile_every", 0.0, 1e6)) {
      if (v != std::floor(v))
        r.fail("compare.profile_every", "expected whole numbers of intervals");
      k.profile_every.push_back(static_cast<std::size_t>(v));
    }
  }
  k.profile_budget = r.count(cmp, "compare", "profile_budget", k.profile_budget);
  k.target_saving = r.number(cmp, "compare", "target_saving", k.target_saving);
  if (!(k.target_saving > -1 && k.target_saving < 1))
    r.fail("compare.target_saving", "must be a fraction in (-1, 1)");
  k.resamples =
      static_cast<int>(r.count(cmp, "compare", "resamples", static_cast<std::size_t>(k.resamples)));
  if (k.resamples < 10 || k.resamples > 100000)
    r.fail("compare.resamples", "must be in 10..100000");
  k.block = r.count(cmp, "compare", "block", k.block);
  if (k.block == 0) r.fail("compare.block", "must be >= 1 interval");
  if (cmp.get("budget_traces")) {
    k.budget_traces = r.strings(cmp, "compare", "budget_traces");
    if (c.run.budget)
      r.fail("compare.budget_traces", "give either [budget] or compare.budget_traces, not both");
    for (const auto& f : k.budget_traces) {
      if (check) check(f, "compare.budget_traces");
      adapt::BudgetTrace::load(f);  // checked now
    }
  }
  k.backward_weight = r.number(cmp, "compare", "backward_weight", 0.0);
  if (!(k.backward_weight >= 0) || !std::isfinite(k.backward_weight))
    r.fail("compare.backward_weight", "must be a finite number >= 0 (0 = measure it)");
  return c;
}

}  // namespace

}  // namespace oneadapt
