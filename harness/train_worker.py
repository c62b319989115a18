"""One training rank: set up the communicator and the MLPerf logger, train, write the summary.

Every rank runs this (a fresh pinned process for a single rank, under mpirun or srun otherwise),
re-entering `harness run --worker` with the flags `WORKER_FLAGS` (harness.train_launch writes
them); the request is rebuilt from them and checked like the parent's. Only rank 0 writes the
log and the summary; the parent `harness run` process owns the paths.
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.recipe import DEFAULTS, LearningRateDecay

if TYPE_CHECKING:
    from harness.run_request import RunRequest

# The flags a rank is given, in this order: every field `train_config` and `run_worker` read but
# the thread counts, which reach a rank through its environment (harness.launch.LaunchPlan.environment).
# The first ones always (WORKER_FLAGS_ALWAYS), the rest when set.
WORKER_FLAGS_ALWAYS = ("worker", "benchmark", "mode", "data", "results", "epochs", "seed", "per_rank_batch",
                       "learning_rate", "warmup_epochs", "train_fraction", "hang_timeout", "nodes",
                       "ranks_per_node", "system_name", "log_file", "summary_file", "checkpoint_dir")
WORKER_FLAGS = (*WORKER_FLAGS_ALWAYS, "heldout_data", "precision", "eval_every_samples", "lr_decay",
                "ema_horizon_samples", "max_steps_per_epoch",
                "export_generator", "smoke", "resume", "emulate_ranks")


def intra_op_threads(request: RunRequest) -> int:
    """The intra-op pool of a rank: --intra-op-threads, else one thread per core behind the CPUs
    its launcher gave it (HARNESS_CPUS_PER_RANK), else TensorFlow's default (0) outside a launch."""
    from harness.launch import intra_op_threads_here

    if "HARNESS_INTRA_OP_THREADS" in os.environ:
        return int(os.environ["HARNESS_INTRA_OP_THREADS"])
    if "HARNESS_CPUS_PER_RANK" in os.environ:
        return intra_op_threads_here(int(os.environ["HARNESS_CPUS_PER_RANK"]))
    return request.intra_op_threads or 0


def train_config(request: RunRequest):
    from benchmark.trainer import TrainConfig

    precision = request.precision or DEFAULTS.precision  # a request that trains has a training precision
    horizon = request.ema_horizon_samples
    return TrainConfig(
        benchmark=request.benchmark, mode=request.mode, data=Path(request.data),
        checkpoint_dir=Path(request.checkpoint_dir), epochs=request.epochs,
        per_rank_batch=request.per_rank_batch, seed=request.seed, precision=precision,
        base_learning_rate=request.learning_rate, warmup_epochs=request.warmup_epochs,
        eval_every_samples=request.eval_every_samples, smoke=request.smoke,
        resume=request.resume, train_fraction=request.train_fraction,
        eval_data=Path(request.heldout_data) if request.heldout_data else None,
        max_steps_per_epoch=request.max_steps_per_epoch,
        intra_op_threads=intra_op_threads(request),
        inter_op_threads=int(os.environ.get("HARNESS_INTER_OP_THREADS", request.inter_op_threads or 0)),
        hang_timeout_s=request.hang_timeout,
        export_generator=Path(request.export_generator) if request.export_generator else None,
        emulated_ranks=request.emulate_ranks,
        lr_decay=LearningRateDecay(*request.lr_decay) if request.lr_decay else None,
        ema_decay=None if horizon is None else 1.0 - request.global_batch / horizon,
        judge_moving_average=horizon is not None)


def run_worker(request: RunRequest) -> int:
    from benchmark.distributed import init_communicator
    from benchmark.trainer import train
    from harness import results
    from harness.launch import cpus_of_this_rank
    from harness.mlperf_log import MLPerfLogger

    config = train_config(request)
    comm = init_communicator()
    nodes = int(os.environ.get("HARNESS_NODES", request.nodes))
    if comm.is_root:  # the system is described where its ranks run, not where the job was written
        cpus = cpus_of_this_rank()
        results.write_system_description(Path(request.results), request.system_name, nodes=nodes)
        print(f"[rank 0] on {cpus['host']}: {cpus['logical_cpus']} logical CPU(s) on {cpus['physical_cores']} "
              f"core(s), {config.intra_op_threads or 'default'} intra-op thread(s)", flush=True)
    logger = MLPerfLogger(Path(request.log_file), rank=comm.rank, benchmark=request.benchmark,
                          mode=request.mode, smoke=request.smoke, nodes=nodes, ranks=comm.size,
                          system=request.system_name)
    result = train(config, comm, logger)
    if comm.is_root:
        summary = result.to_dict() | {
            "nodes": nodes, "ranks_per_node": comm.size // max(nodes, 1), "submittable": not request.smoke,
            "backend": comm.backend, "command": shlex.join(sys.argv), "log": str(request.log_file),
            "rank0_cpus": cpus, "threads": {"intra_op": config.intra_op_threads, "inter_op": config.inter_op_threads}}
        results.write_summary(Path(request.summary_file), summary)
        sps = result.steady_samples_per_second
        print(f"[rank 0] {request.mode} {result.status}: {result.seconds:.1f} s, {result.samples} samples"
              + (f", {sps:.2f} samples/s after the first epoch" if sps else "")
              + (f" ({result.reason})" if result.reason else ""), flush=True)
    return 0 if result.status == "success" else 1
