"""The main job's inference step: gated on the shipped reference (against the release candidate it
was shipped against, outside the results tree, while that candidate awaits its second seed), else
on the campaign's best generator (below the target, an expected exit 1), else ungated on an
untrained generator; every benchmark's reference is gated, the requested one's epoch time
measured."""
import json
from pathlib import Path

from harness import main_job
from harness.run_request import RunRequest


def inference_step(tmp_path, monkeypatch, shipped: bool, campaign_best: bool, candidate=None):
    shipped_path, best_path = tmp_path / "shipped.weights.h5", tmp_path / "best.weights.h5"
    for path, present in ((shipped_path, shipped), (best_path, campaign_best)):
        if present:
            path.write_bytes(b"weights")
    monkeypatch.setattr(main_job, "_checkpoint", lambda request, benchmark: shipped_path)
    monkeypatch.setattr(main_job, "_campaign_best", lambda benchmark: best_path)
    monkeypatch.setattr(main_job, "_candidate_target", lambda checkpoint, benchmark: candidate)
    request = RunRequest.from_argv(["--results", str(tmp_path / "root")])
    steps = main_job._steps(request, tmp_path / "data", tmp_path / "root")
    return next(step for step in steps if "inference" in step.args)


def validate_step(tmp_path, monkeypatch, candidate):
    inference_step(tmp_path, monkeypatch, shipped=True, campaign_best=True, candidate=candidate)
    request = RunRequest.from_argv(["--results", str(tmp_path / "root")])
    steps = main_job._steps(request, tmp_path / "data", tmp_path / "root")
    return next(step for step in steps if "validate" in step.args)


def test_a_shipped_reference_is_validated_and_gated(tmp_path, monkeypatch):
    title, args, expected, note = inference_step(tmp_path, monkeypatch, shipped=True, campaign_best=True)
    assert expected == 0 and "--no-quality-gate" not in args and "--checkpoint" not in args
    assert args[args.index("--results") + 1] == str(tmp_path / "root")


def test_a_reference_shipped_against_a_release_candidate_is_gated_against_it_outside_the_tree(
        tmp_path, monkeypatch):
    title, args, expected, note = inference_step(tmp_path, monkeypatch, shipped=True, campaign_best=True,
                                           candidate="3dgan-quality-v2-rc")
    assert expected == 0 and args[args.index("--target") + 1] == "3dgan-quality-v2-rc"
    assert Path(args[args.index("--results") + 1]).name == "release-candidate"
    assert "release candidate: not a result" in title
    title, args, expected, note = validate_step(tmp_path, monkeypatch, "3dgan-quality-v2-rc")
    assert expected == 0 and args[args.index("--target") + 1] == "3dgan-quality-v2-rc"
    assert "not yet reproduced by a second seed" in note
    _, args, _, _ = validate_step(tmp_path, monkeypatch, None)
    assert "--target" not in args


def test_the_candidate_target_is_read_from_the_shipped_card(tmp_path, registered_candidate):
    """Before promotion (v1 the target), a card naming the candidate makes the main job follow it."""
    from reference_model.checkpoint import save_generator, sidecar_path
    from reference_model.specs import get_spec

    spec = get_spec("3dgan")
    path = save_generator(tmp_path / "g.weights.h5", spec.build_generator(), spec)
    sidecar = sidecar_path(path)
    assert main_job._candidate_target(path, "3dgan") is None  # never validated: nothing to follow
    for version, expected in (("3dgan-quality-v2-rc+sha256.0123456789ab", "3dgan-quality-v2-rc"),
                              ("3dgan-quality-v1+sha256.88df1430b2b1", None)):
        card = json.loads(sidecar.read_text())
        card["validation"] = {"thresholds": version}
        sidecar.write_text(json.dumps(card))
        assert main_job._candidate_target(path, "3dgan") == expected


def test_after_promotion_the_checkpoint_follows_the_target(tmp_path, monkeypatch):
    """Promotion keeps the candidate's limits, so a checkpoint shipped against the candidate is
    then validated and gated against the benchmark's target, inside the results tree."""
    from types import SimpleNamespace

    from benchmark import quality
    from reference_model.checkpoint import save_generator, sidecar_path
    from reference_model.specs import get_spec

    spec = get_spec("3dgan")
    path = save_generator(tmp_path / "g.weights.h5", spec.build_generator(), spec)
    card = json.loads(sidecar_path(path).read_text())
    card["validation"] = {"thresholds": "3dgan-quality-v2-rc+sha256.0123456789ab"}
    sidecar_path(path).write_text(json.dumps(card))
    promoted = SimpleNamespace(name="3dgan-quality-v2", document={
        "reproduction": {"candidate": "3dgan-quality-v2-rc+sha256.0123456789ab"}})
    monkeypatch.setattr(quality, "load_thresholds", lambda benchmark: promoted)
    assert main_job._candidate_target(path, "3dgan") is None


def test_before_a_reference_ships_the_campaigns_best_runs_below_the_target(tmp_path, monkeypatch):
    title, args, expected, note = inference_step(tmp_path, monkeypatch, shipped=False, campaign_best=True)
    assert expected == main_job.BELOW_TARGET_EXIT and "below the target" in title and "no shipped" in note
    assert args[args.index("--checkpoint") + 1] == str(tmp_path / "best.weights.h5")
    assert Path(args[args.index("--results") + 1]).name == "below-target"


def test_without_any_trained_generator_the_sweep_is_ungated(tmp_path, monkeypatch):
    title, args, expected, note = inference_step(tmp_path, monkeypatch, shipped=False, campaign_best=False)
    assert expected == 0 and "--no-quality-gate" in args and "UNGATED" in title and "UNTRAINED" in note


def test_the_tour_gates_every_benchmarks_reference_and_times_the_requested_one(tmp_path, monkeypatch):
    """The fixed reference shipped, the angle one not yet: the fixed one validated and gated, the
    angle campaign's best generator swept below its target, epoch time for the fixed benchmark."""
    from reference_model.specs import BENCHMARKS

    assert set(BENCHMARKS) == {"3dgan", "3dgan-angle"}
    shipped, best = tmp_path / "3dgan.weights.h5", tmp_path / "3dgan-angle-best.weights.h5"
    shipped.write_bytes(b"weights")
    best.write_bytes(b"weights")
    monkeypatch.setattr(main_job, "_checkpoint", lambda request, benchmark: tmp_path / f"{benchmark}.weights.h5")
    monkeypatch.setattr(main_job, "_campaign_best", lambda benchmark: tmp_path / f"{benchmark}-best.weights.h5")
    monkeypatch.setattr(main_job, "_candidate_target", lambda checkpoint, benchmark: None)
    request = RunRequest.from_argv(["--results", str(tmp_path / "root")])
    steps = main_job._steps(request, tmp_path / "data", tmp_path / "root")

    def benchmark_of(args):
        return args[args.index("--benchmark") + 1] if "--benchmark" in args else None

    assert [(args[0], args[2] if args[0] == "run" else None, benchmark_of(args), expected)
            for _, args, expected, _ in steps] == [
        ("validate", None, None, 0), ("run", "inference", "3dgan", 0),
        ("run", "inference", "3dgan-angle", main_job.BELOW_TARGET_EXIT),
        ("run", "epoch-time", "3dgan", 0), ("run", "epoch-time", "3dgan", 0),
        ("check", None, None, 0), ("summarize", None, None, 0)]
    validate, angle = steps[0].args, steps[2].args
    assert validate[validate.index("--candidate") + 1] == str(shipped)
    assert validate[validate.index("--reference") + 1].endswith("standin-fixed-seed1000")
    assert angle[angle.index("--checkpoint") + 1] == str(best)
    assert Path(angle[angle.index("--results") + 1]).name == "below-target"

    angle_first = main_job.toured(RunRequest.from_argv(["--benchmark", "3dgan-angle"]))
    assert angle_first == ["3dgan-angle", "3dgan"]


def test_a_checkpoint_flag_replaces_only_the_requested_benchmarks_reference(tmp_path):
    from reference_model.checkpoint import frozen_checkpoint

    request = RunRequest.from_argv(["--checkpoint", str(tmp_path / "mine.weights.h5")])
    assert main_job._checkpoint(request, "3dgan") == tmp_path / "mine.weights.h5"
    assert main_job._checkpoint(request, "3dgan-angle") == frozen_checkpoint("3dgan-angle")


def test_each_step_says_how_long_it_took_and_a_wrong_exit_fails_the_job(tmp_path, monkeypatch, capsys):
    """The tour runs every step as its own process (replaced here), prints each step's note and
    duration, accepts the below-target sweep's exit 1, and fails on any other unexpected status."""
    from types import SimpleNamespace

    steps = [main_job.Step("sweep", ["run", "--mode", "inference"], main_job.BELOW_TARGET_EXIT, "why it runs so"),
             main_job.Step("summary", ["summarize", str(tmp_path)])]
    monkeypatch.setattr(main_job, "_steps", lambda request, data, root: steps)
    monkeypatch.setattr(main_job, "_checkpoint", lambda request, benchmark: tmp_path / "none.weights.h5")
    codes = iter([1, 0])
    monkeypatch.setattr(main_job.subprocess, "run", lambda command, check: SimpleNamespace(returncode=next(codes)))
    request = RunRequest.from_argv(["--results", str(tmp_path / "root"), "--data", str(tmp_path / "data")])
    assert main_job.run_main_job(request) == 0
    out = capsys.readouterr().out
    assert "[main job] 2: sweep\n[main job] why it runs so\n$ harness run --mode inference" in out
    assert "step 2 took 0.0 min; exit 1, as expected: the generator is below the target" in out
    assert "[main job] step 3 took 0.0 min\n" in out

    codes = iter([0, 0])
    assert main_job.run_main_job(request) == 1
    captured = capsys.readouterr()
    assert "step 2 took 0.0 min; exit 0 where 1 was expected" in captured.out
    assert "steps that failed: sweep (exit 0)" in captured.err
