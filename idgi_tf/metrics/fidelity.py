"""Sensitivity-n (Ancona et al. 2018, section 4) and MuFidelity (Bhatt et al. 2020).

Both remove random subsets ``S`` of pixels (all channels set to the
baseline) and measure, per image, the Pearson correlation across subsets
between the attribution mass ``sum_{i in S} R_i`` of the 2-D map and the
output drop ``f(x) - f(x_S)`` (docs/metrics.md#sensitivity-n):

* Sensitivity-n: for each ``n`` of a grid, ``subsets`` uniform random subsets
  of exactly ``n`` pixels; the curve over ``n`` is the correlation averaged
  over images. A method is "sensitivity-n" when it is 1 (every method on a
  linear model; Occlusion-1 at ``n = 1`` on any model).
* MuFidelity: ``samples`` subsets of a ``grid x grid`` partition of the image,
  each removing ``int(subset * grid**2)`` random cells (Xplique's
  ``MuFidelity`` removes one cell more, by an off-by-one); the score is the
  correlation, averaged over images.

The same subsets serve every image (one seeded draw per ``n``). A correlation
is undefined (NaN, counted) when the drops or the masses do not vary. The
degraded images are built on the device and go through the model in chunks
of at most ``batch_size``.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import tensorflow as tf

from .. import _checks
from ..runtime import (
    JIT_AUTO,
    batch_size_or_default,
    cached,
    explained_value,
    explained_values,
    num_classes,
    resolve_jit,
)
from ._canvas import chunk_calls
from ._maps import checked_maps
from .result import MetricResult


def _degraded_values(model, images, baseline, masks, targets):
    """f on every image with each mask's pixels set to the baseline: (k, n) for masks (k, H, W)."""
    m = masks[:, None, :, :, None]
    degraded = images[None] * (1.0 - m) + baseline[None] * m
    values = explained_value(model, tf.reshape(degraded, [-1, *images.shape[1:]]),
                             tf.tile(targets, [tf.shape(masks)[0]]))
    return tf.reshape(values, [tf.shape(masks)[0], images.shape[0]])


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b``; NaN where one is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm > 0, (a * b).sum(axis=1) / norm, np.nan)


def _output_drops(model, images, baseline, targets, reference, masks, batch_size, jit):
    """``f(x) - f(x_S)`` for every image and mask: (N, K)."""
    run = cached(model, ("degraded", jit),
                 lambda: tf.function(functools.partial(_degraded_values, model), jit_compile=jit))
    drops = np.empty((len(images), len(masks)), np.float64)
    for part, chunk, values in chunk_calls(run, (images, baseline), masks, targets, batch_size, pad=jit):
        drops[part, chunk] = reference[part, None] - values.T
    return drops


def _checked(model, images, targets, maps, baseline, batch_size, how, jit_compile):
    jit = resolve_jit(jit_compile)
    images = _checks.images(images)
    targets = _checks.targets(targets, len(images), num_classes(model, images))
    flat_maps = checked_maps(maps, images, how)
    base = _checks.like_images(baseline, images, "baseline")
    batch_size = batch_size_or_default(batch_size)
    reference = explained_values(model, images, targets, batch_size, jit).astype(np.float64)
    return images, targets, flat_maps, base, batch_size, reference, jit


def _correlations(model, images, targets, flat_maps, base, reference, masks, batch_size, jit):
    """Per-image correlation between mask masses of the map and output drops, over the masks."""
    drops = _output_drops(model, images, base, targets, reference, masks, batch_size, jit)
    masses = np.einsum("nhw,khw->nk", flat_maps, masks.astype(np.float64))
    return pearson_rows(masses, drops)


def default_ns(pixels: int, num: int = 16) -> np.ndarray:
    """Log-spaced subset sizes from 1 to 80 % of the pixels (docs/metrics.md#sensitivity-n)."""
    return np.unique(np.round(np.geomspace(1, 0.8 * pixels, num)).astype(np.int64))


def random_subset_masks(rng: np.random.Generator, count: int, size: int, chosen: int) -> np.ndarray:
    """``count`` float32 masks of ``size`` elements with exactly ``chosen`` ones each, uniform."""
    picks = np.argpartition(rng.random((count, size)), chosen - 1, axis=1)[:, :chosen]
    masks = np.zeros((count, size), np.float32)
    np.put_along_axis(masks, picks, 1.0, axis=1)
    return masks


def sensitivity_n(model, images, targets, maps, *, ns=None, subsets=100, baseline=0.0, seed=0,
                  batch_size=None, how="sum", jit_compile=JIT_AUTO):
    """Sensitivity-n (Ancona et al. 2018): correlation of attribution mass and output drop, over n.

    Args:
      model, images, targets: as for :func:`idgi_tf.attribute`.
      maps: attributions (N, H, W, C) or 2-D maps (N, H, W).
      ns: subset sizes in pixels (default: 16 log-spaced from 1 to 80 % of H*W).
      subsets: random subsets per n (Ancona: 100).
      baseline: value of removed pixels: scalar or image(s) (default black).
      seed: seed of the subsets (the same subsets serve every image).
      batch_size: model inputs per pass (default 32).
      jit_compile: XLA for the model passes: ``True``, ``False`` or ``"auto"`` (XLA on a
        GPU only; see :func:`idgi_tf.runtime.resolve_jit`).
      how: channel reduction of 3-D maps (``sum``, ``abs_sum``, ``sum_abs``).

    Returns:
      :class:`MetricResult` with ``curves["correlation"]`` (N, len(ns)) over
      ``x = ns``, ``aggregate_curves["correlation"]`` (the mean over images:
      the paper's curve) and ``scores["mean_correlation"]`` per image.

    Example:
      >>> r = sensitivity_n(model, images, labels, maps, ns=[1, 10, 100])
      >>> r.aggregate_curves["correlation"]
    """
    _checks.warn_if_unit_range(images, model, "sensitivity_n")
    images, targets, flat_maps, base, batch_size, reference, jit = _checked(
        model, images, targets, maps, baseline, batch_size, how, jit_compile)
    pixels = images.shape[1] * images.shape[2]
    subsets = _checks.positive_int(subsets, "subsets")
    if subsets < 2:
        raise ValueError(f"subsets must be at least 2 (a correlation needs two points), got {subsets}")
    ns = default_ns(pixels) if ns is None else np.asarray(ns)
    if ns.ndim != 1 or len(ns) == 0 or not np.issubdtype(ns.dtype, np.integer) or ns.min() < 1 or ns.max() > pixels:
        raise ValueError(f"ns must be a non-empty list of integers in [1, {pixels}] (pixels per image), got {ns!r}")
    seed = _checks.seed(seed)
    rng = np.random.default_rng(seed)
    curves = np.empty((len(images), len(ns)), np.float64)
    for column, n in enumerate(ns):
        masks = random_subset_masks(rng, subsets, pixels, int(n)).reshape(subsets, *images.shape[1:3])
        curves[:, column] = _correlations(model, images, targets, flat_maps, base, reference, masks, batch_size,
                                          jit)
    undefined = int(np.isnan(curves).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
        mean_over_images = np.nanmean(curves, axis=0)
        per_image = np.nanmean(curves, axis=1)
    return MetricResult(
        name="sensitivity_n",
        scores={"mean_correlation": per_image},
        curves={"correlation": curves},
        x=ns.astype(np.float64),
        counts={"images": len(images), "undefined_correlations": undefined},
        options={"subsets": subsets, "seed": seed, "how": how, "jit_compile": jit},
        aggregate_curves={"correlation": mean_over_images},
    )


def grid_cell_masks(rng: np.random.Generator, samples: int, grid: int, removed: int, height: int, width: int):
    """``samples`` float32 masks (H, W) removing ``removed`` random cells of a ``grid x grid`` partition."""
    cells = random_subset_masks(rng, samples, grid * grid, removed).reshape(samples, grid, grid)
    rows = np.arange(height) * grid // height
    cols = np.arange(width) * grid // width
    return cells[:, rows][:, :, cols]


def mufidelity(model, images, targets, maps, *, grid=9, subset=0.2, samples=200, baseline=0.0, seed=0,
               batch_size=None, how="sum", jit_compile=JIT_AUTO):
    """MuFidelity (Bhatt et al. 2020): correlation of attribution mass and output drop on grid subsets.

    Args:
      model, images, targets, maps, baseline, seed, batch_size, how, jit_compile: as for
        :func:`sensitivity_n`.
      grid: the image is cut into ``grid x grid`` cells (default 9).
      subset: fraction of cells removed per sample (default 0.2: 16 of 81).
      samples: random subsets per image (default 200).

    Returns:
      :class:`MetricResult` with ``scores["mufidelity"]`` per image; its mean
      is the paper's score.

    Example:
      >>> mufidelity(model, images, labels, maps).means()["mufidelity"]
    """
    _checks.warn_if_unit_range(images, model, "mufidelity")
    images, targets, flat_maps, base, batch_size, reference, jit = _checked(
        model, images, targets, maps, baseline, batch_size, how, jit_compile)
    grid = _checks.positive_int(grid, "grid")
    if grid > min(images.shape[1:3]):
        raise ValueError(f"grid must be at most the image side {min(images.shape[1:3])}, got {grid}")
    subset = _checks.number_in(subset, "subset", 0.0, 1.0, low_open=True)
    removed = int(subset * grid * grid)
    if removed < 1:
        raise ValueError(f"subset * grid**2 must remove at least one cell, got {subset} * {grid * grid}")
    samples = _checks.positive_int(samples, "samples")
    if samples < 2:
        raise ValueError(f"samples must be at least 2 (a correlation needs two points), got {samples}")
    seed = _checks.seed(seed)
    masks = grid_cell_masks(np.random.default_rng(seed), samples, grid, removed, *images.shape[1:3])
    scores = _correlations(model, images, targets, flat_maps, base, reference, masks, batch_size, jit)
    return MetricResult(
        name="mufidelity",
        scores={"mufidelity": scores},
        counts={"images": len(images), "undefined_mufidelity": int(np.isnan(scores).sum())},
        options={"grid": grid, "subset": subset, "removed_cells": removed, "samples": samples, "seed": seed,
                 "how": how, "jit_compile": jit},
    )
