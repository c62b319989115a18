"""How much each gated metric of a generator varies from one evaluation sample to the next, for
several numbers of showers per energy bin: the noise a target's margin has to cover
(CALIBRATION.md, "Would the uncapped reading have held?").

For each count, REPS independent stand-in samples (energies flat inside each bin, as a flat
spectrum's in-bin events are) are judged against the generator's showers at the same energies,
each sample with its own latent seed. Per metric the target gates: the mean over samples, the
seed-to-seed coefficient of variation, and the largest value over the mean.

Usage: .venv/bin/python scripts/separation_noise.py CHECKPOINT [--events-per-bin 200,800] [--reps 10]
       [--target 3dgan-quality-v3-rc] [--seed 8800] [--only separation.moment]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def metric_samples(checkpoint: Path, target_version: str | None, counts: list[int], reps: int,
                   seed: int) -> dict[int, dict[str, np.ndarray]]:
    """Per showers-per-bin count, every gated metric's value on each of `reps` samples."""
    from benchmark.calibration import standin_sample
    from benchmark.quality import Showers, load_thresholds, measure
    from reference_model.checkpoint import load_generator
    from reference_model.generation import generate_showers

    spec, generator = load_generator(checkpoint)
    target = load_thresholds(spec.benchmark, version=target_version)
    samples: dict[int, dict[str, np.ndarray]] = {}
    for count in counts:
        design = dataclasses.replace(target, events_per_bin=count)
        values: dict[str, list[float]] = {name: [] for name in target.limits}
        for rep in range(reps):
            reference = standin_sample(design, seed + rep)
            generated = generate_showers(spec, partial(generator, training=False), reference.energy_gev,
                                         reference.theta_rad, seed=seed + rep)
            candidate = Showers(generated.ecal_gev, reference.energy_gev, reference.theta_rad)
            metrics, _, _ = measure(reference, candidate, design)
            for name in values:
                values[name].append(metrics[name])
            print(f"[separation_noise] {count} per bin: sample {rep + 1} of {reps}", file=sys.stderr, flush=True)
        samples[count] = {name: np.asarray(v) for name, v in values.items()}
    return samples


def main() -> None:
    from tabulate import tabulate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--events-per-bin", default="200,800", help="comma-separated showers per energy bin")
    parser.add_argument("--reps", type=int, default=10, help="independent evaluation samples per count")
    parser.add_argument("--target", default=None, help="whose gated metrics (default: the benchmark's target)")
    parser.add_argument("--seed", type=int, default=8800,
                        help="sample r uses stand-in seed (SEED + r) x 100 + bin and latent seed SEED + r")
    parser.add_argument("--only", default="", help="report only metrics whose name starts with this")
    args = parser.parse_args()
    counts = [int(c) for c in args.events_per_bin.split(",")]
    if args.reps < 2 or min(counts) < 2:
        parser.error("--reps and every --events-per-bin must be at least 2")

    samples = metric_samples(args.checkpoint, args.target, counts, args.reps, args.seed)
    rows = []
    for name in sorted(samples[counts[0]]):
        if not name.startswith(args.only):
            continue
        row = [name]
        for count in counts:
            v = samples[count][name]
            mean = float(v.mean())
            row.append(f"{mean:.4f}, cv {v.std(ddof=1) / mean:.2f}, max/mean {v.max() / mean:.2f}")
        rows.append(row)
    print(f"{args.checkpoint.name}: {args.reps} evaluation samples per count (mean, seed-to-seed "
          "coefficient of variation, largest over mean)")
    print(tabulate(rows, headers=["metric", *(f"{c} per bin" for c in counts)]))


if __name__ == "__main__":
    main()
