"""The submission tree: MLPerf layouts, numbers never reused, unfinished runs never look
finished, atomic JSON."""
import json
import os

import pytest

from harness import results
from reference_model.errors import InputError
from tests.harness.fake_runs import SYSTEM, make_inference_result, make_training_result


def test_training_runs_follow_the_mlperf_hpc_layout(tmp_path):
    tta = make_training_result(tmp_path, "3dgan", "tta")
    epoch_time = make_training_result(tmp_path, "3dgan-angle", "epoch-time")
    assert tta.final_log == tmp_path / "results" / SYSTEM / "strong" / "3dgan" / "result_1.txt"
    assert epoch_time.final_log == tmp_path / "results" / SYSTEM / "epoch_time" / "3dgan-angle" / "result_1.txt"
    summary = json.loads(tta.final_summary.read_text())
    assert summary["system"] == SYSTEM and summary["log"] == "result_1.txt"
    assert summary["schema"] == results.SCHEMA_VERSION and "finished_at" in summary
    assert results.validate_summary(summary) == []


def test_a_running_result_does_not_look_finished(tmp_path):
    run = results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "tta")
    assert run.log.name == "result_1.txt.partial" and run.log.exists()
    assert results.iter_results(tmp_path) == []
    assert results.unfinished_entries(tmp_path) == [run.log]
    results.write_summary(run.summary, {"mode": "tta", "status": "aborted"})
    results.finish_run(run)
    assert run.final_log.exists() and run.final_summary.exists()
    assert not run.log.exists() and not run.summary.exists()
    assert results.unfinished_entries(tmp_path) == []


def test_numbers_are_never_reused(tmp_path):
    first = make_training_result(tmp_path)
    running = results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "tta")  # still running
    relaunch = results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "tta")
    assert (first.index, running.index, relaunch.index) == (1, 2, 3)
    first.final_log.unlink()
    first.final_summary.unlink()
    assert results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "tta").index == 4


def test_reservation_survives_a_concurrent_claim(tmp_path, monkeypatch):
    """Two launchers that computed the same next number: the exclusive create separates them."""
    directory = results.training_dir(tmp_path, SYSTEM, "3dgan", "tta")
    directory.mkdir(parents=True)
    monkeypatch.setattr(results, "_next_index", lambda d: 1)
    a = results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "tta")
    b = results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "tta")
    assert (a.index, b.index) == (1, 2)


def test_dry_run_creates_nothing(tmp_path):
    run = results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "epoch-time", dry_run=True)
    assert run.index == 1 and not any(tmp_path.iterdir())


def test_json_is_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    results.write_json_atomic(path, {"v": 1})

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        results.write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"], "no temp file left behind"


def test_damaged_summary_is_a_one_line_input_error(tmp_path):
    path = tmp_path / "result_1.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="result_1.json"):
        results.read_summary(path)


def test_inference_follows_the_mlperf_inference_layout(tmp_path):
    summary_path = make_inference_result(tmp_path, "3dgan", "Offline", streams=2)
    run_dir = tmp_path / "results" / SYSTEM / "3dgan" / "Offline" / "performance" / "run_1"
    assert summary_path == run_dir / "result.json"
    assert (run_dir / "mlperf_log_summary.txt").exists() and (run_dir / "mlperf_log_detail.txt").exists()
    found = results.iter_results(tmp_path)
    assert [(r.mode, r.benchmark) for r in found] == [("inference", "3dgan")]
    assert results.validate_summary(found[0].summary) == []


def test_inference_run_needs_loadgen_logs(tmp_path):
    run = results.allocate_inference_run(tmp_path, SYSTEM, "3dgan", "Offline")
    assert run.directory.name == "run_1.partial"
    with pytest.raises(InputError, match="mlperf_log_summary.txt"):
        results.finish_inference_run(run, {"status": "success"})
    with pytest.raises(InputError, match="scenario"):
        results.allocate_inference_run(tmp_path, SYSTEM, "3dgan", "Batch")


def test_scaling_series_and_sweep_tables(tmp_path):
    rows = [{"scaling": "weak", "ranks": 1, "per_rank_batch": 8, "global_batch": 8, "status": "success",
             "samples_per_second": 10.0, "epoch_seconds": 6.4, "speedup": 1.0, "efficiency": 1.0}]
    path = results.write_scaling_series(tmp_path, "3dgan", rows, {"system_name": SYSTEM, "smoke": False})
    assert path == tmp_path / "results" / SYSTEM / "scaling" / "3dgan" / "series_1.json"
    assert path.with_suffix(".txt").read_text().splitlines()[0].split()[:2] == ["scaling", "ranks"]
    assert results.write_scaling_series(tmp_path, "3dgan", rows, {"system_name": SYSTEM}).name == "series_2.json"
    series = [r for r in results.iter_results(tmp_path) if r.mode == "scaling"]
    assert len(series) == 2 and results.validate_summary(series[0].summary) == []
    sweep = results.write_sweep_table(tmp_path, SYSTEM, "3dgan", [{"scenario": "Offline", "streams": 2,
                                                                   "samples_per_second": 5.0}], {})
    assert sweep == tmp_path / "results" / SYSTEM / "3dgan" / "sweeps" / "sweep_1.json"
    assert results.unfinished_entries(tmp_path) == []


def test_schema_names_what_is_missing():
    assert results.validate_summary({"mode": "tta"})[0] == "missing field 'schema'"
    assert results.validate_summary({"mode": "fast"}) == ["mode 'fast' is not one of tta, throughput, epoch-time, scaling, inference"]


def test_one_system_name_means_one_machine(tmp_path, monkeypatch):
    import harness.sysinfo as sysinfo

    machine = {"host_processor_model_name": "CPU A", "host_processors_per_node": 2,
               "host_processor_core_count": 32, "host_processor_vcpu_count": 64, "division": "closed"}

    def describe(identity, nodes=1, **_):
        return {**machine, "system_name": identity.system_name, "number_of_nodes": nodes}

    monkeypatch.setattr(sysinfo, "describe_system", describe)
    path = results.write_system_description(tmp_path, "cluster_a", nodes=4)
    results.write_system_description(tmp_path, "cluster_a", nodes=2)
    assert json.loads(path.read_text())["number_of_nodes"] == 4, "keeps the largest node count"
    machine["host_processor_model_name"] = "CPU B"
    with pytest.raises(InputError, match="another system"):
        results.write_system_description(tmp_path, "cluster_a")


# -- issue 12, section 6: a recoverable finish, no lost system-description updates -----------------
@pytest.mark.parametrize("crash_at", [1, 2])
def test_a_finish_interrupted_at_any_step_is_completed(tmp_path, monkeypatch, crash_at):
    """finish_run is three os.replace calls: the stamped summary written atomically (0), the log
    renamed (1), the summary renamed (2). A crash at either rename leaves a run that the next
    allocation completes (a crash at 0 leaves an unfinished run: nothing was stamped)."""
    run = results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "tta")
    results.write_summary(run.summary, {"mode": "tta", "status": "aborted"})
    real_replace, calls = os.replace, []

    def crashing_replace(src, dst):
        calls.append(src)
        if len(calls) - 1 == crash_at:
            raise OSError("killed mid-finish")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(OSError):
        results.finish_run(run)
    monkeypatch.undo()
    assert results.iter_results(tmp_path) == [] and run.summary.exists()
    assert results.interrupted_finishes(run.directory) == [run.summary]
    assert results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "tta").index == 2
    [finished] = results.iter_results(tmp_path)
    assert finished.log_path == run.final_log and finished.summary["log"] == "result_1.txt"
    assert results.unfinished_entries(tmp_path) == [run.directory / f"result_2.txt{results.PARTIAL}"]


def test_a_running_result_is_not_an_interrupted_finish(tmp_path):
    """Rank 0's own summary (not yet stamped by the finish) is a run in progress: left alone."""
    run = results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "tta")
    results.write_summary(run.summary, {"mode": "tta", "status": "success"})
    assert results.interrupted_finishes(run.directory) == []
    results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "tta")
    assert run.log.exists() and run.summary.exists()


def _describe_slowly(identity, nodes=1, **_):
    return {"host_processor_model_name": "CPU A", "division": "closed", "system_name": identity.system_name,
            "number_of_nodes": nodes}


def _write_description(root, nodes, delay_s):
    """A child process: its read-modify-write is held open for `delay_s` between read and write."""
    import time

    import harness.sysinfo as sysinfo

    sysinfo.describe_system = _describe_slowly
    sysinfo.hardware_differences = lambda existing, new: time.sleep(delay_s) or []
    results.write_system_description(root, "cluster_a", nodes=nodes)


def test_concurrent_runs_keep_each_others_system_description_updates(tmp_path, monkeypatch):
    """Two runs on 4 and 2 nodes update the description at once; the first to read holds the
    file for 0.6 s. Without the lock the 2-node run reads the old description and writes its
    own over the 4-node update (number_of_nodes 2); with it, the 4 survives."""
    import multiprocessing
    import time

    import harness.sysinfo as sysinfo

    monkeypatch.setattr(sysinfo, "describe_system", _describe_slowly)
    path = results.write_system_description(tmp_path, "cluster_a", nodes=1)
    context = multiprocessing.get_context("fork")
    first = context.Process(target=_write_description, args=(tmp_path, 4, 0.6))
    second = context.Process(target=_write_description, args=(tmp_path, 2, 0.6))
    first.start()
    time.sleep(0.2)
    second.start()
    for process in (first, second):
        process.join(timeout=30)
        assert process.exitcode == 0
    assert json.loads(path.read_text())["number_of_nodes"] == 4


# -- one run's life, through the Recorder -------------------------------------------------------
def test_a_recorder_takes_a_training_run_from_reservation_to_its_final_names(tmp_path):
    recorder = results.Recorder.open(tmp_path, SYSTEM)
    run = recorder.reserve_training("3dgan", "epoch-time")
    assert run.log.exists() and recorder.describe_system(nodes=2) == tmp_path / "systems" / f"{SYSTEM}.json"
    results.write_summary(run.summary, {"status": "success", "mode": "epoch-time", "benchmark": "3dgan"})
    summary = recorder.finish_training(run, 0, 2, ["harness", "run"], {"launcher": "local"})
    assert summary["status"] == "success" and summary["launch"] == {"launcher": "local"}
    assert summary["system"] == SYSTEM and run.final_summary.exists() and not run.summary.exists()
    assert results.unfinished_entries(tmp_path) == []


def test_ranks_that_die_before_a_summary_are_recorded_as_aborted(tmp_path, capsys):
    recorder = results.Recorder.open(tmp_path, SYSTEM)
    [first, second] = recorder.reserve_instances("3dgan", 2)
    summary = recorder.finish_training(second, 137, 4, ["mpirun", "-np", "4"], {"launcher": "mpirun"})
    assert summary["status"] == "aborted" and "code 137 before rank 0 wrote its summary" in summary["reason"]
    assert (summary["mode"], summary["ranks"], summary["command"]) == ("throughput", 4, "mpirun -np 4")
    assert summary["instance"] == {"set": first.index, "index": 2, "instances": 2} and not summary["submittable"]
    assert capsys.readouterr().err.startswith("harness run: error: ranks exited with code 137")
    assert second.final_log.exists(), "the log is kept, marked aborted"
    assert results.unmeasured_training_run(summary) and results.validate_summary(summary) == [], \
        "an attempt that measured nothing is complete as such, not short of every measured field"


def test_a_dry_run_recorder_names_the_next_paths_and_writes_nothing(tmp_path):
    make_training_result(tmp_path, "3dgan", "throughput")
    recorder = results.Recorder.open(tmp_path, SYSTEM, dry_run=True)
    before = sorted(tmp_path.rglob("*"))
    runs = recorder.reserve_instances("3dgan", 3)
    assert [r.index for r in runs] == [2, 3, 4] and {r.stamp["instance"]["set"] for r in runs} == {2}
    assert recorder.describe_system() is None and sorted(tmp_path.rglob("*")) == before
    assert recorder.checkpoint_dir("3dgan", "tta") == tmp_path / "checkpoints" / SYSTEM / "3dgan" / "tta"
    assert recorder.checkpoint_dir("3dgan", "tta", requested="elsewhere") == (tmp_path.cwd() / "elsewhere").resolve()


def test_a_damaged_system_description_is_one_line_naming_the_fix(tmp_path):
    from harness import results
    from reference_model.errors import InputError

    assert results.read_system_description(tmp_path, "box") is None
    path = results.system_description_path(tmp_path, "box")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(InputError, match="box.json: not valid JSON .*harness sysinfo --json --system-name box"):
        results.read_system_description(tmp_path, "box")


def test_a_results_root_is_named_or_the_one_to_pass_is(tmp_path):
    (tmp_path / "results" / "systems").mkdir(parents=True)
    (tmp_path / "results" / "results").mkdir()
    assert results.require_root(tmp_path / "results") == tmp_path / "results"
    with pytest.raises(InputError, match=f"its results/ folder is itself a results root .*; pass {tmp_path}/results$"):
        results.require_root(tmp_path)  # this repository's own layout, one level up
    with pytest.raises(InputError, match="no results/ folder; pass the results root"):
        results.require_root(tmp_path / "results" / "systems")
