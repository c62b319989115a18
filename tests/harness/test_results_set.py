"""A CPU's results set (issue 24 §1): what a system lacks is named with the script part that
measures it, and `harness check` reports it."""
import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path

from harness import cli, results, results_set
from tests.harness.fake_runs import SYSTEM, make_inference_result, make_training_result, write_system


def _complete_set(root):
    write_system(root)
    for ranks in (1, 2):
        for _ in range(3):
            make_training_result(root, "3dgan", "epoch-time", ranks=ranks)
    series = root / "results" / SYSTEM / results.SCALING_FOLDER / "3dgan" / "series_1.json"
    series.parent.mkdir(parents=True)
    series.write_text(json.dumps({"status": "success", "submittable": True, "arguments": {"scaling_type": "weak"},
                                  "rows": []}))
    sweep = root / "results" / SYSTEM / "3dgan" / "sweeps" / "sweep_1.json"
    sweep.parent.mkdir(parents=True, exist_ok=True)
    sweep.write_text("{}")
    for scenario in ("Offline", "SingleStream", "Server"):
        for precision in ("float32", "bfloat16", "int8"):
            make_inference_result(root, scenario=scenario, precision=precision)
    results_set.score_report(root, SYSTEM).parent.mkdir(parents=True)
    results_set.score_report(root, SYSTEM).write_text("{}")


def _check_output(root, *extra) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(["check", str(root), *extra])
    return out.getvalue()


def test_a_complete_set_lacks_nothing(tmp_path):
    _complete_set(tmp_path)
    assert results_set.gaps(tmp_path, SYSTEM) == []
    assert f"results set of {SYSTEM}: complete" in _check_output(tmp_path)
    assert _check_output(tmp_path, "--lacking", SYSTEM) == ""


def test_missing_pieces_name_their_script_parts(tmp_path):
    """Only counted, submittable runs fill the set: an INVALID Server run, a short SingleStream
    run and a smoke epoch-time run leave their gaps open."""
    write_system(tmp_path)
    for _ in range(3):
        make_training_result(tmp_path, "3dgan", "epoch-time", ranks=1)
    make_training_result(tmp_path, "3dgan", "epoch-time", ranks=2, smoke=True)
    for precision in ("float32", "bfloat16", "int8"):
        make_inference_result(tmp_path, precision=precision)
    make_inference_result(tmp_path, scenario="SingleStream", official_minimum=False)
    make_inference_result(tmp_path, scenario="Server", valid=False)
    assert [(g.part, g.what) for g in results_set.gaps(tmp_path, SYSTEM)] == [
        ("training", "epoch time at 2 rank(s): 0 of 3 runs"),
        ("training", "a weak-scaling series"),
        ("offline", "the inference sweep"),
        ("stream", "LoadGen SingleStream at the official minimum: float32, bfloat16, int8"),
        ("server", "LoadGen Server at the official minimum: float32, bfloat16, int8"),
        ("score", "the HEP-convention score report")]
    assert _check_output(tmp_path, "--lacking", SYSTEM).split() == ["training", "offline", "stream", "server",
                                                                    "score"]
    assert "measure them on that CPU: scripts/measure-results-set.sh missing (parts training, offline, stream, " \
           "server, score)" in _check_output(tmp_path)


def test_a_system_never_measured_lacks_every_part(tmp_path):
    _complete_set(tmp_path)
    assert [g.part for g in results_set.gaps(tmp_path, "vm_new-cpu")] == [
        "training", "training", "training", "offline", "offline", "stream", "server", "score"]


def test_a_set_lacking_some_precisions_names_only_those():
    """A set missing one precision's Server run measures that run again, not all three."""
    missing = [results_set.Gap("offline", "the inference sweep"),
               results_set.Gap("offline", "LoadGen Offline at the official minimum: int8", ("int8",)),
               results_set.Gap("server", "LoadGen Server at the official minimum: int8, bfloat16",
                               ("int8", "bfloat16")),
               results_set.Gap("stream", "LoadGen SingleStream at the official minimum: float32, bfloat16, int8",
                               ("float32", "bfloat16", "int8"))]
    assert results_set.parts_to_measure(missing) == [("offline", ()), ("server", ("bfloat16", "int8")),
                                                      ("stream", ())]


def test_lacking_prints_each_part_with_the_precisions_it_lacks(tmp_path):
    write_system(tmp_path)
    for scenario in ("Offline", "SingleStream", "Server"):
        for precision in ("float32", "bfloat16", "int8"):
            if (scenario, precision) != ("Server", "int8"):
                make_inference_result(tmp_path, scenario=scenario, precision=precision)
    lines = _check_output(tmp_path, "--lacking", SYSTEM).splitlines()
    assert lines == ["training", "offline", "server int8", "score"]


def test_the_angle_part_refuses_in_one_line_before_the_angle_reference_ships(tmp_path):
    """scripts/measure-results-set.sh angle measures the shipped angle reference; in a tree
    without one it stops before pausing anything."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "measure-results-set.sh"
    (tmp_path / "scripts").mkdir()
    shutil.copy(script, tmp_path / "scripts")
    done = subprocess.run(["bash", str(tmp_path / "scripts" / script.name), "angle", "999999999"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "angle: the 3dgan-angle reference has not shipped yet (harness reference queue ships it after its "
        "second seed)"]
