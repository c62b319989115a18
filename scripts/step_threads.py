"""Time a campaign's training step under one setting of TensorFlow's thread pools.

Thread pools are fixed once TensorFlow starts, so each setting needs its own process; run this
once per setting, interleaved, with the background campaign paused, and compare the medians:

    .venv/bin/python scripts/step_threads.py --benchmark 3dgan-angle --intra 2 --inter 1

`--intra 0 --inter 0` leaves TensorFlow's defaults, as a campaign with `--threads 0` does. The
step is the campaign's (`ReferenceGAN.train_step`, mixed_bfloat16, batch 8, the angle generator's
training form with up1 -> conv1 in phases), on a synthetic batch, after one traced step.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", default="3dgan-angle", choices=("3dgan", "3dgan-angle"))
    parser.add_argument("--intra", type=int, default=0, help="intra-op threads (0: TensorFlow's default)")
    parser.add_argument("--inter", type=int, default=0, help="inter-op threads (0: TensorFlow's default)")
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()

    from benchmark.precision import configure_threads

    intra, inter = configure_threads(args.intra, args.inter)
    import keras

    from reference_model.specs import get_spec
    from reference_model.training import ReferenceGAN, synthetic_batch

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    gan = ReferenceGAN(get_spec(args.benchmark), seed=0)
    batch = synthetic_batch(args.benchmark, 8)
    float(gan.train_step(batch)["d_loss"])  # trace and compile outside the timing
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        float(gan.train_step(batch)["d_loss"])
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    print(f"{args.benchmark} step, intra-op {intra} inter-op {inter}: median {median:.3f} s of {args.steps} "
          f"({8 / median:.2f} samples/s; steps {', '.join(f'{s:.2f}' for s in seconds)})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
