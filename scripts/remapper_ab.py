"""What a working grappler remapper would give the reference training step.

On the reference step TensorFlow's remapper fails ("Mutation::Apply error ... missing node
.../BiasAdd") and the step runs unfused (docs/training-performance.md). This times one variant
per process on a synthetic batch of 8:

  base      the step as it is (the remapper fails);
  off       the remapper switched off;
  working   two graph-only patches that let the remapper finish: a LeakyReLU whose gradient reads
            its output (the same values for a positive slope) and zero padding as PadV2, which the
            remapper does not fuse into the next convolution. Same layers and variables; a
            measurement, not the reference (the graph, and so oneDNN's rounding, differ).

Usage: .venv/bin/python scripts/remapper_ab.py VARIANT [--benchmark 3dgan] [--steps 10]
       [--precision mixed_bfloat16]   (pause the campaign first; interleave variants in turn)
Prints one line: RESULT variant benchmark median and min seconds per step, the first losses, and
how many times the remapper failed (read from TensorFlow's log on stderr).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VARIANTS = ("base", "off", "working")


def _patch_for_a_working_remapper() -> None:
    import tensorflow as tf
    from keras import layers

    def leaky_call(self, inputs):
        slope = self.negative_slope

        @tf.custom_gradient
        def leaky(x):
            y = tf.nn.leaky_relu(x, alpha=slope)
            return y, lambda dy: tf.raw_ops.LeakyReluGrad(gradients=dy, features=y, alpha=slope)

        return leaky(inputs)

    def pad_call(self, inputs):
        paddings = [[0, 0], *[list(p) for p in self.padding], [0, 0]]
        return tf.raw_ops.PadV2(input=inputs, paddings=paddings, constant_values=tf.constant(0, inputs.dtype))

    layers.LeakyReLU.call = leaky_call
    layers.ZeroPadding3D.call = pad_call


def _time_steps(variant: str, benchmark_name: str, steps: int, precision: str) -> str:
    import keras
    import tensorflow as tf

    if variant == "off":
        tf.config.optimizer.set_experimental_options({"remapping": False})
    if variant == "working":
        _patch_for_a_working_remapper()
    from reference_model.specs import get_spec
    from reference_model.training import ReferenceGAN, synthetic_batch

    keras.mixed_precision.set_global_policy(precision)
    gan = ReferenceGAN(get_spec(benchmark_name), seed=0)
    batch = synthetic_batch(benchmark_name, 8)
    losses = [float(gan.train_step(batch)["d_loss"]) for _ in range(3)]
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        gan.train_step(batch)["d_loss"].numpy()
        times.append(time.perf_counter() - start)
    return (f"{variant} {benchmark_name} {precision} median {statistics.median(times):.4f} s "
            f"min {min(times):.4f} s first d_loss {', '.join(f'{x:.4f}' for x in losses)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--benchmark", default="3dgan", choices=("3dgan", "3dgan-angle"))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precision", default="mixed_bfloat16", choices=("mixed_bfloat16", "float32"))
    args = parser.parse_args()
    # TensorFlow's C++ log goes to file descriptor 2: count the remapper's failures there.
    with tempfile.TemporaryFile() as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            line = _time_steps(args.variant, args.benchmark, args.steps, args.precision)
        finally:
            os.dup2(saved, 2)
        log.seek(0)
        failures = log.read().count(b"remapper failed")
    print(f"RESULT {line}; remapper failed {failures} time(s)")


if __name__ == "__main__":
    main()
