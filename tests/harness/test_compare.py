"""`harness compare`: two CPU generations side by side, raw and per core, with intervals."""
import contextlib
import io

import pytest

from benchmark import vocabulary
from harness import cli, results
from harness.comparison import comparison_table, epoch_time_table, load_systems
from reference_model.errors import InputError
from tests.harness.fake_runs import make_inference_result, make_training_result, write_system


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
    systems = load_systems(list(generations))
    headers, rows = comparison_table(systems, vocabulary.TTA)
    new = dict(zip(headers, _row(rows, "new_cpu")))
    assert new["score (min)"] == "5" and new["core-min"] == "80"  # 5 min x 16 cores
    speedup, interval = new["speed-up vs old_cpu [95% CI]"].split("x ")
    assert float(speedup) == pytest.approx(2.0)
    low, high = (float(v) for v in interval.strip("[]").split(","))
    assert low <= 2.0 <= high
    assert new["per-core speed-up"] == "1x", "twice as fast with twice the cores"
    headers, rows = comparison_table(systems, vocabulary.EPOCH_TIME)
    assert dict(zip(headers, _row(rows, "new_cpu")))["/core"] == "5"  # 80 samples/s / 16 cores
    headers, rows = comparison_table(systems, vocabulary.INFERENCE)
    assert len(rows) == 4 and all("2x [n/a: <2 runs]" in r[-2] for r in rows if r[2] == "new_cpu")


def test_epoch_time_table(generations):
    headers, rows = epoch_time_table(load_systems(list(generations)))
    assert {r[2] for r in rows} == {"old_cpu", "new_cpu"} and all(r[3] == "3" for r in rows)


def test_cli_markdown_and_plots(generations, tmp_path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["compare", *map(str, generations), "--markdown", "--plot", str(tmp_path / "plots")])
    text = out.getvalue()
    assert code == 0 and "## Time to accuracy" in text and "| new_cpu" in text
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["scaling_3dgan.png", "streams_3dgan.png"]
    assert all((tmp_path / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_empty_root_is_an_input_error(tmp_path):
    (tmp_path / "results").mkdir()
    with pytest.raises(InputError, match="no results"):
        load_systems([tmp_path])
