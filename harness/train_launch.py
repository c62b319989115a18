"""The parent side of a training run (`harness run --mode tta|epoch-time`, steps 2 to 6 of the
story in harness.commands.run): plan and launcher, the ranks' command line, and the run's life.

The parent takes the run's data (harness.data_default), has a `harness.results.Recorder` reserve
the run's log and summary paths (never reusing an earlier run's), starts the ranks through the
chosen launcher (a single rank too runs in a fresh process, with the environment and core
binding an mpirun rank gets), and has the Recorder finish the run, recording it as aborted if
the ranks die before rank 0 could write its summary, so that nothing measured is silently lost.
The summary records how the ranks were placed (cores per rank and where that came from, binding).

Outside an allocation, a Slurm run is a batch script that re-enters `harness run --launcher srun`
with the same request, every path absolute (`job_argv`).
"""
from __future__ import annotations

import datetime
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Optional, TextIO

from benchmark.vocabulary import EPOCH_TIME, TTA
from harness.data_default import TrainingData
from harness.launch import (LaunchPlan, Placement, check_reach, choose_launcher, local_command,
                            local_equivalent, mpirun_command, pin_on_start, place,
                            require_mpirun, sbatch_script, sigterm_passed_on, srun_command, submit)
from harness.run_request import RunRequest, to_argv, with_changes
from harness.train_worker import WORKER_FLAGS, WORKER_FLAGS_ALWAYS
from reference_model.errors import InputError

SUBMISSION_SET = (TTA, EPOCH_TIME)  # what `harness run --nodes N` without --mode runs


def plan_from_args(request: RunRequest) -> LaunchPlan:
    return LaunchPlan(nodes=request.nodes, ranks_per_node=request.ranks_per_node,
                      cores_per_rank=request.cores_per_rank, intra_op_threads=request.intra_op_threads,
                      inter_op_threads=request.inter_op_threads,
                      hostfile=Path(request.hostfile).resolve() if request.hostfile else None,
                      oversubscribe=request.oversubscribe,
                      partition=request.partition, account=request.account, time_limit=request.time_limit)


def worker_arguments(request: RunRequest, system: str, data: TrainingData, log: Path, summary: Path,
                     checkpoint_dir: Path) -> list[str]:
    """The `harness run ... --worker` command line each rank executes."""
    worker = with_changes(request, worker=True, data=str(data.train),
                          heldout_data=str(data.heldout) if data.heldout else None,
                          results=str(Path(request.results).resolve()),
                          system_name=system, log_file=str(log), summary_file=str(summary),
                          checkpoint_dir=str(checkpoint_dir))
    return [sys.executable, "-m", "harness.cli", "run", *to_argv(worker, WORKER_FLAGS, keep=WORKER_FLAGS_ALWAYS)]


def resolve_launcher(request: RunRequest, plan: LaunchPlan) -> str:
    """The launcher that reaches the plan's nodes from here, or a one-line error saying what to add."""
    launcher = choose_launcher(request.launcher, plan.ranks, plan.nodes, plan.hostfile)
    check_reach(launcher, plan)
    return launcher


def prepare(request: RunRequest) -> tuple[LaunchPlan, str, Placement]:
    """Plan, launcher and placement of a training run, every refusal raised before anything runs
    (the request itself was checked when it was built)."""
    plan = plan_from_args(request)
    launcher = resolve_launcher(request, plan)
    placement = place(plan, launcher)
    check_system_named_from_rank0(request, plan, placement)
    return plan, launcher, placement


def check_system_named_from_rank0(request: RunRequest, plan: LaunchPlan, placement: Placement) -> None:
    """The system a result is filed under is the one its ranks run on. When rank 0 runs on another
    host (a host file that does not list this machine first, as from a login node), this machine
    can neither name nor describe it: the name must be given, and rank 0 writes the description."""
    from harness.sysinfo import identity_from_environment

    host = placement.rank0_host
    if host and identity_from_environment(system_name=request.system_name).system_name is None:
        raise InputError(f"--hostfile {plan.hostfile}: rank 0 runs on {host}, not on this machine, which "
                         "cannot name the system the ranks run on; pass --system-name NAME for the compute "
                         f"nodes (rank 0 writes their description), or run harness on {host}")


def announce_convergence_scale(request: RunRequest, stream: TextIO) -> None:
    """The global batch and peak learning rate the closed rule gives at this scale, and whether a
    reference convergence point covers that batch: a time-to-accuracy result at a batch no RCP
    covers fails the check until the submitter adds the reference runs (as MLPerf asks)."""
    from benchmark.rcp import coverage
    from benchmark.recipe import get_recipe, interval_steps
    from harness.scoring import REQUIRED_RUNS

    base = get_recipe(request.benchmark).base_learning_rate
    batch = request.ranks * request.per_rank_batch
    print(f"[harness] global batch {request.nodes} node(s) x {request.ranks_per_node} rank(s) x "
          f"{request.per_rank_batch} per rank = {batch}; closed learning-rate rule: peak {base:g} x "
          f"{request.ranks} ranks = {base * request.ranks:g}", file=stream)
    print(f"[harness] {coverage(request.benchmark, batch, REQUIRED_RUNS[TTA])}", file=stream, flush=True)
    if not request.smoke and (unreached := unreached_target(request.benchmark)):
        print(f"[harness] warning: {unreached}", file=stream, flush=True)
    if request.eval_every_samples is not None:
        interval = interval_steps(request.eval_every_samples, batch) * batch
        print(f"[harness] evaluation every {interval:,} samples, each interval from a fresh shuffle of the training "
              "set; the closed division evaluates every epoch until docs/closed-rule-study.md decides (rules.md "
              "section 3), so a closed result of this run fails compliance", file=stream, flush=True)


def unreached_target(benchmark: str) -> Optional[str]:
    """Why a time-to-accuracy run of `benchmark` may never pass, or None: no reference generator
    has been shipped for it, so nothing has shown its target in force to be reachable."""
    from benchmark.quality import load_thresholds
    from reference_model.checkpoint import frozen_checkpoint

    shipped = frozen_checkpoint(benchmark)
    if shipped.exists():
        return None
    return (f"no {benchmark} reference generator has reached its target {load_thresholds(benchmark).name} "
            f"(none is shipped at {shipped}), so this run may spend all its epochs without passing it; "
            "add --smoke to try the machinery; `harness reference queue --status` says where its reference stands")


def launch_training(request: RunRequest, return_summary: bool = False):
    """Run a tta or epoch-time benchmark; return its exit code (or its final summary dict)."""
    plan, launcher, placement = prepare(request)
    if request.mode == TTA:
        announce_convergence_scale(request, sys.stderr if request.dry_run else sys.stdout)
    if launcher == "slurm":
        from harness.data_default import check_given_data

        check_given_data(request)  # before the job waits in the queue
        code = batch_job(request, plan, [job_argv(request, launcher="srun")])
        return {} if return_summary else code

    from harness import results
    from harness.data_default import training_data

    data = training_data(request)
    recorder = results.Recorder.open(Path(request.results).resolve(), request.system_name, dry_run=request.dry_run)
    run = recorder.reserve_training(request.benchmark, request.mode, emulated=request.emulate_ranks > 1)
    checkpoint_dir = recorder.checkpoint_dir(request.benchmark, request.mode, requested=request.checkpoint_dir)
    worker = worker_arguments(request, recorder.system, data, run.log, run.summary, checkpoint_dir)
    command, shown, env, cpus = rank_command(plan, launcher, placement, worker)
    print(f"[harness] {request.mode} on {plan.ranks} rank(s) via {launcher}: {placement.describe()}",
          file=sys.stderr if request.dry_run else sys.stdout, flush=True)
    if placement.oversubscribed:
        print("[harness] warning: ranks share cores unpinned (oversubscribed); the result records it",
              file=sys.stderr, flush=True)
    if request.dry_run:
        print(shlex.join(shown))
        return {} if return_summary else 0

    if placement.rank0_host is None:  # else rank 0 describes its own node (harness.train_worker)
        recorder.describe_system(nodes=request.nodes)
    print(f"[harness] log {run.log}", flush=True)
    launch = placement.record(launcher, plan)
    try:
        child = subprocess.Popen(command, env=env, preexec_fn=pin_on_start(cpus))
        with sigterm_passed_on([child]):  # the ranks checkpoint and stop, and the run is recorded as it ended
            returncode = child.wait()
    except BaseException:  # interrupted: recorded as aborted, never left looking unfinished
        recorder.finish_training(run, 1, request.ranks, shown, launch)
        raise
    summary = recorder.finish_training(run, returncode, request.ranks, shown, launch)
    return summary if return_summary else (0 if summary.get("status") == "success" else 1)


def rank_command(plan: LaunchPlan, launcher: str, placement: Placement, worker: list[str]):
    """(command to run, its shell equivalent to show, environment or None, CPUs to pin to or None)."""
    if launcher == "local":
        command, env, cpus = local_command(plan, worker, placement)
        return command, local_equivalent(plan, worker, placement, cpus), env, cpus
    if launcher == "mpirun":
        require_mpirun()
        command = mpirun_command(plan, worker, placement)
    else:
        command = srun_command(plan, worker, placement)
    return command, command, None, None


def launch_submission_set(request: RunRequest) -> int:
    """`harness run --nodes N` without --mode: time to accuracy and epoch time at that scale,
    through the launcher that reaches N nodes from here."""
    plan, launcher, _ = prepare(request)
    print(f"[harness] --nodes {plan.nodes} without --mode: the submission set ({', '.join(SUBMISSION_SET)}) "
          f"on {plan.nodes} node(s) x {plan.ranks_per_node} rank(s) via {launcher}",
          file=sys.stderr, flush=True)
    if launcher == "slurm":
        if request.launcher == "auto" and not (request.submit or request.dry_run):
            raise InputError(f"--nodes {plan.nodes} from a login node runs as a Slurm batch job: add "
                             "--submit to submit it, or --dry-run to print its script")
        announce_convergence_scale(request, sys.stderr)  # elsewhere its tta run says it
        from harness.data_default import check_given_data

        for mode in SUBMISSION_SET:  # before the job waits in the queue
            check_given_data(with_changes(request, mode=mode))
        return batch_job(request, plan, [job_argv(request, mode=m, launcher="srun") for m in SUBMISSION_SET])
    codes = [launch_training(with_changes(request, mode=mode)) for mode in SUBMISSION_SET]
    return max(codes)


def batch_job(request: RunRequest, plan: LaunchPlan, steps: list[list[str]],
              name: Optional[str] = None) -> int:
    """Print the sbatch script of `steps`, or (--submit) write it under the results root and submit it."""
    script = sbatch_script(plan, steps, Path.cwd())
    if request.submit and not request.dry_run:
        print(submit(script, jobs_dir(request) / f"{name or plan.job_name}-{utc_stamp()}.sbatch"))
        return 0
    print(script, end="")
    if not request.dry_run:
        print("# not submitted: add --submit, or save this script and run sbatch on it", file=sys.stderr)
    return 0


def jobs_dir(request: RunRequest) -> Path:
    """Where submitted batch scripts are kept: beside the results they produce."""
    return Path(request.results).resolve() / "jobs"


def job_argv(request: RunRequest, **changes) -> list[str]:
    """The `harness run` command line for `request` with `changes` applied, every path absolute:
    what a batch job runs on the compute nodes, wherever it was written (it neither submits nor
    dry-runs)."""
    job = with_changes(request, submit=False, dry_run=False, **changes).absolute_paths()
    return ["run", *to_argv(job, keep=("results", *changes))]


def utc_stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
