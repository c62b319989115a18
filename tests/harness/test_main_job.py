"""The main job's inference step: gated on the shipped reference, else on the campaign's best
generator (below the target, an expected exit 1), else ungated on an untrained generator."""
from pathlib import Path

from harness import main_job
from harness.run_request import RunRequest


def inference_step(tmp_path, monkeypatch, shipped: bool, campaign_best: bool):
    shipped_path, best_path = tmp_path / "shipped.weights.h5", tmp_path / "best.weights.h5"
    for path, present in ((shipped_path, shipped), (best_path, campaign_best)):
        if present:
            path.write_bytes(b"weights")
    monkeypatch.setattr(main_job, "_checkpoint", lambda request: shipped_path)
    monkeypatch.setattr(main_job, "_campaign_best", lambda request: best_path)
    request = RunRequest.from_argv(["--results", str(tmp_path / "root")])
    steps = main_job._steps(request, tmp_path / "data", tmp_path / "reference", tmp_path / "root")
    return next(step for step in steps if "inference" in step[1])


def test_a_shipped_reference_is_validated_and_gated(tmp_path, monkeypatch):
    title, args, expected = inference_step(tmp_path, monkeypatch, shipped=True, campaign_best=True)
    assert expected == 0 and "--no-quality-gate" not in args and "--checkpoint" not in args
    assert args[args.index("--results") + 1] == str(tmp_path / "root")


def test_before_a_reference_ships_the_campaigns_best_runs_below_the_target(tmp_path, monkeypatch):
    title, args, expected = inference_step(tmp_path, monkeypatch, shipped=False, campaign_best=True)
    assert expected == main_job.BELOW_TARGET_EXIT and "below the target" in title
    assert args[args.index("--checkpoint") + 1] == str(tmp_path / "best.weights.h5")
    assert Path(args[args.index("--results") + 1]).name == "below-target"


def test_without_any_trained_generator_the_sweep_is_ungated(tmp_path, monkeypatch):
    title, args, expected = inference_step(tmp_path, monkeypatch, shipped=False, campaign_best=False)
    assert expected == 0 and "--no-quality-gate" in args and "UNGATED" in title
