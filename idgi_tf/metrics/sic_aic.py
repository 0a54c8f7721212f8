"""SIC and AIC: Softmax and Accuracy Information Curves (Kapishnikov et al. 2019; IDGI paper 4.4-4.5, Tables 2-3).

Paper protocol (``mode="paper"``, docs/metrics.md#sic-and-aic). For each image, the
base is ``PIL GaussianBlur(blur_radius)`` of the image; bokeh image ``k`` takes
the ``k`` top-ranked pixels of the 2-D map from the image and the rest from the
base, for ``k`` in ``round(thresholds * H * W)`` (25 counts from 0 to H·W).
Each bokeh image gives a point:

* x, its information level: normalised entropy ``clip((e - e_base) / (e_orig -
  e_base), 0, 1)`` with ``e`` the lossless-WebP size, or MS-SSIM(bokeh, original);
* SIC y = ``clip(f(bokeh) / f(original), 0, 1)``; AIC y = ``1[argmax = target]``.

The points of all images are binned over x (``bins`` equal bins of [0, 1]);
the AIC curve is the mean per bin and the SIC curve the median per bin. An
empty bin takes the linear interpolation of its non-empty neighbours (the
nearest one at the ends; our choice, docs/metrics.md#sic-and-aic); the area is the mean of
the bins (each is 1/bins wide). The same binning of one image's points gives
its per-image curve and area.

An image is skipped, and counted, if ``f(original) < min_pred``, or the base is
not less informative, or not less confident, than the original (PAIR's
``ComputePicMetricError`` cases).

``mode="pair"`` reproduces PAIR ``saliency.metrics.pic`` instead (see
:mod:`idgi_tf.metrics.pic_pair`).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from .. import _checks
from ..runtime import (
    JIT_AUTO,
    batch_size_or_default,
    cached,
    explained_value_and_correct,
    num_classes,
    repeat_rows,
    resolve_jit,
)
from . import information as info
from ._canvas import canvases, chunk_calls, pixel_ranks
from ._maps import checked_maps, refuse_other_ranks
from .pic_pair import pair_sic_aic, skip_counts
from .result import MetricResult

INFORMATION = ("entropy", "msssim")
MODES = ("paper", "pair")


def threshold_fractions(thresholds) -> np.ndarray:
    """``thresholds`` as fractions of the pixels: an int T >= 2 gives ``linspace(0, 1, T)``."""
    if isinstance(thresholds, (int, np.integer)) and not isinstance(thresholds, bool):
        if thresholds < 2:
            raise ValueError(f"thresholds must be at least 2, got {thresholds}")
        return np.linspace(0.0, 1.0, int(thresholds))
    fractions = np.asarray(thresholds, dtype=np.float64)
    if fractions.ndim != 1 or fractions.size < 1 or not np.all((fractions >= 0) & (fractions <= 1)) \
            or np.any(np.diff(fractions) <= 0):
        raise ValueError(
            "thresholds must be an int >= 2 or an increasing sequence of pixel fractions in [0, 1], "
            f"got {thresholds!r}"
        )
    return fractions


def binned_curve(x: np.ndarray, y: np.ndarray, bins: int, reduce) -> np.ndarray:
    """``reduce`` of the ``y`` whose ``x`` falls in each of ``bins`` equal bins of [0, 1].

    Empty bins are interpolated linearly between the nearest non-empty bins
    (constant beyond the first and last). All-NaN when there are no points.
    """
    x, y = np.ravel(x), np.ravel(y)
    defined = np.isfinite(x) & np.isfinite(y)
    x, y = x[defined], y[defined]
    if x.size == 0:
        return np.full(bins, np.nan)
    index = np.minimum((x * bins).astype(np.int64), bins - 1)
    centers = (np.arange(bins) + 0.5) / bins
    occupied = np.unique(index)
    values = np.array([reduce(y[index == b]) for b in occupied])
    return np.interp(centers, centers[occupied], values)


def _bokeh_outputs(model, information, images, base, ranks, counts, targets):
    """f, correctness and the information measure on the bokeh images of ``counts`` (c,): each (c, n).

    With ``information="entropy"`` the measure is left to the host: the bokeh
    images themselves come back, (c, n, H, W, C) uint8.
    """
    bokeh = canvases(images, base, ranks, counts)
    c, n = tf.shape(counts)[0], images.shape[0]
    value, correct = explained_value_and_correct(model, bokeh, repeat_rows(targets, c))
    if information == "msssim":
        measure = tf.reshape(info.ms_ssim(bokeh, tf.tile(images, [c, 1, 1, 1])), [c, n])
    else:
        measure = tf.reshape(tf.cast(bokeh, tf.uint8), [c, n, *images.shape[1:]])
    return tf.reshape(value, [c, n]), tf.reshape(correct, [c, n]), measure


def _evaluate(run, pixels, base, ranks, counts, targets, batch_size, pool, jit):
    """f, correctness and information level (each (n, c)) of the bokeh images of ``counts``.

    Compression jobs go to ``pool`` as soon as a chunk's images come back, so
    they overlap the model work on the next group of images; a group's jobs
    are collected once the next group's model work is done, which bounds memory.
    """
    n, c = len(pixels), len(counts)
    value, correct, level = np.empty((n, c)), np.empty((n, c), bool), np.empty((n, c))
    previous, current, group = [], [], None
    for part, chunk, (v, ok, measure) in chunk_calls(run, (pixels, base, ranks), counts, targets, batch_size,
                                                     pad=jit):
        if part != group:  # a new group of images: the group before the last one is compressed by now
            _collect(previous, level)
            previous, current, group = current, [], part
        value[part, chunk], correct[part, chunk] = v.T, ok.T
        if measure.ndim == 2:
            level[part, chunk] = measure.T
        else:  # bokeh images (c, n, H, W, C) to compress
            current.append((part, chunk, [[pool.submit(info.webp_size, im) for im in row] for row in measure]))
    _collect(previous, level)
    _collect(current, level)
    return value, correct, level


def _collect(jobs, level) -> None:
    for part, chunk, futures in jobs:
        level[part, chunk] = np.array([[future.result() for future in row] for row in futures]).T


def _skip_reasons(f_orig, f_base, level_orig, level_base, min_pred):
    """Index into SKIP_REASONS of the first reason to skip each image, or -1 to keep it."""
    reasons = np.stack([
        ~(f_orig >= min_pred) | ~(f_orig > 0),
        level_base >= level_orig,
        f_base >= f_orig,
    ])
    return np.where(reasons.any(axis=0), np.argmax(reasons, axis=0), -1)


def _paper(model, pixels, targets, flat_maps, fractions, *, information, bins, base, min_pred, batch_size, workers,
           jit):
    n, height, width, _ = pixels.shape
    area = height * width
    counts = np.round(fractions * area).astype(np.int32)
    ranks = pixel_ranks(flat_maps)
    run = cached(
        model, ("bokeh", information, jit),
        lambda: tf.function(functools.partial(_bokeh_outputs, model, information), jit_compile=jit),
    )
    pixels, base = pixels.astype(np.float32), base.astype(np.float32)
    with ThreadPoolExecutor(workers) as pool:
        ends = _evaluate(run, pixels, base, ranks, np.array([0, area], np.int32), targets, batch_size, pool, jit)
        (f_base, f_orig), _, (level_base, level_orig) = (a.T for a in ends)
        reasons = _skip_reasons(f_orig, f_base, level_orig, level_base, min_pred)
        keep = np.flatnonzero(reasons < 0)
        inner = np.unique(counts[(counts > 0) & (counts < area)])
        value, correct, level = (np.full((n, len(counts)), np.nan) for _ in range(3))
        if keep.size:
            inside = _evaluate(run, pixels[keep], base[keep], ranks[keep], inner, targets[keep], batch_size, pool,
                               jit)
            for column, count in enumerate(counts):
                if count == 0 or count == area:
                    source = [a[keep, 0 if count == 0 else 1] for a in ends]
                else:
                    at = int(np.searchsorted(inner, count))
                    source = [a[:, at] for a in inside]
                value[keep, column], correct[keep, column], level[keep, column] = source
    if information == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.clip((level - level_base[:, None]) / (level_orig - level_base)[:, None], 0.0, 1.0)
    else:
        x = np.clip(level, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sic = np.clip(value / f_orig[:, None], 0.0, 1.0)
    aic = correct
    x[reasons >= 0], sic[reasons >= 0] = np.nan, np.nan

    per_image = {
        "sic": np.stack([binned_curve(a, b, bins, np.median) for a, b in zip(x, sic)]),
        "aic": np.stack([binned_curve(a, b, bins, np.mean) for a, b in zip(x, aic)]),
    }
    aggregate_curves = {"sic": binned_curve(x, sic, bins, np.median), "aic": binned_curve(x, aic, bins, np.mean)}
    return MetricResult(
        name="sic_aic",
        scores={key: curve.mean(axis=1) for key, curve in per_image.items()},
        curves={**per_image, "points_information": x, "points_sic": sic, "points_aic": aic},
        x=(np.arange(bins) + 0.5) / bins,
        counts={"images": n, **skip_counts(reasons)},
        aggregate={key: float(curve.mean()) for key, curve in aggregate_curves.items()},
        aggregate_curves=aggregate_curves,
    )


def sic_aic(
    model,
    images,
    targets,
    maps,
    *,
    information: str = "entropy",
    thresholds=25,
    bins: int = 100,
    blur_radius: float = 20.0,
    mode: str = "paper",
    min_pred: float = 0.8,
    base_images=None,
    random_masks=None,
    seed: int = 0,
    batch_size: int | None = None,
    how: str = "sum",
    workers: int | None = None,
    jit_compile=JIT_AUTO,
) -> MetricResult:
    """SIC and AIC curves and areas of ``maps`` (module docstring: the protocol).

    Args:
      model, images, targets: as in :func:`idgi_tf.attribute`; ``images`` are
        8-bit pixels in [0, 255] (rounded; float images in [0, 1] are refused), RGB or grayscale
        (1 channel), ``model(x)[target]`` should be a softmax probability.
      maps: attributions (N, H, W, C) or 2-D maps (N, H, W); higher = more important.
      information: ``"entropy"`` (Table 2) or ``"msssim"`` (Table 3; images of
        at least 161 x 161).
      thresholds: number of pixel fractions ``linspace(0, 1, thresholds)``, or
        the increasing fractions themselves.
      bins: information-level bins of [0, 1] (paper mode).
      blur_radius: radius of the PIL Gaussian blur that makes the base (paper mode).
      mode: ``"paper"`` (docs/metrics.md#sic-and-aic) or ``"pair"`` (PAIR ``pic.py``).
      min_pred: skip images with ``f(original)`` below this.
      base_images: the base images instead of the blur (paper mode), e.g.
        blurred before resizing; (H, W, C) or (N, H, W, C) in [0, 255].
      random_masks: (N, H, W) bool seed pixels of PAIR's base (pair mode);
        by default 1 % of the pixels drawn with ``seed``.
      seed: seed of the default random masks (pair mode).
      batch_size: at most this many bokeh images through the model at once.
      how: channel reduction of 3-D maps (see :func:`reduce_channels`).
      workers: threads compressing images (default: one per CPU).
      jit_compile: XLA for the bokeh images, MS-SSIM and the model passes: ``True``,
        ``False`` or ``"auto"`` (XLA on a GPU only; see :func:`idgi_tf.runtime.resolve_jit`).
        WebP compression always runs on the host.

    Returns:
      :class:`MetricResult`: ``aggregate["sic"]`` and ``aggregate["aic"]`` are
      the areas the paper reports (``aggregate_curves`` the curves); ``scores``
      hold per-image areas, ``counts`` the skipped images by reason.

    Example:
      >>> maps = idgi_tf.attribute(model, images, labels, "ig", rule="idgi")
      >>> result = sic_aic(model, images, labels, maps, information="msssim")
      >>> result.aggregate["sic"], result.aggregate["aic"], result.counts["skipped"]
    """
    jit = resolve_jit(jit_compile)
    _checks.choice(information, "information", INFORMATION)
    _checks.choice(mode, "mode", MODES)
    if mode == "pair" and information != "entropy":
        raise ValueError("mode='pair' reproduces PAIR pic.py, which measures information by entropy only")
    refuse_other_ranks(images, "sic_aic", "images", "(N, H, W, C)")
    info.refuse_unit_range(images)
    images = _checks.images(images)
    info.check_channels(images.shape)
    pixels = info.pixels_uint8(images)
    targets = _checks.targets(targets, len(images), num_classes(model, images))
    flat_maps = checked_maps(maps, images, how)
    fractions = threshold_fractions(thresholds)
    bins = _checks.positive_int(bins, "bins")
    seed = _checks.seed(seed)
    min_pred = _checks.number_in(min_pred, "min_pred", 0.0, 1.0)
    batch_size = batch_size_or_default(batch_size)
    workers = os.cpu_count() if workers is None else _checks.positive_int(workers, "workers")
    if information == "msssim":
        info.check_ms_ssim_size(images.shape)
    options = {"information": information, "thresholds": fractions.size, "bins": bins, "mode": mode,
               "min_pred": min_pred, "how": how, "jit_compile": jit}
    if mode == "pair":
        if base_images is not None:
            raise ValueError("base_images applies to mode='paper'; PAIR's base comes from random_masks")
        result = pair_sic_aic(model, pixels, targets, flat_maps, fractions, random_masks=random_masks,
                              seed=seed, min_pred=min_pred, batch_size=batch_size, workers=workers, jit=jit)
        result.options = {**options, "seed": seed if random_masks is None else "given"}
        return result
    if random_masks is not None:
        raise ValueError("random_masks applies to mode='pair'; the paper's base is a Gaussian blur")
    if base_images is None:
        blur_radius = _checks.number_in(blur_radius, "blur_radius", 0.0, float("inf"))
        base = info.gaussian_blurred(pixels, blur_radius)
    else:
        info.refuse_unit_range(base_images, "base_images")
        base = info.pixels_uint8(_checks.like_inputs(base_images, images, "base_images"), "base_images")
    result = _paper(model, pixels, targets, flat_maps, fractions, information=information, bins=bins,
                    base=base, min_pred=min_pred, batch_size=batch_size, workers=workers, jit=jit)
    result.options = {**options, "blur_radius": blur_radius if base_images is None else "given"}
    return result
