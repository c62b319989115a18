"""`harness rcp ROOT`: a submitter's reference runs at a global batch no RCP covers become its RCP."""
import json

import pytest

from benchmark import rcp
from harness.checks import check_tree
from harness.cli import main
from harness.scoring import score_tree
from tests.harness.fake_runs import freeze_fake_thresholds, make_training_result, write_rcps, write_system

OPEN_SYSTEM = "open_sys"


@pytest.fixture(autouse=True)
def frozen(monkeypatch):
    return freeze_fake_thresholds(monkeypatch)


@pytest.fixture
def rcp_dir(tmp_path):
    directory = tmp_path / "rcp"
    directory.mkdir()
    (directory / "3dgan.json").write_text("{}\n")
    return directory


def harness_rcp(root, rcp_dir, *flags):
    return main(["rcp", str(root), "--rcp-dir", str(rcp_dir), *flags])


def converged_runs(root, seeds, ranks=2):
    """Closed time-to-accuracy runs at global batch 8 x `ranks`, each reaching the target in 128 samples."""
    write_system(root)
    for seed in seeds:
        make_training_result(root, "3dgan", "tta", ranks=ranks, seed=seed)


def test_converged_closed_runs_become_the_rcp_of_their_batch(tmp_path, rcp_dir, capsys):
    converged_runs(tmp_path, seeds=range(1, 6))
    assert harness_rcp(tmp_path, rcp_dir) == 0
    out = capsys.readouterr().out
    assert "1,2,3,4,5" in out and "none" in out and "--write would add the RCP of global batch 16" in out
    assert json.loads((rcp_dir / "3dgan.json").read_text()) == {}, "nothing is written without --write"

    assert harness_rcp(tmp_path, rcp_dir, "--write") == 0
    [record] = json.loads((rcp_dir / "3dgan.json").read_text()).values()
    assert record["BS"] == 16 and record[rcp.SAMPLES_KEY] == [128] * 5 and record["Seeds"] == [1, 2, 3, 4, 5]
    assert record["Hyperparams"]["opt_base_learning_rate"] == 0.002
    assert record["Hyperparams"]["quality_thresholds"].startswith("3dgan-quality-v2+sha256.")
    assert len(record[rcp.LOGS_KEY]) == 5


def test_the_runs_that_made_an_rcp_are_never_judged_by_it(tmp_path, rcp_dir, monkeypatch):
    reference, submission = tmp_path / "reference", tmp_path / "submission"
    converged_runs(reference, seeds=range(1, 6))
    assert harness_rcp(reference, rcp_dir, "--write") == 0
    monkeypatch.setattr("benchmark.rcp.RCP_DIR", rcp_dir)
    [itself] = score_tree(reference)
    assert itself.rcp["status"] == rcp.OWN_RUNS and not itself.rcp["passed"]
    assert itself.rcp["message"].startswith("5 of its runs are reference runs of the RCP at global batch 16")
    problems, _ = check_tree(reference)
    assert [p.message.endswith(itself.rcp["message"]) for p in problems] == [True], "harness check fails it"
    converged_runs(submission, seeds=range(11, 16))
    [apart] = score_tree(submission)
    assert apart.rcp["status"] == rcp.FOUND and apart.rcp["passed"]


def test_runs_that_are_not_reference_runs_say_why(tmp_path, rcp_dir, capsys):
    converged_runs(tmp_path, seeds=[1])
    make_training_result(tmp_path, "3dgan", "tta", seed=2, smoke=True)
    make_training_result(tmp_path, "3dgan", "tta", seed=3, status="aborted")
    write_system(tmp_path, system=OPEN_SYSTEM, division="open")
    make_training_result(tmp_path, "3dgan", "tta", seed=4, system=OPEN_SYSTEM, division="open")
    assert harness_rcp(tmp_path, rcp_dir) == 0
    reasons = [line.split(": ", 2)[-1] for line in capsys.readouterr().out.splitlines()
               if line.startswith("not a reference run")]
    assert sorted(reasons) == sorted(["a smoke run, judged by the smoke target", "did not reach the target",
                                      "open division: its recipe may differ from the reference's"])


def test_a_batch_with_an_rcp_is_never_replaced(tmp_path, rcp_dir, capsys):
    write_rcps(rcp_dir, global_batch=16)
    converged_runs(tmp_path, seeds=range(1, 4))
    assert harness_rcp(tmp_path, rcp_dir) == 0
    assert "has one (never replaced)" in capsys.readouterr().out
    assert harness_rcp(tmp_path, rcp_dir, "--write") == 2
    assert "nothing to write" in capsys.readouterr().err


@pytest.mark.parametrize("seeds, error", [
    ((1, 2), "2 run(s), at least 3 needed for an olympic mean"),
    ((1, 1, 2), "seeds [1, 1, 2] repeat; each run trains from its own seed"),
])
def test_too_few_or_repeated_runs_are_refused(tmp_path, rcp_dir, capsys, seeds, error):
    converged_runs(tmp_path, seeds=seeds)
    assert harness_rcp(tmp_path, rcp_dir, "--write") == 2
    assert error in capsys.readouterr().err
    assert json.loads((rcp_dir / "3dgan.json").read_text()) == {}
