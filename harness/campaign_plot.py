"""The campaign's curve as a figure: what CALIBRATION.md shows and a reader checks the target rule on.

Three panels against training samples: the 3DGAN papers' objective and its terms; the physics
its target rule gates (3dgan: v2's mean sampling-fraction error and energy-weighted profile
distances; 3dgan-angle: the whole-shower terms its rule gates, the angle's among them), each
beside its noise-floor limit; and how many of the noise-floor checks fail, of all and of the
gated. Session starts are marked with the commit each session ran, so a change of code
mid-campaign is visible on the curve; the budget and the rule's window are drawn. A second
seed's curve is drawn against the release candidate it must reach instead: its limits, the
checks of it failing, and the allowance (1.5 x the reference's budget) it has to reach them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from benchmark import quality, target_v3
from benchmark.recipe import ANGLE_BENCHMARK
from benchmark.reference_target import REFERENCE_WINDOW, v2_gated_metrics
from reference_model.atomic_files import write_file_atomic
from reference_model.errors import InputError

OBJECTIVE_TERMS = ("objective.total", "objective.moments", "objective.profiles", "objective.sampling_fraction",
                   "objective.angle")
V2_PHYSICS_GATES = ("objective.sampling_fraction", "profile_l1.x", "profile_l1.y", "profile_l1.z")
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


@dataclass(frozen=True)
class Gates:
    """What the plot draws as gated for one benchmark: its name on the axes, the whole-shower
    metrics of the middle panel, the metrics counted in the bottom one and the rule's window."""

    label: str
    drawn: tuple[str, ...]
    counted: list[str]
    window: tuple[int, int]  # (low, high] in samples


def gates_for(benchmark: str, thresholds: quality.Thresholds, budget: int, eval_every: int) -> Gates:
    """3dgan: what v2 gates, over v2's last evaluations; 3dgan-angle: what its target rule
    (benchmark.target_v3.RULES) gates, over that rule's window."""
    if benchmark == ANGLE_BENCHMARK:
        rule = target_v3.rule_for(benchmark)
        return Gates(f"{rule.release} rule", rule.gated_whole, target_v3.proposed_metrics(thresholds), rule.window)
    return Gates("v2", V2_PHYSICS_GATES, v2_gated_metrics(thresholds),
                 (budget - REFERENCE_WINDOW * eval_every, budget))


def _series(points: list[dict], name: str) -> tuple[list[int], list[float]]:
    pairs = [(p["samples"], p["metrics"][name]) for p in points if name in p["metrics"]]
    return [s for s, _ in pairs], [v for _, v in pairs]


def _mark_sessions(ax, sessions: list[dict], end: int, eval_every: int, label: bool,
                   window: Optional[tuple[int, int]]) -> None:
    """Session starts (with their commit), the end (budget or allowance) and the rule's window,
    shaded from its first evaluation."""
    for session in sessions[1:]:
        ax.axvline(session["samples_at_start"], color="0.75", lw=0.8, ls=":")
        commit = session.get("suite_commit")
        if label and commit:
            ax.annotate(commit[:7], (session["samples_at_start"], 1.0), xycoords=("data", "axes fraction"),
                        rotation=90, va="top", ha="right", fontsize=7, color="0.45")
    ax.axvline(end, color="k", lw=1.0)
    if window:
        low, high = window
        ax.axvspan((low // eval_every + 1) * eval_every, high, color="tab:green", alpha=0.08)


def plot_campaign(document: dict, thresholds: quality.Thresholds, path: Path,
                  candidate: Optional[quality.Thresholds] = None) -> Path:
    """Draw the curve of one campaign document (benchmark.campaign.Curve) to a PNG at `path`;
    with `candidate`, a second seed's curve against the release candidate it must reach."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = document.get("points") or []
    if not points:
        raise InputError(f"the {document.get('benchmark')} seed {document.get('seed')} campaign has no "
                         "evaluation yet; train past its first interval, then plot")
    from benchmark.recipe import reproduction_samples

    recipe, sessions = document["recipe"], document["sessions"]
    every = recipe["eval_every_samples"]
    end = reproduction_samples(recipe["budget_samples"]) if candidate else recipe["budget_samples"]
    limits = candidate or thresholds  # the dashed limits and the gated checks counted
    version = limits.name
    gates = gates_for(document["benchmark"], thresholds, recipe["budget_samples"], every)
    figure, (terms, physics, failing) = plt.subplots(3, 1, figsize=(9, 10), sharex=True)

    for name, (term_samples, values) in ((term, _series(points, term)) for term in OBJECTIVE_TERMS):
        if not term_samples:
            continue  # a term this benchmark's evaluations do not have (the fixed one has no angle)
        terms.plot(term_samples, values, marker=".", lw=1.2 if name == "objective.total" else 0.8,
                   label=name.replace("objective.", "") if name != "objective.total" else "objective (total)")
    terms.set_yscale("log")
    terms.set_ylabel("objective (not gated)")
    role = f"reproducing {candidate.name}" if candidate else "reference campaign"
    terms.set_title(f"{document['benchmark']} {role}, seed {document['seed']}: "
                    f"{points[-1]['samples']:,} of {end:,} samples")
    terms.legend(fontsize=8, ncol=2)

    for color, name in zip(COLOURS, gates.drawn):
        physics.plot(*_series(points, name), marker=".", lw=0.8, color=color, label=name)
        if name in limits.limits:
            physics.axhline(limits.limits[name], color=color, lw=0.8, ls="--")
    physics.set_yscale("log")
    physics.set_ylabel(f"gated by {gates.label}\n(dashed: {version} limits)")
    physics.legend(fontsize=8, ncol=2)

    gated = [name for name in gates.counted if name in limits.limits]
    gated_failing = [sum(p["metrics"].get(name, float("inf")) > limits.limits[name] for name in gated)
                     for p in points]
    samples = [p["samples"] for p in points]
    failing.plot(samples, [p["failed"] for p in points], marker=".", label=f"all {thresholds.name} checks")
    failing.plot(samples, gated_failing, marker=".",
                 label=f"checks gated by {gates.label} ({len(gated)}), {version} limits")
    failing.set_ylabel("checks failing")
    failing.set_xlabel("training samples")
    failing.legend(fontsize=8)

    for ax in (terms, physics, failing):
        _mark_sessions(ax, sessions, end, every, label=ax is terms, window=None if candidate else gates.window)
        ax.grid(alpha=0.3)
    failing.set_xlim(0, max(end, samples[-1]) * 1.02)

    figure.tight_layout()
    write_file_atomic(path, lambda tmp: figure.savefig(tmp, dpi=90))
    plt.close(figure)
    return Path(path)
