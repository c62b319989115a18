"""The validation report: comparison plots like the source slides' and a markdown page linking them.

Reference (Geant4 or stand-in) and candidate are overlaid on the same axes: sampling fraction
against primary energy, longitudinal and transverse profiles per energy bin, the moment and
hit distributions, and the measured angle per angle bin for the angle geometry. Every file is
written to a temporary name and renamed, so a report directory never holds half a plot.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import numpy as np

from benchmark.quality import QualityReport, bin_label
from reference_model.atomic_files import write_file_atomic, write_text_atomic
from reference_model.physics import ANGLE_BINS_DEG, AXES, MOMENT_ORDERS, angle_bin_masks

REFERENCE_STYLE = {"color": "tab:blue", "label": "reference"}
CANDIDATE_STYLE = {"color": "tab:red", "label": "candidate"}


def _save_figure(figure, path: Path) -> None:
    """Lay out, write whole-or-absent (a temporary name renamed into place), and free the figure."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    write_file_atomic(path, lambda tmp: figure.savefig(tmp, dpi=100))
    plt.close(figure)


def _bins(report: QualityReport) -> list[tuple[str, np.ndarray]]:
    n = report.events_per_bin
    return [(bin_label(low, high), np.arange(i * n, (i + 1) * n))
            for i, (low, high) in enumerate(report.energy_bins_gev)]


def _grid(count: int) -> tuple[int, int]:
    cols = min(count, 3)
    return math.ceil(count / cols), cols


def _histogram_pair(ax, reference: np.ndarray, candidate: np.ndarray, bins: int = 30) -> None:
    values = np.concatenate([reference, candidate])
    values = values[np.isfinite(values)]
    low, high = (np.quantile(values, [0.005, 0.995]) if len(values) else (0.0, 1.0))
    if not high > low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    ax.hist(np.clip(reference, low, high), bins=edges, histtype="step", density=True, **REFERENCE_STYLE)
    ax.hist(np.clip(candidate, low, high), bins=edges, histtype="step", density=True, **CANDIDATE_STYLE)


def plot_sampling_fraction(report: QualityReport, path: Path) -> None:
    """Sampling fraction against primary energy: every shower, and the mean per energy bin."""
    import matplotlib.pyplot as plt

    ref, cand = report.reference, report.candidate
    figure, ax = plt.subplots(figsize=(7, 4.5))
    for features, style, marker in ((ref, REFERENCE_STYLE, "o"), (cand, CANDIDATE_STYLE, "s")):
        ax.scatter(features.energy_gev, features.sampling_fraction, s=3, alpha=0.25, color=style["color"])
        means = [(features.energy_gev[i].mean(), features.sampling_fraction[i].mean(),
                  features.sampling_fraction[i].std() / math.sqrt(len(i))) for _, i in _bins(report)]
        e, sf, err = map(np.array, zip(*means))
        ax.errorbar(e, sf, yerr=err, fmt=marker, capsize=3, **style)
    ax.set_xlabel("primary energy E [GeV]")
    ax.set_ylabel("sampling fraction (ECAL sum / E)")
    ax.set_title("Sampling fraction")
    ax.legend()
    _save_figure(figure, path)


def plot_profiles(report: QualityReport, axes: tuple[str, ...], path: Path, title: str) -> None:
    """Mean energy profile along the given axes, one panel per energy bin (and axis)."""
    import matplotlib.pyplot as plt

    bins = _bins(report)
    figure, grid = plt.subplots(len(bins), len(axes), figsize=(4.5 * len(axes), 2.8 * len(bins)),
                                squeeze=False)
    for row, (label, index) in enumerate(bins):
        for col, axis in enumerate(axes):
            ax = grid[row][col]
            for features, style in ((report.reference, REFERENCE_STYLE), (report.candidate, CANDIDATE_STYLE)):
                profile = features.shapes[axis][index].mean(axis=0)
                ax.step(np.arange(len(profile)), np.where(profile > 0, profile, np.nan), where="mid", **style)
            ax.set_yscale("log")
            ax.set_title(f"{label} GeV: along {axis}", fontsize=9)
            ax.set_xlabel(f"{axis} cell index")
            ax.set_ylabel("mean energy [GeV]")
    grid[0][0].legend(fontsize=8)
    figure.suptitle(title)
    _save_figure(figure, path)


def plot_moments(report: QualityReport, path: Path) -> None:
    """Distributions of the moments M1-M3 along x, y, z over all compared showers."""
    import matplotlib.pyplot as plt

    figure, grid = plt.subplots(len(AXES), len(MOMENT_ORDERS), figsize=(12, 9))
    for row, axis in enumerate(AXES):
        for col, k in enumerate(MOMENT_ORDERS):
            ax = grid[row][col]
            _histogram_pair(ax, report.reference.moments[axis][:, col], report.candidate.moments[axis][:, col])
            ax.set_title(f"M{k} along {axis}", fontsize=9)
    grid[0][0].legend(fontsize=8)
    figure.suptitle("Shower moments (0-based index; central for k >= 2)")
    _save_figure(figure, path)


def plot_hits(report: QualityReport, path: Path) -> None:
    """Number of cells above the hit threshold, one panel per energy bin."""
    import matplotlib.pyplot as plt

    bins = _bins(report)
    rows, cols = _grid(len(bins))
    figure, grid = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, (label, index) in zip(grid.flat, bins):
        _histogram_pair(ax, report.reference.hits[index], report.candidate.hits[index], bins=25)
        ax.set_title(f"{label} GeV", fontsize=9)
        ax.set_xlabel("hits (cells above threshold)")
    for ax in list(grid.flat)[len(bins):]:
        ax.set_visible(False)
    grid[0][0].legend(fontsize=8)
    figure.suptitle("Hits")
    _save_figure(figure, path)


def plot_measured_angle(report: QualityReport, path: Path) -> None:
    """Measured angle per analysis angle bin (62, 90, 118 degrees +- 0.1 rad)."""
    import matplotlib.pyplot as plt

    figure, grid = plt.subplots(1, len(ANGLE_BINS_DEG), figsize=(13, 3.8), squeeze=False)
    ref_bins = angle_bin_masks(report.reference.theta_rad)
    cand_bins = angle_bin_masks(report.candidate.theta_rad)
    for ax, centre in zip(grid[0], ANGLE_BINS_DEG):
        ref = np.degrees(report.reference.measured_angle[ref_bins[centre]])
        cand = np.degrees(report.candidate.measured_angle[cand_bins[centre]])
        if len(ref) and len(cand):
            _histogram_pair(ax, ref, cand, bins=20)
        ax.set_title(f"theta = {centre:g} deg +- 0.1 rad ({len(ref)} / {len(cand)} showers)", fontsize=9)
        ax.set_xlabel("measured angle [deg]")
    grid[0][0].legend(fontsize=8)
    _save_figure(figure, path)


def _markdown(report: QualityReport, plots: dict[str, str], context: dict[str, str]) -> str:
    verdict = "PASS" if report.passed else "FAIL"
    lines = [f"# 3DGAN physics validation: {report.benchmark}", "",
             f"**{verdict}**: {report.failed_summary()}.", ""]
    if report.smoke:
        lines += ["> **SMOKE TARGET: not submittable.** These thresholds exist only for tests and "
                  "`--smoke` runs.", ""]
    lines += [f"- thresholds: `{report.thresholds_version}` "
              f"({'submittable' if report.submittable else 'not submittable'})",
              f"- compared: {report.events_per_bin} showers per energy bin, bins "
              + ", ".join(f"{lo:g}-{hi:g} GeV" for lo, hi in report.energy_bins_gev)]
    lines += [f"- {key}: `{value}`" for key, value in context.items()]
    lines += ["", "## Metrics", "", "| metric | value | threshold | result |", "|---|---:|---:|---|"]
    for r in report.results:
        threshold = "" if r.threshold is None else f"{r.threshold:.4g}"
        result = "info" if r.passed is None else ("PASS" if r.passed else "**FAIL**")
        lines.append(f"| {r.name} | {r.value:.4g} | {threshold} | {result} |")
    shifts = report.failure_shifts()
    if shifts:
        lines += ["", "## What differs where a separation power fails", "",
                  "| metric | candidate mean - reference mean | in reference sd | spread (sd ratio) |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {name} | {s.mean_difference:+.4g} | {s.standardised_difference:+.2f} | {s.spread_ratio:.2f}x |"
                  for name, s in shifts]
    lines += ["", "## Plots (reference blue, candidate red)", ""]
    for title, name in plots.items():
        lines += [f"### {title}", "", f"![{title}]({name})", ""]
    return "\n".join(lines)


def write_report(report: QualityReport, out_dir: Path, context: Optional[dict[str, str]] = None) -> Path:
    """Write the PNG plots, `quality.json` and `report.md` into `out_dir`; return the markdown path."""
    import matplotlib

    matplotlib.use("Agg")
    if report.reference is None or report.candidate is None:
        raise ValueError("the quality report carries no shower features to plot")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = {"Sampling fraction against primary energy": "sampling_fraction.png",
             "Longitudinal profiles": "longitudinal_profiles.png",
             "Transverse profiles": "transverse_profiles.png",
             "Moments": "moments.png", "Hits": "hits.png"}
    plot_sampling_fraction(report, out_dir / plots["Sampling fraction against primary energy"])
    plot_profiles(report, ("z",), out_dir / plots["Longitudinal profiles"], "Longitudinal profiles (depth)")
    plot_profiles(report, ("x", "y"), out_dir / plots["Transverse profiles"], "Transverse profiles")
    plot_moments(report, out_dir / plots["Moments"])
    plot_hits(report, out_dir / plots["Hits"])
    if report.reference.theta_rad is not None and report.candidate.theta_rad is not None:
        plots["Measured angle per angle bin"] = "measured_angle.png"
        plot_measured_angle(report, out_dir / plots["Measured angle per angle bin"])
    write_text_atomic(out_dir / "quality.json", json.dumps(report.to_dict(), indent=1) + "\n")
    markdown = out_dir / "report.md"
    write_text_atomic(markdown, _markdown(report, plots, context or {}))
    return markdown

