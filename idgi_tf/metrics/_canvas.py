"""Pixel rankings and the partially revealed images built from them (Insertion, Deletion, SIC/AIC)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .._model import image_groups


def pixel_ranks(maps_2d: np.ndarray) -> np.ndarray:
    """Rank of every pixel (0 = most important), ties broken by pixel order. (N, H, W) int32."""
    flat = tf.reshape(tf.constant(maps_2d), [maps_2d.shape[0], -1])
    order = tf.argsort(-flat, axis=1, stable=True)
    return tf.reshape(tf.argsort(order, axis=1), maps_2d.shape).numpy().astype(np.int32)


def canvases(top: tf.Tensor, rest: tf.Tensor, ranks: tf.Tensor, counts: tf.Tensor) -> tf.Tensor:
    """Images whose ``counts[i]`` top-ranked pixels come from ``top`` and the others from ``rest``.

    ``top``, ``rest``: (n, H, W, C); ``ranks``: (n, H, W); ``counts``: (c,).
    Returns (c * n, H, W, C), count-major (all images at ``counts[0]`` first).
    All channels of a pixel move together.
    """
    chosen = ranks[None, :, :, :, None] < counts[:, None, None, None, None]  # (c, n, H, W, 1)
    mixed = tf.where(chosen, top[None], rest[None])
    return tf.reshape(mixed, [-1, *top.shape[1:]])


def chunk_plan(num_images: int, num_counts: int, batch_size: int) -> list[tuple[slice, list[slice]]]:
    """How to cover every (image, count) canvas in model passes of at most ``batch_size`` images.

    Returns ``[(images slice, [counts slice, ...]), ...]``: a group of images
    (all of them when they fit) and the runs of counts that fill one pass each.
    """
    group = min(num_images, batch_size)
    per_pass = max(1, batch_size // group)
    return [
        (part, [slice(first, first + per_pass) for first in range(0, num_counts, per_pass)])
        for part in image_groups(num_images, group)
    ]
