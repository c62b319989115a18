"""Shipping the reference: the campaign's best generator is validated on a set it never saw and
written to the frozen location only if it passes; nothing is written when it fails."""
import json
from dataclasses import asdict

import pytest

from benchmark import campaign
from benchmark.recipe import CAMPAIGNS
from harness.cli import main
from reference_model.checkpoint import load_generator, read_card, save_generator, sha256_of
from reference_model.errors import InputError

SEED = 4


@pytest.fixture
def campaign_with_best(tmp_path, monkeypatch):
    """A campaign curve whose best generator is an untrained one, in a scratch convergence folder."""
    import keras

    from reference_model.specs import get_spec

    monkeypatch.setattr(campaign, "CONVERGENCE_DIR", tmp_path / "convergence")
    recipe = asdict(CAMPAIGNS["3dgan"])
    spec = get_spec("3dgan")
    keras.utils.set_random_seed(5)
    save_generator(campaign.best_generator_path("3dgan", SEED), spec.build_generator(), spec,
                   {"recipe": recipe, "samples": 35_000, "seconds": 5234.4, "seed": SEED,
                    "selection_metric": campaign.SELECTION_METRIC, "value": 2.27})
    curve = {"benchmark": "3dgan", "seed": SEED, "recipe": recipe, "points": [], "sessions": [],
             "best": {"samples": 35_000, "metric": campaign.SELECTION_METRIC, "value": 2.27}}
    path = campaign.curve_path("3dgan", SEED)
    path.write_text(json.dumps(curve))
    return tmp_path


def registered_version(tmp_path, monkeypatch, sampling_fraction_limit: float, submittable: bool = True) -> str:
    """The smoke target's evaluation as a registered non-smoke version (in a scratch copy of the
    thresholds folder) with the sampling-fraction limit given."""
    import shutil

    from benchmark import quality
    from harness import thresholds_registry

    directory = tmp_path / "thresholds"
    if not directory.exists():
        shutil.copytree(quality.THRESHOLDS_DIR, directory)
        monkeypatch.setattr(quality, "THRESHOLDS_DIR", directory)
    document = json.loads((directory / "3dgan-smoke.json").read_text())
    version = f"3dgan-quality-ship-test-{sampling_fraction_limit:g}{'' if submittable else '-rc'}"
    document.update(smoke=False, submittable=submittable, version=version)
    document["metrics"]["objective.sampling_fraction"]["threshold"] = sampling_fraction_limit
    path = directory / f"{version}.json"
    path.write_text(json.dumps(document))
    thresholds_registry.register_version(path, directory / "registry.json")
    return version


def ship(tmp_path, monkeypatch, limit: float, *extra: str) -> int:
    return main(["reference", "ship", "--seed", str(SEED), "--data-dir", str(tmp_path / "data"),
                 "--target", registered_version(tmp_path, monkeypatch, limit),
                 "--dest", str(tmp_path / "checkpoints"), *extra])


def test_a_passing_generator_ships_with_its_card(campaign_with_best, capsys, monkeypatch):
    tmp_path = campaign_with_best
    assert ship(tmp_path, monkeypatch, 1e9) == 0
    weights = tmp_path / "checkpoints" / "3dgan-generator.weights.h5"
    spec, _ = load_generator(weights)  # hash and fingerprint verified
    assert spec.benchmark == "3dgan"
    assert sha256_of(weights) == sha256_of(campaign.best_generator_path("3dgan", SEED))
    card = read_card(weights)
    assert card["campaign"]["samples"] == 35_000 and card["validation"]["data_seed"] == 3001
    assert card["validation"]["passed"] is True and card["validation"]["thresholds"].startswith("3dgan-quality-ship-test-1e+09+sha256.")
    model_card = (tmp_path / "checkpoints" / "3dgan-generator.md").read_text()
    for text in ("objective.sampling_fraction", "empty_fraction", card["sha256"], "seed 3001",
                 "200,000 events (seed 1001)", "**PASSED**"):
        assert text in model_card
    assert "shipped" in capsys.readouterr().out
    assert "not submittable" not in model_card


def test_a_generator_shipped_against_a_candidate_says_so_in_its_model_card(campaign_with_best, capsys,
                                                                           monkeypatch):
    tmp_path = campaign_with_best
    version = registered_version(tmp_path, monkeypatch, 1e9, submittable=False)
    assert main(["reference", "ship", "--seed", str(SEED), "--data-dir", str(tmp_path / "data"),
                 "--target", version, "--dest", str(tmp_path / "checkpoints")]) == 0
    model_card = (tmp_path / "checkpoints" / "3dgan-generator.md").read_text()
    assert f"**PASSED** (`{version}` is not submittable: a release candidate" in model_card


def test_a_failing_generator_is_not_shipped(campaign_with_best, capsys, monkeypatch):
    tmp_path = campaign_with_best
    assert ship(tmp_path, monkeypatch, 1e-9) == 1
    assert not (tmp_path / "checkpoints").exists()
    out = capsys.readouterr().out
    assert "NOT shipped" in out and "FAIL" in out


def test_a_campaign_data_seed_is_refused_for_validation(campaign_with_best, capsys, monkeypatch):
    assert ship(campaign_with_best, monkeypatch, 1e9, "--validation-seed", "2001") == 2
    assert "never saw" in capsys.readouterr().err


def test_no_campaign_is_a_one_line_error(tmp_path, monkeypatch):
    from benchmark import quality
    from benchmark.ship import ship_reference

    monkeypatch.setattr(campaign, "CONVERGENCE_DIR", tmp_path / "convergence")
    with pytest.raises(InputError, match="harness reference train"):
        ship_reference("3dgan", SEED, quality.load_thresholds("3dgan", smoke=True), tmp_path)


def _campaign_state(samples: int, seed: int = SEED):
    """A campaign checkpoint of a fresh ReferenceGAN at `samples`, where the campaign keeps it."""
    import tensorflow as tf

    from reference_model.specs import get_spec
    from reference_model.training import ReferenceGAN

    gan = ReferenceGAN(get_spec("3dgan"), seed=11)
    state = gan.checkpoint(samples=tf.Variable(samples, dtype=tf.int64), elapsed=tf.Variable(99.0, dtype=tf.float64))
    tf.train.CheckpointManager(state, str(campaign.state_dir("3dgan", seed)), max_to_keep=1).save()
    return gan


def _with_point(tmp_path, samples: int):
    path = campaign.curve_path("3dgan", SEED)
    curve = json.loads(path.read_text())
    curve["points"] = [{"samples": samples, "seconds": 4321.0, "metrics": {campaign.SELECTION_METRIC: 3.5}}]
    path.write_text(json.dumps(curve))


def test_the_final_generator_is_the_campaigns_latest_evaluation(campaign_with_best, capsys, monkeypatch):
    import numpy as np

    tmp_path = campaign_with_best
    gan = _campaign_state(40_000)
    _with_point(tmp_path, 40_000)
    assert ship(tmp_path, monkeypatch, 1e9, "--generator", "final") == 0
    weights = tmp_path / "checkpoints" / "3dgan-generator.weights.h5"
    _, shipped = load_generator(weights)
    assert all(np.array_equal(a, b) for a, b in zip(shipped.get_weights(), gan.generator.get_weights()))
    card = read_card(weights)
    assert card["campaign"]["chosen"] == "final" and card["campaign"]["samples"] == 40_000
    assert "its generator at its latest evaluation" in (tmp_path / "checkpoints" / "3dgan-generator.md").read_text()
    assert "campaign's final generator" in capsys.readouterr().out


def test_a_final_checkpoint_between_evaluations_is_refused(campaign_with_best, capsys, monkeypatch):
    _campaign_state(41_000)
    _with_point(campaign_with_best, 40_000)
    assert ship(campaign_with_best, monkeypatch, 1e9, "--generator", "final") == 2
    assert "between evaluations" in capsys.readouterr().err
    assert not (campaign_with_best / "checkpoints").exists()


def test_an_unregistered_target_is_refused(campaign_with_best, capsys):
    assert main(["reference", "ship", "--seed", str(SEED), "--target", "3dgan-quality-v7"]) == 2
    assert "--target 3dgan-quality-v7: not a registered 3dgan quality version" in capsys.readouterr().err


def test_a_complete_hold_test_goes_on_the_card_and_the_model_card(campaign_with_best, monkeypatch):
    from benchmark import quality
    from benchmark.hold_test import HoldTest
    from benchmark.ship import record_hold_test

    tmp_path = campaign_with_best
    assert ship(tmp_path, monkeypatch, 1e9) == 0
    weights = tmp_path / "checkpoints" / "3dgan-generator.weights.h5"
    thresholds = quality.load_thresholds("3dgan", version="3dgan-quality-v2")
    seeds = {"5001": {"passed": True, "failed": [], "metrics": {"profile_l1.x": 0.01}, "judged": "2026-12-05T01:00:00"},
             "5002": {"passed": False, "failed": ["profile_l1.x"], "metrics": {"profile_l1.x": 0.5},
                      "judged": "2026-12-06T01:00:00"}}
    outcome = HoldTest({"planned_seeds": [5001, 5002], "seeds": seeds, "events": 13_000,
                        "command": "harness reference holdtest --seeds 5001-5002"})
    record = weights.with_name("3dgan-generator.holdtest-3dgan-quality-v2.json")
    record_hold_test(weights, outcome, thresholds, record)
    hold = read_card(weights)["hold_test"]
    assert (hold["passes"], hold["judged"], hold["required"], hold["holds"]) == (1, 2, 2, False)
    assert hold["failing"]["profile_l1.x"] == {"seeds": 1, "worst": 0.5, "limit": thresholds.limits["profile_l1.x"]}
    load_generator(weights)  # the card still verifies
    text = (tmp_path / "checkpoints" / "3dgan-generator.md").read_text()
    assert ("passes `3dgan-quality-v2` on **1 of 2** fresh stand-in sets of 13,000 events (seeds 5001-5002, 50%; "
            "a target that holds needs 2): it does not hold. Failing: `profile_l1.x` on 1") in text
    assert "2026-12-06, record `3dgan-generator.holdtest-3dgan-quality-v2.json`" in text
    outcome.document["planned_seeds"].append(5003)
    with pytest.raises(InputError, match="not complete"):
        record_hold_test(weights, outcome, thresholds, record)


def test_the_model_card_names_where_a_hold_tested_reference_came_from():
    from benchmark.ship import _chosen_text

    study = {"chosen": "v3 ema", "recipe": {"arm": "cosine"}}
    assert _chosen_text(study) == ("the recipe study's winning arm `cosine` at the end of its window, the moving "
                                   "average of its weights (the v3 reference)")
    angle = {"chosen": "v3 raw", "recipe": {"benchmark": "3dgan-angle"}}
    assert _chosen_text(angle) == ("the campaign of the recipe study's pick at the end of its window, its trained "
                                   "weights (the hold-tested reference)")


def test_each_benchmark_validates_its_shipping_on_its_own_fresh_seed():
    from benchmark.ship import VALIDATION_DATA_SEEDS

    assert VALIDATION_DATA_SEEDS == {"3dgan": 3001, "3dgan-angle": 3101}  # CALIBRATION.md
