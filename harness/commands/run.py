"""`harness run`: the benchmarks. With no arguments, the main job on the embedded default.

Modes: `tta` (time to accuracy), `throughput` (M instances trained to the target at once),
`epoch-time` (training speed), `scaling` (epoch time against rank count, strong and weak),
`inference` (showers per second). Without --mode: the main job (harness.main_job: a fixed list
of `harness` commands, each its own process); with --nodes > 1, the submission set (tta and
epoch-time) at that scale (harness.train_launch.launch_submission_set).

What happens when you type `harness run --mode tta`, and the module that owns each step:

1. The command line (harness.cli, then this module). `register` defines the flags; `run` turns
   the parsed namespace into one frozen `RunRequest` (harness.run_request), which refuses an
   inconsistent request as a one-line error (a training --precision other than float32 or
   mixed_bfloat16, for one), and dispatches on its mode. Below `run` only the request travels.
2. Launching (harness.train_launch.launch_training). The launch plan, the launcher that reaches
   the nodes from here and the cores behind each rank (harness.launch: one pinned process for
   one rank, mpirun, srun inside an allocation, or an sbatch script outside one that re-enters
   `harness run --launcher srun`); every refusal comes before anything runs or is written.
3. The data (harness.data_default.training_data): --data, or the stand-in set made once under
   the results root; a wrong --data fails before a result number is taken.
4. The result (harness.results.Recorder): `result_<i>` reserved under
   `results/<system>/strong/<benchmark>/` (an interrupted finish there is completed first), then
   the system description `systems/<system>.json` written.
5. The ranks (harness.train_worker). Each runs `harness run --worker ...` (the request turned
   back into flags by harness.run_request.to_argv), rebuilds and rechecks the request, trains
   (benchmark.trainer), and rank 0 writes the MLPerf log and the summary under `.partial` names.
6. The finish (harness.results.Recorder.finish_training): rank 0's summary, or an aborted record
   when the ranks died first, stamped with how the ranks were placed and renamed to its final
   names. `harness check` (harness.checks) and `harness summarize` (harness.scoring) read it.

The other modes reuse these steps. `epoch-time` is the same path into `epoch_time/`;
`throughput` (harness.instances) reserves M results at once and launches M tta instances side
by side, on disjoint cores where they share a node; `scaling` (harness.scaling) launches one
epoch-time run per point and records the series; `inference` (harness.run_inference) describes
the system and records its sweep and LoadGen runs through the same Recorder.
"""
from __future__ import annotations

import argparse

from benchmark.recipe import DEFAULT_BENCHMARK, DEFAULTS
from benchmark.vocabulary import INFERENCE, MODES, SCALING, SCALING_TYPES, THROUGHPUT
from reference_model.specs import BENCHMARKS
from harness.arguments import int_list, learning_rate_decay, positive_int
from harness.launch import LAUNCHERS
from harness.run_request import RunRequest


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="run a benchmark (no arguments: the main job on the embedded default)",
        description="Run a benchmark. Without --mode, runs the main job: make (or reuse) stand-in data, "
                    "validate the frozen reference checkpoint, a short inference sweep, 1- and 2-rank "
                    "epoch-time runs, write and check a results tree, print the summary.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    common = parser.add_argument_group("what to run")
    common.add_argument("--benchmark", choices=BENCHMARKS, default=DEFAULT_BENCHMARK)
    common.add_argument("--mode", choices=MODES, default=None,
                        help="benchmark mode; omit for the main job")
    common.add_argument("--data", type=str, default=None,
                        help="directory of HDF5 files in the real CLIC layout; when omitted, stand-in data "
                             "is made once under the results root: for tta and throughput the benchmark's "
                             "reference data set (the training and held-out sets its target and reference "
                             "convergence points were measured on, whatever --seed)")
    common.add_argument("--results", type=str, default="runs",
                        help="results root: the submission tree is written here")
    common.add_argument("--epochs", type=positive_int, default=DEFAULTS.max_epochs,
                        help="upper bound on epochs")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--smoke", action="store_true",
                        help="use the smoke quality target (tests only; results are marked not submittable)")
    common.add_argument("--checkpoint", type=str, default=None,
                        help="generator checkpoint (default: the frozen reference checkpoint)")
    common.add_argument("--precision", default=None,
                        help="training: float32 (default) or mixed_bfloat16; inference: a comma-separated "
                             "list of float32, bfloat16, int8")
    common.add_argument("--dry-run", action="store_true",
                        help="print the exact command or batch script without running it")

    train = parser.add_argument_group("training (tta, epoch-time, scaling)")
    train.add_argument("--per-rank-batch", type=positive_int, default=DEFAULTS.per_rank_batch,
                       help="samples per rank per step (the slides used 8)")
    train.add_argument("--learning-rate", type=float, default=DEFAULTS.base_learning_rate,
                       help="base RMSprop learning rate, scaled linearly with the ranks")
    train.add_argument("--warmup-epochs", type=int, default=DEFAULTS.warmup_epochs,
                       help="epochs of linear learning-rate warm-up (Goyal et al.): passes over the "
                            "training set, however --max-steps-per-epoch or --eval-every-samples cut epochs")
    train.add_argument("--eval-every-samples", type=positive_int, default=DEFAULTS.eval_every_samples,
                       metavar="K",
                       help="tta: train in evaluation intervals of K samples (rounded up to whole global "
                            "batches), each drawn from a fresh shuffle of the training set as the reference "
                            "convergence runs train, and evaluate after each; --epochs stays the budget in "
                            "passes over the training set. Not yet the closed division's schedule (every "
                            "epoch; rules.md section 3): a closed result of such a run fails compliance")
    train.add_argument("--lr-decay", type=learning_rate_decay, default=None, metavar="START,END,FACTOR",
                       help="multiply the rate by a cosine in samples, from 1 at START down to FACTOR at END, "
                            "held after (MLPerf HPC's references decay to about a tenth this way). Not yet part "
                            "of the closed recipe (rules.md section 3): a closed result with it fails compliance")
    train.add_argument("--ema-horizon-samples", type=positive_int, default=None, metavar="N",
                       help="keep an exponential moving average of the generator's weights over about N samples "
                            "(per-step decay 1 - global batch / N); the quality gate judges it and "
                            "--export-generator writes it. Not yet part of the closed recipe: a closed result "
                            "with it fails compliance")
    train.add_argument("--max-steps-per-epoch", type=positive_int, default=None,
                       help="cap an epoch at this many steps (epoch-time on a slice of the data)")
    train.add_argument("--train-fraction", type=float, default=DEFAULTS.train_fraction,
                       help="share of the sorted files used for training; the rest is held out for "
                            "evaluation (the originals: 0.9)")
    train.add_argument("--heldout-data", type=str, default=None,
                       help="tta, throughput: directory of HDF5 files the quality gate evaluates on; all of "
                            "--data then trains (--train-fraction is not used)")
    train.add_argument("--resume", action="store_true",
                       help="continue a killed run from its last checkpoint (logged as resumed)")
    train.add_argument("--hang-timeout", type=float, default=600.0,
                       help="seconds without progress after which the run is aborted")
    train.add_argument("--export-generator", type=str, default=None,
                       help="write the trained generator checkpoint here (*.weights.h5)")
    train.add_argument("--ranks-list", type=int_list, default=None,
                       help="scaling mode: rank counts to measure, e.g. 1,2,4")
    train.add_argument("--instances", type=positive_int, default=5,
                       help="throughput mode: model instances (M) trained concurrently to the target, "
                            "each on --nodes x --ranks-per-node ranks (MLPerf HPC's throughput metric)")
    train.add_argument("--scaling-type", choices=(*SCALING_TYPES, "both"), default="both",
                       help="scaling mode: fixed global batch (strong), fixed per-rank batch (weak)")
    train.add_argument("--emulate-ranks", type=positive_int, default=1, metavar="N",
                       help="tta mode: the arithmetic of N ranks in this one process (N per-rank batches, "
                            "noise and dropout streams and BatchNorm statistics per step, gradients "
                            "averaged, the closed rule's rate for N ranks): convergence evidence for a "
                            "global batch of N x --per-rank-batch, never a timing; filed under ROOT/emulated/")

    launch = parser.add_argument_group("launching")
    launch.add_argument("--nodes", type=positive_int, default=1,
                        help="nodes; more than 1 without --mode runs the submission set (tta and "
                             "epoch-time) at that scale through srun, mpirun --hostfile or an sbatch script")
    launch.add_argument("--ranks-per-node", type=positive_int, default=1,
                        help="ranks per node (the slides: 4, mapped to NUMA domains)")
    launch.add_argument("--cores-per-rank", type=positive_int, default=None,
                        help="cores behind each rank (default: a node's cores / --ranks-per-node, "
                             "a node's cores being the host file's slots with mpirun, "
                             "SLURM_CPUS_ON_NODE under Slurm, taken where the ranks run)")
    launch.add_argument("--intra-op-threads", type=positive_int, default=None,
                        help="TensorFlow intra-op threads per rank (default: one per physical core behind the "
                             "rank's CPUs, taken on its node)")
    launch.add_argument("--inter-op-threads", type=positive_int, default=2)
    launch.add_argument("--launcher", choices=LAUNCHERS, default="auto",
                        help="auto: srun inside a Slurm allocation, mpirun with --hostfile, an sbatch "
                             "script for --nodes > 1 where sbatch exists; on one node a single pinned "
                             "process for 1 rank, else mpirun. slurm: write an sbatch script")
    launch.add_argument("--hostfile", type=str, default=None,
                        help="mpirun host file, one `host slots=N` line per node (slots: cores of the node)")
    launch.add_argument("--oversubscribe", action="store_true",
                        help="let ranks share cores, unpinned, when ranks x --cores-per-rank exceed a "
                             "node's cores (recorded in the result); without it such a plan is refused")
    launch.add_argument("--partition", default=None, help="Slurm partition")
    launch.add_argument("--account", default=None, help="Slurm account")
    launch.add_argument("--time-limit", default="02:00:00", help="Slurm time limit")
    launch.add_argument("--submit", action="store_true", help="submit the sbatch script")
    launch.add_argument("--system-name", default=None,
                        help="system name in the results tree (default: from the system description)")
    launch.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    launch.add_argument("--log-file", default=None, help=argparse.SUPPRESS)
    launch.add_argument("--summary-file", default=None, help=argparse.SUPPRESS)
    launch.add_argument("--checkpoint-dir", default=None, help=argparse.SUPPRESS)

    from harness import run_inference

    run_inference.add_arguments(parser.add_argument_group("inference"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the request (step 1 above) and hand it to the module that owns what it asks for."""
    request = RunRequest.from_namespace(args)  # below this line, only the typed request travels
    if request.worker:  # a rank, re-entering (step 5)
        from harness.train_worker import run_worker
        return run_worker(request)
    if request.mode is None:
        if request.nodes > 1:
            from harness.train_launch import launch_submission_set
            return launch_submission_set(request)
        from harness.main_job import run_main_job
        return run_main_job(request)
    if request.mode == INFERENCE:
        from harness import run_inference
        return run_inference.run(request)
    if request.mode == THROUGHPUT:
        from harness.instances import run_throughput
        return run_throughput(request)
    if request.mode == SCALING:
        from harness.scaling import run_scaling
        return run_scaling(request)
    from harness.train_launch import launch_training  # tta, epoch-time
    return launch_training(request)
