#include "adapt/runner.hpp"

namespace oneadapt::adapt {

namespace {
bool runnable(const PolicyInfo& p) {
  return p.deployable && (p.points == PointKind::beta || p.points == PointKind::none);
}
}  // namespace

std::string runnable_policies() {
  std::string out;
  for (const auto& p : policy_table())
    if (runnable(p)) out += (out.empty() ? "" : ", ") + p.name;
  return out;
}

RunSummary run_experiment(host::HostSource& source, host::HostTask& task, const RunSpec& spec,
                          std::ostream& progress, bool tty) {
  LocalInference local(task);
  return run_experiment(source, local, spec, progress, tty);
}

RunSummary run_experiment(host::HostSource& source, Inference& task, const RunSpec& spec,
                          std::ostream& progress, bool tty) {
  const PolicyInfo* info = nullptr;
  for (const auto& p : policy_table())
    if (p.name == spec.policy && runnable(p)) info = &p;
  if (!info)
    throw Error(Errc::invalid_argument, "policy '" + spec.policy + "' is not one of " +
                                            runnable_policies() +
                                            " (the others run in 'oneadapt compare')");
  PolicyArgs args;
  args.point = spec.oneadapt.beta;
  args.oneadapt = spec.oneadapt;
  args.warm_start = spec.warm_start;
  args.static_config = spec.static_config;
  args.spatial_map = spec.spatial_map;
  args.period = spec.period, args.profile_budget = spec.profile_budget, args.prefix = spec.prefix;
  auto policy = info->make(args);
  HarnessOptions options;
  options.max_intervals = spec.max_intervals;
  options.realtime = spec.realtime;
  options.out_dir = spec.out_dir;
  options.provenance = spec.provenance;
  options.header = spec.header;
  options.backward_weight = spec.backward_weight;
  options.budget = spec.budget;
  options.budget_warmup = spec.budget_warmup;
  Harness harness(task, options);
  return harness.run(source, *policy,
                     RunLabel{info->name, info->deployable, point_name(info->points), args.point},
                     progress, tty);
}

}  // namespace oneadapt::adapt
