"""The frozen reference 3DGAN networks, layer-exact (3dgan-reference.md section 2).

Keras 3, channels-last. Everything here is frozen: any change to a layer changes the
architecture fingerprint (`reference_model.fingerprint`) and fails the drift test.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from reference_model import conv
from reference_model.dropout import ReferenceDropout
from reference_model.transforms import ANGLE_POWER

LEAKY_SLOPE = 0.3  # Keras 2 LeakyReLU default
BN_EPSILON = 1e-6
BN_MOMENTUM = 0.99
DROPOUT = 0.2
FIXED_LATENT = 200
ANGLE_LATENT = 256  # [E/100, theta, z(254)]
# The generators' first convolution (6x6x8 kernel over 8 channels) computes in float32 under any
# policy: oneDNN's AMX bfloat16 kernel for that shape is wrong (reference_model/numerics.py).
CONV1_DTYPE = "float32"


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def _leaky(name: str) -> layers.LeakyReLU:
    return layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=name)


def _discriminator_heads(x: keras.KerasTensor) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """Pool, flatten, then the real/fake probability and the energy regression, in float32."""
    x = layers.AveragePooling3D((2, 2, 2), name="pool")(x)
    h = layers.Flatten(name="flatten")(x)
    fake = layers.Dense(1, activation="sigmoid", name="generation", dtype="float32")(h)
    aux = layers.Dense(1, activation="linear", name="auxiliary", dtype="float32")(h)
    return fake, aux


def fixed_generator() -> keras.Model:
    """Fixed-angle generator: (E/100) * z (200) -> 25x25x25x1 image in x100 GeV units."""
    latent = keras.Input((FIXED_LATENT,), name="conditioned_latent")
    x = layers.Dense(64 * 7 * 7, name="dense")(latent)
    x = layers.Reshape((7, 7, 8, 8), name="reshape")(x)
    x = conv.Conv3D(64, (6, 6, 8), padding="same", kernel_initializer="he_uniform", name="conv1",
                      dtype=CONV1_DTYPE)(x)
    x = _leaky("leaky1")(x)
    x = _bn("bn1")(x)
    x = layers.UpSampling3D((2, 2, 2), name="up1")(x)
    x = layers.ZeroPadding3D((2, 2, 0), name="pad2")(x)
    x = conv.Conv3D(6, (6, 5, 8), padding="valid", kernel_initializer="he_uniform", name="conv2")(x)
    x = _leaky("leaky2")(x)
    x = _bn("bn2")(x)
    x = layers.UpSampling3D((2, 2, 3), name="up2")(x)
    x = layers.ZeroPadding3D((1, 0, 3), name="pad3")(x)
    x = conv.Conv3D(6, (3, 3, 8), padding="valid", kernel_initializer="he_uniform", name="conv3")(x)
    x = _leaky("leaky3")(x)
    x = conv.Conv3D(1, (2, 2, 2), padding="valid", use_bias=False,
                      kernel_initializer="glorot_normal", name="conv4")(x)
    image = layers.ReLU(name="relu_out", dtype="float32")(x)
    return keras.Model(latent, image, name="generator_3dgan")


def _ecal_sum(image: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(image, tf.float32), axis=(1, 2, 3))


def fixed_discriminator() -> keras.Model:
    """Fixed-angle discriminator: image -> [real/fake, E/100, ECAL sum]."""
    image = keras.Input((25, 25, 25, 1), name="image")
    x = conv.Conv3D(32, (5, 5, 5), padding="same", name="conv1")(image)
    x = _leaky("leaky1")(x)
    x = ReferenceDropout(DROPOUT, name="drop1")(x)
    for i, pad in ((2, 2), (3, 2), (4, 1)):
        x = layers.ZeroPadding3D((pad, pad, pad), name=f"pad{i}")(x)
        x = conv.Conv3D(8, (5, 5, 5), padding="valid", name=f"conv{i}")(x)
        x = _leaky(f"leaky{i}")(x)
        x = _bn(f"bn{i}")(x)
        x = ReferenceDropout(DROPOUT, name=f"drop{i}")(x)
    fake, aux = _discriminator_heads(x)
    ecal = layers.Lambda(_ecal_sum, name="ecal", output_shape=(1,))(image)
    return keras.Model(image, [fake, aux, ecal], name="discriminator_3dgan")


def angle_generator() -> keras.Model:
    """Variable-angle generator: [E/100, theta, z(254)] -> 51x51x25x1 image, (GeV x 50) ** 0.85."""
    latent = keras.Input((ANGLE_LATENT,), name="conditioned_latent")
    x = layers.Dense(5184, name="dense")(latent)
    x = layers.Reshape((9, 9, 8, 8), name="reshape")(x)
    x = layers.UpSampling3D((6, 6, 6), name="up1")(x)
    x = conv.Conv3D(8, (6, 6, 8), padding="valid", kernel_initializer="he_uniform", name="conv1",
                      dtype=CONV1_DTYPE)(x)
    x = layers.ReLU(name="relu1")(x)
    x = _bn("bn1")(x)
    blocks = (((2, 2, 1), 6, (4, 4, 6), True), ((2, 2, 1), 6, (4, 4, 6), True),
              ((2, 2, 1), 6, (4, 4, 6), True), ((1, 1, 0), 6, (3, 3, 5), True),
              ((1, 1, 0), 6, (3, 3, 3), False))
    for i, (pad, filters, kernel, norm) in enumerate(blocks, start=2):
        x = layers.ZeroPadding3D(pad, name=f"pad{i}")(x)
        x = conv.Conv3D(filters, kernel, padding="valid", kernel_initializer="he_uniform",
                          name=f"conv{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if norm:
            x = _bn(f"bn{i}")(x)
    x = conv.Conv3D(1, (2, 2, 2), padding="valid", kernel_initializer="glorot_normal",
                      name="conv7")(x)
    image = layers.ReLU(name="relu_out", dtype="float32")(x)
    return keras.Model(latent, image, name="generator_3dgan_angle")


def measured_angle(image: tf.Tensor, epsilon: float = 1e-7) -> tf.Tensor:
    """Measured incidence angle of (B, X, Y, Z, 1) images in radians (section 4.3, `ecal_angle`).

    The angle is the energy-weighted mean over layers of pi/2 - atan(slope of the y centroid
    against depth); 100 where the image is empty, as the reference does.
    """
    img = tf.cast(image[..., 0], tf.float32)
    nx, ny, nz = img.shape[1], img.shape[2], img.shape[3]
    cx = tf.range(nx, dtype=tf.float32) + 0.5
    cy = tf.range(ny, dtype=tf.float32) + 0.5
    cz = tf.range(nz, dtype=tf.float32) + 0.5
    total = tf.reduce_sum(img, axis=(1, 2, 3))
    safe_total = tf.where(total > 0, total, 1.0)
    x_ref = tf.einsum("bxyz,x->b", img, cx) / safe_total
    y_ref = tf.einsum("bxyz,y->b", img, cy) / safe_total
    z_ref = tf.einsum("bxyz,z->b", img, cz) / safe_total
    layer_sum = tf.reduce_sum(img, axis=(1, 2))  # (B, Z)
    safe_layer = tf.where(layer_sum > 0, layer_sum, 1.0)
    x_mid = tf.where(layer_sum > 0, tf.einsum("bxyz,x->bz", img, cx) / safe_layer, 0.0)
    y_mid = tf.where(layer_sum > 0, tf.einsum("bxyz,y->bz", img, cy) / safe_layer, 0.0)
    dz = cz[None, :] - z_ref[:, None]
    zproj = tf.sqrt(tf.maximum(tf.square(x_mid - x_ref[:, None]) + tf.square(dz), epsilon))
    slope = (y_mid - y_ref[:, None]) / zproj
    slope = tf.where(dz < 0, -slope, slope)
    angle_z = math.pi / 2 - tf.atan(slope)
    weight = cz[None, :] * tf.cast(layer_sum > 0, tf.float32)
    angle = tf.reduce_sum(angle_z * weight, axis=1) / tf.maximum(tf.reduce_sum(weight, axis=1), epsilon)
    return tf.where(total > 0, angle, 100.0)[:, None]


def _undo_power(image: tf.Tensor) -> tf.Tensor:
    return tf.pow(tf.maximum(tf.cast(image, tf.float32), 0.0), 1.0 / ANGLE_POWER)


def angle_discriminator() -> keras.Model:
    """Variable-angle discriminator: image -> [real/fake, E/100, measured angle, ECAL sum (raw)]."""
    image = keras.Input((51, 51, 25, 1), name="image")
    x = conv.Conv3D(16, (5, 6, 6), padding="same", name="conv1")(image)
    x = _leaky("leaky1")(x)
    x = ReferenceDropout(DROPOUT, name="drop1")(x)
    for i, pad_z in ((2, True), (3, True), (4, False)):
        if pad_z:
            x = layers.ZeroPadding3D((0, 0, 1), name=f"pad{i}")(x)
        x = conv.Conv3D(8, (5, 6, 6), padding="valid", name=f"conv{i}")(x)
        x = _leaky(f"leaky{i}")(x)
        x = _bn(f"bn{i}")(x)
        x = ReferenceDropout(DROPOUT, name=f"drop{i}")(x)
    fake, aux = _discriminator_heads(x)
    inv = layers.Lambda(_undo_power, name="inv_power", output_shape=(51, 51, 25, 1))(image)
    ang = layers.Lambda(measured_angle, name="angle", output_shape=(1,))(inv)
    ecal = layers.Lambda(_ecal_sum, name="ecal", output_shape=(1,))(inv)
    return keras.Model(image, [fake, aux, ang, ecal], name="discriminator_3dgan_angle")
