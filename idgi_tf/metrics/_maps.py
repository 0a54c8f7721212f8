"""Feature maps from attributions (2-D maps for images), and the checks every metric shares.

A *feature* is one position of the inputs without their last axis: a pixel over
its channels for images (N, H, W, C), a token over its embedding dims for
sequences (N, T, D); for tabular inputs (N, D) a feature is one column.
"""

from __future__ import annotations

import numpy as np

from .. import _checks

REDUCTIONS = ("sum", "abs_sum", "sum_abs")


def reduce_channels(maps, how: str = "sum") -> np.ndarray:
    """Reduce (N, H, W, C) attributions to (N, H, W) maps; 2-D maps pass through.

    * ``sum``: sum over channels, signed (the pinned default for ranking)
    * ``abs_sum``: ``|sum over channels|``
    * ``sum_abs``: sum of ``|value|`` over channels (PAIR's grayscale visualisation)
    """
    _checks.choice(how, "how", REDUCTIONS)
    maps = np.asarray(maps)
    if maps.ndim == 3:
        return maps.astype(np.float64)
    if maps.ndim != 4:
        raise ValueError(f"maps must have shape (N, H, W, C) or (N, H, W), got {maps.shape}")
    return _reduce_last(maps, how)


def _reduce_last(maps: np.ndarray, how: str) -> np.ndarray:
    """``how`` over the last axis of ``maps``, in float64."""
    maps = maps.astype(np.float64)
    if how == "sum":
        return maps.sum(axis=-1)
    if how == "abs_sum":
        return np.abs(maps.sum(axis=-1))
    return np.abs(maps).sum(axis=-1)


def finite_maps(maps, how: str = "sum") -> np.ndarray:
    """:func:`reduce_channels` of ``maps``, refusing NaN or Inf values."""
    flat = reduce_channels(maps, how)
    if not np.isfinite(flat).all():
        raise ValueError("maps contain NaN or Inf values")
    return flat


def feature_map_shape(shape) -> tuple:
    """The shape (N, ...) of the feature maps of inputs of ``shape``: without the last axis, or (N, D) itself."""
    return tuple(shape[:-1]) if len(shape) > 2 else tuple(shape)


def checked_maps(maps, images: np.ndarray, how: str) -> np.ndarray:
    """Finite feature maps (float64, :func:`feature_map_shape`) of ``maps`` for the inputs ``images``.

    ``maps`` shaped like the inputs are reduced over their last axis with ``how``
    (for (N, D) inputs, each value is its own feature: ``how`` only takes ``abs``);
    maps shaped like the inputs without their last axis are the feature maps already.
    """
    _checks.choice(how, "how", REDUCTIONS)
    if isinstance(maps, dict):
        raise TypeError(f"maps must be one array, got a dict with keys {sorted(map(str, maps))[:4]}: "
                        "attribute(..., rule=(...)) returns {rule: maps}; pass one of its values, e.g. maps['idgi']")
    array = np.asarray(maps)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"maps must hold real numbers, got dtype {array.dtype}")
    expected = feature_map_shape(images.shape)
    if array.shape == images.shape:
        flat = _reduce_last(array if images.ndim > 2 else array[..., None], how)
    elif array.shape == expected:
        flat = array.astype(np.float64)
    else:
        shapes = f"{images.shape}" if expected == images.shape else f"{images.shape} or {expected}"
        hint = ("; maps at a token embedding (N, T, D): pass the per-token sums maps.sum(-1)"
                if array.ndim == images.ndim + 1 and array.shape[:-1] == images.shape else "")
        raise ValueError(f"maps must match the images: expected shape {shapes}, got {array.shape}{hint}")
    if not np.isfinite(flat).all():
        raise ValueError("maps contain NaN or Inf values")
    return flat


def refuse_other_ranks(value, metric: str, name: str, shapes: str, ranks=(4,)) -> None:
    """Refuse ``value`` unless its rank is one of ``ranks``: ``metric`` is an image metric."""
    shape = np.shape(value)
    if len(shape) not in ranks:
        raise ValueError(f"{metric} is an image metric, needs {name} of shape {shapes}, got shape {shape}")
