"""Argument validation shared by every public entry point.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right
kind, wrong content) with a message that names the argument and says what was
expected, so that errors read the same across the library.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np


def inputs(value, name: str = "inputs", *, integers: bool = False) -> np.ndarray:
    """Return ``value`` as a finite array (N, ...) of rank >= 2: float32, or int32 token ids when
    ``integers`` and ``value`` holds integers (floats are never rounded to ids)."""
    if isinstance(value, dict):
        raise TypeError(f"{name} must be one array (N, ...), got a dict with keys {sorted(map(str, value))[:4]}; "
                        "several inputs are taken by idgi_tf.attribute and explained_output, not here")
    try:
        array = np.asarray(value)
    except ValueError as error:  # a list of arrays of other shapes: several inputs
        raise ValueError(f"{name} must be one array (N, ...), got a {type(value).__name__} of arrays of different "
                         "shapes; several inputs are taken by idgi_tf.attribute and explained_output, not "
                         "here") from error
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise TypeError(f"{name} must hold real numbers (floats, or integer pixels or ids), got dtype {array.dtype}")
    if array.ndim < 2:
        raise ValueError(
            f"{name} must have a batch axis first, (N, ...) of rank >= 2, got shape {array.shape}; "
            f"add one with {name}[None] for a single example"
        )
    if 0 in array.shape:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if integers and np.issubdtype(array.dtype, np.integer):
        if array.min() < np.iinfo(np.int32).min or array.max() > np.iinfo(np.int32).max:
            raise ValueError(f"{name} holds integers beyond int32's range")
        return array.astype(np.int32, copy=False)
    array = array.astype(np.float32, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise ValueError(
            f"{name} contains NaN or Inf values (first at index {tuple(int(i) for i in bad)})"
        )
    return array


def images(value, name: str = "images") -> np.ndarray:
    """Return ``value`` as a finite float32 array of shape (N, H, W, C), for the image-only entry points."""
    array = inputs(value, name)
    if array.ndim != 4:
        raise ValueError(
            f"{name} must have rank 4 (N, H, W, C), got shape {array.shape}; "
            "add a batch axis with images[None] for a single image"
        )
    return array


def like_inputs(value, reference: np.ndarray, name: str) -> np.ndarray:
    """Broadcast a scalar, per-example (``reference.shape[1:]``) or full-shape ``value`` to ``reference``'s
    shape, as ``reference``'s dtype (float32, or int32 ids)."""
    array = np.asarray(value)
    shape = reference.shape
    if array.shape not in ((), shape[1:], shape):
        raise ValueError(
            f"{name} must be a scalar or have shape {shape[1:]} or {shape} "
            f"(like the inputs), got shape {array.shape}"
        )
    if reference.dtype == np.int32:
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"{name} must hold integer ids like the inputs (e.g. the pad id), got dtype {array.dtype}")
        return np.broadcast_to(array.astype(np.int32), shape)
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    with np.errstate(over="ignore"):
        single = array.astype(np.float32)  # the model runs in float32: check there
    if not np.isfinite(single).all():
        raise ValueError(
            f"{name} holds values beyond float32's range (|value| > {np.finfo(np.float32).max:.3g}), "
            f"the precision the model runs in; got up to {np.abs(array).max():.3g}"
        )
    return np.broadcast_to(single, shape)


def targets(value, count: int, num_classes: int | None) -> np.ndarray:
    """Return ``value`` as an int32 array (count,) of class indices in range."""
    array = np.asarray(value)
    if array.ndim == 0:
        array = np.full((count,), array)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.integer)
        or (np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0))
    ):
        raise TypeError(f"targets must be integer class indices, got dtype {array.dtype}")
    if array.shape != (count,):
        raise ValueError(
            f"targets must have shape ({count},), one class index per example, got shape {array.shape}"
        )
    upper = np.inf if num_classes is None else num_classes
    outside = (array < 0) | (array >= upper)  # before any cast, so 1e20 is not wrapped around
    if outside.any():
        raise ValueError(
            f"targets must lie in [0, {num_classes}) for a model with {num_classes} outputs, "
            f"got {array[outside][0].item()}"
        )
    return array.astype(np.int32)


def positive_int(value, name: str) -> int:
    """Return ``value`` as a positive int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def seed(value, name: str = "seed") -> int:
    """Return ``value`` as an int seed in [0, 2**31) (stateless TF random ops take int32 seeds)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not 0 <= value < 2**31:
        raise ValueError(f"{name} must lie in [0, 2**31), got {value}")
    return int(value)


def binary_masks(value, shape, name: str = "masks") -> np.ndarray:
    """Return ``value`` as a bool array of ``shape``; it must hold only 0/1 (or False/True)."""
    array = np.asarray(value)
    if array.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {array.shape}")
    if array.dtype != bool:
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise TypeError(f"{name} must hold 0/1 or booleans, got dtype {array.dtype}")
        other = ~np.isin(array, (0, 1))
        if other.any():
            bad = array[other][0]
            raise ValueError(f"{name} must hold only 0 and 1 (or False and True), got {bad.item()!r}")
    return array.astype(bool)


def number_in(value, name: str, low: float, high: float, *, low_open: bool = False) -> float:
    """Return ``value`` as a float in [low, high] (or (low, high] when ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    below = value <= low if low_open else value < low
    if below or value > high or not np.isfinite(value):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must lie in {bracket}{low}, {high}], got {value}")
    return value


def choice(value, name: str, allowed) -> str:
    """Return ``value`` if it is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    return value


def warn_if_unit_range(images, expected, name: str) -> None:
    """Warn when float ``images`` all lie in [0, 1] but pixels in [0, 255] are expected.

    Such images are almost black to a model taking [0, 255] and every result on
    them is silently wrong. ``expected`` is a model, checked when it declares its
    input range as a ``pixel_range`` attribute (as :func:`idgi_tf.models.pixel_model`'s
    do), or a ``(low, high)`` range. Python's default filter shows the warning
    once per call site (``stacklevel`` points at the caller of ``name``).
    """
    pixel_range = expected if isinstance(expected, tuple) else getattr(expected, "pixel_range", None)
    if pixel_range is None or isinstance(images, (dict, list, tuple)):  # not images (several inputs)
        return
    array = np.asarray(images)
    if pixel_range is None or pixel_range[1] <= 1 or not np.issubdtype(array.dtype, np.floating) or not array.size:
        return
    low, high = float(np.min(array)), float(np.max(array))
    if 0.0 <= low and 0.0 < high <= 1.0:
        warnings.warn(
            f"{name}: the images all lie in [0, 1], but pixels in [{pixel_range[0]:g}, {pixel_range[1]:g}] are "
            "expected (the zoo's models and idgi_tf.models.pixel_model take RGB pixels in [0, 255]); "
            "convert with images * 255",
            UserWarning, stacklevel=3)
