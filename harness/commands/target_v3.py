"""`harness reference target-v3`: the hold-tested release candidate the v3 rule gives, step by step
(benchmark/v3_candidate.py): export, calibration hold test, limits, validation hold test, and what
the candidate lets through. 3dgan's v3 from the recipe study's winner; with `--benchmark
3dgan-angle`, the angle target (its v2) from the angle campaign. Every step resumes from its
committed output."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

STEPS = ("export", "calibrate", "write", "hold", "distortions")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `target-v3` to `harness reference`'s subcommands."""
    from benchmark.target_v3 import RULES

    parser = sub.add_parser(
        "target-v3", help="set v3 from the recipe study's winner (CALIBRATION.md, 'v3 limits: the rule')",
        description="Once the recipe study has picked its (arm, generator): export that generator at the end "
                    "of its window to benchmark/convergence/state/3dgan-v3-reference.weights.h5; judge it "
                    "on calibration seeds 4001-4020; write and register the limits the rule gives as "
                    "3dgan-quality-v3-rc (not submittable); judge it against them on validation seeds "
                    "5001-5020 (v3 holds at 19 of 20); print what v2 and the candidate let through. With "
                    "--benchmark 3dgan-angle, the same steps for the angle campaign (trained on the study's "
                    "pick) to its window's end: seeds 4101-4120 judged against its noise floor, "
                    "3dgan-angle-quality-v2-rc, seeds 5101-5120. Steps already done are kept (hold tests "
                    "resume seed by seed). Exit 0 when the candidate holds, 1 when it does not or the steps "
                    "are not all done, 2 on bad input.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--benchmark", choices=tuple(RULES), default="3dgan")
    parser.add_argument("--until", choices=STEPS, default=STEPS[-1], help="stop after this step")
    parser.add_argument("--status", action="store_true", help="say which steps are done; run nothing")
    parser.add_argument("--data-dir", default="runs/holdtest-data",
                        help="where each fresh seed's stand-in set is made (removed after it is judged)")
    parser.set_defaults(func=run_target_v3)


def run_target_v3(args: argparse.Namespace) -> int:
    from benchmark import recipe_study, v3_candidate
    from benchmark.target_v3 import rc_version, rule_for

    benchmark = args.benchmark
    reference, candidate = v3_candidate.reference_path(benchmark), v3_candidate.candidate_path(benchmark)
    if args.status:
        return _print_status(reference, candidate, benchmark)
    command = shlex.join(["harness", *sys.argv[1:]])
    last = STEPS.index(args.until)
    limits = recipe_study.gating_limits()
    if benchmark == v3_candidate.BENCHMARK:
        arm, generator = v3_candidate.winner(limits)
        v3_candidate.export_reference(arm, generator, reference)
        exported = f"the {arm} arm's {generator} generator"
    else:
        v3_candidate.export_angle_reference(limits, reference)
        exported = "the angle campaign's generator"
    print(f"[v3] 1 export: {exported} at the end of its window: {reference}", flush=True)
    if last < 1:
        return 1
    calibration = v3_candidate.calibrate(reference, Path(args.data_dir), command, on_seed=_progress("calibrate"),
                                         benchmark=benchmark)
    print(f"[v3] 2 calibrate: {calibration.summary()}", flush=True)
    if last < 2:
        return 1
    if not candidate.exists():
        from benchmark.calibration import write_thresholds
        from harness.thresholds_registry import file_sha256, register_version

        document = v3_candidate.candidate_document(reference, calibration, file_sha256, command, benchmark=benchmark)
        write_thresholds(document, candidate)
        register_version(candidate)
        _print_limits(document)
    print(f"[v3] 3 write: {candidate} registered as {rc_version(benchmark)}; commit "
          "benchmark/thresholds/ and benchmark/convergence/", flush=True)
    if last < 3:
        return 1
    held = v3_candidate.hold(reference, Path(args.data_dir), command, on_seed=_progress("hold"), benchmark=benchmark)
    print(f"[v3] 4 hold: {held.summary()}", flush=True)
    if not held.holds:
        counts = ", ".join(f"{name} on {n}" for name, n in held.failing_counts().items())
        print(f"[v3] the candidate does not hold (failing: {counts or 'none yet'}); the rule never loosens a "
              "limit: record the shortfall in CALIBRATION.md", flush=True)
        return 1
    if last >= 4:
        from benchmark import quality
        from harness.commands.distortions import print_lets_through

        judged = rule_for(benchmark).judged_against
        print(f"[v3] 5 distortions: what {judged} and the candidate let through (for CALIBRATION.md)", flush=True)
        print_lets_through([quality.load_thresholds(benchmark, version=v) for v in (judged, rc_version(benchmark))],
                           "7:8,9:10", markdown=True)
    return 0


def _progress(step: str):
    def report(seed: int, verdict: dict) -> None:
        failed = ", ".join(verdict["failed"][:2]) + (" ..." if len(verdict["failed"]) > 2 else "")
        print(f"[v3] {step} seed {seed}: {'PASS' if verdict['passed'] else 'FAIL ' + failed}", flush=True)
    return report


def _print_limits(document: dict) -> None:
    from tabulate import tabulate

    rows = [(name, e["threshold"], e["window_max"], e["calibration_max"], e["floor_limit"], e["set_by"])
            for name, e in document["metrics"].items()]
    print(tabulate(rows, headers=("metric", "limit", "window max", "calibration max", "floor limit", "set by")))
    for name, e in document["calibration"]["dropped_as_unsteady"].items():
        print(f"  not gated (unsteady over the window): {name} {e['window_min']}-{e['window_max']}")


def _print_status(reference: Path, candidate: Path, benchmark: str) -> int:
    from benchmark.hold_test import read_record
    from benchmark.v3_candidate import calibration_record, hold_record

    calibration = read_record(calibration_record(reference, benchmark))
    held = read_record(hold_record(reference, benchmark))
    print(f"1 export:     {reference if reference.is_file() else 'not yet'}")
    print(f"2 calibrate:  {calibration.summary() if calibration else 'not yet'}")
    print(f"3 write:      {candidate if candidate.is_file() else 'not yet'}")
    print(f"4 hold:       {held.summary() if held else 'not yet'}")
    return 0 if held is not None and held.holds else 1
