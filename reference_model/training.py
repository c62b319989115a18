"""The reference 3DGAN training step (3dgan-reference.md section 3), as a TF2 custom loop.

One discriminator step on real showers, one on generated showers, then two generator steps
with the discriminator's BatchNorm in training mode, exactly as the Keras 2 original did.
Distribution is injected, not built in: `tape_wrapper` turns a GradientTape into a
distributed one (Horovod's `DistributedGradientTape`), and gradients are taken with respect
to the underlying TensorFlow variables so that Horovod works with Keras 3.

Batch contract (what the input pipeline yields), all float32:
  fixed:  {"image": (B,25,25,25,1) x100 GeV, "energy": (B,1) E/100, "ecal": (B,1) sum of image}
  angle:  {"image": (B,51,51,25,1) (GeV x50)^0.85, "energy": (B,1) E/100, "theta": (B,1) rad,
           "ecal": (B,1) sum of the raw (GeV x50) image}
"""
from __future__ import annotations

from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from reference_model import transforms
from reference_model.showers import FIXED
from reference_model.specs import ModelSpec

TapeWrapper = Callable[[tf.GradientTape], tf.GradientTape]
FIXED_FAKE_ENERGY_RANGE = (0.1, 5.0)  # e_s ~ U(0.1, 5), i.e. 10-500 GeV
SEED_STATE_SUFFIX = "seed_generator_state"  # Keras 3's per-layer random state variable


def binary_crossentropy(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Keras BCE: prediction clipped to [1e-7, 1 - 1e-7], mean over the batch."""
    p = tf.clip_by_value(tf.cast(y_pred, tf.float32), 1e-7, 1.0 - 1e-7)
    return -tf.reduce_mean(y_true * tf.math.log(p) + (1.0 - y_true) * tf.math.log(1.0 - p))


def mean_absolute_percentage_error(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Keras MAPE: 100 * mean(|y - y_hat| / max(|y|, 1e-7))."""
    y_pred = tf.cast(y_pred, tf.float32)
    return 100.0 * tf.reduce_mean(tf.abs(y_true - y_pred) / tf.maximum(tf.abs(y_true), 1e-7))


def mean_absolute_error(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.abs(y_true - tf.cast(y_pred, tf.float32)))


def fixed_ecal_target(energy_condition: tf.Tensor) -> tf.Tensor:
    """GetEcalFit (mod 1) in TensorFlow: ECAL-sum target in x100 units for condition E/100."""
    poly = tf.math.polyval([tf.constant(c, tf.float32) for c in transforms.SF_POLY], energy_condition)
    return poly * energy_condition * transforms.FIXED_XSCALE


def stream_seed(*key: int) -> int:
    """A seed for the random stream named by `key` (seed, rank, ...): independent for each key."""
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(2, np.uint64)[0] >> 1)


def _identity_tape(tape: tf.GradientTape) -> tf.GradientTape:
    return tape


class ReferenceGAN:
    """Generator, discriminator, their RMSprop optimisers and the compiled reference step."""

    def __init__(self, spec: ModelSpec, seed: int, learning_rate: Optional[float] = None,
                 tape_wrapper: TapeWrapper = _identity_tape, rank: int = 0,
                 ema_decay: Optional[float] = None) -> None:
        """`ema_decay`: also keep an exponential moving average of the generator's trainable
        weights, updated after every step (`ema_generator` evaluates it)."""
        keras.utils.set_random_seed(seed)  # the same initial weights on every rank
        self.spec = spec
        self.generator = spec.build_generator()
        self.discriminator = spec.build_discriminator()
        lr = spec.learning_rate if learning_rate is None else learning_rate
        self.d_optimizer = keras.optimizers.RMSprop(learning_rate=lr)
        self.g_optimizer = keras.optimizers.RMSprop(learning_rate=lr)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.seed = seed
        self.rng = tf.random.Generator.from_seed(stream_seed(seed, rank))
        self.rekey(rank)
        self._tape_wrapper = tape_wrapper
        self.ema_decay = ema_decay
        self.ema_weights = [] if ema_decay is None else [
            tf.Variable(v.value, trainable=False, name=f"ema_{i}")
            for i, v in enumerate(self.generator.trainable_variables)]
        step = self._fixed_step if spec.geometry == FIXED else self._angle_step
        self.train_step = tf.function(self._with_ema(step), reduce_retracing=True)

    # -- state ------------------------------------------------------------------------------
    @property
    def random_states(self) -> list:
        """The dropout layers' seed-generator states: per rank, never shared."""
        models = self.generator.variables + self.discriminator.variables
        return [v for v in models if v.path.endswith(SEED_STATE_SUFFIX)]

    @property
    def variables(self) -> list:
        """Every variable a replica must share: weights, BN statistics, optimiser slots (not the
        random streams, which differ by rank so that ranks draw different noise and dropout)."""
        random_states = {id(v) for v in self.random_states}
        models = [v for v in self.generator.variables + self.discriminator.variables
                  if id(v) not in random_states]
        return models + self.d_optimizer.variables + self.g_optimizer.variables + self.ema_weights

    def checkpoint(self, **counters: tf.Variable) -> tf.train.Checkpoint:
        """Everything a resumed run needs to continue this one exactly: both models, both
        optimisers, the noise stream and the dropout streams (Keras's seed generators are not
        tracked through the models), plus the caller's counters."""
        ema = {"generator_ema": list(self.ema_weights)} if self.ema_weights else {}
        return tf.train.Checkpoint(generator=self.generator, discriminator=self.discriminator,
                                   d_optimizer=self.d_optimizer, g_optimizer=self.g_optimizer,
                                   rng=self.rng, dropout_streams=list(self.random_states), **ema,
                                   **counters)

    def ema_generator(self) -> keras.Model:
        """A generator holding the moving average of the trainable weights and the trained
        generator's BatchNorm statistics (as StyleGAN's copy of buffers); built once, refreshed
        on every call."""
        if not self.ema_weights:
            raise ValueError("this ReferenceGAN keeps no moving average (ema_decay=None)")
        if not hasattr(self, "_ema_generator"):
            self._ema_generator = self.spec.build_generator()
        averaged = {v.path: a for v, a in zip(self.generator.trainable_variables, self.ema_weights)}
        for target, source in zip(self._ema_generator.variables, self.generator.variables):
            target.assign(averaged.get(source.path, source))
        return self._ema_generator

    def rekey(self, rank: int, *salt: int) -> None:
        """Give this rank its own streams for latent noise, fake energies, label flips and dropout,
        derived from (seed, rank, *salt): data parallelism needs a different half-batch of fakes
        on every rank. A resumed multi-rank run rekeys with the samples trained as salt, since
        every rank restored rank 0's streams."""
        self.rng.reset_from_seed(stream_seed(self.seed, rank, *salt))
        for i, state in enumerate(self.random_states):
            state.assign(np.array([stream_seed(self.seed, rank, *salt, i) % (1 << 62), 0], dtype=np.int64))

    def _with_ema(self, step: Callable[[dict], dict]) -> Callable[[dict], dict]:
        """`step`, then the moving average's update (nothing more when none is kept)."""
        if not self.ema_weights:
            return step

        def step_and_average(batch: dict) -> dict:
            losses = step(batch)
            for average, weight in zip(self.ema_weights, self.generator.trainable_variables):
                average.assign(self.ema_decay * average + (1.0 - self.ema_decay) * weight.value)
            return losses

        return step_and_average

    def set_learning_rate(self, learning_rate: float) -> None:
        self.d_optimizer.learning_rate.assign(learning_rate)
        self.g_optimizer.learning_rate.assign(learning_rate)

    # -- losses -----------------------------------------------------------------------------
    def _weighted_loss(self, outputs: list, targets: list) -> tf.Tensor:
        if self.spec.geometry == FIXED:
            losses = (binary_crossentropy, mean_absolute_percentage_error, mean_absolute_percentage_error)
        else:
            losses = (binary_crossentropy, mean_absolute_percentage_error, mean_absolute_error,
                      mean_absolute_percentage_error)
        return tf.add_n([w * fn(t, o) for w, fn, t, o in zip(self.spec.loss_weights, losses, targets, outputs)])

    def _flip(self, labels: tf.Tensor) -> tf.Tensor:
        """BitFlip: flip each label with probability p, independently (not label smoothing).

        The original draws `np.random.uniform(0, 1, x.shape) < prob` over the batch's labels, so
        about 5% flip at any batch; flipping exactly floor(p * B) flipped none at batch 8."""
        flip = self.rng.uniform(tf.shape(labels)) < self.spec.label_flip_probability
        return tf.where(flip, 1.0 - labels, labels)

    def _update(self, model: keras.Model, optimizer, loss_fn: Callable[[], tf.Tensor]) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn()
        tape = self._tape_wrapper(tape)
        variables = model.trainable_variables
        grads = tape.gradient(loss, [v.value for v in variables])
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    # -- the reference steps ----------------------------------------------------------------
    def _fixed_condition(self, batch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        z = self.rng.normal((batch, self.spec.latent_size))
        e_s = self.rng.uniform((batch, 1), *FIXED_FAKE_ENERGY_RANGE)
        return e_s * z, e_s

    def _fixed_step(self, batch: dict) -> dict:
        image, energy, ecal = batch["image"], batch["energy"], batch["ecal"]
        n = tf.shape(image)[0]
        ones, zeros = tf.ones((n, 1)), tf.zeros((n, 1))
        latent, e_s = self._fixed_condition(n)
        fake = self.generator(latent, training=False)
        ecal_ip = fixed_ecal_target(e_s)
        d_real = self._update(self.discriminator, self.d_optimizer, lambda: self._weighted_loss(
            self.discriminator(image, training=True), [self._flip(ones), energy, ecal]))
        d_fake = self._update(self.discriminator, self.d_optimizer, lambda: self._weighted_loss(
            self.discriminator(fake, training=True), [self._flip(zeros), e_s, ecal_ip]))
        g_losses = []
        for _ in range(2):
            latent, e_s = self._fixed_condition(n)
            ecal_ip = fixed_ecal_target(e_s)
            g_losses.append(self._update(self.generator, self.g_optimizer, lambda: self._weighted_loss(
                self.discriminator(self.generator(latent, training=True), training=True),
                [ones, e_s, ecal_ip])))
        return {"d_loss": (d_real + d_fake) / 2.0, "g_loss": tf.add_n(g_losses) / 2.0}

    def _angle_latent(self, energy: tf.Tensor, theta: tf.Tensor) -> tf.Tensor:
        z = self.rng.normal((tf.shape(energy)[0], self.spec.latent_size - 2))
        return tf.concat([energy, theta, z], axis=1)

    def _angle_step(self, batch: dict) -> dict:
        image, energy, theta, ecal = batch["image"], batch["energy"], batch["theta"], batch["ecal"]
        n = tf.shape(image)[0]
        ones, zeros = tf.ones((n, 1)), tf.zeros((n, 1))
        fake = self.generator(self._angle_latent(energy, theta), training=False)
        d_real = self._update(self.discriminator, self.d_optimizer, lambda: self._weighted_loss(
            self.discriminator(image, training=True), [self._flip(ones), energy, theta, ecal]))
        d_fake = self._update(self.discriminator, self.d_optimizer, lambda: self._weighted_loss(
            self.discriminator(fake, training=True), [self._flip(zeros), energy, theta, ecal]))
        g_losses = []
        for _ in range(2):
            latent = self._angle_latent(energy, theta)
            g_losses.append(self._update(self.generator, self.g_optimizer, lambda: self._weighted_loss(
                self.discriminator(self.generator(latent, training=True), training=True),
                [ones, energy, theta, ecal])))
        return {"d_loss": (d_real + d_fake) / 2.0, "g_loss": tf.add_n(g_losses) / 2.0}
