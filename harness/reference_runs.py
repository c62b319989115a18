"""A closed-rule study run as a `harness run` command: the flags that make a time-to-accuracy
run train, and be judged, as that reference run was (issue 23 §4).

A submission's samples to target are compared with the RCP runs' (benchmark.rcp), so the two
must do the same arithmetic: the same precision, per-rank batch, rate and its decay, evaluation
interval, judged generator and data. The RCP runs are campaigns (benchmark.campaign); this is
their recipe spelled as `harness run` flags, and tests/harness/test_reference_runs.py holds the
two trainer configurations equal.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from benchmark.vocabulary import TTA

if TYPE_CHECKING:
    from benchmark.recipe import ScaleRecipe
    from harness.run_request import RunRequest

# What a run's arithmetic is made of, beyond its schedule (TrainConfig fields)
SAME_ARITHMETIC = ("benchmark", "mode", "per_rank_batch", "seed", "precision", "base_learning_rate", "lr_decay",
                   "ema_decay", "emulated_ranks", "smoke")


def tta_argv(recipe: ScaleRecipe, seed: int) -> list[str]:
    """`harness run` flags for seed `seed` of `recipe` at one rank (at one rank every candidate
    rule is the same rule), its budget rounded up to whole passes over the training set; the
    data are the benchmark's reference data set, made under the results root unless --data and
    --heldout-data are added."""
    if recipe.emulated_ranks != 1:
        raise ValueError(f"{recipe.campaign_name}: a `harness run` of one rank trains the closed-rule study's "
                         f"one-rank runs; this one emulates {recipe.emulated_ranks} ranks")
    argv = ["--benchmark", recipe.benchmark, "--mode", TTA, "--seed", str(seed),
            "--precision", recipe.precision, "--per-rank-batch", str(recipe.per_rank_batch),
            "--learning-rate", repr(recipe.learning_rate), "--warmup-epochs", str(recipe.warmup_epochs),
            "--eval-every-samples", str(recipe.eval_every_samples),
            "--epochs", str(math.ceil(recipe.budget_samples / recipe.train_events))]
    if recipe.smoke:
        argv.append("--smoke")
    if recipe.lr_decay is not None:
        decay = recipe.lr_decay
        argv += ["--lr-decay", f"{decay.start_samples},{decay.end_samples},{decay.final_factor!r}"]
    if recipe.judged_generator == "ema":
        argv += ["--ema-horizon-samples", str(recipe.ema_horizon_samples)]
    return argv


def differences(request: RunRequest, recipe: ScaleRecipe, seed: int) -> list[str]:
    """How a one-rank `harness run` request would train or judge otherwise than seed `seed` of
    `recipe`, one phrase per difference ([] when it does the same arithmetic); the data are
    not compared (a request without --data trains on the reference data set)."""
    from dataclasses import replace

    from benchmark import campaign
    from harness.train_worker import train_config

    ours = train_config(replace(request, checkpoint_dir=request.checkpoint_dir or ".", data=request.data or "."))
    theirs = campaign.train_config(recipe, seed, ours.data, ours.eval_data)
    found = [f"{name} {getattr(ours, name)!r} (the reference run's: {getattr(theirs, name)!r})"
             for name in SAME_ARITHMETIC if getattr(ours, name) != getattr(theirs, name)]
    steps = recipe.train_events // recipe.global_batch
    for what, mine, reference in (
            ("steps per evaluation", ours.schedule(recipe.global_batch, steps)[0],
             theirs.schedule(recipe.global_batch, steps)[0]),
            ("warm-up steps", ours.warmup_steps(recipe.global_batch, steps),
             theirs.warmup_steps(recipe.global_batch, steps)),
            ("judged generator", "ema" if ours.judge_moving_average else "raw", recipe.judged_generator)):
        if mine != reference:
            found.append(f"{what} {mine!r} (the reference run's: {reference!r})")
    return found
