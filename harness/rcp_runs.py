"""Reference convergence runs taken from a results tree: what a submitter adds where no RCP covers
the global batch it submits at.

MLPerf asks a submission whose global batch no reference convergence point covers to bring the
reference's own runs at that batch. A closed time-to-accuracy result of this suite is a run of
the reference implementation (the frozen model and the closed recipe, checked by `harness
check`), so those runs are closed, compliant, converged `harness run --mode tta` results at that
batch, each from its own seed. `harness rcp ROOT --write` adds them to the benchmark's RCP file
(benchmark.rcp.add_reference_runs, which never replaces an RCP and needs 3 runs or more), with
their logs' SHA-256, so that those runs never judge themselves as a submission's.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from benchmark.rcp import ReferenceRun
from benchmark.vocabulary import TTA
from harness import results

# What an RCP record says its runs were, as their MLPerf logs record it (the first value of each
# key a log has); the global batch is the record's BS.
HYPERPARAMETER_KEYS = ("opt_name", "opt_base_learning_rate", "opt_learning_rate_scaling",
                       "opt_learning_rate_warmup_epochs", "opt_learning_rate_warmup_factor",
                       "opt_learning_rate_decay_schedule", "generator_moving_average_samples",
                       "local_batch_size", "eval_interval_samples", "precision", "quality_thresholds",
                       "train_data", "eval_data")


@dataclass(frozen=True)
class Candidate:
    """One time-to-accuracy result of the benchmark: a reference run, or why it is not one."""

    summary_path: Path
    run: Optional[ReferenceRun]
    why_not: str = ""


def candidates(root: Path, benchmark: str) -> list[Candidate]:
    """Every time-to-accuracy result of `benchmark` under `root`, in the tree's order."""
    return [_candidate(root, result) for result in results.iter_results(root)
            if result.mode == TTA and result.benchmark == benchmark]


def _candidate(root: Path, result: results.ResultFile) -> Candidate:
    from harness.checks import check_result
    from harness.mlperf_log import first_records, parse_log, read_timing
    from reference_model.checkpoint import sha256_of

    def not_one(why: str) -> Candidate:
        return Candidate(result.summary_path, None, why)

    problems = check_result(result, results.read_system_description(root, result.system))
    if problems:
        return not_one(f"fails harness check: {problems[0]}")
    if result.summary.get("submittable") is not True:
        return not_one("a smoke run, judged by the smoke target")
    timing = read_timing(result.log_path)
    if timing.division != "closed":
        return not_one(f"{timing.division} division: its recipe may differ from the reference's")
    if timing.samples_to_converge is None:
        return not_one("did not reach the target")
    if timing.global_batch is None or timing.seed is None:
        return not_one("its log gives no global_batch_size or seed")
    first = first_records(parse_log(result.log_path))
    hyperparameters = {key: first[key]["value"] for key in HYPERPARAMETER_KEYS if key in first}
    return Candidate(result.summary_path, ReferenceRun(timing.global_batch, hyperparameters, timing.seed,
                                                       timing.samples_to_converge, sha256_of(result.log_path)))
