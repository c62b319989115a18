"""Comparing systems (CPU generations): the same results side by side, raw and normalised per
node, socket and core, with speed-ups against the first system and bootstrap confidence
intervals over runs; PNG scaling and throughput-against-streams plots.

Results are matched on benchmark, mode and configuration (harness.scoring.configuration);
a system without a matching result shows no row for it. Speed-up > 1 means faster than the
base system (shorter time to accuracy, more samples per second).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from benchmark import vocabulary
from harness import results
from harness.scoring import ScoredResult, bootstrap_ratio, olympic_mean, score_tree
from reference_model.errors import InputError

CONFIDENCE = 0.95


@dataclass
class SystemResults:
    label: str
    system: str
    root: Path
    description: Optional[dict]
    scored: list[ScoredResult]

    def resources(self, nodes: int) -> dict[str, Optional[int]]:
        """How many nodes, sockets and cores `nodes` nodes of this system have (None: unknown)."""
        d = self.description or {}
        sockets, cores = d.get("host_processors_per_node"), d.get("host_processor_core_count")
        sockets = sockets if isinstance(sockets, int) else None
        cores = cores if isinstance(cores, int) else None
        return {"node": nodes, "socket": nodes * sockets if sockets else None,
                "core": nodes * sockets * cores if sockets and cores else None}


def load_systems(roots: list[Path]) -> list[SystemResults]:
    """Every system of every root, in the order given (the first one is the base)."""
    systems = []
    for root in roots:
        root = Path(root)
        if not (root / "results").is_dir():
            raise InputError(f"{root}: no results/ folder; pass results roots written by `harness run`")
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


def config_text(config: dict) -> str:
    names = {"ranks_per_node": "ranks/node", "per_rank_batch": "batch/rank", "batch_size": "batch",
             "intra_op_threads": "intra", "inter_op_threads": "inter"}
    return " ".join(f"{names.get(k, k)}={v}" for k, v in config.items() if v is not None)


def _fmt(value: Optional[float], digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _ratio_text(ratio: Optional[float], interval: Optional[tuple[float, float]]) -> str:
    if ratio is None:
        return "-"
    ci = f" [{interval[0]:.3g}, {interval[1]:.3g}]" if interval else " [n/a: <2 runs]"
    return f"{ratio:.3g}x{ci}"


def comparison_table(systems: list[SystemResults], mode: str) -> tuple[list[str], list[list[str]]]:
    """One row per (result, system): score, per-node/socket/core values, speed-ups vs the base."""
    time_like = mode in (vocabulary.TTA, vocabulary.THROUGHPUT)
    unit = "min" if time_like else "samples/s"
    per = ("node-min", "socket-min", "core-min") if time_like else ("/node", "/socket", "/core")
    base = systems[0]
    headers = ["benchmark", "configuration", "system", "runs", f"score ({unit})", *per,
               f"speed-up vs {base.label} [{CONFIDENCE:.0%} CI]", "per-core speed-up"]
    keys = sorted({s.key(with_system=False) for sys_ in systems for s in sys_.scored if s.mode == mode})
    rows = []
    for key in keys:
        base_result = _find(base, key)
        for system in systems:
            result = _find(system, key)
            if result is None or result.score.value is None:
                continue
            nodes = result.config.get("nodes") or 1
            resources = system.resources(nodes)
            normalised = [_normalise(result.score.value, resources[r], time_like) for r in ("node", "socket", "core")]
            ratio, interval, per_core = None, None, None
            if base_result is not None and base_result.score.value is not None:
                num, den = (base_result, result) if time_like else (result, base_result)
                ratio = num.score.value / den.score.value
                interval = bootstrap_ratio(num.score.values, den.score.values, confidence=CONFIDENCE)
                base_cores = base.resources(nodes)["core"]
                if resources["core"] and base_cores:
                    per_core = ratio * base_cores / resources["core"]
            rows.append([result.benchmark, config_text(result.config), system.label,
                         str(result.score.runs) + ("" if result.score.valid else "*"),
                         _fmt(result.score.value), *[_fmt(v) for v in normalised],
                         _ratio_text(ratio, interval), _fmt(per_core, 3) + ("x" if per_core else "")])
    return headers, rows


def _find(system: SystemResults, key: str) -> Optional[ScoredResult]:
    return next((s for s in system.scored if s.key(with_system=False) == key), None)


def _normalise(value: float, count: Optional[int], time_like: bool) -> Optional[float]:
    """Time: resource-minutes (value x count). Throughput: per resource (value / count)."""
    if not count:
        return None
    return value * count if time_like else value / count


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


# -- plots -----------------------------------------------------------------------------------
def _save_figure(figure, path: Path) -> Path:
    from reference_model.atomic_files import write_file_atomic

    return write_file_atomic(path, lambda tmp: figure.savefig(tmp, dpi=120, bbox_inches="tight"))


def write_plots(systems: list[SystemResults], directory: Path) -> list[Path]:
    """Scaling curves (samples/s against ranks) and inference throughput against streams."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    series_specs = ((vocabulary.EPOCH_TIME, "ranks", "training throughput against ranks", "scaling"),
                    (vocabulary.INFERENCE, "streams", "inference throughput against streams", "streams"))
    for mode, x_name, title, stem in series_specs:
        benchmarks = sorted({s.benchmark for sys_ in systems for s in sys_.scored if s.mode == mode})
        for benchmark in benchmarks:
            figure, axis = plt.subplots(figsize=(6.4, 4.2))
            for system in systems:
                lines: dict[str, list[tuple[float, float, float, float]]] = {}
                for scored in system.scored:
                    if scored.mode != mode or scored.benchmark != benchmark or not scored.score.values:
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

