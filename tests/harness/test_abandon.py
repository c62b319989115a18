"""`harness abandon`: an unfinished run whose process is gone keeps its number."""
import json
import os

import pytest

from harness import checks, cli, results, scoring
from reference_model.errors import InputError
from harness.mlperf_log import parse_log
from tests.harness.fake_runs import (SYSTEM, make_inference_result, make_training_result, write_system,
                                     write_training_log)


@pytest.fixture
def unfinished(tmp_path):
    """Run 1 finished, run 2 left unfinished by a launcher that died mid-search, run 3 finished."""
    write_system(tmp_path)
    make_inference_result(tmp_path)
    run = results.allocate_inference_run(tmp_path, SYSTEM, "3dgan", "Offline")
    for name in ("qps-900.0", "official-800.0"):
        (run.directory / name).mkdir()
    make_inference_result(tmp_path)
    return run


def test_an_abandoned_run_keeps_its_number_as_an_attempt(unfinished, capsys):
    root = unfinished.parent.parents[4]
    assert cli.main(["abandon", str(unfinished.directory), "--reason", "SIGKILL at the session's end",
                     "--precision", "int8"]) == 0
    summary = json.loads((unfinished.final_directory / "result.json").read_text())
    assert (summary["status"], summary["reason"], summary["scenario"]) == ("aborted", "SIGKILL at the session's "
                                                                                     "end", "Offline")
    assert summary["loadgen_runs"] == ["official-800.0", "qps-900.0"] and summary["command"] is None
    assert summary["recorded_by"].startswith("harness") and summary["settings"] == {"precision": "int8"}
    assert "run_2.partial recorded (aborted)" in capsys.readouterr().out
    problems, checked = checks.check_tree(root)
    assert problems == [] and checked == 3
    [listed] = checks.not_counted_runs(root)
    assert listed.path == unfinished.final_directory
    assert "not counted: LoadGen Offline int8 aborted (SIGKILL at the session's end)" in str(listed)


def test_a_run_a_process_still_writes_is_refused(unfinished, capsys):
    with open(unfinished.directory / "mlperf_log_detail.txt", "w"):
        assert cli.main(["abandon", str(unfinished.directory)]) == 2
    assert f"still open in process(es) {os.getpid()} on this node" in capsys.readouterr().err
    assert unfinished.directory.is_dir()


@pytest.mark.parametrize("where", ["finished", "not a run", "result written"])
def test_what_is_not_an_unfinished_loadgen_run_is_refused_in_one_line(unfinished, where):
    target = {"finished": unfinished.parent / "run_1", "not a run": unfinished.parent,
              "result written": unfinished.directory}[where]
    if where == "result written":
        (target / "result.json").write_text("{}")
    with pytest.raises(InputError) as refused:
        results.unfinished_inference_run(target)
    assert "\n" not in str(refused.value)
    expected = "rename it to run_2" if where == "result written" else "not an unfinished LoadGen run"
    assert expected in str(refused.value)


def test_a_training_run_whose_launcher_died_is_closed_as_aborted(tmp_path, capsys):
    write_system(tmp_path)
    make_training_result(tmp_path, "3dgan", "epoch-time")
    run = results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "epoch-time")
    write_training_log(run.log, mode="epoch-time", skip=("run_stop",))
    make_training_result(tmp_path, "3dgan", "epoch-time")
    assert cli.main(["abandon", str(run.log), "--reason", "node lost"]) == 0
    assert "result_2.txt.partial recorded (aborted)" in capsys.readouterr().out
    summary = json.loads(run.final_summary.read_text())
    assert (summary["status"], summary["reason"], summary["submittable"]) == ("aborted", "node lost", False)
    stop = [r for r in parse_log(run.final_log) if r.get("key") == "run_stop"]
    assert [s["metadata"]["status"] for s in stop] == ["aborted"]
    assert checks.check_tree(tmp_path, per_run=True)[0] == [], "an attempt, complete as what it is"
    found = [str(p) for p in checks.check_tree(tmp_path)[0] if "result_2" in str(p.path)]
    assert len(found) == 1 and "ended before rank 0 wrote its summary: run the submission again" in found[0]
    [listed] = checks.not_counted_runs(tmp_path)
    assert listed.path == run.final_summary and "epoch-time run aborted before rank 0" in str(listed)
    [scored] = scoring.score_results(results.iter_results(tmp_path))
    assert scored.score.runs == 2, "no result counts it, and its number is no missing run"


def test_a_training_run_whose_ranks_wrote_their_summary_is_finished_as_it_ended(tmp_path):
    write_system(tmp_path)
    run = results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "epoch-time")
    write_training_log(run.log, mode="epoch-time")
    finished = make_training_result(tmp_path, "3dgan", "epoch-time")
    rank0 = json.loads(finished.final_summary.read_text())
    results.write_summary(run.summary, {k: v for k, v in rank0.items() if k not in ("finished_at", "log")})
    assert cli.main(["abandon", str(run.summary)]) == 0
    assert json.loads(run.final_summary.read_text())["status"] == "success"
    assert not run.log.exists() and run.final_log.exists()
