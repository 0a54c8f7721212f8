"""ROAD: RemOve And Debias (Rong et al., ICML 2022), with the authors' noisy linear imputation.

For each fraction ``p`` of ``percentages``, the ``floor(p * H * W)`` most relevant pixels of the 2-D map
(MoRF) or the least relevant ones (LeRF) are removed (all channels of a pixel together) and imputed: each
removed pixel ``i`` becomes the weighted mean of its 8 neighbours ``j`` (weight ``w_j = 1/6`` for the 4
direct neighbours, ``1/12`` for the 4 diagonal ones, renormalised over the neighbours inside the image)::

    (sum_j w_j) x_i - sum_{j removed} w_j x_j = sum_{j kept} w_j v_j        (one equation per removed pixel)

one sparse symmetric positive definite system for all removed pixels of an image, solved once for every
channel (the channels share the matrix), then Gaussian noise is added to the imputed values (the
authors' ``road/imputations.py``, ``NoisyLinearImputer``). The curve is ``f`` on each imputed image;
per image, ``morf`` is its mean over the fractions (lower is better), ``lerf`` the same in LeRF order
(higher is better) and ``gap = lerf - morf`` (higher is better). The imputation runs on the host
(SciPy); the imputed images go through the model in compiled batches (docs/metrics.md#road).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from .. import _checks
from ..runtime import JIT_AUTO, batch_size_or_default, explained_values, num_classes, resolve_jit
from ._canvas import pixel_ranks
from ._maps import checked_maps
from .result import MetricResult

PERCENTAGES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the removed fractions (the paper's 10 % ... 90 %)
NOISE = 0.01  # the authors' noise std on [0, 1] pixels, a fraction of the pixel range
PIXEL_RANGE = 255.0  # our pixels lie in [0, 255]: the noise std is NOISE * PIXEL_RANGE = 2.55
# (row offset, column offset, weight) of the 8 neighbours: the authors' ``neighbors_weights``.
NEIGHBOURS = ((-1, -1, 1 / 12), (-1, 0, 1 / 6), (-1, 1, 1 / 12), (0, -1, 1 / 6),
              (0, 1, 1 / 6), (1, -1, 1 / 12), (1, 0, 1 / 6), (1, 1, 1 / 12))
ORDERS = ("morf", "lerf")


def imputation_system(image: np.ndarray, removed: np.ndarray):
    """The linear system of the noisy linear imputation: ``(indices, A, b)``.

    ``image`` (H, W, C), ``removed`` (H, W) bool. ``indices`` are the flat (row-major) positions of the
    ``n`` removed pixels, ``A`` (n, n) the sparse (CSC) matrix with ``A_ii = sum of the weights of i's
    neighbours inside the image`` and ``A_ij = -w`` for a removed neighbour ``j`` of ``i``; ``b`` (n, C)
    holds ``sum_j w_j v_j`` over the kept neighbours' values ``v_j``.

    Example:
      >>> indices, a, b = imputation_system(image, removed)
      >>> scipy.sparse.linalg.spsolve(a, b)  # the imputed values, before the noise
    """
    height, width, channels = image.shape
    indices = np.flatnonzero(removed)
    count = indices.size
    variable = np.full(height * width, -1)
    variable[indices] = np.arange(count)
    rows, cols = np.divmod(indices, width)
    flat_removed = removed.ravel()
    values = image.reshape(-1, channels).astype(np.float64)
    diagonal = np.zeros(count)
    b = np.zeros((count, channels))
    entries = [(np.arange(count), np.arange(count), diagonal)]
    for row_offset, col_offset, weight in NEIGHBOURS:
        row, col = rows + row_offset, cols + col_offset
        inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
        equation = np.flatnonzero(inside)
        neighbour = row[inside] * width + col[inside]
        diagonal[equation] += weight
        unknown = flat_removed[neighbour]
        entries.append((equation[unknown], variable[neighbour[unknown]], np.full(unknown.sum(), -weight)))
        b[equation[~unknown]] += weight * values[neighbour[~unknown]]  # one neighbour per equation: no repeats
    i, j, a = (np.concatenate(parts) for parts in zip(*entries))
    return indices, scipy.sparse.csc_matrix((a, (i, j)), shape=(count, count)), b


def noisy_linear_imputation(image, removed, *, std: float = 0.0, rng: np.random.Generator | None = None):
    """Impute the ``removed`` pixels of one image: the solution of :func:`imputation_system` plus noise.

    The matrix is symmetric positive definite when one pixel at least is kept (a principal submatrix of the
    8-neighbour graph Laplacian), so it is factorised once, without pivoting (SuperLU, minimum degree
    ordering of ``A + A^T``), and solved for all C channels. Each imputed value gets ``N(0, std^2)`` noise
    from ``rng`` (std in the image's units; none when ``std == 0``). Kept pixels are returned unchanged.

    Args:
      image: one image (H, W, C).
      removed: (H, W) bool, True for the pixels to impute; at least one pixel must be kept.
      std: the noise's standard deviation, in the image's units.
      rng: a ``numpy.random.Generator``, needed when ``std > 0``.

    Returns:
      the imputed image, float64 (H, W, C).

    Example:
      >>> removed = np.zeros(image.shape[:2], bool); removed[10:20, 10:20] = True
      >>> noisy_linear_imputation(image, removed, std=2.55, rng=np.random.default_rng(0))
    """
    removed = np.asarray(removed, bool)
    if removed.shape != image.shape[:2] or removed.all():
        raise ValueError(f"removed must be an (H, W) = {image.shape[:2]} mask that keeps one pixel at least, got "
                         f"shape {removed.shape} with {int(removed.sum())} pixels removed")
    if std > 0 and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator when std > 0, got {rng!r}")
    indices, a, b = imputation_system(image, removed)
    imputed = image.reshape(-1, image.shape[-1]).astype(np.float64)
    if indices.size:
        solved = scipy.sparse.linalg.splu(a, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                          options={"SymmetricMode": True}).solve(b)
        imputed[indices] = solved + (std * rng.standard_normal(solved.shape) if std > 0 else 0.0)
    return imputed.reshape(image.shape)


def removed_pixels(ranks: np.ndarray, count: int, order: str) -> np.ndarray:
    """The (H, W) bool mask of the ``count`` pixels removed in ``order``: the best-ranked ones (``"morf"``,
    rank 0 = most relevant) or the worst-ranked ones (``"lerf"``).

    Example:
      >>> removed_pixels(np.array([[0, 1], [2, 3]]), 1, "lerf")
      array([[False, False],
             [False,  True]])
    """
    return ranks < count if order == "morf" else ranks >= ranks.size - count


def _checked_percentages(percentages, pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """The fractions as a float array and the pixel counts they remove, ``floor(p * pixels)``."""
    array = np.asarray(percentages, np.float64) if np.ndim(percentages) == 1 else None
    if array is None or array.size == 0 or not np.isfinite(array).all() or array.min() <= 0 or array.max() >= 1 \
            or np.any(np.diff(array) <= 0):
        raise ValueError(f"percentages must be a non-empty increasing list of fractions in (0, 1) (the removed "
                         f"shares of the pixels, e.g. {list(PERCENTAGES)}), got {percentages!r}")
    counts = np.floor(np.round(array * pixels, 9)).astype(np.int64)  # the authors' int(p * H * W)
    if counts.max() >= pixels:
        raise ValueError(f"percentages: {array.max()} removes all {pixels} pixels of an image; one must stay to "
                         "impute from")
    return array, counts


def _imputed_images(image, ranks, counts, std, seed: int, index: int) -> np.ndarray:
    """Image ``index``'s imputed images, (2, P, H, W, C) float32: MoRF then LeRF at each count, each with
    noise from its own generator ``(seed, index, order, percentage)``, whatever the batching."""
    return np.stack([
        np.stack([
            noisy_linear_imputation(image, removed_pixels(ranks, int(count), order), std=std,
                                    rng=np.random.default_rng([seed, index, side, column]))
            for column, count in enumerate(counts)
        ])
        for side, order in enumerate(ORDERS)
    ]).astype(np.float32)


def _values(model, images, targets, ranks, counts, std, seed, batch_size, jit) -> np.ndarray:
    """``f`` on every imputed image, (N, 2, P): groups of images whose 2P imputed images fill about one
    ``batch_size`` pass; under XLA the last group is padded to the others' size (one compilation)."""
    per_image = 2 * len(counts)
    group = max(1, batch_size // per_image)
    values = np.empty((len(images), 2, len(counts)), np.float64)
    for start in range(0, len(images), group):
        part = range(start, min(start + group, len(images)))
        imputed = np.concatenate([_imputed_images(images[i], ranks[i], counts, std, seed, i) for i in part])
        imputed = imputed.reshape(-1, *images.shape[1:])
        rows = np.repeat(targets[part.start:part.stop], per_image)
        padded = group * per_image if jit else len(rows)
        take = np.minimum(np.arange(padded), len(rows) - 1)  # repeat the last imputed image
        out = explained_values(model, imputed[take], rows[take], batch_size, jit)[: len(rows)]
        values[part.start:part.stop] = out.reshape(len(part), 2, len(counts))
    return values


def road(model, images, targets, maps, *, percentages=PERCENTAGES, noise=NOISE, seed=0, batch_size=None,
         how="sum", jit_compile=JIT_AUTO):
    """ROAD (Rong et al. 2022): ``f`` after removing the most (MoRF) or least (LeRF) relevant pixels and
    imputing them by noisy linear imputation.

    For each ``p`` in ``percentages``, ``k = floor(p * H * W)`` pixels are removed (ranked by the 2-D map,
    all channels together, ties broken by row-major order) and imputed by
    :func:`noisy_linear_imputation`: each removed pixel is the weighted mean of its 8 neighbours
    (``1/6`` direct, ``1/12`` diagonal, renormalised at the border), one sparse system per image and
    ``p``, plus ``N(0, (noise * 255)^2)`` noise: the authors' ``noise=0.01`` is on pixels in [0, 1], ours
    lie in [0, 255], so the default std is 2.55 (for images in other units, scale ``noise`` by their
    range over 255). The noise of image ``i`` at ``p`` comes from ``numpy.random.default_rng([seed, i,
    order, p's index])``: it does not depend on ``batch_size``.

    Scores per image: ``morf = mean_p f(MoRF image at p)`` (lower is better: the headline, as in the
    paper's MoRF curves and Quantus' ROAD), ``lerf = mean_p f(LeRF image at p)`` (higher is better),
    ``gap = lerf - morf`` (higher is better).

    Args:
      model: a classifier; ``f`` is the target's output (a probability for a softmax model, as in the paper).
      targets: an int class index per image (N,) or one int for all.
      images: (N, H, W, C) pixels in [0, 255], any C (1 for grey), any H and W.
      maps: (N, H, W, C) (reduced over channels with ``how``) or (N, H, W).
      percentages: the removed fractions, increasing, each in (0, 1) (default 0.1, 0.2, ..., 0.9).
      noise: the noise std as a fraction of the pixel range 255 (the authors' 0.01); 0 for none.
      seed: seed of the noise.
      batch_size: at most about this many imputed images through the model at once (default 32).
      how: channel reduction of (N, H, W, C) maps (see :func:`reduce_channels`).
      jit_compile: XLA for the model passes: ``True``, ``False`` or ``"auto"`` (XLA on a GPU only).

    Returns:
      :class:`MetricResult` with scores ``morf``, ``lerf``, ``gap`` (N,) and curves ``morf``, ``lerf``
      (N, P) over ``x = percentages``.

    Example:
      >>> maps = idgi_tf.attribute(model, images, labels, "ig", rule="idgi")
      >>> road(model, images, labels, maps).means()  # {"morf": ..., "lerf": ..., "gap": ...}
    """
    _checks.warn_if_unit_range(images, model, "road")
    images = _checks.images(images)
    flat_maps = checked_maps(maps, images, how)
    fractions, counts = _checked_percentages(percentages, images.shape[1] * images.shape[2])
    noise = _checks.number_in(noise, "noise", 0.0, 1.0)
    seed = _checks.seed(seed)
    batch_size = batch_size_or_default(batch_size)
    jit = resolve_jit(jit_compile)
    targets = _checks.targets(targets, len(images), num_classes(model, images))  # may call the model once

    values = _values(model, images, targets, pixel_ranks(flat_maps), counts, noise * PIXEL_RANGE, seed,
                     batch_size, jit)
    curves = dict(zip(ORDERS, (values[:, 0], values[:, 1])))
    morf, lerf = curves["morf"].mean(axis=1), curves["lerf"].mean(axis=1)
    return MetricResult(
        name="road",
        scores={"morf": morf, "lerf": lerf, "gap": lerf - morf},
        curves=curves,
        x=fractions,
        counts={"images": len(images)},
        options={"percentages": fractions.tolist(), "noise": noise, "seed": seed, "how": how, "jit_compile": jit},
    )
