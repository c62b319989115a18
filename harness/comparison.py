"""Comparing systems (CPU generations): the same results side by side, raw and normalised per
node, socket, core and core-GHz, with speed-ups against a base system and bootstrap confidence
intervals over runs; a report (text or markdown) with PNG speed-up, scaling and
throughput-against-streams plots.

Results are matched on benchmark, mode and configuration (harness.scoring.configuration);
a system without a matching result shows no row for it. Speed-up > 1 means faster than the
base system (shorter time to accuracy, more samples per second, lower SingleStream latency). The
systems are every system of every results root given, the first (or `--base`) being the base.

Per core-GHz divides by the clock the system description records (harness.sysinfo
`frequency_mhz`): cpufreq's base clock when the driver gives one (what every core sustains under
load), else its max (a turbo bin, higher than an all-core load runs at), else /proc/cpuinfo's
'cpu MHz', labelled as such: on a KVM guest often the only figure (the host's nominal clock), on
bare metal the clock of the moment. Without any of them it is "unknown".

Two systems' numbers for a matched result are comparable only when they were measured with the
same software (Python, TensorFlow, Keras, oneDNN, Horovod, MPI: from each system description,
which holds the stack of the system's latest run), judged against the same quality-thresholds
version, on the same data and with the same model (from each run's MLPerf log and summary; see
`result_facts`). Every difference is listed, and the row says "no: ..." rather than hiding it.
"""
from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from benchmark import log_keys
from benchmark import vocabulary
from harness import results
from harness.data_default import TO_TARGET
from harness.scoring import ScoredResult, bootstrap_ratio, olympic_mean, score_tree
from reference_model.errors import InputError

CONFIDENCE = 0.95
UNKNOWN = "unknown"
# Section titles, in report order (the epoch-time table follows the epoch-time section).
SECTIONS = ((vocabulary.TTA, "Time to accuracy"),
            (vocabulary.THROUGHPUT, "Throughput: time to train M instances (MLPerf HPC weak/)"),
            (vocabulary.EPOCH_TIME, "Training speed (epoch-time runs)"),
            (vocabulary.INFERENCE, "Inference throughput"))
# system description `software` key -> the name a table and a difference show.
SOFTWARE = {"python": "Python", "tensorflow": "TensorFlow", "keras": "Keras", "onednn_enabled": "oneDNN",
            "horovod": "Horovod", "mpi": "MPI"}
# sysinfo `frequency_mhz` key -> the label of a clock read from it, in order of preference.
CLOCK_SOURCES = (("base", "base"), ("max", "max"), ("current", "cpuinfo 'cpu MHz'"))
DEFAULT_DATA = "default stand-in"


@dataclass(frozen=True)
class Clock:
    """The clock a per-core-GHz figure divides by, and where the description read it."""

    ghz: float
    source: str

    def __str__(self) -> str:
        return f"{self.ghz:.3g} GHz {self.source}"


@dataclass
class SystemResults:
    label: str
    system: str
    root: Path
    description: Optional[dict]
    scored: list[ScoredResult]

    def resources(self, nodes: int) -> dict[str, Optional[float]]:
        """How many nodes, sockets, cores and core-GHz `nodes` nodes of this system have (None: unknown)."""
        d = self.description or {}
        sockets, cores = d.get("host_processors_per_node"), d.get("host_processor_core_count")
        sockets = sockets if isinstance(sockets, int) else None
        cores = cores if isinstance(cores, int) else None
        all_cores = nodes * sockets * cores if sockets and cores else None
        clock = self.clock()
        return {"node": nodes, "socket": nodes * sockets if sockets else None, "core": all_cores,
                "core-GHz": all_cores * clock.ghz if all_cores and clock else None}

    def clock(self) -> Optional[Clock]:
        """The first clock of CLOCK_SOURCES the description knows (module docstring: why this order)."""
        mhz = ((self.description or {}).get("cpu") or {}).get("frequency_mhz") or {}
        for key, source in CLOCK_SOURCES:
            value = mhz.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return Clock(value / 1000.0, source)
        return None

    def software(self) -> dict[str, str]:
        """The software versions the description records, by display name ("unknown" if not)."""
        stack = (self.description or {}).get("software") or {}
        return {name: _text(stack.get(key, UNKNOWN)) for key, name in SOFTWARE.items()}


def load_systems(roots: list[Path]) -> list[SystemResults]:
    """Every system of every root, in the order given, a root's systems by name (the first one is the base)."""
    systems = []
    for root in roots:
        root = results.require_root(root)
        scored = score_tree(root)
        for system in sorted({s.system for s in scored}):
            description = results.read_system_description(root, system)
            systems.append(SystemResults(system, system, root, description,
                                         [s for s in scored if s.system == system]))
    labels = [s.label for s in systems]
    for s in systems:
        if labels.count(s.system) > 1:
            s.label = f"{s.system} ({s.root})"
    if not systems:
        raise InputError(f"no results under {', '.join(map(str, roots))}; run `harness run` first")
    return systems


def with_base(systems: list[SystemResults], base: Optional[str]) -> list[SystemResults]:
    """`systems` with the one labelled or named `base` first (unchanged when `base` is None)."""
    if base is None:
        return systems
    chosen = [s for s in systems if s.label == base] or [s for s in systems if s.system == base]
    if len(chosen) != 1:
        raise InputError(f"--base {base!r}: {'ambiguous' if chosen else 'no such system'}; "
                         f"choose one of {', '.join(s.label for s in systems)}")
    return [chosen[0], *(s for s in systems if s is not chosen[0])]


# -- what a result was measured with -------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    """A fact the base and another system's result do not share: it makes them not comparable."""

    name: str
    base: str
    other: str

    def __str__(self) -> str:
        return f"{self.name} {self.base} vs {self.other}"


def result_facts(scored: ScoredResult) -> dict[str, str]:
    """What a result was measured with beyond its configuration, each fact over all its runs
    (values joined with ' + ' when runs differ): the data set, the model, and for results judged
    against the physics thresholds the thresholds version; see `_training_facts` and
    `_inference_facts` for where each comes from."""
    per_run = [_run_facts(Path(path), scored.mode) for path in scored.paths]
    names = dict.fromkeys(name for facts in per_run for name in facts)
    return {name: " + ".join(sorted({facts.get(name, UNKNOWN) for facts in per_run})) for name in names}


def _run_facts(summary_path: Path, mode: str) -> dict[str, str]:
    summary = results.read_summary(summary_path) or {}
    if mode == vocabulary.INFERENCE:
        return _inference_facts(summary)
    return _training_facts(summary, summary_path.with_suffix(".txt"), judged=mode in TO_TARGET)


def _training_facts(summary: dict, log: Path, judged: bool) -> dict[str, str]:
    """From the MLPerf log: the model's fingerprint, samples per epoch and, for a run trained to
    the target, samples per evaluation and the quality-thresholds version it was judged against
    (an epoch-time run is not judged). The data set is the --data its ranks were given. The logged
    seed is not a fact here: MLPerf wants it to differ between runs."""
    logged = _first_values(log)
    facts = {"data set": _data_name(summary.get("command")),
             "train samples/epoch": _text(logged.get(log_keys.mlperf.TRAIN_SAMPLES, UNKNOWN)),
             "model": _short(logged.get(log_keys.MODEL_FINGERPRINT))}
    if judged:
        facts["eval samples"] = _text(logged.get(log_keys.mlperf.EVAL_SAMPLES, UNKNOWN))
        facts["quality thresholds"] = _text(logged.get(log_keys.QUALITY_THRESHOLDS, UNKNOWN))
    return facts


def _inference_facts(summary: dict) -> dict[str, str]:
    """From the run's summary: the versions its quality checks used, the checkpoint's SHA-256,
    the runtime that ran it and the --data the checkpoint was checked on. (A Server rate needs no
    fact of its own: every scored one held its benchmark's fixed latency bound.)"""
    quality = summary.get("quality") or {}
    thresholds = sorted({check["thresholds"] for check in quality.values()
                         if isinstance(check, dict) and check.get("thresholds")})
    facts = {"data set": _data_name(summary.get("command")),
             "model": _short((summary.get("checkpoint") or {}).get("sha256")),
             "quality thresholds": ", ".join(thresholds) or UNKNOWN,
             "inference runtime": _text((summary.get("settings") or {}).get("runtime", UNKNOWN))}
    return facts


def _first_values(log: Path) -> dict:
    """The first value of each key of an MLPerf log (empty when it cannot be read)."""
    from harness.mlperf_log import parse_log

    try:
        records = parse_log(log)
    except (OSError, ValueError):
        return {}
    values: dict = {}
    for record in records:
        values.setdefault(record["key"], record["value"])
    return values


def _data_name(command: Optional[str]) -> str:
    """The folder name of the --data in a run's command line (its path differs between machines,
    its name need not); a run given none used the default stand-in set."""
    try:
        words = shlex.split(command or "")
    except ValueError:
        return UNKNOWN
    for word, following in zip(words, [*words[1:], None]):
        if word == "--data" and following:
            return Path(following).name
        if word.startswith("--data="):
            return Path(word.partition("=")[2]).name
    return DEFAULT_DATA


def _short(digest: object) -> str:
    return digest[:12] if isinstance(digest, str) and digest else UNKNOWN


def _text(value: object) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def _differences(base: dict[str, str], other: dict[str, str]) -> list[Difference]:
    names = dict.fromkeys([*base, *other])
    return [Difference(name, base.get(name, UNKNOWN), other.get(name, UNKNOWN)) for name in names
            if base.get(name, UNKNOWN) != other.get(name, UNKNOWN)]


# -- the comparison ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Speedup:
    """A ratio to the base (> 1: faster) with its bootstrap interval (None: under 2 runs a side)."""

    ratio: float
    interval: Optional[tuple[float, float]]

    def scaled(self, factor: float) -> Speedup:
        """The speed-up per resource: a constant factor scales the ratio and its interval alike."""
        interval = (self.interval[0] * factor, self.interval[1] * factor) if self.interval else None
        return Speedup(self.ratio * factor, interval)

    def __str__(self) -> str:
        ci = f" [{self.interval[0]:.3g}, {self.interval[1]:.3g}]" if self.interval else " [n/a: <2 runs]"
        return f"{self.ratio:.3g}x{ci}"


@dataclass
class ComparedResult:
    """One system's result beside the base's result of the same configuration. `differences` is
    None when nothing was compared (the base itself, or the base has no such result)."""

    system: SystemResults
    result: ScoredResult
    speedup: Optional[Speedup] = None
    per_core: Optional[Speedup] = None
    per_core_ghz: Optional[Speedup] = None
    differences: Optional[list[Difference]] = None

    @property
    def comparable_text(self) -> str:
        if self.differences is None:
            return "-"
        if not self.differences:
            return "yes"
        return "no: " + ", ".join(dict.fromkeys(d.name for d in self.differences))


@dataclass
class Comparison:
    """Every system's results against the base (`systems[0]`), per mode."""

    systems: list[SystemResults]
    results: dict[str, list[ComparedResult]] = field(default_factory=dict)

    @property
    def base(self) -> SystemResults:
        return self.systems[0]

    @classmethod
    def of(cls, systems: list[SystemResults]) -> Comparison:
        return cls(systems, {mode: compare_mode(systems, mode) for mode, _ in SECTIONS})


def software_differences(base: SystemResults, system: SystemResults) -> list[Difference]:
    return _differences(base.software(), system.software())


def compare_mode(systems: list[SystemResults], mode: str) -> list[ComparedResult]:
    """Each scored result of `mode`, per configuration then system, with its speed-ups against
    the base's result of that configuration and what makes the two not comparable."""
    base = systems[0]
    keys = sorted({match_key(s) for sys_ in systems for s in sys_.scored if s.mode == mode})
    compared = []
    for key in keys:
        base_result = _find(base, key)
        base_facts = result_facts(base_result) if base_result and len(systems) > 1 else {}
        for system in systems:
            result = _find(system, key)
            if result is None:
                continue
            if system is base or base_result is None:
                compared.append(ComparedResult(system, result))
                continue
            nodes = result.config.get("nodes") or 1
            ours, theirs = system.resources(nodes), base.resources(nodes)
            raw = _speedup(base_result, result)
            per_core, per_core_ghz = ((None, None) if is_latency(result) else
                                      (_per(raw, theirs["core"], ours["core"]),
                                       _per(raw, theirs["core-GHz"], ours["core-GHz"])))
            compared.append(ComparedResult(
                system, result, raw, per_core, per_core_ghz,
                software_differences(base, system) + _differences(base_facts, result_facts(result))))
    return compared


# Inference results match on what is served, not how: each system at its own best setting.
INFERENCE_MATCH = ("scenario", "precision")


def match_key(scored: ScoredResult) -> str:
    """What two systems' results must share to be compared: the whole configuration, except that
    inference results match on scenario and precision (streams, batch and threads are each
    system's best setting, shown in its row; issue 24 runs LoadGen at the sweep's best point)."""
    if scored.mode != vocabulary.INFERENCE:
        return scored.key(with_system=False)
    served = {k: scored.config.get(k) for k in INFERENCE_MATCH}
    return "|".join([scored.benchmark, scored.mode, json.dumps(served, sort_keys=True)])


def _find(system: SystemResults, key: str) -> Optional[ScoredResult]:
    """The system's scored result of `key`, the best where several settings match (None when it
    has none, or none has a score)."""
    found = [s for s in system.scored if match_key(s) == key and s.score.value is not None]
    if not found:
        return None
    return (min if found[0].better == "lower" else max)(found, key=lambda s: s.score.value)


def is_latency(scored: ScoredResult) -> bool:
    """A latency-bound inference result (SingleStream, MultiStream): lower is better, and a latency
    is not an amount of work, so it has no per-node, per-core or per-core-GHz figure."""
    return scored.mode == vocabulary.INFERENCE and scored.better == "lower"


def _speedup(base: ScoredResult, result: ScoredResult) -> Speedup:
    numerator, denominator = (base, result) if result.better == "lower" else (result, base)
    return Speedup(numerator.score.value / denominator.score.value,
                   bootstrap_ratio(numerator.score.values, denominator.score.values, confidence=CONFIDENCE))


def _per(raw: Speedup, base_amount: Optional[float], amount: Optional[float]) -> Optional[Speedup]:
    """The speed-up per unit of a resource the base has `base_amount` of and the system `amount`."""
    return raw.scaled(base_amount / amount) if base_amount and amount else None


# -- tables ----------------------------------------------------------------------------------
def config_text(config: dict) -> str:
    names = {"ranks_per_node": "ranks/node", "per_rank_batch": "batch/rank", "batch_size": "batch",
             "intra_op_threads": "intra", "inter_op_threads": "inter"}
    return " ".join(f"{names.get(k, k)}={v}" for k, v in config.items() if v is not None)


def _fmt(value: Optional[float], digits: int = 4, missing: str = "-") -> str:
    return missing if value is None else f"{value:.{digits}g}"


def _normalise(value: float, count: Optional[float], time_like: bool) -> Optional[float]:
    """Time: resource-minutes (value x count). Throughput: per resource (value / count)."""
    if not count:
        return None
    return value * count if time_like else value / count


def comparison_table(comparison: Comparison, mode: str) -> tuple[list[str], list[list[str]]]:
    """One row per (result, system): its metric and score, per node/socket/core/core-GHz values
    (none for a latency), speed-ups vs the base with intervals, and whether the two are comparable."""
    time_like = mode in (vocabulary.TTA, vocabulary.THROUGHPUT)
    per = (("node-min", "socket-min", "core-min", "core-GHz-min") if time_like
           else ("/node", "/socket", "/core", "/core-GHz"))
    base = comparison.base
    headers = ["benchmark", "configuration", "system", "runs", "metric", "score", *per[:3], "clock", per[3],
               f"speed-up vs {base.label} [{CONFIDENCE:.0%} CI]", "per-core speed-up", "per-core-GHz speed-up",
               "comparable"]
    rows = []
    for row in comparison.results[mode]:
        result, system = row.result, row.system
        resources = system.resources(result.config.get("nodes") or 1)
        latency = is_latency(result)
        node, socket, core, core_ghz = (None if latency else _normalise(result.score.value, resources[r], time_like)
                                        for r in ("node", "socket", "core", "core-GHz"))
        clock = system.clock()
        rows.append([result.benchmark, config_text(result.config), system.label,
                     str(result.score.runs) + ("" if result.score.valid else "*"), result.metric,
                     _fmt(result.score.value), _fmt(node), _fmt(socket), _fmt(core),
                     str(clock) if clock else UNKNOWN, _fmt(core_ghz, missing="-" if latency else UNKNOWN),
                     *(str(s) if s else "-" for s in (row.speedup, row.per_core, row.per_core_ghz)),
                     "base" if system is base else row.comparable_text])
    return headers, rows


def systems_table(systems: Sequence[SystemResults]) -> tuple[list[str], list[list[str]]]:
    """What each system is: processor, cores, the clock per core-GHz uses, and its software."""
    headers = ["system", "results root", "processor", "microarchitecture", "sockets/node x cores/socket",
               "clock (per core-GHz)", *SOFTWARE.values()]
    rows = []
    for system in systems:
        d = system.description or {}
        clock = system.clock()
        rows.append([system.label, str(system.root), str(d.get("host_processor_model_name", UNKNOWN)),
                     str((d.get("cpu") or {}).get("microarchitecture", UNKNOWN)),
                     f"{d.get('host_processors_per_node', UNKNOWN)} x {d.get('host_processor_core_count', UNKNOWN)}",
                     str(clock) if clock else UNKNOWN, *system.software().values()])
    return headers, rows


def comparability_lines(comparison: Comparison, markdown: bool = True) -> list[str]:
    """Per system against the base: comparable, or not comparable because of which differences
    (software once, then each matched result's own), as bullets (the pair in bold in markdown)."""
    base, lines, bold = comparison.base, [], "**" if markdown else ""
    for system in comparison.systems[1:]:
        matched = [row for rows in comparison.results.values() for row in rows
                   if row.system is system and row.differences is not None]
        head = f"- {bold}{system.label} vs {base.label} (base){bold}"
        if not matched:
            lines.append(f"{head}: no result in common with the base")
            continue
        software = software_differences(base, system)
        own = [(row, [d for d in row.differences if d not in software]) for row in matched]
        if not software and not any(diffs for _, diffs in own):
            lines.append(f"{head}: comparable: the same software, quality thresholds, data and model "
                         f"in the {len(matched)} result(s) both have")
        else:
            lines.append(f"{head}: not comparable because")
            lines += [f"  - software: {d}" for d in software]
            lines += [f"  - {row.result.benchmark} {row.result.mode} {config_text(row.result.config)}: "
                      f"{'; '.join(map(str, diffs))}" for row, diffs in own if diffs]
        lines += _clock_note(base, system)
    return lines


def _clock_note(base: SystemResults, system: SystemResults) -> list[str]:
    """A caveat when per core-GHz divides the two systems by clocks of different kinds."""
    ours, theirs = system.clock(), base.clock()
    if ours and theirs and ours.source != theirs.source:
        return [f"  - note: per core-GHz divides {base.label} by its {theirs.source} clock and "
                f"{system.label} by its {ours.source} clock"]
    return []


def steady_epoch_seconds(scored: ScoredResult) -> list[float]:
    """Mean epoch time after the first epoch, per successful run of an epoch-time result, as
    each run's MLPerf log times its epochs (the summaries are not trusted for numbers)."""
    from benchmark.trainer import steady_epochs
    from harness.mlperf_log import read_timing

    out = []
    for path in scored.paths:
        try:
            timing = read_timing(Path(path).with_suffix(".txt"))
        except (OSError, ValueError):
            continue
        later = steady_epochs(timing.epochs)
        if later and timing.status == "success":
            out.append(float(np.mean([e.seconds for e in later])))
    return out


def epoch_time_table(systems: list[SystemResults]) -> tuple[list[str], list[list[str]]]:
    """Epoch time at each node count, per system (the plain numbers behind the speed-ups)."""
    headers = ["benchmark", "configuration", "system", "runs", "epoch s (olympic mean)", "min", "max"]
    rows = []
    for system in systems:
        for scored in system.scored:
            if scored.mode != vocabulary.EPOCH_TIME:
                continue
            seconds = steady_epoch_seconds(scored)
            if seconds:
                rows.append([scored.benchmark, config_text(scored.config), system.label, str(len(seconds)),
                             _fmt(olympic_mean(seconds)), _fmt(min(seconds)), _fmt(max(seconds))])
    return headers, sorted(rows)


def repeated_runs_table(systems: list[SystemResults]) -> tuple[list[str], list[list[str]]]:
    """Each inference result of more than one run, with its runs' range: a score that averages
    runs far apart (a Server rate on a shared VM) says so here."""
    headers = ["benchmark", "configuration", "system", "runs", "metric", "score", "min", "max"]
    rows = []
    for system in systems:
        for scored in system.scored:
            values = scored.score.values or []
            if scored.mode == vocabulary.INFERENCE and len(values) > 1:
                rows.append([scored.benchmark, config_text(scored.config), system.label, str(len(values)),
                             scored.metric, _fmt(scored.score.value), _fmt(min(values)), _fmt(max(values))])
    return headers, sorted(rows)


def render(comparison: Comparison, markdown: bool, plots: Sequence[Path] = (),
           links_from: Path = Path(".")) -> str:
    """The whole comparison as text or markdown: the systems, what makes them not comparable,
    one table per kind of result, and the plots (markdown images linked relative to `links_from`,
    the folder of the file the report goes to)."""
    from tabulate import tabulate

    fmt = "github" if markdown else "simple"

    def section(title: str, body: str) -> str:
        return f"## {title}\n\n{body}\n" if markdown else f"{title}\n{'=' * len(title)}\n{body}\n"

    def table(headers_rows: tuple[list[str], list[list[str]]]) -> str:
        headers, rows = headers_rows
        return tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True) if rows else "(no results)"

    parts = [f"Base: {comparison.base.label}. Speed-up > 1 is faster than the base, with its "
             f"{CONFIDENCE:.0%} bootstrap interval over runs; '*' marks results with too few runs. "
             "Per core-GHz divides by the clock in the systems table: cpufreq's base clock, else its "
             "max, else /proc/cpuinfo's 'cpu MHz' (a VM's only figure, labelled).\n",
             section("Systems", table(systems_table(comparison.systems))),
             section("Comparability", "\n".join(comparability_lines(comparison, markdown))
                     or "(one system only)")]
    for mode, title in SECTIONS:
        parts.append(section(title, table(comparison_table(comparison, mode))))
        if mode == vocabulary.EPOCH_TIME:
            parts.append(section("Epoch time", table(epoch_time_table(comparison.systems))))
        if mode == vocabulary.INFERENCE and (repeated := repeated_runs_table(comparison.systems))[1]:
            parts.append(section("Inference results of several runs", table(repeated)))
    if plots:
        links = [os.path.relpath(path, links_from) for path in plots]
        parts.append(section("Plots", "\n\n".join(f"![{Path(link).stem}]({link})" for link in links)
                             if markdown else "\n".join(links)))
    return "\n".join(parts)


# -- plots -----------------------------------------------------------------------------------
def _save_figure(figure, path: Path) -> Path:
    from reference_model.atomic_files import write_file_atomic

    return write_file_atomic(path, lambda tmp: figure.savefig(tmp, dpi=120, bbox_inches="tight"))


def write_plots(comparison: Comparison, directory: Path) -> list[Path]:
    """Speed-ups against the base (raw, per core, per core-GHz, with intervals), scaling curves
    (samples/s against ranks) and inference throughput against streams, per benchmark."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    benchmarks = sorted({row.result.benchmark for rows in comparison.results.values() for row in rows})
    for benchmark in benchmarks:
        figure = _speedup_figure(plt, comparison, benchmark)
        if figure is not None:
            written.append(_save_figure(figure, Path(directory) / f"speedups_{benchmark}.png"))
            plt.close(figure)
    systems = comparison.systems
    series_specs = ((vocabulary.EPOCH_TIME, "ranks", "training throughput against ranks", "scaling"),
                    (vocabulary.INFERENCE, "streams", "inference throughput against streams", "streams"))
    for mode, x_name, title, stem in series_specs:
        benchmarks = sorted({s.benchmark for sys_ in systems for s in sys_.scored
                             if s.mode == mode and not is_latency(s)})
        for benchmark in benchmarks:
            figure, axis = plt.subplots(figsize=(6.4, 4.2))
            for system in systems:
                lines: dict[str, list[tuple[float, float, float, float]]] = {}
                for scored in system.scored:
                    if (scored.mode != mode or scored.benchmark != benchmark or not scored.score.values
                            or is_latency(scored)):
                        continue
                    config = dict(scored.config)
                    if mode == vocabulary.EPOCH_TIME:
                        x = (config.get("nodes") or 1) * (config.get("ranks_per_node") or 1)
                        label = f"{system.label} batch/rank={config.get('per_rank_batch')} {config.get('precision')}"
                    else:
                        x = config.get("streams")
                        if x is None:
                            continue
                        label = (f"{system.label} {config.get('scenario')} {config.get('precision')} "
                                 f"batch={config.get('batch_size')}")
                    values = scored.score.values
                    lines.setdefault(label, []).append((x, scored.score.value, min(values), max(values)))
                for label, points in sorted(lines.items()):
                    points.sort()
                    xs, ys, lows, highs = (np.array(col, dtype=float) for col in zip(*points))
                    axis.errorbar(xs, ys, yerr=[ys - lows, highs - ys], marker="o", capsize=3, label=label)
            axis.set_xlabel(x_name)
            axis.set_ylabel("samples / s")
            axis.set_title(f"{benchmark}: {title}")
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)
            written.append(_save_figure(figure, Path(directory) / f"{stem}_{benchmark}.png"))
            plt.close(figure)
    return written


def _speedup_figure(plt, comparison: Comparison, benchmark: str):
    """Horizontal speed-ups with their intervals, one line per compared result (None: nothing to plot)."""
    rows = [row for mode, _ in SECTIONS for row in comparison.results[mode]
            if row.result.benchmark == benchmark and row.speedup is not None]
    if not rows:
        return None
    figure, axis = plt.subplots(figsize=(7.5, 1.5 + 0.5 * len(rows)))
    kinds = (("raw", "speedup", "o", -0.2), ("per core", "per_core", "s", 0.0),
             ("per core-GHz", "per_core_ghz", "^", 0.2))
    for name, attribute, marker, offset in kinds:
        points = [(y + offset, s) for y, row in enumerate(rows) if (s := getattr(row, attribute)) is not None]
        if not points:
            continue
        ys = [y for y, _ in points]
        ratios = np.array([s.ratio for _, s in points])
        lows = np.array([s.interval[0] if s.interval else s.ratio for _, s in points])
        highs = np.array([s.interval[1] if s.interval else s.ratio for _, s in points])
        axis.errorbar(ratios, ys, xerr=[ratios - lows, highs - ratios], fmt=marker, capsize=3, label=name)
    axis.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    axis.set_yticks(range(len(rows)))
    axis.set_yticklabels([f"{row.system.label}: {row.result.mode} {config_text(row.result.config)}"
                          + ("" if not row.differences else " (NOT COMPARABLE)") for row in rows], fontsize=7)
    axis.invert_yaxis()
    axis.set_xlabel(f"speed-up vs {comparison.base.label} ({CONFIDENCE:.0%} CI)")
    axis.set_title(f"{benchmark}: speed-up against the base")
    axis.grid(alpha=0.3, axis="x")
    axis.legend(fontsize=7)
    return figure
