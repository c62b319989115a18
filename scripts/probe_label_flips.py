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
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=True).stdout


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
    from reference_model import specs

    recipe = STUDY[args.arm]
    campaign.CONVERGENCE_DIR = args.scratch.resolve()
    specs.SPECS[recipe.benchmark] = dataclasses.replace(specs.SPECS[recipe.benchmark], label_flip_probability=0.0)
    state = campaign.state_dir(recipe.campaign_name, 1)
    if not (state / "checkpoint").is_file():
        committed = f"benchmark/convergence/state/{state.name}"
        state.mkdir(parents=True, exist_ok=True)
        for name in _git("ls-tree", "--name-only", args.commit, f"{committed}/").decode().split():
            (state / Path(name).name).write_bytes(_git("show", f"{args.commit}:{name}"))
        curve = campaign.curve_path(recipe.campaign_name, 1)
        curve.write_bytes(_git("show", f"{args.commit}:benchmark/convergence/{curve.name}"))

    from harness.commands.reference import train_session

    train_session(recipe, 1, args.hours, args.data_dir, 0, until_samples=args.until)
    _export(recipe.benchmark, state, args.scratch / f"{args.arm}-noflip.weights.h5")


def _export(benchmark: str, state: Path, out: Path) -> None:
    import tensorflow as tf

    from reference_model.checkpoint import save_generator
    from reference_model.specs import get_spec

    spec = get_spec(benchmark)
    generator = spec.build_generator()
    samples = tf.Variable(0, dtype=tf.int64)
    latest = tf.train.latest_checkpoint(str(state))
    tf.train.Checkpoint(generator=generator, samples=samples).read(latest).expect_partial() \
        .assert_existing_objects_matched()
    save_generator(out, generator, spec, {"note": f"label-flip probe at {int(samples.numpy()):,} samples"})
    print(f"{out}: the probe's generator at {int(samples.numpy()):,} samples")


if __name__ == "__main__":
    main()
