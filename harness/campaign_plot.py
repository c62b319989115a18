"""The campaign's curve as a figure: what CALIBRATION.md shows and a reader checks the v2 rule on.

Three panels against training samples: the 3DGAN papers' objective and its terms; the physics
v2 gates (mean sampling-fraction error, energy-weighted profile distances), each beside its
noise-floor limit; and how many of the noise-floor checks fail, of all and of the v2-gated.
Session starts are marked with the commit each session ran, so a change of code mid-campaign is
visible on the curve; the budget and the rule's window of last evaluations are drawn. A second
seed's curve is drawn against the release candidate it must reach instead: its limits, the
checks of it failing, and the allowance (1.5 x the reference's budget) it has to reach them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from benchmark import quality
from benchmark.reference_target import REFERENCE_WINDOW, v2_gated_metrics
from reference_model.atomic_files import write_file_atomic
from reference_model.errors import InputError

OBJECTIVE_TERMS = ("objective.total", "objective.moments", "objective.profiles", "objective.sampling_fraction")
PHYSICS_GATES = ("objective.sampling_fraction", "profile_l1.x", "profile_l1.y", "profile_l1.z")


def _series(points: list[dict], name: str) -> tuple[list[int], list[float]]:
    pairs = [(p["samples"], p["metrics"][name]) for p in points if name in p["metrics"]]
    return [s for s, _ in pairs], [v for _, v in pairs]


def _mark_sessions(ax, sessions: list[dict], end: int, eval_every: int, label: bool, window: bool) -> None:
    """Session starts (with their commit), the end (budget or allowance) and the v2 rule's window."""
    for session in sessions[1:]:
        ax.axvline(session["samples_at_start"], color="0.75", lw=0.8, ls=":")
        commit = session.get("suite_commit")
        if label and commit:
            ax.annotate(commit[:7], (session["samples_at_start"], 1.0), xycoords=("data", "axes fraction"),
                        rotation=90, va="top", ha="right", fontsize=7, color="0.45")
    ax.axvline(end, color="k", lw=1.0)
    if window:
        ax.axvspan(end - (REFERENCE_WINDOW - 1) * eval_every, end, color="tab:green", alpha=0.08)


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
    figure, (terms, physics, failing) = plt.subplots(3, 1, figsize=(9, 10), sharex=True)

    for name in OBJECTIVE_TERMS:
        terms.plot(*_series(points, name), marker=".", lw=1.2 if name == "objective.total" else 0.8,
                   label=name.replace("objective.", "") if name != "objective.total" else "objective (total)")
    terms.set_yscale("log")
    terms.set_ylabel("objective (not gated)")
    role = f"reproducing {candidate.name}" if candidate else "reference campaign"
    terms.set_title(f"{document['benchmark']} {role}, seed {document['seed']}: "
                    f"{points[-1]['samples']:,} of {end:,} samples")
    terms.legend(fontsize=8, ncol=2)

    for color, name in zip(("tab:blue", "tab:orange", "tab:green", "tab:red"), PHYSICS_GATES):
        physics.plot(*_series(points, name), marker=".", lw=0.8, color=color, label=name)
        if name in limits.limits:
            physics.axhline(limits.limits[name], color=color, lw=0.8, ls="--")
    physics.set_yscale("log")
    physics.set_ylabel(f"v2-gated physics\n(dashed: {version} limits)")
    physics.legend(fontsize=8, ncol=2)

    gated = [name for name in v2_gated_metrics(thresholds) if name in limits.limits]
    gated_failing = [sum(p["metrics"].get(name, float("inf")) > limits.limits[name] for name in gated)
                     for p in points]
    samples = [p["samples"] for p in points]
    failing.plot(samples, [p["failed"] for p in points], marker=".", label=f"all {thresholds.name} checks")
    failing.plot(samples, gated_failing, marker=".", label=f"v2-gated checks ({len(gated)}), {version} limits")
    failing.set_ylabel("checks failing")
    failing.set_xlabel("training samples")
    failing.legend(fontsize=8)

    for ax in (terms, physics, failing):
        _mark_sessions(ax, sessions, end, every, label=ax is terms, window=candidate is None)
        ax.grid(alpha=0.3)
    failing.set_xlim(0, max(end, samples[-1]) * 1.02)

    figure.tight_layout()
    write_file_atomic(path, lambda tmp: figure.savefig(tmp, dpi=90))
    plt.close(figure)
    return Path(path)
