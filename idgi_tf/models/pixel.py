"""Models in pixel space: every model takes RGB float32 pixels in [0, 255].

Attributions live in pixel space (docs/conventions.md#pixel-space): inputs are RGB float32
in [0, 255] and the black baseline is all zeros for every model, whatever its
``preprocess_input`` mode. :func:`pixel_model` puts the preprocessing inside
the differentiated model.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from .. import _checks

# Keras' ImageNet statistics (keras.applications.imagenet_utils).
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

PREPROCESS_MODES = ("tf", "torch", "caffe", "lite", "none")
RGB_MODES = ("torch", "caffe")  # per-channel statistics of RGB images
PIXEL_RANGE = (0.0, 255.0)  # what every pixel model takes (its ``pixel_range`` attribute)


def preprocess(images: tf.Tensor, mode: str) -> tf.Tensor:
    """Keras ``imagenet_utils.preprocess_input`` for RGB [0, 255] input, as TF ops.

    * ``tf``: ``x / 127.5 - 1``
    * ``torch``: ``(x / 255 - mean) / std`` (ImageNet mean/std)
    * ``caffe``: RGB -> BGR, then minus the ImageNet BGR mean
    * ``lite``: ``(x - 127) / 128`` (EfficientNet-Lite's TF reference, not in Keras)
    * ``none``: identity
    """
    _checks.choice(mode, "mode", PREPROCESS_MODES)
    if mode == "tf":
        return images / 127.5 - 1.0
    if mode == "lite":
        return (images - 127.0) / 128.0
    if mode == "torch":
        mean = tf.constant(_TORCH_MEAN, images.dtype)
        return (images / 255.0 - mean) / tf.constant(_TORCH_STD, images.dtype)
    if mode == "caffe":
        return images[..., ::-1] - tf.constant(_CAFFE_MEAN_BGR, images.dtype)
    return images


@keras.saving.register_keras_serializable(package="idgi_tf")
class Preprocess(keras.layers.Layer):
    """A layer applying :func:`preprocess` with a fixed mode (serialisable)."""

    def __init__(self, mode: str = "tf", **kwargs):
        super().__init__(**kwargs)
        self.mode = _checks.choice(mode, "mode", PREPROCESS_MODES)

    def call(self, inputs):
        return preprocess(inputs, self.mode)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class _PreprocessFunction(keras.layers.Layer):
    """Wraps a user's preprocessing callable as a layer (not serialisable)."""

    def __init__(self, function: Callable, **kwargs):
        super().__init__(**kwargs)
        self.function = function

    def call(self, inputs):
        return self.function(inputs)


def pixel_model(keras_model: keras.Model, preprocess: str | Callable = "tf", *, name: str | None = None):
    """Wrap ``keras_model`` so it takes RGB float32 pixels in [0, 255].

    Args:
      keras_model: a built Keras model taking preprocessed images (N, H, W, C).
      preprocess: a mode of :func:`preprocess` (``"tf"``, ``"torch"``,
        ``"caffe"``, ``"none"``) or a callable on tensors, e.g.
        ``keras.applications.resnet_v2.preprocess_input``.
      name: name of the wrapper model (default ``pixel_<model name>``).

    Returns:
      A functional Keras model ``pixels -> keras_model(preprocess(pixels))``;
      gradients flow through the preprocessing, so attributions are per pixel.
      Its ``pixel_range`` attribute, ``(0.0, 255.0)``, makes :func:`idgi_tf.attribute`,
      the metrics and :func:`idgi_tf.data.load_image` warn about float images
      in [0, 1] (set it on your own models to get the same check).

    Example:
      >>> net = keras.applications.ResNet50V2(weights=None)
      >>> model = pixel_model(net, "tf")
      >>> model(tf.zeros((1, 224, 224, 3)))  # the black image
    """
    if not isinstance(keras_model, keras.Model):
        raise TypeError(f"keras_model must be a keras.Model, got {type(keras_model).__name__}")
    shape = keras_model.input_shape
    if not isinstance(shape, tuple) or len(shape) != 4:
        raise ValueError(f"keras_model must take images (N, H, W, C), its input shape is {shape}")
    if isinstance(preprocess, str):
        _checks.choice(preprocess, "preprocess", PREPROCESS_MODES)
        if preprocess in RGB_MODES and shape[-1] != 3:
            raise ValueError(
                f"preprocess={preprocess!r} subtracts per-channel RGB statistics, so it needs a model "
                f"taking 3 channels; this one takes {shape[-1]}; use 'tf', 'lite', 'none' or a callable"
            )
        layer = Preprocess(preprocess, name="preprocess")
    elif callable(preprocess):
        layer = _PreprocessFunction(preprocess, name="preprocess")
    else:
        raise TypeError(f"preprocess must be a mode name or a callable, got {preprocess!r}")
    pixels = keras.Input(shape=shape[1:], name="pixels")
    outputs = keras_model(layer(pixels))
    model = keras.Model(pixels, outputs, name=name or f"pixel_{keras_model.name}")
    model.pixel_range = PIXEL_RANGE  # read by attribute and the metrics to warn about images in [0, 1]
    return model
