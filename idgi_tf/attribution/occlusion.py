"""Occlusion (Zeiler & Fergus 2014; Ancona et al. 2018's Occlusion-1 with ``patch=1``) at any input rank.

Axes: the last axis of inputs of rank >= 3 is the channel / feature-vector axis (a pixel's channels, a
token's embedding vector, a voxel's channels) and is occluded whole; windows slide over the other
per-example axes (H, W of images (N, H, W, C); T of sequences (N, T, D); D, H, W of volumes
(N, D, H, W, C)). Inputs of rank 2 have no channel axis: windows slide over axis 1, the D features of
tabular data (``patch=1`` is feature ablation, one feature at a time) or the T tokens of int32 token ids
(an occluded token takes the baseline's id, e.g. the pad id).

Each window (``patch[a]`` positions along window axis ``a``) is set to the baseline in turn; the output
drop ``f(x) - f(x with the window occluded)`` is spread evenly over the window's ``prod(patch) * C``
elements (``C = 1`` at rank 2), and an element covered by several windows (``stride < patch``) gets the
mean of their shares; ``stride > patch`` is refused, as it would leave positions no window covers. With
``patch=1`` the channel sum of a position's attribution is exactly the drop when that position is
occluded, so Occlusion-1 satisfies Sensitivity-1 on any model.
Cost: ``1 + number of windows`` forward passes per example, batched over windows.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf

from .. import _checks, runtime
from ..runtime import cached, fresh_zeros

IMAGE_PATCH = 8  # patch=None: 8 x 8 windows on (N, H, W, C) images, one position (patch 1) at every other rank


def window_shape(feature_shape) -> tuple:
    """The per-example axes windows slide over: all of them at rank 2, all but the last (channels) above."""
    return tuple(feature_shape) if len(feature_shape) == 1 else tuple(feature_shape[:-1])


def window_option(value, name: str):
    """``patch`` or ``stride`` as given: None (the default), a positive int, or a tuple of them."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        if not value:
            raise ValueError(f"{name} must be a positive int or a non-empty tuple of them, got {value!r}")
        return tuple(_checks.positive_int(item, name) for item in value)
    return _checks.positive_int(value, name)


def _per_axis(value, name: str, feature_shape) -> tuple:
    """``value`` (an int or a tuple) as one int per window axis of examples shaped ``feature_shape``."""
    count = len(window_shape(feature_shape))
    if not isinstance(value, tuple):
        return (value,) * count
    if len(value) != count:
        axes = "axis 1" if count == 1 else "axes " + ", ".join(str(axis) for axis in range(1, count + 1))
        whole = "" if len(feature_shape) == 1 else f"; axis {len(feature_shape)}, the channels, is occluded whole"
        raise ValueError(
            f"{name} must be an int or a tuple of {count} int(s), one per window axis ({axes} of inputs "
            f"{_shape(feature_shape)}{whole}), got {name}={value!r}"
        )
    return value


def check_window(patch, stride, feature_shape) -> tuple[tuple, tuple]:
    """``(patch, stride)`` as one int per window axis of examples shaped ``feature_shape`` (the inputs'
    shape without N). ``patch=None``: 8 on images (rank 4), 1 elsewhere; ``stride=None``: the patch.

    Refused: a tuple of the wrong length, a window larger than its axis, a stride larger than the patch
    (positions no window covers).
    """
    given_patch = window_option(patch, "patch")
    given_patch = (IMAGE_PATCH if len(feature_shape) == 3 else 1) if given_patch is None else given_patch
    given_stride = window_option(stride, "stride")
    patches = _per_axis(given_patch, "patch", feature_shape)
    strides = patches if given_stride is None else _per_axis(given_stride, "stride", feature_shape)
    for axis, (size, side) in enumerate(zip(window_shape(feature_shape), patches), start=1):
        if side > size:
            raise ValueError(
                f"patch must be at most the inputs' size on each window axis: axis {axis} of inputs "
                f"{_shape(feature_shape)} has {size}, got patch {side}"
            )
    if any(step > side for step, side in zip(strides, patches)):
        raise ValueError(
            f"stride must be at most patch ({_shown(given_patch)}) on every window axis so that every position "
            f"lies in a window, got stride={_shown(given_stride)}"
        )
    return patches, strides


def _shown(value) -> str:
    return ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _shape(feature_shape) -> str:
    return f"(N, {_shown(tuple(feature_shape))})"


def window_starts(size: int, patch: int, stride: int) -> np.ndarray:
    """Window offsets along one axis: every ``stride``, plus one flush with the end.

    With ``patch <= size`` and ``stride <= patch`` (:func:`check_window`) every position lies in a window.
    """
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return np.asarray(starts, np.int32)


def windows(sizes: tuple, patch: tuple, stride: tuple) -> np.ndarray:
    """All window corners (count, axes), one start per window axis; the first axis varies slowest."""
    grids = np.meshgrid(*map(window_starts, sizes, patch, stride), indexing="ij")
    return np.stack([grid.ravel() for grid in grids], axis=1)


def coverage(sizes: tuple, patch: tuple, stride: tuple) -> np.ndarray:
    """How many windows cover each position (``sizes``): the windows are a grid, so the outer product of
    each axis' counts."""

    def along(size, side, step):
        counts = np.zeros(size)
        for start in window_starts(size, side, step):
            counts[start:start + side] += 1
        return counts

    return functools.reduce(np.multiply.outer, map(along, sizes, patch, stride))


def _window_masks(corners: tf.Tensor, patch: tuple, sizes: tuple) -> tf.Tensor:
    """bool masks (k, *sizes), True inside each window: the AND over axes of ``start <= position < start + patch``."""
    rank = len(sizes)
    inside = []
    for axis, (size, side) in enumerate(zip(sizes, patch)):
        position = tf.reshape(tf.range(size), [1] * (axis + 1) + [size] + [1] * (rank - axis - 1))
        start = tf.reshape(corners[:, axis], [-1] + [1] * rank)
        inside.append((position >= start) & (position < start + side))
    return functools.reduce(tf.logical_and, inside)


def occlusion(model, patch, stride, windows_per_pass, inputs, baseline, targets):
    """Occlusion attributions ``{"plain": float64 shaped like inputs}`` for one group of examples."""
    n, feature_shape = inputs.shape[0], tuple(inputs.shape[1:])
    sizes = window_shape(feature_shape)
    channels = 1 if len(feature_shape) == 1 else feature_shape[-1]
    corners = tf.constant(windows(sizes, patch, stride))
    count = int(corners.shape[0])
    k = min(windows_per_pass, count)
    reference = runtime.explained_value(model, inputs, targets)
    tiled_targets = runtime.repeat_rows(targets, k)
    axes = "abcdefghij"[:len(sizes)]  # einsum letters of the window axes (k and n are taken)

    def body(r, sums):
        index = r * k + tf.range(k)
        valid = index < count
        masks = _window_masks(tf.gather(corners, tf.minimum(index, count - 1)), patch, sizes)
        occlude = tf.reshape(masks, [k, 1, *sizes] + ([1] if len(feature_shape) > 1 else []))
        occluded = tf.where(occlude, baseline[None], inputs[None])
        values = runtime.explained_value(model, tf.reshape(occluded, [k * n, *feature_shape]), tiled_targets)
        drops = tf.where(valid[:, None], reference[None] - tf.reshape(values, [k, n]), 0.0)
        return r + 1, sums + tf.einsum(f"kn,k{axes}->n{axes}", tf.cast(drops, tf.float64),
                                       tf.cast(masks, tf.float64))

    _, sums = tf.while_loop(
        lambda r, _: r < -(-count // k), body, (tf.constant(0), fresh_zeros([n, *sizes], tf.float64)),
        parallel_iterations=runtime.CHUNKS_IN_FLIGHT,
    )
    share = sums / coverage(sizes, patch, stride)[None] / float(math.prod(patch) * channels)
    return {"plain": share if len(feature_shape) == 1 else tf.repeat(share[..., None], channels, axis=-1)}


def compiled_occlusion(model, patch: tuple, stride: tuple, windows_per_pass: int, jit_compile: bool = False):
    """:func:`occlusion` bound to its options (one int per window axis, from :func:`check_window`), as a
    cached ``tf.function``."""
    return cached(
        model,
        ("occlusion", tuple(patch), tuple(stride), windows_per_pass, bool(jit_compile)),
        lambda: tf.function(
            functools.partial(occlusion, model, tuple(patch), tuple(stride), windows_per_pass),
            jit_compile=bool(jit_compile),
        ),
    )
