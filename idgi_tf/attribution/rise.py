"""RISE (Petsiuk et al. 2018): the prediction-based reference of the spectral analysis.

Muzellec et al. (ICML 2024; docs/spectral.md) contrast its spectrum with the gradients'.

``S(x) = 1 / (N p) * sum_i f(x_i) M_i`` with ``x_i = M_i x + (1 - M_i) b``
(``b`` = the baseline, black by default). Each mask ``M_i``: a
``cells x cells`` grid of Bernoulli(``p``) cells, bilinearly upsampled to
``(cells + 1) * ceil(H / cells)`` pixels and cropped at a random shift, so
masks are smooth and not aligned to a grid. Mask ``i``'s cells and shift are
row ``i`` of NumPy draws from ``seed``, made on the host: the masks depend
neither on the batching nor on the compiler and device (TensorFlow's float
stateless draws give other numbers under XLA). Masks go through the model
``masks_per_pass`` at a time, with a running sum. The 2-D saliency is spread evenly over the channels (the channel
sum is ``S``). Cost: ``nmasks`` forward passes per image.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from .. import runtime
from ..runtime import cached, explained_value, fresh_zeros


def mask_draws(nmasks: int, seed: int, cells: int, p: float, height: int, width: int):
    """Every mask's cells (nmasks, cells, cells) float32 in {0, 1} and crop shift (nmasks, 2) int32.

    Row ``i`` depends only on ``seed`` and ``i`` (one uniform row per mask, in order), so the first masks
    are the same for any ``nmasks``.
    """
    cell_h, cell_w = -(-height // cells), -(-width // cells)
    uniform = np.random.default_rng(seed).random((nmasks, cells * cells + 2))
    grids = (uniform[:, :-2] < p).reshape(nmasks, cells, cells).astype(np.float32)
    shifts = np.floor(uniform[:, -2:] * [cell_h, cell_w]).astype(np.int32)
    return grids, shifts


def rise_masks(grids, shifts, height: int, width: int):
    """Masks (k, H, W) float32 in [0, 1]: the cells ``grids`` (k, cells, cells) bilinearly upsampled to
    ``(cells + 1) * ceil(H / cells)`` pixels and cropped at ``shifts`` (k, 2)."""
    cells = grids.shape[1]
    size = [(cells + 1) * -(-height // cells), (cells + 1) * -(-width // cells)]
    up = tf.image.resize(grids[..., None], size, method="bilinear")[..., 0]
    rows = shifts[:, :1] + tf.range(height)
    cols = shifts[:, 1:] + tf.range(width)
    return tf.gather(tf.gather(up, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)


def rise(model, nmasks, cells, p, seed, masks_per_pass, images, baseline, targets):
    """RISE saliency ``{"plain": (n, H, W, C) float64}`` for one image group."""
    n, height, width, channels = images.shape
    k = min(masks_per_pass, nmasks)
    tiled_targets = runtime.repeat_rows(targets, k)

    grids, shifts = (tf.constant(draws) for draws in mask_draws(nmasks, seed, cells, p, height, width))

    def body(r, sums):
        index = r * k + tf.range(k)
        drawn = tf.minimum(index, nmasks - 1)  # the last round's padding, weighted 0 below
        masks = rise_masks(tf.gather(grids, drawn), tf.gather(shifts, drawn), height, width)
        m = masks[:, None, :, :, None]
        masked = images[None] * m + baseline[None] * (1.0 - m)
        values = explained_value(model, tf.reshape(masked, [k * n, height, width, channels]), tiled_targets)
        weights = tf.where((index < nmasks)[:, None], tf.reshape(values, [k, n]), 0.0)
        return r + 1, sums + tf.einsum("kn,khw->nhw", tf.cast(weights, tf.float64), tf.cast(masks, tf.float64))

    _, sums = tf.while_loop(
        lambda r, _: r < -(-nmasks // k), body, (tf.constant(0), fresh_zeros([n, height, width], tf.float64)),
        parallel_iterations=runtime.CHUNKS_IN_FLIGHT,
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
