"""The parent side of a training run: data, result paths, launcher, and the final record.

The parent allocates the run's log and summary paths (never reusing an earlier run's), starts
the ranks through the chosen launcher, and, if the ranks die before rank 0 could write its
summary, records the run as aborted so that nothing measured is silently lost.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from harness.launch import (LaunchPlan, choose_launcher, mpirun_command, require_mpirun, sbatch_script,
                            srun_command, submit)


def plan_from_args(args: argparse.Namespace) -> LaunchPlan:
    return LaunchPlan(nodes=args.nodes, ranks_per_node=args.ranks_per_node,
                      cores_per_rank=args.cores_per_rank, intra_op_threads=args.intra_op_threads,
                      inter_op_threads=args.inter_op_threads,
                      hostfile=Path(args.hostfile) if args.hostfile else None,
                      partition=args.partition, account=args.account, time_limit=args.time_limit)


def cores_per_node() -> int:
    """Physical cores of this node (the launch target is assumed to be alike)."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def worker_arguments(args: argparse.Namespace, system: str, data: Path, log: Path, summary: Path,
                     checkpoint_dir: Path) -> list[str]:
    """The `harness run ... --worker` command line each rank executes."""
    argv = [sys.executable, "-m", "harness.cli", "run", "--worker", "--benchmark", args.benchmark,
            "--mode", args.mode, "--data", str(data), "--results", str(args.results),
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


def launch_training(args: argparse.Namespace, return_summary: bool = False):
    """Run a tta or epoch-time benchmark; return its exit code (or its summary dict)."""
    plan = plan_from_args(args)
    launcher = choose_launcher(args.launcher, plan.ranks)
    cores = cores_per_node()
    if launcher == "slurm":
        script = sbatch_script(plan, _harness_argv(), cores, Path.cwd())
        if args.submit and not args.dry_run:
            print(submit(script, Path(args.results)))
        else:
            print(script, end="")
            if not args.dry_run:
                print("# not submitted: add --submit, or save this script and run sbatch on it",
                      file=sys.stderr)
        return {} if return_summary else 0

    from harness import results
    from harness.data_default import ensure_data

    data = ensure_data(args)
    if not args.dry_run:
        from reference_model.data import list_files

        list_files(data)  # a wrong --data fails here, before a result number is taken
    system = results.system_name(args.system_name)
    run = results.allocate_training_run(Path(args.results), system, args.benchmark, args.mode,
                                        dry_run=args.dry_run)
    checkpoint_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else results.checkpoint_dir(
        Path(args.results), system, args.benchmark, args.mode)
    worker = worker_arguments(args, system, data, run.log, run.summary, checkpoint_dir)

    if launcher == "local":
        command = worker
    elif launcher == "mpirun":
        require_mpirun()
        command = mpirun_command(plan, worker, cores)
    else:
        command = srun_command(plan, worker, cores)
    if args.dry_run:
        print(shlex.join(command))
        return {} if return_summary else 0

    results.write_system_description(Path(args.results), system, nodes=args.nodes)
    print(f"[harness] {args.mode} on {plan.ranks} rank(s) via {launcher}: log {run.log}", flush=True)
    if launcher == "local":
        try:
            returncode = _run_in_process(worker)
        except BaseException:  # recorded as aborted, never left looking unfinished
            _finalise(run, 1, args, command)
            raise
    else:
        returncode = subprocess.run(command, check=False).returncode
    summary = _finalise(run, returncode, args, command)
    return summary if return_summary else (0 if summary.get("status") == "success" else 1)


def _run_in_process(worker: list[str]) -> int:
    from harness.cli import build_parser
    from harness.train_worker import run_worker

    return run_worker(build_parser().parse_args(worker[3:]))


def _finalise(run, returncode: int, args: argparse.Namespace, command: list[str]) -> dict:
    """Read rank 0's summary; if the ranks died first, record the run as aborted."""
    from harness import results
    from harness.mlperf_log import record_abort_if_unfinished

    summary = results.read_summary(run.summary)
    if summary is None:
        reason = f"ranks exited with code {returncode} before rank 0 wrote its summary"
        record_abort_if_unfinished(run.log, reason)
        summary = {"status": "aborted", "reason": reason, "mode": args.mode, "benchmark": args.benchmark,
                   "ranks": args.nodes * args.ranks_per_node, "submittable": False,
                   "command": shlex.join(command)}
        results.write_summary(run.summary, summary)
        print(f"harness run: error: {reason}; see {run.log}", file=sys.stderr)
    results.finish_run(run)
    return summary


def _harness_argv() -> list[str]:
    argv = sys.argv[1:]
    return argv if argv and argv[0] == "run" else ["run", *argv]
