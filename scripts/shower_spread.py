"""Centre and spread of each generator's per-shower observables against stand-in showers, per
energy bin: what a failing separation power is made of (a shifted centre, or too little or too
much event-to-event fluctuation), on more showers than the gate's 200 per bin.

Every generator is conditioned on the same stand-in showers' energies and given the same latents,
so the columns compare generators, not samples.

Usage: .venv/bin/python scripts/shower_spread.py CHECKPOINT [CHECKPOINT ...] [--events 1000]
       [--seed 990000] [--features moment_z1,sampling_fraction,moment_x2,moment_y2,moment_z2]
"""
from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from tabulate import tabulate

    from benchmark.quality import bin_label, distribution_shift, load_thresholds, separation_features
    from reference_model.checkpoint import load_generator
    from reference_model.generation import generate_showers
    from reference_model.physics import ShowerFeatures
    from reference_model.simulator import simulate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--events", type=int, default=1000, help="stand-in showers per energy bin")
    parser.add_argument("--seed", type=int, default=990000,
                        help="bin i uses stand-in seed SEED + i (far from every campaign and hold-test seed)")
    parser.add_argument("--digits", type=int, default=2, help="decimals of each figure")
    parser.add_argument("--features", default="moment_z1,sampling_fraction,moment_x2,moment_y2,moment_z2")
    args = parser.parse_args()
    features = args.features.split(",")

    generators = [(path, *load_generator(path)) for path in args.checkpoints]
    benchmarks = {spec.benchmark for _, spec, _ in generators}
    if len(benchmarks) != 1:
        parser.error(f"the checkpoints are of different benchmarks: {sorted(benchmarks)}")
    thresholds = load_thresholds(benchmarks.pop())
    rows = []
    for i, (low, high) in enumerate(thresholds.energy_bins_gev):
        data = simulate(args.events, thresholds.geometry, seed=args.seed + i, energy_range=(low, high))
        reference = separation_features(ShowerFeatures.of(data, thresholds.hit_threshold_gev))
        for path, spec, generator in generators:
            showers = generate_showers(spec, partial(generator, training=False), data.energy_gev,
                                       data.theta_rad, seed=args.seed + i)
            candidate = separation_features(ShowerFeatures.of(showers, thresholds.hit_threshold_gev))
            row = [bin_label(low, high), path.name]
            for feature in features:
                shift = distribution_shift(reference[feature], candidate[feature])
                row.append(f"{shift.standardised_difference:+.{args.digits}f} sd, "
                           f"x{shift.spread_ratio:.{args.digits}f}")
            rows.append(row)
        print(f"[shower_spread] {bin_label(low, high)} done", file=sys.stderr, flush=True)
    print(f"Candidate against {args.events} stand-in showers per bin: mean difference in the stand-in's "
          "standard deviations, spread as the ratio of standard deviations.")
    print(tabulate(rows, headers=["bin", "generator", *features]))


if __name__ == "__main__":
    main()
