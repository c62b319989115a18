"""Scoring, as MLPerf does it: several runs per result, drop the fastest and the slowest,
average the rest; plus bootstrap confidence intervals for comparing two sets of runs.

A result is the set of runs of one system, benchmark and configuration (nodes, ranks per
node, per-rank batch, precision; for inference the scenario and settings): runs with
different configurations are never averaged together.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from harness import results

# Runs per scored result (rules.md "Runs per result").
REQUIRED_RUNS = {results.TTA: 5, results.EPOCH_TIME: 3, results.INFERENCE: 1}
METRICS = {results.TTA: ("time_to_accuracy_minutes", "lower"),
           results.EPOCH_TIME: ("samples_per_second", "higher"),
           results.INFERENCE: ("samples_per_second", "higher")}


def olympic_mean(values: Sequence[float]) -> float:
    """Mean after dropping one lowest and one highest value (plain mean below 3 values)."""
    ordered = sorted(values)
    if len(ordered) >= 3:
        ordered = ordered[1:-1]
    return float(np.mean(ordered))


@dataclass
class Score:
    value: Optional[float]
    runs: int  # finished runs in the result
    valid: bool
    reason: str = ""  # why it is not a valid scored result
    values: list[float] = field(default_factory=list)  # per successful run, in the metric's unit


def score_time_to_accuracy(seconds: Sequence[Optional[float]], required: int = REQUIRED_RUNS[results.TTA]) -> Score:
    """Minutes to accuracy. `None` is a run that did not reach the target: at most one is
    allowed, and it counts as the slowest run (dropped)."""
    minutes = [s / 60.0 for s in seconds if s is not None]
    failed = len(seconds) - len(minutes)
    if not seconds:
        return Score(None, 0, False, "no runs")
    if failed > 1:
        value = None
    elif len(seconds) >= 3:
        value = olympic_mean(minutes + [math.inf] * failed)  # a failed run is the dropped slowest
    else:
        value = float(np.mean(minutes)) if not failed else None
    reasons = []
    if len(seconds) < required:
        reasons.append(f"{len(seconds)} run(s), {required} required")
    if failed > 1:
        reasons.append(f"{failed} runs did not reach the quality target (at most 1 may)")
    return Score(value, len(seconds), not reasons, "; ".join(reasons), minutes)


def score_throughput(values: Sequence[Optional[float]], required: int) -> Score:
    """Samples per second over successful runs; every run must have succeeded."""
    good = [v for v in values if v is not None]
    reasons = []
    if len(values) < required:
        reasons.append(f"{len(values)} run(s), {required} required")
    if len(good) < len(values):
        reasons.append(f"{len(values) - len(good)} run(s) failed")
    return Score(olympic_mean(good) if good else None, len(values), not reasons, "; ".join(reasons), good)


def bootstrap_ratio(numerator: Sequence[float], denominator: Sequence[float],
                    statistic: Callable[[Sequence[float]], float] = olympic_mean,
                    confidence: float = 0.95, resamples: int = 4000,
                    seed: int = 0) -> Optional[tuple[float, float]]:
    """Percentile-bootstrap interval of statistic(numerator) / statistic(denominator), resampling
    each side's runs independently. None unless both sides have at least 2 runs."""
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    rng = np.random.default_rng(seed)
    ratios = np.empty(resamples)
    for i in range(resamples):
        ratios[i] = statistic(rng.choice(a, len(a))) / statistic(rng.choice(b, len(b)))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return float(low), float(high)


# -- scoring a results tree ------------------------------------------------------------------
TRAINING_CONFIG = ("nodes", "ranks_per_node", "per_rank_batch", "precision")
INFERENCE_CONFIG = ("scenario", "precision", "batch_size", "streams", "intra_op_threads", "inter_op_threads")


def configuration(result: results.ResultFile) -> dict:
    """What makes runs comparable: runs are scored together only when this is equal."""
    summary = result.summary
    if result.mode == results.INFERENCE:
        settings = {**summary.get("settings", {}), "scenario": summary.get("scenario")}
        return {k: settings.get(k) for k in INFERENCE_CONFIG}
    return {k: summary.get(k) for k in TRAINING_CONFIG}


@dataclass
class ScoredResult:
    system: str
    benchmark: str
    mode: str
    config: dict
    metric: str
    better: str  # "lower" | "higher"
    score: Score
    submittable: bool
    paths: list[str]

    def key(self, with_system: bool = True) -> str:
        parts = [self.benchmark, self.mode, json.dumps(self.config, sort_keys=True)]
        return "|".join(([self.system] if with_system else []) + parts)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["score"] = asdict(self.score)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "ScoredResult":
        return cls(**{**data, "score": Score(**data["score"])})


def run_value(result: results.ResultFile) -> Optional[float]:
    """The metric of one run: seconds to accuracy (None if it did not converge), or samples/s."""
    s = result.summary
    if result.mode == results.TTA:
        return s.get("seconds") if s.get("status") == "success" else None
    if result.mode == results.EPOCH_TIME:
        return s.get("steady_samples_per_second") if s.get("status") == "success" else None
    return s.get("samples_per_second") if s.get("valid") and s.get("status", "success") == "success" else None


def score_results(found: Sequence[results.ResultFile]) -> list[ScoredResult]:
    """Group runs into results and score each (scaling series are tables, not scored)."""
    groups: dict[tuple, list[results.ResultFile]] = {}
    for result in found:
        if result.mode in METRICS:
            config = configuration(result)
            groups.setdefault((result.system, result.benchmark, result.mode,
                               json.dumps(config, sort_keys=True)), []).append(result)
    scored = []
    for (system, benchmark, mode, _), runs in sorted(groups.items()):
        values = [run_value(r) for r in runs]
        score = (score_time_to_accuracy(values) if mode == results.TTA
                 else score_throughput(values, REQUIRED_RUNS[mode]))
        metric, better = METRICS[mode]
        scored.append(ScoredResult(system, benchmark, mode, configuration(runs[0]), metric, better, score,
                                   all(r.summary.get("submittable") is True for r in runs),
                                   [str(r.summary_path) for r in runs]))
    return scored


def score_tree(root: Path) -> list[ScoredResult]:
    return score_results(results.iter_results(root))
