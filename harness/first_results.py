"""The suite's first time-to-accuracy results (issue 23 §4): five closed-rule runs at one rank on
this machine kind, each one uninterrupted `harness run --mode tta` process from run_start to
run_stop, trained in the background slot after the closed-rule study and committed under
`results/`, where `harness summarize` scores them and `harness check` judges them against the
batch-8 RCP.

They are the closed division as a submitter runs it: the closed defaults, the precision of the
reference convergence runs, the benchmark's reference data set. Before the closed-rule decision
has landed, the closed defaults do not yet train as the RCP runs did (`reference_runs.differences`
names how), and the job waits for a person. A run starts only when the session has the hours it
needs (the RCP's slowest converged run at the reference runs' recorded rate, with a margin):
it is never resumed, so one cut off is no result; its aborted record is moved out of the
submission tree into `runs/interrupted-tta/`, kept but never scored.
"""
from __future__ import annotations

import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from benchmark.vocabulary import TTA

BENCHMARK = "3dgan"
GLOBAL_BATCH = 8  # one rank of the closed recipe's per-rank batch
RUNS = 5  # MLPerf's runs per time-to-accuracy result
FIRST_SEED = 101  # each start takes the next seed from here; the reference runs' seeds are 1-6
MARGIN = 1.25  # hours asked = the slowest converged RCP run at the recorded rate, x this
RESULTS_ROOT = Path("results")
INTERRUPTED = Path("runs/interrupted-tta")
# An aborted run whose reason starts so ended by itself (it did not converge); any other was cut off.
UNCONVERGED = ("quality target not reached", "diverged")


@dataclass(frozen=True)
class Reference:
    """What the runs are measured against: the batch-8 RCP run's recipe, the slowest of its
    converged runs, and the rate its runs trained at here (None where none recorded one)."""

    recipe: object  # recipe.ScaleRecipe
    slowest_samples: int
    samples_per_second: Optional[float]

    def hours_needed(self) -> Optional[float]:
        if not self.samples_per_second:
            return None
        return MARGIN * self.slowest_samples / self.samples_per_second / 3600.0


def reference() -> Reference:
    """The batch-8 reference convergence runs as the closed-rule study left them; a one-line
    error (InputError) until that study is done and its RCPs are written."""
    from benchmark import rcp, scale_study
    from benchmark.campaign import read_curve
    from reference_model.errors import InputError

    study = scale_study.basis()
    plan = scale_study.current_plan(study)
    record = next((r for r in rcp.load_rcps(BENCHMARK).values() if r["BS"] == GLOBAL_BATCH), None)
    if plan.next_run is not None or plan.rule is None or record is None:
        raise InputError(f"the first time-to-accuracy results need the closed-rule study done and its batch-"
                         f"{GLOBAL_BATCH} RCP written (harness reference scale-study --status)")
    rates = []
    for seed in scale_study.RCP_SEEDS[GLOBAL_BATCH]:
        curve = read_curve(scale_study.scale_recipe(study, scale_study.Run(plan.rule, GLOBAL_BATCH, seed))
                           .campaign_name, seed)
        rates += [s["samples_per_second"] for s in (curve or {}).get("sessions", []) if s.get("samples_per_second")]
    recipe = scale_study.scale_recipe(study, scale_study.Run(plan.rule, GLOBAL_BATCH, FIRST_SEED))
    return Reference(recipe, max(record[rcp.SAMPLES_KEY]), statistics.median(rates) if rates else None)


def closed_request(seed: int, data_dir: Optional[Path], precision: str):
    """One run as a submitter types it: the closed defaults at one rank, on the reference data
    set (the copy the campaigns made under `data_dir`, else one made under the results root)."""
    from benchmark.campaign import campaign_data_dirs
    from benchmark.recipe import reference_data
    from harness.run_request import RunRequest

    argv = ["--benchmark", BENCHMARK, "--mode", TTA, "--seed", str(seed), "--precision", precision,
            "--results", str(RESULTS_ROOT)]
    if data_dir is not None:
        train, heldout = campaign_data_dirs(reference_data(BENCHMARK), data_dir)
        argv += ["--data", str(train), "--heldout-data", str(heldout)]
    return RunRequest.from_argv(argv)


def _seed(summary: dict) -> Optional[int]:
    words = shlex.split(summary.get("command", ""))
    return int(words[words.index("--seed") + 1]) if "--seed" in words[:-1] else None


def runs(root: Optional[Path] = None) -> tuple[list, list]:
    """(runs that ended by themselves, runs cut off): this system's one-rank tta results of the
    benchmark with one of this job's seeds under `root` (RESULTS_ROOT), as `results.ResultFile`s."""
    from harness import results

    system = results.system_name()
    ended, cut_off = [], []
    for found in results.iter_results(root or RESULTS_ROOT):
        summary = found.summary
        if (found.system, found.benchmark, found.mode) != (system, BENCHMARK, TTA) \
                or summary.get("nodes") != 1 or summary.get("ranks") != 1 or (_seed(summary) or 0) < FIRST_SEED:
            continue
        finished = summary.get("status") == "success" or summary.get("reason", "").startswith(UNCONVERGED)
        (ended if finished and summary.get("submittable") else cut_off).append(found)
    return ended, cut_off


def next_seed(root: Optional[Path] = None) -> int:
    """A seed no run of this job has used, cut-off ones set aside included (MLPerf: every run its
    own seed)."""
    import json

    ended, cut_off = runs(root)
    seeds = [_seed(f.summary) for f in ended + cut_off]
    seeds += [_seed(json.loads(path.read_text())) for path in INTERRUPTED.glob("*.json")]
    return max([FIRST_SEED - 1, *filter(None, seeds)]) + 1


def set_aside(cut_off: list) -> None:
    """Move cut-off runs (summary and log) out of the submission tree, kept for the record under
    names of their own (a result number is used again once its run has left the tree)."""
    INTERRUPTED.mkdir(parents=True, exist_ok=True)
    for found in cut_off:
        for path in filter(None, (found.summary_path, found.log_path)):
            shutil.move(str(path), INTERRUPTED / f"{found.system}-seed{_seed(found.summary)}-{path.name}")
        print(f"[first results] {found.summary_path} was cut off ({found.summary.get('reason', 'no reason')}); "
              f"moved to {INTERRUPTED}: a time-to-accuracy run is never resumed", flush=True)


def train_runs(hours: float, data_dir: Path) -> None:
    """Run the next runs, one after another, while `hours` cover one and fewer than RUNS have
    ended; stop at a run that was cut off (SIGTERM is passed on to the run)."""
    from benchmark.campaign import ensure_campaign_data
    from benchmark.recipe import reference_data

    deadline = time.monotonic() + hours * 3600.0
    set_aside(runs()[1])
    found = reference()
    need = found.hours_needed()
    while len(runs()[0]) < RUNS:
        left = (deadline - time.monotonic()) / 3600.0
        if need is None or left < need:
            print(f"[first results] a run needs about {'?' if need is None else f'{need:.1f}'} h uninterrupted "
                  f"({MARGIN:g} x the slowest batch-{GLOBAL_BATCH} RCP run, {found.slowest_samples:,} samples, at "
                  f"the reference runs' {found.samples_per_second or 'unrecorded'} samples/s) and this session "
                  f"has {left:.1f} h: not started", flush=True)
            return
        ensure_campaign_data(reference_data(BENCHMARK), data_dir)
        if not _run_one(closed_request(next_seed(), data_dir, found.recipe.precision)):
            return


def _run_one(request) -> bool:
    """One run as its own `harness run` process; False when it was cut off (set aside)."""
    from harness.launch import sigterm_passed_on
    from harness.run_request import to_argv

    command = [sys.executable, "-m", "harness.cli", "run", *to_argv(request)]
    print(f"[first results] {shlex.join(command)}", flush=True)
    child = subprocess.Popen(command)
    with sigterm_passed_on([child]):
        child.wait()
    cut_off = runs()[1]
    set_aside(cut_off)
    return not cut_off
