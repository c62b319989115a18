"""The recipe study's curves as one figure: each arm's score at every evaluation, for the trained
generator and its moving average, with the windows the fixed rule judges (CALIBRATION.md, "v3
recipe study") shaded, so a reader can check the stage gate and the pick on the picture."""
from __future__ import annotations

from pathlib import Path

from reference_model.atomic_files import write_file_atomic

COLOURS = {"constant": "tab:blue", "cosine": "tab:orange", "batch128": "tab:green"}


def plot_study(curves: dict[str, dict], limits: dict[str, float], path: Path) -> Path:
    """Draw `curves` (arm -> curve document; arms not started are left out) to the PNG `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmark import recipe_study as study

    figure, ax = plt.subplots(figsize=(9, 4.5))
    for arm, curve in curves.items():
        points = curve["points"]
        samples = [p["samples"] for p in points]
        ax.plot(samples, [study.gated_score(p["metrics"], limits) for p in points], "-o", ms=2.5, lw=1,
                color=COLOURS.get(arm), label=f"{arm} (trained generator)")
        averaged = [p for p in points if "ema" in p]
        ax.plot([p["samples"] for p in averaged], [study.gated_score(p["ema"]["metrics"], limits) for p in averaged],
                "--x", ms=3, lw=1, color=COLOURS.get(arm), label=f"{arm} (moving average)")
    for (low, high), label in ((study.STAGE_WINDOW, "stage gate window"), (study.FINAL_WINDOW, "pick window")):
        ax.axvspan(low, high, color="0.85", alpha=0.5, lw=0)
        ax.annotate(label, ((low + high) / 2, 1.0), xycoords=("data", "axes fraction"), ha="center",
                    va="top", fontsize=8, color="0.35")
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_ylim(bottom=0)
    ax.set_xlim(0, max(study.FINAL_WINDOW[1], *(p["samples"] for c in curves.values() for p in c["points"])))
    ax.set_xlabel("training samples")
    ax.set_ylabel(f"mean value / limit over the {len(limits)} {study.GATING_VERSION} limits")
    ax.set_title("v3 recipe study (lower is better; 1 = at v2's limits on average)")
    ax.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    write_file_atomic(path, lambda tmp: figure.savefig(tmp, dpi=90))
    plt.close(figure)
    return path
