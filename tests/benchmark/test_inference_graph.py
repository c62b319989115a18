"""The polyphase rewrite computes the frozen generator's showers (float32, to summation order)."""
import keras
import numpy as np
import pytest

from benchmark import inference_graph as graph
from reference_model.errors import InputError
from reference_model.fingerprint import architecture_fingerprint
from reference_model.specs import get_spec

# Relative to the largest output cell: float32 sums in another order, nothing more.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def frozen():
    """The frozen generator with non-trivial biases and batch-norm statistics (a fresh one has zero
    biases and identity BN)."""
    keras.utils.set_random_seed(0)
    generator = get_spec("3dgan").build_generator()
    rng = np.random.default_rng(1)
    for name in ("dense", "conv1", "conv2", "conv3"):  # biases start at zero: give them values to fold
        layer = generator.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape)])
    for name in ("bn1", "bn2"):
        layer = generator.get_layer(name)
        gamma, beta, mean, var = layer.get_weights()
        layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                           rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
    return generator


def test_rewrite_produces_the_frozen_showers(frozen):
    rewritten = graph.rewrite_generator(frozen)
    latent = 2.0 * np.random.default_rng(0).standard_normal((8, 200)).astype(np.float32)
    expected = frozen(latent, training=False).numpy()
    actual = rewritten(latent, training=False).numpy()
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= TOLERANCE * np.abs(expected).max()


def test_rewrite_carries_the_frozen_fingerprint(frozen):
    record = graph.provenance(frozen, "abc")
    assert record["source_fingerprint"] == architecture_fingerprint(frozen)
    assert record["source_checkpoint_sha256"] == "abc" and record["rewrite"] == graph.FIXED_REWRITE.name
    assert record["rewrite_version"] == graph.FIXED_REWRITE.version
    assert set(record) == set(graph.PROVENANCE_KEYS)


def test_rewrite_executes_fewer_flops_than_the_model_counts(frozen):
    from reference_model.fingerprint import flops_per_sample

    assert flops_per_sample(graph.rewrite_generator(frozen)) < flops_per_sample(frozen) / 2


def test_only_the_frozen_generators_are_rewritten():
    with pytest.raises(InputError, match="only those have a polyphase rewrite"):
        graph.rewrite_generator(get_spec("3dgan").build_discriminator())
