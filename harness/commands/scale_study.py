"""`harness reference scale-study`: train the closed-rule study's next runs, or show where it
stands (`--status`). The candidates, stages and picking rule are benchmark/scale_study.py's
(fixed in docs/closed-rule-study.md); each run is a resumable campaign under benchmark/convergence/."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from harness.arguments import add_background_options


def register(sub: argparse._SubParsersAction) -> None:
    """Add `scale-study` to `harness reference`'s subcommands."""
    parser = sub.add_parser(
        "scale-study", help="train the closed learning-rate rule study (issue 23) for --hours, or --status",
        description="Train the closed-rule study's runs in their fixed order (docs/closed-rule-study.md): the "
                    "recipe that set the target in force at global batch 64 under the linear, square-root "
                    "and unscaled rules, at 512 those that converged, two warm-up lengths, then the reference "
                    "convergence runs of the rule left standing. Each run emulates its ranks in this one "
                    "process (convergence evidence, never a timing), evaluates every interval and ends at its "
                    "first pass of the target, at its budget or on divergence. Starts once the recipe study has "
                    "picked, against the target in force (v2 until v3 is promoted; runs against a replaced "
                    "target are re-run), with T's run: the pick at global batch 8, seed 2. Stops with a "
                    "checkpoint when --hours are up or on SIGTERM; commit benchmark/convergence/ after.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_background_options(parser)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--status", action="store_true",
                        help="print every run the study has reached, its state and the next one; train nothing")
    action.add_argument("--write-rcps", action="store_true",
                        help="once stage 4 is done, write the rule's reference convergence points into "
                             "benchmark/rcp/3dgan.json (the converged seeds at each batch where it held); "
                             "train nothing")
    parser.set_defaults(func=run_scale_study)


def run_scale_study(args: argparse.Namespace) -> int:
    from benchmark import scale_study

    if args.status:
        _print_status(scale_study.basis())
        return 0
    if args.write_rcps:
        write_rcps(scale_study.basis())
        return 0
    if args.nice:
        os.nice(args.nice)
    train_runs(args.hours, Path(args.data_dir), args.threads)
    _print_status(scale_study.basis())
    return 0


def train_runs(hours: float, data_dir: Path, threads: int) -> None:
    """Train the study's runs in order for `hours`; stop early on SIGTERM (with a checkpoint). The
    basis is read again after every run: T's run, once it passes, sets the others' budgets."""
    from benchmark import scale_study
    from harness.commands.reference import train_session

    deadline = time.monotonic() + hours * 3600.0
    while (run := scale_study.current_plan(study_basis := scale_study.basis()).next_run) is not None:
        left_h = (deadline - time.monotonic()) / 3600.0
        if left_h <= 0:
            break
        train_session(scale_study.scale_recipe(study_basis, run), run.seed, left_h, data_dir, threads)
        if scale_study.outcome(study_basis, run) is None:  # time or SIGTERM before it ended
            break


def write_rcps(study_basis) -> None:
    """Add the study's reference convergence points to the benchmark's RCP file (never replacing one)."""
    from benchmark import rcp, scale_study
    from benchmark.vocabulary import TTA
    from harness.scoring import REQUIRED_RUNS

    runs = scale_study.reference_runs(study_basis)
    path = rcp.add_reference_runs(scale_study.BENCHMARK, runs, REQUIRED_RUNS[TTA])
    batches = sorted({run.global_batch for run in runs})
    print(f"Wrote the RCPs of {scale_study.current_plan(study_basis).rule.name} at global batch "
          f"{', '.join(map(str, batches))} ({len(runs)} runs) into {path}. Next, by hand: rules.md section 3, "
          "benchmark/recipe.py, the compliance rules and harness run --help follow the rule and its cap, in one "
          "commit with this file (docs/closed-rule-study.md, \"Stage 4\").")


def _print_status(study_basis) -> None:
    from tabulate import tabulate

    from benchmark import scale_study

    t = study_basis.samples_to_target
    print(f"Judged against {study_basis.target.name} with the {study_basis.generator} generator; T (the "
          f"single-rank samples to target, seed {scale_study.REPRODUCTION_SEED}) = "
          + (f"{t:,}" if t is not None else f"not yet: {scale_study.describe(scale_study.T_RUN)} sets it"))
    rows, current = scale_study.status(study_basis)
    print(tabulate(rows, headers=["global batch", "rule", "seed", "budget", "samples", "state"]))
    if current.rule is not None:
        print(f"Rule left standing: {current.rule.name}, closed up to global batch {current.cap:,}")
    if current.held:
        print(f"Stage 4: the rule held ({scale_study.RCP_RUNS} seeds converged) at global batch "
              f"{', '.join(map(str, current.held))}")
    if current.problem:
        print(f"Stopped: {current.problem}")
        return
    print(f"Next: {scale_study.describe(current.next_run)} (stage {current.stage})" if current.next_run
          else "Done: every stage has run.")
