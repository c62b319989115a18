"""The parent side of a training run: data, result paths, launcher, and the final record.

The parent allocates the run's log and summary paths (never reusing an earlier run's), starts
the ranks through the chosen launcher (a single rank too runs in a fresh process, with the
environment and core binding an mpirun rank gets), and, if the ranks die before rank 0 could
write its summary, records the run as aborted so that nothing measured is silently lost. The
summary records how the ranks were placed (cores per rank and where that came from, binding).

Outside an allocation, a Slurm run is a batch script that re-enters `harness run --launcher srun`
with the same arguments, every path absolute.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Optional

from harness.launch import (LaunchPlan, Placement, check_reach, choose_launcher, local_command,
                            local_equivalent, mpirun_command, pin_on_start, place, require_mpirun,
                            sbatch_script, srun_command, submit)
from reference_model.errors import InputError

SUBMISSION_SET = ("tta", "epoch-time")  # what `harness run --nodes N` without --mode runs
PATH_ARGUMENTS = ("results", "data", "checkpoint", "hostfile", "export_generator", "checkpoint_dir")
NEVER_IN_JOB = ("submit", "dry_run", "help")


def plan_from_args(args: argparse.Namespace) -> LaunchPlan:
    return LaunchPlan(nodes=args.nodes, ranks_per_node=args.ranks_per_node,
                      cores_per_rank=args.cores_per_rank, intra_op_threads=args.intra_op_threads,
                      inter_op_threads=args.inter_op_threads,
                      hostfile=Path(args.hostfile).resolve() if args.hostfile else None,
                      oversubscribe=args.oversubscribe,
                      partition=args.partition, account=args.account, time_limit=args.time_limit)


def worker_arguments(args: argparse.Namespace, system: str, data: Path, log: Path, summary: Path,
                     checkpoint_dir: Path) -> list[str]:
    """The `harness run ... --worker` command line each rank executes."""
    argv = [sys.executable, "-m", "harness.cli", "run", "--worker", "--benchmark", args.benchmark,
            "--mode", args.mode, "--data", str(data), "--results", str(Path(args.results).resolve()),
            "--epochs", str(args.epochs), "--seed", str(args.seed),
            "--per-rank-batch", str(args.per_rank_batch), "--learning-rate", str(args.learning_rate),
            "--warmup-epochs", str(args.warmup_epochs), "--train-fraction", str(args.train_fraction),
            "--hang-timeout", str(args.hang_timeout),
            "--nodes", str(args.nodes), "--ranks-per-node", str(args.ranks_per_node),
            "--system-name", system,
            "--log-file", str(log), "--summary-file", str(summary), "--checkpoint-dir", str(checkpoint_dir)]
    optional = {"--precision": args.precision, "--eval-every-samples": args.eval_every_samples,
                "--max-steps-per-epoch": args.max_steps_per_epoch,
                "--export-generator": args.export_generator}
    for flag, value in optional.items():
        if value is not None:
            argv += [flag, str(value)]
    argv += [flag for flag, on in (("--smoke", args.smoke), ("--resume", args.resume)) if on]
    return argv


def resolve_launcher(args: argparse.Namespace, plan: LaunchPlan) -> str:
    """The launcher that reaches the plan's nodes from here, or a one-line error saying what to add."""
    launcher = choose_launcher(args.launcher, plan.ranks, plan.nodes, plan.hostfile)
    check_reach(launcher, plan)
    return launcher


def prepare(args: argparse.Namespace) -> tuple[LaunchPlan, str, Placement]:
    """Plan, launcher and placement of a training run, every refusal raised before anything runs."""
    check_precision(args.precision)
    plan = plan_from_args(args)
    launcher = resolve_launcher(args, plan)
    return plan, launcher, place(plan, launcher)


def launch_training(args: argparse.Namespace, return_summary: bool = False):
    """Run a tta or epoch-time benchmark; return its exit code (or its final summary dict)."""
    plan, launcher, placement = prepare(args)
    if launcher == "slurm":
        code = batch_job(args, plan, [job_argv(args, launcher="srun")])
        return {} if return_summary else code

    from harness import results
    from harness.data_default import ensure_data

    data = ensure_data(args).resolve()  # absolute: ranks may start in another directory or node
    if not args.dry_run:
        from reference_model.data import list_files

        list_files(data)  # a wrong --data fails here, before a result number is taken
    root = Path(args.results).resolve()
    system = results.system_name(args.system_name)
    run = results.allocate_training_run(root, system, args.benchmark, args.mode, dry_run=args.dry_run)
    checkpoint_dir = Path(args.checkpoint_dir).resolve() if args.checkpoint_dir else results.checkpoint_dir(
        root, system, args.benchmark, args.mode)
    worker = worker_arguments(args, system, data, run.log, run.summary, checkpoint_dir)
    command, shown, env, cpus = rank_command(plan, launcher, placement, worker)
    print(f"[harness] {args.mode} on {plan.ranks} rank(s) via {launcher}: {placement.describe()}",
          file=sys.stderr if args.dry_run else sys.stdout, flush=True)
    if placement.oversubscribed:
        print("[harness] warning: ranks share cores unpinned (oversubscribed); the result records it",
              file=sys.stderr, flush=True)
    if args.dry_run:
        print(shlex.join(shown))
        return {} if return_summary else 0

    results.write_system_description(root, system, nodes=args.nodes)
    print(f"[harness] log {run.log}", flush=True)
    launch = placement.record(launcher, plan)
    try:
        returncode = subprocess.run(command, env=env, check=False, preexec_fn=pin_on_start(cpus)).returncode
    except BaseException:  # interrupted: recorded as aborted, never left looking unfinished
        _finalise(run, 1, args, shown, launch)
        raise
    summary = _finalise(run, returncode, args, shown, launch)
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


def launch_submission_set(args: argparse.Namespace) -> int:
    """`harness run --nodes N` without --mode: time to accuracy and epoch time at that scale,
    through the launcher that reaches N nodes from here."""
    plan, launcher, _ = prepare(args)
    print(f"[harness] --nodes {plan.nodes} without --mode: the submission set ({', '.join(SUBMISSION_SET)}) "
          f"on {plan.nodes} node(s) x {plan.ranks_per_node} rank(s) via {launcher}",
          file=sys.stderr, flush=True)
    if launcher == "slurm":
        if args.launcher == "auto" and not (args.submit or args.dry_run):
            raise InputError(f"--nodes {plan.nodes} from a login node runs as a Slurm batch job: add "
                             "--submit to submit it, or --dry-run to print its script")
        return batch_job(args, plan, [job_argv(args, mode=m, launcher="srun") for m in SUBMISSION_SET])
    codes = [launch_training(with_changes(args, mode=mode)) for mode in SUBMISSION_SET]
    return max(codes)


def batch_job(args: argparse.Namespace, plan: LaunchPlan, steps: list[list[str]],
              name: Optional[str] = None) -> int:
    """Print the sbatch script of `steps`, or (--submit) write it under the results root and submit it."""
    script = sbatch_script(plan, steps, Path.cwd())
    if args.submit and not args.dry_run:
        print(submit(script, jobs_dir(args) / f"{name or plan.job_name}-{utc_stamp()}.sbatch"))
        return 0
    print(script, end="")
    if not args.dry_run:
        print("# not submitted: add --submit, or save this script and run sbatch on it", file=sys.stderr)
    return 0


def jobs_dir(args: argparse.Namespace) -> Path:
    """Where submitted batch scripts are kept: beside the results they produce."""
    return Path(args.results).resolve() / "jobs"


def job_argv(args: argparse.Namespace, **changes) -> list[str]:
    """The `harness run` command line for `args` with `changes` applied, every path absolute:
    what a batch job runs on the compute nodes, wherever it was written."""
    values = {**vars(args), **changes}
    argv = ["run"]
    for action in _run_parser()._actions:
        dest, value = action.dest, values.get(action.dest)
        if not action.option_strings or action.help == argparse.SUPPRESS or dest in NEVER_IN_JOB:
            continue
        if value is None or (value == action.default and dest not in ("results", *changes)):
            continue
        if dest in PATH_ARGUMENTS:
            value = Path(value).resolve()
        flag = max(action.option_strings, key=len)
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(action.option_strings[0] if value else action.option_strings[1])
        elif action.nargs == 0:
            argv += [flag] if value else []
        else:
            argv += [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return argv


def _run_parser() -> argparse.ArgumentParser:
    from harness.commands.run import register

    subparsers = argparse.ArgumentParser(prog="harness").add_subparsers()
    register(subparsers)
    return subparsers.choices["run"]


def with_changes(args: argparse.Namespace, **changes) -> argparse.Namespace:
    point = copy.copy(args)
    for key, value in changes.items():
        setattr(point, key, value)
    return point


def check_precision(precision: Optional[str]) -> None:
    """Refused before a result number is taken (the ranks would refuse it too, later)."""
    from benchmark.trainer import PRECISIONS

    if precision not in (None, *PRECISIONS):
        raise InputError(f"--precision {precision}: training supports {' or '.join(PRECISIONS)}")


def utc_stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _finalise(run, returncode: int, args: argparse.Namespace, command: list[str], launch: dict) -> dict:
    """Read rank 0's summary (or, if the ranks died first, record the run as aborted), add how
    the ranks were placed, and give the run its final names. Returns the final summary."""
    from harness import results
    from harness.mlperf_log import record_abort_if_unfinished

    summary = results.read_summary(run.summary)
    if summary is None:
        reason = f"ranks exited with code {returncode} before rank 0 wrote its summary"
        record_abort_if_unfinished(run.log, reason)
        summary = {"status": "aborted", "reason": reason, "mode": args.mode, "benchmark": args.benchmark,
                   "ranks": args.nodes * args.ranks_per_node, "submittable": False,
                   "command": shlex.join(command)}
        print(f"harness run: error: {reason}; see {run.log}", file=sys.stderr)
    results.write_summary(run.summary, {**summary, "launch": launch})
    return results.read_summary(results.finish_run(run)) or {}
