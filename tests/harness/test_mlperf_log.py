"""The MLPerf logger and our compliance rules: a log that follows the documented sequence
passes MLPerf's checker with benchmark/compliance/<benchmark>.yaml, and breaking any rule
fails it."""
import json
import re
import subprocess

import pytest

from harness.compliance import check_log, checker_command
from harness.mlperf_log import MLPerfLogger, parse_log, record_abort_if_unfinished
from harness.sysinfo import Identity
from tests.harness.fake_runs import FINGERPRINTS, write_training_log


@pytest.mark.parametrize("benchmark_name", ["3dgan", "3dgan-angle"])
@pytest.mark.parametrize("mode", ["tta", "epoch-time"])
def test_documented_sequence_passes(tmp_path, benchmark_name, mode):
    log = tmp_path / "result_1.txt"
    write_training_log(log, benchmark_name, mode)
    result = check_log(log, benchmark_name)
    assert result.passed, result.messages


def test_checker_command_line_runs_our_rules(tmp_path):
    """The exact command a submitter runs by hand: passes, and fails without run_stop."""
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    write_training_log(good)
    write_training_log(bad, skip=("run_stop",))
    done = subprocess.run(checker_command(good, "3dgan"), capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and "SUCCESS" in done.stderr
    assert "common.yaml" in done.stderr, "the benchmark rules must chain the common rules"
    done = subprocess.run(checker_command(bad, "3dgan"), capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1 and "run_stop" in done.stderr


def test_log_without_run_stop_fails(tmp_path):
    log = tmp_path / "result_1.txt"
    write_training_log(log, skip=("run_stop",))
    result = check_log(log, "3dgan")
    assert not result.passed
    assert any("run_stop" in m for m in result.messages)


def _rewrite(log, key, new_value):
    """Change the value of every `key` line, keeping the rest of the log as written."""
    lines = []
    for line in log.read_text().splitlines():
        record = json.loads(line.split(":::MLLOG ", 1)[1])
        if record["key"] == key:
            record["value"] = new_value
            line = ":::MLLOG " + json.dumps(record)
        lines.append(line)
    log.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("key, value, rule", [
    ("submission_benchmark", "3dgan-angle", "submission_benchmark"),
    ("model_fingerprint", "0" * 64, "model_fingerprint"),
    ("opt_name", "adam", "rmsprop"),
    ("opt_base_learning_rate", 0.01, "0.001 * s['ranks']"),
    ("opt_learning_rate_warmup_factor", 1, "s['warmup_factor'] == s['ranks']"),
    ("global_batch_size", 17, "s['local_batch'] * s['ranks']"),
    ("precision", "float16", "precision"),
    ("benchmark_mode", "fast", "benchmark_mode"),
    ("submission_division", "secret", "submission_division"),
])
def test_breaking_a_rule_fails(tmp_path, key, value, rule):
    log = tmp_path / "result_1.txt"
    write_training_log(log)
    assert check_log(log, "3dgan").passed
    _rewrite(log, key, value)
    result = check_log(log, "3dgan")
    assert not result.passed
    assert any(rule in m for m in result.messages), result.messages


def test_closed_division_bounds_the_per_rank_batch(tmp_path):
    closed, open_ = tmp_path / "closed.txt", tmp_path / "open.txt"
    write_training_log(closed, per_rank_batch=4)
    write_training_log(open_, per_rank_batch=4, division="open", learning_rate=3e-3)
    assert not check_log(closed, "3dgan").passed
    assert check_log(open_, "3dgan").passed, "open division: batch and learning rate are free"


def test_tta_success_needs_a_passing_last_evaluation(tmp_path):
    log = tmp_path / "result_1.txt"
    write_training_log(log, passed_last=False)  # says success, but no evaluation passed
    result = check_log(log, "3dgan")
    assert not result.passed and any("last_passed" in m for m in result.messages)
    aborted = tmp_path / "aborted.txt"
    write_training_log(aborted, status="aborted", passed_last=False)
    assert check_log(aborted, "3dgan").passed, "an honest aborted run is a compliant log"


def test_tta_needs_eval_samples(tmp_path):
    log = tmp_path / "result_1.txt"
    write_training_log(log, skip=("eval_samples",))
    assert not check_log(log, "3dgan").passed


def test_only_rank_zero_writes(tmp_path):
    log = tmp_path / "result_1.txt"
    logger = MLPerfLogger(log, rank=1, benchmark="3dgan", mode="tta", smoke=False, nodes=1, ranks=2,
                          system="s", identity=Identity())
    logger.start("run_start")
    logger.end("run_stop", metadata={"status": "success"})
    assert not log.exists()


def test_never_appends_to_another_runs_log(tmp_path):
    log = tmp_path / "result_1.txt"
    write_training_log(log)
    with pytest.raises(Exception, match="never appends"):
        MLPerfLogger(log, rank=0, benchmark="3dgan", mode="tta", smoke=False, nodes=1, ranks=1,
                     system="s", identity=Identity())


def test_run_ends_once(tmp_path):
    log = tmp_path / "result_1.txt"
    logger = MLPerfLogger(log, rank=0, benchmark="3dgan", mode="tta", smoke=True, nodes=1, ranks=1,
                          system="s", identity=Identity())
    logger.start("run_start")
    logger.end("run_stop", metadata={"status": "success"})
    logger.end("run_stop", metadata={"status": "aborted"})  # a watchdog racing the end: dropped
    with pytest.raises(RuntimeError, match="after run_stop"):
        logger.event("eval_accuracy", 1.0)
    stops = [r for r in parse_log(log) if r["key"] == "run_stop"]
    assert [s["metadata"]["status"] for s in stops] == ["success"]


def test_identity_lines_and_caller_location(tmp_path):
    log = tmp_path / "result_1.txt"
    write_training_log(log, smoke=True)
    records = {r["key"]: r for r in parse_log(log)}
    assert records["submission_platform"]["value"] == "testsys_cpu"
    assert records["submittable"]["value"] is False
    assert records["accelerators_per_node"]["value"] == 0
    assert records["model_fingerprint"]["value"] == FINGERPRINTS["3dgan-reference-generator"]
    # mllog records the caller's file and line: the trainer's, not the wrapper's
    assert records["seed"]["metadata"]["file"].endswith("fake_runs.py")


def test_abort_is_recorded_for_a_run_whose_ranks_died(tmp_path):
    log = tmp_path / "result_1.txt"
    write_training_log(log, skip=("run_stop",))
    assert record_abort_if_unfinished(log, "ranks exited with code 137")
    stop = [r for r in parse_log(log) if r["key"] == "run_stop"]
    assert stop[0]["metadata"] == {**stop[0]["metadata"], "status": "aborted",
                                   "reason": "ranks exited with code 137"}
    assert check_log(log, "3dgan").passed
    assert not record_abort_if_unfinished(log, "again"), "a finished log is left alone"


def test_rules_pin_the_recorded_fingerprints():
    from harness.compliance import COMPLIANCE_DIR

    for name in ("3dgan", "3dgan-angle"):
        text = (COMPLIANCE_DIR / f"{name}.yaml").read_text()
        pinned = re.search(r"v\['value'\] == '([0-9a-f]{64})'", text).group(1)
        assert pinned == FINGERPRINTS[f"{name}-reference-generator"]


def test_timing_is_read_as_mlperf_reads_it(tmp_path):
    """run_start..run_stop by MLPerf's result-summarizer query; epochs by their own start/stop."""
    from harness.mlperf_log import read_timing

    log = tmp_path / "result_1.txt"
    write_training_log(log, mode="epoch-time", epoch_seconds=[3.0, 2.0, 2.0], samples_per_epoch=64,
                       start_ms=1_000_000)
    timing = read_timing(log)
    assert timing.status == "success" and timing.seconds == pytest.approx(7.0)
    assert [(e.epoch, e.seconds, e.samples) for e in timing.epochs] == [(1, 3.0, 64), (2, 2.0, 64), (3, 2.0, 64)]
    assert timing.steady_samples_per_second == pytest.approx(32.0)
    missing = tmp_path / "result_2.txt"
    write_training_log(missing, skip=("run_stop",))
    with pytest.raises(ValueError, match="run_stop not recorded"):
        read_timing(missing)
