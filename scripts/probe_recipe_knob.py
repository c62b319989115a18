"""A probe, not a study: resume a recipe-study arm from the state a session committed, with one
recipe knob changed, to a sample count, in a scratch convergence folder; then export its generator
for `scripts/shower_spread.py`. Every random draw is still taken as in the arm's own continuation,
so the run differs from it in the knob only.

Knobs:
  no-flips   label flipping off (the flips' draws still taken: probability 0 makes every draw false)
  d-rate-x2  the discriminator's RMSprop rate twice the generator's (a two-time-scale update rule,
             Heusel et al. 2017); the generator's rate stays the arm's
  bias-bf16  diagnosis only, never a recipe: the convolutions' bias gradients summed in bfloat16
             again, as Keras's own bias add does under mixed_bfloat16 (the defect the v2 campaign
             trained with; reference_model/conv.py)

Usage: .venv/bin/python scripts/probe_recipe_knob.py --knob d-rate-x2 --arm constant --commit b97c521 \
       --until 100000 --scratch runs/probe-d-rate-x2 [--hours 2] [--data-dir runs/campaign-data]
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from campaign_generator_at import ROOT, copy_committed_state, export_generator

KNOBS = ("no-flips", "d-rate-x2", "bias-bf16")


def apply_knob(knob: str, benchmark: str) -> None:
    """Change the one thing the probe varies, in this process only."""
    from reference_model import specs
    from reference_model.training import ReferenceGAN

    if knob == "no-flips":
        specs.SPECS[benchmark] = dataclasses.replace(specs.SPECS[benchmark], label_flip_probability=0.0)
    elif knob == "d-rate-x2":
        def set_learning_rate(gan: ReferenceGAN, learning_rate: float) -> None:
            gan.d_optimizer.learning_rate.assign(2.0 * learning_rate)
            gan.g_optimizer.learning_rate.assign(learning_rate)
        ReferenceGAN.set_learning_rate = set_learning_rate  # the trainer sets the rate before every step
    elif knob == "bias-bf16":
        import keras
        import tensorflow as tf

        from reference_model import conv, numerics

        def keras_bias_add(outputs: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
            """Keras's own Conv bias add (`keras.ops.add` of the reshaped bias; a plain `tf.add` here
            sums the gradient accurately, Keras's gives 256 for 17,576 under mixed_bfloat16)."""
            shape = (1,) * (outputs.shape.rank - 1) + (bias.shape[-1],)
            return keras.ops.add(outputs, keras.ops.reshape(tf.cast(bias, outputs.dtype), shape))
        conv.bias_add_float32_gradient = keras_bias_add  # looked up at call time by Conv3D and the polyphase layers

        def report_wrong_kernels(models, batch_size: int, gradients: bool = True) -> list:
            """The run's numerics check would refuse the defect; print what it finds and go on."""
            checks = numerics.check_models(models, batch_size, gradients)
            print(f"[probe] bias-bf16: the numerics check finds wrong layers: {numerics.wrong_layers(checks)}")
            return checks
        numerics.require_correct_kernels = report_wrong_kernels
    else:
        raise SystemExit(f"unknown knob {knob!r}: one of {', '.join(KNOBS)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--knob", required=True, choices=KNOBS, help="what the probe changes (see above)")
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

    recipe = STUDY[args.arm]
    scratch_state = args.scratch.resolve() / "state" / campaign.state_dir(recipe.campaign_name, 1).name
    if not (scratch_state / "checkpoint").is_file():
        copy_committed_state(recipe.campaign_name, 1, args.commit, scratch_state,
                             args.scratch.resolve() / campaign.curve_path(recipe.campaign_name, 1).name)
    campaign.CONVERGENCE_DIR = args.scratch.resolve()
    apply_knob(args.knob, recipe.benchmark)
    train_session(recipe, 1, args.hours, args.data_dir, 0, until_samples=args.until)
    out = args.scratch / f"{args.arm}-{args.knob}.weights.h5"
    samples = export_generator(recipe.benchmark, scratch_state, out, {"probe": args.knob})
    print(f"{out}: the probe's generator at {samples:,} samples")


if __name__ == "__main__":
    main()
