"""The variable-angle generator's polyphase rewrite computes the frozen generator's showers, in
every precision the inference benchmark runs (small batches: one angle shower costs ~10x a
fixed one)."""
import keras
import numpy as np
import pytest

from benchmark import inference_graph as graph
from benchmark import precision as prec
from benchmark import quality
from reference_model.fingerprint import architecture_fingerprint, flops_per_sample, recorded_fingerprints
from reference_model.specs import get_spec

SPEC = get_spec("3dgan-angle")
FINGERPRINT_KEY = "3dgan-angle-reference-generator"
# Relative to the largest output cell: float32 sums in another order, nothing more (measured 2e-6).
TOLERANCE = 1e-5


def _randomise(generator) -> None:
    """Non-trivial biases and batch-norm statistics (a fresh generator has zero biases and
    identity BN, which would hide a bias or BN tiled wrongly)."""
    rng = np.random.default_rng(1)
    for layer in generator.layers:
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv3D)) and layer.use_bias:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.05, bias.shape)])
        elif isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])


@pytest.fixture(scope="module")
def frozen():
    keras.utils.set_random_seed(0)
    generator = SPEC.build_generator()
    _randomise(generator)
    return generator


@pytest.fixture(scope="module")
def checkpoint(frozen, tmp_path_factory):
    from reference_model.checkpoint import save_generator

    path = tmp_path_factory.mktemp("angle") / "random-3dgan-angle-generator.weights.h5"
    return save_generator(path, frozen, SPEC, {"untrained": True})


@pytest.fixture(scope="module")
def float32_runner(checkpoint):
    return prec.load_runner("float32", checkpoint, SPEC)


def test_angle_rewrite_produces_the_frozen_showers(frozen):
    rewritten = graph.rewrite_generator(frozen)
    latent = prec.calibration_latents(SPEC, 2, seed=0)
    expected = frozen(latent, training=False).numpy()
    actual = rewritten(latent, training=False).numpy()
    assert actual.shape == expected.shape == (2, 51, 51, 25, 1)
    assert np.abs(actual - expected).max() <= TOLERANCE * np.abs(expected).max()


def test_angle_rewrite_leaves_the_frozen_fingerprint_and_records_it(frozen):
    graph.rewrite_generator(frozen)
    assert architecture_fingerprint(frozen) == recorded_fingerprints()[FINGERPRINT_KEY]
    record = graph.provenance(frozen, "abc")
    assert record == {"rewrite": graph.ANGLE_REWRITE.name, "rewrite_version": graph.ANGLE_REWRITE.version,
                      "source_fingerprint": recorded_fingerprints()[FINGERPRINT_KEY],
                      "source_checkpoint_sha256": "abc"}


def test_angle_rewrite_no_longer_runs_the_upsampled_conv1(frozen):
    """conv1 over the 6x up-sampled grid is 3,629 of the frozen model's 6,123 MFLOP per shower;
    its phase convolution is 188. conv2-conv6 run z-packed, 12 channels for 6 at (K+1)/K of their
    FLOPs (3,148 MFLOP in all)."""
    rewritten = graph.rewrite_generator(frozen)
    names = {layer.name for layer in rewritten.layers}
    assert {"up1", "conv1", *graph.ANGLE_PACKED_CONVS}.isdisjoint(names) and "phase1_conv" in names
    assert all(rewritten.get_layer(f"packed{i}_conv").filters == 12 for i in range(2, 7))
    assert flops_per_sample(rewritten) < 0.52 * flops_per_sample(frozen)


def test_angle_rewrite_folds_every_batchnorm_into_the_convolutions(frozen):
    """Rewrite v3: each ReLU -> BatchNorm pair is the ReLU of the convolution before it (BN's
    scale in its kernel) plus a per-channel offset: no BatchNorm runs."""
    rewritten = graph.rewrite_generator(frozen)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in rewritten.layers)
    offsets = [layer.name for layer in rewritten.layers if layer.name.endswith("_offset")]
    assert offsets == ["phase1_offset", "packed2_offset", "packed3_offset", "packed4_offset", "packed5_offset"]


def _with_bn1_scale(frozen, gamma_of):
    """A copy of `frozen` whose bn1 gamma is gamma_of(gamma)."""
    copy = SPEC.build_generator()
    copy.set_weights(frozen.get_weights())
    gamma, *rest = copy.get_layer("bn1").get_weights()
    copy.get_layer("bn1").set_weights([gamma_of(gamma), *rest])
    return copy


def test_angle_rewrite_folds_negative_batchnorm_scales_exactly(frozen):
    flipped = _with_bn1_scale(frozen, lambda gamma: gamma * np.where(np.arange(gamma.size) % 2, -1.0, 1.0))
    latent = prec.calibration_latents(SPEC, 2, seed=4)
    expected = flipped(latent, training=False).numpy()
    actual = graph.rewrite_generator(flipped)(latent, training=False).numpy()
    assert np.abs(actual - expected).max() <= TOLERANCE * np.abs(expected).max()


def test_a_zero_batchnorm_scale_is_refused_in_one_line(frozen):
    from reference_model.errors import InputError

    zeroed = _with_bn1_scale(frozen, lambda gamma: np.where(np.arange(gamma.size) == 3, 0.0, gamma))
    with pytest.raises(InputError, match="bn1: a channel's BatchNorm scale is zero"):
        graph.rewrite_generator(zeroed)


def test_a_packed_kernel_computes_consecutive_outputs_per_channel_block():
    import tensorflow as tf

    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 7, 6, 11, 3)).astype(np.float32)
    kernel = rng.standard_normal((2, 3, 4, 3, 5)).astype(np.float32)
    expected = tf.nn.conv3d(x, kernel, [1] * 5, "VALID").numpy()  # z: 11 - 4 + 1 = 8 outputs
    packed = tf.nn.conv3d(x, graph.packed_kernel(kernel, 2), [1, 1, 1, 2, 1], "VALID").numpy()
    assert packed.shape[-2:] == (4, 10)
    unpacked = packed.reshape(*packed.shape[:3], 4, 2, 5).reshape(*packed.shape[:3], 8, 5)
    np.testing.assert_allclose(unpacked, expected, rtol=1e-5, atol=1e-5)


def test_float32_runner_runs_the_angle_rewrite(float32_runner, frozen):
    assert float32_runner.runtime == prec.RUNTIMES["float32"] + prec.REWRITTEN
    assert float32_runner.provenance["rewrite"] == graph.ANGLE_REWRITE.name
    latent = prec.calibration_latents(SPEC, 2, seed=1)
    expected = frozen(latent, training=False).numpy()
    assert np.abs(float32_runner(latent) - expected).max() <= TOLERANCE * np.abs(expected).max()


def test_bfloat16_angle_rewrite_passes_the_paired_gate(checkpoint, float32_runner):
    """bf16 showers from the same latents pass the paired gate a --smoke run applies, and their
    totals are float32's to bf16 rounding; conv1's phase convolution stays float32, as conv1 does
    (oneDNN's AMX bf16 kernel for conv1 is wrong: docs/numerics.md)."""
    runner = prec.load_runner("bfloat16", checkpoint, SPEC, check_kernels=False)
    assert runner.runtime == prec.RUNTIMES["bfloat16"] + prec.REWRITTEN
    assert runner.generator.get_layer("phase1_conv").compute_dtype == "float32"
    assert runner.generator.get_layer("packed2_conv").compute_dtype == "bfloat16"
    floor = quality.noise_floor_thresholds(quality.load_thresholds(SPEC.benchmark, smoke=True))
    paired = prec.paired_reference(float32_runner, floor, batch_size=8)
    verdict = prec.paired_gate(runner, paired, floor, batch_size=8)
    assert verdict.passed, verdict.summary
    latent = prec.calibration_latents(SPEC, 2, seed=2)
    reference = float32_runner(latent)
    low = runner(latent)
    assert not np.array_equal(low, reference)  # really ran in bf16
    np.testing.assert_allclose(low.sum(axis=(1, 2, 3, 4)), reference.sum(axis=(1, 2, 3, 4)), rtol=0.05)


@pytest.mark.slow
def test_int8_quantises_every_convolution_of_the_angle_rewrite(checkpoint, float32_runner, tmp_path):
    """~30 s on 2 cores: NNCF calibration and OpenVINO compilation of the angle rewrite."""
    import openvino as ov

    from benchmark import residual_quantisation

    model = prec.prepare("int8", checkpoint, tmp_path, seed=0, calibration_showers=64)
    runner = prec.load_runner("int8", model, SPEC, intra_op=1)
    assert prec.float_convolutions(runner._compiled) == []
    assert runner.provenance["rewrite"] == graph.ANGLE_REWRITE.name
    ir = ov.Core().read_model(str(model))
    convolutions = ir.get_rt_info([residual_quantisation.ACTIVATION_RT_INFO]).astype(str).split(",")
    assert len(convolutions) == 7  # conv1's phase convolution, conv2 ... conv7
    assert ir.get_rt_info([residual_quantisation.WEIGHT_RT_INFO]).astype(str).split(",") == convolutions
    latent = prec.calibration_latents(SPEC, 2, seed=2)
    reference = float32_runner(latent)
    np.testing.assert_allclose(runner(latent).sum(axis=(1, 2, 3, 4)), reference.sum(axis=(1, 2, 3, 4)),
                               rtol=0.05)
