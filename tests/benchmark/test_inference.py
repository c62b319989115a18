"""The inference sweep: the grid, pinned stream processes, aggregation, results on disk."""
import json

import numpy as np
import pytest

from benchmark import inference
from benchmark.inference import SweepPoint
from reference_model.errors import InputError


def test_default_streams_follow_the_core_count():
    assert inference.default_streams(1) == [1]
    assert inference.default_streams(2) == [1, 2]
    assert inference.default_streams(6) == [1, 2, 4, 6]
    assert inference.default_streams(16) == [1, 2, 4, 8, 16]


def test_grid_gives_each_stream_its_share_of_cores():
    points = inference.build_grid(["float32", "bfloat16"], [32, 128], [1, 2], None, [1], cores=4)
    assert len(points) == 8
    assert {(p.streams, p.intra_op) for p in points} == {(1, 4), (2, 2)}
    explicit = inference.build_grid(["float32"], [8], [2], [1, 3], [1, 2], cores=4)
    assert sorted((p.intra_op, p.inter_op) for p in explicit) == [(1, 1), (1, 2), (3, 1), (3, 2)]


def test_more_streams_than_cores_is_refused():
    with pytest.raises(InputError, match="--streams 3"):
        inference.build_grid(["float32"], [8], [1, 3], None, [1], cores=2)


def test_stream_core_sets_are_disjoint_and_equal():
    sets = inference.stream_core_sets(2, [0, 1, 2, 3, 4])
    assert sets == [[0, 1], [2, 3]]
    with pytest.raises(InputError):
        inference.stream_core_sets(3, [0, 1])


def test_aggregate_counts_every_shower_over_the_whole_window():
    # stream 0: 3 batches of 10 ms from t=0; stream 1: 2 batches of 20 ms from t=5 ms
    collected = [{"stream": 1, "spans": [(0.005, 0.025), (0.025, 0.045)]},
                 {"stream": 0, "spans": [(0.0, 0.01), (0.01, 0.02), (0.02, 0.03)]}]
    m = inference.aggregate(collected, batch=4, stream_cores=[[0], [1]])
    assert m.showers == 20
    assert m.seconds == pytest.approx(0.045)
    assert m.showers_per_second == pytest.approx(20 / 0.045)
    assert m.per_stream_showers_per_second == pytest.approx([12 / 0.03, 8 / 0.04])
    assert m.batch_latency_ms["p50"] == pytest.approx(10.0)
    assert m.batch_latency_ms["p99"] == pytest.approx(np.percentile([10, 10, 10, 20, 20], 99))


def test_point_result_derives_ms_mfu_and_geant4_speedup():
    m = inference.Measurement(showers=1000, seconds=2.0, showers_per_second=500.0,
                              batch_latency_ms={"p50": 1.0, "p90": 2.0, "p99": 3.0},
                              per_stream_showers_per_second=[500.0], stream_cores=[[0]])
    result = inference.point_result(SweepPoint("bfloat16", 128, 1, 2, 1), m, "measured",
                                    flops_per_shower=500_000_000, roofline_gflops=1000.0)
    assert result.ms_per_shower == pytest.approx(2.0)
    assert result.mfu == pytest.approx(0.25)  # 500 showers/s x 0.5 GFLOP = 250 of 1000 GFLOP/s
    assert result.speedup_vs_geant4 == pytest.approx(8500.0)
    assert inference.point_result(SweepPoint("int8", 128, 1, 2, 1), m, "measured", 1, None).mfu is None


def test_a_stream_that_cannot_load_its_model_fails_the_point(tmp_path):
    point = SweepPoint("float32", batch=2, streams=1, intra_op=1, inter_op=1)
    with pytest.raises(RuntimeError, match="stream failed"):
        inference.measure_point(point, "3dgan", tmp_path / "missing.weights.h5", duration_s=0.1,
                                warmup_batches=1, cores=[0])


def test_a_precision_that_failed_the_gate_is_never_measured():
    points = [SweepPoint("int8", 128, 1, 2, 1)]
    out = inference.run_sweep(points, "3dgan", artifacts={}, gate_passed={"int8": False},
                              flops_per_shower=1, rooflines={},
                              failed_reasons={"int8": "quality gate FAILED: objective.total 3 > 0.2"})
    assert [r.status for r in out] == ["FAILED"]
    assert out[0].showers_per_second is None and out[0].ms_per_shower is None and out[0].showers == 0
    table = inference.sweep_table(out)
    assert "not reported: quality gate FAILED: objective.total 3 > 0.2" in table


def test_harness_sweep_writes_json_csv_and_table(untrained_checkpoint, fixed_data_dir, tmp_path, capsys):
    from harness.cli import build_parser

    args = build_parser().parse_args(
        ["run", "--mode", "inference", "--no-quality-gate", "--precision", "float32", "--streams", "2",
         "--batch", "4", "--duration", "0.5", "--warmup-batches", "1", "--no-loadgen",
         "--roofline-size", "256", "--checkpoint", str(untrained_checkpoint), "--data", str(fixed_data_dir),
         "--results", str(tmp_path), "--system-name", "testbox"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "UNGATED" in out and "speed-up vs Geant4" in out and "Xeon Platinum 8180" in out
    sweep = json.loads(next(tmp_path.glob("results/testbox/3dgan/sweeps/sweep_1.json")).read_text())
    (row,) = sweep["rows"]  # one point: two pinned stream processes
    assert row["status"] == "ungated" and row["streams"] == 2 and row["batch"] == 4
    first, second = row["stream_cores"]
    assert first and len(first) == len(second) and not set(first) & set(second)
    assert len(row["per_stream_showers_per_second"]) == 2
    assert row["showers"] % 4 == 0 and row["showers"] >= 2 * 3 * 4 and row["seconds"] >= 0.5
    assert row["showers_per_second"] == pytest.approx(row["showers"] / row["seconds"])
    assert 0 < row["latency_p50_ms"] <= row["latency_p90_ms"] <= row["latency_p99_ms"]
    assert row["mfu"] > 0 and row["ms_per_shower"] == pytest.approx(1e3 / row["showers_per_second"])
    assert sweep["arguments"]["submittable"] is False
    assert set(sweep["arguments"]["rooflines"]) == {"float32", "bfloat16"}
    csv_text = (tmp_path / "results/testbox/3dgan/sweeps/sweep_1.csv").read_text()
    assert csv_text.splitlines()[0].startswith("precision,batch,streams")
    assert (tmp_path / "results/testbox/3dgan/sweeps/sweep_1.txt").is_file()


def test_harness_dry_run_lists_the_points(tmp_path, capsys):
    from harness.cli import build_parser

    args = build_parser().parse_args(["run", "--mode", "inference", "--dry-run", "--streams", "1",
                                      "--batch", "8,16", "--precision", "bfloat16",
                                      "--results", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "bfloat16 batch 8 streams 1" in out and "bfloat16 batch 16 streams 1" in out
    assert not (tmp_path / "results").exists()


def test_bad_precision_is_one_clear_error(tmp_path):
    from harness.cli import main

    assert main(["run", "--mode", "inference", "--dry-run", "--precision", "fp8",
                 "--results", str(tmp_path)]) == 2
