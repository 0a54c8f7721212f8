"""RISE (Petsiuk et al. 2018): the prediction-based reference of the spectral analysis.

Muzellec et al. (ICML 2024; docs/spectral.md) contrast its spectrum with the gradients'.

``S(x) = 1 / (N p) * sum_i f(x_i) M_i`` with ``x_i = M_i x + (1 - M_i) b``
(``b`` = the baseline, black by default). Each mask ``M_i``: a
``cells x cells`` grid of Bernoulli(``p``) cells, bilinearly upsampled to
``(cells + 1) * ceil(H / cells)`` pixels and cropped at a random shift, so
masks are smooth and not aligned to a grid. Mask ``i`` is drawn from
``(seed, i)`` with stateless random ops: the result does not depend on the
batching. Masks go through the model ``masks_per_pass`` at a time, with a
running sum. The 2-D saliency is spread evenly over the channels (the channel
sum is ``S``). Cost: ``nmasks`` forward passes per image.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from .._model import CHUNKS_IN_FLIGHT, cached, explained_value, fresh_zeros


def rise_mask(index, seed: int, cells: int, p: float, height: int, width: int):
    """RISE mask number ``index`` (H, W) float32 in [0, 1]."""
    cell_h, cell_w = -(-height // cells), -(-width // cells)
    key = tf.stack([tf.constant(seed, tf.int32), tf.cast(index, tf.int32)])
    grid = tf.cast(tf.random.stateless_uniform([cells, cells, 1], key) < p, tf.float32)
    up = tf.image.resize(grid[None], [(cells + 1) * cell_h, (cells + 1) * cell_w], method="bilinear")[0, ..., 0]
    shift = tf.random.stateless_uniform([2], key + 1, maxval=1 << 30, dtype=tf.int32) % tf.constant([cell_h, cell_w])
    return tf.slice(up, shift, [height, width])


def rise(model, nmasks, cells, p, seed, masks_per_pass, images, baseline, targets):
    """RISE saliency ``{"plain": (n, H, W, C) float64}`` for one image group."""
    n, height, width, channels = images.shape
    k = min(masks_per_pass, nmasks)
    tiled_targets = tf.tile(targets, [k])

    def body(r, sums):
        index = r * k + tf.range(k)
        masks = tf.map_fn(lambda i: rise_mask(i, seed, cells, p, height, width), index,
                          fn_output_signature=tf.float32, parallel_iterations=CHUNKS_IN_FLIGHT)
        m = masks[:, None, :, :, None]
        masked = images[None] * m + baseline[None] * (1.0 - m)
        values = explained_value(model, tf.reshape(masked, [k * n, height, width, channels]), tiled_targets)
        weights = tf.where((index < nmasks)[:, None], tf.reshape(values, [k, n]), 0.0)
        return r + 1, sums + tf.einsum("kn,khw->nhw", tf.cast(weights, tf.float64), tf.cast(masks, tf.float64))

    _, sums = tf.while_loop(
        lambda r, _: r < -(-nmasks // k), body, (tf.constant(0), fresh_zeros([n, height, width], tf.float64)),
        parallel_iterations=CHUNKS_IN_FLIGHT,
    )
    saliency = sums / (nmasks * p)
    return {"plain": tf.repeat(saliency[..., None] / channels, channels, axis=-1)}


def compiled_rise(model, nmasks: int, cells: int, p: float, seed: int, masks_per_pass: int, jit_compile=False):
    """:func:`rise` bound to its options, as a cached ``tf.function``."""
    return cached(
        model,
        ("rise", nmasks, cells, p, seed, masks_per_pass, bool(jit_compile)),
        lambda: tf.function(functools.partial(rise, model, nmasks, cells, p, seed, masks_per_pass),
                            jit_compile=bool(jit_compile)),
    )
