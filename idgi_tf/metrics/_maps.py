"""2-D maps from attributions, and the checks every metric shares."""

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


def checked_maps(maps, images: np.ndarray, how: str) -> np.ndarray:
    """2-D maps (N, H, W) that match ``images`` (N, H, W, C) and are finite."""
    if isinstance(maps, dict):
        raise TypeError(f"maps must be one array, got a dict with keys {sorted(map(str, maps))[:4]}: "
                        "attribute(..., rule=(...)) returns {rule: maps}; pass one of its values, e.g. maps['idgi']")
    array = np.asarray(maps)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"maps must hold real numbers, got dtype {array.dtype}")
    flat = reduce_channels(array, how)
    if flat.shape != images.shape[:3]:
        raise ValueError(
            f"maps must match the images: expected shape {images.shape} or {images.shape[:3]}, "
            f"got {array.shape}"
        )
    if not np.isfinite(flat).all():
        raise ValueError("maps contain NaN or Inf values")
    return flat
