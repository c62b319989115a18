"""Inference-only rewrites of the two frozen generators that compute the same showers.

Both frozen generators up-sample (nearest neighbour), maybe zero-pad, and then convolve; each such
triple runs here in its polyphase form (`reference_model/polyphase.py`: one convolution over the
low-resolution grid whose output channels are (phase, channel) pairs, then depth-to-space and a
crop), exact up to float summation order, with no up-sampled or padded copy of an activation.
`rewrite_generator` picks the rewrite by the frozen model's architecture fingerprint and refuses
any other architecture; the frozen model and its fingerprint are left as they are. Executed
multiply-adds below are `fingerprint.layer_flops` of each graph; the benchmark still counts the
frozen model's FLOPs, the convention of MFU.

Fixed angle (`3dgan`, 25x25x25; "3dgan-generator-polyphase" v2): `up1, pad2, conv2` and
`up2, pad3, conv3` are rewritten, and conv4 (2x2x2) runs in conv3's phase domain, so only the
1-channel image is reshuffled.

* the 6-channel convolutions become 48- and 72-channel ones, which fill the 16-wide blocks of
  oneDNN's bf16/int8 kernels instead of 6 of 16 lanes;
* `dense -> reshape -> conv1` is linear, so it is folded into one dense layer (latent -> conv1's
  outputs): conv1's 8-channel convolution, for which oneDNN's AMX bf16 kernel is wrong
  (docs/numerics.md), never runs;
* 511 MFLOP per shower executed before, 144 after.

Variable angle (`3dgan-angle`, 51x51x25; "3dgan-angle-generator-polyphase" v3): its one
up-sampling, `up1` (6x6x6, no padding), feeds conv1 (6x6x8 kernel, 8 -> 8 channels, valid) over
a 54x54x48 grid: 3,629 of the model's 6,123 MFLOP per shower. Rewritten, conv1 is a 2x2x3
convolution over the 9x9x8 grid (zero-padded to 10x10x9) with 216 phases x 8 = 1,728 output
channels (188 MFLOP), then depth-to-space to 54x54x42 and a crop to 49x49x41. The phase
convolution keeps conv1's dtype, float32 under every policy (`models.CONV1_DTYPE`: it is an
8-channel input convolution too, the shape oneDNN's AMX bf16 kernel got wrong).

conv2 ... conv6 (6 output channels at full resolution, about 50x50x35 cells) fill 6 of the 16
lanes of oneDNN's AVX-512 blocks. Since v2 each (pad, conv) pair is one conv striding by 2 along
z with a kernel one tap deeper and 12 output channels (channel p*6 + c is z-position 2j + p of
channel c; `packed_kernel`), then depth-to-space along z, a reshape. Same sums, (K+1)/K of the
FLOPs: 3,148 MFLOP per shower executed in all (v1: 2,682), and faster
(docs/inference-performance.md).

v3 folds the five BatchNorms, each after a ReLU and before a zero-padded convolution: per channel
BN(ReLU(y)) = s * ReLU(y) + t = sign(s) * (ReLU(|s| y) + f) with f = sign(s) * t, so |s| joins
the convolution before (whose ReLU oneDNN fuses), sign(s) the kernel of the one after, and f is
one addition; the activation keeps BN's magnitude, and zero padding stays exact
(`FoldedBatchNorm`). Per layer one elementwise pass (the addition) runs instead of the ReLU's
and BatchNorm's (in bfloat16 with casts to float32 and back), the work bfloat16's Eigen kernels
are slow at (docs/inference-performance.md). Kept as frozen:

* dense is not folded into conv1: `dense -> reshape -> up1 -> conv1` is linear, but the folded
  matrix would be 256 x 979,776 (1 GB in float32) and execute 502 MFLOP, against 2.7 + 188;
* conv7 (1 output channel) and relu_out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from reference_model.errors import InputError
from reference_model.polyphase import PhaseAxis, depth_to_space, phase_axes, phase_kernel

if TYPE_CHECKING:  # imported where used: TensorFlow is slow to load
    import keras

PROVENANCE_KEYS = ("rewrite", "rewrite_version", "source_fingerprint", "source_checkpoint_sha256")


def _depth_to_space_layer():
    import keras

    class DepthToSpace3D(keras.layers.Layer):
        """(B, Qx, Qy, Qz, Ux*Uy*Uz*C) -> (B, Qx*Ux, Qy*Uy, Qz*Uz, C), then the frozen crop."""

        def __init__(self, factors, channels, crop, size, **kwargs):
            super().__init__(**kwargs)
            self.factors, self.channels = tuple(factors), int(channels)
            self.crop, self.size = tuple(crop), tuple(size)

        def call(self, x):
            return depth_to_space(x, self.factors, self.channels, self.crop, self.size)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], *self.size, self.channels)

        def get_config(self):
            return {**super().get_config(), "factors": self.factors, "channels": self.channels,
                    "crop": self.crop, "size": self.size}

    return DepthToSpace3D


def _phase_conv(x, frozen, up: str, pad: str | None, conv: str, prefix: str, dtype=None,
                weights: tuple[np.ndarray, np.ndarray] | None = None):
    """Low-res pad -> one conv over all phases (in `dtype`; None: the global policy; `weights`:
    (kernel, bias) in place of the frozen conv's) -> crop to the blocks needed; returns the
    phase-layout tensor and its axes."""
    from keras import layers

    conv_layer = frozen.get_layer(conv)
    kernel, bias = (np.asarray(w) for w in conv_layer.get_weights()) if weights is None else weights
    padding = None if pad is None else frozen.get_layer(pad)
    axes = phase_axes(frozen.get_layer(up), padding, conv_layer)
    phases = int(np.prod([a.factor for a in axes]))
    x = layers.ZeroPadding3D(tuple(a.low_pad for a in axes), name=f"{prefix}_pad")(x)
    kernel = phase_kernel(kernel, axes)
    fused = layers.Conv3D(phases * conv_layer.filters, kernel.shape[:3], padding="valid",
                          name=f"{prefix}_conv", dtype=dtype)
    x = fused(x)
    fused.set_weights([kernel, np.tile(bias, phases)])
    return _crop_to(x, [a.blocks for a in axes], f"{prefix}_blocks"), axes


def _phase_block(x, frozen, up: str, pad: str, conv: str, leaky: str, bn: str | None, prefix: str):
    """`_phase_conv` -> leaky (-> tiled BN), all in the phase layout; returns it and its axes
    (depth-to-space and crop are left to the caller)."""
    from keras import layers

    x, axes = _phase_conv(x, frozen, up, pad, conv, prefix)
    phases = int(np.prod([a.factor for a in axes]))
    x = layers.LeakyReLU(negative_slope=frozen.get_layer(leaky).negative_slope,
                         name=f"{prefix}_leaky")(x)
    if bn is not None:
        source = frozen.get_layer(bn)
        norm = layers.BatchNormalization(epsilon=source.epsilon, name=f"{prefix}_bn")
        x = norm(x)
        norm.set_weights([np.tile(np.asarray(w), phases) for w in source.get_weights()])
    return x, axes


def _crop_to(x, sizes, name: str):
    """Keep the first `sizes` cells of each spatial axis (valid convs may give a few more)."""
    from keras import layers

    extra = [int(n - s) for n, s in zip(x.shape[1:4], sizes)]
    if not any(extra):
        return x
    return layers.Cropping3D(tuple((0, e) for e in extra), name=name)(x)


def _depth_to_space(x, factors, channels: int, crop, size, name: str, dtype=None):
    DepthToSpace3D = _depth_to_space_layer()
    return DepthToSpace3D(factors, channels, crop, size, name=name, dtype=dtype)(x)


def _space_conv_in_phase_domain(x, axes: list[PhaseAxis], conv, prefix: str):
    """A valid, stride-1 conv applied to depth_to_space(x) (cropped as `axes` say), computed on
    the phase layout itself: with the outputs' blocks aligned to the input's (offset by the crop
    s), output phase r, tap k reads input block +(r + k) // U at phase (r + k) % U. Returns the
    output's phase layout and, per axis, (blocks, crop start, outputs) for the final
    depth-to-space."""
    from keras import layers

    kernel = np.asarray(conv.kernel, dtype=np.float64)  # (Kx,Ky,Kz,Ci,Co)
    factors = [a.factor for a in axes]
    ci, co = kernel.shape[3:]
    outs = conv.output.shape[1:4]
    plan, pads = [], []
    for axis, k, p in zip(axes, kernel.shape[:3], outs):
        u, s = axis.factor, axis.crop_start
        first, last = s // u, (p - 1 + s) // u
        taps = (u - 1 + k - 1) // u + 1
        plan.append((first, last - first + 1, taps, s - u * first, int(p)))
        pads.append(max(0, last + taps - int(x.shape[1 + len(pads)])))
    # tap map per axis: (out phase, block offset, in phase, kernel tap)
    maps = []
    for (_, _, taps, _, _), axis, k in zip(plan, axes, kernel.shape[:3]):
        u = axis.factor
        m = np.zeros((u, taps, u, k))
        for r in range(u):
            for t in range(k):
                m[r, (r + t) // u, (r + t) % u, t] = 1.0
        maps.append(m)
    merged = np.einsum("ajbk,cldm,enfo,kmoip->jlnbdfiacep", *maps, kernel)
    taps3 = merged.shape[:3]
    merged = merged.reshape(*taps3, -1, int(np.prod(factors)) * co).astype(np.float32)
    x = layers.ZeroPadding3D(tuple((0, p) for p in pads), name=f"{prefix}_pad")(x)
    x = layers.Cropping3D(tuple((f, 0) for f, *_ in plan), name=f"{prefix}_from")(x) \
        if any(f for f, *_ in plan) else x
    fused = layers.Conv3D(merged.shape[-1], taps3, padding="valid", use_bias=False,
                          name=f"{prefix}_conv")
    x = fused(x)
    fused.set_weights([merged])
    x = _crop_to(x, [b for _, b, *_ in plan], f"{prefix}_blocks")
    return x, [(start, outputs) for _, _, _, start, outputs in plan]


def _fixed_image(frozen, latent):
    """The fixed-angle generator's image: dense+conv1 folded, conv2 and conv3 in phases, conv4 in
    conv3's phase domain, one depth-to-space of the 1-channel image."""
    from keras import layers

    weights, bias = fold_dense_into_conv1(frozen)
    folded = layers.Dense(weights.shape[1], name="dense_conv1")
    x = folded(latent)
    folded.set_weights([weights, bias])
    x = layers.Reshape(frozen.get_layer("conv1").output.shape[1:], name="conv1_grid")(x)
    for name in ("leaky1", "bn1"):
        x = frozen.get_layer(name)(x)  # shared layers: same weights, same dtype policy
    x, axes = _phase_block(x, frozen, "up1", "pad2", "conv2", "leaky2", "bn2", "phase2")
    x = _depth_to_space(x, [a.factor for a in axes], frozen.get_layer("conv2").filters,
                        [a.crop_start for a in axes], [a.outputs for a in axes], "phase2_d2s")
    x, axes = _phase_block(x, frozen, "up2", "pad3", "conv3", "leaky3", None, "phase3")
    x, crops = _space_conv_in_phase_domain(x, axes, frozen.get_layer("conv4"), "phase4")
    x = layers.ReLU(name="phase4_relu")(x)
    return _depth_to_space(x, [a.factor for a in axes], frozen.get_layer("conv4").filters,
                           [c[0] for c in crops], [c[1] for c in crops], "image", dtype="float32")


def _angle_image(frozen, latent):
    """The variable-angle generator's image: dense and reshape as frozen; up1 -> conv1 as one
    phase convolution in conv1's own dtype (float32 under every policy, models.CONV1_DTYPE);
    conv2 ... conv6 z-packed; each BatchNorm folded (`FoldedBatchNorm`); conv7 and relu_out
    themselves."""
    from keras import layers

    x = latent
    for name in ("dense", "reshape"):
        x = frozen.get_layer(name)(x)  # shared layers: same weights, same dtype policy
    conv1 = frozen.get_layer("conv1")
    bn = FoldedBatchNorm.of(frozen.get_layer("bn1"))
    kernel, bias = bn.into_conv_before(*conv1.get_weights())
    x, axes = _phase_conv(x, frozen, "up1", None, "conv1", "phase1", dtype=conv1.dtype_policy,
                          weights=(kernel, bias))
    x = layers.ReLU(name="phase1_relu", dtype=conv1.dtype_policy)(x)
    x = _depth_to_space(x, [a.factor for a in axes], conv1.filters, [a.crop_start for a in axes],
                        [a.outputs for a in axes], "phase1_d2s")
    x = _channel_offset(bn.offset, "phase1_offset")(x)
    names = {layer.name for layer in frozen.layers}
    for conv in ANGLE_PACKED_CONVS:
        i = conv.removeprefix("conv")
        after = FoldedBatchNorm.of(frozen.get_layer(f"bn{i}")) if f"bn{i}" in names else None
        x = _z_packed_conv(x, frozen.get_layer(f"pad{i}"), frozen.get_layer(conv), bn, after, f"packed{i}")
        bn = after
    for name in ("conv7", "relu_out"):
        x = frozen.get_layer(name)(x)
    return x


ANGLE_PACKED_CONVS = ("conv2", "conv3", "conv4", "conv5", "conv6")  # their 6 outputs fill 6 of 16 lanes
Z_PACKING = 2  # output positions along z per packed channel block: 6 -> 12 channels


@dataclass(frozen=True)
class FoldedBatchNorm:
    """An inference BatchNorm after a ReLU, per channel: BN(ReLU(y)) = s * ReLU(y) + t
    = sign * (ReLU(|s| y) + offset) with offset = sign * t. |s| goes into the convolution before
    (its output channels and bias; oneDNN fuses its ReLU), the sign into the next one's kernel
    (its input channels), and the offset is one addition between them. The activation keeps BN's
    magnitude (which int8's per-tensor ranges need), and zero padding between the two
    convolutions stays exact (sign * 0 = 0)."""

    magnitude: np.ndarray
    sign: np.ndarray
    offset: np.ndarray

    @classmethod
    def of(cls, bn) -> "FoldedBatchNorm":
        gamma, beta, mean, variance = (np.asarray(w, np.float64) for w in bn.get_weights())
        scale = gamma / np.sqrt(variance + bn.epsilon)
        if np.any(scale == 0):
            raise InputError(f"{bn.name}: a channel's BatchNorm scale is zero, which the inference rewrite "
                             "cannot fold into the next convolution; check the checkpoint's BatchNorm weights")
        sign = np.sign(scale)
        return cls(np.abs(scale), sign, sign * (beta - mean * scale))

    def into_conv_before(self, kernel: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (kernel, bias) of the convolution before, whose ReLU then takes the offset."""
        return np.asarray(kernel, np.float64) * self.magnitude, np.asarray(bias, np.float64) * self.magnitude

    def into_conv_after(self, kernel: np.ndarray) -> np.ndarray:
        """The kernel of the convolution after (Kx, Ky, Kz, Ci, Co): its inputs' signs."""
        return np.asarray(kernel, np.float64) * self.sign[:, None]


def _channel_offset(offset: np.ndarray, name: str):
    """x + offset over the last axis: what is left of a folded BatchNorm after its ReLU."""
    from keras import layers, ops

    values = tuple(float(f) for f in offset)
    return layers.Lambda(lambda x: ops.add(x, ops.convert_to_tensor(values, dtype=x.dtype)), name=name)


def packed_kernel(kernel: np.ndarray, factor: int) -> np.ndarray:
    """(Kx,Ky,Kz,Ci,Co) -> (Kx,Ky,Kz+factor-1,Ci,factor*Co): output channel p*Co + c computes
    output z-position (factor*j + p) of channel c when the conv strides by `factor` along z."""
    kx, ky, kz, ci, co = kernel.shape
    out = np.zeros((kx, ky, kz + factor - 1, ci, factor * co), dtype=np.float32)
    for p in range(factor):
        out[:, :, p:p + kz, :, p * co:(p + 1) * co] = kernel
    return out


def _z_packed_conv(x, padding, conv, before: FoldedBatchNorm, after: FoldedBatchNorm | None, prefix: str,
                   factor: int = Z_PACKING):
    """The frozen (ZeroPadding3D, valid Conv3D, ReLU[, BatchNorm]) as one conv striding by `factor`
    along z whose output channels hold `factor` consecutive z-positions (the same sums, in a
    channel count oneDNN's vector kernels fill; issue 25 §3), with the BatchNorms before and after
    folded into its weights; then the ReLU in that layout (fused into the convolution),
    depth-to-space along z (a reshape) and the folded BatchNorm's offset."""
    from keras import layers

    if conv.padding != "valid" or any(s != 1 for s in conv.strides):
        raise InputError(f"{conv.name}: only valid, stride-1 convolutions can be packed")
    outputs = [int(n) for n in conv.output.shape[1:4]]
    extra = -outputs[2] % factor  # one more z output when the count is odd, cropped below
    (px, py, (pz0, pz1)) = padding.padding
    x = layers.ZeroPadding3D((px, py, (pz0, pz1 + extra)), name=f"{prefix}_pad")(x)
    kernel, bias = before.into_conv_after(conv.kernel), np.asarray(conv.bias, np.float64)
    if after is not None:
        kernel, bias = after.into_conv_before(kernel, bias)
    kernel = packed_kernel(kernel, factor)
    packed = layers.Conv3D(kernel.shape[-1], kernel.shape[:3], strides=(1, 1, factor), padding="valid",
                           name=f"{prefix}_conv")
    x = layers.ReLU(name=f"{prefix}_relu")(packed(x))
    packed.set_weights([kernel, np.tile(bias, factor).astype(np.float32)])
    x = _depth_to_space(x, (1, 1, factor), conv.filters, (0, 0, 0), outputs, f"{prefix}_d2s")
    return x if after is None else _channel_offset(after.offset, f"{prefix}_offset")(x)


@dataclass(frozen=True)
class Rewrite:
    """One frozen generator's rewrite: its name and version (recorded in provenance) and how its
    image is built from the frozen model and a latent input."""

    name: str
    version: str
    image: Callable[[Any, Any], Any]


FIXED_REWRITE = Rewrite("3dgan-generator-polyphase", "2", _fixed_image)
ANGLE_REWRITE = Rewrite("3dgan-angle-generator-polyphase", "3", _angle_image)
REWRITES = {"3dgan-reference-generator": FIXED_REWRITE,  # keys: reference_model/fingerprints.json
            "3dgan-angle-reference-generator": ANGLE_REWRITE}


def rewrite_for(frozen) -> Rewrite:
    """The rewrite of `frozen`, chosen by its architecture fingerprint: the index arithmetic is
    only checked for the two frozen generators, so any other architecture is refused."""
    from reference_model.fingerprint import architecture_fingerprint, recorded_fingerprints

    source, recorded = architecture_fingerprint(frozen), recorded_fingerprints()
    for key, rewrite in REWRITES.items():
        if recorded.get(key) == source:
            return rewrite
    raise InputError(f"{frozen.name}: not a frozen 3dgan or 3dgan-angle generator (fingerprint "
                     f"{source[:12]}); only those have a polyphase rewrite")


def rewrite_generator(frozen) -> "keras.Model":
    """The polyphase generator with the frozen one's weights; `frozen` must be one of the frozen
    reference generators, built under the Keras dtype policy the rewrite should use."""
    import keras

    from reference_model.fingerprint import architecture_fingerprint

    rewrite = rewrite_for(frozen)
    latent = keras.Input(frozen.input.shape[1:], name="conditioned_latent")
    model = keras.Model(latent, rewrite.image(frozen, latent), name=rewrite.name)
    model.source_fingerprint = architecture_fingerprint(frozen)
    return model


def fold_dense_into_conv1(frozen) -> tuple[np.ndarray, np.ndarray]:
    """dense -> reshape -> conv1 is linear, so it is one dense layer: its weights are conv1
    applied to each row of dense's kernel, its bias conv1 applied to dense's bias plus conv1's.
    Computed in float64; returned as float32 (latent, conv1 outputs flattened channels-last)."""
    dense, conv = frozen.get_layer("dense"), frozen.get_layer("conv1")
    kernel, bias = (np.asarray(w, np.float64) for w in dense.get_weights())
    grid = frozen.get_layer("reshape").target_shape
    rows = np.concatenate([kernel, bias[None, :]]).reshape(-1, *grid)
    conv_kernel, conv_bias = (np.asarray(w, np.float64) for w in conv.get_weights())
    if dense.get_config()["activation"] != "linear" or conv.padding != "same" or tuple(conv.strides) != (1, 1, 1):
        raise InputError("folding needs a linear dense layer and a stride-1 'same' conv1")
    taps = conv_kernel.shape[:3]
    before = [(k - 1) // 2 for k in taps]
    padded = np.pad(rows, [(0, 0), *((b, k - 1 - b) for b, k in zip(before, taps)), (0, 0)])
    out = np.zeros((len(rows), *grid[:3], conv_kernel.shape[-1]))
    nx, ny, nz = grid[:3]
    for i, j, k in np.ndindex(*taps):
        out += padded[:, i:i + nx, j:j + ny, k:k + nz, :] @ conv_kernel[i, j, k]
    out = out.reshape(len(rows), -1)
    folded_bias = out[-1] + np.tile(conv_bias, nx * ny * nz)
    return out[:-1].astype(np.float32), folded_bias.astype(np.float32)


def provenance(frozen, checkpoint_sha256: str | None) -> dict:
    """What a rewritten generator records: the frozen architecture and weights it came from."""
    from reference_model.fingerprint import architecture_fingerprint

    rewrite = rewrite_for(frozen)
    values = (rewrite.name, rewrite.version, architecture_fingerprint(frozen), checkpoint_sha256)
    return dict(zip(PROVENANCE_KEYS, values))
