"""`harness abandon`: an unfinished LoadGen run whose process is gone becomes an attempt."""
import json
import os

import pytest

from harness import checks, cli, results
from reference_model.errors import InputError
from tests.harness.fake_runs import SYSTEM, make_inference_result, write_system


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
    assert "recorded as an aborted attempt" in capsys.readouterr().out
    problems, checked = checks.check_tree(root)
    assert problems == [] and checked == 3
    [listed] = checks.loadgen_not_counted_runs(root)
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
