"""Frequencies of attribution maps and the optimal low-pass filter (Muzellec et al., ICML 2024; docs/spectral.md).

Frequencies are measured in cycles per ``side = min(H, W)`` pixels along
either axis, so one radius means the same spatial scale on non-square maps:
``r(ky, kx) = side * sqrt((ky / H)^2 + (kx / W)^2)`` for the DFT indices
``ky, kx`` (signed). On a square map this is the frequency-index radius of
Xplique's ``forgrad``. A ``cutoff`` below 1 is a fraction of ``side``
(``15 / 224`` is the paper's sigma for 224-px images); 1 and above are cycles.

* :func:`power_spectrum`: |DFT|^2 of the mean-removed map, averaged over the
  annuli ``round(r) = 0, 1, ..., side // 2``.
* :func:`high_frequency_ratio`: the share of the power above a cutoff.
* :func:`lowpass`: FORGrad (channel mean, ``|.|``, ``rfft2d``, an ideal disc of
  radius ``cutoff`` (or a Gaussian), ``irfft2d``, ``|.|``), any size.
* :func:`tune_cutoff`: the paper's argmax of a fidelity score over cutoffs.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import tensorflow as tf

from .. import _checks
from .. import metrics as metrics_lib
from ..metrics._maps import finite_maps

PAPER_CUTOFF = 15 / 224  # the paper's sigma for 224-px ImageNet images, as a fraction of the side
KINDS = ("ideal", "gaussian")


def radii(height: int, width: int, half: bool = False) -> np.ndarray:
    """Frequency radius of every DFT coefficient, in cycles per ``min(H, W)`` (see the module doc).

    ``half=True`` gives the ``rfft2d`` layout (H, W // 2 + 1).
    """
    side = min(height, width)
    # integer frequency indices, scaled to cycles per side: exact on a square grid, so that a cutoff of
    # 15 keeps the coefficients at radius exactly 15 (fftfreq's k / n times n is not always k)
    ky = np.rint(np.fft.fftfreq(height) * height)[:, None] * (side / height)
    kx = np.rint((np.fft.rfftfreq(width) if half else np.fft.fftfreq(width)) * width)[None, :] * (side / width)
    return np.sqrt(ky**2 + kx**2)


def cutoff_cycles(cutoff, height: int, width: int) -> float:
    """A cutoff given as a fraction of the side (< 1) or in cycles (>= 1), in cycles."""
    value = _checks.number_in(cutoff, "cutoff", 0.0, float("inf"), low_open=True)
    return value * min(height, width) if value < 1 else value


def _power(flat: np.ndarray) -> np.ndarray:
    """|DFT|^2 / (H W) of each mean-removed map (N, H, W)."""
    centred = flat - flat.mean(axis=(1, 2), keepdims=True)
    return np.abs(np.fft.fft2(centred)) ** 2 / (flat.shape[1] * flat.shape[2])


def power_spectrum(maps, *, how: str = "sum"):
    """Radially averaged power spectrum of each map (mean removed).

    Args:
      maps: (N, H, W) or (N, H, W, C) (reduced over channels with ``how``).

    Returns:
      (frequencies (R,), spectra (N, R)) for the annuli ``round(r) = 0 .. min(H, W) // 2``.
    """
    flat = finite_maps(maps, how)
    _, height, width = flat.shape
    power = _power(flat)
    ring = np.round(radii(height, width)).astype(int).ravel()
    count = min(height, width) // 2 + 1
    inside = ring < count
    totals = np.zeros((len(flat), count))
    np.add.at(totals.T, ring[inside], power.reshape(len(flat), -1)[:, inside].T)
    return np.arange(count, dtype=np.float64), totals / np.bincount(ring[inside], minlength=count)


def high_frequency_ratio(maps, cutoff, *, how: str = "sum") -> np.ndarray:
    """Share of each map's power (mean removed) at radii above ``cutoff``, (N,); NaN for a flat map."""
    flat = finite_maps(maps, how)
    _, height, width = flat.shape
    power = _power(flat)
    high = radii(height, width) > cutoff_cycles(cutoff, height, width)
    total = power.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, power[:, high].sum(axis=1) / total, np.nan)


@functools.lru_cache(maxsize=64)
def _mask(height: int, width: int, cutoff: float, kind: str) -> np.ndarray:
    r = radii(height, width, half=True)
    if kind == "ideal":
        return (r <= cutoff).astype(np.float32)
    return np.exp(-(r**2) / (2.0 * cutoff**2)).astype(np.float32)


@functools.partial(tf.function, reduce_retracing=True)
def _filter(maps, mask, signed: bool):
    spectrum = tf.signal.rfft2d(maps if signed else tf.abs(maps))
    filtered = tf.signal.irfft2d(spectrum * tf.cast(mask, tf.complex64), fft_length=tf.shape(maps)[1:])
    return filtered if signed else tf.abs(filtered)


def lowpass(maps, cutoff=PAPER_CUTOFF, *, kind: str = "ideal", signed: bool = False) -> np.ndarray:
    """FORGrad low-pass filter of attribution maps, (N, H, W) float32 (docs/spectral.md#forgrad-low-pass).

    ``channel mean -> |.| -> rfft2d -> x mask -> irfft2d -> |.|``; the mask is
    the disc ``r <= cutoff`` (``kind="ideal"``, the paper's filter) or
    ``exp(-r^2 / 2 cutoff^2)`` (``"gaussian"``). ``signed=True`` skips both
    ``|.|`` (a plain linear filter). Odd and non-square sizes are exact
    (``irfft2d`` with the original length), unlike Xplique's resize.

    Args:
      maps: (N, H, W) or (N, H, W, C).
      cutoff: a fraction of ``min(H, W)`` (< 1; default the paper's 15/224) or cycles (>= 1).

    Example:
      >>> smooth = lowpass(attribute(model, x, t, "vg"))  # the paper's sigma, 15 px at 224
    """
    _checks.choice(kind, "kind", KINDS)
    array = np.asarray(maps, np.float32)
    if array.ndim == 4:
        array = array.mean(axis=-1)
    if array.ndim != 3:
        raise ValueError(f"maps must have shape (N, H, W) or (N, H, W, C), got {np.shape(maps)}")
    if not np.isfinite(array).all():
        raise ValueError("maps contain NaN or Inf values")
    _, height, width = array.shape
    mask = _mask(height, width, cutoff_cycles(cutoff, height, width), kind)
    return _filter(tf.constant(array), tf.constant(mask), bool(signed)).numpy()


def spread_over_channels(maps_2d: np.ndarray, channels: int) -> np.ndarray:
    """2-D maps (N, H, W) as (N, H, W, C) float32 whose channel sum is the 2-D map (a low-passed map beside
    the maps it came from, e.g. the bench's "+LP" rows)."""
    return np.repeat(maps_2d[..., None] / channels, channels, axis=-1).astype(np.float32)


@dataclasses.dataclass
class CutoffSearch:
    """What :func:`tune_cutoff` found.

    Attributes:
      best: the cutoff (in cycles) with the best mean score.
      cutoffs: the cutoffs tried, in cycles.
      scores: the mean score at each cutoff (the mean of ``per_image`` over its finite values).
      unfiltered: the mean score of the maps as given.
      metric: the metric and its direction ("higher" or "lower" is better).
      per_image: every image's score at every cutoff, (N, cutoffs): the matrix a leave-one-out split
        picks from (:func:`idgi_tf.spectral.rank.held_out_cutoffs`).
    """

    best: float
    cutoffs: np.ndarray
    scores: np.ndarray
    unfiltered: float
    metric: str
    better: str
    per_image: np.ndarray


METRICS = {"insertion": ("probability", "higher"), "deletion": ("probability", "lower"),
           "mufidelity": ("mufidelity", "higher")}


def tune_cutoff(model, images, targets, maps, *, metric: str = "insertion", grid=None, kind: str = "ideal",
                batch_size=None, options=None) -> CutoffSearch:
    """The paper's optimal cutoff: the argmax (argmin for deletion) of a fidelity score over cutoffs.

    Args:
      model, images, targets: a validation set, as for :func:`idgi_tf.attribute`.
      maps: its attributions (N, H, W[, C]).
      metric: ``"insertion"`` (probability AUC), ``"deletion"`` or ``"mufidelity"``.
      grid: cutoffs to try (fractions of the side or cycles; default 12 log-spaced
        from 1 cycle to the Nyquist radius ``min(H, W) / 2``).
      options: keyword options of the metric (e.g. ``{"step": 0.1}`` for insertion).

    Returns:
      :class:`CutoffSearch` with the best cutoff, the whole score-vs-cutoff curve and each image's scores.

    Example:
      >>> maps = attribute(model, images, labels, "vg")
      >>> search = tune_cutoff(model, images, labels, maps, grid=[4, 8, 15], options={"step": 0.1})
      >>> smooth = lowpass(maps, search.best)  # search.per_image[i, c]: image i at cutoff c
    """
    _checks.choice(metric, "metric", METRICS)
    images = _checks.images(images)
    height, width = images.shape[1:3]
    side = min(height, width)
    cutoffs = (np.unique(np.round(np.geomspace(1, side / 2, 12), 2)) if grid is None
               else np.array([cutoff_cycles(c, height, width) for c in np.atleast_1d(grid)]))
    key, better = METRICS[metric]
    run = getattr(metrics_lib, metric)
    options = {} if options is None else dict(options)

    def score(candidate):
        return run(model, images, targets, candidate, batch_size=batch_size, **options).scores[key]

    per_image = np.stack([score(lowpass(maps, c, kind=kind)) for c in cutoffs], axis=1)
    finite = np.isfinite(per_image)
    with np.errstate(invalid="ignore"):
        scores = np.where(finite.any(axis=0), np.where(finite, per_image, 0).sum(axis=0) / finite.sum(axis=0), np.nan)
    if np.isnan(scores).all():
        raise ValueError(
            f"metric {metric!r} is undefined on every image at every cutoff (e.g. mufidelity on maps or "
            "model outputs that do not vary), so there is no best cutoff; try another metric or other images"
        )
    pick = np.nanargmax if better == "higher" else np.nanargmin
    unfiltered = score(finite_maps(maps))
    return CutoffSearch(best=float(cutoffs[pick(scores)]), cutoffs=cutoffs, scores=scores,
                        unfiltered=float(np.nanmean(unfiltered)) if np.isfinite(unfiltered).any() else float("nan"),
                        metric=metric, better=better, per_image=per_image)
