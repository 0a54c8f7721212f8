"""Models in pixel space: the wrapper, the 11 classifiers of the IDGI paper, and EfficientNet-Lite.

* :mod:`.pixel`: :func:`pixel_model` puts a model's preprocessing inside it, so it takes RGB
  float32 pixels in [0, 255] (docs/conventions.md#pixel-space);
* :mod:`.zoo`: :func:`load`, the paper's 11 Keras Applications and EfficientNet-Lite0/1/2
  (docs/models-and-data.md);
* :mod:`.efficientnet_lite`: EfficientNet-Lite in Keras and its converted-weights cache;
* :mod:`.torch_pth`: a restricted reader of legacy ``torch.save`` state dicts.
"""

from . import efficientnet_lite, torch_pth, zoo
from .pixel import PIXEL_RANGE, PREPROCESS_MODES, RGB_MODES, Preprocess, pixel_model, preprocess
from .zoo import (
    ALIASES,
    DEFAULT_MODEL,
    LITE_MODELS,
    MODELS,
    PAPER_MODELS,
    WeightsUnavailableError,
    ZooModel,
    canonical_name,
    keras_cache_dir,
    load,
)

__all__ = [
    "ALIASES", "DEFAULT_MODEL", "LITE_MODELS", "MODELS", "PAPER_MODELS", "PIXEL_RANGE", "PREPROCESS_MODES",
    "RGB_MODES", "Preprocess", "WeightsUnavailableError", "ZooModel", "canonical_name", "efficientnet_lite",
    "keras_cache_dir", "load", "pixel_model", "preprocess", "torch_pth", "zoo",
]
