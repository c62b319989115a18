"""How the frozen generator runs in each precision, and the physics gate each must pass.

* float32  - TensorFlow, the Keras model traced once and frozen into a graph (oneDNN kernels).
* bfloat16 - TensorFlow with the Keras `mixed_bfloat16` policy: the float32 checkpoint's
             weights are cast at run time and the convolutions run as oneDNN bf16 kernels
             (AVX-512 BF16, or AMX where the CPU has it); batch norm statistics and the output
             layer stay float32. Before it runs, every bf16 layer is checked against float32 on
             this CPU (`reference_model.numerics`; oneDNN's AMX kernel for conv1 is wrong: the
             fixed rewrite folds conv1 into the dense layer, the angle rewrite runs conv1's phase
             convolution in float32, as the frozen conv1 runs).
* int8     - OpenVINO with NNCF post-training static quantisation: the same Keras model is
             converted in memory (no ONNX hop), NNCF calibrates activation ranges on generator
             inputs drawn from the data's energy (and angle) range, and the OpenVINO CPU plugin
             runs the quantised convolutions as oneDNN int8 (VNNI/AMX) kernels. Every
             convolution runs in two int8 stages (its input and its weights each plus their
             int8 rounding residual; `benchmark.residual_quantisation`): one stage fails the
             paired gate by 2.8x in shower energy. Why this runtime:
             it is maintained by Intel for exactly this (x86 int8 inference), it converts
             TensorFlow graphs directly and supports 3-D convolutions in int8; TFLite's int8
             kernels have no CONV_3D, and tf2onnx lags Keras 3.

Every precision runs the same checkpoint (same weights, same architecture fingerprint). For
both generators all three run the polyphase rewrite of `benchmark.inference_graph` (the same
showers as the frozen graph, to float32 rounding; its provenance records the frozen
fingerprint and checkpoint hash it derives from).

Two physics checks, reported apart (issue 11 section 4):
(a) `gate()` - the checkpoint in float32 against reference data under the benchmark's target:
    does the checkpoint itself reach the target?
(b) `paired_gate()` - a lower precision against float32 from the same latents and conditions,
    under the same noise-floor limits: MLPerf Inference's "keep float32's accuracy" rule,
    free of the data's sampling noise.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol

import numpy as np

from benchmark.inference_graph import PROVENANCE_KEYS
from benchmark.vocabulary import BFLOAT16, FLOAT32, INT8, MIXED_BFLOAT16
from benchmark.vocabulary import INFERENCE_PRECISIONS as PRECISIONS
from reference_model import numerics
from reference_model.errors import InputError
from reference_model.generation import generate_showers
from reference_model.showers import FIXED, Showers
from reference_model.specs import ModelSpec

RUNTIMES = {FLOAT32: "tensorflow-onednn", BFLOAT16: "tensorflow-onednn-mixed_bfloat16",
            INT8: "openvino-nncf-int8-two-stage"}
REWRITTEN = "+polyphase"  # runtime suffix when the inference rewrite (benchmark.inference_graph) runs
LOW_PRECISION_KERNELS = ("i8", "u8")  # OpenVINO runtime precisions of a quantised convolution
CALIBRATION_SHOWERS = 512  # generator inputs NNCF calibrates activation ranges on
CALIBRATION_ENERGY_GEV = {"fixed": (10.0, 500.0), "angle": (2.0, 500.0)}  # the data sets' ranges
CALIBRATION_THETA_DEG = (60.0, 120.0)
INT8_MODEL_NAME = "generator-int8.xml"
FROZEN_CHECK_BATCH = 8  # latents the frozen graph is checked on against the traced one
FROZEN_TOLERANCE = 1e-3  # of the image's largest cell: rounding passes, a wrong kernel does not
KERNEL_CHECK_BATCH = 128  # the batch the bf16 kernels are checked at (the sweep's default batch)
OUTPUT_CROP = "output_crop"  # IR rt_info: the image crop the runner applies (see detach_output_crop)


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
    pools in force (0: TensorFlow's default, all the cores the process may run on). The one
    thread setup of every TensorFlow process: a training rank, an inference stream, the harness.

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


def inference_generator(checkpoint: Path, rewrite: bool = True) -> tuple[ModelSpec, Any, dict]:
    """The checkpoint's generator as inference runs it, under the current Keras dtype policy:
    the polyphase rewrite (both generators have one), or the frozen graph with `rewrite=False`;
    plus its provenance (the frozen fingerprint and weights it derives from)."""
    from benchmark import inference_graph
    from reference_model.checkpoint import load_generator, read_card

    spec, frozen = load_generator(checkpoint)
    if not rewrite:
        return spec, frozen, {"rewrite": None}
    model = inference_graph.rewrite_generator(frozen)
    return spec, model, inference_graph.provenance(frozen, read_card(checkpoint).get("sha256"))


class TensorFlowRunner:
    """The Keras generator traced into one frozen graph; float32 or mixed_bfloat16."""

    def __init__(self, checkpoint: Path, precision: str, rewrite: bool = True,
                 check_kernels: bool = True) -> None:
        import keras

        policy = MIXED_BFLOAT16 if precision == BFLOAT16 else FLOAT32
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(policy)  # layers take the policy when built
        try:
            self.spec, self.generator, self.provenance = inference_generator(checkpoint, rewrite)
        finally:
            keras.mixed_precision.set_global_policy(previous)
        if precision == BFLOAT16 and check_kernels:
            numerics.require_correct_kernels([self.generator], KERNEL_CHECK_BATCH, gradients=False)
        self.precision = precision
        self.runtime = RUNTIMES[precision] + (REWRITTEN if self.provenance["rewrite"] else "")
        self._forward, self.frozen = frozen_forward(self.generator, self.spec.latent_size)

    def __call__(self, latent: np.ndarray) -> np.ndarray:
        return self._forward(latent).numpy()


def frozen_forward(model, latent_size: int) -> tuple[Any, bool]:
    """The model traced once and frozen: its variables become graph constants, so grappler folds
    the bf16 casts and oneDNN keeps its reordered weights between calls instead of redoing both
    on every batch (15% of a bf16 batch here; the same outputs, bit for bit).

    Freezing is checked against the traced graph on a probe batch: TF 2.21 computes a frozen
    conv -> leaky ReLU wrongly when the conv's bias is all zeros (an untrained generator's;
    docs/numerics.md). Where the two differ, the traced graph runs, and a line says so.
    Returns the forward function and whether it is the frozen graph."""
    import sys

    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    signature = [tf.TensorSpec((None, latent_size), tf.float32)]
    traced = tf.function(lambda x: model(x, training=False), input_signature=signature)
    frozen = convert_variables_to_constants_v2(traced.get_concrete_function())
    probe = tf.constant(np.random.default_rng(0).normal(size=(FROZEN_CHECK_BATCH, latent_size)),
                        tf.float32)
    expected, got = traced(probe).numpy(), frozen(probe)[0].numpy()
    if np.abs(got - expected).max() <= FROZEN_TOLERANCE * max(np.abs(expected).max(), 1e-30):
        return (lambda latent: frozen(tf.convert_to_tensor(latent))[0]), True
    print(f"[precision] {model.name}: the frozen graph differs from the traced one on this "
          "TensorFlow (it computes conv -> leaky ReLU wrongly when the conv's biases are all zero; "
          "docs/numerics.md); running the traced graph", file=sys.stderr, flush=True)
    return traced, False


class OpenVINORunner:
    """A quantised OpenVINO model compiled for this process's cores."""

    def __init__(self, model_xml: Path, spec: ModelSpec, threads: int = 0) -> None:
        import openvino as ov

        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                                  "INFERENCE_PRECISION_HINT": "f32"}  # non-quantised ops stay f32
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        core = ov.Core()
        model = core.read_model(str(model_xml))
        self._compiled = core.compile_model(model, "CPU", config)
        self._request = self._compiled.create_infer_request()
        self.spec, self.precision = spec, INT8
        self.provenance = {key: model.get_rt_info(["provenance", key]).astype(str)
                           for key in PROVENANCE_KEYS if model.has_rt_info(["provenance", key])}
        self.runtime = RUNTIMES[INT8] + (REWRITTEN if self.provenance.get("rewrite") else "")
        crop = (model.get_rt_info([OUTPUT_CROP]).astype(str).split(",")
                if model.has_rt_info([OUTPUT_CROP]) else [])
        self._crop = (slice(None), *(slice(*map(int, bounds.split(":"))) for bounds in crop))
        unquantised = float_convolutions(self._compiled)
        if unquantised:
            raise InputError(f"{model_xml}: convolutions {', '.join(unquantised)} run in floating "
                             "point; re-quantise the checkpoint (every convolution must be int8)")

    def __call__(self, latent: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self._request.infer({0: latent})[0][self._crop])


def detach_output_crop(model) -> Optional[str]:
    """Take the final crop off an OpenVINO model and return it as "start:stop,..." (spatial axes).

    OpenVINO's CPU plugin runs the crop at the end of the generator as a reference StridedSlice
    plus a copy, about a quarter of the int8 model's time; NumPy crops the returned image in a
    fraction of that (docs/inference-performance.md). The runner applies the crop, so it still
    returns exactly the frozen generator's image."""
    result = model.get_results()[0]
    node = result.input_value(0).get_node()
    if node.get_type_name() != "StridedSlice":
        return None
    begin, end = (node.input_value(i).get_node().get_data() for i in (1, 2))
    strides = node.input_value(3).get_node().get_data()
    attrs = node.get_attributes()
    spatial = range(1, len(begin) - 1)
    masked = any(attrs[m][i] for m in ("begin_mask", "end_mask") for i in spatial)
    reshaping = any(any(attrs[m]) for m in ("new_axis_mask", "shrink_axis_mask", "ellipsis_mask"))
    if any(int(v) != 1 for v in strides) or masked or reshaping:
        return None  # not a plain crop of the spatial axes: leave it in the graph
    result.input(0).replace_source_output(node.input_value(0))
    model.validate_nodes_and_infer_types()
    return ",".join(f"{int(begin[i])}:{int(end[i])}" for i in spatial)


def float_convolutions(compiled) -> list[str]:
    """Convolutions the compiled OpenVINO model runs in floating point (none, when quantised)."""
    found = []
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if str(info["layerType"].astype(str)) == "Convolution":
            precision = str(info["runtimePrecision"].astype(str)).lower()
            if not precision.startswith(LOW_PRECISION_KERNELS):
                found.append(op.get_friendly_name())
    return found


def calibration_latents(spec: ModelSpec, count: int, seed: int) -> np.ndarray:
    """Generator inputs spread over the data's energy (and angle) range."""
    rng = np.random.default_rng(seed)
    energy = rng.uniform(*CALIBRATION_ENERGY_GEV[spec.geometry], count)
    theta = None if spec.geometry == FIXED else np.radians(rng.uniform(*CALIBRATION_THETA_DEG, count))
    return spec.generator_input(energy, theta, rng)


def quantise_int8(checkpoint: Path, workdir: Path, seed: int = 0,
                  calibration_showers: int = CALIBRATION_SHOWERS) -> Path:
    """Convert the checkpoint's generator to OpenVINO and quantise it with NNCF, every
    convolution's input and weights in two int8 stages (`benchmark.residual_quantisation`);
    returns the IR."""
    import nncf
    import openvino as ov

    from benchmark import residual_quantisation

    spec, generator, provenance = inference_generator(checkpoint)
    with warnings.catch_warnings():  # Keras warns that the traced input is a tuple, harmlessly
        warnings.simplefilter("ignore", UserWarning)
        model = ov.convert_model(generator, input=[(-1, spec.latent_size)])
    latents = calibration_latents(spec, calibration_showers, seed)
    batches = [latents[i:i + 64] for i in range(0, len(latents), 64)]
    quantised = nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches))
    names = residual_quantisation.convolutions(model)
    residual_quantisation.add_residual_stages(quantised, model, activations=names, weights=names)
    crop = detach_output_crop(quantised)
    if crop is not None:
        quantised.set_rt_info(crop, [OUTPUT_CROP])
    for key, value in provenance.items():
        quantised.set_rt_info("" if value is None else str(value), ["provenance", key])
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / INT8_MODEL_NAME
    partial = workdir / f".partial-{os.getpid()}-{INT8_MODEL_NAME}"
    ov.save_model(quantised, str(partial), compress_to_fp16=False)  # keep float weights exact
    os.replace(partial.with_suffix(".bin"), target.with_suffix(".bin"))
    os.replace(partial, target)
    return target


def _int8_key(checkpoint: Path, seed: int, calibration_showers: int) -> str:
    """What an int8 IR is made from: the weights, the calibration, and the code and versions that
    quantise them; a change to any of them makes a new IR instead of reusing an old one."""
    import hashlib

    import nncf
    import openvino

    from benchmark import inference_graph, residual_quantisation
    from reference_model.checkpoint import sha256_of

    digest = hashlib.sha256(f"{sha256_of(checkpoint)} {seed} {calibration_showers} "
                            f"{openvino.__version__} {nncf.__version__}".encode())
    for module in (inference_graph, residual_quantisation):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def int8_model(checkpoint: Path, workdir: Path, seed: int = 0,
               calibration_showers: int = CALIBRATION_SHOWERS) -> Path:
    """The int8 IR of the checkpoint, quantised once per `workdir` (`int8-<key>/`, see `_int8_key`):
    concurrent runs sharing a results root wait for the one quantising it, later ones reuse it."""
    from reference_model.shared_lock import make_once

    directory = Path(workdir) / f"int8-{_int8_key(checkpoint, seed, calibration_showers)}"
    model = directory / INT8_MODEL_NAME
    make_once(directory, model.is_file, lambda: quantise_int8(checkpoint, directory, seed, calibration_showers),
              action="quantising")
    return model


def prepare(precision: str, checkpoint: Path, workdir: Path, seed: int = 0,
            calibration_showers: int = CALIBRATION_SHOWERS) -> Path:
    """What a stream process loads for `precision`: the checkpoint, or the int8 IR made from it."""
    if precision == INT8:
        return int8_model(checkpoint, workdir, seed, calibration_showers)
    if precision in (FLOAT32, BFLOAT16):
        return Path(checkpoint)
    raise InputError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")


def load_runner(precision: str, artifact: Path, spec: ModelSpec, intra_op: int = 0,
                check_kernels: bool = True) -> GeneratorRunner:
    """The runner for `precision` over an artifact from `prepare` (threads configured first).
    `check_kernels=False` only where this node's bf16 kernels were already checked."""
    if precision == INT8:
        return OpenVINORunner(artifact, spec, threads=intra_op)
    runner = TensorFlowRunner(artifact, precision, check_kernels=check_kernels)
    if runner.spec.benchmark != spec.benchmark:
        raise InputError(f"{artifact}: a {runner.spec.benchmark} checkpoint, but the run is for "
                         f"{spec.benchmark}; pass a matching --checkpoint")
    return runner


TARGET_CHECK = "checkpoint_target"  # (a): float32 showers against reference data, the benchmark target
PAIRED_CHECK = "precision_gate"  # (b): a precision's showers against float32's from the same inputs


@dataclass
class GateResult:
    """The physics verdict on one precision's showers; `check` says which comparison it was."""

    precision: str
    runtime: str
    passed: bool
    summary: str  # "all N checks pass" or the failing metrics
    report: dict = field(default_factory=dict)  # QualityReport.to_dict()
    check: str = TARGET_CHECK
    compared_with: str = "reference data"

    def to_dict(self) -> dict:
        return {"check": self.check, "precision": self.precision, "runtime": self.runtime,
                "compared_with": self.compared_with, "passed": self.passed, "summary": self.summary,
                **self.report}


def gate(runner: GeneratorRunner, reference: Showers, thresholds, seed: int = 0,
         batch_size: int = 128) -> GateResult:
    """Generate the gate's showers at the runner's precision and judge them against `reference`."""
    from benchmark import quality

    report = quality.evaluate_generator(runner, runner.spec, reference, thresholds, seed=seed,
                                        batch_size=batch_size)
    return GateResult(precision=runner.precision, runtime=runner.runtime, passed=bool(report.passed),
                      summary=report.failed_summary(), report=report.to_dict())


def paired_conditions(spec: ModelSpec, thresholds, seed: int = 0) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """`events_per_bin` energies drawn inside each of the gate's energy bins (and angles over the
    data's range): the conditions both sides of the paired comparison are generated for."""
    rng = np.random.default_rng(seed)
    inset = 1e-3  # of the bin width, so float32 rounding keeps every energy strictly inside
    energy = np.concatenate([rng.uniform(low + inset * (high - low), high - inset * (high - low),
                                         thresholds.events_per_bin)
                             for low, high in thresholds.energy_bins_gev]).astype(np.float32)
    theta = (None if spec.geometry == FIXED else
             np.radians(rng.uniform(*CALIBRATION_THETA_DEG, len(energy))).astype(np.float32))
    return energy, theta


def paired_gate(runner: GeneratorRunner, float32_showers: Showers, thresholds, seed: int = 0,
                batch_size: int = 128) -> GateResult:
    """MLPerf Inference's accuracy rule for a lower precision: its showers, generated from the same
    latent vectors and conditions as float32's, must be indistinguishable from float32's under
    the gate's noise-floor limits. Paired, so the data's sampling noise does not enter."""
    from benchmark import quality

    # float32's showers are already the gate's selection (`paired_reference`): the same
    # conditions, in the same order, with the same seed give the same latents.
    report = quality.evaluate_generator(runner, runner.spec, float32_showers, thresholds, seed=seed,
                                        batch_size=batch_size)
    return GateResult(precision=runner.precision, runtime=runner.runtime, passed=bool(report.passed),
                      summary=report.failed_summary(), report=report.to_dict(), check=PAIRED_CHECK,
                      compared_with=f"{FLOAT32} showers from the same latents and conditions")


def paired_reference(float32_runner: GeneratorRunner, thresholds, seed: int = 0,
                     batch_size: int = 128) -> Showers:
    """float32's showers for the paired comparison (made once, shared by every precision)."""
    energy, theta = paired_conditions(float32_runner.spec, thresholds, seed)
    return generate_showers(float32_runner.spec, float32_runner, energy, theta, seed=seed,
                            batch_size=batch_size)
