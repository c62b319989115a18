"""The first time-to-accuracy results (issue 23 §4): five uninterrupted one-rank runs of the
closed defaults, started only when the session's hours cover one, waiting for a person while the
closed defaults do not train as the RCP runs did, and a cut-off run set aside, never scored."""
import json
from pathlib import Path

import pytest

from harness import campaign_queue as queue
from harness import first_results
from harness.campaign_queue import BLOCKED, DONE, FOREGROUND, READY
from harness.first_results import Reference
from tests.harness.test_reference_runs import one_rank_run

SYSTEM = "sys_a"


def write_result(root: Path, index: int, seed: int, status: str = "success", reason: str = "",
                 ranks: int = 1, submittable: bool = True) -> Path:
    path = root / "results" / SYSTEM / "strong" / "3dgan" / f"result_{index}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"status": status, "reason": reason, "mode": "tta", "benchmark": "3dgan",
                                "nodes": 1, "ranks": ranks, "submittable": submittable,
                                "command": f"python -m harness.cli run --worker --mode tta --seed {seed}"}))
    path.with_suffix(".txt").write_text(":::MLLOG {}\n")
    return path


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.results.system_name", lambda requested=None: SYSTEM)
    monkeypatch.setattr(first_results, "RESULTS_ROOT", tmp_path / "results-root")
    monkeypatch.setattr(first_results, "INTERRUPTED", tmp_path / "interrupted")
    return tmp_path / "results-root"


def test_runs_that_ended_by_themselves_count_and_cut_off_ones_do_not(tree):
    write_result(tree, 1, 101)
    write_result(tree, 2, 102, "aborted", "quality target not reached in 30 epochs")
    write_result(tree, 3, 103, "aborted", "SIGTERM during epoch 4 after step 100; checkpoint saved")
    write_result(tree, 4, 104, "aborted", "the ranks died", submittable=False)
    write_result(tree, 5, 7)  # not this job's: a seed below its first
    write_result(tree, 6, 105, ranks=2)  # not one rank
    ended, cut_off = first_results.runs(tree)
    assert [f.summary_path.name for f in ended] == ["result_1.json", "result_2.json"]
    assert [f.summary_path.name for f in cut_off] == ["result_3.json", "result_4.json"]
    assert first_results.next_seed(tree) == 105, "cut-off runs' seeds are not used again"


def test_a_cut_off_run_is_set_aside_with_its_log(tree):
    path = write_result(tree, 1, 101, "aborted", "SIGTERM during epoch 2")
    first_results.set_aside(first_results.runs(tree)[1])
    assert not path.exists() and not path.with_suffix(".txt").exists()
    assert sorted(p.name for p in first_results.INTERRUPTED.iterdir()) == [f"{SYSTEM}-seed101-result_1.json",
                                                                             f"{SYSTEM}-seed101-result_1.txt"]
    assert first_results.runs(tree) == ([], [])
    assert first_results.next_seed(tree) == 102, "a set-aside run's seed is not used again"


def test_the_hours_a_run_needs():
    assert Reference(None, 72_000, 8.0).hours_needed() == pytest.approx(1.25 * 72_000 / 8.0 / 3600)
    assert Reference(None, 72_000, None).hours_needed() is None


def test_the_job_waits_for_the_study_then_for_the_decision_then_runs_five(tree, monkeypatch):
    from reference_model.errors import InputError

    def not_yet():
        raise InputError("the first time-to-accuracy results need the closed-rule study done")

    monkeypatch.setattr(first_results, "reference", not_yet)
    assert queue._first_results_state().kind == BLOCKED
    monkeypatch.setattr(first_results, "reference", lambda: Reference(one_rank_run("cosine", "raw"), 90_000, 8.0))
    state = queue._first_results_state()
    assert state.kind == FOREGROUND and "lr_decay None" in state.detail
    assert "land the closed-rule decision" in state.detail
    monkeypatch.setattr("harness.reference_runs.differences", lambda request, recipe, seed: [])
    assert queue._first_results_state() == ready("run 1 of 5 (seed 101), about 3.9 h uninterrupted")
    for index in range(1, 6):
        write_result(tree, index, 100 + index)
    assert queue._first_results_state().kind == DONE


def ready(detail: str) -> queue.JobState:
    return queue.JobState(READY, detail, "harness reference queue --hours H (the job never starts a run the hours "
                                         "cannot finish)")


def test_no_run_starts_when_the_hours_do_not_cover_it(tree, monkeypatch, capsys):
    monkeypatch.setattr(first_results, "reference", lambda: Reference(one_rank_run("cosine", "raw"), 90_000, 8.0))
    monkeypatch.setattr("subprocess.Popen", lambda *a, **k: pytest.fail("a run was started"))
    first_results.train_runs(2.0, Path("data"))
    assert "a run needs about 3.9 h uninterrupted" in capsys.readouterr().out


def test_a_run_is_the_closed_defaults_on_the_reference_data():
    request = first_results.closed_request(101, Path("/campaign-data"), "mixed_bfloat16")
    assert (request.mode, request.seed, request.precision, request.nodes, request.ranks_per_node) == \
        ("tta", 101, "mixed_bfloat16", 1, 1)
    assert (request.data, request.heldout_data) == ("/campaign-data/train-fixed-seed1001",
                                                    "/campaign-data/heldout-fixed-seed2001")
    assert request.eval_every_samples is None and request.lr_decay is None, "the closed defaults as they stand"


def test_runs_follow_one_another_while_the_hours_cover_them_and_stop_at_a_cut_off_one(tree, monkeypatch):
    monkeypatch.setattr(first_results, "reference", lambda: Reference(one_rank_run("cosine", "raw"), 7_200, 8.0))
    monkeypatch.setattr("benchmark.campaign.ensure_campaign_data", lambda data, directory: None)
    started = []

    cut_off_seed = 103

    def run(request):
        started.append(request.seed)
        cut = request.seed == cut_off_seed
        write_result(tree, 10 + len(started), request.seed, *(("aborted", "SIGTERM during epoch 1") if cut else ()))
        return not cut

    monkeypatch.setattr(first_results, "_run_one", run)
    first_results.train_runs(10.0, Path("data"))  # 0.3 h a run
    assert started == [101, 102, 103], "the cut-off run ends the session"
    first_results.train_runs(10.0, Path("data"))
    assert started[3:] == [104, 105, 106], "its seed is not used again; five ended, the job stops"
    assert len(first_results.runs(tree)[0]) == 5 and len(list(first_results.INTERRUPTED.glob("*.json"))) == 1
