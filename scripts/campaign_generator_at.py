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


def main() -> None:
    import tensorflow as tf

    from benchmark import campaign
    from reference_model.checkpoint import save_generator
    from reference_model.specs import get_spec

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaign", required=True, help="campaign name, e.g. 3dgan-study-constant")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--commit", required=True, help="a commit that holds the campaign's checkpoint")
    parser.add_argument("--out", required=True, type=Path, help="the weights file to write (with its card)")
    args = parser.parse_args()

    state = campaign.state_dir(args.campaign, args.seed).relative_to(ROOT)
    names = _git("ls-tree", "--name-only", args.commit, f"{state}/").decode().split()
    if not names:
        parser.error(f"commit {args.commit} holds no {state}/")
    curve = campaign.curve_path(args.campaign, args.seed).relative_to(ROOT)
    benchmark = json.loads(_git("show", f"{args.commit}:{curve}"))["benchmark"]
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            (Path(scratch) / Path(name).name).write_bytes(_git("show", f"{args.commit}:{name}"))
        latest = tf.train.latest_checkpoint(scratch)
        spec = get_spec(benchmark)
        generator = spec.build_generator()
        samples = tf.Variable(0, dtype=tf.int64)
        status = tf.train.Checkpoint(generator=generator, samples=samples).read(latest).expect_partial()
        status.assert_existing_objects_matched()
        save_generator(args.out, generator, spec, {"campaign": args.campaign, "seed": args.seed,
                                                   "samples": int(samples.numpy()), "commit": args.commit,
                                                   "note": "a session's last checkpoint, not an evaluation"})
    print(f"{args.out}: {args.campaign} seed {args.seed} at {int(samples.numpy()):,} samples (commit {args.commit})")


if __name__ == "__main__":
    main()
