"""Each precision produces showers from the same checkpoint; the physics gate decides if it counts."""
import numpy as np
import pytest

from benchmark import precision as prec
from benchmark import quality
from reference_model import data, transforms
from reference_model.errors import InputError
from reference_model.specs import get_spec

SPEC = get_spec("3dgan")
ENERGIES = np.array([20.0, 100.0, 250.0, 480.0], dtype=np.float32)


def test_precisions_parse_and_refuse_unknown_ones():
    assert prec.parse_precisions(None) == ["float32", "bfloat16", "int8"]
    assert prec.parse_precisions("int8, float32,int8") == ["int8", "float32"]
    with pytest.raises(InputError, match="fp16"):
        prec.parse_precisions("float32,fp16")


@pytest.fixture(scope="module")
def float32_showers(untrained_checkpoint):
    runner = prec.load_runner("float32", untrained_checkpoint, SPEC)
    return prec.generate(runner, ENERGIES, None, seed=3, batch_size=2)


def _check_showers(showers):
    assert showers.ecal_gev.shape == (len(ENERGIES), 25, 25, 25)
    assert showers.ecal_gev.dtype == np.float32
    assert np.isfinite(showers.ecal_gev).all() and (showers.ecal_gev >= 0).all()
    np.testing.assert_array_equal(showers.energy_gev, ENERGIES)


def test_bfloat16_runs_the_same_weights_in_bf16(untrained_checkpoint, float32_showers):
    runner = prec.load_runner("bfloat16", untrained_checkpoint, SPEC)
    assert runner.runtime == prec.RUNTIMES["bfloat16"]
    assert runner.generator.get_layer("conv2").compute_dtype == "bfloat16"
    showers = prec.generate(runner, ENERGIES, None, seed=3, batch_size=2)
    _check_showers(showers)
    totals, reference = showers.ecal_gev.sum(axis=(1, 2, 3)), float32_showers.ecal_gev.sum(axis=(1, 2, 3))
    assert not np.array_equal(showers.ecal_gev, float32_showers.ecal_gev)  # really ran in bf16
    np.testing.assert_allclose(totals, reference, rtol=0.05)  # ... of the same model


def test_int8_quantises_the_checkpoint_with_openvino(untrained_checkpoint, float32_showers, tmp_path):
    model = prec.prepare("int8", untrained_checkpoint, tmp_path, seed=0, calibration_showers=128)
    assert model.name == prec.INT8_MODEL_NAME and model.with_suffix(".bin").is_file()
    runner = prec.load_runner("int8", model, SPEC, intra_op=1)
    assert runner.precision == "int8" and "openvino" in runner.runtime
    showers = prec.generate(runner, ENERGIES, None, seed=3, batch_size=2)
    _check_showers(showers)
    reference = float32_showers.ecal_gev.sum(axis=(1, 2, 3))
    np.testing.assert_allclose(showers.ecal_gev.sum(axis=(1, 2, 3)), reference, rtol=0.25)


@pytest.fixture(scope="module")
def gate_inputs(fixed_data_dir):
    thresholds = quality.load_thresholds("3dgan", smoke=True)
    _, held_out = data.split_files(data.list_files(fixed_data_dir), 0.9)
    return data.load_showers(held_out, max_events=thresholds.evaluation_events), thresholds


def test_a_precision_whose_showers_fail_the_gate_is_failed(untrained_checkpoint, gate_inputs):
    reference, thresholds = gate_inputs
    verdict = prec.gate(prec.load_runner("bfloat16", untrained_checkpoint, SPEC), reference, thresholds)
    assert verdict.passed is False and verdict.precision == "bfloat16"
    assert "fail" in verdict.summary and verdict.report["failed"]
    assert verdict.to_dict()["passed"] is False


class ReplayRunner:
    """Returns the reference's own showers in generator units: a stand-in that must pass."""

    precision, runtime, spec = "float32", "replay", SPEC

    def __init__(self, showers):
        self.images = transforms.fixed_images_from_gev(showers.ecal_gev)[..., None]
        self.cursor = 0

    def __call__(self, latent):
        out = self.images[self.cursor:self.cursor + len(latent)]
        self.cursor += len(latent)
        return out


def test_showers_that_match_the_reference_pass_the_gate(gate_inputs):
    reference, thresholds = gate_inputs
    compared = quality.select_evaluation_showers(reference, thresholds)
    verdict = prec.gate(ReplayRunner(compared), reference, thresholds)
    assert verdict.passed is True, verdict.summary


def test_harness_reports_a_failing_precision_as_failed_never_as_fast(
        untrained_checkpoint, fixed_data_dir, tmp_path, capsys):
    import json

    from harness.cli import build_parser

    args = build_parser().parse_args(
        ["run", "--mode", "inference", "--smoke", "--precision", "bfloat16", "--streams", "1",
         "--batch", "4", "--duration", "0.5", "--roofline-size", "256", "--scenarios", "Offline",
         "--checkpoint", str(untrained_checkpoint), "--data", str(fixed_data_dir),
         "--results", str(tmp_path), "--system-name", "testbox"])
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert "quality gate FAILED" in out and "LoadGen skipped for bfloat16" in out
    assert "showers/s (" not in out  # no throughput headline
    (row,) = json.loads((tmp_path / "results/testbox/3dgan/sweeps/sweep_1.json").read_text())["rows"]
    assert row["status"] == "FAILED" and "quality gate FAILED" in row["reason"]
    assert row["showers_per_second"] is None and row["ms_per_shower"] is None and row["mfu"] is None
    assert not (tmp_path / "results/testbox/3dgan/Offline").exists()
