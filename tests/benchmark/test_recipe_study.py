"""The recipe study (issue 22 §1): the learning-rate decay, the score, the stage gate and the pick
as CALIBRATION.md fixed them, and the whole queue on tiny arms (EMA judged, the cosine arm
branched from the constant one's state)."""
import argparse
import json
from dataclasses import replace

import pytest

from benchmark import campaign, recipe_study
from benchmark.recipe import STUDY, LearningRateDecay
from harness.commands.study import run_study


def test_cosine_decay_runs_from_the_peak_to_a_tenth_between_its_sample_counts():
    decay = STUDY["cosine"].lr_decay
    assert decay == LearningRateDecay(100_000, 200_000, 0.1)
    assert decay.factor(0) == decay.factor(100_000) == 1.0
    assert decay.factor(150_000) == pytest.approx(0.55)
    assert decay.factor(200_000) == pytest.approx(0.1) == decay.factor(300_000)


def test_arms_differ_only_where_the_study_says():
    constant, cosine, batch128 = STUDY["constant"], STUDY["cosine"], STUDY["batch128"]
    assert replace(cosine, arm="constant", lr_decay=None, branch_from=None) == constant
    assert replace(batch128, arm="constant", per_rank_batch=8, eval_every_samples=5_000) == constant
    assert cosine.branch_samples == 100_000 and constant.branch_samples == 0
    assert constant.ema_decay == pytest.approx(0.9996) and batch128.ema_decay == pytest.approx(0.9936)
    assert batch128.eval_every_samples % batch128.per_rank_batch == 0


def test_segments_end_at_the_last_evaluation_within_their_samples():
    """batch128 evaluates every 5,120: its segments stop at 97,280 and 199,680, where its window's
    last generator is the checkpoint, never one interval past it."""
    assert recipe_study.segment_end("batch128", 100_000) == 97_280
    assert recipe_study.segment_end("batch128", 200_000) == 199_680
    assert recipe_study.segment_end("constant", 200_000) == 200_000
    assert campaign._epochs(STUDY["batch128"], 1, 200_000) == 39
    assert campaign._epochs(STUDY["constant"], 1, 100_000) == 20


def test_score_is_the_capped_mean_ratio_to_the_limits():
    limits = {"a": 0.1, "b": 1.0}
    assert recipe_study.gated_score({"a": 0.05, "b": 1.0}, limits) == pytest.approx(0.75)
    assert recipe_study.gated_score({"a": 10.0, "b": 0.0}, limits) == pytest.approx(1.5)  # capped at 3


def _point(samples: int, raw: float, ema: float) -> dict:
    return {"samples": samples, "metrics": {"a": raw}, "ema": {"metrics": {"a": ema}}}


@pytest.fixture
def curves(tmp_path, monkeypatch):
    """Write synthetic arm curves into a scratch convergence folder."""
    monkeypatch.setattr(campaign, "CONVERGENCE_DIR", tmp_path)

    def write(arm: str, points: list[dict]) -> None:
        last = points[-1]["samples"] if points else 0
        document = {"points": points, "sessions": [{"samples_at_stop": last}]}
        campaign.curve_path(STUDY[arm].campaign_name, 1).write_text(json.dumps(document))

    return write


def _arm(curves, arm: str, until: int, raw: float, ema: float, step: int = 5_000) -> None:
    curves(arm, [_point(s, raw, ema) for s in range(step, until + 1, step)])


def test_stage_gate_drops_batch128_beyond_1_25x_the_constant(curves):
    limits = {"a": 1.0}
    _arm(curves, "constant", 100_000, raw=0.6, ema=0.5)
    assert not recipe_study.stage_gate(limits).decided
    assert recipe_study.next_segment(limits) == ("batch128", 100_000)
    _arm(curves, "batch128", 102_400, raw=0.7, ema=0.63, step=5_120)  # 0.63 > 1.25 x 0.5
    gate = recipe_study.stage_gate(limits)
    assert gate.decided and not gate.batch128_continues
    _arm(curves, "constant", 200_000, raw=0.6, ema=0.5)
    _arm(curves, "cosine", 200_000, raw=0.4, ema=0.45)
    assert recipe_study.next_segment(limits) is None  # batch128's second half is not trained


def test_pick_is_the_lowest_window_and_ties_go_to_the_simplest(curves):
    limits = {"a": 1.0}
    _arm(curves, "constant", 200_000, raw=0.50, ema=0.49)
    _arm(curves, "batch128", 200_000, raw=0.9, ema=0.9, step=5_120)  # dropped at the gate
    _arm(curves, "cosine", 150_000, raw=0.3, ema=0.3)
    assert recipe_study.final_verdict(limits).winner is None  # cosine has no window yet
    _arm(curves, "cosine", 200_000, raw=0.45, ema=0.40)
    verdict = recipe_study.final_verdict(limits)
    assert verdict.winner == ("cosine", "ema")  # 0.40: the others are more than 5% above
    _arm(curves, "cosine", 200_000, raw=0.50, ema=0.48)
    assert recipe_study.final_verdict(limits).winner == ("constant", "raw")  # 0.50 <= 1.05 x 0.48


def test_the_angle_campaign_trains_the_studys_pick_once_there_is_one(curves):
    """CALIBRATION.md (3dgan-angle, fixed 2026-12-04): the angle campaign's recipe is the fixed
    study's pick, its schedules scaled from 200,000 samples to 100,000, a moving average only if
    the pick is one; until the study picks, asking for it is a one-line error."""
    from benchmark.recipe import angle_campaign
    from reference_model.errors import InputError
    from reference_model.specs import get_spec

    limits = {"a": 1.0}
    _arm(curves, "constant", 200_000, raw=0.50, ema=0.49)
    _arm(curves, "batch128", 100_000, raw=0.9, ema=0.9, step=5_120)  # dropped at the gate
    with pytest.raises(InputError, match="the study has not picked yet"):
        recipe_study.angle_recipe(limits)
    _arm(curves, "cosine", 200_000, raw=0.45, ema=0.40)
    angle = recipe_study.angle_recipe(limits)
    assert angle == angle_campaign("cosine", "ema") and angle.campaign_name == "3dgan-angle"
    assert angle.lr_decay == LearningRateDecay(50_000, 100_000, 0.1)
    assert angle.ema_horizon_samples == 20_000 and angle.ema_decay == pytest.approx(1 - 8 / 20_000)
    assert (angle.budget_samples, angle.train_events, angle.train_data_seed, angle.heldout_events,
            angle.heldout_data_seed) == (100_000, 100_000, 1101, 7_000, 2101)
    assert angle.learning_rate == get_spec("3dgan-angle").learning_rate and angle.precision == "mixed_bfloat16"
    raw = angle_campaign("constant", "raw")
    assert raw.lr_decay is None and raw.ema_decay is None and raw.eval_every_samples == 5_000
    large = angle_campaign("batch128", "ema")
    assert (large.per_rank_batch, large.eval_every_samples, large.budget_samples) == (128, 5_120, 97_280)
    assert large.epochs == 19, "its last evaluation is within the 100,000 budget"
    assert large.ema_decay == pytest.approx(1 - 128 / 20_000)
    with pytest.raises(ValueError, match="'raw' or 'ema'"):
        angle_campaign("constant", "best")


@pytest.mark.slow
def test_the_study_queue_on_tiny_arms(tmp_path, monkeypatch):
    """Constant to 32, batch-16 arm to 32, the gate, then constant to 48 (cosine branched at 32
    first), cosine to 48: every evaluation judges the raw and the moving-average generator."""
    import keras

    policy = keras.mixed_precision.global_policy().name
    monkeypatch.setattr(campaign, "CONVERGENCE_DIR", tmp_path / "convergence")
    tiny = dict(eval_every_samples=16, budget_samples=48, train_events=300, heldout_events=300,
                events_per_file=150, smoke=True, ema_horizon_samples=160)
    arms = {"constant": replace(STUDY["constant"], **tiny),
            "cosine": replace(STUDY["cosine"], **tiny, lr_decay=LearningRateDecay(32, 48, 0.1)),
            "batch128": replace(STUDY["batch128"], **{**tiny, "eval_every_samples": 32}, per_rank_batch=16)}
    monkeypatch.setattr(recipe_study, "STUDY", arms)
    monkeypatch.setattr(recipe_study, "SEGMENTS", (("constant", 32), ("batch128", 32), ("constant", 48),
                                                   ("cosine", 48), ("batch128", 64)))
    monkeypatch.setattr(recipe_study, "STAGE_SAMPLES", 32)
    monkeypatch.setattr(recipe_study, "STAGE_WINDOW", (0, 32))
    monkeypatch.setattr(recipe_study, "STAGE_GATE_FACTOR", 1e-9)  # batch 16 never continues
    monkeypatch.setattr(recipe_study, "FINAL_WINDOW", (32, 48))
    monkeypatch.setattr(recipe_study, "gating_limits", lambda: {"objective.sampling_fraction": 1.0})
    args = argparse.Namespace(hours=1.0, status=False, plot=None, data_dir=str(tmp_path / "data"), threads=0,
                              nice=0)
    try:
        assert run_study(args) == 0
    finally:
        keras.mixed_precision.set_global_policy(policy)

    def curve(arm):
        return json.loads(campaign.curve_path(arms[arm].campaign_name, 1).read_text())

    constant, cosine, batch = curve("constant"), curve("cosine"), curve("batch128")
    assert [p["samples"] for p in constant["points"]] == [16, 32, 48]
    assert [p["samples"] for p in batch["points"]] == [32]
    assert [p["samples"] for p in cosine["points"]] == [16, 32, 48]
    assert cosine["points"][:2] == constant["points"][:2]  # shared up to the branch point
    assert cosine["points"][2] != constant["points"][2]
    assert cosine["branched_from"] == {"arm": "constant", "samples": 32}
    assert all("objective.sampling_fraction" in p["ema"]["metrics"] for c in (constant, cosine, batch)
               for p in c["points"])
    assert recipe_study.next_segment({"objective.sampling_fraction": 1.0}) is None
    assert recipe_study.final_verdict({"objective.sampling_fraction": 1.0}).winner is not None


def test_the_study_plot_draws_every_started_arm(curves, tmp_path):
    from harness.study_plot import plot_study

    _arm(curves, "constant", 60_000, raw=0.8, ema=0.7)
    _arm(curves, "batch128", 30_720, raw=1.2, ema=1.1, step=5_120)
    started = {arm: c for arm in STUDY if (c := recipe_study.read_arm(arm))}
    assert set(started) == {"constant", "batch128"}
    path = plot_study(started, {"a": 1.0}, tmp_path / "study.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
