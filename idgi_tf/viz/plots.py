"""Figures of attributions and metric curves, as matplotlib Figures, and saving them.

Every function returns a ``matplotlib.figure.Figure``: a notebook shows it
inline, and it can be restyled, extended with axes, or saved as PNG, SVG or
PDF (:func:`save`). Each takes ``ax=`` (curves) or ``axes=`` (grids) to draw
into axes you already have, and then returns their figure. Figures are made
with ``matplotlib.figure.Figure`` itself, not ``pyplot``: nothing depends on a
display or on pyplot's open figures, so the CLIs and CI run headless (PNG,
SVG and PDF are written by matplotlib's Agg, SVG and PDF backends).
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image

from ..metrics.result import MetricResult
from ..metrics.sic_aic import binned_curve
from .maps import SCALE_RANGES, as_rgb8, colouring, scaled_map

SAVE_FORMATS = (".png", ".svg", ".pdf")
CURVE_SIZE = (6.4, 4.2)
# metric -> (its curves, the default one, where they live, x label, log x)
METRIC_CURVES = {
    "insertion": (("probability", "ratio"), "curves", "fraction of pixels inserted", False),
    "deletion": (("probability", "ratio"), "curves", "fraction of pixels deleted", False),
    "sic_aic": (("sic", "aic"), "aggregate_curves", "normalised information", False),
    "sensitivity_n": (("correlation",), "aggregate_curves", "n (pixels set to the baseline)", True),
}
METRIC_Y_LABELS = {
    "probability": "f(canvas), mean over images", "ratio": "f(canvas) / f(image), mean over images",
    "sic": "SIC, median per bin (band: quartiles)", "aic": "AIC, mean per bin (band: ± standard error)",
    "correlation": "Pearson correlation, mean over images",
}
# metric names as the papers write them
METRIC_TITLES = {"insertion": "Insertion", "deletion": "Deletion", "sic_aic": "SIC/AIC",
                 "sensitivity_n": "Sensitivity-n"}
INFORMATION_TITLES = {"entropy": "normalised entropy", "msssim": "MS-SSIM"}
# Binned curves: at least this many points per bin on average, at most the paper's 100 bins (which rest on
# 50,000 images; a handful of images gives a few points per bin, and a zig-zag of noise at 100).
POINTS_PER_BIN = 10
MOST_BINS = 100
# the band of a binned curve around each bin's statistic: quartiles around the median, ± the standard error
# around the mean
STATISTICS = ("median", "mean")


TITLE_LINE = 60  # characters of a one-line title at the default figure width


def figure_title(what: str, model: str | None = None, images: int | None = None) -> str:
    """``"what: model, N images"``: a figure's title names what it shows, the model and how many images."""
    counted = None if images is None else f"{images} image" + ("" if images == 1 else "s")
    named = [part for part in (model, counted) if part]
    if not named:
        return what
    return f"{what}: {', '.join(named)}" if len(what) + len(", ".join(named)) <= TITLE_LINE else \
        f"{what}\n{', '.join(named)}"  # a long title on two lines, so that no part is cut off


def supported_bins(points: int, most: int = MOST_BINS) -> int:
    """As many bins of [0, 1] as hold :data:`POINTS_PER_BIN` points on average: at least 2, at most ``most``."""
    return int(np.clip(points // POINTS_PER_BIN, 2, most))


def _band_reducers(statistic: str):
    """(centre, low, high) reducers of one bin's values."""
    if statistic == "median":
        return np.median, lambda v: np.percentile(v, 25), lambda v: np.percentile(v, 75)

    def error(values):
        return values.std() / np.sqrt(values.size)

    return np.mean, lambda v: v.mean() - error(v), lambda v: v.mean() + error(v)


def binned_band(x, y, *, statistic: str = "median", bins: int | None = None):
    """The curve of points ``(x, y)`` (x in [0, 1]) binned as SIC/AIC are, with a band around it.

    Returns ``(centres, curve, low, high)`` over ``bins`` equal bins (default: :func:`supported_bins`);
    ``statistic="median"`` (SIC) bands the quartiles, ``"mean"`` (AIC) ± the standard error. Empty bins are
    interpolated as in :func:`idgi_tf.metrics.sic_aic` (docs/metrics.md#sic-and-aic).
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {list(STATISTICS)}, got {statistic!r}")
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must hold one value per point, got {x.size} and {y.size}")
    defined = int((np.isfinite(x) & np.isfinite(y)).sum())
    bins = supported_bins(defined) if bins is None else bins
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    centres = (np.arange(bins) + 0.5) / bins
    return (centres, *(binned_curve(x, y, bins, reduce) for reduce in _band_reducers(statistic)))


def _figure_and_axes(ax, figsize) -> tuple[Figure, Axes]:
    """A new figure with one axes, or ``ax`` and its figure."""
    if ax is None:
        figure = Figure(figsize=figsize, layout="constrained")
        return figure, figure.add_subplot()
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax.figure, ax


def _series(x, ys, labels):
    """``(abscissas, series, labels)`` from the forms :func:`plot_curves` accepts, checked."""
    if isinstance(ys, dict):
        if labels is not None:
            raise ValueError("labels must be None when ys is a dict: its keys are the labels")
        labels, ys = list(ys), list(ys.values())
    if isinstance(ys, (list, tuple)) and ys and all(np.ndim(y) == 0 for y in ys):
        ys = [ys]  # one series given as a list of numbers
    rows = ys if isinstance(ys, (list, tuple)) else list(np.atleast_2d(np.asarray(ys, np.float64)))
    series = [np.asarray(y, np.float64).ravel() for y in rows]
    if not series:
        raise ValueError("ys must hold at least one series")
    one_per_series = (isinstance(x, (list, tuple)) and len(x) == len(series) and len(series) > 1
                      and all(np.ndim(v) == 1 for v in x))
    xs = ([np.asarray(v, np.float64).ravel() for v in x] if one_per_series
          else [np.asarray(x, np.float64).ravel()] * len(series))
    for i, (u, v) in enumerate(zip(xs, series)):
        if u.shape != v.shape:
            raise ValueError(f"series {i} has {v.size} points but its x has {u.size}")
        if not np.isfinite(u).all():
            raise ValueError(f"the x of series {i} contains NaN or Inf")
    if labels is not None and len(labels) != len(series):
        raise ValueError(f"labels must have one text per series ({len(series)}), got {len(labels)}")
    return xs, series, labels


def plot_curves(x, ys, *, labels=None, xlabel: str = "", ylabel: str = "", title: str = "", logx: bool = False,
                logy: bool = False, ylim=None, ax=None, figsize=CURVE_SIZE) -> Figure:
    """Lines of one or more series, with a legend when they are labelled.

    Args:
      x: one abscissa for all series (K,), or a list with one per series.
      ys: series (S, K), a list of (K,) arrays, or ``{label: (K,)}``; NaN points are left out.
      labels: legend text per series (the keys when ``ys`` is a dict).
      xlabel, ylabel, title: axis labels and the axes' title.
      logx: logarithmic x (x must be positive). logy: logarithmic y (values <= 0 are left out).
      ylim: (low, high) of the y axis (default: the data's range).
      ax: draw into this Axes instead of a new figure.

    Returns:
      the ``Figure`` (``ax``'s figure when given).

    Example:
      >>> fig = plot_curves(result.x, {"IG": ig_curve, "IG+IDGI": idgi_curve}, xlabel="n", logx=True)
      >>> save(fig, "curves.svg")
    """
    xs, series, labels = _series(x, ys, labels)
    if logx and any(u.size and u.min() <= 0 for u in xs):  # empty series draw empty axes, as all-NaN ones do
        raise ValueError("logx=True needs positive x values")
    figure, ax = _figure_and_axes(ax, figsize)
    for i, (u, v) in enumerate(zip(xs, series)):
        ax.plot(u, v, marker="o", markersize=3, label=None if labels is None else str(labels[i]))
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log", nonpositive="mask")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if labels is not None:
        ax.legend()
    ax.grid(alpha=0.3)
    return figure


def _panels(labels: list, panels: bool) -> dict:
    """``{panel title: series indices}``: one panel, or one per base name (a label's text before its first "+")."""
    if not panels:
        return {"": list(range(len(labels)))}
    grouped: dict = {}
    for index, label in enumerate(labels):
        grouped.setdefault(str(label).split("+")[0], []).append(index)
    return grouped


def plot_binned_curves(x, ys, *, labels=None, statistic: str = "median", bins: int | None = None,
                       panels: bool = False, xlabel: str = "", ylabel: str = "", title: str = "", ax=None,
                       figsize=CURVE_SIZE) -> Figure:
    """Points pooled over images, binned (SIC/AIC's aggregate curve) with a band, one line per series.

    Args:
      x, ys, labels: the points as for :func:`plot_curves`: ``x`` one array per series (or one for all),
        ``ys`` ``{label: y}`` or a list; x in [0, 1].
      statistic: ``"median"`` (SIC's aggregate; band: the quartiles of each bin's points) or ``"mean"``
        (AIC's; band: ± the standard error).
      bins: equal bins of [0, 1]; default as many as hold 10 points on average for the series with the
        fewest points (at most the paper's 100), so a few images draw a few bins, not 100 bins of noise.
      panels: one panel per base name, side by side (labels before their first "+": "IG" and "IG+IDGI"
        share one), so each plain line is compared with its IDGI line.
      xlabel, ylabel, title: labels; name the model and the image count in ``title`` (:func:`figure_title`).
      ax: draw into this Axes (one panel only).

    Each series' line data are :func:`binned_band`'s curve, its ``fill_between`` the band.

    Example:
      >>> points = {"IG": (x_ig, sic_ig), "IG+IDGI": (x_idgi, sic_idgi)}
      >>> plot_binned_curves([p[0] for p in points.values()], {k: p[1] for k, p in points.items()})
    """
    xs, series, labels = _series(x, ys, labels)
    labels = list(labels) if labels is not None else [str(i) for i in range(len(series))]
    if bins is None:
        bins = supported_bins(min(int((np.isfinite(u) & np.isfinite(v)).sum()) for u, v in zip(xs, series)))
    groups = _panels(labels, panels)
    if ax is not None and len(groups) > 1:
        raise ValueError("ax takes one panel: draw panels=True into a new figure (ax=None)")
    if ax is None:
        figure = Figure(figsize=(max(figsize[0], 3.2 * len(groups)), figsize[1]), layout="constrained")
        axes = figure.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    else:
        figure, axes = _figure_and_axes(ax, figsize)[0], [ax]
    for panel, (name, members) in zip(axes, groups.items()):
        for index in members:
            centres, curve, low, high = binned_band(xs[index], series[index], statistic=statistic, bins=bins)
            line, = panel.plot(centres, curve, label=labels[index])
            panel.fill_between(centres, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        panel.set(xlabel=xlabel, title=name)
        panel.grid(alpha=0.3)
        panel.legend()
    axes[0].set_ylabel(ylabel)
    if len(groups) > 1:
        figure.suptitle(f"{title} ({bins} bins)" if title else f"{bins} bins")
    else:
        axes[0].set_title(f"{title} ({bins} bins)" if title else f"{bins} bins")
    return figure


def plot_metric_curves(results, *, curve: str | None = None, title: str | None = None, model: str | None = None,
                       ax=None, figsize=CURVE_SIZE) -> Figure:
    """The curves behind a metric's scores, one line per result.

    Args:
      results: a :class:`~idgi_tf.metrics.MetricResult`, or ``{label: MetricResult}`` of one metric:
        insertion or deletion (the curve averaged over images), ``sic_aic`` (every image's points binned
        together, median SIC / mean AIC with a band, in as many bins as the points support:
        :func:`plot_binned_curves`) or ``sensitivity_n`` (the correlation averaged over images, log n).
      curve: which curve (insertion/deletion: ``"probability"`` or ``"ratio"``; SIC/AIC: ``"sic"`` or
        ``"aic"``); default the first.
      title: the title (default: the metric's name as the papers write it, ``model`` and the image count).
      model: the model's name for the default title.
      ax: draw into this Axes.

    Example:
      >>> runs = {rule: metrics.insertion(model, x, y, maps[rule]) for rule in ("plain", "idgi")}
      >>> plot_metric_curves(runs)
    """
    if isinstance(results, MetricResult):
        results = {results.name: results}
    if not isinstance(results, dict) or not results or not all(isinstance(r, MetricResult) for r in results.values()):
        raise TypeError("results must be a MetricResult or a non-empty {label: MetricResult} dict")
    names = sorted({result.name for result in results.values()})
    if len(names) > 1:
        raise ValueError(f"results must all come from one metric, got {names}")
    name = names[0]
    if name not in METRIC_CURVES:
        raise ValueError(f"metric {name!r} has no curves to plot (only per-image scores); curves come from "
                         f"{', '.join(METRIC_CURVES)}")
    choices, where, xlabel, logx = METRIC_CURVES[name]
    curve = choices[0] if curve is None else curve
    if curve not in choices:
        raise ValueError(f"curve must be one of {list(choices)} for {name}, got {curve!r}")
    if title is None:
        what = METRIC_TITLES[name]
        if name == "sic_aic":
            information = next(iter(results.values())).options.get("information", "entropy")
            what = f"{curve.upper()}, {INFORMATION_TITLES.get(information, information)}"
        title = figure_title(what, model, max(_image_count(result, curve) for result in results.values()))
    if name == "sic_aic" and all(f"points_{curve}" in result.curves for result in results.values()):
        points = {label: _pooled_points(result, curve) for label, result in results.items()}
        return plot_binned_curves([x for x, _ in points.values()], {label: y for label, (_, y) in points.items()},
                                  statistic="median" if curve == "sic" else "mean", xlabel=xlabel,
                                  ylabel=METRIC_Y_LABELS[curve], title=title, ax=ax, figsize=figsize)
    ys = {}
    for label, result in results.items():
        values = getattr(result, where)[curve]
        if where == "curves":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a column undefined on every image stays NaN
                values = np.nanmean(values, axis=0)
        ys[label] = values
    abscissas = [result.x for result in results.values()]
    return plot_curves(abscissas if len(abscissas) > 1 else abscissas[0], ys, xlabel=xlabel,
                       ylabel=METRIC_Y_LABELS[curve], title=title, logx=logx, ax=ax, figsize=figsize)


def _image_count(result: MetricResult, curve: str) -> int:
    """The images a curve rests on: those with a finite score of that name (SIC/AIC skip some), else all."""
    if curve in result.scores:
        return int(np.isfinite(result.scores[curve]).sum())
    return int(result.counts.get("images", len(next(iter(result.scores.values()), []))))


def _pooled_points(result: MetricResult, curve: str):
    """Every scored image's SIC/AIC points ``(information, y)``, pooled (skipped images are NaN: left out)."""
    x, y = np.ravel(result.curves["points_information"]), np.ravel(result.curves[f"points_{curve}"])
    kept = np.isfinite(x) & np.isfinite(y)
    return x[kept], y[kept]


def plot_spectra(frequencies, spectra, *, cutoff: float | None = None, normalise: bool = True, title: str = "",
                 xlabel: str = "frequency (cycles per image)", ylabel: str | None = None, ax=None,
                 figsize=CURVE_SIZE) -> Figure:
    """Radially averaged power spectra (:func:`idgi_tf.spectral.power_spectrum`) on log-log axes.

    ``spectra`` is ``{label: (R,)}`` or (S, R) over ``frequencies`` (R,); the zero frequency (the
    removed mean) is left out, as a log axis cannot show it. ``normalise`` divides each curve by its
    total power, so curves of maps on different scales (a gradient, a RISE map) compare by shape: each
    point is that frequency's share of the power. ``cutoff`` (in the units of ``frequencies``, e.g. the
    paper's 15 cycles per 224 px) draws a dashed vertical line there (docs/spectral.md#frequency-units).

    Example:
      >>> freqs, power = spectral.power_spectrum(maps)
      >>> plot_spectra(freqs, {"IG": power.mean(axis=0)}, cutoff=15)
    """
    frequencies = np.asarray(frequencies, np.float64).ravel()
    shown = frequencies > 0
    labels = list(spectra) if isinstance(spectra, dict) else None
    rows = list(spectra.values()) if isinstance(spectra, dict) else list(np.atleast_2d(spectra))
    for label, row in zip(labels or range(len(rows)), rows):
        if np.ndim(row) == 0:
            raise ValueError(f"spectrum {label!r} must be an array of one value per frequency "
                             f"({frequencies.size}), got the scalar {row!r}")
        if np.shape(row)[-1] != frequencies.size:
            raise ValueError(f"spectrum {label!r} has {np.shape(row)[-1]} values but there are "
                             f"{frequencies.size} frequencies")
    if cutoff is not None and not (np.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"cutoff must be a positive frequency (or None), got {cutoff!r}")
    curves = [np.asarray(row, np.float64)[shown] for row in rows]
    if normalise:
        curves = [curve / np.nansum(curve) if np.nansum(curve) > 0 else curve for curve in curves]
    ylabel = ("share of the power" if normalise else "power") if ylabel is None else ylabel
    figure = plot_curves(frequencies[shown], curves, labels=labels, xlabel=xlabel, ylabel=ylabel, title=title,
                         logx=True, logy=True, ax=ax, figsize=figsize)
    if cutoff is not None:
        ax = ax if ax is not None else figure.axes[0]
        ax.axvline(cutoff, color="black", linestyle="--", label=f"cutoff ({cutoff:g} cycles)")
        ax.legend()
    return figure


def plot_cutoff_search(search, *, title: str | None = None, ax=None, figsize=CURVE_SIZE) -> Figure:
    """:func:`idgi_tf.spectral.tune_cutoff`'s score at every cutoff, its best one and the unfiltered score.

    Example:
      >>> plot_cutoff_search(spectral.tune_cutoff(model, x, y, maps))
    """
    figure = plot_curves(search.cutoffs, [search.scores], labels=[f"low-passed maps ({search.metric})"],
                         xlabel="cutoff (cycles)", ylabel=f"mean {search.metric} score ({search.better} is better)",
                         title=f"FORGrad cutoff search: best {search.best:.3g} cycles" if title is None else title,
                         logx=True, ax=ax, figsize=figsize)
    ax = ax if ax is not None else figure.axes[0]
    ax.axhline(search.unfiltered, color="gray", linestyle="--", label="unfiltered maps")
    ax.axvline(search.best, color="black", linestyle=":", label=f"best cutoff ({search.best:.3g})")
    ax.legend()
    return figure


def _map_columns(maps) -> dict:
    """``{column title: list of maps or None}`` from an (N, H, W[, C]) array or a dict of them."""
    if isinstance(maps, dict):
        if not maps:
            raise ValueError("maps must hold at least one column")
        columns = {str(title): list(column) for title, column in maps.items()}
    else:
        array = np.asarray(maps)
        if array.ndim not in (3, 4):
            raise ValueError(f"maps must be (N, H, W) or (N, H, W, C), or a dict of them, got shape {array.shape}")
        columns = {"attribution": list(array)}
    rows = {len(column) for column in columns.values()}
    if len(rows) > 1 or 0 in rows:
        sizes = {title: len(column) for title, column in columns.items()}
        raise ValueError(f"every column of maps must hold one map (or None) per row, got {sizes}")
    return columns


def _overlaid_columns(overlay, columns: dict) -> set:
    """The column titles ``overlay`` names; a string is one title (not its characters)."""
    if isinstance(overlay, bool):
        return set(columns) if overlay else set()
    return {overlay} if isinstance(overlay, str) else set(overlay)


def _row_images(images, rows: int):
    """One RGB uint8 picture per row (a single image is repeated), or None for no image column."""
    if images is None:
        return None
    array = np.asarray(images)
    if array.ndim in (2, 3):
        return [as_rgb8(array)] * rows
    if array.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C) or one (H, W[, C]) image, got shape {array.shape}")
    if len(array) != rows:
        raise ValueError(f"images must hold one image per row ({rows}) or be a single image, got {len(array)}")
    return [as_rgb8(image) for image in array]


def _grid_axes(axes, rows: int, columns: int, title, cell_inches: float):
    if axes is None:
        figure = Figure(figsize=(cell_inches * columns, cell_inches * rows + (0.4 if title else 0.0)),
                        layout="constrained")
        return figure, figure.subplots(rows, columns, squeeze=False)
    grid = np.asarray(axes, dtype=object)
    if grid.size != rows * columns or not all(isinstance(ax, Axes) for ax in grid.flat):
        raise ValueError(f"axes must be {rows} x {columns} matplotlib Axes (rows x columns of the grid), "
                         f"got {grid.shape}")
    grid = grid.reshape(rows, columns)
    return grid.flat[0].figure, grid


def plot_attributions(images, maps, *, row_labels=None, title: str | None = None, image_title: str = "image",
                      cmap="magma", scale: str = "grayscale", how: str = "sum_abs", clip_percentile: float = 99.0,
                      overlay=False, alpha: float = 0.5, colorbar: bool = False, axes=None,
                      cell_inches: float = 2.2) -> Figure:
    """Images and their attribution maps in a grid: one row per image (or per method), one column per map.

    Args:
      images: (N, H, W, C) pictures in [0, 255], one per row; or one (H, W[, C]) picture shown on every
        row (e.g. one image explained by several methods); or None for no image column.
      maps: (N, H, W[, C]) maps (one column), or ``{column title: N maps}`` (e.g. ``{"plain": ...,
        "+IDGI": ...}``); a None map leaves its cell empty.
      row_labels: one text per row, at its left.
      title: the figure's title. image_title: the image column's title.
      cmap, scale, how, clip_percentile: as for :func:`idgi_tf.viz.heatmap`.
      overlay: True draws every map over its image (with ``alpha``); or one column title (a string), or a
        collection of column titles, to draw that way.
      colorbar: add one colorbar for the maps, labelled with what the shades mean (:func:`scale_note`: the
        reduced map as a fraction of its clip percentile).
      axes: draw into these (rows x columns) Axes instead of a new figure.

    Each map cell is an ``imshow`` of :func:`~idgi_tf.viz.scaled_map` with the named colormap, so its
    colours are :func:`~idgi_tf.viz.heatmap`'s and ``fig.axes[i].images[-1]`` carries the data.

    Example:
      >>> maps = idgi_tf.attribute(model, x, y, "ig", rule=("plain", "idgi"))
      >>> fig = plot_attributions(x, {"IG": maps["plain"], "IG+IDGI": maps["idgi"]}, colorbar=True)
    """
    columns = _map_columns(maps)
    rows = len(next(iter(columns.values())))
    pictures = _row_images(images, rows)
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"row_labels must have one text per row ({rows}), got {len(row_labels)}")
    overlaid = _overlaid_columns(overlay, columns)
    if not overlaid <= set(columns):
        raise ValueError(f"overlay names columns that maps does not have: {sorted(overlaid - set(columns))}")
    if overlaid and pictures is None:
        raise ValueError("overlay needs images to draw the maps over")
    mappable, scale = colouring(cmap, scale)
    first_map_column = 0 if pictures is None else 1
    figure, grid = _grid_axes(axes, rows, first_map_column + len(columns), title, cell_inches)
    shown = None
    for r in range(rows):
        for ax in grid[r]:
            ax.set_xticks([])
            ax.set_yticks([])
        if pictures is not None:
            grid[r, 0].imshow(pictures[r], interpolation="nearest")
        for c, (column, cells) in enumerate(columns.items(), start=first_map_column):
            ax, cell = grid[r, c], cells[r]
            if r == 0:
                ax.set_title(column)
            if cell is None:
                ax.set_axis_off()
                continue
            values = scaled_map(cell, how=how, clip_percentile=clip_percentile, scale=scale)
            if pictures is not None and values.shape != pictures[r].shape[:2]:
                raise ValueError(f"the map of row {r}, column {column!r} is {values.shape} but its image is "
                                 f"{pictures[r].shape[:2]}")
            if column in overlaid:
                ax.imshow(pictures[r], interpolation="nearest")
            shown = ax.imshow(values, cmap=mappable.cmap, norm=mappable.norm, interpolation="nearest",
                              alpha=alpha if column in overlaid else None)
        if row_labels is not None:
            grid[r, 0].set_ylabel(str(row_labels[r]))
    if pictures is not None:
        grid[0, 0].set_title(image_title)
    if colorbar and shown is not None:
        figure.colorbar(shown, ax=list(grid[:, first_map_column:].flat), shrink=0.8,
                        label=scale_note(how, clip_percentile, scale))
    if title:
        figure.suptitle(title)
    return figure


def scale_note(how: str = "sum_abs", clip_percentile: float = 99.0, scale: str = "grayscale") -> str:
    """What a heatmap's shades mean: the map reduced over channels, over its percentile, clipped."""
    low, high = SCALE_RANGES[scale]
    reduced = {"sum_abs": "Σ|map| over channels", "abs_sum": "|Σ map| over channels",
               "sum": "Σ map over channels"}.get(how, f"map ({how})")
    of = " of |map|" if low < 0 else ""
    return f"{reduced} / its {clip_percentile:g}th percentile{of}, clipped to [{low:g}, {high:g}]"


def save(figure, path, *, dpi: int = 150) -> str:
    """Write a ``Figure`` or an RGB array (e.g. :func:`heatmap`'s) as PNG, SVG or PDF, by ``path``'s extension.

    Arrays go to PNG pixel for pixel; to SVG or PDF as an embedded image. Folders are created. Returns
    the path.
    """
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    if extension not in SAVE_FORMATS:
        raise ValueError(f"path must end in {', '.join(SAVE_FORMATS)} (the format to write), got {path!r}")
    if not isinstance(figure, Figure):
        if isinstance(figure, Axes):
            raise TypeError("save takes a Figure (ax.figure) or an RGB array, got an Axes")
        pixels = as_rgb8(figure)
        if extension != ".png":
            figure = Figure(figsize=(pixels.shape[1] / dpi, pixels.shape[0] / dpi), dpi=dpi)
            figure.figimage(pixels)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    if isinstance(figure, Figure):
        figure.savefig(path, dpi=dpi, format=extension[1:])
    else:
        Image.fromarray(pixels).save(path, format="PNG")
    return path


def to_array(figure: Figure, *, dpi: int = 100) -> np.ndarray:
    """A ``Figure`` rendered to an RGB uint8 array (H, W, 3), e.g. for ``tf.summary.image``."""
    if not isinstance(figure, Figure):
        raise TypeError(f"figure must be a matplotlib Figure, got {type(figure).__name__}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))
