"""The reference training step: Keras loss definitions, BitFlip, a working step per geometry,
and bit-identical weights for the same seed on one thread."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from reference_model.polyphase import PolyphaseGenerator
from reference_model.specs import get_spec
from reference_model.training import (ReferenceGAN, binary_crossentropy, fixed_ecal_target,
                                      mean_absolute_error, mean_absolute_percentage_error)
from reference_model.transforms import fixed_ecal_target as fixed_ecal_target_np


def test_loss_definitions_match_keras_2():
    y, p = tf.constant([[1.0], [0.0]]), tf.constant([[1.0], [0.25]])
    expected = -np.mean([np.log(1 - 1e-7), np.log(0.75)])
    assert float(binary_crossentropy(y, p)) == pytest.approx(expected, rel=1e-5)
    t, q = tf.constant([[2.0], [0.0]]), tf.constant([[1.0], [1e-9]])
    assert float(mean_absolute_percentage_error(t, q)) == pytest.approx(100 * np.mean([0.5, 1e-9 / 1e-7]), rel=1e-4)
    assert float(mean_absolute_error(t, q)) == pytest.approx(0.5, rel=1e-5)


def test_ecal_target_tf_matches_numpy():
    e = np.array([[0.1], [1.0], [5.0]], dtype=np.float32)
    assert np.allclose(fixed_ecal_target(tf.constant(e)).numpy(), fixed_ecal_target_np(e), rtol=1e-5)


def test_bitflip_flips_each_label_with_probability_five_percent():
    """As the original's `np.random.uniform(0, 1, x.shape) < prob`: at batch 8 labels do flip."""
    gan = ReferenceGAN(get_spec("3dgan"), seed=3)
    flipped = np.concatenate([gan._flip(0, tf.ones((8, 1))).numpy() for _ in range(250)])
    assert set(np.unique(flipped)) == {0.0, 1.0}
    assert 60 <= (flipped == 0).sum() <= 140  # 2,000 labels: 100 expected, binomial sd 9.7
    zeros = np.concatenate([gan._flip(0, tf.zeros((8, 1))).numpy() for _ in range(250)])
    assert 60 <= (zeros == 1).sum() <= 140


def _batch(spec, n=4, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.random((n, *spec.image_shape, 1), dtype=np.float32)
    batch = {"image": image, "energy": np.full((n, 1), 1.0, np.float32),
             "ecal": image.sum(axis=(1, 2, 3)).astype(np.float32)}
    if spec.geometry == "angle":
        batch["theta"] = np.full((n, 1), np.pi / 2, np.float32)
    return batch


@pytest.mark.parametrize("benchmark_name", ["3dgan", "3dgan-angle"])
def test_train_step_updates_both_networks(benchmark_name):
    spec = get_spec(benchmark_name)
    gan = ReferenceGAN(spec, seed=1)
    g0 = [v.numpy().copy() for v in gan.generator.trainable_variables]
    d0 = [v.numpy().copy() for v in gan.discriminator.trainable_variables]
    bn0 = gan.discriminator.get_layer("bn2").moving_mean.numpy().copy()
    g_bn0 = gan.generator.get_layer("bn1").moving_mean.numpy().copy()
    losses = gan.train_step(_batch(spec, n=2 if spec.geometry == "angle" else 4))
    assert all(np.isfinite(float(v)) for v in losses.values())
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(g0, gan.generator.trainable_variables))
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(d0, gan.discriminator.trainable_variables))
    assert not np.array_equal(bn0, gan.discriminator.get_layer("bn2").moving_mean.numpy())
    assert not np.array_equal(g_bn0, gan.generator.get_layer("bn1").moving_mean.numpy())


def test_the_angle_step_runs_its_generator_in_phases():
    """up1 -> conv1 in phases (reference_model/polyphase.py, tested equal there); the fixed
    generator runs as built."""
    assert isinstance(ReferenceGAN(get_spec("3dgan-angle"), seed=1).generate, PolyphaseGenerator)
    fixed = ReferenceGAN(get_spec("3dgan"), seed=1)
    assert fixed.generate is fixed.generator


DETERMINISM_SCRIPT = """
import hashlib, numpy as np, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
from reference_model.specs import get_spec
from reference_model.training import ReferenceGAN
spec = get_spec("3dgan"); gan = ReferenceGAN(spec, seed=7)
rng = np.random.default_rng(0)
for _ in range(3):
    image = rng.random((4, 25, 25, 25, 1), dtype=np.float32)
    gan.train_step({"image": image, "energy": np.ones((4, 1), np.float32),
                    "ecal": image.sum(axis=(1, 2, 3)).astype(np.float32)})
h = hashlib.sha256()
for v in gan.generator.variables + gan.discriminator.variables:
    h.update(v.numpy().tobytes())
print(h.hexdigest())
"""


@pytest.mark.slow
def test_same_seed_one_thread_gives_bit_identical_weights():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}
    digests = [subprocess.run([sys.executable, "-c", DETERMINISM_SCRIPT], capture_output=True,
                              text=True, env=env, check=True).stdout.strip().splitlines()[-1]
               for _ in range(2)]
    assert digests[0] == digests[1]


def test_checkpoint_carries_every_stream_a_resumed_run_continues_from(tmp_path):
    """Weights, optimiser slots, the noise stream and the dropout streams (which Keras does not
    track through the models) all come back, so a single-rank resume continues the same run."""
    spec = get_spec("3dgan")
    gan = ReferenceGAN(spec, seed=1)
    gan.train_step(_batch(spec))
    path = gan.checkpoint(samples=tf.Variable(4, dtype=tf.int64)).write(str(tmp_path / "state"))

    resumed = ReferenceGAN(spec, seed=2)
    samples = tf.Variable(0, dtype=tf.int64)
    resumed.checkpoint(samples=samples).read(path).assert_consumed()
    assert int(samples.numpy()) == 4
    for name, saved, restored in (("variables", gan.variables, resumed.variables),
                                  ("dropout streams", gan.random_states, resumed.random_states),
                                  ("noise stream", [gan.rng.state], [resumed.rng.state])):
        assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(saved, restored)), name
    probe = tf.ones((2, 25, 25, 25, 1))
    np.testing.assert_array_equal(gan.discriminator(probe, training=True)[0].numpy(),
                                  resumed.discriminator(probe, training=True)[0].numpy())
