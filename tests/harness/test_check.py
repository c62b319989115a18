"""`harness check`: a complete tree passes; each broken rule is reported precisely."""
import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import vocabulary
from harness import checks, cli, results
from harness.scoring import score_results
from tests.harness.fake_runs import (SYSTEM, freeze_fake_thresholds, make_inference_result, make_training_result,
                                     write_rcps, write_system, write_training_log)


@pytest.fixture(autouse=True)
def frozen(monkeypatch):
    return freeze_fake_thresholds(monkeypatch)


@pytest.fixture(autouse=True)
def rcps(tmp_path_factory, monkeypatch):
    """Reference convergence points that the fake time-to-accuracy runs meet (batch 16, 128 samples)."""
    directory = tmp_path_factory.mktemp("rcp")
    write_rcps(directory)
    monkeypatch.setattr("benchmark.rcp.RCP_DIR", directory)
    return directory


@pytest.fixture
def tree(tmp_path):
    """A submission: 5 time-to-accuracy runs, 3 epoch-time runs, one inference run."""
    write_system(tmp_path)
    for _ in range(5):
        make_training_result(tmp_path, "3dgan", "tta")
    for _ in range(3):
        make_training_result(tmp_path, "3dgan", "epoch-time")
    make_inference_result(tmp_path)
    return tmp_path


def messages(root, per_run=False):
    problems, _ = checks.check_tree(root, per_run=per_run)
    return [str(p) for p in problems]


def test_complete_tree_passes(tree):
    problems, checked = checks.check_tree(tree)
    assert problems == [] and checked == 9


def test_smoke_results_are_refused(tree):
    make_training_result(tree, "3dgan", "epoch-time", smoke=True)
    found = messages(tree)
    assert len(found) == 1 and "result_4.json: smoke" in found[0]
    assert messages(tree, per_run=True) == [], "--per-run accepts a smoke run for a work tree"


def test_too_few_runs(tmp_path):
    write_system(tmp_path)
    for _ in range(4):
        make_training_result(tmp_path, "3dgan", "tta")
    found = messages(tmp_path)
    assert len(found) == 1 and "4 run(s), 5 required" in found[0]


def test_more_than_one_run_missing_the_target(tree):
    for _ in range(2):
        make_training_result(tree, "3dgan", "tta", status="aborted")
    assert any("2 runs did not reach the quality target" in m for m in messages(tree))


def test_a_closed_tta_result_must_pass_its_rcp(tree, rcps, capsys):
    from harness.cli import main

    assert main(["check", str(tree)]) == 0
    assert "RCP verdict: " in capsys.readouterr().out, "a passing verdict is reported too"
    write_rcps(rcps, samples=(160,) * 10)
    found = messages(tree)
    assert len(found) == 1 and "RCP found at global batch 16: FAIL, olympic mean 128 samples to converge < the " \
                               "bound 160" in found[0] and "faster than the reference allows" in found[0]
    assert messages(tree, per_run=True) == [], "a work tree is not judged as a submission"


def test_no_rcp_yet_fails_a_submission_and_says_what_to_add(tree, rcps):
    (rcps / "3dgan.json").write_text("{}\n")
    found = messages(tree)
    assert len(found) == 1 and ("missing RCP: no reference convergence points for 3dgan yet; the submitter must "
                                "add the RCP runs at global batch 16") in found[0]


def test_open_division_results_are_not_held_to_the_rcps(tmp_path, rcps):
    (rcps / "3dgan.json").write_text("{}\n")
    write_system(tmp_path, division="open")
    for _ in range(5):
        make_training_result(tmp_path, "3dgan", "tta", division="open")
    assert messages(tmp_path) == []
    [verdict] = checks.rcp_verdicts(tmp_path)
    assert verdict.message.endswith("open division: not held to the reference convergence points")


def test_log_without_run_stop(tree):
    log = tree / "results" / SYSTEM / "strong" / "3dgan" / "result_2.txt"
    log.write_text("".join(line for line in log.read_text().splitlines(keepends=True) if '"run_stop"' not in line))
    found = messages(tree)
    assert any("result_2.json: compliance: Required EXACTLY_ONE occurrence of 'run_stop'" in m for m in found)
    [report] = [m for m in found if "the checker's whole report" in m]
    assert "-m mlperf_logging.compliance_checker --usage hpc --config" in report and str(log.resolve()) in report


def test_summary_must_agree_with_its_log(tree):
    path = tree / "results" / SYSTEM / "strong" / "3dgan" / "result_3.json"
    summary = json.loads(path.read_text())
    results.write_json_atomic(path, {**summary, "seconds": summary["seconds"] + 60})
    assert any("result_3.json: summary seconds" in m for m in messages(tree))
    results.write_json_atomic(path, {**summary, "status": "aborted"})
    assert any("summary status 'aborted' but the log's run_stop says 'success'" in m for m in messages(tree))


def test_last_evaluation_must_pass_the_frozen_thresholds(tree, frozen):
    frozen.limits["sampling_fraction"] = 0.001  # the logged 0.01 no longer passes
    found = messages(tree)
    assert sum("sampling_fraction = 0.01 does not pass the frozen threshold 0.001" in m for m in found) == 5
    frozen.limits["sampling_fraction"] = 0.05
    logged, frozen.version = frozen.version, "3dgan-quality-v2+sha256.000000000000"
    assert any(f"quality thresholds {logged!r}, the frozen ones are '3dgan-quality-v2+sha256.000000000000'" in m
               for m in messages(tree))


def test_log_filed_under_the_wrong_system(tree):
    other = tree / "results" / "other_cpu" / "epoch_time" / "3dgan"
    other.mkdir(parents=True)
    for suffix in (".txt", ".json"):
        (tree / "results" / SYSTEM / "epoch_time" / "3dgan" / f"result_1{suffix}").rename(other / f"result_1{suffix}")
    found = messages(tree, per_run=True)
    assert any("systems/other_cpu.json: missing" in m for m in found)
    assert any("log submission_platform 'testsys_cpu', expected 'other_cpu'" in m for m in found)


def test_unfinished_runs_and_bad_inference(tree):
    results.allocate_training_run(tree, SYSTEM, "3dgan", "tta")
    make_inference_result(tree, valid=False)
    make_inference_result(tree, streams=2, official_minimum=False)
    found = messages(tree)
    assert any("result_6.txt.partial: unfinished run" in m for m in found)
    assert not any("run_2" in m for m in found), "an INVALID LoadGen run is an attempt, not a failed result"
    assert any("run_3/result.json: shorter than MLPerf's official minimum" in m for m in found)


def test_an_invalid_loadgen_run_is_listed_never_scored_and_never_removed(tree):
    """rules.md section 9: a run LoadGen found INVALID stays in the root as an attempt; `harness
    check` lists it, scoring ignores it, and removing it is still a missing run."""
    attempt = make_inference_result(tree, valid=False, samples_per_second=999.0).parent
    make_inference_result(tree, samples_per_second=100.0)
    assert messages(tree) == []
    assert [p.path for p in checks.not_counted_runs(tree)] == [attempt]
    scored = [s for s in score_results(results.iter_results(tree)) if s.mode == "inference"]
    assert [s.score.values for s in scored] == [[100.0, 100.0]], "runs 1 and 3, never the attempt's 999"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["check", str(tree)]) == 0
    assert "not counted: LoadGen Offline float32 said INVALID" in out.getvalue()
    shutil.rmtree(attempt)
    assert any("run(s) 2 missing" in m for m in messages(tree))


def test_an_aborted_loadgen_run_is_an_attempt_listed_never_scored_and_never_removed(tree):
    """rules.md section 9: a run that ended before LoadGen's result keeps its number as an attempt."""
    run = results.allocate_inference_run(tree, SYSTEM, "3dgan", "Offline")
    (run.directory / "qps-100.0").mkdir()
    aborted = results.abort_inference_run(run, "stopped by SIGTERM during LoadGen Offline", "harness run (test)")
    make_inference_result(tree, samples_per_second=100.0)
    assert messages(tree) == []
    [listed] = checks.not_counted_runs(tree)
    assert listed.path == aborted.parent and "aborted (stopped by SIGTERM during LoadGen Offline)" in str(listed)
    scored = [s for s in score_results(results.iter_results(tree)) if s.mode == "inference"]
    assert [s.score.values for s in scored] == [[100.0, 100.0]]
    shutil.rmtree(aborted.parent)
    assert any("run(s) 2 missing" in m for m in messages(tree))


def test_an_unfinished_loadgen_run_says_how_to_keep_it(tree):
    results.allocate_inference_run(tree, SYSTEM, "3dgan", "Offline")
    [found] = messages(tree)
    assert "run_2.partial: unfinished run" in found
    assert "once no process runs it, record how it ended (harness abandon PATH)" in found


def test_a_server_run_under_another_latency_bound_is_listed_never_scored(tree):
    """rules.md section 9: Server is held to its benchmark's fixed bound (3dgan 250 ms); a run held
    to another (an exploration, or a run from before the bound was fixed) stays, listed, unscored."""
    other = make_inference_result(tree, scenario="Server", samples_per_second=999.0, server_latency_ms=1100.0).parent
    make_inference_result(tree, scenario="Server", samples_per_second=100.0)
    assert [p.path for p in checks.not_counted_runs(tree)] == [other]
    scored = [s for s in score_results(results.iter_results(tree)) if s.config.get("scenario") == "Server"]
    assert [s.score.values for s in scored] == [[100.0]]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(["check", str(tree)])
    assert "not counted: LoadGen Server float32 held to a 1,100 ms latency bound, not 3dgan's fixed 250 ms" in out.getvalue()


def test_a_server_runs_search_is_held_to_the_rule(tree):
    """rules.md section 9: a Server result is its highest-rate VALID official run, and a run that
    records the official search followed it to its stopping rule; a run from before the rule
    (no record) counts as made."""
    from benchmark.loadgen_runner import SERVER_OFFICIAL_MAX_RUNS, SERVER_OFFICIAL_TOLERANCE

    rule = {"tolerance": SERVER_OFFICIAL_TOLERANCE, "max_runs": SERVER_OFFICIAL_MAX_RUNS}
    trials = [{"target_qps": q, "valid": v} for q, v in ((1369.0, False), (718.7, True), (1043.9, True), (1206.5, True))]

    def officials(*runs):
        return [{"target_qps": q, "valid": v, "official": True} for q, v in runs]

    before_rule = {"trials": trials + officials((1206.5, False), (1043.9, False), (718.7, True))}
    followed = {"trials": trials + officials((1206.5, False), (1043.9, False), (718.7, True), (881.3, True),
                                             (962.6, False), (921.95, True)), "official_search": rule}
    make_inference_result(tree, scenario="Server", server_qps=718.7, server_search=before_rule)
    make_inference_result(tree, scenario="Server", server_qps=921.95, server_search=followed)
    assert messages(tree) == []
    stopped = {**followed, "trials": followed["trials"][:-1]}
    make_inference_result(tree, scenario="Server", server_qps=881.3, server_search=stopped)
    make_inference_result(tree, scenario="Server", server_qps=718.7, server_search=followed)
    found = messages(tree, per_run=True)
    assert any("run_3" in m and "stopped after 5 run(s) where the rule makes another at 922.0 QPS" in m for m in found)
    assert any("run_4" in m and "ran at 718.7 QPS, not at its highest VALID official run's 922.0" in m for m in found)


def test_division_in_log_must_match_the_system(tmp_path):
    write_system(tmp_path, division="open")
    make_training_result(tmp_path, "3dgan", "epoch-time")
    assert any("log submission_division 'closed', expected 'open'" in m for m in messages(tmp_path, per_run=True))


def test_cli_exit_codes(tmp_path):
    write_system(tmp_path)
    for _ in range(3):
        make_training_result(tmp_path, "3dgan", "epoch-time")
    command = [sys.executable, "-m", "harness.cli", "check", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0 and "3 result(s)" in done.stdout
    make_training_result(tmp_path, "3dgan", "epoch-time", smoke=True)
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 1 and "smoke" in done.stdout
    done = subprocess.run(command[:-1] + [str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


def test_partial_log_is_not_a_finished_result(tmp_path):
    write_system(tmp_path)
    run = results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "epoch-time")
    write_training_log(run.log, mode="epoch-time")
    assert results.iter_results(tmp_path) == []
    assert checks.check_tree(tmp_path, per_run=True) == ([], 0)


def test_removed_runs_are_reported(tree):
    for suffix in (".txt", ".json"):
        (tree / "results" / SYSTEM / "strong" / "3dgan" / f"result_2{suffix}").unlink()
    make_training_result(tree, "3dgan", "tta")  # keeps the result at 5 runs
    found = messages(tree)
    assert len(found) == 1 and "run(s) 2 missing: every run of a result counts" in found[0]


def test_closed_tta_evaluates_every_epoch(tmp_path):
    """Skipping the evaluation of epoch 1 (stopping on a lucky late check) is open division only."""
    from harness.compliance import check_log

    for division in ("closed", "open"):
        log = tmp_path / f"{division}.txt"
        write_training_log(log, division=division, learning_rate=1e-3)
        kept = [line for line in log.read_text().splitlines(keepends=True)
                if not ('"eval_' in line and '"epoch_num": 1' in line)]
        log.write_text("".join(kept))
        result = check_log(log, "3dgan")
        if division == "closed":
            assert not result.passed and any("s['evaluations'] == s['epochs']" in m for m in result.messages)
        else:
            assert result.passed, result.messages


# -- issue 12, section 6: check what rules.md says is checked ------------------------------------
REPOSITORY = Path(__file__).resolve().parents[2]


def test_inference_without_a_quality_record_fails(tree):
    path = make_inference_result(tree)
    summary = json.loads(path.read_text())
    del summary["quality"]
    results.write_json_atomic(path, summary)
    assert any("run_2/result.json: no quality record" in m for m in messages(tree, per_run=True))


def test_inference_reports_the_checkpoint_target_and_the_precision_gate_apart(tree):
    path = make_inference_result(tree)
    summary = json.loads(path.read_text())

    def check_with(target_passed: bool, gate_passed: bool) -> list[str]:
        summary["quality"] = {"passed": False, "checkpoint_target": {"passed": target_passed},
                              "precision_gate": {"passed": gate_passed}}
        results.write_json_atomic(path, summary)
        return messages(tree, per_run=True)

    found = check_with(target_passed=False, gate_passed=True)
    assert any("misses the benchmark target in float32" in m for m in found)
    assert not any("precision gate" in m for m in found)
    found = check_with(target_passed=True, gate_passed=False)
    assert any("differ from float32's from the same inputs" in m for m in found)
    assert not any("misses the benchmark target" in m for m in found)


def test_inference_summary_must_agree_with_loadgen(tree):
    path = tree / "results" / SYSTEM / "3dgan" / "Offline" / "performance" / "run_1" / "result.json"
    summary = json.loads(path.read_text())
    results.write_json_atomic(path, {**summary, "samples_per_second": 1000.0})
    assert any("summary samples_per_second 1000.0 but mlperf_log_summary.txt gives 100" in m
               for m in messages(tree, per_run=True))


def shorten_epochs(path: Path, rate: float) -> None:
    """Edit a summary to claim `rate` samples/s with every epoch ten times shorter."""
    summary = json.loads(path.read_text())
    for epoch in summary["epochs"]:
        epoch["seconds"] /= 10
    results.write_json_atomic(path, {**summary, "steady_samples_per_second": rate})


def test_a_summary_faster_than_its_log_fails_and_is_not_counted(tree):
    from harness.scoring import score_tree

    shorten_epochs(tree / "results" / SYSTEM / "epoch_time" / "3dgan" / "result_2.json", 500.0)
    found = messages(tree)
    assert any("result_2.json: summary epoch 1 took 0.128 s but the log times it as 1.280 s" in m for m in found)
    [epoch_time] = [s for s in score_tree(tree) if s.mode == vocabulary.EPOCH_TIME]
    assert not epoch_time.score.valid and "result_2 not counted" in epoch_time.score.reason
    assert epoch_time.score.values == [50.0, 50.0], "scores come from the logs, never from the summary"


def test_the_committed_results_pass_and_an_edited_copy_fails(tmp_path):
    """The issue's reproduction: result_4.json edited to claim 60 samples/s, every epoch ten times
    shorter, must fail `harness check` and not be counted by `harness summarize`."""
    root = tmp_path / "results"
    shutil.copytree(REPOSITORY / "results", root)
    problems, checked = checks.check_tree(root)
    assert problems == [] and checked >= 6
    edited = root / "results/vm_intel-xeon/epoch_time/3dgan/result_4.json"
    first_epoch = json.loads(edited.read_text())["epochs"][0]["seconds"]
    assert json.loads(edited.read_text())["ranks"] == 2
    shorten_epochs(edited, 60.0)
    command = [sys.executable, "-m", "harness.cli"]
    done = subprocess.run([*command, "check", str(root)], capture_output=True, text=True, cwd=REPOSITORY)
    assert done.returncode == 1 and f"result_4.json: summary epoch 1 took {first_epoch / 10:.3f} s" in done.stdout
    done = subprocess.run([*command, "summarize", "--json", str(root)], capture_output=True, text=True,
                          cwd=REPOSITORY)
    two_ranks = [s for s in json.loads(done.stdout) if s["mode"] == "epoch-time" and s["system"] == "vm_intel-xeon"
                 and s["config"]["ranks_per_node"] == 2]
    assert not two_ranks[0]["score"]["valid"] and 60.0 not in two_ranks[0]["score"]["values"]


def test_thresholds_pairs_the_registry_does_not_know_are_refused(tmp_path):
    write_system(tmp_path)
    edited = "3dgan-quality-v1+sha256.0123456789ab"
    make_training_result(tmp_path, "3dgan", "tta", thresholds=edited)
    make_training_result(tmp_path, "3dgan", "epoch-time", thresholds="3dgan-quality-v9+sha256.0123456789ab")
    draft = "3dgan-quality-v1+sha256.0834bb8717ab"  # the uncommitted draft results/ recorded
    make_training_result(tmp_path, "3dgan", "epoch-time", thresholds=draft)
    make_training_result(tmp_path, "3dgan", "tta", thresholds=draft)
    found = messages(tmp_path, per_run=True)
    assert any("strong/3dgan/result_1.json: quality_thresholds '3dgan-quality-v1+sha256.0123456789ab': version "
               "3dgan-quality-v1 is registered with sha256 88df1430b2b1, not 0123456789ab" in m for m in found)
    assert any("epoch_time/3dgan/result_1.json: quality_thresholds '3dgan-quality-v9+sha256.0123456789ab': "
               "unknown version" in m for m in found)
    assert not any("epoch_time/3dgan/result_2.json" in m for m in found), \
        "an epoch-time run does not evaluate: the recorded draft is accepted there"
    assert any("strong/3dgan/result_2.json: quality_thresholds '3dgan-quality-v1+sha256.0834bb8717ab' is not a "
               "registered version" in m for m in found)


def test_an_interrupted_finish_is_reported_then_completed(tree, monkeypatch):
    """A crash after the stamped summary is written, before the renames: reported as an
    interrupted finish (not as a removed run), completed by the next run into the folder."""
    run = results.allocate_training_run(tree, SYSTEM, "3dgan", "tta")
    write_training_log(run.log)
    results.write_summary(run.summary, {"mode": "tta", "status": "success"})
    crash = RuntimeError("power cut")
    monkeypatch.setattr(results, "complete_finish", lambda path: (_ for _ in ()).throw(crash))
    with pytest.raises(RuntimeError):
        results.finish_run(run)
    monkeypatch.undo()
    found = messages(tree, per_run=True)
    assert any("result_6.json.partial: interrupted finish" in m for m in found)
    assert not any("missing" in m or "unfinished run" in m for m in found)
    nxt = results.allocate_training_run(tree, SYSTEM, "3dgan", "tta")
    assert nxt.index == 7 and run.final_log.exists() and run.final_summary.exists()
    assert json.loads(run.final_summary.read_text())["log"] == "result_6.txt"


def test_a_log_without_its_summary_is_an_interrupted_finish_not_a_removed_run(tree):
    (tree / "results" / SYSTEM / "strong" / "3dgan" / "result_5.json").unlink()
    found = messages(tree)
    assert any("strong/3dgan/result_5.txt: log without its summary: the run's finish was interrupted" in m
               for m in found)
