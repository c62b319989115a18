"""A probe, not a study: resume a recipe-study arm from the state a session committed, with label
flipping off, to a sample count, in a scratch convergence folder; then export its generator for
`scripts/shower_spread.py`. The flips' random draws are still taken (probability 0 makes every draw
false), so the run differs from the arm's own continuation in the flipped labels only.

Usage: .venv/bin/python scripts/probe_label_flips.py --arm constant --commit b97c521 --until 100000 \
       --scratch runs/probe-noflip [--hours 2] [--data-dir runs/campaign-data]
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from campaign_generator_at import ROOT, copy_committed_state, export_generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arm", default="constant", help="a recipe-study arm (benchmark/recipe.py STUDY)")
    parser.add_argument("--commit", required=True, help="a commit holding the arm's state to resume from")
    parser.add_argument("--until", type=int, required=True, help="train to the last evaluation within this")
    parser.add_argument("--scratch", type=Path, required=True, help="the probe's own convergence folder")
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "runs/campaign-data")
    args = parser.parse_args()

    from benchmark import campaign
    from benchmark.recipe import STUDY
    from harness.commands.reference import train_session
    from reference_model import specs

    recipe = STUDY[args.arm]
    scratch_state = args.scratch.resolve() / "state" / campaign.state_dir(recipe.campaign_name, 1).name
    if not (scratch_state / "checkpoint").is_file():
        copy_committed_state(recipe.campaign_name, 1, args.commit, scratch_state,
                             args.scratch.resolve() / campaign.curve_path(recipe.campaign_name, 1).name)
    campaign.CONVERGENCE_DIR = args.scratch.resolve()
    specs.SPECS[recipe.benchmark] = dataclasses.replace(specs.SPECS[recipe.benchmark], label_flip_probability=0.0)
    train_session(recipe, 1, args.hours, args.data_dir, 0, until_samples=args.until)
    out = args.scratch / f"{args.arm}-noflip.weights.h5"
    samples = export_generator(recipe.benchmark, scratch_state, out, {"probe": "label flipping off"})
    print(f"{out}: the probe's generator at {samples:,} samples")


if __name__ == "__main__":
    main()
