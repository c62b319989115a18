"""How the frozen generator runs in each precision, and the physics gate each must pass.

* float32  - TensorFlow, the Keras model traced once into a tf.function (oneDNN kernels).
* bfloat16 - TensorFlow with the Keras `mixed_bfloat16` policy: the float32 checkpoint's
             weights are cast at run time and the convolutions run as oneDNN bf16 kernels
             (AVX-512 BF16, or AMX where the CPU has it); batch norm statistics and the output
             layer stay float32. Measured the fastest of the bf16 options tried (see
             `benchmark/inference.py`).
* int8     - OpenVINO with NNCF post-training static quantisation: the same Keras model is
             converted in memory (no ONNX hop), NNCF calibrates activation ranges on generator
             inputs drawn from the data's energy (and angle) range, and the OpenVINO CPU plugin
             runs the quantised convolutions as oneDNN int8 (VNNI) kernels. Why this runtime:
             it is maintained by Intel for exactly this (x86 int8 inference), it converts
             TensorFlow graphs directly and supports 3-D convolutions in int8; TFLite's int8
             kernels have no CONV_3D, and tf2onnx lags Keras 3.

Every precision runs the same checkpoint (same weights, same architecture fingerprint).
A precision's speed is worth nothing unless its showers pass the physics gate:
`gate()` generates the gate's showers with the precision's own runner and judges them with
`benchmark.quality.evaluate` against reference data.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol

import numpy as np

from reference_model.errors import InputError
from reference_model.showers import FIXED, Showers
from reference_model.specs import ModelSpec

FLOAT32, BFLOAT16, INT8 = "float32", "bfloat16", "int8"
PRECISIONS = (FLOAT32, BFLOAT16, INT8)
RUNTIMES = {FLOAT32: "tensorflow-onednn", BFLOAT16: "tensorflow-onednn-mixed_bfloat16",
            INT8: "openvino-nncf-int8"}
CALIBRATION_SHOWERS = 512  # generator inputs NNCF calibrates activation ranges on
CALIBRATION_ENERGY_GEV = {"fixed": (10.0, 500.0), "angle": (2.0, 500.0)}  # the data sets' ranges
CALIBRATION_THETA_DEG = (60.0, 120.0)
INT8_MODEL_NAME = "generator-int8.xml"


def parse_precisions(text: Optional[str]) -> list[str]:
    """`float32,bfloat16` -> ["float32", "bfloat16"]; None -> all three."""
    if text is None:
        return list(PRECISIONS)
    names = [p.strip() for p in str(text).split(",") if p.strip()]
    unknown = [p for p in names if p not in PRECISIONS]
    if unknown or not names:
        raise InputError(f"--precision {text!r}: unknown {', '.join(unknown) or 'empty list'}; "
                         f"give a comma-separated list of {', '.join(PRECISIONS)}")
    return list(dict.fromkeys(names))


def configure_threads(intra_op: int = 0, inter_op: int = 0) -> tuple[int, int]:
    """Thread pools for this process, set before TensorFlow executes its first op; returns the
    pools in force (0: TensorFlow's default, all the cores the process may run on).

    If TensorFlow is already running (a test process) its pools cannot change; the ones in
    force are returned so that what is recorded is what ran."""
    if intra_op:
        os.environ["OMP_NUM_THREADS"] = str(intra_op)
    import tensorflow as tf

    threading = tf.config.threading
    try:
        if intra_op:
            threading.set_intra_op_parallelism_threads(intra_op)
        if inter_op:
            threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:  # "cannot be modified after initialization"
        pass
    return threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()


class GeneratorRunner(Protocol):
    """Conditioned latents (B, latent) float32 -> generator images (B, X, Y, Z[, 1]) in model units."""

    precision: str
    runtime: str
    spec: ModelSpec

    def __call__(self, latent: np.ndarray) -> np.ndarray: ...


class TensorFlowRunner:
    """The Keras generator traced into one graph; float32 or mixed_bfloat16."""

    def __init__(self, checkpoint: Path, precision: str) -> None:
        import keras
        import tensorflow as tf

        from reference_model.checkpoint import load_generator

        policy = "mixed_bfloat16" if precision == BFLOAT16 else "float32"
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(policy)  # layers take the policy when built
        try:
            self.spec, self.generator = load_generator(checkpoint)
        finally:
            keras.mixed_precision.set_global_policy(previous)
        self.precision, self.runtime = precision, RUNTIMES[precision]
        signature = [tf.TensorSpec((None, self.spec.latent_size), tf.float32)]
        self._forward = tf.function(lambda x: self.generator(x, training=False),
                                    input_signature=signature)

    def __call__(self, latent: np.ndarray) -> np.ndarray:
        return self._forward(latent).numpy()


class OpenVINORunner:
    """A quantised OpenVINO model compiled for this process's cores."""

    def __init__(self, model_xml: Path, spec: ModelSpec, threads: int = 0) -> None:
        import openvino as ov

        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                                  "INFERENCE_PRECISION_HINT": "f32"}  # non-quantised ops stay f32
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        core = ov.Core()
        self._compiled = core.compile_model(core.read_model(str(model_xml)), "CPU", config)
        self._request = self._compiled.create_infer_request()
        self.spec, self.precision, self.runtime = spec, INT8, RUNTIMES[INT8]

    def __call__(self, latent: np.ndarray) -> np.ndarray:
        return np.array(self._request.infer({0: latent})[0], copy=True)


def calibration_latents(spec: ModelSpec, count: int, seed: int) -> np.ndarray:
    """Generator inputs spread over the data's energy (and angle) range."""
    rng = np.random.default_rng(seed)
    energy = rng.uniform(*CALIBRATION_ENERGY_GEV[spec.geometry], count)
    theta = None if spec.geometry == FIXED else np.radians(rng.uniform(*CALIBRATION_THETA_DEG, count))
    return spec.generator_input(energy, theta, rng)


def quantise_int8(checkpoint: Path, workdir: Path, seed: int = 0,
                  calibration_showers: int = CALIBRATION_SHOWERS) -> Path:
    """Convert the checkpoint's generator to OpenVINO and quantise it with NNCF; returns the IR."""
    import nncf
    import openvino as ov

    from reference_model.checkpoint import load_generator

    spec, generator = load_generator(checkpoint)
    with warnings.catch_warnings():  # Keras warns that the traced input is a tuple, harmlessly
        warnings.simplefilter("ignore", UserWarning)
        model = ov.convert_model(generator, input=[(-1, spec.latent_size)])
    latents = calibration_latents(spec, calibration_showers, seed)
    batches = [latents[i:i + 64] for i in range(0, len(latents), 64)]
    quantised = nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches))
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / INT8_MODEL_NAME
    partial = workdir / f".partial-{os.getpid()}-{INT8_MODEL_NAME}"
    ov.save_model(quantised, str(partial), compress_to_fp16=False)  # keep float weights exact
    os.replace(partial.with_suffix(".bin"), target.with_suffix(".bin"))
    os.replace(partial, target)
    return target


def prepare(precision: str, checkpoint: Path, workdir: Path, seed: int = 0,
            calibration_showers: int = CALIBRATION_SHOWERS) -> Path:
    """What a stream process loads for `precision`: the checkpoint, or the int8 IR made from it."""
    if precision == INT8:
        return quantise_int8(checkpoint, workdir, seed, calibration_showers)
    if precision in (FLOAT32, BFLOAT16):
        return Path(checkpoint)
    raise InputError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")


def load_runner(precision: str, artifact: Path, spec: ModelSpec, intra_op: int = 0) -> GeneratorRunner:
    """The runner for `precision` over an artifact from `prepare` (threads configured first)."""
    if precision == INT8:
        return OpenVINORunner(artifact, spec, threads=intra_op)
    runner = TensorFlowRunner(artifact, precision)
    if runner.spec.benchmark != spec.benchmark:
        raise InputError(f"{artifact}: a {runner.spec.benchmark} checkpoint, but the run is for "
                         f"{spec.benchmark}; pass a matching --checkpoint")
    return runner


def generate(runner: GeneratorRunner, energy_gev: np.ndarray, theta_rad: Optional[np.ndarray],
             seed: int = 0, batch_size: int = 128) -> Showers:
    """Showers in GeV from the runner, conditioned on the given energies (and angles)."""
    spec = runner.spec
    rng = np.random.default_rng(seed)
    latent = spec.generator_input(np.asarray(energy_gev, np.float32), theta_rad, rng)
    ecal = np.empty((len(latent), *spec.image_shape), dtype=np.float32)
    for start in range(0, len(latent), batch_size):
        ecal[start:start + batch_size] = spec.images_to_gev(runner(latent[start:start + batch_size]))
    theta = None if theta_rad is None else np.asarray(theta_rad, np.float32)
    return Showers(ecal, np.asarray(energy_gev, np.float32), theta)


@dataclass
class GateResult:
    """The physics verdict on one precision's showers."""

    precision: str
    runtime: str
    passed: bool
    summary: str  # "all N checks pass" or the failing metrics
    report: dict = field(default_factory=dict)  # QualityReport.to_dict()

    def to_dict(self) -> dict:
        return {"precision": self.precision, "runtime": self.runtime, "passed": self.passed,
                "summary": self.summary, **self.report}


def gate(runner: GeneratorRunner, reference: Showers, thresholds, seed: int = 0,
         batch_size: int = 128) -> GateResult:
    """Generate the gate's showers at the runner's precision and judge them against `reference`."""
    from benchmark import quality

    compared = quality.select_evaluation_showers(reference, thresholds, "reference")
    candidate = generate(runner, compared.energy_gev, compared.theta_rad, seed=seed,
                         batch_size=batch_size)
    candidate = Showers(candidate.ecal_gev, compared.energy_gev, compared.theta_rad)
    report = quality.evaluate(compared, candidate, thresholds)
    return GateResult(precision=runner.precision, runtime=runner.runtime, passed=bool(report.passed),
                      summary=report.failed_summary(), report=report.to_dict())
