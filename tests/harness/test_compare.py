"""`harness compare`: CPU generations side by side, raw, per core and per core-GHz, with
intervals, from several roots or from one root holding several systems; and the flags that say
when two systems' numbers are not comparable."""
import contextlib
import io

import pytest

from benchmark import vocabulary
from harness import cli
from harness.comparison import (Comparison, comparability_lines, comparison_table, epoch_time_table, load_systems,
                                repeated_runs_table, with_base, write_plots)
from reference_model.errors import InputError
from tests.harness.fake_runs import make_inference_result, make_training_result, thresholds_version, write_system


@pytest.fixture
def generations(tmp_path):
    """'old': 2 sockets x 4 cores; 'new': 2 sockets x 8 cores, twice as fast overall."""
    old, new = tmp_path / "old", tmp_path / "new"
    write_system(old, "old_cpu", cores=4)
    write_system(new, "new_cpu", cores=8)
    for i, jitter in enumerate((0.98, 1.0, 1.02, 0.99, 1.01)):
        make_training_result(old, "3dgan", "tta", seconds=600 * jitter, system="old_cpu")
        make_training_result(new, "3dgan", "tta", seconds=300 * jitter, system="new_cpu")
    for jitter in (0.98, 1.0, 1.02):
        make_training_result(old, "3dgan", "epoch-time", samples_per_second=40 * jitter, system="old_cpu")
        make_training_result(new, "3dgan", "epoch-time", samples_per_second=80 * jitter, system="new_cpu")
    for streams, rate in ((1, 100.0), (2, 180.0)):
        make_inference_result(old, streams=streams, samples_per_second=rate, system="old_cpu")
        make_inference_result(new, streams=streams, samples_per_second=2 * rate, system="new_cpu")
    return old, new


def _row(rows, system):
    return next(r for r in rows if r[2] == system)


def test_speedups_raw_and_per_core(generations):
    comparison = Comparison.of(load_systems(list(generations)))
    headers, rows = comparison_table(comparison, vocabulary.TTA)
    new = dict(zip(headers, _row(rows, "new_cpu")))
    assert new["metric"] == "time_to_accuracy_minutes"
    assert new["score"] == "5" and new["core-min"] == "80"  # 5 min x 16 cores
    speedup, interval = new["speed-up vs old_cpu [95% CI]"].split("x ")
    assert float(speedup) == pytest.approx(2.0)
    low, high = (float(v) for v in interval.strip("[]").split(","))
    assert low <= 2.0 <= high
    per_core, interval = new["per-core speed-up"].split("x ")
    assert float(per_core) == pytest.approx(1.0), "twice as fast with twice the cores"
    assert [float(v) for v in interval.strip("[]").split(",")] == pytest.approx([low / 2, high / 2], rel=1e-2)
    assert new["comparable"] == "yes" and dict(zip(headers, _row(rows, "old_cpu")))["comparable"] == "base"
    headers, rows = comparison_table(comparison, vocabulary.EPOCH_TIME)
    assert dict(zip(headers, _row(rows, "new_cpu")))["/core"] == "5"  # 80 samples/s / 16 cores
    headers, rows = comparison_table(comparison, vocabulary.INFERENCE)
    speedup = headers.index("speed-up vs old_cpu [95% CI]")
    # inference matches on scenario and precision: each system's best setting, one row each
    assert len(rows) == 2 and all(r[speedup] == "2x [n/a: <2 runs]" for r in rows if r[2] == "new_cpu")


def test_single_stream_is_scored_by_its_latency(tmp_path):
    """MLPerf's SingleStream metric is the early-stopping 90th-percentile latency: lower is better,
    there is no per-core figure of a latency, the batch is one sample per query (not the SUT's
    maximum), and it is not drawn as a throughput against streams."""
    root = tmp_path / "results"
    write_system(root, "old_cpu", cores=4)
    write_system(root, "new_cpu", cores=8)
    make_inference_result(root, scenario="SingleStream", samples_per_second=100.0, p90_ms=8.0, system="old_cpu")
    make_inference_result(root, scenario="SingleStream", samples_per_second=150.0, p90_ms=5.0, system="new_cpu",
                          streams=2)
    make_inference_result(root, scenario="SingleStream", samples_per_second=180.0, p90_ms=4.0, system="new_cpu")
    comparison = _against_old_cpu(root)
    headers, rows = comparison_table(comparison, vocabulary.INFERENCE)
    assert len(rows) == 2, "each system's best (lowest-latency) setting"
    new, old = (dict(zip(headers, _row(rows, name))) for name in ("new_cpu", "old_cpu"))
    assert new["metric"] == "p90_latency_ms" and new["score"] == "4" and old["score"] == "8"
    assert "batch=1 " in new["configuration"] and "streams=1" in new["configuration"]
    assert new["speed-up vs old_cpu [95% CI]"] == "2x [n/a: <2 runs]"  # 8 ms / 4 ms
    assert new["/core"] == new["/core-GHz"] == new["per-core speed-up"] == new["per-core-GHz speed-up"] == "-"
    plots = [path.name for path in write_plots(comparison, tmp_path / "plots")]
    assert plots == ["speedups_3dgan.png"], "a latency is no throughput against streams"


def test_server_rates_compare_only_under_the_benchmarks_fixed_bound(tmp_path):
    """rules.md section 9: a Server run held to another bound is not counted, so never compared."""
    root = tmp_path / "results"
    for system, bound in (("old_cpu", None), ("new_cpu", None), ("explored_cpu", 1200.0)):
        write_system(root, system, cores=4)
        make_inference_result(root, scenario="Server", samples_per_second=100.0, system=system,
                              server_latency_ms=bound)
    comparison = _against_old_cpu(root)
    assert _table(comparison, vocabulary.INFERENCE, "new_cpu")["comparable"] == "yes"
    with pytest.raises(StopIteration):
        _table(comparison, vocabulary.INFERENCE, "explored_cpu")


def test_epoch_time_table(generations):
    headers, rows = epoch_time_table(load_systems(list(generations)))
    assert {r[2] for r in rows} == {"old_cpu", "new_cpu"} and all(r[3] == "3" for r in rows)


def test_an_inference_result_of_several_runs_shows_their_range(generations):
    """Two Server runs of one setting, far apart (Zen 4 float32: 718.0 and 1,197.8), are scored
    together; the range beside the score says how far apart."""
    old, _ = generations
    assert repeated_runs_table(load_systems([old]))[1] == []
    for rate in (718.0, 1197.8):
        make_inference_result(old, scenario="Server", samples_per_second=rate, system="old_cpu")
    _, rows = repeated_runs_table(load_systems([old]))
    assert [r[2:] for r in rows] == [["old_cpu", "2", "samples_per_second", "957.9", "718", "1198"]]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(["compare", str(old), "--markdown"])
    assert "## Inference results of several runs" in out.getvalue()


def test_cli_markdown_and_plots(generations, tmp_path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["compare", *map(str, generations), "--markdown", "--plot", str(tmp_path / "plots")])
    text = out.getvalue()
    assert code == 0 and "## Time to accuracy" in text and "| new_cpu" in text
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["scaling_3dgan.png", "speedups_3dgan.png", "streams_3dgan.png"]
    assert all((tmp_path / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_empty_root_is_an_input_error(tmp_path):
    (tmp_path / "results").mkdir()
    with pytest.raises(InputError, match="no results"):
        load_systems([tmp_path])


SOFTWARE = {"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.15.1", "onednn_enabled": True,
            "horovod": "0.28.1", "mpi": "mpirun (Open MPI) 4.1.4"}
CPUINFO_ONLY = {"base": "unknown", "max": "unknown", "min": "unknown", "current": 2500}  # a KVM guest


@pytest.fixture
def one_root(tmp_path):
    """One results root with two systems: 'old_cpu' (2 x 4 cores, base clock 2 GHz) and
    'new_cpu' (2 x 8 cores, only cpuinfo's 2.5 GHz), twice as fast; the same software. new_cpu's
    time-to-accuracy runs were judged against other thresholds, its epoch-time runs read other data."""
    root = tmp_path / "results"
    write_system(root, "old_cpu", cores=4, software=SOFTWARE,
                 frequency_mhz={"base": 2000, "max": 3500, "min": 800, "current": 2600})
    write_system(root, "new_cpu", cores=8, software=SOFTWARE, frequency_mhz=CPUINFO_ONLY)
    for jitter in (0.98, 1.0, 1.02, 0.99, 1.01):
        make_training_result(root, "3dgan", "tta", seconds=600 * jitter, system="old_cpu")
        make_training_result(root, "3dgan", "tta", seconds=300 * jitter, system="new_cpu",
                             thresholds="3dgan-quality-v9+sha256.000000000000")
    for jitter in (0.98, 1.0, 1.02):
        make_training_result(root, "3dgan", "epoch-time", samples_per_second=40 * jitter, system="old_cpu",
                             data="/work/data/standin-fixed-seed0")
        make_training_result(root, "3dgan", "epoch-time", samples_per_second=80 * jitter, system="new_cpu",
                             data="/scratch/standin-fixed-seed1")
    make_inference_result(root, samples_per_second=100.0, system="old_cpu")
    make_inference_result(root, samples_per_second=200.0, system="new_cpu")
    return root


def _against_old_cpu(root):
    return Comparison.of(with_base(load_systems([root]), "old_cpu"))


def _table(comparison, mode, system):
    headers, rows = comparison_table(comparison, mode)
    return dict(zip(headers, _row(rows, system)))


def test_one_root_holds_both_systems_and_per_core_ghz(one_root):
    systems = load_systems([one_root])
    assert [s.label for s in systems] == ["new_cpu", "old_cpu"]  # by name: new_cpu would be the base
    comparison = Comparison.of(with_base(systems, "old_cpu"))
    new = _table(comparison, vocabulary.TTA, "new_cpu")
    assert new["clock"] == "2.5 GHz cpuinfo 'cpu MHz'" and new["core-GHz-min"] == "200"  # 5 min x 16 x 2.5
    assert _table(comparison, vocabulary.TTA, "old_cpu")["clock"] == "2 GHz base"
    assert float(new["per-core-GHz speed-up"].split("x ")[0]) == pytest.approx(0.8)  # 2 x (8 x 2.0) / (16 x 2.5)
    assert _table(comparison, vocabulary.INFERENCE, "new_cpu")["/core-GHz"] == "5"  # 200 / (16 x 2.5)
    assert any("divides old_cpu by its base clock and new_cpu by its cpuinfo 'cpu MHz' clock" in line
               for line in comparability_lines(comparison))


def test_unknown_frequency(one_root):
    write_system(one_root, "new_cpu", cores=8, software=SOFTWARE)  # no frequency recorded
    comparison = _against_old_cpu(one_root)
    new = _table(comparison, vocabulary.EPOCH_TIME, "new_cpu")
    assert new["clock"] == new["/core-GHz"] == "unknown" and new["per-core-GHz speed-up"] == "-"
    assert new["/core"] == "5" and new["per-core speed-up"] != "-"


def test_flags_thresholds_and_data_per_result(one_root):
    comparison = _against_old_cpu(one_root)
    assert _table(comparison, vocabulary.TTA, "new_cpu")["comparable"] == "no: quality thresholds"
    assert _table(comparison, vocabulary.EPOCH_TIME, "new_cpu")["comparable"] == "no: data set"
    assert _table(comparison, vocabulary.INFERENCE, "new_cpu")["comparable"] == "yes"
    lines = "\n".join(comparability_lines(comparison))
    assert "**new_cpu vs old_cpu (base)**: not comparable because" in lines
    assert f"quality thresholds {thresholds_version('3dgan')} vs 3dgan-quality-v9+sha256.000000000000" in lines
    assert "data set standin-fixed-seed0 vs standin-fixed-seed1" in lines
    assert "software:" not in lines


def test_flags_software(one_root):
    write_system(one_root, "new_cpu", cores=8, software={**SOFTWARE, "tensorflow": "2.16.1", "mpi": "unknown"},
                 frequency_mhz=CPUINFO_ONLY)
    comparison = _against_old_cpu(one_root)
    inference = _table(comparison, vocabulary.INFERENCE, "new_cpu")
    assert inference["comparable"] == "no: TensorFlow, MPI"
    lines = comparability_lines(comparison)
    assert "  - software: TensorFlow 2.21.0 vs 2.16.1" in lines
    assert "  - software: MPI mpirun (Open MPI) 4.1.4 vs unknown" in lines


def test_comparable_pair_and_base_choice(tmp_path):
    root = tmp_path / "same"
    for system, cores, rate in (("a_cpu", 4, 40), ("b_cpu", 8, 60)):
        write_system(root, system, cores=cores, software=SOFTWARE)
        for jitter in (0.98, 1.0, 1.02):
            make_training_result(root, "3dgan", "epoch-time", samples_per_second=rate * jitter, system=system)
    comparison = Comparison.of(load_systems([root]))
    assert comparability_lines(comparison) == [
        "- **b_cpu vs a_cpu (base)**: comparable: the same software, quality thresholds, data and model "
        "in the 1 result(s) both have"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["compare", str(root), "--base", "b_cpu"]) == 0
    assert "Base: b_cpu." in out.getvalue() and "speed-up vs b_cpu" in out.getvalue()
    with pytest.raises(InputError, match="no such system"):
        with_base(load_systems([root]), "c_cpu")


def test_markdown_report_file_with_plots(one_root, tmp_path):
    report = one_root / "comparison.md"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["compare", str(one_root), "--base", "old_cpu", "--markdown",
                         "--plot", str(one_root / "plots"), "--output", str(report)])
    text = report.read_text()
    assert code == 0 and f"wrote {report}" in out.getvalue()
    for expected in ("## Systems", "## Comparability", "## Time to accuracy", "## Inference throughput",
                     "| new_cpu", "not comparable because", "![speedups_3dgan](plots/speedups_3dgan.png)",
                     "per-core-GHz speed-up", "no: quality thresholds"):
        assert expected in text, expected
    assert (one_root / "plots" / "speedups_3dgan.png").read_bytes()[:4] == b"\x89PNG"
