"""Weakly supervised localization (IDGI paper section 4.6, Table 4; protocol pinned in docs/metrics.md#localization).

Saliency = the 2-D map (``sum_abs`` of 3-D attributions), min-max normalised
per image; ground truth = the union of the image's boxes. Per image:

* ``roc_auc``: ROC-AUC of saliency against the mask (Mann-Whitney, ties averaged);
* ``f1``: the best F1 of ``saliency >= t`` over ``t`` in ``linspace(0, 1, thresholds)``;
* ``mae``: the least mean ``|1[saliency >= t] - mask|`` over the same ``t``.

An image whose mask is all inside or all outside has no ROC-AUC (NaN, counted).
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ._maps import reduce_channels, refuse_other_ranks
from .result import MetricResult


def _normalised(maps_2d: np.ndarray) -> np.ndarray:
    low = maps_2d.min(axis=(1, 2), keepdims=True)
    span = maps_2d.max(axis=(1, 2), keepdims=True) - low
    return np.divide(maps_2d - low, span, out=np.zeros_like(maps_2d), where=span > 0)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the boolean labels ``positive`` (ties count 1/2)."""
    scores, positive = scores.ravel(), positive.ravel()
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based mean rank of each tie group
    rank_sum = average_rank[inverse][positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _scores(saliency: np.ndarray, truth: np.ndarray, levels: np.ndarray) -> tuple[float, float, float]:
    """(ROC-AUC, best F1, least MAE) of one normalised 2-D saliency map against its mask."""
    predicted = saliency[None] >= levels[:, None, None]  # (T, H, W)
    hits = (predicted & truth[None]).sum(axis=(1, 2))
    predicted_count = predicted.sum(axis=(1, 2))
    positives = truth.sum()
    denominator = predicted_count + positives
    f1 = np.divide(2.0 * hits, denominator, out=np.zeros(hits.shape), where=denominator > 0)
    mae = (predicted_count + positives - 2 * hits) / truth.size  # |pred - mask| summed / pixels
    return roc_auc(saliency, truth), float(f1.max()), float(mae.min())


def localization(maps, box_masks, *, thresholds: int = 101, how: str = "sum_abs") -> MetricResult:
    """ROC-AUC, best F1 and least MAE of each map against its box mask.

    Args:
      maps: attributions (N, H, W, C) (reduced with ``how``) or 2-D maps (N, H, W).
      box_masks: (N, H, W) ground truth, 1 (or True) inside the boxes and 0 outside
        (e.g. from :func:`idgi_tf.data.imagenet_validation` or ``sample_images``).
      thresholds: number of thresholds in [0, 1] for F1 and MAE (at least 2).
      how: channel reduction of 3-D maps.

    Returns:
      :class:`MetricResult` with scores ``roc_auc``, ``f1`` and ``mae``.

    Example:
      >>> samples = idgi_tf.data.sample_images(224)
      >>> maps = idgi_tf.attribute(model, samples.images, samples.labels, "ig", rule="idgi")
      >>> localization(maps, samples.masks).summary()
    """
    thresholds = _checks.positive_int(thresholds, "thresholds")
    if thresholds < 2:
        raise ValueError(f"thresholds must be at least 2, got {thresholds}")
    refuse_other_ranks(maps, "localization", "maps", "(N, H, W, C) or (N, H, W)", ranks=(3, 4))
    refuse_other_ranks(box_masks, "localization", "box_masks", "(N, H, W)", ranks=(3,))
    masks = np.asarray(box_masks)
    if masks.shape[0] == 0:
        raise ValueError(f"box_masks must have shape (N, H, W) with N >= 1, got {masks.shape}")
    flat = reduce_channels(maps, how)
    if flat.shape != masks.shape:
        raise ValueError(f"maps must match box_masks {masks.shape} (or add a channel axis), got {np.shape(maps)}")
    if not np.isfinite(flat).all():
        raise ValueError("maps contain NaN or Inf values")
    truth = _checks.binary_masks(masks, masks.shape, "box_masks")
    levels = np.linspace(0.0, 1.0, thresholds)
    scores = np.array([_scores(s, t, levels) for s, t in zip(_normalised(flat), truth)])
    auc, f1, mae = scores.T
    return MetricResult(
        name="localization",
        scores={"roc_auc": auc, "f1": f1, "mae": mae},
        counts={"images": len(flat), "undefined_roc_auc": int(np.isnan(auc).sum())},
        options={"thresholds": thresholds, "how": how},
    )
