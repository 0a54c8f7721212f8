"""Occlusion (Zeiler & Fergus 2014; Ancona et al. 2018's Occlusion-1 with ``patch=1``).

Each ``patch x patch`` window (all channels) is set to the baseline in turn;
the output drop ``f(x) - f(x with the window occluded)`` is spread evenly over
the window's ``patch * patch * C`` elements, and an element covered by several
windows (``stride < patch``) gets the mean of their shares; ``stride > patch``
is refused, as it would leave pixels no window covers. With ``patch=1``
the channel sum of a pixel's attribution is exactly the drop when that pixel
is occluded, so Occlusion-1 satisfies Sensitivity-1 on any model.
Cost: ``1 + number of windows`` forward passes per image, batched over windows.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from .. import runtime
from ..runtime import cached, explained_value, fresh_zeros


def check_patch(patch: int, height: int, width: int) -> None:
    """A window must fit in the image."""
    if patch > min(height, width):
        raise ValueError(f"patch must be at most the image's shorter side {min(height, width)}, got {patch}")


def window_starts(size: int, patch: int, stride: int) -> np.ndarray:
    """Window offsets along one axis: every ``stride``, plus one flush with the end.

    With ``stride <= patch`` (checked by ``attribute``) every pixel lies in a window.
    """
    check_patch(patch, size, size)
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return np.asarray(starts, np.int32)


def windows(height: int, width: int, patch: int, stride: int) -> np.ndarray:
    """All window corners (W, 2) as (top, left)."""
    tops, lefts = np.meshgrid(window_starts(height, patch, stride), window_starts(width, patch, stride),
                              indexing="ij")
    return np.stack([tops.ravel(), lefts.ravel()], axis=1)


def coverage(height: int, width: int, patch: int, stride: int) -> np.ndarray:
    """How many windows cover each pixel (H, W): the windows are a grid, so rows times columns."""

    def along(size):
        counts = np.zeros(size)
        for start in window_starts(size, patch, stride):
            counts[start:start + patch] += 1
        return counts

    return np.outer(along(height), along(width))


def _window_masks(corners: tf.Tensor, patch: int, height: int, width: int) -> tf.Tensor:
    """float32 masks (k, H, W), 1 inside each window."""
    rows = tf.range(height)[None, :, None]
    cols = tf.range(width)[None, None, :]
    top = corners[:, 0][:, None, None]
    left = corners[:, 1][:, None, None]
    inside = (rows >= top) & (rows < top + patch) & (cols >= left) & (cols < left + patch)
    return tf.cast(inside, tf.float32)


def occlusion(model, patch, stride, windows_per_pass, images, baseline, targets):
    """Occlusion attributions ``{"plain": (n, H, W, C) float64}`` for one image group."""
    n, height, width, channels = images.shape
    corners = tf.constant(windows(height, width, patch, stride))
    count = int(corners.shape[0])
    k = min(windows_per_pass, count)
    reference = explained_value(model, images, targets)
    tiled_targets = tf.tile(targets, [k])

    def body(r, sums):
        index = r * k + tf.range(k)
        valid = index < count
        masks = _window_masks(tf.gather(corners, tf.minimum(index, count - 1)), patch, height, width)
        m = masks[:, None, :, :, None]
        occluded = images[None] * (1.0 - m) + baseline[None] * m
        values = explained_value(model, tf.reshape(occluded, [k * n, height, width, channels]), tiled_targets)
        drops = tf.where(valid[:, None], reference[None] - tf.reshape(values, [k, n]), 0.0)
        return r + 1, sums + tf.einsum("kn,khw->nhw", tf.cast(drops, tf.float64), tf.cast(masks, tf.float64))

    _, sums = tf.while_loop(
        lambda r, _: r < -(-count // k), body, (tf.constant(0), fresh_zeros([n, height, width], tf.float64)),
        parallel_iterations=runtime.CHUNKS_IN_FLIGHT,
    )
    share = sums / coverage(height, width, patch, stride)[None] / float(patch * patch * channels)
    return {"plain": tf.repeat(share[..., None], channels, axis=-1)}


def compiled_occlusion(model, patch: int, stride: int, windows_per_pass: int, jit_compile: bool = False):
    """:func:`occlusion` bound to its options, as a cached ``tf.function``."""
    return cached(
        model,
        ("occlusion", patch, stride, windows_per_pass, bool(jit_compile)),
        lambda: tf.function(
            functools.partial(occlusion, model, patch, stride, windows_per_pass), jit_compile=bool(jit_compile)
        ),
    )
