"""Export a campaign's trained generator as it stood at an earlier commit: every session commits the
campaign's checkpoint, so git history holds the generator at each session's end. For looking back
along a curve (`scripts/shower_spread.py` on the exports); the export is not an evaluated
generator and nothing ships it.

Usage: .venv/bin/python scripts/campaign_generator_at.py --campaign 3dgan-study-constant --commit 4fd31be \
       --out runs/constant-100000.weights.h5 [--seed 1]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=True).stdout


def copy_committed_state(campaign_name: str, seed: int, commit: str, state: Path, curve: Path) -> str:
    """Write the campaign's checkpoint folder and curve as `commit` holds them to `state` and
    `curve`; return the campaign's benchmark."""
    from benchmark import campaign

    committed = campaign.state_dir(campaign_name, seed).relative_to(ROOT)
    names = _git("ls-tree", "--name-only", commit, f"{committed}/").decode().split()
    if not names:
        raise SystemExit(f"commit {commit} holds no {committed}/")
    state.mkdir(parents=True, exist_ok=True)
    for name in names:
        (state / Path(name).name).write_bytes(_git("show", f"{commit}:{name}"))
    curve.write_bytes(_git("show", f"{commit}:{campaign.curve_path(campaign_name, seed).relative_to(ROOT)}"))
    return json.loads(curve.read_text())["benchmark"]


def export_generator(benchmark: str, state: Path, out: Path, card: dict) -> int:
    """The generator of the latest checkpoint in `state`, every variable of it restored, written to
    `out` with `card` and its sample count; returns the sample count."""
    import tensorflow as tf

    from reference_model.checkpoint import save_generator
    from reference_model.specs import get_spec

    spec = get_spec(benchmark)
    generator = spec.build_generator()
    samples = tf.Variable(0, dtype=tf.int64)
    status = tf.train.Checkpoint(generator=generator, samples=samples).read(tf.train.latest_checkpoint(str(state)))
    status.expect_partial().assert_existing_objects_matched()
    save_generator(out, generator, spec, {**card, "samples": int(samples.numpy()),
                                          "note": "a checkpoint's generator, not an evaluated one"})
    return int(samples.numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaign", required=True, help="campaign name, e.g. 3dgan-study-constant")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--commit", required=True, help="a commit that holds the campaign's checkpoint")
    parser.add_argument("--out", required=True, type=Path, help="the weights file to write (with its card)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        benchmark = copy_committed_state(args.campaign, args.seed, args.commit, Path(scratch) / "state",
                                         Path(scratch) / "curve.json")
        samples = export_generator(benchmark, Path(scratch) / "state", args.out,
                                   {"campaign": args.campaign, "seed": args.seed, "commit": args.commit})
    print(f"{args.out}: {args.campaign} seed {args.seed} at {samples:,} samples (commit {args.commit})")


if __name__ == "__main__":
    main()
