"""Records name files the same way on every machine: inside the suite, from its root."""
from benchmark.provenance import SUITE_ROOT, suite_relative


def test_a_path_inside_the_suite_is_recorded_from_its_root():
    assert suite_relative(SUITE_ROOT / "results" / "score" / "box.json") == "results/score/box.json"


def test_a_path_outside_the_suite_stays_absolute(tmp_path):
    assert suite_relative(tmp_path / "ref.json") == str((tmp_path / "ref.json").resolve())
