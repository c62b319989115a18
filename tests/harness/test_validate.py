"""`harness validate` end to end: stand-in data against stand-in data passes (exit 0) with plots
and a report, scaled showers and an untrained generator checkpoint fail (exit 1), bad input is
one line on stderr (exit 2)."""
import json

import h5py
import numpy as np
import pytest

from benchmark import calibration, quality
from harness.cli import main
from reference_model.showers import Showers


def _write_fixed(directory, showers: Showers, factor: float = 1.0, per_file: int = 400):
    """Showers as fixed-layout EleEscan files (ECAL in GeV, energy in target[:, 1])."""
    directory.mkdir(parents=True)
    for i, start in enumerate(range(0, len(showers), per_file)):
        part = showers.subset(slice(start, start + per_file))
        with h5py.File(directory / f"EleEscan_1_{i:03d}.h5", "w") as h5:
            h5["ECAL"] = part.ecal_gev * np.float32(factor)
            h5["target"] = np.stack([np.full(len(part), 11.0), part.energy_gev], axis=1).astype(np.float32)
    return directory


@pytest.fixture(scope="module")
def fixed_sets(tmp_path_factory):
    """Reference, held-out and x1.3 sets with exactly the showers the 3dgan gate compares (the
    reference campaign's target, v2, lets a 10% energy-scale error through; 1.3 fails every version)."""
    thresholds = quality.load_thresholds("3dgan")
    root = tmp_path_factory.mktemp("validate")
    reference = calibration.standin_sample(thresholds, 21)
    held_out = calibration.standin_sample(thresholds, 22)
    shuffle = np.random.default_rng(0).permutation(len(held_out))  # order must not matter
    return {"reference": _write_fixed(root / "reference", reference),
            "held_out": _write_fixed(root / "held_out", held_out.subset(shuffle)),
            "scaled": _write_fixed(root / "scaled", held_out, factor=1.3),
            "root": root}


def test_help_describes_the_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--reference", "--candidate", "--report", "--json", "--smoke", "--target"):
        assert flag in out


def test_held_out_showers_pass_with_plots_and_report(fixed_sets, tmp_path, capsys):
    report_dir = tmp_path / "report"
    code = main(["validate", "--reference", str(fixed_sets["reference"]),
                 "--candidate", str(fixed_sets["held_out"]), "--report", str(report_dir)])
    out = capsys.readouterr().out
    assert code == 0, out
    target = quality.load_thresholds("3dgan")
    assert f"PASS: all {len(target.limits)} checks pass" in out and target.version in out
    assert "objective.sampling_fraction" in out and "separation.hits.E45-55" in out
    for png in ("sampling_fraction", "longitudinal_profiles", "transverse_profiles", "moments", "hits"):
        assert (report_dir / f"{png}.png").stat().st_size > 5000
        assert f"]({png}.png)" in (report_dir / "report.md").read_text()
    assert json.loads((report_dir / "quality.json").read_text())["passed"] is True
    assert not list(report_dir.glob(".*"))  # no temporary files left behind


def test_scaled_showers_fail_as_json(fixed_sets, capsys):
    code = main(["validate", "--reference", str(fixed_sets["reference"]),
                 "--candidate", str(fixed_sets["scaled"]), "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 1
    assert payload["passed"] is False and payload["submittable"] is True
    assert payload["metrics"]["objective.sampling_fraction"]["passed"] is False


def test_a_failing_table_says_what_differs(fixed_sets, tmp_path, capsys):
    report_dir = tmp_path / "report"
    code = main(["validate", "--reference", str(fixed_sets["reference"]),
                 "--candidate", str(fixed_sets["scaled"]), "--report", str(report_dir)])
    out = capsys.readouterr().out
    assert code == 1
    line = next(x for x in out.splitlines() if x.strip().startswith("separation.sampling_fraction.E45-55:"))
    assert "spread 1.30x the reference's" in line  # every shower x1.3: the spread scales with it
    markdown = (report_dir / "report.md").read_text()
    assert "## What differs where a separation power fails" in markdown
    assert "| separation.sampling_fraction.E45-55 |" in markdown


def test_untrained_generator_checkpoint_fails(fixed_sets, tmp_path, capsys):
    from reference_model.checkpoint import save_generator
    from reference_model.specs import get_spec

    spec = get_spec("3dgan")
    checkpoint = save_generator(tmp_path / "untrained-generator.weights.h5", spec.build_generator(), spec)
    code = main(["validate", "--reference", str(fixed_sets["reference"]), "--candidate", str(checkpoint)])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL:" in out


def test_smoke_target_is_labelled_not_submittable(fixed_data_dir, capsys):
    code = main(["validate", "--reference", str(fixed_data_dir), "--candidate", str(fixed_data_dir), "--smoke"])
    out = capsys.readouterr().out
    assert code == 0
    assert "SMOKE TARGET, not submittable" in out and "3dgan-smoke-v1" in out


def test_too_little_reference_data_is_a_one_line_error(fixed_data_dir, capsys):
    code = main(["validate", "--reference", str(fixed_data_dir), "--candidate", str(fixed_data_dir)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "--reference" in err and "per energy bin" in err


def test_missing_candidate_is_a_one_line_error(fixed_sets, capsys):
    code = main(["validate", "--reference", str(fixed_sets["reference"]),
                 "--candidate", str(fixed_sets["root"] / "nothing-here")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no such file or directory" in err and len(err.splitlines()) == 1


def test_geometry_mismatch_is_an_input_error(fixed_sets, angle_data_dir, capsys):
    code = main(["validate", "--reference", str(angle_data_dir), "--candidate", str(fixed_sets["reference"]),
                 "--benchmark", "3dgan"])
    err = capsys.readouterr().err
    assert code == 2 and "angle-geometry data" in err


def test_target_names_a_registered_version(fixed_sets, capsys):
    code = main(["validate", "--reference", str(fixed_sets["reference"]), "--candidate",
                 str(fixed_sets["held_out"]), "--target", "3dgan-quality-v1"])
    assert code == 0 and "3dgan-quality-v1" in capsys.readouterr().out
    code = main(["validate", "--reference", str(fixed_sets["reference"]), "--candidate",
                 str(fixed_sets["held_out"]), "--target", "3dgan-quality-v0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "--target 3dgan-quality-v0: not a registered 3dgan quality version" in err


def test_target_and_smoke_exclude_each_other(fixed_sets, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "--reference", str(fixed_sets["reference"]), "--candidate",
              str(fixed_sets["held_out"]), "--target", "3dgan-quality-v1", "--smoke"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_a_changed_target_file_is_not_submittable(fixed_sets, tmp_path, monkeypatch, capsys):
    """The target's file edited in place (same version name, another hash): the verdict says it is
    not the registered file instead of "submittable", as `harness check` refuses such a result."""
    import shutil

    directory = tmp_path / "thresholds"
    shutil.copytree(quality.THRESHOLDS_DIR, directory)
    monkeypatch.setattr(quality, "THRESHOLDS_DIR", directory)
    target = quality.thresholds_path("3dgan")
    document = json.loads(target.read_text())
    document["description"] = document.get("description", "") + " (edited)"
    target.write_text(json.dumps(document))
    code = main(["validate", "--reference", str(fixed_sets["reference"]),
                 "--candidate", str(fixed_sets["held_out"]), "--json"])
    captured = capsys.readouterr()
    assert code == 0 and json.loads(captured.out)["submittable"] is False
    assert f"not submittable: quality_thresholds '{document['version']}+sha256." in captured.err
    assert "is registered with sha256" in captured.err
