"""Whether a `harness run` time-to-accuracy command trains, and is judged, as a closed-rule
study run did (issue 23 §4).

A submission's samples to target are compared with the RCP runs' (benchmark.rcp), so the two
must do the same arithmetic: the same precision, per-rank batch, rate and its decay, evaluation
interval, judged generator and data. The RCP runs are campaigns (benchmark.campaign);
`differences` names every way a request's trainer configuration departs from theirs, and
tests/harness/test_reference_runs.py holds the two equal for a request spelled from the recipe.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmark.recipe import ScaleRecipe
    from harness.run_request import RunRequest

# What a run's arithmetic is made of, beyond its schedule (TrainConfig fields)
SAME_ARITHMETIC = ("benchmark", "mode", "per_rank_batch", "seed", "precision", "base_learning_rate", "lr_decay",
                   "ema_decay", "emulated_ranks", "smoke")


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
