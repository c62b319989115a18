"""`harness run --mode scaling`: epoch time against rank count, strong and weak.

Each point is a real epoch-time run through the normal launcher. Strong scaling keeps the
global batch fixed (per-rank batch = global / ranks); weak scaling keeps the per-rank batch
fixed. Speed-up is throughput relative to the smallest rank count, efficiency is speed-up
divided by the rank ratio.
"""
from __future__ import annotations

import argparse
import copy
import os
from pathlib import Path

from reference_model.errors import InputError


def scaling_points(ranks_list: list[int], per_rank_batch: int, kind: str) -> list[tuple[str, int, int]]:
    """(kind, ranks, per-rank batch) for every run of the series."""
    points = []
    if kind in ("weak", "both"):
        points += [("weak", n, per_rank_batch) for n in ranks_list]
    if kind in ("strong", "both"):
        global_batch = per_rank_batch * max(ranks_list)
        for n in ranks_list:
            if global_batch % n:
                raise InputError(f"--ranks-list: strong scaling needs the global batch {global_batch} "
                                 f"to divide evenly over {n} ranks; choose rank counts that divide it")
            points.append(("strong", n, global_batch // n))
    return points


def efficiency_table(rows: list[dict]) -> list[dict]:
    """Add speed-up and parallel efficiency against the smallest rank count of each kind."""
    out = []
    for kind in ("strong", "weak"):
        series = sorted((r for r in rows if r["scaling"] == kind), key=lambda r: r["ranks"])
        if not series:
            continue
        base = series[0]
        for row in series:
            sps = row.get("samples_per_second")
            speedup = sps / base["samples_per_second"] if sps and base.get("samples_per_second") else None
            ratio = row["ranks"] / base["ranks"]
            out.append({**row, "speedup": speedup,
                        "efficiency": speedup / ratio if speedup is not None else None})
    return out


def measure_training_roofline(benchmark: str, precision: str) -> tuple[dict, int]:
    """The matmul roofline of the training precision, and the reference step's FLOPs per sample."""
    from benchmark.roofline import measure_matmul, training_flops_per_sample
    from reference_model.specs import get_spec

    roofline = measure_matmul("bfloat16" if precision == "mixed_bfloat16" else "float32")
    return roofline.to_dict(), training_flops_per_sample(get_spec(benchmark))


def run_scaling(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchmark.roofline import model_flops_utilisation
    from harness import results
    from harness.train_launch import launch_training

    ranks_list = args.ranks_list or [1, 2]
    points = scaling_points(ranks_list, args.per_rank_batch, args.scaling_type)
    roofline, flops = ({}, 0) if args.dry_run else measure_training_roofline(
        args.benchmark, args.precision or "float32")
    if roofline:
        print(f"[scaling] matmul roofline {roofline['gflops']:.0f} GFLOP/s ({roofline['precision']}); "
              f"training step {flops / 1e9:.2f} GFLOP per sample", flush=True)
    rows = []
    for kind, ranks, batch in points:
        point = copy.copy(args)
        point.mode, point.scaling_type = "epoch-time", None
        if args.launcher in ("auto", "local"):  # every point in fresh processes, launched alike
            point.launcher = "srun" if "SLURM_JOB_ID" in os.environ else "mpirun"
        if args.nodes > 1:  # multi-node series: rank counts are whole nodes of --ranks-per-node
            point.nodes, point.ranks_per_node = max(1, ranks // args.ranks_per_node), args.ranks_per_node
        else:
            point.nodes, point.ranks_per_node = 1, ranks
        point.per_rank_batch = batch
        print(f"[scaling] {kind}: {ranks} rank(s) x batch {batch}", flush=True)
        summary = launch_training(point, return_summary=True)
        if args.dry_run:
            continue
        rows.append({"scaling": kind, "ranks": ranks, "nodes": point.nodes, "per_rank_batch": batch,
                     "global_batch": ranks * batch, "status": summary.get("status"),
                     "samples_per_second": summary.get("steady_samples_per_second"),
                     "epoch_seconds": _steady_epoch_seconds(summary)})
    if args.dry_run:
        return 0
    table = efficiency_table(rows)
    for row in table:  # model FLOPs utilisation against the roofline of the nodes used
        sps = row["samples_per_second"]
        row["mfu"] = model_flops_utilisation(flops, sps, roofline["gflops"] * row["nodes"]) if sps else None
    print(tabulate([(r["scaling"], r["ranks"], r["per_rank_batch"], r["global_batch"],
                     _fmt(r["samples_per_second"]), _fmt(r["epoch_seconds"]), _fmt(r["speedup"]),
                     _fmt(r["efficiency"]), _fmt(r["mfu"])) for r in table],
                   headers=("scaling", "ranks", "batch/rank", "global batch", "samples/s",
                            "epoch s", "speed-up", "efficiency", "MFU")))
    record = vars_for_record(args) | {"roofline": roofline, "training_flops_per_sample": flops}
    path = results.write_scaling_series(Path(args.results), args.benchmark, table, record)
    print(f"scaling series written to {path}")
    return 0 if all(r["status"] == "success" for r in table) else 1


def _steady_epoch_seconds(summary: dict):
    epochs = summary.get("epochs") or []
    later = epochs[1:] if len(epochs) > 1 else epochs
    return sum(e["seconds"] for e in later) / len(later) if later else None


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def vars_for_record(args: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(args).items() if k != "func"}
