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

from functools import partial
from typing import Callable, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from reference_model import transforms
from reference_model.polyphase import PolyphaseGenerator
from reference_model.showers import FIXED
from reference_model.specs import ModelSpec, get_spec

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


def synthetic_batch(benchmark_name: str, batch_size: int, seed: int = 0) -> dict:
    """A batch in the step's contract (module docstring), random but in range: what timing a
    step needs (the step's cost does not depend on the showers' values) without data files."""
    spec = get_spec(benchmark_name)
    rng = np.random.default_rng(seed)
    image = rng.exponential(0.01, (batch_size, *spec.image_shape, 1)).astype(np.float32)
    batch = {"image": image,
             "energy": rng.uniform(0.1, 5.0, (batch_size, 1)).astype(np.float32),
             "ecal": image.sum(axis=(1, 2, 3)).astype(np.float32)}
    if spec.geometry != FIXED:
        batch["theta"] = rng.uniform(1.0, 2.1, (batch_size, 1)).astype(np.float32)
    return {k: tf.constant(v) for k, v in batch.items()}


class ReferenceGAN:
    """Generator, discriminator, their RMSprop optimisers and the compiled reference step.

    `emulated_ranks` N > 1 runs the arithmetic of N Horovod ranks in this one process: every
    update takes N per-rank micro-batches, each with rank r's own noise and dropout streams
    (those `rank=r` would draw) and its own BatchNorm batch statistics, averages the N gradients
    as Horovod's allreduce does and applies one update. Each rank also keeps its own BatchNorm
    moving statistics (a replica's fakes are drawn with them), and between steps the layers hold
    rank 0's, the replica that is evaluated and saved. It is convergence evidence for a global
    batch this machine cannot run, never a timing.
    """

    def __init__(self, spec: ModelSpec, seed: int, learning_rate: Optional[float] = None,
                 tape_wrapper: TapeWrapper = _identity_tape, rank: int = 0,
                 ema_decay: Optional[float] = None, emulated_ranks: int = 1) -> None:
        """`ema_decay`: also keep an exponential moving average of the generator's trainable
        weights, updated after every step (`ema_generator` evaluates it)."""
        if emulated_ranks < 1 or (emulated_ranks > 1 and rank != 0):
            raise ValueError("emulated ranks run in one undistributed process, as its rank 0")
        keras.utils.set_random_seed(seed)  # the same initial weights on every rank
        self.spec = spec
        self.generator = spec.build_generator()
        # The generator as the steps run it: the variable-angle one computes up1 -> conv1 in
        # phases, the same function of the same variables at 1/19 of conv1's FLOPs
        # (reference_model/polyphase.py; docs/training-performance.md).
        self.generate = (self.generator if spec.geometry == FIXED
                         else PolyphaseGenerator(self.generator, "up1", "conv1"))
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
        self.emulated_ranks = emulated_ranks
        # Rank r's own state: its noise generator (rank 0's is self.rng) and its copy of what
        # each replica keeps for itself, the dropout streams and BatchNorm's moving statistics
        # (with one rank the layers' own variables serve directly).
        self.rank_rngs = [self.rng] + [tf.random.Generator.from_seed(stream_seed(seed, r))
                                       for r in range(1, emulated_ranks)]
        self.rank_states = [] if emulated_ranks == 1 else [
            [tf.Variable(v.value, trainable=False) for v in self._replica_variables]
            for _ in range(emulated_ranks)]
        for r, states in enumerate(self.rank_states):
            for i, state in enumerate(states[:len(self.random_states)]):
                state.assign(np.array([stream_seed(seed, r, i) % (1 << 62), 0], dtype=np.int64))
        self.ema_decay = ema_decay
        self.ema_weights = [] if ema_decay is None else [
            tf.Variable(v.value, trainable=False, name=f"ema_{i}")
            for i, v in enumerate(self.generator.trainable_variables)]
        step = self._fixed_step if spec.geometry == FIXED else self._angle_step
        self._step = tf.function(self._with_ema(step), reduce_retracing=True)

    def train_step(self, batch: dict | Sequence[dict]) -> dict:
        """One reference step on one batch, or, when emulating N ranks, on N per-rank batches."""
        batches = (batch,) if isinstance(batch, dict) else tuple(batch)
        if len(batches) != self.emulated_ranks:
            raise ValueError(f"{len(batches)} per-rank batches for {self.emulated_ranks} emulated ranks")
        return self._step(batches)

    # -- state ------------------------------------------------------------------------------
    @property
    def random_states(self) -> list:
        """The dropout layers' seed-generator states: per rank, never shared."""
        models = self.generator.variables + self.discriminator.variables
        return [v for v in models if v.path.endswith(SEED_STATE_SUFFIX)]

    @property
    def moving_statistics(self) -> list:
        """BatchNorm's moving means and variances: each replica's own, updated by its batches."""
        random_states = {id(v) for v in self.random_states}
        return [v for v in self.generator.non_trainable_variables + self.discriminator.non_trainable_variables
                if id(v) not in random_states]

    @property
    def _replica_variables(self) -> list:
        """What each replica keeps for itself: dropout streams, then BatchNorm moving statistics."""
        return self.random_states + self.moving_statistics

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
        tracked through the models), every emulated rank's streams, plus the caller's counters."""
        extra = {"generator_ema": list(self.ema_weights)} if self.ema_weights else {}
        if self.emulated_ranks > 1:
            extra["emulated_rngs"] = self.rank_rngs[1:]
            extra["emulated_replica_states"] = [v for states in self.rank_states for v in states]
        return tf.train.Checkpoint(generator=self.generator, discriminator=self.discriminator,
                                   d_optimizer=self.d_optimizer, g_optimizer=self.g_optimizer,
                                   rng=self.rng, dropout_streams=list(self.random_states), **extra,
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

    def _with_ema(self, step: Callable[[tuple], dict]) -> Callable[[tuple], dict]:
        """`step`, then the moving average's update (nothing more when none is kept)."""
        if not self.ema_weights:
            return step

        def step_and_average(batches: tuple) -> dict:
            losses = step(batches)
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

    def _flip(self, rank: int, labels: tf.Tensor) -> tf.Tensor:
        """BitFlip: flip each label with probability p, independently (not label smoothing).

        The original draws `np.random.uniform(0, 1, x.shape) < prob` over the batch's labels, so
        about 5% flip at any batch; flipping exactly floor(p * B) flipped none at batch 8."""
        flip = self.rank_rngs[rank].uniform(tf.shape(labels)) < self.spec.label_flip_probability
        return tf.where(flip, 1.0 - labels, labels)

    def _update(self, model: keras.Model, optimizer, loss_fns: Sequence[Callable[[], tf.Tensor]]) -> tf.Tensor:
        """One optimiser update from the mean of the ranks' gradients (one rank: its own, through
        the tape wrapper, which averages over Horovod's ranks); returns rank 0's loss."""
        variables = model.trainable_variables
        total, losses = None, []
        for rank, loss_fn in enumerate(loss_fns):
            with tf.GradientTape() as tape:
                losses.append(self._as_rank(rank, loss_fn))
            tape = self._tape_wrapper(tape)
            grads = tape.gradient(losses[-1], [v.value for v in variables])
            total = grads if total is None else [t + g for t, g in zip(total, grads)]
        if len(loss_fns) > 1:
            total = [t / float(len(loss_fns)) for t in total]
        optimizer.apply_gradients(zip(total, variables))
        return losses[0]

    def _as_rank(self, rank: int, fn: Callable[[], tf.Tensor]) -> tf.Tensor:
        """`fn()` with rank `rank`'s dropout streams and moving statistics in the layers, and
        rank 0's back in them afterwards (a no-op with one rank)."""
        if not self.rank_states:
            return fn()
        for variable, own in zip(self._replica_variables, self.rank_states[rank]):
            variable.assign(own)
        result = fn()
        for variable, own, rank0 in zip(self._replica_variables, self.rank_states[rank], self.rank_states[0]):
            own.assign(variable)
            variable.assign(rank0)
        return result

    # -- the reference steps ----------------------------------------------------------------
    def _fixed_condition(self, rank: int, batch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        z = self.rank_rngs[rank].normal((batch, self.spec.latent_size))
        e_s = self.rank_rngs[rank].uniform((batch, 1), *FIXED_FAKE_ENERGY_RANGE)
        return e_s * z, e_s

    def _fixed_step(self, batches: tuple) -> dict:
        """Each rank draws its fakes' condition, then its label flips, in the original's order."""
        ranks = range(len(batches))
        sizes = [tf.shape(b["image"])[0] for b in batches]
        conditions = [self._fixed_condition(r, sizes[r]) for r in ranks]
        fakes = [self._as_rank(r, partial(self.generator, conditions[r][0], training=False)) for r in ranks]
        d_real = self._update(self.discriminator, self.d_optimizer, [
            partial(lambda r, b: self._weighted_loss(self.discriminator(b["image"], training=True), [
                self._flip(r, tf.ones((sizes[r], 1))), b["energy"], b["ecal"]]), r, b)
            for r, b in enumerate(batches)])
        d_fake = self._update(self.discriminator, self.d_optimizer, [
            partial(lambda r: self._weighted_loss(self.discriminator(fakes[r], training=True), [
                self._flip(r, tf.zeros((sizes[r], 1))), conditions[r][1],
                fixed_ecal_target(conditions[r][1])]), r)
            for r in ranks])
        g_losses = []
        for _ in range(2):
            conditions = [self._fixed_condition(r, sizes[r]) for r in ranks]
            g_losses.append(self._update(self.generator, self.g_optimizer, [
                partial(lambda latent, e_s: self._weighted_loss(
                    self.discriminator(self.generator(latent, training=True), training=True),
                    [tf.ones_like(e_s), e_s, fixed_ecal_target(e_s)]), *conditions[r])
                for r in ranks]))
        return {"d_loss": (d_real + d_fake) / 2.0, "g_loss": tf.add_n(g_losses) / 2.0}

    def _angle_latent(self, rank: int, energy: tf.Tensor, theta: tf.Tensor) -> tf.Tensor:
        z = self.rank_rngs[rank].normal((tf.shape(energy)[0], self.spec.latent_size - 2))
        return tf.concat([energy, theta, z], axis=1)

    def _angle_step(self, batches: tuple) -> dict:
        """The fakes take the real batch's energy and angle; each rank draws its own noise."""
        fakes = [self._as_rank(r, partial(self.generate, self._angle_latent(r, b["energy"], b["theta"]),
                                          training=False)) for r, b in enumerate(batches)]

        def targets(b: dict) -> list:
            return [b["energy"], b["theta"], b["ecal"]]

        d_real = self._update(self.discriminator, self.d_optimizer, [
            partial(lambda r, b: self._weighted_loss(self.discriminator(b["image"], training=True), [
                self._flip(r, tf.ones_like(b["energy"])), *targets(b)]), r, b)
            for r, b in enumerate(batches)])
        d_fake = self._update(self.discriminator, self.d_optimizer, [
            partial(lambda r, b: self._weighted_loss(self.discriminator(fakes[r], training=True), [
                self._flip(r, tf.zeros_like(b["energy"])), *targets(b)]), r, b)
            for r, b in enumerate(batches)])
        g_losses = []
        for _ in range(2):
            latents = [self._angle_latent(r, b["energy"], b["theta"]) for r, b in enumerate(batches)]
            g_losses.append(self._update(self.generator, self.g_optimizer, [
                partial(lambda latent, b: self._weighted_loss(
                    self.discriminator(self.generate(latent, training=True), training=True),
                    [tf.ones_like(b["energy"]), *targets(b)]), latents[r], b)
                for r, b in enumerate(batches)]))
        return {"d_loss": (d_real + d_fake) / 2.0, "g_loss": tf.add_n(g_losses) / 2.0}
