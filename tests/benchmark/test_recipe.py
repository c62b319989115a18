"""The closed recipe: one source the campaign, the thresholds and the defaults agree with."""
import json
from dataclasses import asdict

import pytest

from benchmark import campaign
from benchmark.recipe import CAMPAIGNS, DEFAULTS, RECIPES, get_recipe
from reference_model.specs import BENCHMARKS, get_spec


def test_every_benchmark_has_a_recipe():
    assert tuple(RECIPES) == BENCHMARKS
    with pytest.raises(ValueError, match="unknown benchmark 'cosmoflow'"):
        get_recipe("cosmoflow")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_the_recipe_reads_the_model_hyperparameters_from_the_spec(name):
    recipe, spec = get_recipe(name), get_spec(name)
    assert recipe.base_learning_rate == spec.learning_rate == 1e-3
    assert recipe.max_per_rank_batch == spec.reference_batch_size


@pytest.mark.parametrize("name", BENCHMARKS)
def test_the_defaults_are_inside_the_closed_limits(name):
    recipe = get_recipe(name)
    assert recipe.min_per_rank_batch <= recipe.per_rank_batch <= recipe.max_per_rank_batch
    assert recipe.precision in recipe.precisions
    assert recipe.warmup_epochs >= 0 and recipe.max_epochs > 0


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_shares_the_defaults_named_before_the_benchmark_is_known(name):
    shared = ("base_learning_rate", "per_rank_batch", "warmup_epochs", "precision", "max_epochs",
              "eval_every_samples")
    recipe = get_recipe(name)
    assert {f: getattr(recipe, f) for f in shared} == {f: getattr(DEFAULTS, f) for f in shared}


@pytest.mark.parametrize("name", sorted(CAMPAIGNS))
def test_every_committed_curve_records_its_campaign_recipe(name):
    curves = sorted(campaign.CONVERGENCE_DIR.glob(f"{name}-reference-seed*.json"))
    assert curves, f"no committed curve of the {name} campaign"
    for path in curves:
        assert json.loads(path.read_text())["recipe"] == asdict(CAMPAIGNS[name]), path.name


def test_the_campaign_trains_the_closed_learning_rate():
    for name, recipe in CAMPAIGNS.items():
        assert recipe.learning_rate == get_recipe(name).base_learning_rate
        assert recipe.precision in get_recipe(name).precisions
