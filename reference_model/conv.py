"""Conv3D whose bias gradient is summed in float32 under any precision policy.

Keras adds a convolution's bias with a broadcasting add in the layer's compute dtype, so under
mixed_bfloat16 the bias gradient is a bfloat16 reduction over batch x every output voxel. With
8 mantissa bits the running sum stops growing once it is 256 times the addend: TensorFlow 2.21 on
CPU returns d sum(y) / d bias = 256 instead of 17,576 for an (8, 13, 13, 13) output, and the
reference step's conv biases trained on gradients off by 18-145% (docs/numerics.md).

This layer is Keras's Conv3D with the same configuration, weights and forward arithmetic (the add
still rounds to the compute dtype); only the bias gradient differs: the upstream gradient is cast
to float32 before it is summed, and the sum is rounded once on its way back to the float32
variable through Keras's autocast (17,536 for the 17,576 above: bf16 rounding, not a lost sum).

It keeps Keras's class name, `Conv3D`, on purpose: Keras keys a `.weights.h5` file's layout by
each layer's class name, and the architecture fingerprint hashes it, so under that name the
shipped checkpoints load as they are and the recorded fingerprints still hold.
"""
from __future__ import annotations

import keras
import tensorflow as tf


@tf.custom_gradient
def bias_add_float32_gradient(outputs: tf.Tensor, bias: tf.Tensor):
    """`outputs + bias` (channels last) in outputs' dtype, with the bias gradient summed in float32."""

    def gradient(upstream: tf.Tensor):
        axes = list(range(upstream.shape.rank - 1))
        bias_gradient = tf.reduce_sum(tf.cast(upstream, tf.float32), axis=axes)
        return upstream, tf.cast(bias_gradient, bias.dtype)

    return tf.nn.bias_add(outputs, tf.cast(bias, outputs.dtype)), gradient


@keras.saving.register_keras_serializable(package="reference_model")
class Conv3D(keras.layers.Conv3D):
    """Keras Conv3D (channels last) with its bias gradient summed in float32 (module doc)."""

    def call(self, inputs):
        if self.data_format != "channels_last":
            raise ValueError("reference_model.conv.Conv3D adds its bias channels-last, as the reference models are")
        outputs = self.convolution_op(inputs, self.kernel)
        if self.use_bias:
            # A tensor, not the variable: the gradient reaches the variable through the read
            # (and, under a mixed policy, through Keras's cast of it to the compute dtype).
            outputs = bias_add_float32_gradient(outputs, tf.convert_to_tensor(self.bias.value))
        return outputs if self.activation is None else self.activation(outputs)
