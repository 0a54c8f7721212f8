"""Feature rankings and the partially revealed inputs built from them (Insertion, Deletion, SIC/AIC).

A feature is one entry of a feature map (``_maps.feature_map_shape``): a pixel of an
image, a token of a sequence, a column of tabular data.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..runtime import image_groups, pad_rows


def pixel_ranks(feature_maps: np.ndarray) -> np.ndarray:
    """Rank of every feature among its example's (0 = most important), ties broken by flat (C) order.

    ``feature_maps``: (N, ...), e.g. (N, H, W) for images. Returns int32 ranks of the same shape.
    """
    flat = tf.reshape(tf.constant(feature_maps), [feature_maps.shape[0], -1])
    order = tf.argsort(-flat, axis=1, stable=True)
    return tf.reshape(tf.argsort(order, axis=1), feature_maps.shape).numpy().astype(np.int32)


def canvases(top: tf.Tensor, rest: tf.Tensor, ranks: tf.Tensor, counts: tf.Tensor) -> tf.Tensor:
    """Inputs whose ``counts[i]`` top-ranked features come from ``top`` and the others from ``rest``.

    ``top``, ``rest``: (n, ...) inputs, e.g. (n, H, W, C); ``ranks``: (n, ...) feature ranks, the
    inputs' shape without the last axis (n, H, W) or, for (n, D) inputs, (n, D) itself; ``counts``: (c,).
    Returns (c * n, ...), count-major (all inputs at ``counts[0]`` first). All values of a feature
    (the channels of a pixel, the embedding dims of a token) move together.
    """
    chosen = ranks[None] < tf.reshape(counts, [-1] + [1] * ranks.shape.rank)  # (c, n, H, W)
    if ranks.shape.rank < top.shape.rank:
        chosen = chosen[..., None]
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
