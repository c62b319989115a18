"""`harness run --mode throughput`: MLPerf HPC's throughput metric (formerly "weak scaling").

M model instances of S ranks each (S = --nodes x --ranks-per-node) train concurrently to the
quality target, each from its own seed, each writing its own MLPerf log under
`weak/<benchmark>/` (one `result_<i>` per instance, stamped with its set, index and M). The
score is the time to train them all, max(run_stop) - min(run_start) over the instances
(harness.scoring.score_instances), checked by `harness check` as MLPerf HPC requires (every
instance present, distinct seeds, one instance scale, reported beside a time-to-accuracy result).

Each instance is launched exactly as `harness run --mode tta` launches a run (harness.train_launch:
the same worker command line, launchers and placement; harness.results.Recorder: the same
reservation and final record); what differs is that the M launches run at once and, where
they share a node, on disjoint cores. Instances sharing one node run as pinned processes
(1 rank) or under mpirun restricted to their cores (--cpu-set); inside a Slurm allocation each
instance is an `srun --exact` step, so steps get their own resources; from a login node the
whole set is one sbatch job of M x S nodes.
"""
from __future__ import annotations

import dataclasses
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from benchmark import vocabulary
from harness import results
from harness.launch import (LaunchPlan, Placement, core_groups, local_command, local_equivalent,
                            mpirun_command, pin_on_start, place, require_mpirun, sigterm_passed_on,
                            srun_command)
from harness.run_request import RunRequest, with_changes
from harness.train_launch import batch_job, job_argv, prepare, worker_arguments
from reference_model.errors import InputError


@dataclass
class Instance:
    """One model instance of a set: its result files, its command, and its process once started."""

    index: int  # 1..M
    run: results.TrainingRun
    request: RunRequest  # the instance's own request (mode tta, its seed)
    command: list[str]
    shown: list[str]  # the equivalent shell command (what --dry-run prints and the summary records)
    env: Optional[dict] = None
    cpus: Optional[set] = None
    process: Optional[subprocess.Popen] = None


def run_throughput(request: RunRequest) -> int:
    """Train --instances M instances concurrently to the target; exit 0 when every one reached it."""
    count = request.instances  # at least 2, never --resume (checked by the request)
    base = with_changes(request, mode=vocabulary.TTA)
    plan, launcher, _ = prepare(base)
    if launcher == "slurm":
        whole = dataclasses.replace(plan, nodes=plan.nodes * count, job_name="3dgan-throughput")
        return batch_job(request, whole, [job_argv(request, launcher="srun")], name=whole.job_name)
    if launcher == "mpirun" and plan.hostfile:
        raise InputError("--mode throughput with --hostfile: the instances would need a host file each; "
                         "run inside a Slurm allocation (srun steps) or with every instance on this node")
    if launcher == "mpirun" and not request.dry_run:
        require_mpirun()
    shared = launcher in ("local", "mpirun")  # every instance on this node
    placement = _instance_placement(plan, launcher, count, shared)
    recorder, instances = _prepare_instances(base, plan, launcher, placement, count, shared)
    for instance in instances:
        print(f"[harness] throughput instance {instance.index}/{count} (seed {instance.request.seed}) on "
              f"{plan.ranks} rank(s) via {launcher}: {placement.describe()}"
              + (f", cores {sorted(instance.cpus)}" if instance.cpus else ""),
              file=sys.stderr if request.dry_run else sys.stdout, flush=True)
        if request.dry_run:
            print(shlex.join(instance.shown))
    if request.dry_run:
        return 0
    recorder.describe_system(nodes=plan.nodes * (1 if shared else count))
    summaries = _run_concurrently(recorder, instances, plan.ranks, placement.record(launcher, plan))
    return _report(instances, summaries)


def _instance_placement(plan: LaunchPlan, launcher: str, count: int, shared: bool) -> Placement:
    """Cores per rank of each instance: instances on one node split its cores between them."""
    if not shared or plan.cores_per_rank:
        placement = place(plan, launcher)
    else:
        whole = place(plan, launcher)
        per_rank = max(1, whole.cores_per_node // (count * plan.ranks_per_node))
        placement = dataclasses.replace(place(dataclasses.replace(plan, cores_per_rank=per_rank), launcher),
                                        source=f"{whole.source}, shared by {count} instances")
    if shared and placement.cores_per_node is not None:
        needed = count * plan.ranks_per_node * placement.cores_per_rank
        if needed > placement.cores_per_node and not plan.oversubscribe:
            raise InputError(f"{count} instances x {plan.ranks_per_node} rank(s) x {placement.cores_per_rank} "
                             f"core(s) need {needed} cores, this node has {placement.cores_per_node}; lower "
                             "--instances or --cores-per-rank, or add --oversubscribe")
        if needed > placement.cores_per_node:
            placement = dataclasses.replace(placement, oversubscribed=True)
    return placement


def _prepare_instances(base: RunRequest, plan: LaunchPlan, launcher: str, placement: Placement,
                       count: int, shared: bool) -> tuple[results.Recorder, list[Instance]]:
    """Reserve one result per instance (the set is named by the first) and build each instance's
    command line, seed and cores."""
    from harness.data_default import training_data

    data = training_data(base)
    recorder = results.Recorder.open(Path(base.results).resolve(), base.system_name, dry_run=base.dry_run)
    runs = recorder.reserve_instances(base.benchmark, count)
    first = runs[0].index
    checkpoints = recorder.checkpoint_dir(base.benchmark, vocabulary.THROUGHPUT, requested=base.checkpoint_dir)
    groups = core_groups()
    instances = []
    for index, run in enumerate(runs, start=1):
        own = with_changes(base, seed=base.seed + index - 1)  # MLPerf HPC: every instance its own seed
        worker = worker_arguments(own, recorder.system, data, run.log, run.summary,
                                  checkpoints / f"set_{first}" / f"instance_{index}")
        cpus = None
        if shared and not placement.oversubscribed:
            share = plan.ranks_per_node * placement.cores_per_rank
            cpus = {cpu for group in groups[(index - 1) * share:index * share] for cpu in group}
        instances.append(_command(index, run, own, plan, launcher, placement, worker, cpus))
    return recorder, instances


def _command(index: int, run: results.TrainingRun, own: RunRequest, plan: LaunchPlan, launcher: str,
             placement: Placement, worker: list[str], cpus: Optional[set]) -> Instance:
    """The launcher's command for one instance, restricted to the instance's cores."""
    if launcher == "local":
        command, env, _ = local_command(plan, worker, placement)
        return Instance(index, run, own, command, local_equivalent(plan, worker, placement, cpus), env, cpus)
    if launcher == "mpirun":
        command = mpirun_command(plan, worker, placement)
        if cpus:  # ranks mapped and bound inside this instance's cores only
            command = [command[0], "--cpu-set", ",".join(map(str, sorted(cpus))), *command[1:]]
        return Instance(index, run, own, command, command)
    command = srun_command(plan, worker, placement)
    command = [command[0], "--exact", *command[1:]]  # a step of its own resources, beside the others
    return Instance(index, run, own, command, command)


def _run_concurrently(recorder: results.Recorder, instances: list[Instance], ranks: int, launch: dict) -> list[dict]:
    """Start every instance, wait for all, and give each its final record (aborted if it died)."""
    started: list[subprocess.Popen] = []
    try:
        with sigterm_passed_on(started):  # each instance checkpoints and stops, and is recorded as it ended
            for instance in instances:
                print(f"[harness] instance {instance.index}: log {instance.run.log}", flush=True)
                instance.process = subprocess.Popen(instance.command, env=instance.env,
                                                    preexec_fn=pin_on_start(instance.cpus))
                started.append(instance.process)
            codes = [instance.process.wait() for instance in instances]
    except BaseException:  # interrupted: every instance is recorded as aborted, none left unfinished
        for instance in instances:
            if instance.process is not None and instance.process.poll() is None:
                instance.process.terminate()
                instance.process.wait()
            recorder.finish_training(instance.run, 1, ranks, instance.shown, launch)
        raise
    return [recorder.finish_training(instance.run, code, ranks, instance.shown, launch)
            for instance, code in zip(instances, codes)]


def _report(instances: list[Instance], summaries: list[dict]) -> int:
    """Print the set's score, taken from the instances' logs as `harness summarize` takes it."""
    from harness.mlperf_log import read_timing
    from harness.scoring import score_instances

    timings = []
    for instance in instances:
        try:
            timings.append(read_timing(instance.run.final_log))
        except (OSError, ValueError):
            timings.append(None)
    score = score_instances(timings)
    reached = sum(s.get("status") == "success" for s in summaries)
    value = "-" if score.value is None else f"{score.value:.2f} min"
    verdict = "valid" if score.valid else f"not a valid result: {score.reason}"
    first = instances[0].run
    print(f"[harness] throughput set {first.index} ({first.directory}): {reached} of {len(instances)} instance(s) "
          f"reached the target; time to train all {value} ({verdict})", flush=True)
    return 0 if reached == len(instances) else 1
