"""Insertion and Deletion (Petsiuk et al. 2018; IDGI paper section 4.3, Table 1).

Features are ranked by the feature map: pixels of an image by the 2-D map (all
channels of a pixel move together), tokens of a sequence (N, T, D) by a (N, T)
map, columns of tabular data (N, D) by the (N, D) map (docs/metrics.md#inputs-of-any-rank).
Insertion starts from the baseline canvas (black) and reveals the top
``step`` fraction of features at a time: ``1/step + 1`` canvases from 0 % to
100 %; the curve is ``f`` on each canvas. Deletion is the mirror: it starts
from the input and sets the top features to the baseline. Scores per example:

* ``probability``: the curve's area, trapezoid with ``dx = step``;
* ``ratio``: the area of the curve divided by ``f(original)``.

Insertion: higher is better; Deletion: lower is better. All canvases are
built on the device, in chunks of at most ``batch_size`` model inputs.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from .. import _checks
from ..runtime import (
    JIT_AUTO,
    batch_size_or_default,
    cached,
    explained_value,
    floats_unless_ids,
    num_classes,
    repeat_rows,
    resolve_jit,
)
from ._canvas import canvases, chunk_calls, pixel_ranks
from ._maps import checked_maps
from .result import MetricResult


def _canvas_values(model, reveal, images, baseline, ranks, counts, targets):
    """f on the canvases of ``counts`` (c,) revealed/hidden features for every example: (c, n)."""
    top, rest = (images, baseline) if reveal else (baseline, images)
    values = explained_value(model, canvases(top, rest, ranks, counts), repeat_rows(targets, tf.shape(counts)[0]))
    return tf.reshape(values, [tf.shape(counts)[0], images.shape[0]])


def _scalar(baseline, images):
    """A scalar baseline as recorded in the options: an int id for token ids, else a float."""
    return int(baseline) if np.issubdtype(images.dtype, np.integer) else float(baseline)


def _perturbation_curve(name, reveal, model, images, targets, maps, *, step, baseline, batch_size, how,
                        jit_compile):
    jit = resolve_jit(jit_compile)
    (images,) = floats_unless_ids(model, [_checks.inputs(images, "images", integers=True)])
    flat_maps = checked_maps(maps, images, how)
    step = _checks.number_in(step, "step", 0.0, 1.0, low_open=True)
    levels = round(1.0 / step)
    if abs(levels * step - 1.0) > 1e-9:
        raise ValueError(f"step must divide 1 into equal parts (e.g. 0.05, 0.1), got {step}")
    batch_size = batch_size_or_default(batch_size)
    base = _checks.like_inputs(baseline, images, "baseline")
    targets = _checks.targets(targets, len(images), num_classes(model, images))  # may call the model once

    features = flat_maps[0].size
    fractions = np.linspace(0.0, 1.0, levels + 1)
    counts = np.round(fractions * features).astype(np.int32)
    ranks = pixel_ranks(flat_maps)
    run = cached(
        model, ("canvas", reveal, jit),
        lambda: tf.function(functools.partial(_canvas_values, model, reveal), jit_compile=jit),
    )

    curves = np.empty((len(images), len(counts)), np.float64)
    for part, chunk, values in chunk_calls(run, (images, base, ranks), counts, targets, batch_size, pad=jit):
        curves[part, chunk] = values.T

    original = curves[:, -1] if reveal else curves[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_curves = np.where(original[:, None] > 0, curves / original[:, None], np.nan)
    scores = {
        "probability": np.trapezoid(curves, dx=step, axis=1),
        "ratio": np.trapezoid(ratio_curves, dx=step, axis=1),
    }
    return MetricResult(
        name=name,
        scores=scores,
        curves={"probability": curves, "ratio": ratio_curves},
        x=fractions,
        counts={"images": len(images), "undefined_ratio": int(np.isnan(scores["ratio"]).sum())},
        options={
            "step": step, "baseline": _scalar(baseline, images) if np.ndim(baseline) == 0 else "array", "how": how,
            "jit_compile": jit,
        },
    )


def insertion(model, images, targets, maps, *, step=0.05, baseline=0, batch_size=None, how="sum",
              jit_compile=JIT_AUTO):
    """Insertion curves and AUCs: reveal the top features of ``maps`` on the baseline canvas.

    Args:
      model, targets: as in :func:`idgi_tf.attribute`.
      images: the inputs (N, ...) of any rank >= 2: images (N, H, W, C), sequences (N, T, D),
        tabular (N, D), or integer token ids (N, T) (the model is only run forward).
      maps: shaped like the inputs (reduced over the last axis with ``how``) or like the inputs
        without their last axis (one value per feature: (N, H, W) for images, (N, T) for sequences).
        Tabular (N, D) inputs take (N, D) maps only (a feature is a column). For token ids
        explained at the embedding, pass the per-token sums of the (N, T, D) maps: ``maps.sum(-1)``.
      step: fraction of features revealed per point (0.05: 21 points).
      baseline: the value of hidden features: a scalar, one input (H, W, C) or one per example
        (N, H, W, C); black (0) by default. Integer inputs take an integer id, e.g. the pad id.
      batch_size: at most this many canvases through the model at once.
      how: reduction over the last axis of maps shaped like the inputs (see :func:`reduce_channels`).
      jit_compile: XLA for the model passes and the canvases: ``True``, ``False`` or
        ``"auto"`` (XLA on a GPU only; see :func:`idgi_tf.runtime.resolve_jit`).

    Returns:
      :class:`MetricResult` with scores ``probability`` and ``ratio``.

    Example:
      >>> maps = idgi_tf.attribute(model, images, labels, "ig", rule="idgi")
      >>> insertion(model, images, labels, maps).means()["probability"]
    """
    _checks.warn_if_unit_range(images, model, "insertion")
    return _perturbation_curve(
        "insertion", True, model, images, targets, maps,
        step=step, baseline=baseline, batch_size=batch_size, how=how, jit_compile=jit_compile,
    )


def deletion(model, images, targets, maps, *, step=0.05, baseline=0, batch_size=None, how="sum",
             jit_compile=JIT_AUTO):
    """Deletion curves and AUCs: set the top features of ``maps`` to the baseline. Lower is better.

    Same arguments and result as :func:`insertion`.
    """
    _checks.warn_if_unit_range(images, model, "deletion")
    return _perturbation_curve(
        "deletion", False, model, images, targets, maps,
        step=step, baseline=baseline, batch_size=batch_size, how=how, jit_compile=jit_compile,
    )
