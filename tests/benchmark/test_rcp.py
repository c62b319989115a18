"""Reference convergence points: `judge` agrees with mlperf-logging's own `check_directory` on its
HPC RCP files (same verdicts, bounds and normalisation); our files are written, read and
refused as benchmark/rcp.py says; the committed files hold no invented points."""
import json
import shutil
from pathlib import Path

import pytest
from mlperf_logging.rcp_checker import rcp_checker

from benchmark import rcp
from reference_model.errors import InputError
from reference_model.specs import BENCHMARKS

MLPERF_RCPS = Path(rcp_checker.__file__).resolve().parent


def mlperf_log(path: Path, benchmark: str, global_batch: int, epochs) -> None:
    """The lines of a result file that rcp_checker.read_submission_file reads (None: not converged)."""
    lines = [("submission_benchmark", benchmark, {}), ("global_batch_size", global_batch, {})]
    if epochs is not None:
        lines.append(("eval_accuracy", 0.1, {"epoch_num": epochs}))
    lines.append(("run_stop", None, {"status": "success" if epochs is not None else "aborted"}))
    path.write_text("".join(":::MLLOG " + json.dumps({"key": key, "value": value, "metadata": metadata}) + "\n"
                            for key, value, metadata in lines))


def mlperf_verdict(tmp_path: Path, benchmark: str, ruleset: str, global_batch: int, runs: list):
    folder = tmp_path / "mlperf"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for i, epochs in enumerate(runs):
        mlperf_log(folder / f"result_{i}.txt", benchmark, global_batch, epochs)
    return rcp_checker.check_directory(str(folder), "hpc", ruleset, False, False, rcp_pass="pruned_rcps")


MLPERF_MESSAGES = {rcp.FOUND: "RCP found", rcp.INTERPOLATED: "RCP Interpolation",
                   rcp.BELOW_SMALLEST: "RCP not found but slower convergence on smaller batch size",
                   rcp.MISSING: "Missing RCP, please submit RCP with BS = {bs}",
                   rcp.UNJUDGED: "Insufficient convergence"}


def cases(benchmark: str, ruleset: str):
    """(global batch, the mean the runs are placed around) at, between, below and above the
    pruned RCPs, as mlperf-logging computes them."""
    checker = rcp_checker.RCP_Checker("hpc", ruleset, benchmark, False)
    pruned = sorted(checker.pruned_rcp_data.values(), key=lambda r: r["BS"])
    every = {r["BS"] for r in checker.rcp_data.values()}
    between = next(bs for low, high in zip(pruned, pruned[1:])
                   for bs in range(low["BS"] + 1, high["BS"]) if bs not in every)
    low, high = (max((r for r in pruned if r["BS"] < between), key=lambda r: r["BS"]),
                 min((r for r in pruned if r["BS"] > between), key=lambda r: r["BS"]))
    interpolated = checker._create_interp_rcp(between, low, high)[1]
    middle = pruned[len(pruned) // 2]
    return [(middle["BS"], middle["RCP Mean"]), (between, interpolated["RCP Mean"]),
            (pruned[0]["BS"] // 2, pruned[0]["RCP Mean"]), (pruned[-1]["BS"] * 2, pruned[-1]["RCP Mean"])]


@pytest.mark.parametrize("ruleset", ["1.0.0", "2.0.0", "3.0.0"])
@pytest.mark.parametrize("mlperf_benchmark", ["cosmoflow", "deepcam"])
def test_judge_agrees_with_mlperf_loggings_checker_on_its_hpc_rcps(tmp_path, mlperf_benchmark, ruleset):
    benchmark = mlperf_benchmark
    shutil.copy(MLPERF_RCPS / f"hpc_{ruleset}" / f"rcps_{benchmark}.json", tmp_path / f"{benchmark}.json")
    submission_runs = rcp_checker.submission_runs["hpc"][benchmark]
    seen = set()
    for global_batch, mean in cases(benchmark, ruleset):
        for speed_up in (0.8, 1.0, 1.015, 1.04, 1.2):
            centre = mean / speed_up
            runs = [round(centre * (1 + 0.01 * (i - (submission_runs - 1) / 2)), 3) for i in range(submission_runs)]
            for label, samples in (("converged", runs), ("one missed", runs[:-1] + [None]),
                                   ("two missed", runs[:-2] + [None, None])):
                passed, message, norm = mlperf_verdict(tmp_path, benchmark, ruleset, global_batch, samples)
                ours = rcp.judge(benchmark, global_batch, samples, submission_runs, tmp_path)
                where = f"{benchmark} {ruleset} BS {global_batch} {speed_up}x faster, {label}: {message}; ours: {ours.message}"
                assert ours.passed == passed, where
                assert MLPERF_MESSAGES[ours.status].format(bs=global_batch) == message, where
                assert ours.norm_factor == pytest.approx(norm if passed else 1.0), where
                seen.add((ours.status, ours.passed, ours.norm_factor > 1.0))
    assert {(rcp.FOUND, True, True), (rcp.FOUND, False, False), (rcp.INTERPOLATED, True, False),
            (rcp.INTERPOLATED, False, False), (rcp.MISSING, False, False)} <= seen, seen


def test_the_bound_is_mlperf_loggings(tmp_path):
    shutil.copy(MLPERF_RCPS / "hpc_3.0.0" / "rcps_cosmoflow.json", tmp_path / "cosmoflow.json")
    checker = rcp_checker.RCP_Checker("hpc", "3.0.0", "cosmoflow", False)
    record = checker._find_rcp(512, "pruned_rcps")
    verdict = rcp.judge("cosmoflow", 512, [record["RCP Mean"]] * 10, 10, tmp_path)
    assert verdict.status == rcp.FOUND and verdict.passed and verdict.norm_factor == 1.0
    assert verdict.bound == pytest.approx(record["Min Epochs"]) and verdict.rcp_mean == pytest.approx(record["RCP Mean"])
    assert verdict.max_speedup == pytest.approx(record["Max Speedup"])
    assert 1.02 < verdict.max_speedup < 1.11, "a few per cent, as on MLPerf HPC's own RCPs"
    assert rcp_checker.submission_runs["hpc"]["cosmoflow"] == 10 and "3dgan" not in rcp_checker.submission_runs["hpc"], \
        "the checker's run-count table is left as it was"


# -- our own files -----------------------------------------------------------------------------
HYPERPARAMETERS = {"opt_name": "rmsprop", "opt_base_learning_rate": 0.001}


def reference_runs(global_batch: int, samples: list[int], seed0: int = 1) -> list[rcp.ReferenceRun]:
    return [rcp.ReferenceRun(global_batch, HYPERPARAMETERS, seed0 + i, s) for i, s in enumerate(samples)]


@pytest.fixture
def rcps(tmp_path):
    """A synthetic 3dgan RCP file: batches 16 and 64, ten runs each."""
    (tmp_path / "3dgan.json").write_text("{}\n")
    spread = [-4000, -2000, -1000, -500, 0, 0, 500, 1000, 2000, 4000]
    rcp.add_reference_runs("3dgan", reference_runs(16, [60_000 + d for d in spread])
                           + reference_runs(64, [100_000 + d for d in spread]), 5, tmp_path)
    return tmp_path


def test_written_rcps_are_mlperf_loggings_format(rcps):
    records = json.loads((rcps / "3dgan.json").read_text())
    assert list(records) == ["3dgan_ref_16", "3dgan_ref_64"]
    record = records["3dgan_ref_16"]
    assert record["Benchmark"] == "3dgan" and record["BS"] == 16 and len(record["Epochs to converge"]) == 10
    assert record["Hyperparams"] == {**HYPERPARAMETERS, "global_batch_size": 16} and record["Seeds"] == list(range(1, 11))
    assert record[rcp.RUNS_ASKED_KEY] == 10
    checker = rcp._checker("3dgan", records, 5)
    assert checker.rcp_data["3dgan_ref_16"]["RCP Mean"] == pytest.approx(60_000), "the checker reads our file as is"


def test_an_rcp_of_three_runs_judges_with_a_wider_bound_and_says_how_many_it_has(tmp_path):
    """docs/closed-rule-study.md, "Stage 4": three converged runs, the fewest an olympic mean can use."""
    (tmp_path / "3dgan.json").write_text("{}\n")
    rcp.add_reference_runs("3dgan", reference_runs(8, [90_000, 100_000, 115_000], seed0=2), 5, tmp_path)
    record = rcp.load_rcps("3dgan", tmp_path)["3dgan_ref_8"]
    assert record["Seeds"] == [2, 3, 4] and record[rcp.RUNS_ASKED_KEY] == 10
    line = rcp.coverage("3dgan", 8, 5, tmp_path)
    assert "RCP mean 100000, 3 reference runs, MLPerf asks for 10; max speed-up" in line
    three = rcp.judge("3dgan", 8, [95_000] * 5, 5, tmp_path)
    assert three.passed and three.rcp_mean == pytest.approx(100_000)
    spread = [-15_000, -12_000, -10_000, -5_000, 0, 0, 5_000, 10_000, 12_000, 15_000]
    (tmp_path / "ten").mkdir()
    (tmp_path / "ten" / "3dgan.json").write_text("{}\n")
    rcp.add_reference_runs("3dgan", reference_runs(8, [100_000 + d for d in spread]), 5, tmp_path / "ten")
    ten = rcp.judge("3dgan", 8, [95_000] * 5, 5, tmp_path / "ten")
    assert three.max_speedup > ten.max_speedup > 1.0, "fewer reference runs, a wider bound"


def test_verdicts_on_a_synthetic_file(rcps):
    at = rcp.judge("3dgan", 16, [60_000] * 5, 5, rcps)
    assert at.status == rcp.FOUND and at.passed and at.norm_factor == 1.0 and at.bound < 60_000
    fast = rcp.judge("3dgan", 16, [50_000] * 5, 5, rcps)
    assert not fast.passed and "converges faster than the reference allows" in fast.message
    near = rcp.judge("3dgan", 16, [59_000] * 5, 5, rcps)
    assert near.passed and near.norm_factor == pytest.approx(60_000 / 59_000) and "normalised" in near.message
    between = rcp.judge("3dgan", 32, [80_000] * 5, 5, rcps)
    assert between.status == rcp.INTERPOLATED and between.passed and between.rcp_mean == pytest.approx(73_333.33, 1e-6)
    below = rcp.judge("3dgan", 8, [70_000] * 5, 5, rcps)
    assert below.status == rcp.BELOW_SMALLEST and below.passed
    above = rcp.judge("3dgan", 8192, [200_000] * 5, 5, rcps)
    assert above.status == rcp.MISSING and not above.passed
    assert "must add the RCP runs at global batch 8192 (at least 3 converged reference runs, MLPerf asks for 10" in above.message
    assert rcp.coverage("3dgan", 16, 5, rcps).startswith("RCP found for global batch 16")
    assert rcp.coverage("3dgan", 8192, 5, rcps).startswith("missing RCP at global batch 8192")


def test_unjudged_run_sets(rcps):
    assert rcp.judge("3dgan", None, [60_000] * 5, 5, rcps).status == rcp.UNJUDGED
    assert "insufficient convergence" in rcp.judge("3dgan", 16, [60_000] * 3 + [None] * 2, 5, rcps).message
    assert rcp.judge("3dgan", 16, [60_000] * 2, 5, rcps).status == rcp.UNJUDGED


def test_no_points_yet_is_a_missing_rcp_that_says_what_to_add(tmp_path):
    (tmp_path / "3dgan.json").write_text("{}\n")
    verdict = rcp.judge("3dgan", 8192, [1000] * 5, 5, tmp_path)
    assert verdict.status == rcp.MISSING and not verdict.passed
    assert verdict.message.startswith("missing RCP: no reference convergence points for 3dgan yet; the submitter "
                                      "must add the RCP runs at global batch 8192")


@pytest.mark.parametrize("runs, complaint", [
    (reference_runs(16, [1000] * 2), "2 run.s., at least 3 needed for an olympic mean .MLPerf asks for 10."),
    (reference_runs(16, [1000] * 10, seed0=1)[:9] + reference_runs(16, [1000], seed0=1), "repeat"),
    (reference_runs(16, [1000] * 9) + [rcp.ReferenceRun(16, {"opt_name": "adam"}, 99, 1000)], "differ"),
    (reference_runs(16, [1000] * 9) + [rcp.ReferenceRun(16, {"global_batch_size": 32}, 99, 1000)],
     "global_batch_size 32"),
    (reference_runs(16, [1000] * 9 + [0]), "positive integers"),
])
def test_the_writer_refuses_what_is_not_an_rcp(tmp_path, runs, complaint):
    (tmp_path / "3dgan.json").write_text("{}\n")
    with pytest.raises(InputError, match=complaint):
        rcp.add_reference_runs("3dgan", runs, 5, tmp_path)
    assert (tmp_path / "3dgan.json").read_text() == "{}\n"


def test_an_rcp_is_never_replaced(rcps):
    with pytest.raises(InputError, match="global batch 16 already has an RCP"):
        rcp.add_reference_runs("3dgan", reference_runs(16, [1000] * 10), 5, rcps)


@pytest.mark.parametrize("content, complaint", [
    (None, "missing"), ("{", "not JSON"), ("[]", "an object of RCP records"),
    ('{"x": {"Benchmark": "cosmoflow", "BS": 16, "Hyperparams": {}, "Epochs to converge": [1, 2, 3]}}',
     "record 'x' is not an RCP of 3dgan"),
])
def test_a_broken_file_is_a_one_line_error_naming_it(tmp_path, content, complaint):
    if content is not None:
        (tmp_path / "3dgan.json").write_text(content)
    with pytest.raises(InputError, match=complaint) as raised:
        rcp.load_rcps("3dgan", tmp_path)
    assert str(tmp_path / "3dgan.json") in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_has_a_readable_rcp_file(name):
    """Empty until reference convergence runs exist (later campaigns write them with
    add_reference_runs); every record then names each run's seed."""
    records = rcp.load_rcps(name)
    assert all(len(r["Seeds"]) == len(r["Epochs to converge"]) for r in records.values())
