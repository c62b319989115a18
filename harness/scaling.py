"""`harness run --mode scaling`: epoch time against rank count, strong and weak.

Each point is a real epoch-time run through the normal launcher, every point launched alike in
fresh processes. Strong scaling keeps the global batch fixed (per-rank batch = global / ranks);
weak scaling keeps the per-rank batch fixed. Speed-up is throughput relative to the smallest
rank count, efficiency is speed-up divided by the rank ratio; each row takes its ranks, samples
and cores from that run's own summary.

On one node the points hold the cores per rank fixed (`--cores-per-rank`, else the node's cores
shared by the largest point), so efficiency compares equal hardware per rank, and the table
states the cores behind each point. Across nodes a point is whole nodes of `--ranks-per-node`.
With `--launcher slurm` every point is its own batch job, written for the user to submit.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from harness.run_request import RunRequest
from benchmark.recipe import DEFAULTS
from benchmark.vocabulary import (BFLOAT16, EPOCH_TIME, FLOAT32, MIXED_BFLOAT16, SCALING_TYPES, STRONG,
                                  WEAK)
from reference_model.errors import InputError


def scaling_points(ranks_list: list[int], per_rank_batch: int, kind: str) -> list[tuple[str, int, int]]:
    """(kind, ranks, per-rank batch) for every run of the series."""
    points = []
    if kind in (WEAK, "both"):
        points += [(WEAK, n, per_rank_batch) for n in ranks_list]
    if kind in (STRONG, "both"):
        global_batch = per_rank_batch * max(ranks_list)
        for n in ranks_list:
            if global_batch % n:
                raise InputError(f"--ranks-list: strong scaling needs the global batch {global_batch} "
                                 f"to divide evenly over {n} ranks; choose rank counts that divide it")
            points.append((STRONG, n, global_batch // n))
    return points


def point_layout(ranks: int, nodes: int, ranks_per_node: int) -> tuple[int, int]:
    """(nodes, ranks per node) of a point of `ranks`: all on one node when --nodes is 1, else
    whole nodes of --ranks-per-node."""
    if nodes == 1:
        if ranks_per_node != 1:
            raise InputError("--ranks-per-node shapes a series across nodes (--nodes > 1); on one node "
                             "each --ranks-list count is the ranks on that node: drop --ranks-per-node")
        return 1, ranks
    if ranks % ranks_per_node:
        raise InputError(f"--ranks-list: {ranks} ranks do not fill whole nodes of --ranks-per-node "
                         f"{ranks_per_node}; use multiples of {ranks_per_node}")
    if ranks // ranks_per_node > nodes:
        raise InputError(f"--ranks-list: {ranks} ranks need {ranks // ranks_per_node} nodes of "
                         f"{ranks_per_node} ranks, --nodes is {nodes}; lower the rank count or raise --nodes")
    return ranks // ranks_per_node, ranks_per_node


def series_launcher(args: RunRequest) -> str:
    """One launcher for every point (1 rank too), so the points differ only in their ranks."""
    from harness.launch import choose_launcher, in_slurm_allocation

    if args.launcher == "local":
        raise InputError("--mode scaling launches every point alike, several ranks included: use "
                         "--launcher auto, mpirun, srun or slurm")
    if args.launcher != "auto":
        return args.launcher
    if in_slurm_allocation():
        return "srun"
    if args.nodes > 1 and not args.hostfile:
        return choose_launcher("auto", args.nodes * args.ranks_per_node, args.nodes)  # slurm, or what to add
    return "mpirun"


def fixed_cores_per_rank(args: RunRequest, ranks_list: list[int], launcher: str) -> tuple[int, str]:
    """Cores per rank held on every point of a one-node series, and where that number came from."""
    from harness.launch import LaunchPlan, node_cores

    if args.cores_per_rank:
        return args.cores_per_rank, f"--cores-per-rank {args.cores_per_rank}"
    if launcher == "slurm":
        raise InputError("--mode scaling --launcher slurm on one node needs --cores-per-rank: the points "
                         "hold it fixed, and the compute node's cores are not known here")
    hostfile = Path(args.hostfile).resolve() if args.hostfile else None
    per_node, where = node_cores(LaunchPlan(hostfile=hostfile), launcher)
    if per_node is None:
        raise InputError(f"cores per rank unknown ({where}); pass --cores-per-rank")
    largest = max(ranks_list)
    if largest > per_node and not args.oversubscribe:
        raise InputError(f"--ranks-list: {largest} ranks on one node of {per_node} cores ({where}) must "
                         f"share cores; keep the rank counts at or below {per_node}, or add --oversubscribe "
                         "to measure it anyway (recorded)")
    return max(1, per_node // largest), f"{where} / {largest} ranks of the largest point"


def efficiency_table(rows: list[dict]) -> list[dict]:
    """Add speed-up and parallel efficiency against the smallest rank count of each kind."""
    out = []
    for kind in SCALING_TYPES:
        series = sorted((r for r in rows if r["scaling"] == kind), key=lambda r: r["ranks"] or 0)
        if not series:
            continue
        base = series[0]
        for row in series:
            sps, base_sps = row.get("samples_per_second"), base.get("samples_per_second")
            speedup = sps / base_sps if sps and base_sps and row["ranks"] and base["ranks"] else None
            efficiency = speedup / (row["ranks"] / base["ranks"]) if speedup is not None else None
            out.append({**row, "speedup": speedup, "efficiency": efficiency})
    return out


def row_from_summary(kind: str, summary: dict, root: Path) -> dict:
    """A table row read from one run's own final summary: its ranks, batches, samples, cores."""
    from harness import results

    launch = summary.get("launch") or {}
    ranks, per_rank = summary.get("ranks"), launch.get("cores_per_rank")
    behind = (summary.get("rank0_cpus") or {}).get("physical_cores")
    if per_rank and behind:
        per_rank = min(per_rank, behind)  # a scheduler's "CPUs" may be hardware threads: count cores
    nodes, per_node = summary.get("nodes") or 1, launch.get("cores_per_node")
    cores = ranks * per_rank if ranks and per_rank else None
    if cores and per_node:
        cores = min(cores, nodes * per_node)  # oversubscribed ranks share the node's cores
    result = None
    if summary.get("system") and summary.get("log"):
        folder = results.training_dir(root, summary["system"], summary.get("benchmark", ""),
                                      summary.get("mode", EPOCH_TIME))
        result = str((folder / summary["log"]).with_suffix(".json").relative_to(root))
    return {"scaling": kind, "ranks": ranks, "nodes": summary.get("nodes"),
            "per_rank_batch": summary.get("per_rank_batch"), "global_batch": summary.get("global_batch"),
            "cores_per_rank": per_rank, "cores": cores, "oversubscribed": launch.get("oversubscribed"),
            "status": summary.get("status"), "samples": summary.get("samples"),
            "samples_per_second": summary.get("steady_samples_per_second"),
            "epoch_seconds": _steady_epoch_seconds(summary), "result": result}


def measure_training_roofline(benchmark: str, precision: str) -> tuple[dict, int]:
    """The matmul roofline of the training precision on this node's cores, and the reference
    step's FLOPs per sample."""
    from benchmark.roofline import measure_matmul, training_flops_per_sample
    from harness.launch import physical_cores
    from reference_model.specs import get_spec

    roofline = measure_matmul(BFLOAT16 if precision == MIXED_BFLOAT16 else FLOAT32)
    return roofline.to_dict() | {"cores": physical_cores()}, training_flops_per_sample(get_spec(benchmark))


def run_scaling(args: RunRequest) -> int:
    from harness.data_default import check_given_data
    from harness.run_request import with_changes
    from harness.train_launch import prepare

    ranks_list = args.ranks_list or [1, 2]
    points = scaling_points(ranks_list, args.per_rank_batch, args.scaling_type)
    layouts = {ranks: point_layout(ranks, args.nodes, args.ranks_per_node) for ranks in ranks_list}
    launcher = series_launcher(args)
    cores, cores_source = (args.cores_per_rank, "the node's cores / --ranks-per-node") if args.nodes > 1 \
        else fixed_cores_per_rank(args, ranks_list, launcher)
    if args.nodes == 1:
        print(f"[scaling] {cores} core(s) per rank on every point ({cores_source})", flush=True)
    runs = [(kind, with_changes(args, mode=EPOCH_TIME, scaling_type=None, ranks_list=None, launcher=launcher,
                         nodes=layouts[ranks][0], ranks_per_node=layouts[ranks][1], per_rank_batch=batch,
                         cores_per_rank=cores)) for kind, ranks, batch in points]
    for _, point in runs:  # refuse a point that cannot launch, or whose --data gives it no step, before the first runs
        prepare(point)
        check_given_data(point)
    if launcher == "slurm":
        return write_point_jobs(args, runs)
    return measure_series(args, runs, {"cores_per_rank": cores, "cores_source": cores_source})


def write_point_jobs(args: RunRequest, runs: list[tuple[str, RunRequest]]) -> int:
    """One batch job per point: printed (--dry-run), submitted (--submit), or written for the user
    to submit. Each point's result lands in the results root when its job ends."""
    from harness.launch import sbatch_script, submit
    from harness.train_launch import job_argv, jobs_dir, plan_from_args, utc_stamp

    directory = jobs_dir(args) / f"scaling-{utc_stamp()}"
    for kind, point in runs:
        plan = plan_from_args(point)
        plan.job_name = f"3dgan-scaling-{kind}-{plan.ranks}r"
        script = sbatch_script(plan, [job_argv(point, launcher="srun")], Path.cwd())
        path = directory / f"{plan.job_name}.sbatch"
        if args.dry_run:
            print(f"# --- {path.name} ---\n{script}", end="")
        elif args.submit:
            print(f"{path}: {submit(script, path)}")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(script)
            print(f"{path}")
    if not args.dry_run and not args.submit:
        print(f"# {len(runs)} job script(s) in {directory}: submit each with sbatch (or rerun with --submit); "
              "each point's epoch-time result lands under the results root", flush=True)
    return 0


def measure_series(args: RunRequest, runs: list[tuple[str, RunRequest]], held: dict) -> int:
    """Run every point here, one after another, and record the series with its table."""
    from benchmark.roofline import model_flops_utilisation
    from harness import results
    from harness.train_launch import launch_training

    roofline, flops = ({}, 0) if args.dry_run else measure_training_roofline(
        args.benchmark, args.precision or DEFAULTS.precision)
    if roofline:
        print(f"[scaling] matmul roofline {roofline['gflops']:.0f} GFLOP/s on {roofline['cores']} core(s) "
              f"({roofline['precision']}); training step {flops / 1e9:.2f} GFLOP per sample", flush=True)
    root = Path(args.results).resolve()
    started_at = results.utc_now()
    rows = []
    for kind, point in runs:
        print(f"[scaling] {kind}: {point.nodes * point.ranks_per_node} rank(s) x batch {point.per_rank_batch}",
              flush=True)
        summary = launch_training(point, return_summary=True)
        if not args.dry_run:
            rows.append(row_from_summary(kind, summary, root))
    if args.dry_run:
        return 0
    table = efficiency_table(rows)
    per_core = roofline["gflops"] / roofline["cores"]
    for row in table:  # model FLOPs utilisation against the roofline of the cores the point used
        sps, cores = row["samples_per_second"], row["cores"]
        row["mfu"] = model_flops_utilisation(flops, sps, per_core * cores) if sps and cores else None
    print(format_table(table))
    record = vars_for_record(args) | held | {"roofline": roofline, "training_flops_per_sample": flops}
    path = results.write_scaling_series(root, args.benchmark, table, record, started_at=started_at)
    print(f"scaling series written to {path}")
    return 0 if all(r["status"] == "success" for r in table) else 1


def format_table(table: list[dict]) -> str:
    from tabulate import tabulate

    return tabulate([(r["scaling"], r["ranks"], r["nodes"], r["cores_per_rank"], r["cores"],
                      r["per_rank_batch"], r["global_batch"], _fmt(r["samples_per_second"]),
                      _fmt(r["epoch_seconds"]), _fmt(r["speedup"]), _fmt(r["efficiency"]), _fmt(r["mfu"]))
                     for r in table],
                    headers=("scaling", "ranks", "nodes", "cores/rank", "cores", "batch/rank", "global batch",
                             "samples/s", "epoch s", "speed-up", "efficiency", "MFU (cores used)"))


def _steady_epoch_seconds(summary: dict) -> Optional[float]:
    """Mean epoch time over the epochs the run's samples/s counts (`steady_epochs`)."""
    from benchmark.trainer import steady_epochs

    later = steady_epochs(summary.get("epochs") or [])
    return sum(e["seconds"] for e in later) / len(later) if later else None


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def vars_for_record(args: RunRequest) -> dict:
    return args.record()
