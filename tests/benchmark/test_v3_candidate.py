"""The steps from the study's winner to v3's release candidate: the export is the arm's generator
(or its moving average) at the end of its window, byte for byte what the checkpoint holds; the
floors come from v2's record except for the metrics v2 did not gate; nothing runs without a winner."""
import json
from dataclasses import asdict

import numpy as np
import pytest

from benchmark import campaign, quality, recipe_study, target_v3, v3_candidate
from benchmark.recipe import STUDY
from harness.cli import main
from reference_model.checkpoint import load_generator, read_card
from reference_model.errors import InputError


def _write_arm(arm: str, samples: int, with_checkpoint: bool = True, offset: float = 1.0,
               metrics: dict | None = None) -> tuple:
    """A curve of `arm` standing at `samples`, and a checkpoint there whose moving average differs
    from the trained weights by `offset` everywhere; returns (trained, averaged) weights."""
    return _write_campaign(STUDY[arm], samples, with_checkpoint, offset, metrics)


def _write_campaign(recipe, samples: int, with_checkpoint: bool = True, offset: float = 1.0,
                    metrics: dict | None = None) -> tuple:
    """`_write_arm` for any campaign recipe; (trained, None) where the recipe keeps no average."""
    import tensorflow as tf

    from reference_model.specs import get_spec
    from reference_model.training import ReferenceGAN

    points = [{"samples": s, "seconds": s / 7.0, "metrics": {**(metrics or {}), campaign.SELECTION_METRIC: 2.0},
               "ema": {"metrics": {**(metrics or {}), campaign.SELECTION_METRIC: 1.5}}}
              for s in range(recipe.eval_every_samples, samples + 1, recipe.eval_every_samples)]
    document = {"benchmark": recipe.benchmark, "seed": 1, "recipe": asdict(recipe), "points": points,
                "sessions": [{"samples_at_stop": samples}], "best": None}
    path = campaign.curve_path(recipe.campaign_name, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    gan = ReferenceGAN(get_spec(recipe.benchmark), seed=1, ema_decay=recipe.ema_decay)
    averages = gan.ema_weights if recipe.ema_decay is not None else []
    for average, weight in zip(averages, gan.generator.trainable_variables):
        average.assign(weight + offset)
    if with_checkpoint:
        state = gan.checkpoint(samples=tf.Variable(samples, dtype=tf.int64),
                               elapsed=tf.Variable(1.0, dtype=tf.float64))
        tf.train.CheckpointManager(state, str(campaign.state_dir(recipe.campaign_name, 1)), 1).save()
    return [w.numpy() for w in gan.generator.trainable_variables], [a.numpy() for a in averages] or None


@pytest.fixture
def convergence(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign, "CONVERGENCE_DIR", tmp_path / "convergence")
    return tmp_path


def test_export_is_the_moving_average_or_the_trained_weights_at_the_windows_end(convergence):
    trained, averaged = _write_arm("constant", 200_000)
    for generator, expected in (("ema", averaged), ("raw", trained)):
        path = v3_candidate.export_reference("constant", generator, convergence / f"{generator}.weights.h5")
        _, model = load_generator(path)  # SHA-256 and fingerprint verified
        for got, want in zip(model.trainable_variables, expected):
            np.testing.assert_array_equal(got.numpy(), want)
        card = read_card(path)
        assert (card["arm"], card["generator"], card["samples"]) == ("constant", generator, 200_000)
        assert card["value"] == (1.5 if generator == "ema" else 2.0)
    kept = convergence / "ema.weights.h5"
    assert v3_candidate.export_reference("constant", "ema", kept) == kept  # the same export is kept
    with pytest.raises(InputError, match="never replaced"):
        v3_candidate.export_reference("constant", "raw", kept)


def test_export_refuses_an_arm_short_of_its_window(convergence):
    _write_arm("constant", 150_000, with_checkpoint=False)
    with pytest.raises(InputError, match="stands at 150,000 samples.*end of the window, 200,000"):
        v3_candidate.export_reference("constant", "raw", convergence / "x.weights.h5")


def test_floors_are_v2s_record_and_only_the_added_metrics_are_measured():
    v2 = quality.load_thresholds("3dgan", version="3dgan-quality-v2")
    v1 = quality.load_thresholds("3dgan", version="3dgan-quality-v1")
    names = target_v3.proposed_metrics(v2)
    asked = []

    def measure(thresholds, missing):
        assert thresholds.version == v1.version
        asked.extend(missing)
        return {name: {"threshold": 0.5} for name in missing}

    floors = v3_candidate.floor_limits(v2, v1, names, measure)
    assert sorted(asked) == sorted(set(names) - set(v2.limits)) and len(asked) == 15
    assert floors["objective.sampling_fraction"] == v2.document["metrics"]["objective.sampling_fraction"]["floor_limit"]
    assert all(floors[name] == 0.5 for name in asked)


def test_nothing_runs_before_the_study_has_a_winner(convergence, capsys):
    with pytest.raises(InputError, match="no winner yet .next: the constant arm to 100,000"):
        v3_candidate.winner(recipe_study.gating_limits())
    assert main(["reference", "target-v3", "--status"]) == 1
    out = capsys.readouterr().out
    assert "1 export:     not yet" in out and "4 hold:       not yet" in out
    assert main(["reference", "target-v3"]) == 2  # the one-line error, no traceback
    assert "no winner yet" in capsys.readouterr().err


def test_the_exported_v3_reference_ships_with_its_recipe_on_the_model_card(convergence, monkeypatch, capsys):
    from tests.benchmark.test_ship import registered_version

    _write_arm("cosine", 200_000, offset=0.0)  # an untrained generator passes the loose test target
    v3_candidate.export_reference("cosine", "ema")
    version = registered_version(convergence, monkeypatch, 1e9)
    assert main(["reference", "ship", "--generator", "v3", "--target", version, "--data-dir",
                 str(convergence / "data"), "--dest", str(convergence / "checkpoints")]) == 0
    text = (convergence / "checkpoints" / "3dgan-generator.md").read_text()
    assert "winning arm `cosine` at the end of its window, the moving average of its weights (the v3 reference)" in text
    assert "decayed by a cosine to 0.1x between 100,000 and 200,000 samples" in text
    assert "moving average of the generator over 20,000 samples" in text
    assert read_card(convergence / "checkpoints" / "3dgan-generator.weights.h5")["campaign"]["samples"] == 200_000


def test_the_candidate_document_is_the_rules_from_window_calibration_seeds_and_floors(convergence):
    from benchmark.hold_test import CALIBRATION_SEEDS, HoldTest

    v2 = quality.load_thresholds("3dgan", version="3dgan-quality-v2")
    names = target_v3.proposed_metrics(v2)
    _write_arm("constant", 200_000, metrics={name: 0.01 for name in names})
    reference = v3_candidate.export_reference("constant", "raw", convergence / "ref.weights.h5")
    seeds = {str(s): {"passed": True, "failed": [], "metrics": {n: 0.02 for n in names}} for s in CALIBRATION_SEEDS}
    record = HoldTest({"candidate_sha256": read_card(reference)["sha256"], "planned_seeds": list(CALIBRATION_SEEDS),
                       "seeds": seeds})
    document = v3_candidate.candidate_document(reference, record, lambda path: "f" * 64,
                                               measure=lambda v1, missing: {n: {"threshold": 0.001} for n in missing})
    assert document["version"] == "3dgan-quality-v3-rc" and not document["submittable"]
    assert document["metrics"]["separation.moment_x2.E45-55"] == {
        "threshold": 0.022, "set_by": "calibration seeds", "window_max": 0.01, "calibration_max": 0.02,
        "floor_limit": 0.001}
    assert document["calibration"]["reference"]["arm"] == "constant"
    assert document["reproduction"] == {"within_samples": 300_000, "reference_seed": 1}
    record.document["planned_seeds"].append(4021)
    with pytest.raises(InputError, match="not complete"):
        v3_candidate.candidate_document(reference, record, lambda path: "f" * 64)


def test_the_angle_reference_is_its_campaigns_generator_and_its_candidate_the_angle_rule(convergence):
    """3dgan-angle: once the study picked (here the constant arm's trained weights, a tie going to
    the simplest), the angle campaign trains that recipe; its generator at 100,000 is exported
    with its card, and the candidate is 3dgan-angle-quality-v2-rc from seeds 4101-4120, floored
    by the angle noise floor's own limits (nothing measured) and never capped."""
    from benchmark.hold_test import HoldTest
    from benchmark.recipe import angle_campaign

    gating = {name: 0.5 for name in recipe_study.gating_limits()}
    for arm in ("constant", "cosine"):
        _write_arm(arm, 200_000, with_checkpoint=False, metrics=gating)
    with pytest.raises(InputError, match="the angle campaign stands at 0 samples.*end of the window, 100,000"):
        v3_candidate.export_angle_reference(recipe_study.gating_limits())
    v1 = quality.load_thresholds("3dgan-angle", version="3dgan-angle-quality-v1")
    names = target_v3.proposed_metrics(v1)
    trained, averaged = _write_campaign(angle_campaign("constant", "raw"), 100_000, metrics={n: 0.01 for n in names})
    assert averaged is None
    reference = v3_candidate.export_angle_reference(recipe_study.gating_limits())
    assert reference == v3_candidate.reference_path("3dgan-angle") and reference.name.startswith("3dgan-angle-v2-")
    _, model = load_generator(reference)
    np.testing.assert_array_equal(model.trainable_variables[0].numpy(), trained[0])
    card = read_card(reference)
    assert (card["campaign"], card["generator"], card["samples"]) == ("3dgan-angle", "raw", 100_000)
    seeds = target_v3.RULES["3dgan-angle"].calibration_seeds
    record = HoldTest({"candidate_sha256": card["sha256"], "planned_seeds": list(seeds),
                       "seeds": {str(s): {"passed": True, "failed": [], "metrics": {n: 0.02 for n in names}}
                                 for s in seeds}})

    def measure(v1, missing):
        raise AssertionError(f"the angle noise floor gates every metric; nothing to measure: {missing}")

    document = v3_candidate.candidate_document(reference, record, lambda path: "f" * 64, measure=measure,
                                               benchmark="3dgan-angle")
    assert document["version"] == "3dgan-angle-quality-v2-rc" and document["benchmark"] == "3dgan-angle"
    assert document["metrics"]["objective.angle"]["floor_limit"] == v1.limits["objective.angle"]
    assert document["calibration"]["reference"]["campaign"] == "3dgan-angle"
    assert v3_candidate.candidate_path("3dgan-angle").name == "3dgan-angle-v2-rc.json"
    assert v3_candidate.calibration_record(reference, "3dgan-angle").name.endswith(
        ".holdtest-3dgan-angle-quality-v1.json")
