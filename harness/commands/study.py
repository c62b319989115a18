"""`harness reference study`: train the reference-recipe study's next segments, or show where it
stands (`--status`). The arms, order and rule are benchmark/recipe_study.py's (fixed in
CALIBRATION.md, "v3 recipe study"); each arm is a resumable campaign under benchmark/convergence/."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from benchmark.campaign import CONVERGENCE_DIR
from harness.arguments import add_background_options

STUDY_PLOT = CONVERGENCE_DIR / "3dgan-study.png"


def register(sub: argparse._SubParsersAction) -> None:
    """Add `study` to `harness reference`'s subcommands."""
    parser = sub.add_parser(
        "study", help="train the reference-recipe study (issue 22) for --hours, or --status",
        description="Train the recipe study's next segments in their fixed order (constant-rate and "
                    "batch-128 arms to 100,000 samples, the stage gate, then the constant, cosine and, "
                    "if it passed, batch-128 arms to 200,000), each a resumable campaign of seed 1 "
                    "evaluated every interval with and without a moving average of the generator. "
                    "Branches the cosine arm from the constant one at 100,000 samples. Stops with a "
                    "checkpoint when --hours are up or on SIGTERM; commit benchmark/convergence/ after.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_background_options(parser)
    parser.add_argument("--status", action="store_true",
                        help="print each arm's samples and scores, the stage gate and the verdict; train nothing")
    parser.add_argument("--plot", metavar="FILE", nargs="?", const=str(STUDY_PLOT), default=None,
                        help="draw every arm's scores against samples to this PNG (default "
                             f"{STUDY_PLOT}); train nothing")
    parser.set_defaults(func=run_study)


def run_study(args: argparse.Namespace) -> int:
    from benchmark import recipe_study

    limits = recipe_study.gating_limits()
    if args.plot:
        from harness.study_plot import plot_study

        curves = {arm: curve for arm in recipe_study.STUDY if (curve := recipe_study.read_arm(arm))}
        print(f"[study] {plot_study(curves, limits, Path(args.plot))}")
        return 0
    if args.status:
        _print_status(limits)
        return 0
    if args.nice:
        os.nice(args.nice)
    train_study(args.hours, Path(args.data_dir), args.threads)
    _print_status(limits)
    return 0


def train_study(hours: float, data_dir: Path, threads: int) -> None:
    """Train the study's segments in order for `hours`; stop early on SIGTERM (with a checkpoint)."""
    from benchmark import recipe_study
    from harness.commands.reference import train_session

    limits = recipe_study.gating_limits()
    deadline = time.monotonic() + hours * 3600.0
    while (segment := recipe_study.next_segment(limits)) is not None:
        left_h = (deadline - time.monotonic()) / 3600.0
        if left_h <= 0:
            break
        for recipe in recipe_study.pending_branches():
            recipe_study.branch(recipe)
            print(f"[study] {recipe.arm} arm branched from {recipe.branch_from} at "
                  f"{recipe.branch_samples:,} samples", flush=True)
        arm, until = segment
        session = train_session(recipe_study.STUDY[arm], recipe_study.SEED, left_h, data_dir, threads,
                                until_samples=until)
        if session.get("samples_at_stop", 0) < recipe_study.segment_end(arm, until):  # time or SIGTERM
            break


def _print_status(limits: dict[str, float]) -> None:
    from tabulate import tabulate

    from benchmark import recipe_study as study

    print(f"Scores: mean over the {len(limits)} {study.GATING_VERSION} limits of value / limit "
          f"(each capped at {study.RATIO_CAP:g}); lower is better, 1 = at the limits on average.")
    print(tabulate(study.status_rows(limits),
                   headers=["arm", "batch", "samples", "last raw", "last EMA",
                            "stage raw", "stage EMA", "final raw", "final EMA"]))
    gate, verdict = study.stage_gate(limits), study.final_verdict(limits)
    if gate.decided:
        print(f"Stage gate at {study.STAGE_SAMPLES:,}: batch128 {gate.batch128:.3f} against constant "
              f"{gate.constant:.3f} x {study.STAGE_GATE_FACTOR:g}: batch128 "
              f"{'continues' if gate.batch128_continues else 'is dropped'}")
    segment = study.next_segment(limits)
    print(f"Next: {segment[0]} arm to {segment[1]:,} samples" if segment else
          f"Trained. Winner: {'/'.join(verdict.winner) if verdict.winner else 'none'}")
