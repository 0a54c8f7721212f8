"""Attribution maps as colours: PAIR's two scalings, then any matplotlib colormap, as RGB arrays.

A map is first reduced over channels (``how``) and scaled the way PAIR's
notebooks show it (these scalings define what is seen, so they are ours):

* ``scale="grayscale"`` (PAIR ``VisualizeImageGrayscale``):
  ``(v - min) / (percentile(v, p) - min)`` clipped to [0, 1];
* ``scale="diverging"`` (PAIR ``VisualizeImageDiverging``):
  ``v / percentile(|v|, p)`` clipped to [-1, 1], drawn on [-1, 1].

Where the percentile leaves nothing to scale by (a map with fewer hot pixels
than ``100 - p`` percent), the maximum is used, so a single hot pixel is
still the brightest one. The scaled values are then coloured by a matplotlib
colormap, exactly (``matplotlib.colormaps[cmap]`` through a ``Normalize`` on
[0, 1] or [-1, 1]); ``cmap="diverging"`` is short for ``cmap="RdBu_r",
scale="diverging"``.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize

from .. import _checks
from ..metrics._maps import finite_maps

SCALES = ("grayscale", "diverging")
DIVERGING = "diverging"
DIVERGING_CMAP = "RdBu_r"
SCALE_RANGES = {"grayscale": (0.0, 1.0), "diverging": (-1.0, 1.0)}


def colormap(cmap) -> Colormap:
    """The matplotlib colormap named ``cmap`` (any name in ``matplotlib.colormaps``), or ``cmap`` itself."""
    if isinstance(cmap, Colormap):
        return cmap
    if not isinstance(cmap, str) or cmap not in matplotlib.colormaps:
        raise ValueError(
            f"cmap must be a matplotlib colormap name (e.g. 'magma', 'gray', 'inferno', 'RdBu_r') or "
            f"'{DIVERGING}', got {cmap!r}"
        )
    return matplotlib.colormaps[cmap]


def colouring(cmap="magma", scale: str = "grayscale") -> tuple[ScalarMappable, str]:
    """The colormap and ``Normalize`` that colour scaled values, and the scale: ``(mappable, scale)``."""
    if isinstance(cmap, str) and cmap == DIVERGING:
        cmap, scale = DIVERGING_CMAP, DIVERGING
    _checks.choice(scale, "scale", SCALES)
    low, high = SCALE_RANGES[scale]
    return ScalarMappable(Normalize(low, high), colormap(cmap)), scale


def scaled_map(attribution, *, how: str = "sum_abs", clip_percentile: float = 99.0,
               scale: str = "grayscale") -> np.ndarray:
    """An (H, W) or (H, W, C) map reduced with ``how`` and scaled as PAIR shows it (float64 (H, W)).

    ``scale="grayscale"`` gives values in [0, 1], ``"diverging"`` in [-1, 1] (see the module doc).
    """
    _checks.choice(scale, "scale", SCALES)
    clip_percentile = _checks.number_in(clip_percentile, "clip_percentile", 0.0, 100.0, low_open=True)
    array = np.asarray(attribution, dtype=np.float64)
    if array.ndim not in (2, 3):
        raise ValueError(f"map must have shape (H, W) or (H, W, C), got {array.shape}")
    flat = finite_maps(array[None], how)[0]
    if scale == DIVERGING:
        bound = np.percentile(np.abs(flat), clip_percentile)
        if bound == 0:  # a sparse map: fewer nonzero values than the percentile leaves out
            bound = np.abs(flat).max()
        return np.clip(flat / bound, -1.0, 1.0) if bound > 0 else np.zeros_like(flat)
    low, high = flat.min(), np.percentile(flat, clip_percentile)
    if high == low:  # a sparse map: the percentile is the minimum, so scale to the maximum
        high = flat.max()
    return np.clip((flat - low) / (high - low), 0.0, 1.0) if high > low else np.zeros_like(flat)


def heatmap(attribution, *, how: str = "sum_abs", clip_percentile: float = 99.0, cmap="magma",
            scale: str = "grayscale") -> np.ndarray:
    """An attribution map as an RGB uint8 image (H, W, 3), e.g. for TensorBoard or your own pictures.

    Args:
      attribution: (H, W) or (H, W, C); 3-D maps are reduced over channels with ``how``.
      how: ``"sum_abs"`` (default), ``"sum"`` or ``"abs_sum"`` (see ``metrics.reduce_channels``).
      clip_percentile: values beyond this percentile saturate (PAIR: 99).
      cmap: any matplotlib colormap name (``"magma"``, ``"gray"``, ``"inferno"``, ``"RdBu_r"``, ...) or a
        ``Colormap``; ``"diverging"`` is short for ``cmap="RdBu_r", scale="diverging"``.
      scale: ``"grayscale"`` or ``"diverging"`` (PAIR's scalings; use ``"diverging"`` with ``how="sum"``).

    The colours are ``matplotlib.colormaps[cmap]`` of :func:`scaled_map`'s values, exactly.

    Example:
      >>> rgb = heatmap(maps[0], cmap="diverging", how="sum")
    """
    mappable, scale = colouring(cmap, scale)
    values = scaled_map(attribution, how=how, clip_percentile=clip_percentile, scale=scale)
    return mappable.to_rgba(values, bytes=True)[..., :3]


def as_rgb8(image) -> np.ndarray:
    """An image as RGB uint8: floats in [0, 255] are rounded, gray is repeated."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise ValueError(f"image must have shape (H, W), (H, W, 1) or (H, W, 3), got {array.shape}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if array.dtype == np.uint8:
        return array
    return np.clip(np.round(array.astype(np.float64)), 0, 255).astype(np.uint8)


def overlay(image, attribution, *, alpha: float = 0.5, **heatmap_options) -> np.ndarray:
    """The heatmap of ``attribution`` blended onto ``image``: ``(1 - alpha) image + alpha heat``, RGB uint8."""
    alpha = _checks.number_in(alpha, "alpha", 0.0, 1.0)
    photo = as_rgb8(image)
    heat = heatmap(attribution, **heatmap_options)
    if heat.shape != photo.shape:
        raise ValueError(f"map {heat.shape[:2]} and image {photo.shape[:2]} must have the same height and width")
    return np.round((1 - alpha) * photo + alpha * heat.astype(np.float64)).astype(np.uint8)
