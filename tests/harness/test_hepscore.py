"""`harness score`: the HEP-convention score (geometric mean of per-workload medians over the
reference's), its JSON layout, the reference lookup, copies x threads filling the node, and the
precision gate keeping a failing precision out of the score."""
import json
import statistics

import pytest

from harness import hepscore
from harness.hepscore import FAILED, SUCCESS, WORKLOADS
from reference_model.errors import InputError

FP32, BF16, INT8, TRAIN = WORKLOADS


def block(*throughputs: float, status: str = SUCCESS, reason: str = "") -> dict:
    """A workload's block as run_workload writes it, with one run per throughput."""
    runs = {f"run{i}": {"report": {"wl-scores": {"showers_per_second": t}}} for i, t in enumerate(throughputs)}
    median = statistics.median(throughputs) if status == SUCCESS else None
    return {**runs, "status": status, "reason": reason, "throughput": median}


def definition(**changes) -> dict:
    base = {"score_version": hepscore.SCORE_VERSION, "benchmark": "3dgan", "checkpoint_sha256": "c763",
            "gate_thresholds": "3dgan-quality-v2-noise-floor+sha256.c1cc", "quick": False,
            "software": {"tensorflow": "2.21.0", "openvino": "2026.4.1"}}
    return {**base, **changes}


# -- the arithmetic ----------------------------------------------------------------------------
def test_a_workloads_throughput_is_the_median_of_its_runs_in_run_order():
    runs = block(30.0, 10.0, 20.0)
    assert hepscore.run_throughputs({**runs, "run10": {"report": {"wl-scores": {"x": 5.0}}}}) == [30, 10, 20, 5]
    assert runs["throughput"] == 20.0


def test_the_score_is_the_geometric_mean_of_throughputs_over_the_references():
    here = {FP32: block(400.0), BF16: block(900.0), TRAIN: block(2.0)}
    reference = {FP32: block(100.0), BF16: block(900.0), TRAIN: block(8.0)}
    scores, excluded = hepscore.relative_scores(here, reference)
    assert scores == {FP32: 4.0, BF16: 1.0, TRAIN: 0.25} and excluded == {}
    assert hepscore.geometric_mean(scores) == pytest.approx(1.0)  # (4 x 1 x 0.25) ** (1/3)
    assert hepscore.geometric_mean({FP32: 2.0, BF16: 8.0}) == pytest.approx(4.0)
    assert hepscore.geometric_mean({}) is None


def test_copy_stats_are_the_spread_of_one_runs_copies():
    assert hepscore.copy_stats([1.0, 2.0, 6.0]) == {"avg": 3.0, "median": 2.0, "min": 1.0, "max": 6.0, "count": 3}


def test_workloads_failed_here_or_missing_from_the_reference_are_excluded_and_say_why():
    here = {FP32: block(200.0), BF16: block(300.0), INT8: block(status=FAILED, reason="precision gate FAILED"),
            TRAIN: block(2.0)}
    reference = {FP32: block(100.0), INT8: block(500.0), TRAIN: block(status=FAILED, reason="copy died")}
    scores, excluded = hepscore.relative_scores(here, reference)
    assert scores == {FP32: 2.0}
    assert excluded == {BF16: "not in the reference report", INT8: "failed here: precision gate FAILED",
                        TRAIN: "failed in the reference report: copy died"}


def test_a_report_that_is_its_own_reference_scores_one_per_workload():
    here = {FP32: block(123.0, 130.0, 127.0), TRAIN: block(3.0, 3.1, 2.9)}
    section = hepscore.score_section(here, definition(), "box", None, None)
    assert section["wl-scores"] == {FP32: 1.0, TRAIN: 1.0} and section["score"] == 1.0
    assert section["reference"] == {"system": "box", "self": True, "file": None, "sha256": None,
                                    "comparable": True, "differences": []}
    assert section["excluded"] == {BF16: "not run (--workloads)", INT8: "not run (--workloads)"}
    assert section["status"] == SUCCESS
    assert here[FP32]["ref_throughput"] == 127.0 and here[FP32]["score"] == 1.0


def test_a_reference_missing_a_workload_leaves_it_out_of_the_score_but_not_failed(tmp_path):
    reference_file = tmp_path / "ref.json"
    reference = {"host": {"system_name": "refbox"}, "definition": definition(), "benchmarks": {FP32: block(100.0)}}
    reference_file.write_text(json.dumps(reference))
    here = {FP32: block(150.0), TRAIN: block(2.0)}
    section = hepscore.score_section(here, definition(), "box", reference, reference_file)
    assert section["score"] == pytest.approx(1.5) and section["status"] == SUCCESS
    assert section["excluded"][TRAIN] == "not in the reference report"
    assert here[TRAIN]["score"] is None and here[TRAIN]["ref_throughput"] is None
    assert section["reference"]["system"] == "refbox" and len(section["reference"]["sha256"]) == 64
    assert section["reference"]["file"] == str(reference_file.resolve())  # outside the suite: absolute


def test_a_failed_workload_fails_the_report_and_is_left_out_of_the_score():
    here = {FP32: block(100.0), INT8: block(status=FAILED, reason="precision gate FAILED against float32")}
    section = hepscore.score_section(here, definition(), "box", None, None)
    assert section["status"] == FAILED and section["wl-scores"] == {FP32: 1.0}
    assert section["excluded"][INT8].startswith("failed here: precision gate FAILED")


def test_reports_of_another_checkpoint_thresholds_or_software_are_flagged_not_comparable():
    theirs = definition(checkpoint_sha256="9bc1", quick=True, software={"tensorflow": "2.20.0",
                                                                         "openvino": "2026.4.1"})
    differences = hepscore.definition_differences(definition(), theirs)
    assert differences == ["checkpoint_sha256: 'c763' here, '9bc1' in the reference",
                           "quick: False here, True in the reference",
                           "software.tensorflow: '2.21.0' here, '2.20.0' in the reference"]
    section = hepscore.score_section({FP32: block(1.0)}, definition(),
                                     "box", {"definition": theirs, "benchmarks": {FP32: block(1.0)}}, None)
    assert section["reference"]["comparable"] is False and len(section["reference"]["differences"]) == 3
    assert hepscore.definition_differences(definition(), definition()) == []


# -- copies x threads fill the node --------------------------------------------------------------
def test_copies_and_threads_fill_the_logical_cpus():
    assert hepscore.fill_node(8, None, None) == (8, 1)  # single-threaded copies on every logical CPU
    assert hepscore.fill_node(8, None, 2) == (4, 2)
    assert hepscore.fill_node(8, 3, None) == (3, 2)  # 2 CPUs stay idle: 3 does not divide 8
    assert hepscore.fill_node(8, 2, 2) == (2, 2)


@pytest.mark.parametrize("copies, threads, match", [(None, 9, "--threads-per-copy 9: .* at most 8"),
                                                    (9, None, "--copies 9: .* at most 8"),
                                                    (3, 3, "--copies 3 x --threads-per-copy 3 needs 9")])
def test_more_copies_or_threads_than_logical_cpus_is_one_clear_error(copies, threads, match):
    with pytest.raises(InputError, match=match):
        hepscore.fill_node(8, copies, threads)


def test_the_node_is_the_affinity_of_the_process_that_runs(monkeypatch):
    monkeypatch.setattr(hepscore.os, "sched_getaffinity", lambda pid: {3, 1, 2, 0, 5, 4})
    cpus = hepscore.logical_cpus()
    assert cpus == [0, 1, 2, 3, 4, 5]
    settings = hepscore.Settings.resolve(None, 2, 3, 15.0, False, len(cpus))
    assert (settings.copies, settings.threads_per_copy, settings.cpus_used) == (3, 2, 6)
    assert hepscore.copy_cores(settings, cpus) == [[0, 1], [2, 3], [4, 5]]


def test_quick_caps_duration_and_repetitions():
    settings = hepscore.Settings.resolve(1, 1, 3, 15.0, True, 2)
    assert (settings.duration_s, settings.repetitions, settings.warmup_iterations) == (1.0, 1, 1)


def test_workloads_parse_in_order_and_unknown_ones_name_the_choices():
    assert hepscore.parse_workloads(None) == list(WORKLOADS.values())
    assert [w.name for w in hepscore.parse_workloads(f"{TRAIN},{FP32},{TRAIN}")] == [TRAIN, FP32]
    with pytest.raises(InputError, match=f"unknown fp8; give a comma-separated list of {FP32}"):
        hepscore.parse_workloads(f"{FP32},fp8")


# -- the reference lookup ------------------------------------------------------------------------
@pytest.fixture
def reference_dir(tmp_path, monkeypatch):
    directory = tmp_path / "results" / "score"
    directory.mkdir(parents=True)
    monkeypatch.setattr(hepscore, "REFERENCE_DIR", directory)
    return directory


def test_a_reference_system_is_its_committed_report(reference_dir):
    report = {"host": {"system_name": "refbox"}, "definition": definition(), "benchmarks": {FP32: block(1.0)}}
    (reference_dir / "refbox.json").write_text(json.dumps(report))
    loaded, path = hepscore.load_reference("refbox")
    assert loaded == report and path == reference_dir / "refbox.json"
    assert hepscore.load_reference(str(path))[1] == path  # a report file works as well
    assert hepscore.committed_references() == ["refbox"]


def test_the_default_reference_is_a_system_name():
    assert hepscore.reference_path(hepscore.DEFAULT_REFERENCE) == \
        hepscore.REFERENCE_DIR / f"{hepscore.DEFAULT_REFERENCE}.json"


def test_a_missing_reference_names_the_committed_ones_and_how_to_make_it(reference_dir):
    (reference_dir / "refbox.json").write_text("{}")
    with pytest.raises(InputError, match=r"--reference other: no score report at .*other.json \(committed "
                                         r"references: refbox\); .*harness score --out"):
        hepscore.load_reference("other")


@pytest.mark.parametrize("text, match", [("{not json", "not valid JSON"),
                                         ('{"benchmarks": {}}', "not a `harness score` report"),
                                         ("[1, 2]", "not a `harness score` report")])
def test_a_broken_reference_is_one_clear_error(reference_dir, text, match):
    (reference_dir / "bad.json").write_text(text)
    with pytest.raises(InputError, match=match):
        hepscore.load_reference("bad")


def test_a_report_written_to_its_references_file_is_its_own_reference(reference_dir, tmp_path):
    assert hepscore.is_self_reference(reference_dir / "box.json", "box")
    assert not hepscore.is_self_reference(tmp_path / "box.json", "box")
    assert hepscore.is_self_reference(tmp_path / "r.json", str(tmp_path / "r.json"))


# -- the JSON layout of a workload -----------------------------------------------------------------
class FakeMeasurement:
    def __init__(self, per_copy: list, showers: int) -> None:
        self.per_stream_showers_per_second, self.showers, self.seconds = per_copy, showers, 2.0


def test_a_workload_block_has_hep_runs_app_and_run_info(monkeypatch):
    measured = iter([FakeMeasurement([10.0, 12.0], 256), FakeMeasurement([9.0, 9.0], 128),
                     FakeMeasurement([11.0, 11.0], 256)])
    monkeypatch.setattr(hepscore, "measure", lambda *args: next(measured))
    settings = hepscore.Settings(copies=2, threads_per_copy=2, logical_cpus=4, repetitions=3, duration_s=2.0,
                                 warmup_iterations=3, quick=False)
    out = hepscore.run_workload(WORKLOADS[FP32], None, {"precision": "float32"}, "", settings, [0, 1, 2, 3])
    assert [k for k in out if k[3:].isdigit()] == ["run0", "run1", "run2"]
    for run in ("run0", "run1", "run2"):
        assert set(out[run]) == {"start_at", "end_at", "duration", "report"}
        assert {"wl-scores", "wl-stats", "log"} <= set(out[run]["report"])
    assert out["run0"]["report"]["wl-scores"] == {"showers_per_second": 22.0}  # the sum over copies
    assert out["run0"]["report"]["wl-stats"]["count"] == 2
    assert out["throughput"] == 22.0 and out["status"] == SUCCESS  # the median of 22, 18, 22
    assert out["app"] == {"precision": "float32"}
    info = out["run_info"]
    assert (info["copies"], info["threads_per_copy"], info["events_per_thread"]) == (2, 2, 64)
    assert info["copy_cpus"] == [[0, 1], [2, 3]]


def test_a_workload_that_could_not_be_prepared_is_never_timed(monkeypatch):
    monkeypatch.setattr(hepscore, "measure", lambda *args: pytest.fail("a failed workload was timed"))
    settings = hepscore.Settings(1, 1, 1, 3, 1.0, 1, False)
    out = hepscore.run_workload(WORKLOADS[INT8], None, {}, "precision gate FAILED against float32", settings, [0])
    assert out["status"] == FAILED and out["throughput"] is None and "run0" not in out
    assert out["reason"] == "precision gate FAILED against float32"


def test_a_copy_that_fails_fails_its_workload_with_one_line(monkeypatch):
    def broken(*args):
        raise RuntimeError("3dgan-training-mixed_bfloat16: a stream failed:\nTraceback...\n  line 3\nMemoryError: x")

    monkeypatch.setattr(hepscore, "measure", broken)
    out = hepscore.run_workload(WORKLOADS[TRAIN], None, {}, "", hepscore.Settings(1, 1, 1, 3, 1.0, 1, False), [0])
    assert out["status"] == FAILED
    assert out["reason"] == "3dgan-training-mixed_bfloat16: a stream failed: MemoryError: x"


def test_a_precision_failing_the_gate_against_float32_is_marked_failed(monkeypatch, tmp_path):
    from benchmark import precision as prec
    from benchmark import quality
    from harness import run_inference
    from reference_model import checkpoint

    class Runner:
        def __init__(self, precision):
            self.precision, self.runtime = precision, f"{precision}-runtime"

    def gates(runners, precisions, thresholds, seed, tag):
        assert set(runners) == {"float32", "bfloat16", "int8"} and precisions == ["bfloat16", "int8"]
        return {"bfloat16": prec.GateResult("bfloat16", "bf", True, "all 2 checks pass"),
                "int8": prec.GateResult("int8", "i8", False, "objective.total 3 > 0.2")}

    monkeypatch.setattr(prec, "prepare", lambda p, ckpt, workdir, seed: tmp_path / p)
    monkeypatch.setattr(prec, "load_runner", lambda p, artifact, spec: Runner(p))
    monkeypatch.setattr(run_inference, "precision_gates", gates)
    monkeypatch.setattr(checkpoint, "read_card", lambda path: {"sha256": "c763"})
    thresholds = quality.load_thresholds("3dgan", smoke=True)
    prepared = hepscore.prepare_inference([WORKLOADS[FP32], WORKLOADS[BF16], WORKLOADS[INT8]],
                                          tmp_path / "ckpt.weights.h5", tmp_path, thresholds)
    assert prepared[FP32].failure == "" and "precision_gate" not in prepared[FP32].app
    assert prepared[BF16].failure == "" and prepared[BF16].app["precision_gate"]["passed"] is True
    assert prepared[INT8].failure == "precision gate FAILED against float32 (3dgan-smoke-v1): objective.total 3 > 0.2"
    assert prepared[INT8].app["runtime"] == "int8-runtime"


# -- the command -------------------------------------------------------------------------------------
def test_bad_flags_are_one_line_errors(capsys):
    from harness.cli import main

    assert main(["score", "--workloads", "fp8"]) == 2
    assert main(["score", "--copies", "100000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("harness score: error: --") for line in err)


def test_the_command_writes_the_report_and_exits_nonzero_when_a_workload_failed(monkeypatch, tmp_path, capsys):
    from benchmark import precision
    from harness import sysinfo
    from harness.cli import main

    seen = {}

    def fake_score(workloads, settings, cpus, host, reference, out, workdir, command):
        seen.update(settings=settings, reference=reference, out=out, workdir=workdir)
        benchmarks = {FP32: {**block(100.0), "unit": "showers_per_second", "ref_throughput": 50.0, "score": 2.0},
                      INT8: {**block(status=FAILED, reason="gate"), "unit": "showers_per_second",
                             "ref_throughput": None, "score": None}}
        return {"benchmarks": benchmarks, "wl-scores": {FP32: 2.0}, "excluded": {INT8: "failed here: gate"},
                "score": 2.0, "status": FAILED,
                "reference": {"system": "refbox", "self": False,
                              "differences": ["quick: True here, False in the reference"]}}

    monkeypatch.setattr(precision, "configure_threads", lambda *a: (0, 0))
    monkeypatch.setattr(sysinfo, "describe_system", lambda identity: {"system_name": identity.system_name})
    monkeypatch.setattr(hepscore, "run_score", fake_score)
    code = main(["score", "--copies", "1", "--quick", "--system-name", "box", "--results", str(tmp_path),
                 "--reference", "refbox"])
    assert code == 1
    out = tmp_path / "score" / "box.json"
    assert seen["out"] == out and json.loads(out.read_text())["score"] == 2.0
    assert seen["reference"] == "refbox" and seen["settings"].copies == 1 and seen["settings"].quick
    assert seen["workdir"] == tmp_path / "checkpoints" / "box" / "3dgan" / "inference"
    printed = capsys.readouterr().out
    assert "score 2.000: geometric mean of 1 workload scores, relative to refbox" in printed
    assert "NOT COMPARABLE with the reference: quick" in printed and "failed here: gate" in printed


# -- end to end ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_quick_score_end_to_end_is_its_own_reference(tmp_path):
    """One copy, 1 s runs: float32 and bfloat16 inference (the bf16 gate at the smoke limits) and
    the training step, written to its own reference file (about 2 min on a busy 2-core VM)."""
    from harness.cli import main

    report_path = tmp_path / "self.json"
    code = main(["score", "--quick", "--copies", "1", "--threads-per-copy", "1", "--workloads",
                 f"{FP32},{BF16},{TRAIN}", "--out", str(report_path), "--reference", str(report_path),
                 "--results", str(tmp_path / "root"), "--system-name", "testbox"])
    report = json.loads(report_path.read_text())
    assert code == 0, report.get("excluded")
    assert {"benchmarks", "wl-scores", "score", "status", "host", "reference", "definition"} <= set(report)
    assert report["status"] == SUCCESS and report["score"] == 1.0 and report["reference"]["self"]
    assert report["wl-scores"] == {FP32: 1.0, BF16: 1.0, TRAIN: 1.0}
    assert report["excluded"] == {INT8: "not run (--workloads)"}
    assert report["host"]["system_name"] == "testbox" and report["definition"]["quick"] is True
    for name in (FP32, BF16, TRAIN):
        wl = report["benchmarks"][name]
        assert {"run0", "app", "run_info"} <= set(wl) and wl["throughput"] > 0
        assert {"start_at", "end_at", "duration", "report"} <= set(wl["run0"])
        assert {"copies": 1, "threads_per_copy": 1}.items() <= wl["run_info"].items()
        assert wl["run_info"]["events_per_thread"] > 0
    assert report["benchmarks"][BF16]["app"]["precision_gate"]["passed"] is True
