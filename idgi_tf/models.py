"""Models in pixel space: the wrapper, and the 11 classifiers of the IDGI paper.

Attributions live in pixel space (REFERENCE section 1): inputs are RGB float32
in [0, 255] and the black baseline is all zeros for every model, whatever its
``preprocess_input`` mode. :func:`pixel_model` puts the preprocessing inside
the differentiated model; :func:`load` builds any of the paper's Keras
Applications that way (REFERENCE section 5).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import keras
import tensorflow as tf

from . import _checks

# Keras' ImageNet statistics (keras.applications.imagenet_utils).
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

PREPROCESS_MODES = ("tf", "torch", "caffe", "none")


def preprocess(images: tf.Tensor, mode: str) -> tf.Tensor:
    """Keras ``imagenet_utils.preprocess_input`` for RGB [0, 255] input, as TF ops.

    * ``tf``: ``x / 127.5 - 1``
    * ``torch``: ``(x / 255 - mean) / std`` (ImageNet mean/std)
    * ``caffe``: RGB -> BGR, then minus the ImageNet BGR mean
    * ``none``: identity
    """
    _checks.choice(mode, "mode", PREPROCESS_MODES)
    if mode == "tf":
        return images / 127.5 - 1.0
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
        layer = Preprocess(preprocess, name="preprocess")
    elif callable(preprocess):
        layer = _PreprocessFunction(preprocess, name="preprocess")
    else:
        raise TypeError(f"preprocess must be a mode name or a callable, got {preprocess!r}")
    pixels = keras.Input(shape=shape[1:], name="pixels")
    outputs = keras_model(layer(pixels))
    return keras.Model(pixels, outputs, name=name or f"pixel_{keras_model.name}")



# --------------------------------------------------------------------------- the zoo


@dataclasses.dataclass(frozen=True)
class ZooModel:
    """One Keras Applications classifier of the IDGI paper.

    Attributes:
      name: the ``keras.applications`` constructor.
      size: the input side it was trained at (and the paper used).
      min_size: the smallest side Keras builds it at (``input_size``).
      preprocess: its ``preprocess_input`` mode (see :func:`preprocess`).
      weights_file: the file Keras looks for in ``$KERAS_HOME/models``.
    """

    name: str
    size: int
    min_size: int
    preprocess: str
    weights_file: str

    def build(self, **kwargs) -> keras.Model:
        return getattr(keras.applications, self.name)(**kwargs)


def _zoo(*rows) -> dict:
    return {
        name: ZooModel(name, size, min_size, mode, f"{stem}_weights_tf_dim_ordering_tf_kernels{suffix}.h5")
        for name, size, min_size, mode, stem, suffix in rows
    }


MODELS: dict[str, ZooModel] = _zoo(
    ("DenseNet121", 224, 32, "torch", "densenet121", ""),
    ("DenseNet169", 224, 32, "torch", "densenet169", ""),
    ("DenseNet201", 224, 32, "torch", "densenet201", ""),
    ("InceptionV3", 299, 75, "tf", "inception_v3", ""),
    ("MobileNetV2", 224, 32, "tf", "mobilenet_v2", "_1.0_224"),
    ("ResNet50V2", 224, 32, "tf", "resnet50v2", ""),
    ("ResNet101V2", 224, 32, "tf", "resnet101v2", ""),
    ("ResNet152V2", 224, 32, "tf", "resnet152v2", ""),
    ("VGG16", 224, 32, "caffe", "vgg16", ""),
    ("VGG19", 224, 32, "caffe", "vgg19", ""),
    ("Xception", 299, 71, "tf", "xception", ""),
)

# The IDGI paper writes "ResNet151V2" for Keras' ResNet152V2.
ALIASES = {"ResNet151V2": "ResNet152V2"}


def canonical_name(name: str) -> str:
    """Keras' spelling of a zoo model name (accepts the paper's aliases)."""
    name = ALIASES.get(name, name)
    if name not in MODELS:
        raise ValueError(
            f"model name must be one of {sorted(MODELS)} (or {sorted(ALIASES)}), got {name!r}"
        )
    return name


def keras_cache_dir() -> str:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` (default ``~/.keras/models``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


class WeightsUnavailableError(FileNotFoundError):
    """ImageNet weights are neither in the Keras cache nor downloadable."""


def _imagenet_network(spec: ZooModel, activation):
    try:
        return spec.build(weights="imagenet", classifier_activation=activation)
    except Exception as error:  # Keras raises a bare Exception when the download fails
        cached = os.path.join(keras_cache_dir(), spec.weights_file)
        if os.path.exists(cached):
            raise
        raise WeightsUnavailableError(
            f"ImageNet weights for {spec.name} are not in the Keras cache and could not be downloaded "
            f"({type(error).__name__}: {error}).\n"
            f"Either put {spec.weights_file} into {keras_cache_dir()} (Keras' cache; set KERAS_HOME "
            f"to move it), or pass weights=PATH to a local copy of that file."
        ) from error


def load(name: str, weights: str | None = "imagenet", *, input_size: int | None = None, logits: bool = False):
    """Build a zoo classifier that takes RGB float32 pixels in [0, 255].

    Args:
      name: a key of :data:`MODELS` (Keras' spelling; "ResNet151V2" is accepted).
      weights: ``"imagenet"`` (Keras cache, or download when online),
        a path to a ``.h5`` / ``.weights.h5`` / ``.keras`` file with the
        network's weights (Keras' own ImageNet file works), or ``None`` for
        random initialisation -- for tests and smoke runs only: its
        attributions and scores mean nothing.
      input_size: build at this square side instead of the native one (at
        least ``MODELS[name].min_size``); only with random or file weights
        that fit it. ImageNet weights need the native size.
      logits: return logits instead of softmax probabilities.

    Returns:
      ``pixel_model(network, MODELS[name].preprocess)``: (N, S, S, 3) pixels ->
      (N, 1000) probabilities (or logits).

    Example:
      >>> model = idgi_tf.models.load("ResNet50V2")              # needs the weights
      >>> smoke = idgi_tf.models.load("ResNet50V2", None, input_size=64)
    """
    name = canonical_name(name)
    spec = MODELS[name]
    size = spec.size if input_size is None else _checks.positive_int(input_size, "input_size")
    if size < spec.min_size:
        raise ValueError(f"input_size must be at least {spec.min_size} for {name}, got {size}")
    activation = None if logits else "softmax"
    if weights == "imagenet":
        if size != spec.size:
            raise ValueError(f"ImageNet weights of {name} need input_size {spec.size} (or None), got {size}")
        network = _imagenet_network(spec, activation)
    elif weights is None or isinstance(weights, (str, os.PathLike)):
        network = spec.build(weights=None, input_shape=(size, size, 3), classifier_activation=activation)
        if weights is not None:
            _load_weights_file(network, os.fspath(weights))
    else:
        raise TypeError(f"weights must be 'imagenet', a file path or None, got {weights!r}")
    return pixel_model(network, spec.preprocess, name=name)


def _load_weights_file(network: keras.Model, path: str) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.endswith(".keras"):
        network.set_weights(keras.models.load_model(path, compile=False).get_weights())
    elif path.endswith(".h5"):
        network.load_weights(path)
    else:
        raise ValueError(f"weights must be a .h5, .weights.h5 or .keras file, got {path}")
