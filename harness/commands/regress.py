"""`harness regress ROOT --baseline FILE`: whole-benchmark results against a saved baseline.

The baseline is what `harness summarize ROOT --json` printed for an earlier tree. A result
regresses when we are confident it got worse by more than the tolerance: the upper end of
the bootstrap confidence interval of (current performance / baseline performance) is below
1 - tolerance. With a single run on either side there is no interval and the point value is
used, so single-run CI jobs should use a tolerance above their run-to-run noise.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from harness.scoring import ScoredResult, bootstrap_ratio

DEFAULT_TOLERANCE = 0.10


@dataclass
class Verdict:
    result: ScoredResult
    baseline: ScoredResult
    change: Optional[float]  # current / baseline performance; > 1 is better
    interval: Optional[tuple[float, float]]
    regressed: bool


def _performance_ratio(current: ScoredResult, baseline: ScoredResult, confidence: float):
    """current vs baseline performance (time inverted), and its bootstrap interval."""
    if current.score.value is None or baseline.score.value is None:
        return None, None
    if current.better == "lower":
        return (baseline.score.value / current.score.value,
                bootstrap_ratio(baseline.score.values, current.score.values, confidence=confidence))
    return (current.score.value / baseline.score.value,
            bootstrap_ratio(current.score.values, baseline.score.values, confidence=confidence))


def compare_to_baseline(baseline: list[ScoredResult], current: list[ScoredResult], tolerance: float,
                        confidence: float = 0.95) -> tuple[list[Verdict], list[ScoredResult]]:
    """Verdicts for results in both, and the baseline results missing from the current tree.

    Results match on benchmark, mode and configuration, and on the system too unless each
    side holds a single system (a CI runner's name may change between runs)."""
    with_system = len({r.system for r in baseline}) > 1 or len({r.system for r in current}) > 1
    by_key = {r.key(with_system): r for r in current}
    verdicts, missing = [], []
    for base in baseline:
        result = by_key.get(base.key(with_system))
        if result is None:
            missing.append(base)
            continue
        change, interval = _performance_ratio(result, base, confidence)
        upper = interval[1] if interval else change
        regressed = change is None or upper < 1.0 - tolerance
        verdicts.append(Verdict(result, base, change, interval, regressed))
    return verdicts, missing


def load_baseline(path: Path) -> list[ScoredResult]:
    from reference_model.errors import InputError

    try:
        data = json.loads(Path(path).read_text())
        return [ScoredResult.from_dict(entry) for entry in data]
    except FileNotFoundError:
        raise InputError(f"--baseline {path}: no such file; save one with "
                         "`harness summarize ROOT --json > FILE`") from None
    except (json.JSONDecodeError, TypeError, KeyError) as err:
        raise InputError(f"--baseline {path}: not a `harness summarize --json` file ({err}); "
                         "regenerate it") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "regress", help="compare a results tree with a saved baseline (exit 1 on a regression)",
        description="Compare the scored results of ROOT with a baseline saved by "
                    "`harness summarize ROOT --json > FILE`. A result regresses when the upper end "
                    "of the bootstrap confidence interval of current/baseline performance is below "
                    "1 - tolerance (single runs: the point value). Exit 1 on any regression or on a "
                    "baseline result missing from ROOT.")
    parser.add_argument("root", help="results root to judge (holds systems/ and results/)")
    parser.add_argument("--baseline", required=True, metavar="FILE",
                        help="JSON from `harness summarize OLD_ROOT --json`")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="allowed loss of performance as a fraction (default 0.10 = 10%%)")
    parser.add_argument("--confidence", type=float, default=0.95, help="bootstrap interval (default 0.95)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from harness import results
    from harness.comparison import config_text
    from harness.scoring import score_tree
    from reference_model.errors import InputError

    if not 0 <= args.tolerance < 1:
        raise InputError(f"--tolerance {args.tolerance}: a fraction in [0, 1), e.g. 0.1 for 10%")
    if not 0 < args.confidence < 1:
        raise InputError(f"--confidence {args.confidence}: a probability in (0, 1), e.g. 0.95")
    results.require_root(args.root)
    verdicts, missing = compare_to_baseline(load_baseline(args.baseline), score_tree(Path(args.root)),
                                            args.tolerance, args.confidence)
    rows = []
    for v in verdicts:
        ci = f" [{v.interval[0]:.3g}, {v.interval[1]:.3g}]" if v.interval else ""
        rows.append((v.result.benchmark, v.result.mode, config_text(v.result.config), v.result.metric,
                     f"{v.baseline.score.value:.4g}" if v.baseline.score.value is not None else "-",
                     f"{v.result.score.value:.4g}" if v.result.score.value is not None else "-",
                     f"{v.change:.3g}x{ci}" if v.change is not None else "-",
                     "REGRESSED" if v.regressed else "ok"))
    rows += [(m.benchmark, m.mode, config_text(m.config), m.metric, f"{m.score.value}", "-", "-", "MISSING")
             for m in missing]
    print(tabulate(rows, headers=("benchmark", "mode", "configuration", "metric", "baseline", "current",
                                  "performance vs baseline", "verdict")))
    failed = sum(v.regressed for v in verdicts) + len(missing)
    print(f"harness regress: {failed} of {len(verdicts) + len(missing)} result(s) regressed or missing "
          f"(tolerance {args.tolerance:.0%}, {args.confidence:.0%} interval)")
    return 1 if failed else 0
