"""`harness reference target --write` and `reproduce`: the v2 release candidate written and
registered at the budget only, and a second seed judged against it, with their exit codes."""
import json
from dataclasses import asdict

import pytest

from benchmark import campaign, quality
from benchmark.recipe import CAMPAIGNS
from benchmark.reference_target import v2_gated_metrics
from harness.cli import main

BUDGET = 60_000


def _curve(seed: int, last: int, value: float) -> dict:
    names = v2_gated_metrics(quality.load_thresholds("3dgan"))
    return {"benchmark": "3dgan", "seed": seed, "best": None, "sessions": [],
            "recipe": {**asdict(CAMPAIGNS["3dgan"]), "budget_samples": BUDGET},
            "points": [{"samples": s, "metrics": {n: value for n in names}} for s in range(5_000, last + 1, 5_000)]}


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """Curves, thresholds and the registry in a scratch folder as before the budget; floors v1
    lacks come back at once."""
    import shutil

    from benchmark import reference_target
    from harness import thresholds_registry

    monkeypatch.setattr(campaign, "CONVERGENCE_DIR", tmp_path / "convergence")
    (tmp_path / "convergence").mkdir()
    shutil.copytree(quality.THRESHOLDS_DIR, tmp_path / "thresholds")
    _before_the_budget(tmp_path / "thresholds")
    monkeypatch.setattr(quality, "THRESHOLDS_DIR", tmp_path / "thresholds")
    monkeypatch.setattr(thresholds_registry, "REGISTRY", tmp_path / "thresholds" / "registry.json")
    monkeypatch.setattr(reference_target, "floor_limits_like_v1", lambda v1, names, progress=True: {
        name: {"threshold": 0.02, "set_by": "test", "noise_floor": {}} for name in names})
    return tmp_path


def _before_the_budget(directory):
    """The thresholds folder as it was before seed 1's budget: no v2 candidate or target yet."""
    registry = json.loads((directory / "registry.json").read_text())
    for version in [v for v in registry["versions"] if v.startswith("3dgan-quality-v2")]:
        (directory / registry["versions"].pop(version)["file"]).unlink()
    registry["targets"]["3dgan"] = "3dgan-quality-v1"
    (directory / "registry.json").write_text(json.dumps(registry))


def _write(path, document):
    path.write_text(json.dumps(document))


def test_the_release_candidate_is_written_at_the_budget_only(scratch, capsys):
    _write(campaign.curve_path("3dgan", 1), _curve(1, BUDGET - 5_000, 0.05))
    assert main(["reference", "target", "--write"]) == 2
    assert "of its 60,000-sample budget" in capsys.readouterr().err
    assert not (scratch / "thresholds" / "3dgan-v2-rc.json").exists()

    _write(campaign.curve_path("3dgan", 1), _curve(1, BUDGET, 0.05))
    assert main(["reference", "target", "--write"]) == 0
    candidate = quality.load_thresholds("3dgan", path=scratch / "thresholds" / "3dgan-v2-rc.json")
    assert candidate.name == "3dgan-quality-v2-rc" and not candidate.submittable
    assert candidate.limits["profile_l1.x"] == pytest.approx(0.0625)  # 1.25 x 0.05 > the floor 0.02
    registered = json.loads((scratch / "thresholds" / "registry.json").read_text())["versions"]
    assert registered["3dgan-quality-v2-rc"]["file"] == "3dgan-v2-rc.json"
    out = capsys.readouterr().out
    assert "registered 3dgan-quality-v2-rc+sha256." in out
    assert "seed 1's own evaluations passing every limit: 12 of 12, first at 5,000 samples" in out
    assert main(["reference", "target", "--write"]) == 2, "a published candidate is never replaced"


def test_a_second_seed_is_judged_with_exit_codes(scratch, capsys):
    assert main(["reference", "reproduce"]) == 2  # no candidate yet
    _write(campaign.curve_path("3dgan", 1), _curve(1, BUDGET, 0.05))
    assert main(["reference", "target", "--write"]) == 0
    _write(campaign.curve_path("3dgan", 2), _curve(2, 20_000, 0.5))
    capsys.readouterr()
    assert main(["reference", "reproduce"]) == 1
    assert "not yet" in capsys.readouterr().out
    _write(campaign.curve_path("3dgan", 2), _curve(2, 20_000, 0.01))
    assert main(["reference", "reproduce"]) == 0
    assert "REPRODUCED: seed 2 passes every limit at 5,000 samples" in capsys.readouterr().out


def test_a_reproduced_candidate_is_promoted_to_the_benchmarks_target(scratch, capsys):
    _write(campaign.curve_path("3dgan", 1), _curve(1, BUDGET, 0.05))
    assert main(["reference", "target", "--write"]) == 0
    candidate = quality.load_thresholds("3dgan", path=scratch / "thresholds" / "3dgan-v2-rc.json")
    _write(campaign.curve_path("3dgan", 2), _curve(2, 20_000, 0.5))
    assert main(["reference", "reproduce", "--promote"]) == 1
    assert quality.load_thresholds("3dgan").name == "3dgan-quality-v1", "nothing promoted"

    _write(campaign.curve_path("3dgan", 2), _curve(2, 20_000, 0.01))
    assert main(["reference", "reproduce", "--promote"]) == 0
    target = quality.load_thresholds("3dgan")
    assert target.name == "3dgan-quality-v2" and target.submittable and target.limits == candidate.limits
    assert target.document["reproduction"]["reproduced_by_seed"] == 2
    assert target.document["reproduction"]["first_pass_samples"] == 5_000
    registry = json.loads((scratch / "thresholds" / "registry.json").read_text())
    assert registry["targets"]["3dgan"] == "3dgan-quality-v2" and "3dgan-quality-v2" in registry["versions"]
    assert "promoted" in capsys.readouterr().out
    assert main(["reference", "reproduce", "--promote"]) == 2, "a published target is never replaced"


def test_the_preview_says_where_the_reference_itself_passes(scratch, capsys):
    curve = _curve(1, 40_000, 0.05)
    curve["points"][-1]["metrics"]["profile_l1.x"] = 0.07  # above 1.25 x the rest, below its own bound
    curve["points"][0]["metrics"]["profile_l1.x"] = 1.0  # before the window (the last 6): fails
    _write(campaign.curve_path("3dgan", 1), curve)
    assert main(["reference", "target"]) == 0
    out = capsys.readouterr().out
    assert "PREVIEW at 40,000 of 60,000 samples" in out
    assert "seed 1's own evaluations passing every limit: 7 of 8, first at 10,000 samples" in out


def test_status_shows_how_far_a_second_seed_is_from_the_candidate(scratch, capsys):
    _write(campaign.curve_path("3dgan", 1), _curve(1, BUDGET, 0.05))
    assert main(["reference", "target", "--write"]) == 0
    curve = _curve(2, 10_000, 1e9)  # fails every limit at 5,000 samples
    curve["points"][-1]["metrics"] = dict.fromkeys(curve["points"][-1]["metrics"], 0.0)  # passes all at 10,000
    for point in curve["points"]:
        point.update(seconds=600.0, objective=1.0, failed=40)
    _write(campaign.curve_path("3dgan", 2), curve)
    capsys.readouterr()
    assert main(["reference", "status", "--seed", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-4].split()[-1] == "3dgan-quality-v2-rc", "the column names the candidate"
    assert [line.split()[-2:] for line in lines[-2:]] == [["40", "29"], ["40", "0"]]


def test_a_session_that_makes_its_data_trains_for_what_is_left_of_its_hours(tmp_path, monkeypatch):
    """Making a campaign's data (13 minutes for the angle set here) is part of the session's hours,
    so a queue session still ends at its deadline."""
    import time

    from harness.commands import reference

    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(campaign, "CONVERGENCE_DIR", tmp_path / "convergence")

    def make_data(recipe, data_dir):
        clock[0] += 0.25 * 3600.0  # a quarter of an hour making the sets
        return tmp_path / "train", tmp_path / "heldout"

    trained = {}
    monkeypatch.setattr(campaign, "ensure_campaign_data", make_data)
    monkeypatch.setattr(campaign, "run_campaign",
                        lambda recipe, seed, hours, *args, **kwargs: trained.update(hours=hours))
    reference.train_session(CAMPAIGNS["3dgan"], 1, 1.0, tmp_path / "data", threads=0)
    assert trained["hours"] == pytest.approx(0.75)


def test_target_v3_ends_with_what_the_judged_target_and_the_candidate_let_through(tmp_path, monkeypatch, capsys):
    """Past a candidate that holds, `target-v3` prints the distortions table for CALIBRATION.md, one
    column per target (the steps' compute replaced: export, hold tests, distorted samples)."""
    from benchmark import distortions, v3_candidate
    from benchmark.distortions import Distortion, Row
    from benchmark.hold_test import HoldTest

    reference, candidate = tmp_path / "angle.weights.h5", tmp_path / "angle-rc.json"
    candidate.write_text("{}")  # step 3 already done
    monkeypatch.setattr(v3_candidate, "reference_path", lambda benchmark: reference)
    monkeypatch.setattr(v3_candidate, "candidate_path", lambda benchmark: candidate)
    monkeypatch.setattr(v3_candidate, "export_angle_reference", lambda limits, path: path)
    held = HoldTest({"target": "rc", "planned_seeds": [1, 2], "seeds": {"1": {"passed": True, "failed": []},
                                                                        "2": {"passed": True, "failed": []}}})
    monkeypatch.setattr(v3_candidate, "calibrate", lambda *args, **kwargs: held)
    monkeypatch.setattr(v3_candidate, "hold", lambda *args, **kwargs: held)
    floor = quality.load_thresholds("3dgan-angle", version="3dgan-angle-quality-v1")
    monkeypatch.setattr(quality, "load_thresholds", lambda benchmark, version=None: floor)
    monkeypatch.setattr(distortions, "lets_through", lambda thresholds, pairs: [
        Row(Distortion("none"), ((),) * len(pairs)),
        Row(Distortion("scale", 1.05), (("objective.sampling_fraction",),) * len(pairs))])

    assert main(["reference", "target-v3", "--benchmark", "3dgan-angle"]) == 0
    out = capsys.readouterr().out
    assert "[v3] 5 distortions: what 3dgan-angle-quality-v1 and the candidate let through" in out
    table = out.split("[v3] 5 distortions", 1)[1]
    assert table.count("passes 2 of 2") == 2 and table.count("passes 0 of 2 (fails: objective.sampling_fraction)") == 2
    assert "pairs (reference:candidate seeds): 7:8,9:10" in table


def test_the_angle_target_is_promoted_once_a_second_seed_reproduces_it(tmp_path, monkeypatch, capsys):
    """3dgan-angle: the release candidate its campaign set (3dgan-angle-quality-v2-rc), reproduced
    by seed 2 of the same recipe, becomes the angle benchmark's target, and the queue sees it."""
    import shutil

    from benchmark import recipe_study
    from benchmark.calibration import write_thresholds
    from benchmark.recipe import angle_campaign
    from benchmark.v3_candidate import candidate_path
    from harness import campaign_queue, thresholds_registry

    monkeypatch.setattr(campaign, "CONVERGENCE_DIR", tmp_path / "convergence")
    shutil.copytree(quality.THRESHOLDS_DIR, tmp_path / "thresholds")
    monkeypatch.setattr(quality, "THRESHOLDS_DIR", tmp_path / "thresholds")
    monkeypatch.setattr(thresholds_registry, "REGISTRY", tmp_path / "thresholds" / "registry.json")
    registry = json.loads(thresholds_registry.REGISTRY.read_text())  # the committed candidate, if any, is
    registry["versions"].pop("3dgan-angle-quality-v2-rc", None)      # replaced by this test's own
    thresholds_registry.REGISTRY.write_text(json.dumps(registry))
    recipe = asdict(angle_campaign("cosine", "raw"))
    monkeypatch.setattr(recipe_study, "angle_recipe", lambda limits: angle_campaign("cosine", "raw"))
    floor = quality.load_thresholds("3dgan-angle")
    assert floor.name == "3dgan-angle-quality-v1"
    document = {**floor.document, "version": "3dgan-angle-quality-v2-rc", "submittable": False,
                "description": "a test candidate",
                "calibration": {"campaign": {"benchmark": "3dgan-angle", "seed": 1, "generator": "raw",
                                             "recipe": recipe}},
                "reproduction": {"within_samples": 150_000, "reference_seed": 1}}
    write_thresholds(document, candidate_path("3dgan-angle"))
    thresholds_registry.register_version(candidate_path("3dgan-angle"))
    curve = {"benchmark": "3dgan-angle", "seed": 2, "recipe": recipe, "best": None, "sessions": [],
             "points": [{"samples": s, "metrics": {n: value for n in floor.limits}}
                        for s, value in ((5_000, 1e9), (10_000, 0.0))]}
    campaign.curve_path("3dgan-angle", 2).parent.mkdir(parents=True)
    _write(campaign.curve_path("3dgan-angle", 2), curve)

    assert main(["reference", "reproduce", "--benchmark", "3dgan-angle", "--promote"]) == 0
    assert "REPRODUCED: seed 2 passes every limit at 10,000 samples" in capsys.readouterr().out
    target = quality.load_thresholds("3dgan-angle")
    assert target.name == "3dgan-angle-quality-v2" and target.submittable and target.limits == floor.limits
    assert (tmp_path / "thresholds" / "3dgan-angle-v2.json").is_file()
    assert campaign_queue._released("3dgan-angle") and not campaign_queue._released("3dgan")
    assert campaign_queue._second_seed_state("3dgan-angle").kind == campaign_queue.DONE
