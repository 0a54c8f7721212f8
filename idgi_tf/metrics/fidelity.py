"""Sensitivity-n (Ancona et al. 2018, section 4) and MuFidelity (Bhatt et al. 2020).

Both remove random subsets ``S`` of features (pixels of an image with all their
channels, tokens of a sequence with all their embedding dims, columns of tabular
data: docs/metrics.md#inputs-of-any-rank) by setting them to the baseline, and
measure, per example, the Pearson correlation across subsets between the
attribution mass ``sum_{i in S} R_i`` of the feature map and the output drop
``f(x) - f(x_S)`` (docs/metrics.md#sensitivity-n):

* Sensitivity-n: for each ``n`` of a grid, ``subsets`` uniform random subsets
  of exactly ``n`` features; the curve over ``n`` is the correlation averaged
  over examples. A method is "sensitivity-n" when it is 1 (Gradient*Input on a
  linear model with baseline 0; Occlusion-1 at ``n = 1`` on any model).
* MuFidelity: ``samples`` subsets of a ``grid x grid`` partition of the image
  (for feature maps that are not 2-D: ``grid**2`` contiguous groups of the
  flattened features), each removing ``int(subset * grid**2)`` random cells
  (Xplique's ``MuFidelity`` removes one cell more, by an off-by-one); the score
  is the correlation, averaged over examples.

The same subsets serve every example (one seeded draw per ``n``). A correlation
is undefined (NaN, counted) when the drops or the masses do not vary. The
degraded inputs are built on the device and go through the model in chunks
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
    floats_unless_ids,
    num_classes,
    repeat_rows,
    resolve_jit,
)
from ._canvas import chunk_calls
from ._maps import checked_maps
from .result import MetricResult


def _degraded_values(model, images, baseline, masks, targets):
    """f on every example with each mask's features set to the baseline: (k, n) for 0/1 masks (k, ...)
    shaped like one feature map; all values of a feature (channels, embedding dims) go together."""
    removed = masks[:, None] > 0.5  # (k, 1, H, W)
    if removed.shape.rank <= images.shape.rank:
        removed = removed[..., None]
    degraded = tf.where(removed, baseline[None], images[None])
    count = tf.shape(masks)[0]
    values = explained_value(model, tf.reshape(degraded, [-1, *images.shape[1:]]), repeat_rows(targets, count))
    return tf.reshape(values, [count, images.shape[0]])


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b``; NaN where one is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm > 0, (a * b).sum(axis=1) / norm, np.nan)


def _output_drops(model, images, baseline, targets, reference, masks, batch_size, jit):
    """``f(x) - f(x_S)`` for every example and mask: (N, K)."""
    run = cached(model, ("degraded", jit),
                 lambda: tf.function(functools.partial(_degraded_values, model), jit_compile=jit))
    drops = np.empty((len(images), len(masks)), np.float64)
    for part, chunk, values in chunk_calls(run, (images, baseline), masks, targets, batch_size, pad=jit):
        drops[part, chunk] = reference[part, None] - values.T
    return drops


def _checked(model, images, maps, baseline, batch_size, how, jit_compile):
    jit = resolve_jit(jit_compile)
    (images,) = floats_unless_ids(model, [_checks.inputs(images, "images", integers=True)])
    flat_maps = checked_maps(maps, images, how)
    base = _checks.like_inputs(baseline, images, "baseline")
    return images, flat_maps, base, batch_size_or_default(batch_size), jit


def _targets_and_reference(model, images, targets, batch_size, jit):
    """The checked targets and ``f(x)`` per example (float64), last: a model that declares no output is called."""
    targets = _checks.targets(targets, len(images), num_classes(model, images))
    return targets, explained_values(model, images, targets, batch_size, jit).astype(np.float64)


def _correlations(model, images, targets, flat_maps, base, reference, masks, batch_size, jit):
    """Per-example correlation between mask masses of the feature map and output drops, over the masks."""
    drops = _output_drops(model, images, base, targets, reference, masks, batch_size, jit)
    masses = np.einsum("nf,kf->nk", flat_maps.reshape(len(flat_maps), -1),
                       masks.reshape(len(masks), -1).astype(np.float64))
    return pearson_rows(masses, drops)


def default_ns(features: int, num: int = 16) -> np.ndarray:
    """Log-spaced subset sizes from 1 to 80 % of the features (pixels of an image; docs/metrics.md#sensitivity-n)."""
    return np.unique(np.round(np.geomspace(1, 0.8 * features, num)).astype(np.int64))


def random_subset_masks(rng: np.random.Generator, count: int, size: int, chosen: int) -> np.ndarray:
    """``count`` float32 masks of ``size`` elements with exactly ``chosen`` ones each, uniform."""
    picks = np.argpartition(rng.random((count, size)), chosen - 1, axis=1)[:, :chosen]
    masks = np.zeros((count, size), np.float32)
    np.put_along_axis(masks, picks, 1.0, axis=1)
    return masks


def sensitivity_n(model, images, targets, maps, *, ns=None, subsets=100, baseline=0, seed=0,
                  batch_size=None, how="sum", jit_compile=JIT_AUTO):
    """Sensitivity-n (Ancona et al. 2018): correlation of attribution mass and output drop, over n.

    Args:
      model, targets: as for :func:`idgi_tf.attribute`.
      images, maps: as for :func:`idgi_tf.metrics.insertion`: inputs of any rank (float, or integer
        token ids), maps like the inputs or without their last axis (one value per feature;
        tabular (N, D) inputs take (N, D) maps; for token ids explained at the embedding: ``maps.sum(-1)``).
      ns: subset sizes in features (default: 16 log-spaced from 1 to 80 % of the features, H*W for images).
      subsets: random subsets per n (Ancona: 100).
      baseline: value of removed features: a scalar, one input or one per example (default 0: black;
        for integer token ids an integer id such as the pad id).
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
    images, flat_maps, base, batch_size, jit = _checked(model, images, maps, baseline, batch_size, how, jit_compile)
    features = flat_maps[0].size
    subsets = _checks.positive_int(subsets, "subsets")
    if subsets < 2:
        raise ValueError(f"subsets must be at least 2 (a correlation needs two points), got {subsets}")
    ns = default_ns(features) if ns is None else np.asarray(ns)
    if ns.ndim != 1 or len(ns) == 0 or not np.issubdtype(ns.dtype, np.integer) or ns.min() < 1 or ns.max() > features:
        raise ValueError(
            f"ns must be a non-empty list of integers in [1, {features}] (features per example), got {ns!r}")
    seed = _checks.seed(seed)
    targets, reference = _targets_and_reference(model, images, targets, batch_size, jit)
    rng = np.random.default_rng(seed)
    curves = np.empty((len(images), len(ns)), np.float64)
    for column, n in enumerate(ns):
        masks = random_subset_masks(rng, subsets, features, int(n)).reshape(subsets, *flat_maps.shape[1:])
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


def grid_cells(grid: int, shape) -> np.ndarray:
    """The cell index of every feature of a feature map of ``shape``, one of ``grid**2`` cells.

    A 2-D map (H, W) (an image) is cut into ``grid x grid`` near-equal rectangles; any other map into
    ``grid**2`` near-equal contiguous groups of its flattened (C-order) features: there is no 2-D
    neighbourhood to keep, and for a sequence (T,) a cell is a run of tokens.
    """
    if len(shape) == 2:
        rows = np.arange(shape[0]) * grid // shape[0]
        cols = np.arange(shape[1]) * grid // shape[1]
        return rows[:, None] * grid + cols[None, :]
    size = int(np.prod(shape))
    return (np.arange(size) * grid**2 // size).reshape(shape)


def grid_cell_masks(rng: np.random.Generator, samples: int, grid: int, removed: int, *shape: int) -> np.ndarray:
    """``samples`` float32 masks of ``shape`` removing ``removed`` random cells of :func:`grid_cells`."""
    cells = random_subset_masks(rng, samples, grid * grid, removed)
    return cells[:, grid_cells(grid, shape)]


def mufidelity(model, images, targets, maps, *, grid=9, subset=0.2, samples=200, baseline=0, seed=0,
               batch_size=None, how="sum", jit_compile=JIT_AUTO):
    """MuFidelity (Bhatt et al. 2020): correlation of attribution mass and output drop on grid subsets.

    Args:
      model, images, targets, maps, baseline, seed, batch_size, how, jit_compile: as for
        :func:`sensitivity_n`.
      grid: the image is cut into ``grid x grid`` cells (default 9); feature maps that are not 2-D
        (sequences, tabular data, volumes) into ``grid**2`` contiguous groups of their flattened features.
      subset: fraction of cells removed per sample (default 0.2: 16 of 81).
      samples: random subsets per image (default 200).

    Returns:
      :class:`MetricResult` with ``scores["mufidelity"]`` per image; its mean
      is the paper's score.

    Example:
      >>> mufidelity(model, images, labels, maps).means()["mufidelity"]
    """
    _checks.warn_if_unit_range(images, model, "mufidelity")
    images, flat_maps, base, batch_size, jit = _checked(model, images, maps, baseline, batch_size, how, jit_compile)
    grid = _checks.positive_int(grid, "grid")
    shape = flat_maps.shape[1:]
    if len(shape) == 2 and grid > min(shape):
        raise ValueError(f"grid must be at most the image side {min(shape)}, got {grid}")
    if len(shape) != 2 and grid**2 > flat_maps[0].size:
        raise ValueError(f"grid**2 must be at most the number of features {flat_maps[0].size} (the cells are "
                         f"grid**2 contiguous groups of features for feature maps of shape {shape}), got grid={grid}")
    subset = _checks.number_in(subset, "subset", 0.0, 1.0, low_open=True)
    removed = int(subset * grid * grid)
    if removed < 1:
        raise ValueError(f"subset * grid**2 must remove at least one cell, got {subset} * {grid * grid}")
    samples = _checks.positive_int(samples, "samples")
    if samples < 2:
        raise ValueError(f"samples must be at least 2 (a correlation needs two points), got {samples}")
    seed = _checks.seed(seed)
    targets, reference = _targets_and_reference(model, images, targets, batch_size, jit)
    masks = grid_cell_masks(np.random.default_rng(seed), samples, grid, removed, *shape)
    scores = _correlations(model, images, targets, flat_maps, base, reference, masks, batch_size, jit)
    return MetricResult(
        name="mufidelity",
        scores={"mufidelity": scores},
        counts={"images": len(images), "undefined_mufidelity": int(np.isnan(scores).sum())},
        options={"grid": grid, "subset": subset, "removed_cells": removed, "samples": samples, "seed": seed,
                 "how": how, "jit_compile": jit},
    )
