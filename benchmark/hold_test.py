"""Does a target hold? A generator judged on many fresh evaluation samples, not one.

A time-to-accuracy target must pass the reference that set it whatever held-out events a run is
given, so the margin has to cover the evaluation sample's own noise. The hold test measures
that: the generator is judged against the target on stand-in sets of seeds no campaign, shipping
check or test uses (CALIBRATION.md, "v3 limits: the rule": calibration seeds 4001-4020 feed the
limits, validation seeds 5001-5020 test them), one `harness data synth`-sized set per seed.

The record keeps every metric of every seed (gated or reported), so the same run serves as the
calibration seeds' input to the v3 limits. It is rewritten atomically after each seed and a run
that stops resumes at the next seed, provided generator and target are the same files.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Callable, Optional

from reference_model.errors import InputError

CALIBRATION_SEEDS = tuple(range(4001, 4021))
VALIDATION_SEEDS = tuple(range(5001, 5021))
REQUIRED_PASS_RATE = 0.95  # issue 22: the reference passes on at least 95% of fresh samples
RECORD_INFIX = ".holdtest-"


def parse_seeds(text: str) -> tuple[int, ...]:
    """'5001-5020' or '99,101-107' -> the seeds, in order, each once."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        low, dash, high = part.partition("-")
        try:
            span = range(int(low), int(high) + 1) if dash else (int(low),)
        except ValueError:
            raise InputError(f"--seeds {text!r}: write seeds as 5001-5020 or 99,101-107") from None
        if not span:
            raise InputError(f"--seeds {text!r}: the range {part} is empty; write low-high")
        seeds.extend(s for s in span if s not in seeds)
    return tuple(seeds)


def used_seeds() -> dict[int, str]:
    """Data seeds some campaign or the shipping check already uses: never fresh (the angle
    campaign's too, whose recipe waits for the recipe study but whose data seeds are fixed)."""
    from benchmark.recipe import reference_data
    from benchmark.ship import VALIDATION_DATA_SEEDS
    from reference_model.specs import BENCHMARKS

    used = {seed: f"the {benchmark} shipping validation set" for benchmark, seed in VALIDATION_DATA_SEEDS.items()}
    for name in BENCHMARKS:
        data = reference_data(name)
        used[data.train_data_seed] = f"the {name} campaign's training set"
        used[data.heldout_data_seed] = f"the {name} campaign's held-out set"
    return used


def required_passes(seeds: int) -> int:
    return math.ceil(REQUIRED_PASS_RATE * seeds - 1e-9)


def record_path(candidate: Path, target_name: str) -> Path:
    """Where a hold test is recorded by default: beside the generator, one file per target."""
    stem = candidate.name.removesuffix(".weights.h5")
    return candidate.with_name(f"{stem}{RECORD_INFIX}{target_name}.json")


@dataclass(frozen=True)
class HoldTest:
    """A hold-test record (the JSON document) read back, with its verdict."""

    document: dict

    @property
    def seeds(self) -> list[int]:
        return sorted(int(s) for s in self.document["seeds"])

    @property
    def passes(self) -> int:
        return sum(v["passed"] for v in self.document["seeds"].values())

    @property
    def complete(self) -> bool:
        return len(self.seeds) == len(self.document["planned_seeds"])

    @property
    def holds(self) -> bool:
        return self.complete and self.passes >= required_passes(len(self.seeds))

    def summary(self) -> str:
        n = len(self.seeds)
        rate = f"{self.passes} of {n} fresh evaluation samples ({self.passes / n:.0%})" if n else "no seeds yet"
        verdict = ("holds" if self.holds else "does not hold") if self.complete else \
            f"incomplete: {n} of {len(self.document['planned_seeds'])} seeds judged"
        return (f"passes {self.document['target']} on {rate}; needs {required_passes(n)} of {n}: "
                f"{verdict}")

    def failing_counts(self) -> dict[str, int]:
        """How many seeds each gated metric failed on."""
        counts: dict[str, int] = {}
        for verdict in self.document["seeds"].values():
            for name in verdict["failed"]:
                counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def worst(self, name: str) -> float:
        """The metric's largest value over the judged seeds."""
        return max(v["metrics"][name] for v in self.document["seeds"].values())


def read_record(path: Path) -> Optional[HoldTest]:
    import json

    try:
        return HoldTest(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError) as err:
        raise InputError(f"{path}: damaged hold-test record ({err}); delete it and run the hold test again") from None


def _fresh_document(candidate: Path, card: dict, thresholds, seeds: tuple[int, ...], command: str) -> dict:
    from benchmark.provenance import suite_relative

    return {"candidate": suite_relative(candidate), "candidate_sha256": card["sha256"],
            "benchmark": thresholds.benchmark, "target": thresholds.version, "target_sha256": thresholds.sha256,
            "events": thresholds.evaluation_events, "planned_seeds": list(seeds),
            "required_pass_rate": REQUIRED_PASS_RATE, "command": command, "seeds": {}}


def _resumable(previous: Optional[HoldTest], fresh: dict) -> bool:
    """A record continues only for the same generator, target and plan."""
    if previous is None:
        return False
    keys = ("candidate_sha256", "target_sha256", "events", "planned_seeds")
    return all(previous.document.get(k) == fresh[k] for k in keys)


def run_hold_test(candidate: Path, thresholds, seeds: tuple[int, ...], data_dir: Path, record: Path,
                  keep_data: bool = False, command: str = "",
                  on_seed: Callable[[int, dict], None] = lambda seed, verdict: None) -> HoldTest:
    """Judge `candidate` against `thresholds` on a fresh stand-in set per seed; record every seed."""
    from benchmark import quality
    from reference_model.atomic_files import write_json_atomic
    from reference_model.checkpoint import load_generator, read_card
    from reference_model.simulator import ensure_dataset

    used = used_seeds()
    for seed in seeds:
        if seed in used:
            raise InputError(f"--seeds: {seed} is {used[seed]}, not a fresh sample; use seeds no campaign "
                             f"uses (the rule's: {CALIBRATION_SEEDS[0]}-{CALIBRATION_SEEDS[-1]} calibration, "
                             f"{VALIDATION_SEEDS[0]}-{VALIDATION_SEEDS[-1]} validation)")
    spec, generator = load_generator(candidate)  # SHA-256 and architecture verified
    if spec.benchmark != thresholds.benchmark:
        raise InputError(f"--candidate {candidate}: a {spec.benchmark} generator, but the target "
                         f"{thresholds.version} is {thresholds.benchmark}'s")
    document = _fresh_document(candidate, read_card(candidate), thresholds, seeds, command)
    previous = read_record(record)
    if _resumable(previous, document):
        document["seeds"] = previous.document["seeds"]
    for seed in seeds:
        if str(seed) in document["seeds"]:
            continue
        directory = ensure_dataset(Path(data_dir) / f"fresh-{spec.geometry}-seed{seed}", thresholds.evaluation_events,
                                   geometry=spec.geometry, seed=seed, progress=False)
        reference = quality.load_evaluation_showers(directory, thresholds, f"fresh set seed {seed}")
        report = quality.evaluate_generator(partial(generator, training=False), spec, reference, thresholds)
        summary = report.to_dict()
        verdict = {"passed": summary["passed"], "failed": summary["failed"], "shifts": summary["shifts"],
                   "metrics": {name: m["value"] for name, m in summary["metrics"].items()},
                   "judged": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        document["seeds"][str(seed)] = verdict
        write_json_atomic(record, document)
        if not keep_data:
            shutil.rmtree(directory, ignore_errors=True)
        on_seed(seed, verdict)
    return HoldTest(document)


def recorded_for(candidate: Path, thresholds) -> Optional[HoldTest]:
    """The hold test on record beside `candidate` for exactly this generator and target, if any."""
    from reference_model.checkpoint import read_card, resolve_checkpoint

    weights = resolve_checkpoint(candidate)
    found = read_record(record_path(weights, thresholds.name))
    if found is None or found.document.get("target_sha256") != thresholds.sha256 \
            or found.document.get("candidate_sha256") != read_card(weights).get("sha256"):
        return None
    return found
