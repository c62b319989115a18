"""`harness run` with no arguments: the main job on the embedded default.

A short, real tour of the suite on this machine: stand-in data; for every benchmark, its frozen
reference checkpoint through the quality gate (shipped against a release candidate not yet
reproduced: against that candidate, outside the results tree; before one ships: the reference
campaign's best generator so far, below the target) and a short gated inference sweep; then, for
the requested benchmark, 1-rank and 2-rank epoch time, a results tree checked with `harness
check`, and the scored summary. Each step is the same `harness` command a user would type, run as
its own process (so one step's TensorFlow settings cannot leak into the next) and printed before
it runs.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple, Optional

from harness.data_default import default_data_dir, ensure_standin
from harness.run_request import RunRequest
from reference_model.specs import BENCHMARKS, get_spec

EPOCH_TIME_STEPS = 8  # steps per epoch in the main job's epoch-time runs (2 epochs each)


def _checkpoint(request: RunRequest, benchmark: str) -> Path:
    """The checkpoint the tour gates: `--checkpoint` for the requested benchmark, else the frozen one."""
    from reference_model.checkpoint import frozen_checkpoint

    return _given_checkpoint(request, benchmark) or frozen_checkpoint(benchmark)


def _given_checkpoint(request: RunRequest, benchmark: str) -> Optional[Path]:
    """`--checkpoint`, which stands for the requested benchmark's reference only."""
    return Path(request.checkpoint) if request.checkpoint and benchmark == request.benchmark else None


def _campaign_best(benchmark: str) -> Path:
    """The reference campaign's best generator so far (committed under benchmark/convergence/)."""
    from benchmark.campaign import REFERENCE_SEED, best_generator_path

    return best_generator_path(benchmark, REFERENCE_SEED)


def toured(request: RunRequest) -> list[str]:
    """The benchmarks whose references the tour gates: the requested one first, then the others."""
    return [request.benchmark, *(b for b in BENCHMARKS if b != request.benchmark)]


def _reference_data(root: Path, benchmark: str, seed: int) -> Path:
    """The held-out stand-in set the gate compares with: larger than the training slice, made from
    an independent seed."""
    return default_data_dir(root, get_spec(benchmark).geometry, seed + 1000)


def _candidate_target(checkpoint: Path, benchmark: str) -> Optional[str]:
    """The thresholds version a shipped checkpoint was validated against, when that is not (or not
    yet promoted to) the benchmark's target: a v2 release candidate awaiting its second seed.
    None when the checkpoint was shipped against the target or the candidate the target was
    promoted from (the same limits)."""
    from benchmark.quality import load_thresholds, version_name
    from reference_model.checkpoint import read_card

    shipped = version_name(read_card(checkpoint).get("validation", {}).get("thresholds"))
    target = load_thresholds(benchmark)
    promoted_from = version_name(target.document.get("reproduction", {}).get("candidate"))
    return shipped if shipped and shipped not in (target.name, promoted_from) else None


BELOW_TARGET_EXIT = 1  # `harness run --mode inference` on a generator that misses the target


class Step(NamedTuple):
    """One step of the tour: the `harness` arguments, the exit status that means it did what it
    should, and a note printed before it (why it runs as it does)."""

    title: str
    args: list[str]
    expected: int = 0
    note: str = ""


def _gate_steps(request: RunRequest, benchmark: str, root: Path) -> list[Step]:
    """One benchmark's reference through the quality gate and a short gated inference sweep."""
    steps = []
    checkpoint = _checkpoint(request, benchmark)
    # no --data: inference reads the reference set sized for the gate itself
    inference = ["run", "--mode", "inference", "--benchmark", benchmark, "--results", str(root), "--seed",
                 str(request.seed), "--quick", "--batch", "128", "--precision", "float32,bfloat16",
                 "--scenarios", "Offline,SingleStream"]
    if checkpoint.exists():
        # Shipped against a release candidate that no second seed has reproduced yet, the
        # benchmark's target is still the old one: validate and gate against the candidate,
        # labelled, into a scratch root outside the results tree (nothing there is submittable).
        candidate = _candidate_target(checkpoint, benchmark)
        target = ["--target", candidate] if candidate else []
        note = ""
        if candidate:
            note = (f"the {benchmark} reference checkpoint {checkpoint} was shipped against {candidate}, a release "
                    "candidate not yet reproduced by a second seed (harness reference reproduce): validation and "
                    "the inference gate use it, and the sweep goes to a scratch root outside the results tree")
            inference[inference.index("--results") + 1] = str(root / "release-candidate")
        steps.append(Step(f"{benchmark}: validate the reference checkpoint against {candidate} (release candidate)"
                          if candidate else f"{benchmark}: validate the reference checkpoint against held-out "
                                            "stand-in showers",
                          ["validate", *target, "--reference", str(_reference_data(root, benchmark, request.seed)),
                           "--candidate", str(checkpoint), "--report", str(root / "validation" / benchmark)],
                          note=note))
        if _given_checkpoint(request, benchmark):
            inference += ["--checkpoint", str(checkpoint)]
        steps.append(Step(f"{benchmark}: short inference sweep, the checkpoint checked against {candidate} and "
                          "each precision against float32 (release candidate: not a result)" if candidate
                          else f"{benchmark}: short inference sweep, each precision gated by physics",
                          [*inference, *target]))
    elif (best := _campaign_best(benchmark)).exists():
        # Before a reference ships, the campaign's best generator so far is the closest thing:
        # each precision is gated against float32 from the same latents, and the checkpoint's
        # own target is reported as not met, so the rows say "below-target", outside the tree.
        inference[inference.index("--results") + 1] = str(root / "below-target")
        steps.append(Step(f"{benchmark}: short inference sweep on the campaign's best generator (below the "
                          "target: each precision gated against float32, not a result)",
                          [*inference, "--checkpoint", str(best)], BELOW_TARGET_EXIT,
                          f"no shipped {benchmark} reference checkpoint at {checkpoint}: validation skipped; the "
                          f"inference sweep runs the reference campaign's best generator so far ({best}), below "
                          "the benchmark's target, into a scratch root outside the results tree"))
    else:
        # Without a trained generator no precision can pass the physics gate, so no throughput
        # may be reported as a result: the sweep still runs, labelled ungated, outside the tree.
        inference[inference.index("--results") + 1] = str(root / "ungated")
        steps.append(Step(f"{benchmark}: short inference sweep (UNGATED: untrained generator, not a result)",
                          [*inference, "--no-quality-gate"],
                          note=f"no frozen {benchmark} checkpoint at {checkpoint}: validation skipped; the inference "
                               "sweep runs an UNTRAINED generator, ungated, into a scratch root outside the results "
                               "tree"))
    return steps


def _steps(request: RunRequest, data: Path, root: Path) -> list[Step]:
    """The tour's steps, in order."""
    steps = [step for benchmark in toured(request) for step in _gate_steps(request, benchmark, root)]
    training = ["run", "--mode", "epoch-time", "--benchmark", request.benchmark, "--results", str(root),
                "--seed", str(request.seed), "--data", str(data), "--epochs", "2",
                "--max-steps-per-epoch", str(EPOCH_TIME_STEPS), "--warmup-epochs", "0"]
    steps.append(Step(f"{request.benchmark}: epoch time, 1 rank", training))
    steps.append(Step(f"{request.benchmark}: epoch time, 2 ranks (Horovod over MPI)",
                      [*training, "--ranks-per-node", "2"]))
    steps.append(Step("check the results tree", ["check", "--per-run", str(root)]))
    steps.append(Step("summary", ["summarize", str(root)]))
    return steps


def run_main_job(request: RunRequest) -> int:
    root = Path(request.results)
    geometry = get_spec(request.benchmark).geometry
    start = time.monotonic()
    data = Path(request.data) if request.data else default_data_dir(root, geometry, request.seed)
    print(f"[main job] 1: stand-in data ({data})", flush=True)
    if not request.data and not request.dry_run:
        ensure_standin(data, geometry, request.seed)
    for benchmark in toured(request):
        if _checkpoint(request, benchmark).exists() and not request.dry_run:
            from benchmark.quality import load_thresholds

            ensure_standin(_reference_data(root, benchmark, request.seed), get_spec(benchmark).geometry,
                           request.seed + 1000, events=load_thresholds(benchmark).evaluation_events)
    steps = _steps(request, data, root)
    failed = []
    for number, (title, harness_args, expected, note) in enumerate(steps, start=2):
        command = [sys.executable, "-m", "harness.cli", *harness_args]
        print(f"\n[main job] {number}: {title}" + (f"\n[main job] {note}" if note else "")
              + f"\n$ harness {shlex.join(harness_args)}", flush=True)
        if request.dry_run:
            continue
        step_start = time.monotonic()
        returncode = subprocess.run(command, check=False).returncode
        took = f"step {number} took {(time.monotonic() - step_start) / 60:.1f} min"
        if returncode != expected:
            failed.append(f"{title} (exit {returncode})")
            print(f"[main job] {took}; exit {returncode} where {expected} was expected", flush=True)
        elif expected == BELOW_TARGET_EXIT:
            print(f"[main job] {took}; exit {returncode}, as expected: the generator is below the target", flush=True)
        else:
            print(f"[main job] {took}", flush=True)
    minutes = (time.monotonic() - start) / 60
    print(f"\n[main job] finished in {minutes:.1f} min; results tree: {root.resolve()}")
    print(f"[main job] system description: {root.resolve() / 'systems'}; logs and summaries: "
          f"{root.resolve() / 'results'}")
    if failed:
        print("[main job] steps that failed: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0
