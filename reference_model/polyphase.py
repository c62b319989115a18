"""Up-sample (nearest neighbour) -> zero-pad -> valid convolution as one convolution over the
low-resolution grid: the polyphase (sub-pixel) form of the same sums.

Each output of such a convolution only sees repeated copies of low-resolution cells, so the taps
that land on the same copy can be summed beforehand: per output *phase* (the output index modulo
the up-sampling factor) the layer is a smaller convolution over the low-resolution input. All
phases together are one convolution whose output channels are (phase, channel) pairs, followed by
a depth-to-space reshuffle and a crop. Zero padding in the up-sampled grid maps to zero padding in
the low-resolution grid (floor division sends padded positions to negative or too-large
low-resolution indices), so the form is exact up to float summation order.

Two users: inference rewrites the frozen generators with phase kernels computed once
(`benchmark/inference_graph.py`), and training runs the variable-angle generator's `up1 -> conv1`
this way (`PolyphaseGenerator`), with the phase kernel computed in the graph from conv1's own
kernel variable, so the gradients reach the frozen model's variables: 3,629 of that generator's
6,123 MFLOP per shower were conv1 over the 6x up-sampled grid, and its phase convolution is 188.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where used: TensorFlow is slow to load
    import keras
    import tensorflow as tf


@dataclass(frozen=True)
class PhaseAxis:
    """One axis of up-sample(factor) -> zero-pad(left) -> valid conv(kernel) with `outputs` outputs
    from `inputs` low-resolution cells."""

    factor: int
    kernel: int
    pad_left: int
    inputs: int
    outputs: int

    @property
    def taps(self) -> int:
        """Low-resolution cells the widest phase touches."""
        return (self.factor - 1 + self.kernel - 1) // self.factor + 1

    @property
    def first(self) -> int:
        """Low-resolution index of the first output's phase block (may be negative: padding)."""
        return (-self.pad_left) // self.factor

    @property
    def blocks(self) -> int:
        """Phase blocks (groups of `factor` outputs) needed to cover every output."""
        last = (self.outputs - 1 - self.pad_left) // self.factor
        return last - self.first + 1

    @property
    def low_pad(self) -> tuple[int, int]:
        """Zero padding of the low-resolution input so a valid conv yields at least `blocks`."""
        left = -self.first
        right = max(0, self.blocks + self.taps - 1 - self.inputs - left)
        return left, right

    @property
    def crop_start(self) -> int:
        """Where the frozen layer's first output sits in the depth-to-space result."""
        return self.factor * -self.first - self.pad_left

    def tap_map(self) -> np.ndarray:
        """(factor, taps, kernel): 1 where kernel tap k of phase r lands on low-res offset j."""
        out = np.zeros((self.factor, self.taps, self.kernel), dtype=np.float64)
        for r in range(self.factor):
            for k in range(self.kernel):
                out[r, (r + k) // self.factor, k] = 1.0
        return out


def phase_axes(upsampling, padding, conv) -> list[PhaseAxis]:
    """The three PhaseAxis of a frozen (UpSampling3D, ZeroPadding3D or None, Conv3D valid) triple."""
    from reference_model.errors import InputError

    ins = upsampling.input.shape[1:4]
    outs = conv.output.shape[1:4]
    pads = [0, 0, 0] if padding is None else [p[0] for p in padding.padding]
    if conv.padding != "valid" or any(s != 1 for s in conv.strides):
        raise InputError(f"{conv.name}: only valid, stride-1 convolutions can be rewritten")
    return [PhaseAxis(int(u), int(k), int(p), int(n), int(o))
            for u, k, p, n, o in zip(upsampling.size, conv.kernel_size, pads, ins, outs)]


PHASE_EINSUM = "ajk,blm,cno,kmoid->jlniabcd"  # (tap maps x, y, z; kernel) -> taps, Ci, phases, Co


def phase_kernel(kernel: np.ndarray, axes: list[PhaseAxis]) -> np.ndarray:
    """(Kx,Ky,Kz,Ci,Co) -> (Jx,Jy,Jz,Ci, Ux*Uy*Uz*Co): taps summed per output phase (float64
    sums, float32 result)."""
    merged = np.einsum(PHASE_EINSUM, *(a.tap_map() for a in axes), kernel.astype(np.float64))
    jx, jy, jz, ci = merged.shape[:4]
    return merged.reshape(jx, jy, jz, ci, -1).astype(np.float32)


def phase_kernel_tensor(kernel: "tf.Tensor", axes: list[PhaseAxis]) -> "tf.Tensor":
    """`phase_kernel` in the graph, in the kernel's dtype: differentiable, so a gradient with
    respect to the phase kernel reaches the frozen kernel (each tap's sum over its phases)."""
    import tensorflow as tf

    maps = [tf.constant(a.tap_map(), kernel.dtype) for a in axes]
    merged = tf.einsum(PHASE_EINSUM, *maps, kernel)
    jx, jy, jz = (a.taps for a in axes)
    return tf.reshape(merged, (jx, jy, jz, int(kernel.shape[3]), -1))


def depth_to_space(x: "tf.Tensor", factors, channels: int, crop, size) -> "tf.Tensor":
    """(B, Qx, Qy, Qz, Ux*Uy*Uz*C) -> (B, Qx*Ux, Qy*Uy, Qz*Uz, C), cropped to `size` from `crop`."""
    import tensorflow as tf

    _, qx, qy, qz, _ = x.shape
    ux, uy, uz = factors
    if ux == uy == 1:  # phases along z only: already in place, a reshape
        x = tf.reshape(x, (-1, qx, qy, qz * uz, channels))
    else:
        x = tf.reshape(x, (-1, qx, qy, qz, ux, uy, uz, channels))
        x = tf.transpose(x, (0, 1, 4, 2, 5, 3, 6, 7))
        x = tf.reshape(x, (-1, qx * ux, qy * uy, qz * uz, channels))
    (sx, sy, sz), (nx, ny, nz) = crop, size
    return x[:, sx:sx + nx, sy:sy + ny, sz:sz + nz, :]


def upsampled_conv(x: "tf.Tensor", kernel: "tf.Tensor", axes: list[PhaseAxis]) -> "tf.Tensor":
    """conv(pad(up-sample(x))) without its bias, computed in phases: low-resolution padding, one
    valid convolution with the phase kernel, depth-to-space and the frozen layer's crop."""
    import tensorflow as tf

    x = tf.pad(x, [(0, 0), *(a.low_pad for a in axes), (0, 0)])
    y = tf.nn.conv3d(x, phase_kernel_tensor(kernel, axes), [1] * 5, "VALID")
    y = y[:, :axes[0].blocks, :axes[1].blocks, :axes[2].blocks, :]
    return depth_to_space(y, [a.factor for a in axes], int(kernel.shape[-1]),
                          [a.crop_start for a in axes], [a.outputs for a in axes])


class PolyphaseGenerator:
    """A frozen generator's forward pass with one (UpSampling3D, Conv3D) pair computed in phases:
    the same function of the same variables, called as the model is (`latent, training=`). The
    layers before and after the pair are the model's own, so BatchNorm's moving statistics, the
    dtype policy and every variable are shared with the model, which stays as built (its
    architecture fingerprint and weights layout are untouched)."""

    def __init__(self, model: "keras.Model", upsampling: str, conv: str) -> None:
        import keras

        chain = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        names = [layer.name for layer in chain]
        start, end = names.index(upsampling), names.index(conv)
        self.conv = chain[end]
        if end != start + 1 or self.conv.get_config()["activation"] != "linear":
            raise ValueError(f"{model.name}: {conv} must directly follow {upsampling}, with no activation")
        self.model = model
        self.before, self.after = chain[:start], chain[end + 1:]
        self.axes = phase_axes(chain[start], None, self.conv)
        self.name = model.name

    @property
    def trainable_variables(self) -> list:
        return self.model.trainable_variables

    def __call__(self, latent: "tf.Tensor", training: bool = False) -> "tf.Tensor":
        import tensorflow as tf

        from reference_model.conv import bias_add_float32_gradient

        with tf.name_scope(self.name):  # op names as the model's own call gives them (profiles)
            x = latent
            for layer in self.before:
                x = layer(x, training=training)
            with tf.name_scope(self.conv.name):
                dtype = self.conv.compute_dtype  # conv1's own: float32 under every policy (models.CONV1_DTYPE)
                kernel = tf.cast(tf.convert_to_tensor(self.conv.kernel.value), dtype)
                x = upsampled_conv(tf.cast(x, dtype), kernel, self.axes)
                if self.conv.use_bias:
                    x = bias_add_float32_gradient(x, tf.convert_to_tensor(self.conv.bias.value))
            for layer in self.after:
                x = layer(x, training=training)
        return x
