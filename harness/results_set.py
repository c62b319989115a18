"""What a CPU's results set holds (issue 24 §1), and what a system in a results tree still lacks.

Every CPU the suite meets gets the same set, so that `harness compare` can put any two side by
side: epoch time at 1 and 2 ranks (3 runs each), a weak-scaling series, the inference sweep, and
LoadGen Offline, SingleStream and Server at the official minimum for every inference precision,
each a counted, submittable run, and the HEP-convention score report (`harness score`, rules.md
section 12: no result, but how a site compares servers). `scripts/measure-results-set.sh PART`
measures one part; a system's gaps name the parts that would fill them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark import vocabulary
from benchmark.vocabulary import INFERENCE_PRECISIONS
from harness import results

BENCHMARK = "3dgan"  # the benchmark a CPU's set is measured on (scripts/measure-results-set.sh)
EPOCH_TIME_RANKS = (1, 2)
EPOCH_TIME_RUNS = 3
# scripts/measure-results-set.sh's part for each piece of the set
LOADGEN_PARTS = {vocabulary.OFFLINE: "offline", vocabulary.SINGLE_STREAM: "stream", vocabulary.SERVER: "server"}
TRAINING_PART, SWEEP_PART, SCORE_PART = "training", "offline", "score"


@dataclass(frozen=True)
class Gap:
    """One piece of a system's results set that is missing, and the script part that measures it."""

    part: str
    what: str
    precisions: tuple[str, ...] = ()  # the LoadGen precisions it lacks; () where the whole part is missing


def gaps(root: Path, system: str) -> list[Gap]:
    """What `system`'s results set under `root` lacks, in the order the script's parts run."""
    from harness.scoring import not_counted

    found = [r for r in results.iter_results(root) if r.system == system and r.benchmark == BENCHMARK
             and r.summary.get("status", "success") == "success" and r.summary.get("submittable") is True]
    missing = []
    for ranks in EPOCH_TIME_RANKS:
        runs = sum(1 for r in found if r.mode == vocabulary.EPOCH_TIME and r.summary.get("nodes") == 1
                   and r.summary.get("ranks_per_node") == ranks)
        if runs < EPOCH_TIME_RUNS:
            missing.append(Gap(TRAINING_PART, f"epoch time at {ranks} rank(s): {runs} of {EPOCH_TIME_RUNS} runs"))
    if not any(r.mode == vocabulary.SCALING and (r.summary.get("arguments") or {}).get("scaling_type") == "weak"
               for r in found):
        missing.append(Gap(TRAINING_PART, "a weak-scaling series"))
    if not any((Path(root) / "results" / system / BENCHMARK / results.SWEEP_FOLDER).glob("sweep_*.json")):
        missing.append(Gap(SWEEP_PART, "the inference sweep"))
    counted = {(r.summary.get("scenario"), (r.summary.get("settings") or {}).get("precision")) for r in found
               if r.mode == vocabulary.INFERENCE and r.summary.get("valid") is True
               and r.summary.get("official_minimum") is True and not not_counted(r)}
    for scenario, part in LOADGEN_PARTS.items():
        lacking = [p for p in INFERENCE_PRECISIONS if (scenario, p) not in counted]
        if lacking:
            missing.append(Gap(part, f"LoadGen {scenario} at the official minimum: {', '.join(lacking)}",
                               tuple(lacking)))
    if not score_report(root, system).is_file():
        missing.append(Gap(SCORE_PART, "the HEP-convention score report"))
    return missing


def score_report(root: Path, system: str) -> Path:
    """Where the script's `score` part writes a system's report (`harness score --out`)."""
    return Path(root) / "score" / f"{system}.json"


def parts_to_measure(missing: list[Gap]) -> list[tuple[str, tuple[str, ...]]]:
    """Each script part that fills a gap, with the only precisions it needs to measure (() for all),
    so a set lacking one precision's Server run costs that run, not all three again."""
    needs: dict[str, set[str] | None] = {}  # None: the whole part
    for gap in missing:
        if not gap.precisions or set(gap.precisions) == set(INFERENCE_PRECISIONS):
            needs[gap.part] = None
        elif needs.setdefault(gap.part, set()) is not None:
            needs[gap.part] |= set(gap.precisions)
    return [(part, () if precisions is None else tuple(p for p in INFERENCE_PRECISIONS if p in precisions))
            for part, precisions in needs.items()]


def systems(root: Path) -> list[str]:
    """The systems a results tree describes (systems/<name>.json)."""
    return sorted(p.stem for p in (Path(root) / "systems").glob("*.json"))


def report(root: Path) -> list[str]:
    """One line per system: its set is complete, or what it lacks and the script parts to run."""
    lines = []
    for system in systems(root):
        missing = gaps(root, system)
        if not missing:
            lines.append(f"results set of {system}: complete")
            continue
        parts = ", ".join(dict.fromkeys(g.part for g in missing))
        lines.append(f"results set of {system} lacks {'; '.join(g.what for g in missing)}; measure them on "
                     f"that CPU: scripts/measure-results-set.sh missing (parts {parts})")
    return lines
