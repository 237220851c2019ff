// The one table of policies.
#include "adapt/policies/policies.hpp"

namespace oneadapt::adapt {

const std::vector<PolicyInfo>& policy_table() {
  using P = PointKind;
  static const std::vector<PolicyInfo> table{
      {"oneadapt", true, P::beta, false, false, false, false,
       "the method: gradient steps on the knobs from one backward pass per interval (and the "
       "spatial solver)",
       make_oneadapt},
      {"static", true, P::none, false, false, false, false,
       "one fixed configuration (policy.config.KNOB, default the best)", make_static},
      {"awstream", true, P::beta, false, false, false, false,
       "AWStream-style: offline profile of the grid, its Pareto set, online profiling every "
       "--profile-every intervals",
       make_awstream},
      {"chameleon", true, P::beta, false, false, false, false,
       "Chameleon-style: coordinate descent, --profile-budget configurations profiled every "
       "--profile-every intervals, late decisions",
       make_chameleon},
      {"reducto", true, P::target, false, false, false, true,
       "Reducto-style: on-source frame filtering at a tuned static encoding, threshold profiled to "
       "an accuracy target",
       make_reducto},
      {"roi-static", true, P::base_quality, false, true, false, false,
       "a fixed centre-weighted quality map at each CRF", make_roi_static},
      {"roi-hindsight", false, P::base_quality, false, true, false, false,
       "hindsight: a fixed map from the whole run's saliency (OneAdapt's) at each CRF",
       make_roi_hindsight},
      {"eaar", true, P::base_quality, false, true, true, false,
       "EAAR-style: the previous interval's regions at the best level", make_eaar},
      {"dds", true, P::base_quality, false, true, true, false,
       "DDS-style: a low-quality pass, then the uncertain regions again at the best level",
       make_dds},
      {"best-static", false, P::beta, true, false, false, false,
       "hindsight: the one grid configuration best over the whole stream", make_best_static},
      {"oracle", false, P::beta, true, false, false, false,
       "hindsight: the best grid configuration of each interval", make_oracle},
      {"oracle-split", false, P::beta, true, false, false, false,
       "hindsight: chosen per interval on even samples, scored on odd ones", make_oracle_split},
  };
  return table;
}

std::string policy_names() {
  std::string out;
  for (const auto& p : policy_table()) out += (out.empty() ? "" : ", ") + p.name;
  return out;
}

const PolicyInfo& find_policy(const std::string& name) {
  for (const auto& p : policy_table())
    if (p.name == name) return p;
  throw Error(Errc::invalid_argument, "policy '" + name + "' is not one of " + policy_names());
}

const char* point_name(PointKind k) {
  switch (k) {
    case PointKind::beta:
      return "beta";
    case PointKind::target:
      return "target";
    case PointKind::base_quality:
      return "crf";
    default:
      return "";
  }
}

}  // namespace oneadapt::adapt
