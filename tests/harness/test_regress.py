"""`harness regress`: a real slowdown fails, noise within the tolerance does not."""
import contextlib
import io
import json

import pytest

from harness import cli
from tests.harness.fake_runs import make_training_result, write_system


def _tree(root, rates):
    write_system(root)
    for rate in rates:
        make_training_result(root, "3dgan", "epoch-time", samples_per_second=rate)
    return root


def _run(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(argv)
    return code, out.getvalue()


@pytest.fixture
def baseline(tmp_path):
    code, text = _run(["summarize", str(_tree(tmp_path / "base", [100.0, 101.0, 99.0])), "--json"])
    assert code == 0
    path = tmp_path / "baseline.json"
    path.write_text(text)
    return path


def test_noise_is_not_a_regression(tmp_path, baseline):
    code, text = _run(["regress", str(_tree(tmp_path / "now", [97.0, 99.0, 98.0])), "--baseline", str(baseline)])
    assert code == 0 and "ok" in text


def test_slowdown_beyond_tolerance_fails(tmp_path, baseline):
    code, text = _run(["regress", str(_tree(tmp_path / "now", [80.0, 81.0, 79.0])), "--baseline", str(baseline)])
    assert code == 1 and "REGRESSED" in text


def test_interval_protects_against_noisy_runs(tmp_path, baseline):
    """Point estimate 12% slower, but the runs are too noisy to be confident of a 10% loss."""
    code, text = _run(["regress", str(_tree(tmp_path / "now", [60.0, 88.0, 115.0])),
                       "--baseline", str(baseline)])
    assert code == 0 and "ok" in text


def test_missing_result_fails(tmp_path, baseline):
    write_system(tmp_path / "now")
    make_training_result(tmp_path / "now", "3dgan", "epoch-time", per_rank_batch=16)
    code, text = _run(["regress", str(tmp_path / "now"), "--baseline", str(baseline)])
    assert code == 1 and "MISSING" in text


def test_bad_baseline_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"not": "a list"}))
    _tree(tmp_path / "now", [100.0])
    assert cli.main(["regress", str(tmp_path / "now"), "--baseline", str(bad)]) == 2
    assert "--baseline" in capsys.readouterr().err
