"""`harness run` with no arguments: the main job on the embedded default.

A short, real tour of the suite on this machine: stand-in data, the frozen reference checkpoint
through the quality gate, a short inference sweep, 1-rank and 2-rank epoch time, a results tree
checked with `harness check`, and the scored summary. Each step is the same `harness` command a
user would type, run as its own process (so one step's TensorFlow settings cannot leak into the
next) and printed before it runs.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

from harness.data_default import default_data_dir, ensure_standin
from harness.run_request import RunRequest
from reference_model.specs import get_spec

EPOCH_TIME_STEPS = 8  # steps per epoch in the main job's epoch-time runs (2 epochs each)


def _checkpoint(request: RunRequest) -> Path:
    from reference_model.checkpoint import frozen_checkpoint

    return Path(request.checkpoint) if request.checkpoint else frozen_checkpoint(request.benchmark)


def _steps(request: RunRequest, data: Path, reference: Path, root: Path) -> list[tuple[str, list[str]]]:
    """(title, harness arguments) of every step."""
    common = ["--benchmark", request.benchmark, "--results", str(root), "--seed", str(request.seed)]
    steps = []
    checkpoint = _checkpoint(request)
    # no --data: inference reads the reference set sized for the gate (`reference`) itself
    inference = ["run", "--mode", "inference", *common, "--quick", "--batch", "128",
                 "--precision", "float32,bfloat16", "--scenarios", "Offline,SingleStream"]
    if checkpoint.exists():
        steps.append(("validate the reference checkpoint against held-out stand-in showers",
                      ["validate", "--reference", str(reference), "--candidate", str(checkpoint),
                       "--report", str(root / "validation")]))
        steps.append(("short inference sweep, each precision gated by physics", inference))
    else:
        # Without a trained generator no precision can pass the physics gate, so no throughput
        # may be reported as a result: the sweep still runs, labelled ungated, outside the tree.
        print(f"[main job] no frozen checkpoint at {checkpoint}: validation skipped; the inference "
              "sweep runs an UNTRAINED generator, ungated, into a scratch root outside the results tree",
              flush=True)
        inference[inference.index("--results") + 1] = str(root / "ungated")
        steps.append(("short inference sweep (UNGATED: untrained generator, not a result)",
                      [*inference, "--no-quality-gate"]))
    training = ["run", "--mode", "epoch-time", *common, "--data", str(data), "--epochs", "2",
                "--max-steps-per-epoch", str(EPOCH_TIME_STEPS), "--warmup-epochs", "0"]
    steps.append(("epoch time, 1 rank", training))
    steps.append(("epoch time, 2 ranks (Horovod over MPI)", [*training, "--ranks-per-node", "2"]))
    steps.append(("check the results tree", ["check", "--per-run", str(root)]))
    steps.append(("summary", ["summarize", str(root)]))
    return steps


def run_main_job(request: RunRequest) -> int:
    root = Path(request.results)
    geometry = get_spec(request.benchmark).geometry
    start = time.monotonic()
    data = Path(request.data) if request.data else default_data_dir(root, geometry, request.seed)
    print(f"[main job] 1: stand-in data ({data})", flush=True)
    if not request.data and not request.dry_run:
        ensure_standin(data, geometry, request.seed)
    # The quality gate compares a fixed number of showers per energy bin: it needs a larger
    # held-out reference than the training slice, made from an independent seed.
    reference = default_data_dir(root, geometry, request.seed + 1000)
    if _checkpoint(request).exists() and not request.dry_run:
        from benchmark.quality import load_thresholds

        ensure_standin(reference, geometry, request.seed + 1000,
                       events=load_thresholds(request.benchmark).evaluation_events)
    steps = _steps(request, data, reference, root)
    failed = []
    for number, (title, harness_args) in enumerate(steps, start=2):
        command = [sys.executable, "-m", "harness.cli", *harness_args]
        print(f"\n[main job] {number}: {title}\n$ harness {shlex.join(harness_args)}", flush=True)
        if request.dry_run:
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
