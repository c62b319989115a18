"""`harness run` with no arguments: the main job on the embedded default.

A short, real tour of the suite on this machine: stand-in data, the frozen reference checkpoint
through the quality gate, a short inference sweep, 1-rank and 2-rank epoch time, a results tree
checked with `harness check`, and the scored summary. Each step is the same `harness` command a
user would type, run as its own process (so one step's TensorFlow settings cannot leak into the
next) and printed before it runs.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

from harness.data_default import default_data_dir, ensure_standin
from reference_model.specs import get_spec

EPOCH_TIME_STEPS = 8  # steps per epoch in the main job's epoch-time runs (2 epochs each)


def _steps(args: argparse.Namespace, data: Path, root: Path) -> list[tuple[str, list[str]]]:
    """(title, harness arguments) of every step."""
    from reference_model.checkpoint import frozen_checkpoint

    common = ["--benchmark", args.benchmark, "--data", str(data), "--results", str(root),
              "--seed", str(args.seed)]
    steps = []
    checkpoint = Path(args.checkpoint) if args.checkpoint else frozen_checkpoint(args.benchmark)
    if checkpoint.exists():
        steps.append(("validate the reference checkpoint against held-out stand-in showers",
                      ["validate", "--reference", str(data), "--candidate", str(checkpoint),
                       "--report", str(root / "validation")]))
    else:
        print(f"[main job] no frozen checkpoint at {checkpoint}: validation skipped, inference runs "
              "the untrained reference generator (labelled as such)", flush=True)
    steps.append(("short inference sweep", ["run", "--mode", "inference", *common, "--quick"]))
    training = ["run", "--mode", "epoch-time", *common, "--epochs", "2",
                "--max-steps-per-epoch", str(EPOCH_TIME_STEPS), "--warmup-epochs", "0"]
    steps.append(("epoch time, 1 rank", training))
    steps.append(("epoch time, 2 ranks (Horovod over MPI)", [*training, "--ranks-per-node", "2"]))
    steps.append(("check the results tree", ["check", "--per-run", str(root)]))
    steps.append(("summary", ["summarize", str(root)]))
    return steps


def run_main_job(args: argparse.Namespace) -> int:
    root = Path(args.results)
    geometry = get_spec(args.benchmark).geometry
    start = time.monotonic()
    data = Path(args.data) if args.data else default_data_dir(root, geometry, args.seed)
    print(f"[main job] 1: stand-in data ({data})", flush=True)
    if not args.data and not args.dry_run:
        ensure_standin(data, geometry, args.seed)
    steps = _steps(args, data, root)
    failed = []
    for number, (title, harness_args) in enumerate(steps, start=2):
        command = [sys.executable, "-m", "harness.cli", *harness_args]
        print(f"\n[main job] {number}: {title}\n$ harness {shlex.join(harness_args)}", flush=True)
        if args.dry_run:
            continue
        returncode = subprocess.run(command, check=False).returncode
        if returncode != 0:
            failed.append(f"{title} (exit {returncode})")
    minutes = (time.monotonic() - start) / 60
    print(f"\n[main job] finished in {minutes:.1f} min; results tree: {root.resolve()}")
    print(f"[main job] system description: {root.resolve() / 'systems'}; logs and summaries: "
          f"{root.resolve() / 'results'}")
    if failed:
        print("[main job] steps that failed: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0
