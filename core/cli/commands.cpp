// The table of subcommands. A new command adds one row here and a run_* function.
#include "cli.hpp"

namespace oneadapt::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> table{
      {"plugins list", "", "list plugins, the directories searched and the files that failed",
       &run_plugins_list},
      {"plugins inspect", "NAME [--input URI]",
       "show a modality's knobs and parameters (with --input: of that stream), or a task's models "
       "and parameters",
       &run_plugins_inspect},
      {"plugins check", "MODALITY [--input URI] [--task TASK]",
       "run a modality (and a task) through the plugin contract on real input; a table of checks",
       &run_plugins_check},
      {"run", "[--config FILE]",
       "adapt one stream with one policy; writes records.jsonl, summary.json, state.json",
       &run_run},
      {"compare", "[--config FILE]",
       "run several policies at several betas on the same input; writes compare.csv and compare.md",
       &run_compare},
      {"model info", "PATH", "show a model's format, inputs, outputs, parameter count and ops",
       &run_model_info},
      {"model run", "PATH",
       "run a model once on an image (or mid-grey) and print its outputs; "
       "--grad also backpropagates to the input",
       &run_model_run},
      {"spatial calibrate", "[--config FILE]",
       "check the spatial knob's cost model against real encodes of whole maps; chooses its "
       "weights on held-out intervals",
       &run_spatial_calibrate},
      {"serve", "--nats URL [--auth FILE]",
       "serve the task side of sources over NATS: decode, infer, DNNGrad, score "
       "(docs/deployment.md)",
       &run_serve},
      {"source", "--config FILE --nats URL [--auth FILE]",
       "adapt one stream whose task runs on a `oneadapt serve`; writes what `run` writes",
       &run_source},
  };
  return table;
}

}  // namespace oneadapt::cli
