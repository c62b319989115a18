"""`harness check`: every rule of rules.md that a program can check, on a results tree.

Per run: the summary follows the schema; the MLPerf log passes the compliance checker with
our rules; the log agrees with its folder (benchmark, system, mode), with the system's
division and with its summary (status, timed seconds, every epoch's time and samples, the
steady throughput: the scores are taken from the log, harness.scoring); the logged quality
thresholds are a version/hash pair of benchmark/thresholds/registry.json; a time-to-accuracy
run (or throughput instance) used the frozen thresholds, was not resumed, and its last
evaluation passes every frozen threshold on the values it logged; inference runs have
LoadGen's logs, a VALID result that the summary repeats, and a quality record that passed.
A finish that was interrupted (stamped summary, renames not done) is reported as such.
Per submission (skipped with `per_run`): no smoke results, no unfinished or removed runs,
enough runs per result, inference at MLPerf's official minimum duration, each throughput set
complete with distinct seeds, one set per configuration, beside a time-to-accuracy result;
each closed time-to-accuracy result passes its reference convergence points (benchmark.rcp,
judged in harness.scoring).
"""
from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from benchmark import vocabulary
from benchmark import log_keys as keys
from benchmark.rcp import UNJUDGED
from harness import results
from harness.scoring import (REQUIRED_RUNS, ScoredResult, instance_set, measure, not_counted,
                             score_results)
from harness.sysinfo import MLPERF_SYSTEM_FIELDS, STATUSES
from harness.thresholds_registry import judge
from reference_model.errors import InputError


@dataclass
class Problem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def check_tree(root: Path, per_run: bool = False) -> tuple[list[Problem], int]:
    """All problems found under `root`, and how many results were checked."""
    root = results.require_root(root)
    problems: list[Problem] = []
    systems = _check_systems(root, problems)
    found = results.iter_results(root)
    for result in found:
        problems += [Problem(result.summary_path, m) for m in check_result(result, systems.get(result.system))]
    problems += _check_unfinished(root, per_run)
    if not per_run:
        problems += _check_submission(found)
    return problems, len(found)


def _check_unfinished(root: Path, per_run: bool) -> list[Problem]:
    """Interrupted finishes always (the run ended; only its renames are missing); runs still
    under a `.partial` name only for a submission (a work tree may have runs in progress)."""
    problems = []
    interrupted = set()
    for folder in {p.parent for p in results.unfinished_entries(root)}:
        for summary in results.interrupted_finishes(folder):
            interrupted |= {summary, summary.with_name(summary.name.replace(".json", ".txt"))}
            problems.append(Problem(summary, "interrupted finish: the run ended and its summary is stamped, "
                                             "but its files were not renamed; the next `harness run` into this "
                                             "folder completes it (harness.results.complete_interrupted_finishes)"))
    for partial in results.unfinished_entries(root):
        if partial not in interrupted and not per_run:
            ended = ("record how it ended (harness abandon PATH)" if partial.name.startswith(("run_", "result_"))
                     else "delete it")  # a LoadGen run or a training run; else a scaling series or a sweep
            problems.append(Problem(partial, "unfinished run (still running, or its launcher died): let it finish, "
                                             f"or once no process runs it, {ended}, before submitting"))
    for system_dir in (p for p in (root / "results").glob("*") if p.is_dir()):
        for folder in results.TRAINING_FOLDERS.values():
            for log in sorted(system_dir.glob(f"{folder}/*/result_*.txt")):
                finishing = log.with_suffix(f".json{results.PARTIAL}") in interrupted
                if not log.with_suffix(".json").exists() and not finishing:
                    problems.append(Problem(log, "log without its summary: the run's finish was interrupted "
                                                 "before the summary was written; the result cannot be scored, "
                                                 "rerun it and keep this log beside the new run"))
    return problems


def _check_systems(root: Path, problems: list[Problem]) -> dict[str, dict]:
    systems = {}
    for system_dir in sorted(p for p in (root / "results").glob("*") if p.is_dir()):
        path = results.system_description_path(root, system_dir.name)
        description = results.read_system_description(root, system_dir.name)
        if description is None:
            problems.append(Problem(path, f"missing: every system in results/ needs its description "
                                          f"(harness sysinfo --json --system-name {system_dir.name})"))
            continue
        missing = [f for f in MLPERF_SYSTEM_FIELDS if f not in description]
        if missing:
            problems.append(Problem(path, f"missing MLPerf system fields: {', '.join(missing)}"))
        if description.get("system_name") != system_dir.name:
            problems.append(Problem(path, f"system_name {description.get('system_name')!r} is not the "
                                          f"file's name {system_dir.name!r}"))
        if description.get("division") not in ("closed", "open"):
            problems.append(Problem(path, f"division {description.get('division')!r}: closed or open"))
        if description.get("status") not in STATUSES.values():
            problems.append(Problem(path, f"status {description.get('status')!r}: one of "
                                          f"{', '.join(STATUSES.values())}"))
        systems[system_dir.name] = description
    return systems


def check_result(result: results.ResultFile, system: Optional[dict]) -> list[str]:
    """Problems with one finished result (a run or a series)."""
    summary = result.summary
    problems = results.validate_summary(summary)
    for field, expected in (("mode", result.mode), ("benchmark", result.benchmark), ("system", result.system)):
        if summary.get(field) not in (None, expected):
            problems.append(f"summary {field} {summary.get(field)!r} but it is filed under {expected!r}")
    if results.unmeasured_training_run(summary):
        return problems  # an attempt whose log is what its ranks left: listed as not counted
    if result.mode in results.TRAINING_FOLDERS:
        problems += _check_training_log(result, system)
    elif result.mode == vocabulary.INFERENCE:
        problems += _check_inference(result)
    elif result.mode == vocabulary.SCALING:
        failed = [r for r in summary.get("rows", []) if r.get("status") != "success"]
        if failed:
            problems.append(f"{len(failed)} scaling point(s) did not succeed")
    return problems


def _check_training_log(result: results.ResultFile, system: Optional[dict]) -> list[str]:
    from harness.compliance import check_log, checker_command
    from harness.mlperf_log import first_records, parse_log

    if result.log_path is None:
        return [f"no MLPerf log {result.summary_path.with_suffix('.txt').name} beside the summary"]
    try:
        compliance = check_log(result.log_path, result.benchmark)
    except ValueError as err:
        return [str(err)]
    problems = [f"compliance: {m.splitlines()[0]}" for m in compliance.messages]
    if problems:
        command = shlex.join(checker_command(result.log_path, result.benchmark))
        problems[0] += f" (the checker's whole report: {command})"
    records = parse_log(result.log_path)
    first = first_records(records)

    def value(key: str):
        return first.get(key, {}).get("value")

    expected = {"submission_benchmark": result.benchmark, "submission_platform": result.system,
                "benchmark_mode": results.LOG_MODES[result.mode]}
    if system is not None:
        expected["submission_division"] = system.get("division")
    problems += [f"log {key} {value(key)!r}, expected {want!r}" for key, want in expected.items()
                 if key in first and value(key) != want]
    summary = result.summary
    if "submittable" in first and value("submittable") != summary.get("submittable"):
        problems.append(f"summary submittable {summary.get('submittable')!r} but the log says {value('submittable')!r}")
    if "run_start" in first and "run_stop" in first:
        measured = measure(result)
        if measured.problem:
            problems.append(measured.problem)
    if keys.EMULATED_RANKS in first:
        problems.append(f"its {value(keys.EMULATED_RANKS)} ranks were emulated in one process: convergence "
                        "evidence, never a timed result (harness run files such runs under ROOT/emulated/)")
    verdict = judge(value("quality_thresholds"))
    to_target = result.mode in (vocabulary.TTA, vocabulary.THROUGHPUT)
    if "quality_thresholds" in first and not verdict.known and (to_target or not verdict.recorded):
        problems.append(verdict.problem)
    if to_target and summary.get("status") == "success":
        if keys.RESUMED in first:
            problems.append("a time-to-accuracy run must be uninterrupted, this one was resumed")
        problems += _check_quality(result.benchmark, value("quality_thresholds"), records,
                                   smoke=value("submittable") is False)
    return problems


def frozen_thresholds(benchmark: str, smoke: bool = False):
    """The benchmark's quality thresholds (benchmark/thresholds/<benchmark>.json; `smoke`: the
    labelled smoke target a non-submittable run is judged by, which a submission refuses)."""
    from benchmark.quality import load_thresholds

    return load_thresholds(benchmark, smoke=smoke)


def _check_quality(benchmark: str, logged_version, records: list[dict], smoke: bool = False) -> list[str]:
    """The run used the frozen thresholds and its last evaluation passes them on its own values."""
    try:
        thresholds = frozen_thresholds(benchmark, smoke)
    except InputError as err:
        return [f"cannot check the quality target: {err}"]
    problems = []
    if logged_version != thresholds.version:
        problems.append(f"quality thresholds {logged_version!r}, the frozen ones are {thresholds.version!r}")
    evaluations = [r for r in records if r.get("key") == "eval_accuracy"]
    if not evaluations:
        return problems + ["success without an evaluation"]
    metrics = evaluations[-1].get("metadata", {}).get("metrics") or {}
    for name, limit in sorted(thresholds.limits.items()):
        entry = metrics.get(name)
        logged = entry.get("value") if isinstance(entry, dict) else entry
        if not isinstance(logged, (int, float)) or not math.isfinite(logged) or logged > limit:
            problems.append(f"last evaluation: {name} = {logged!r} does not pass the frozen threshold {limit:g}")
    return problems


def _check_inference(result: results.ResultFile) -> list[str]:
    summary = result.summary
    if summary.get("status") == "aborted":  # an attempt: what LoadGen wrote stays, nothing is scored
        return [] if summary.get("reason") else ["aborted without a reason"]
    problems = [f"LoadGen log {name} missing" for name in results.LOADGEN_LOGS
                if not (result.summary_path.parent / name).is_file()]
    if problems:
        return problems
    measured = measure(result)
    if measured.problem:
        problems.append(measured.problem)
    elif summary.get("valid") is not True and not not_counted(result):
        problems.append("LoadGen did not report 'Result is : VALID'")
    if isinstance(summary.get("server_search"), dict):
        from benchmark.loadgen_runner import server_search_problem

        ran_at = ((summary.get("loadgen") or {}).get("settings") or {}).get("server_target_qps")
        if searched := server_search_problem(summary["server_search"], ran_at):
            problems.append(f"Server search: {searched} (rules.md section 9)")
    quality = summary.get("quality")
    precision = summary.get("settings", {}).get("precision")
    if not isinstance(quality, dict):
        problems.append(f"no quality record: showers generated at precision {precision!r} were not put "
                        "through the quality gate; rerun without --no-quality-gate")
    else:
        problems += _inference_quality_problems(quality, precision)
    return problems


def _inference_quality_problems(quality: dict, precision) -> list[str]:
    """MLPerf Inference's two conditions, reported apart: (a) the checkpoint itself reaches the
    benchmark target in float32, (b) this precision's showers match float32's from the same
    inputs (benchmark.precision)."""
    from benchmark.precision import PAIRED_CHECK, TARGET_CHECK

    target, paired = quality.get(TARGET_CHECK), quality.get(PAIRED_CHECK)
    if not isinstance(target, dict) or not isinstance(paired, dict):
        return [f"quality record without '{TARGET_CHECK}' and '{PAIRED_CHECK}': rerun the inference "
                "benchmark with this version of the suite"]
    problems = []
    if target.get("passed") is not True:
        problems.append("the checkpoint misses the benchmark target in float32 (not a result)")
    if paired.get("passed") is not True:
        problems.append(f"showers generated at precision {precision!r} differ from float32's from the "
                        "same inputs (precision gate)")
    if quality.get("passed") is not True and not problems:
        problems.append(f"showers generated at precision {precision!r} fail the quality gate")
    return problems


def _check_submission(found: list[results.ResultFile]) -> list[Problem]:
    problems = []
    for result in found:
        if result.mode == vocabulary.INFERENCE and result.summary.get("status") == "aborted":
            continue  # an attempt, kept so that no number is missing (rules.md section 9)
        if results.unmeasured_training_run(result.summary):
            problems.append(Problem(result.summary_path, "a run that ended before rank 0 wrote its summary: "
                                                         "run the submission again in a fresh results root "
                                                         "(rules.md section 11)"))
        elif result.summary.get("submittable") is not True:
            problems.append(Problem(result.summary_path, "smoke or otherwise non-submittable result in a "
                                                         "submission tree: run submissions in a fresh results root"))
        if result.mode == vocabulary.INFERENCE and result.summary.get("official_minimum") is not True:
            problems.append(Problem(result.summary_path, "shorter than MLPerf's official minimum duration/"
                                                         "query count (rules.md, Inference)"))
    problems += _missing_runs(found)
    problems += _check_throughput_sets(found)
    for scored in score_results(found):
        if not scored.score.valid:
            required = (f"{REQUIRED_RUNS[scored.mode]} instances that reach the target"
                        if scored.mode == vocabulary.THROUGHPUT else f"{REQUIRED_RUNS[scored.mode]} runs")
            problems.append(_about(scored, f"{scored.score.reason} (rules.md requires {required})"))
        if scored.rcp is not None and not scored.rcp["passed"] and scored.rcp["status"] != UNJUDGED:
            problems.append(_about(scored, scored.rcp["message"]))  # unjudged: open, or invalid for its runs
    return problems


def _about(scored: ScoredResult, message: str) -> Problem:
    """`message` about a scored result, at its folder, naming its configuration."""
    config = ", ".join(f"{k}={v}" for k, v in scored.config.items())
    return Problem(Path(scored.paths[0]).parent, f"{scored.mode} result ({config}): {message}")


def rcp_verdicts(root: Path) -> list[Problem]:
    """The RCP verdict of every time-to-accuracy result under `root`, as (where, what) lines:
    what `harness check` reports beside its problems."""
    return [_about(s, s.rcp["message"]) for s in score_results(results.iter_results(root)) if s.rcp is not None]


def not_counted_runs(root: Path) -> list[Problem]:
    """Every run under `root` that is not counted (`scoring.not_counted`: an attempt, or a Server
    run held to another bound than its benchmark's), as (where, what) lines: kept in the root (no
    run is removed), never scored (rules.md sections 9 and 11); `harness check` lists them."""
    def line(result: results.ResultFile, why: str) -> Problem:
        if result.mode != vocabulary.INFERENCE:
            return Problem(result.summary_path, f"not counted: {result.mode} run {why} (rules.md section 11)")
        precision = (result.summary.get("settings") or {}).get("precision")  # an abandoned run may not know it
        ran = " ".join(str(part) for part in (result.summary.get("scenario"), precision) if part)
        return Problem(result.summary_path.parent, f"not counted: LoadGen {ran} {why} (rules.md section 9)")

    return [line(r, why) for r in results.iter_results(root) if (why := not_counted(r))]


def _check_throughput_sets(found: list[results.ResultFile]) -> list[Problem]:
    """MLPerf HPC throughput: every instance of a set is present with its own seed, one set per
    configuration (no picking the best of several), and only beside a time-to-solution result."""
    from harness.scoring import configuration

    sets: dict[tuple, list[results.ResultFile]] = {}
    for result in found:
        if result.mode == vocabulary.THROUGHPUT:
            sets.setdefault((result.system, result.benchmark, instance_set(result)), []).append(result)
    problems, configs = [], {}
    for (system, benchmark, number), members in sorted(sets.items(), key=lambda item: str(item[0])):
        where = members[0].summary_path.parent
        declared = (members[0].summary.get("instance") or {}).get("instances")
        indices = sorted((m.summary.get("instance") or {}).get("index") for m in members)
        if number is None or declared != len(members) or indices != list(range(1, len(members) + 1)):
            problems.append(Problem(where, f"throughput set {number}: instances {indices} of {declared}; every "
                                           "instance of a set counts (run the set again in a fresh results root)"))
        seeds = [t.seed for t in map(_timing, members) if t is not None]
        if len(set(seeds)) < len(seeds):
            problems.append(Problem(where, f"throughput set {number}: instances share a seed {sorted(seeds)}; "
                                           "MLPerf HPC requires each instance to train from its own seed"))
        key = (system, benchmark, json.dumps(configuration(members[0]), sort_keys=True))
        configs.setdefault(key, []).append(number)
        if not any(r.mode == vocabulary.TTA and r.system == system and r.benchmark == benchmark for r in found):
            problems.append(Problem(where, f"throughput set {number} without a time-to-accuracy result of "
                                           f"{benchmark} on {system}: MLPerf HPC reports throughput only beside "
                                           "time to solution"))
    for (system, benchmark, _), numbers in sorted(configs.items()):
        if len(numbers) > 1:
            problems.append(Problem(Path(system) / benchmark, f"throughput sets {numbers} share one configuration: "
                                                              "a result is one set (choosing the best of several "
                                                              "is not allowed)"))
    return problems


def _timing(result: results.ResultFile):
    """The log's timing, or None where the log is missing or has no run_start/run_stop (the
    per-run checks report those)."""
    from harness.mlperf_log import read_timing

    if result.log_path is None:
        return None
    try:
        return read_timing(result.log_path)
    except ValueError:
        return None


def _missing_runs(found: list[results.ResultFile]) -> list[Problem]:
    """Runs are numbered 1, 2, ... as they start; a gap means a run was removed, and a
    result must count every run (no picking the good ones)."""
    numbered: dict[Path, set[int]] = {}
    for result in found:
        if result.mode in results.TRAINING_FOLDERS:
            folder, name = result.summary_path.parent, result.summary_path.name
        elif result.mode == vocabulary.INFERENCE:
            folder, name = result.summary_path.parents[1], result.summary_path.parent.name
        else:
            continue
        numbered.setdefault(folder, set()).add(int(name.split("_")[1].split(".")[0]))
    problems = []
    for folder, numbers in sorted(numbered.items()):
        partial = {int(p.name.split("_")[1].split(".")[0]) for p in folder.glob(f"*_*{results.PARTIAL}")}
        missing = sorted(set(range(1, max(numbers) + 1)) - numbers - partial)
        if missing:
            problems.append(Problem(folder, f"run(s) {', '.join(map(str, missing))} missing: every run of a "
                                            "result counts, none may be removed (run submissions in a fresh "
                                            "results root)"))
    return problems
