"""The reference campaign on tiny data: evaluations recorded, best generator kept, and a session
stopped by its time limit mid-interval resumed without losing or double-counting a sample."""
import json
import os
import re
import signal
from dataclasses import replace

import pytest

from benchmark import campaign
from benchmark.recipe import CAMPAIGNS
from reference_model.checkpoint import load_generator

pytestmark = pytest.mark.slow

TINY = replace(CAMPAIGNS["3dgan"], per_rank_batch=8, eval_every_samples=16, budget_samples=48,
               smoke=True)


class NullLogger:
    def event(self, *args, **kwargs): ...
    def start(self, *args, **kwargs): ...
    def end(self, *args, **kwargs): ...


@pytest.fixture
def convergence_dir(tmp_path, monkeypatch):
    """A scratch convergence folder; the recipe's precision policy is restored afterwards (the
    trainer sets Keras' global policy, which would leak into later tests of this process)."""
    import keras

    policy = keras.mixed_precision.global_policy().name
    monkeypatch.setattr(campaign, "CONVERGENCE_DIR", tmp_path / "convergence")
    yield tmp_path / "convergence"
    keras.mixed_precision.set_global_policy(policy)


def run(fixed_data_dir, hours: float, seed: int = campaign.REFERENCE_SEED) -> dict:
    return campaign.run_campaign(TINY, seed=seed, hours=hours, train_data=fixed_data_dir,
                                 heldout_data=fixed_data_dir, logger=NullLogger(), command="test", system="testbox")


def test_campaign_records_every_evaluation_and_keeps_the_best_generator(fixed_data_dir, convergence_dir):
    session = run(fixed_data_dir, hours=1.0)
    curve = json.loads(campaign.curve_path("3dgan", campaign.REFERENCE_SEED).read_text())
    assert [p["samples"] for p in curve["points"]] == [16, 32, 48]
    assert all("objective.sampling_fraction" in p["metrics"] and "profile_l1" in p["metrics"]
               for p in curve["points"])
    assert curve["recipe"]["budget_samples"] == 48 and session["samples_at_stop"] == 48
    best = min(p["metrics"][campaign.SELECTION_METRIC] for p in curve["points"])
    assert curve["best"]["value"] == pytest.approx(best)
    # the hash and fingerprint are verified on loading
    spec, _ = load_generator(campaign.best_generator_path("3dgan", campaign.REFERENCE_SEED))
    assert spec.benchmark == "3dgan"
    assert len(list(campaign.state_dir("3dgan", campaign.REFERENCE_SEED).glob("*.index"))) == 1  # one copy of the state


def test_the_angle_campaign_trains_with_its_decay_and_moving_average(angle_data_dir, convergence_dir):
    """The recipe the angle campaign takes from a study picking the cosine arm's moving average,
    shrunk: the angle model trains in mixed bfloat16, its rate decays, and every evaluation judges
    the generator and its moving average."""
    from benchmark.recipe import LearningRateDecay, angle_campaign

    tiny = replace(angle_campaign("cosine", "ema"), eval_every_samples=16, budget_samples=32, smoke=True,
                   lr_decay=LearningRateDecay(16, 32, 0.1), ema_horizon_samples=160)
    session = campaign.run_campaign(tiny, seed=campaign.REFERENCE_SEED, hours=1.0, train_data=angle_data_dir,
                                    heldout_data=angle_data_dir, logger=NullLogger(), command="test", system="testbox")
    curve = json.loads(campaign.curve_path("3dgan-angle", campaign.REFERENCE_SEED).read_text())
    assert [p["samples"] for p in curve["points"]] == [16, 32] and session["samples_at_stop"] == 32
    assert all("objective.angle" in p["metrics"] and "objective.angle" in p["ema"]["metrics"]
               for p in curve["points"])
    assert curve["recipe"]["lr_decay"] == {"start_samples": 16, "end_samples": 32, "final_factor": 0.1}
    spec, _ = load_generator(campaign.best_generator_path("3dgan-angle", campaign.REFERENCE_SEED))
    assert spec.benchmark == "3dgan-angle"


@pytest.fixture
def release_candidate(tmp_path, monkeypatch):
    """Writes a release candidate set by a TINY reference campaign, gating one separation power
    at `limit`, into a scratch thresholds folder."""
    import shutil
    from dataclasses import asdict

    from benchmark import quality
    from benchmark.reference_target import release_candidate_path

    directory = tmp_path / "thresholds"
    shutil.copytree(quality.THRESHOLDS_DIR, directory)
    monkeypatch.setattr(quality, "THRESHOLDS_DIR", directory)
    release_candidate_path("3dgan").unlink()  # the published one was set by the real recipe
    smoke = quality.load_thresholds("3dgan", smoke=True)

    def write(limit: float, recipe=TINY) -> str:
        document = {"benchmark": "3dgan", "version": "3dgan-quality-test-v2-rc", "smoke": False,
                    "submittable": False, "evaluation": smoke.document["evaluation"],
                    "metrics": {"separation.sampling_fraction.E1-1000": {"threshold": limit}},
                    "calibration": {"campaign": {"seed": 1, "recipe": asdict(recipe)}},
                    "reproduction": {"within_samples": recipe.reproduction_samples, "reference_seed": 1}}
        release_candidate_path("3dgan").write_text(json.dumps(document))
        return document["version"]
    return write


def test_a_second_seed_trains_to_one_and_a_half_budgets(fixed_data_dir, convergence_dir, release_candidate,
                                                        capsys):
    """It has to reach the target the reference seed set within 1.5 x the reference's budget;
    every evaluation says how far it is from it."""
    name = release_candidate(limit=-1.0)  # never reached
    session = run(fixed_data_dir, hours=1.0, seed=2)
    curve = json.loads(campaign.curve_path("3dgan", 2).read_text())
    assert TINY.reproduction_samples == 72 and session["samples_at_stop"] >= 72
    assert [p["samples"] for p in curve["points"]] == [16, 32, 48, 64, 80]
    assert capsys.readouterr().out.count(f"1 of 1 {name} limits failing") == 5


def test_a_second_seed_stops_when_it_reproduces_the_release_candidate(fixed_data_dir, convergence_dir,
                                                                      release_candidate, capsys):
    from reference_model.errors import InputError

    name = release_candidate(limit=2.0)  # a separation power never exceeds 1: the first evaluation passes
    session = run(fixed_data_dir, hours=1.0, seed=2)
    curve = json.loads(campaign.curve_path("3dgan", 2).read_text())
    assert [p["samples"] for p in curve["points"]] == [16] and session["samples_at_stop"] == 16
    assert session["reason"] == f"seed 2 reproduced {name} at 16 samples"
    assert "harness reference reproduce --promote" in capsys.readouterr().out
    with pytest.raises(InputError, match=f"seed 2 already reproduced {name} at 16 samples"):
        run(fixed_data_dir, hours=1.0, seed=2)


def test_only_a_candidate_of_the_same_recipe_is_a_reproduction_target(convergence_dir, release_candidate):
    from dataclasses import asdict

    assert campaign.reproduction_target("3dgan", asdict(TINY)) is None  # none written
    release_candidate(limit=2.0, recipe=replace(TINY, learning_rate=5e-4))
    assert campaign.reproduction_target("3dgan", asdict(TINY)) is None
    name = release_candidate(limit=2.0)
    assert campaign.reproduction_target("3dgan", asdict(TINY)).name == name


def test_a_session_stopped_mid_interval_resumes_without_losing_samples(fixed_data_dir, convergence_dir,
                                                                      monkeypatch):
    from reference_model.training import ReferenceGAN

    steps = []
    set_learning_rate = ReferenceGAN.set_learning_rate

    def sigterm_at_third_step(self, learning_rate):
        steps.append(learning_rate)
        if len(steps) == 3:  # the first step of the second interval
            os.kill(os.getpid(), signal.SIGTERM)
        set_learning_rate(self, learning_rate)

    monkeypatch.setattr(ReferenceGAN, "set_learning_rate", sigterm_at_third_step)
    first = run(fixed_data_dir, hours=1.0)
    assert 16 <= first["samples_at_stop"] < 48 and "SIGTERM" in first["reason"]
    monkeypatch.setattr(ReferenceGAN, "set_learning_rate", set_learning_rate)
    second = run(fixed_data_dir, hours=1.0)
    curve = json.loads(campaign.curve_path("3dgan", campaign.REFERENCE_SEED).read_text())
    assert second["samples_at_start"] == first["samples_at_stop"] and second["samples_at_stop"] == 48
    assert [p["samples"] for p in curve["points"]] == [16, 32, 48]
    assert len(curve["sessions"]) == 2
    assert all(re.fullmatch(r"[0-9a-f]{40}(-dirty)?", s["suite_commit"]) for s in curve["sessions"]), \
        "each session records the commit of the code it ran"
    assert [s["system"] for s in curve["sessions"]] == ["testbox", "testbox"], "and the system it ran on"


def test_the_time_limit_stops_with_a_checkpoint(fixed_data_dir, convergence_dir):
    first = run(fixed_data_dir, hours=1e-9)  # already over at the first step
    assert first["samples_at_stop"] == 0 and "time limit" in first["reason"]
    assert (campaign.state_dir("3dgan", campaign.REFERENCE_SEED) / "checkpoint").is_file()


def test_a_changed_recipe_is_refused(fixed_data_dir, convergence_dir):
    from reference_model.errors import InputError

    run(fixed_data_dir, hours=1e-9)
    with pytest.raises(InputError, match="another recipe"):
        campaign.run_campaign(replace(TINY, learning_rate=5e-4), seed=campaign.REFERENCE_SEED, hours=1.0,
                              train_data=fixed_data_dir, heldout_data=fixed_data_dir,
                              logger=NullLogger(), command="test", system="testbox")


def test_a_corrupt_curve_or_state_is_a_one_line_error(fixed_data_dir, convergence_dir):
    from reference_model.errors import InputError

    run(fixed_data_dir, hours=1e-9)
    state = campaign.state_dir("3dgan", campaign.REFERENCE_SEED)
    [data] = state.glob("*.data-*")
    data.write_bytes(data.read_bytes()[:100])  # truncated, as a disk full would leave it
    with pytest.raises(InputError, match="cannot restore the training state"):
        run(fixed_data_dir, hours=1.0)
    campaign.curve_path("3dgan", campaign.REFERENCE_SEED).write_text("{not json")
    with pytest.raises(InputError, match="corrupt campaign curve"):
        run(fixed_data_dir, hours=1.0)


def test_a_wrong_bfloat16_kernel_stops_training_before_the_clock(fixed_data_dir, convergence_dir, monkeypatch):
    """The trainer checks every bf16 layer on its own node (reference_model.numerics) before run_start."""
    from reference_model import numerics
    from reference_model.errors import InputError

    real = numerics._run

    def wrong_in_bf16(layer, *args):
        results = real(layer, *args)
        return [r * 2.0 for r in results] if layer.compute_dtype == "bfloat16" else results

    monkeypatch.setattr(numerics, "_run", wrong_in_bf16)
    with pytest.raises(InputError, match="low-precision kernels compute generator_3dgan/dense"):
        run(fixed_data_dir, hours=1.0)
    assert json.loads(campaign.curve_path("3dgan", campaign.REFERENCE_SEED).read_text())["points"] == []


class RecordingLogger(NullLogger):
    def __init__(self) -> None:
        self.events: dict = {}

    def event(self, key, value=None, metadata=None):
        self.events[key] = value


def test_a_closed_rule_study_run_emulates_its_ranks_under_its_rule_and_ends_at_the_target(
        fixed_data_dir, convergence_dir, monkeypatch, capsys):
    """Two ranks emulated at the square-root rule with a warm-up in samples; its first evaluation
    passing the target it is judged against ends it, and it is not trained again."""
    import math
    from dataclasses import asdict

    from benchmark import quality
    from benchmark.recipe import SQRT, ScaleRecipe
    from reference_model.errors import InputError
    from reference_model.training import ReferenceGAN

    target = quality.load_thresholds("3dgan", smoke=True)
    tiny = ScaleRecipe(**{**asdict(TINY), "eval_every_samples": 32, "budget_samples": 96}, emulated_ranks=2,
                       lr_scaling=SQRT, warmup_samples=32, candidate="sqrt", target=target.version)
    rates, set_learning_rate = [], ReferenceGAN.set_learning_rate

    def record_rate(self, learning_rate):
        rates.append(learning_rate)
        set_learning_rate(self, learning_rate)

    monkeypatch.setattr(ReferenceGAN, "set_learning_rate", record_rate)
    logger = RecordingLogger()
    session = campaign.run_campaign(tiny, seed=1, hours=1.0, train_data=fixed_data_dir, heldout_data=fixed_data_dir,
                                    logger=logger, command="test", system="testbox")
    base = tiny.learning_rate
    assert rates[:3] == pytest.approx([base, base * (1 + math.sqrt(2)) / 2, base * math.sqrt(2)])  # 16 a step
    assert (logger.events["emulated_ranks"], logger.events["global_batch_size"]) == (2, 16)
    assert logger.events["opt_learning_rate_scaling"] == SQRT
    assert logger.events["opt_learning_rate_warmup_factor"] == pytest.approx(math.sqrt(2))
    assert logger.events["opt_learning_rate_warmup_steps"] == 2
    curve = json.loads(campaign.curve_path("3dgan-scale-b16-sqrt", 1).read_text())
    assert [p["samples"] for p in curve["points"]][:1] == [32] and curve["recipe"]["emulated_ranks"] == 2

    passing = replace(target, limits={"objective.total": math.inf})  # every evaluation passes it
    monkeypatch.setattr(campaign, "_stop_target", lambda recipe, seed: (passing, "raw"))
    with pytest.raises(InputError, match="has ended \\(converged at 32 samples\\)"):
        campaign.run_campaign(tiny, seed=1, hours=1.0, train_data=fixed_data_dir, heldout_data=fixed_data_dir,
                              logger=NullLogger(), command="test", system="testbox")
    session = campaign.run_campaign(tiny, seed=2, hours=1.0, train_data=fixed_data_dir,
                                    heldout_data=fixed_data_dir, logger=NullLogger(), command="test", system="testbox")
    assert session["samples_at_stop"] == 32 and session["reason"].startswith("seed 2 reached")
    assert "converged, stopping" in capsys.readouterr().out
