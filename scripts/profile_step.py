"""Where the reference training step's time goes: TensorFlow's profiler over a few compiled steps,
op time summed by op type and by layer. Op times add up across TensorFlow's inter-op threads, so
their total exceeds the wall time of a step; compare shares, not sums, with the wall time.

Usage: .venv/bin/python scripts/profile_step.py [--benchmark 3dgan] [--precision mixed_bfloat16]
       [--steps 4] [--top 25]   (pause the campaign first: SIGSTOP its pid)
"""
from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _op_times(logdir: Path) -> collections.Counter:
    """Seconds per (op type, op name) from the profiler's XSpace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    times: collections.Counter = collections.Counter()
    for path in logdir.rglob("*.xplane.pb"):
        space = xplane_pb2.XSpace()
        space.ParseFromString(path.read_bytes())
        for plane in space.planes:
            names = {key: meta.name for key, meta in plane.event_metadata.items()}
            for line in plane.lines:
                for event in line.events:
                    name = names.get(event.metadata_id, "")
                    if ":" in name and "/" in name:  # "scope/op_name:OpType"
                        op, op_type = name.rsplit(":", 1)
                        times[(op_type, op)] += event.duration_ps * 1e-12
    return times


def _layer(op: str) -> str:
    """`gradient_tape/discriminator_3dgan_3/drop1_1/...` -> `discriminator/drop1 (gradient)`."""
    parts = [re.sub(r"_\d+$", "", p) for p in op.split("/")]
    gradient = parts[0] == "gradient_tape"
    parts = parts[1:] if gradient else parts
    model = parts[0].split("_")[0] if parts else ""
    layer = parts[1] if len(parts) > 1 and model in ("generator", "discriminator") else parts[0]
    if model not in ("generator", "discriminator"):
        return layer
    return f"{model}/{layer}" + (" (gradient)" if gradient else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", default="3dgan", choices=("3dgan", "3dgan-angle"))
    parser.add_argument("--precision", default="mixed_bfloat16", choices=("mixed_bfloat16", "float32"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="profiled steps, after 3 untimed ones")
    parser.add_argument("--top", type=int, default=25, help="rows of each table")
    args = parser.parse_args()

    import keras
    import tensorflow as tf
    from tabulate import tabulate

    from reference_model.specs import get_spec
    from reference_model.training import ReferenceGAN, synthetic_batch

    keras.mixed_precision.set_global_policy(args.precision)
    gan = ReferenceGAN(get_spec(args.benchmark), seed=0)
    batch = synthetic_batch(args.benchmark, args.batch)
    for _ in range(3):
        float(gan.train_step(batch)["d_loss"])
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(args.steps):
            float(gan.train_step(batch)["d_loss"])
        wall = (time.perf_counter() - start) / args.steps
        tf.profiler.experimental.stop()
        times = _op_times(Path(logdir))

    per_step = 1e3 / args.steps
    total = sum(times.values()) * per_step
    by_type: collections.Counter = collections.Counter()
    by_layer: collections.Counter = collections.Counter()
    for (op_type, op), seconds in times.items():
        by_type[op_type] += seconds * per_step
        by_layer[_layer(op)] += seconds * per_step
    print(f"{args.benchmark} {args.precision} batch {args.batch}: wall {wall * 1e3:.0f} ms per step, "
          f"op time {total:.0f} ms per step (summed over threads)")
    for title, counter in (("op type", by_type), ("layer", by_layer)):
        rows = [(name, f"{ms:.1f}", f"{100 * ms / total:.1f}") for name, ms in counter.most_common(args.top)]
        print(tabulate(rows, headers=(title, "ms/step", "% of op time")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
