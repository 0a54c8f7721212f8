"""Pixel rankings and the partially revealed images built from them (Insertion, Deletion, SIC/AIC)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..runtime import image_groups, pad_rows


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


def chunk_calls(run, per_image, per_chunk, targets, batch_size: int, pad: bool):
    """Run ``run(*per_image[part], per_chunk[chunk], targets[part])`` over :func:`chunk_plan`, host-side.

    ``per_image``: arrays with one row per image; ``per_chunk``: the perturbations
    (counts, masks), ``run`` returning a tensor or tuple of tensors shaped (c, n, ...).
    Yields ``(part, chunk, outputs as NumPy)`` in order, one compiled call at a time.
    With ``pad`` (under XLA) every call gets the full group and chunk size, the last
    ones padded by repeating their last row and the outputs cut back, so one
    compilation serves every call.
    """
    count = len(per_chunk)
    for part, chunks in chunk_plan(len(targets), count, batch_size):
        images = part.stop - part.start
        group = min(len(targets), batch_size) if pad else images
        args = [pad_rows(a[part], group) for a in (*per_image, targets)]
        full = min(chunks[0].stop, count)  # every chunk's size under padding
        for chunk in chunks:
            size = min(chunk.stop, count) - chunk.start
            outputs = run(*args[:-1], pad_rows(per_chunk[chunk], full if pad else size), args[-1])

            def cut(tensor, size=size):
                return tensor.numpy()[:size, :images]

            yield part, chunk, tuple(map(cut, outputs)) if isinstance(outputs, (tuple, list)) else cut(outputs)
