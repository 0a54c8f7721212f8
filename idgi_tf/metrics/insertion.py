"""Insertion and Deletion (Petsiuk et al. 2018; IDGI paper section 4.3, Table 1).

Pixels are ranked by the 2-D map (all channels of a pixel move together).
Insertion starts from the baseline canvas (black) and reveals the top
``step`` fraction of pixels at a time: ``1/step + 1`` canvases from 0 % to
100 %; the curve is ``f`` on each canvas. Deletion is the mirror: it starts
from the image and sets the top pixels to the baseline. Scores per image:

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
from ..runtime import JIT_AUTO, batch_size_or_default, cached, explained_value, num_classes, resolve_jit
from ._canvas import canvases, chunk_calls, pixel_ranks
from ._maps import checked_maps
from .result import MetricResult


def _canvas_values(model, reveal, images, baseline, ranks, counts, targets):
    """f on the canvases of ``counts`` (c,) revealed/hidden pixels for every image: (c, n)."""
    top, rest = (images, baseline) if reveal else (baseline, images)
    values = explained_value(model, canvases(top, rest, ranks, counts), tf.tile(targets, tf.shape(counts)))
    return tf.reshape(values, [tf.shape(counts)[0], images.shape[0]])


def _perturbation_curve(name, reveal, model, images, targets, maps, *, step, baseline, batch_size, how,
                        jit_compile):
    jit = resolve_jit(jit_compile)
    images = _checks.images(images)
    targets = _checks.targets(targets, len(images), num_classes(model, images))
    flat_maps = checked_maps(maps, images, how)
    step = _checks.number_in(step, "step", 0.0, 1.0, low_open=True)
    levels = round(1.0 / step)
    if abs(levels * step - 1.0) > 1e-9:
        raise ValueError(f"step must divide 1 into equal parts (e.g. 0.05, 0.1), got {step}")
    batch_size = batch_size_or_default(batch_size)
    base = _checks.like_images(baseline, images, "baseline")

    pixels = images.shape[1] * images.shape[2]
    fractions = np.linspace(0.0, 1.0, levels + 1)
    counts = np.round(fractions * pixels).astype(np.int32)
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
            "step": step, "baseline": float(baseline) if np.ndim(baseline) == 0 else "array", "how": how,
            "jit_compile": jit,
        },
    )


def insertion(model, images, targets, maps, *, step=0.05, baseline=0.0, batch_size=None, how="sum",
              jit_compile=JIT_AUTO):
    """Insertion curves and AUCs: reveal the top pixels of ``maps`` on the baseline canvas.

    Args:
      model, images, targets: as in :func:`idgi_tf.attribute`.
      maps: attributions (N, H, W, C) or 2-D maps (N, H, W).
      step: fraction of pixels revealed per point (0.05: 21 points).
      baseline: the canvas (scalar, (H, W, C) or (N, H, W, C)); black by default.
      batch_size: at most this many canvases through the model at once.
      how: channel reduction of 3-D maps (see :func:`reduce_channels`).
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


def deletion(model, images, targets, maps, *, step=0.05, baseline=0.0, batch_size=None, how="sum",
             jit_compile=JIT_AUTO):
    """Deletion curves and AUCs: set the top pixels of ``maps`` to the baseline. Lower is better.

    Same arguments and result as :func:`insertion`.
    """
    _checks.warn_if_unit_range(images, model, "deletion")
    return _perturbation_curve(
        "deletion", False, model, images, targets, maps,
        step=step, baseline=baseline, batch_size=batch_size, how=how, jit_compile=jit_compile,
    )
