"""The aliasing check of Muzellec et al. (ICML 2024; docs/spectral.md).

The same network with blur-then-subsample downsampling.

:func:`antialiased` clones a Keras model and replaces every stride-2
``Conv2D``, ``DepthwiseConv2D`` and ``MaxPooling2D`` by the same layer at
stride 1 followed by :class:`BlurPool` (a [1, 2, 1] x [1, 2, 1] / 16
binomial blur, then keep every other pixel; Zhang 2019, "Making
convolutional networks shift-invariant again"). Weights are shared with the
original layers (copied into the stride-1 twins), so the two networks differ
only in how they downsample, and output shapes are unchanged.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

_BINOMIAL = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0
DOWNSAMPLING = ("Conv2D", "DepthwiseConv2D", "MaxPooling2D")


@keras.saving.register_keras_serializable(package="idgi_tf")
class BlurPool(keras.layers.Layer):
    """Low-pass (binomial 3x3, per channel, zero 'same' padding), then keep every other row and column."""

    def call(self, inputs):
        channels = inputs.shape[-1]
        kernel = tf.constant(np.repeat(_BINOMIAL[:, :, None, None], channels, axis=2), inputs.dtype)
        blurred = tf.nn.depthwise_conv2d(inputs, kernel, strides=[1, 1, 1, 1], padding="SAME")
        return blurred[:, ::2, ::2, :]

    def compute_output_shape(self, input_shape):
        half = [None if s is None else -(-s // 2) for s in input_shape[1:3]]
        return (input_shape[0], *half, input_shape[3])


def _strided(layer) -> bool:
    return type(layer).__name__ in DOWNSAMPLING and tuple(layer.strides) == (2, 2)


def _antialiased_layer(layer):
    """``layer`` itself (shared weights), or its stride-1 twin followed by BlurPool."""
    if not _strided(layer):
        return layer
    config = {**layer.get_config(), "strides": (1, 1), "name": layer.name + "_stride1"}
    twin = type(layer).from_config(config)
    twin.build(layer.input.shape)
    twin.set_weights(layer.get_weights())
    return keras.Sequential([twin, BlurPool(name=layer.name + "_blurpool")], name=layer.name + "_antialiased")


def antialiased(model: keras.Model) -> keras.Model:
    """A copy of ``model`` whose stride-2 downsampling blurs before it subsamples (see the module doc)."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a Keras model, got {type(model).__name__}")
    clone = keras.models.clone_model(model, clone_function=_antialiased_layer, recursive=True)
    replaced = sum(1 for layer in _all_layers(clone) if type(layer).__name__ == "BlurPool")
    if replaced == 0:
        raise ValueError(f"model {model.name!r} has no stride-2 Conv2D, DepthwiseConv2D or MaxPooling2D to replace")
    return clone


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
