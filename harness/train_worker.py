"""One training rank: set up the communicator and the MLPerf logger, train, write the summary.

Every rank runs this (in-process for a single rank, under mpirun or srun otherwise). Only rank 0
writes the log and the summary; the parent `harness run` process owns the paths.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path


def train_config_from_args(args: argparse.Namespace):
    from benchmark.trainer import TrainConfig

    precision = args.precision or "float32"
    if precision not in ("float32", "mixed_bfloat16"):
        from reference_model.errors import InputError
        raise InputError(f"--precision {precision}: training supports float32 or mixed_bfloat16")
    return TrainConfig(
        benchmark=args.benchmark, mode=args.mode, data=Path(args.data),
        checkpoint_dir=Path(args.checkpoint_dir), epochs=args.epochs,
        per_rank_batch=args.per_rank_batch, seed=args.seed, precision=precision,
        base_learning_rate=args.learning_rate, warmup_epochs=args.warmup_epochs,
        eval_every_samples=args.eval_every_samples, smoke=args.smoke,
        resume=args.resume, train_fraction=args.train_fraction, max_steps_per_epoch=args.max_steps_per_epoch,
        intra_op_threads=int(os.environ.get("HARNESS_INTRA_OP_THREADS", args.intra_op_threads or 0)),
        inter_op_threads=int(os.environ.get("HARNESS_INTER_OP_THREADS", args.inter_op_threads or 0)),
        hang_timeout_s=args.hang_timeout,
        export_generator=Path(args.export_generator) if args.export_generator else None)


def run_worker(args: argparse.Namespace) -> int:
    from benchmark.distributed import init_communicator
    from benchmark.trainer import train
    from harness import results
    from harness.mlperf_log import MLPerfLogger

    config = train_config_from_args(args)
    comm = init_communicator()
    nodes = int(os.environ.get("HARNESS_NODES", args.nodes))
    logger = MLPerfLogger(Path(args.log_file), rank=comm.rank, benchmark=args.benchmark,
                          mode=args.mode, smoke=args.smoke, nodes=nodes, ranks=comm.size,
                          system=args.system_name)
    result = train(config, comm, logger)
    if comm.is_root:
        summary = result.to_dict() | {
            "nodes": nodes, "ranks_per_node": comm.size // max(nodes, 1), "submittable": not args.smoke,
            "backend": comm.backend, "command": shlex.join(sys.argv), "log": str(args.log_file)}
        results.write_summary(Path(args.summary_file), summary)
        sps = result.steady_samples_per_second
        print(f"[rank 0] {args.mode} {result.status}: {result.seconds:.1f} s, {result.samples} samples"
              + (f", {sps:.2f} samples/s after the first epoch" if sps else "")
              + (f" ({result.reason})" if result.reason else ""), flush=True)
    return 0 if result.status == "success" else 1
