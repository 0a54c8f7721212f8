"""SIC/AIC with PAIR ``saliency.metrics.pic`` semantics (``sic_aic(..., mode="pair")``), for cross-checks.

PAIR's ``compute_pic_metric`` per image and curve kind (SIC: ``pred = f``,
AIC: ``pred = 1[argmax = target]``):

* base = the image linearly interpolated (Delaunay) from a random 1 % of its
  pixels plus the corners; bokeh image for fraction ``t`` = the image
  interpolated from the pixels with ``map >= quantile(map, 1 - t)`` plus those;
* skip if ``pred(original) < min_pred``, or the base's WebP size or ``pred``
  is not below the original's;
* points ``(clip((e - e_base) / (e_orig - e_base)), running max of
  clip((pred - pred_base) / (pred_orig - pred_base)))`` plus (0, 0) and (1, 1),
  linearly interpolated on 1000 points of [0, 1) plus 1.0; area by trapezoid;
* aggregate: median (SIC) or mean (AIC) of the per-image curves, and its area.

Faster than PAIR, same numbers: one triangulation per bokeh image serves all
channels and both curves; interpolations and compression run in a thread
pool; the model sees the images in batches.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf
from scipy import interpolate

from ..runtime import cached, call_padded, explained_value_and_correct, image_groups
from . import information as info
from .result import MetricResult

CURVE_POINTS = 1000
CURVE_X = np.append(np.linspace(0.0, 1.0, CURVE_POINTS, endpoint=False), 1.0)  # PAIR's curve abscissa
RANDOM_FRACTION = 0.01
SKIP_REASONS = ("low_confidence", "base_not_less_informative", "base_not_less_confident")


def skip_counts(reasons: np.ndarray, prefix: str = "skipped") -> dict:
    """Skipped images in total and per reason, from indices into SKIP_REASONS (-1: kept)."""
    counts = {f"{prefix}_{name}": int((reasons == i).sum()) for i, name in enumerate(SKIP_REASONS)}
    counts[prefix] = int((reasons >= 0).sum())
    return counts


def draw_random_masks(count: int, height: int, width: int, seed: int) -> np.ndarray:
    """(count, H, W) masks with ``int(0.01 H W)`` random pixels set (PAIR ``generate_random_mask``)."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((count, height * width), bool)
    for mask in masks:
        mask[rng.choice(height * width, size=int(height * width * RANDOM_FRACTION), replace=False)] = True
    return masks.reshape(count, height, width)


def interpolated_image(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``image`` (H, W, C) uint8 with the pixels outside ``known`` interpolated (PAIR ``create_blurred_image``)."""
    known = known.copy()
    known[[0, 0, -1, -1], [0, -1, 0, -1]] = True
    if known.all():
        return image
    points, unknown = np.argwhere(known), np.argwhere(~known)
    values = interpolate.LinearNDInterpolator(points, image[known].astype(np.float64), fill_value=np.nan)(unknown)
    values = np.where(np.isnan(values), image.mean(axis=(0, 1)), values)
    out = image.astype(np.float32) * known[..., None]
    out[~known] = values
    return np.round(out).astype(np.uint8)


def pic_curve(levels, preds, min_pred: float):
    """PAIR's curve from (information level, prediction) of [original, base, bokeh images...].

    Returns ``(curve (1001,), area)``, or the index into ``SKIP_REASONS`` of why the image is skipped.
    """
    (e_orig, e_base, *e_rest), (p_orig, p_base, *p_rest) = levels, preds
    if p_orig < min_pred:
        return 0
    if e_base >= e_orig:
        return 1
    if p_base >= p_orig:
        return 2
    x = np.clip((np.asarray(e_rest) - e_base) / (e_orig - e_base), 0.0, 1.0)
    y = np.maximum.accumulate(np.clip((np.asarray(p_rest) - p_base) / (p_orig - p_base), 0.0, 1.0))
    curve = interpolate.interp1d(x=[*x, 0.0, 1.0], y=[*y, 0.0, 1.0])
    values = np.append(curve(CURVE_X[:-1]), 1.0)
    return values, float(np.trapezoid(values, CURVE_X))


def _model_outputs(model, images, targets, batch_size, jit):
    """f and correctness of (n, H, W, C) uint8 images, in batches (padded to one shape under XLA)."""
    run = cached(model, ("value_correct", jit),
                 lambda: tf.function(functools.partial(explained_value_and_correct, model), jit_compile=jit))
    value, correct = np.empty(len(images), np.float32), np.empty(len(images), bool)
    group = min(len(images), batch_size)
    for part in image_groups(len(images), group):
        rows = group if jit else part.stop - part.start
        value[part], correct[part] = call_padded(run, [images[part].astype(np.float32), targets[part]], rows)
    return value, correct


def _bokeh_stack(pixels, flat_maps, masks, fractions, pool):
    """[original, base, bokeh images...] of each image: (n, 2 + T, H, W, C) uint8."""
    jobs = [
        (i, mask if t is None else (flat_maps[i] >= np.quantile(flat_maps[i], 1 - t)) | mask)
        for i, mask in enumerate(masks)
        for t in (None, *fractions)
    ]
    made = pool.map(lambda job: interpolated_image(pixels[job[0]], job[1]), jobs)
    return np.concatenate([pixels[:, None], np.stack(list(made)).reshape(len(pixels), -1, *pixels.shape[1:])], 1)


def pair_sic_aic(model, pixels, targets, flat_maps, fractions, *, random_masks, seed, min_pred, batch_size, workers,
                 jit):
    """``sic_aic(mode="pair")`` on checked inputs (uint8 pixels, 2-D maps, fractions)."""
    n, height, width, _ = pixels.shape
    if random_masks is None:
        masks = draw_random_masks(n, height, width, seed)
    else:
        masks = np.asarray(random_masks)
        if masks.shape != (n, height, width):
            raise ValueError(f"random_masks must have shape {(n, height, width)}, got {masks.shape}")
        masks = masks.astype(bool)
    per_image = len(fractions) + 2
    value, correct = np.empty((n, per_image), np.float32), np.empty((n, per_image), bool)
    levels = np.empty((n, per_image))
    with ThreadPoolExecutor(workers) as pool:
        for part in image_groups(n, max(1, batch_size // per_image)):
            stack = _bokeh_stack(pixels[part], flat_maps[part], masks[part], fractions, pool)
            flat = stack.reshape(-1, *pixels.shape[1:])
            sizes = [pool.submit(info.webp_size, image) for image in flat]
            v, ok = _model_outputs(model, flat, np.repeat(targets[part], per_image), batch_size, jit)
            value[part], correct[part] = v.reshape(-1, per_image), ok.reshape(-1, per_image)
            levels[part] = np.array([size.result() for size in sizes]).reshape(-1, per_image)
    curves = {key: np.full((n, CURVE_X.size), np.nan) for key in ("sic", "aic")}
    scores = {key: np.full(n, np.nan) for key in ("sic", "aic")}
    reasons = {key: np.full(n, -1) for key in ("sic", "aic")}
    for key, pred in (("sic", value), ("aic", correct.astype(np.float32))):
        for i in range(n):
            outcome = pic_curve(levels[i], pred[i], min_pred)
            if isinstance(outcome, int):
                reasons[key][i] = outcome
            else:
                curves[key][i], scores[key][i] = outcome
    counts = {"images": n}
    for key in curves:
        counts.update(skip_counts(reasons[key], f"skipped_{key}"))
    aggregate_curves = {}
    for key, reduce in (("sic", np.median), ("aic", np.mean)):
        kept = curves[key][reasons[key] < 0]
        aggregate_curves[key] = reduce(kept, axis=0) if len(kept) else np.full(CURVE_X.size, np.nan)
    return MetricResult(
        name="sic_aic",
        scores=scores,
        curves=curves,
        x=CURVE_X,
        counts=counts,
        aggregate={key: float(np.trapezoid(curve, CURVE_X)) for key, curve in aggregate_curves.items()},
        aggregate_curves=aggregate_curves,
    )
