"""Scoring, as MLPerf does it: several runs per result, drop the fastest and the slowest,
average the rest; plus bootstrap confidence intervals for comparing two sets of runs.

A result is the set of runs of one system, benchmark and configuration (nodes, ranks per
node, per-rank batch, precision; for inference the scenario and settings): runs with
different configurations are never averaged together.

Every number comes from the run's own log, as MLPerf's result summarizer scores from the
MLPerf log: time to accuracy is run_start to run_stop; epoch-time throughput is the samples of
the epochs after the first over their epoch_start..epoch_stop time; a throughput set (MLPerf
HPC "weak scaling") is max(run_stop) - min(run_start) over its instances; inference is what
LoadGen's summary log reports. A run whose JSON summary disagrees with its log is not counted:
the result is invalid until the disagreement is explained. A time-to-accuracy result carries
its verdict against the reference convergence points (benchmark.rcp), and a set that passes
faster than the reference has its score normalised, as MLPerf's result summarizer does.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np

from benchmark import vocabulary
from harness import results
from harness.mlperf_log import LogTiming, read_timing

if TYPE_CHECKING:
    from benchmark.rcp import Verdict

# Runs per scored result (rules.md "Runs per result"); for a throughput set, the instances that
# must reach the target (MLPerf's summarizer: number_of_models >= the benchmark's run count).
REQUIRED_RUNS = {vocabulary.TTA: 5, vocabulary.THROUGHPUT: 5, vocabulary.EPOCH_TIME: 3, vocabulary.INFERENCE: 1}
METRICS = {vocabulary.TTA: ("time_to_accuracy_minutes", "lower"),
           vocabulary.THROUGHPUT: ("time_to_train_all_minutes", "lower"),
           vocabulary.EPOCH_TIME: ("samples_per_second", "higher"),
           vocabulary.INFERENCE: ("samples_per_second", "higher")}
# A latency-bound inference scenario (SingleStream, MultiStream) is scored by its latency, as
# MLPerf Inference scores it: LoadGen's early-stopping estimate of the scenario's percentile.
LATENCY_METRICS = {vocabulary.SINGLE_STREAM: ("p90_latency_ms", "lower"),
                   vocabulary.MULTI_STREAM: ("p99_latency_ms", "lower")}
# How far a summary may differ from its log: the log's clock has millisecond resolution and a
# log line is written just after the trainer reads its own clock.
TIMING_TOLERANCE_S = 0.25
TIMING_TOLERANCE_FRACTION = 0.01


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


def score_time_to_accuracy(seconds: Sequence[Optional[float]], required: int = REQUIRED_RUNS[vocabulary.TTA]) -> Score:
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


# -- one run, from its log ------------------------------------------------------------------
@dataclass
class Measurement:
    """One run as its log measured it. `problem` (one line) says why it cannot be counted."""

    value: Optional[float] = None  # the run's metric; None if it did not succeed
    timing: Optional[LogTiming] = None  # training runs
    problem: str = ""


def _close(logged: float, claimed: object) -> bool:
    return (isinstance(claimed, (int, float)) and math.isfinite(claimed)
            and abs(logged - claimed) <= max(TIMING_TOLERANCE_S, TIMING_TOLERANCE_FRACTION * abs(logged)))


def _number(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else repr(value)


def summary_disagreements(summary: dict, timing: LogTiming) -> list[str]:
    """Where a training summary says something other than its MLPerf log (empty: they agree)."""
    problems = []
    if summary.get("status") != timing.status:
        problems.append(f"summary status {summary.get('status')!r} but the log's run_stop says {timing.status!r}")
    if summary.get("seconds") is not None and not _close(timing.seconds, summary.get("seconds")):
        problems.append(f"summary seconds {summary['seconds']:.3f} but the log times run_start to run_stop "
                        f"as {timing.seconds:.3f} s")
    epochs = summary.get("epochs") or []
    if len(epochs) != len(timing.epochs):
        problems.append(f"summary has {len(epochs)} epoch(s), the log {len(timing.epochs)}")
    for claimed, logged in zip(epochs, timing.epochs):
        if not _close(logged.seconds, claimed.get("seconds")):
            problems.append(f"summary epoch {claimed.get('epoch')} took {_number(claimed.get('seconds'))} s but the "
                            f"log times it as {logged.seconds:.3f} s")
        if logged.samples is not None and claimed.get("samples") != logged.samples:
            problems.append(f"summary epoch {claimed.get('epoch')} trained {claimed.get('samples')!r} samples, "
                            f"the log {logged.samples}")
    claimed_rate, logged_rate = summary.get("steady_samples_per_second"), timing.steady_samples_per_second
    if claimed_rate is not None and logged_rate is not None and not (
            isinstance(claimed_rate, (int, float))
            and abs(claimed_rate - logged_rate) <= TIMING_TOLERANCE_FRACTION * logged_rate):
        problems.append(f"summary steady_samples_per_second {_number(claimed_rate)} but the log's epochs give "
                        f"{logged_rate:.4g}")
    return problems


def measure(result: results.ResultFile) -> Measurement:
    """The metric of one run, from its log; a run whose summary disagrees gets a problem."""
    if result.mode == vocabulary.INFERENCE:
        return _measure_inference(result)
    if result.log_path is None:
        return Measurement(problem="no MLPerf log beside the summary")
    try:
        timing = read_timing(result.log_path)
    except ValueError as err:
        return Measurement(problem=f"{result.log_path.name}: {err}")
    disagreements = summary_disagreements(result.summary, timing)
    if disagreements:
        return Measurement(timing=timing, problem=disagreements[0])
    if timing.status != "success":
        return Measurement(timing=timing)
    value = timing.steady_samples_per_second if result.mode == vocabulary.EPOCH_TIME else timing.seconds
    return Measurement(value=value, timing=timing)


def _measure_inference(result: results.ResultFile) -> Measurement:
    """LoadGen's verdict and rate from its summary log (what LoadGen measured), against the summary."""
    from benchmark.loadgen_runner import SUMMARY_LOG, result_from_summary

    summary = result.summary
    settings = {"min_duration_ms": 0, "min_query_count": 0,
                **((summary.get("loadgen") or {}).get("settings") or {})}
    try:
        logged = result_from_summary(summary.get("scenario"), result.summary_path.parent, settings)
    except (RuntimeError, OSError) as err:
        return Measurement(problem=str(err))
    if summary.get("valid") is not logged.valid:
        return Measurement(problem=f"summary valid {summary.get('valid')!r} but {SUMMARY_LOG} says "
                                   f"'Result is : {logged.verdict}'")
    claimed = summary.get("samples_per_second")
    if logged.samples_per_second is not None and not (
            isinstance(claimed, (int, float)) and abs(claimed - logged.samples_per_second)
            <= TIMING_TOLERANCE_FRACTION * logged.samples_per_second):
        return Measurement(problem=f"summary samples_per_second {claimed!r} but {SUMMARY_LOG} gives "
                                   f"{logged.samples_per_second:.6g}")
    good = logged.valid and summary.get("status", "success") == "success"
    latency_ns = logged.scenario_latency_ns()
    value = logged.samples_per_second if latency_ns is None else latency_ns / 1e6
    return Measurement(value=value if good else None)


def metric_of(mode: str, config: dict) -> tuple[str, str]:
    """The metric a result is scored in and whether lower or higher is better."""
    if mode == vocabulary.INFERENCE and config.get("scenario") in LATENCY_METRICS:
        return LATENCY_METRICS[config["scenario"]]
    return METRICS[mode]


def score_instances(timings: Sequence[Optional[LogTiming]],
                    required: int = REQUIRED_RUNS[vocabulary.THROUGHPUT]) -> Score:
    """A throughput set (MLPerf HPC weak scaling): minutes from the first run_start to the last
    run_stop over the instances that reached the target; valid with at least `required` of them
    and one instance scale (nodes per instance) across the set, as MLPerf's summarizer requires."""
    converged = [t for t in timings if t is not None and t.status == "success"]
    reasons = []
    if len(converged) < required:
        reasons.append(f"{len(converged)} of {len(timings)} instance(s) reached the target, {required} required")
    if len({t.nodes for t in converged}) > 1:
        reasons.append("instances ran at different scales (number_of_nodes differs)")
    value = ((max(t.run_stop_ms for t in converged) - min(t.run_start_ms for t in converged)) / 60000.0
             if converged else None)
    return Score(value, len(timings), not reasons, "; ".join(reasons), [t.seconds / 60.0 for t in converged])


# -- scoring a results tree ------------------------------------------------------------------
TRAINING_CONFIG = ("nodes", "ranks_per_node", "per_rank_batch", "precision")
INFERENCE_CONFIG = ("scenario", "precision", "batch_size", "streams", "intra_op_threads", "inter_op_threads")


def configuration(result: results.ResultFile) -> dict:
    """What makes runs comparable: runs are scored together only when this is equal. A
    latency-bound scenario's batch is its samples per query (the SUT's maximum never matters)."""
    summary = result.summary
    if result.mode == vocabulary.INFERENCE:
        from benchmark.loadgen_runner import SAMPLES_PER_QUERY

        scenario = summary.get("scenario")
        settings = {**summary.get("settings", {}), "scenario": scenario}
        if scenario in SAMPLES_PER_QUERY:
            settings["batch_size"] = SAMPLES_PER_QUERY[scenario]
        return {k: settings.get(k) for k in INFERENCE_CONFIG}
    config = {k: summary.get(k) for k in TRAINING_CONFIG}
    if result.mode == vocabulary.THROUGHPUT:
        config["instances"] = (summary.get("instance") or {}).get("instances")
    return config


def instance_set(result: results.ResultFile) -> Optional[int]:
    """The set a throughput instance belongs to (the first result number of the set)."""
    return (result.summary.get("instance") or {}).get("set") if result.mode == vocabulary.THROUGHPUT else None


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
    not_submittable: str = ""  # why not, when `submittable` is false (`not_submittable_reason`)
    rcp: Optional[dict] = None  # time to accuracy: the RCP verdict (benchmark.rcp.Verdict.to_dict)

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


def not_counted(result: results.ResultFile) -> str:
    """Why a finished run is no run of a result, though it stays in its root under its number and
    `harness check` lists it, in a few words; '' when it counts. A training run whose ranks ended
    before rank 0 wrote its summary measured nothing (an attempt; a submission refuses it, rules.md
    section 11). An inference run LoadGen found INVALID (an attempt: a Server rate whose queue grew,
    an Offline query that ended early), one aborted before LoadGen's result (also an attempt), or a
    Server run held to a latency bound other than its benchmark's fixed one (section 9). Whether a
    summary agrees with its log is checked per run."""
    from benchmark.loadgen_runner import server_bound_mismatch

    summary = result.summary
    if results.unmeasured_training_run(summary):
        return f"aborted before rank 0 wrote its summary ({summary.get('reason') or 'no reason recorded'})"
    if result.mode != vocabulary.INFERENCE:
        return ""
    if summary.get("status") == "aborted":
        return f"aborted ({summary.get('reason') or 'no reason recorded'}): an attempt, not a result"
    if summary.get("status", "success") != "success":
        return ""
    if summary.get("valid") is False:
        return "said INVALID (an attempt, not a result)"
    if summary.get("scenario") == vocabulary.SERVER:
        bound = ((summary.get("loadgen") or {}).get("settings") or {}).get("server_target_latency_ms")
        return server_bound_mismatch(result.benchmark, bound)
    return ""


def score_results(found: Sequence[results.ResultFile]) -> list[ScoredResult]:
    """Group runs into results and score each from their logs (scaling series are tables, not
    scored; each throughput set is its own result; a run that is not counted is no run of a
    result)."""
    groups: dict[tuple, list[results.ResultFile]] = {}
    for result in found:
        if result.mode in METRICS and not not_counted(result):
            config = configuration(result)
            groups.setdefault((result.system, result.benchmark, result.mode,
                               json.dumps(config, sort_keys=True), instance_set(result) or 0), []).append(result)
    scored = []
    for (system, benchmark, mode, _, _), runs in sorted(groups.items()):
        measured = [measure(r) for r in runs]
        rcp = None
        if mode == vocabulary.THROUGHPUT:
            score = score_instances([m.timing for m in measured])
        elif mode == vocabulary.TTA:
            score = score_time_to_accuracy([m.value for m in measured])
            rcp = rcp_verdict(benchmark, [m.timing for m in measured], [r.log_path for r in runs])
            if score.value is not None:
                score.value *= rcp.norm_factor
        else:
            score = score_throughput([m.value for m in measured], REQUIRED_RUNS[mode])
        problems = [f"{_run_name(r)} not counted, {m.problem}" for r, m in zip(runs, measured) if m.problem]
        if problems:
            score.valid = False
            score.reason = "; ".join([*problems, *([score.reason] if score.reason else [])])
        config = configuration(runs[0])
        metric, better = metric_of(mode, config)
        reasons = [reason for r in runs if (reason := not_submittable_reason(r.summary))]
        scored.append(ScoredResult(system, benchmark, mode, config, metric, better, score,
                                   not reasons, [str(r.summary_path) for r in runs],
                                   "; ".join(dict.fromkeys(reasons)), rcp and rcp.to_dict()))
    return scored


def rcp_verdict(benchmark: str, timings: Sequence[Optional[LogTiming]], logs: Sequence[Optional[Path]] = ()
                ) -> Verdict:
    """A closed time-to-accuracy run set against the benchmark's reference convergence points,
    from its logs (benchmark.rcp.judge; open results may change the recipe, so MLPerf does not
    hold them to the RCPs). A set that passes faster than the reference is normalised by the
    verdict's `norm_factor`; one whose `logs` made an RCP is not judged by it."""
    from benchmark.rcp import UNJUDGED, Verdict, judge
    from reference_model.checkpoint import sha256_of

    if "closed" not in {t.division for t in timings if t}:
        return Verdict(UNJUDGED, False, "open division: not held to the reference convergence points")
    batches = {t.global_batch if t else None for t in timings}
    batch = batches.pop() if len(batches) == 1 else None
    return judge(benchmark, batch, [t.samples_to_converge if t else None for t in timings],
                 REQUIRED_RUNS[vocabulary.TTA], log_sha256s=[sha256_of(log) for log in logs if log is not None])


def not_submittable_reason(summary: dict) -> str:
    """Why a run is not submittable, in a few words ('' when it is): a smoke run, an inference run
    that was not gated, whose checkpoint misses (or was checked against a version that is not) the
    benchmark's target, or that is shorter than MLPerf's official minimum."""
    from benchmark.precision import TARGET_CHECK
    from benchmark.quality import version_name

    if summary.get("submittable") is True:
        return ""
    if summary.get("status") != "success":
        return "did not finish"
    if summary.get("mode") != vocabulary.INFERENCE:
        return "smoke"
    quality = summary.get("quality")
    target = quality.get(TARGET_CHECK) if isinstance(quality, dict) else None
    if not isinstance(target, dict):
        return "not gated"
    if target.get("smoke"):
        return "smoke"
    if target.get("submittable") is not True:
        return f"checked against {version_name(target.get('thresholds'))}, not the target"
    if target.get("passed") is not True:
        return "checkpoint below the target"
    if summary.get("official_minimum") is not True:
        return "shorter than MLPerf's official minimum"
    return "not submittable"


def _run_name(result: results.ResultFile) -> str:
    path = result.summary_path
    return path.parent.name if result.mode == vocabulary.INFERENCE else path.stem


def score_tree(root: Path) -> list[ScoredResult]:
    return score_results(results.iter_results(root))
