"""A closed-rule study run spelled as `harness run` flags trains as the campaign that made it:
what a submission's samples to target are compared with (issue 23 §4)."""
import math
from dataclasses import asdict, fields
from pathlib import Path

import pytest

from benchmark import campaign
from benchmark.recipe import STUDY, ScaleRecipe, ScheduledRecipe, reference_data
from benchmark.vocabulary import TTA
from harness.reference_runs import SAME_ARITHMETIC, differences
from harness.run_request import RunRequest, with_changes
from harness.train_worker import train_config

TRAIN, HELDOUT = Path("/data/train-fixed-seed1001"), Path("/data/heldout-fixed-seed2001")
DATA_EPOCH_STEPS = 200_000 // 8


def one_rank_run(arm: str, generator: str) -> ScaleRecipe:
    """A batch-8 run of the closed-rule study on `arm` of the recipe study, as scale_study.scale_recipe makes it."""
    picked = STUDY[arm]
    shared = {f.name: getattr(picked, f.name) for f in fields(ScheduledRecipe)}
    return ScaleRecipe(**{**shared, "warmup_epochs": 0, "eval_every_samples": 5_000, "budget_samples": 405_000,
                          "ema_horizon_samples": picked.ema_horizon_samples if generator == "ema" else None},
                       candidate="linear", target="3dgan-quality-v3")


def tta_argv(recipe: ScaleRecipe, seed: int) -> list[str]:
    """`harness run` flags for seed `seed` of one-rank `recipe`, as a submitter would spell it, its
    budget rounded up to whole passes over the training set."""
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


@pytest.mark.parametrize("arm, generator", [("constant", "raw"), ("cosine", "raw"), ("cosine", "ema")])
def test_the_harness_run_trains_as_the_reference_run(arm, generator):
    recipe = one_rank_run(arm, generator)
    reference = campaign.train_config(recipe, 3, TRAIN, HELDOUT)
    argv = [*tta_argv(recipe, 3), "--data", str(TRAIN), "--heldout-data", str(HELDOUT)]
    request = RunRequest.from_argv(argv)
    submitted = train_config(with_changes(request, checkpoint_dir="/state"))
    same = (*SAME_ARITHMETIC, "data", "eval_data")
    assert {name: getattr(submitted, name) for name in same} == {name: getattr(reference, name) for name in same}
    assert submitted.schedule(8, DATA_EPOCH_STEPS)[0] == reference.schedule(8, DATA_EPOCH_STEPS)[0] == 625
    assert submitted.warmup_steps(8, DATA_EPOCH_STEPS) == reference.warmup_steps(8, DATA_EPOCH_STEPS) == 0
    assert submitted.judge_moving_average is (generator == "ema")
    assert submitted.epochs * DATA_EPOCH_STEPS * 8 >= recipe.budget_samples
    assert differences(request, recipe, 3) == []


def test_every_difference_is_named():
    recipe = one_rank_run("cosine", "ema")
    request = RunRequest.from_argv(["--mode", "tta", "--seed", "3", "--precision", "mixed_bfloat16"])
    found = differences(request, recipe, 3)
    assert [phrase.split(" ")[0] for phrase in found] == ["lr_decay", "ema_decay", "steps", "warm-up", "judged"]
    assert "judged generator 'raw' (the reference run's: 'ema')" in found
    assert differences(request, one_rank_run("cosine", "ema"), 4)[0].startswith("seed 3 (the reference run's: 4)")


def test_its_data_are_the_reference_data_set():
    recipe = one_rank_run("cosine", "raw")
    data = reference_data(recipe.benchmark)
    assert {k: v for k, v in asdict(data).items() if k != "benchmark"} == \
        {k: getattr(recipe, k) for k in asdict(data) if k != "benchmark"}
