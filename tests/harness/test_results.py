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
    weak = make_training_result(tmp_path, "3dgan-angle", "epoch-time")
    assert tta.final_log == tmp_path / "results" / SYSTEM / "strong" / "3dgan" / "result_1.txt"
    assert weak.final_log == tmp_path / "results" / SYSTEM / "weak" / "3dgan-angle" / "result_1.txt"
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
    assert results.validate_summary({"mode": "fast"}) == ["mode 'fast' is not one of tta, epoch-time, scaling, inference"]


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
