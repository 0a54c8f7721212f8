"""The metric table: one row per metric, read by the bench (run, report, CLI), the callback and the tests.

A row says how to call the metric, its headline scores (and whether higher is
better), the fields it writes into a bench row, its curves and how the report
plots them, and what it needs. Adding a metric = its module + one row here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np

from ..runtime import JIT_AUTO
from .fidelity import mufidelity, sensitivity_n
from .information import MS_SSIM_MIN_SIDE, pixels_uint8, refuse_unit_range
from .insertion import deletion, insertion
from .localization import localization
from .result import MetricResult
from .road import PERCENTAGES, road
from .sic_aic import binned_curve, sic_aic

BINS = 100  # SIC/AIC: bins of the curve over all images' points (docs/metrics.md#sic-and-aic)


def mean_value(values: list) -> tuple[float, int]:
    """The mean of the finite per-image values and how many there are."""
    array = np.asarray(values, np.float64)
    array = array[np.isfinite(array)]
    return (float(array.mean()), int(array.size)) if array.size else (float("nan"), 0)


def mean_curve(values: list) -> tuple[np.ndarray, np.ndarray]:
    """The mean of per-image curves over an evenly spaced [0, 1]."""
    curve = np.mean(values, axis=0)
    return np.linspace(0, 1, len(curve)), curve


def mean_curve_at(x) -> Callable[[list], tuple[np.ndarray, np.ndarray]]:
    """The mean of per-image curves over the fixed abscissa ``x`` (ROAD: the removed fractions)."""

    def curve(values: list) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(x, np.float64), np.mean(values, axis=0)

    return curve


def pooled(kind: str) -> Callable[[list], tuple[np.ndarray, np.ndarray]]:
    """Every image's SIC or AIC points, pooled: ``(information, y)`` (the figure bins them with a band)."""

    def points(values: list) -> tuple[np.ndarray, np.ndarray]:
        return (np.concatenate([row["information"] for row in values]),
                np.concatenate([row[kind] for row in values]))

    return points


def binned_area(kind: str) -> Callable[[list], tuple[float, int]]:
    """The area under SIC (median per bin) or AIC (mean per bin) binned over every image's points, as the
    paper's Tables 2-3 aggregate, and on how many images it rests."""
    points = pooled(kind)

    def area(values: list) -> tuple[float, int]:
        if not values:
            return float("nan"), 0
        curve = binned_curve(*points(values), BINS, np.median if kind == "sic" else np.mean)
        return float(curve.mean()), len(values)

    return area


@dataclasses.dataclass(frozen=True, kw_only=True)
class Score:
    """A headline score: the report's table, the callback's scalar.

    Attributes:
      name: its key in the report and in ``paper_tables.csv`` (``insertion_probability``).
      title: as in the paper.
      higher_is_better: the direction the report's IDGI verdict reads.
      field: the bench row field that holds it per image (or the points it is computed from).
      key: the metric result's per-image score (``result.scores[key]``).
      table: the paper's table number, or None for a score the paper does not report.
      aggregate: the report's cell from the rows' ``field`` values (not None): ``(value, images)``.
    """

    name: str
    title: str
    higher_is_better: bool
    field: str
    key: str
    table: str | None = None
    aggregate: Callable[[list], tuple[float, int]] = mean_value


@dataclasses.dataclass(frozen=True, kw_only=True)
class Curve:
    """A curve kept in each bench row and plotted by the report, one line per (method, rule) column.

    Attributes:
      name: the figure's file name (``figures/NAME.png``).
      title, xlabel, ylabel: the figure's labels, metric names as in the paper.
      field: the bench row field holding the image's curve (or points).
      key: the metric result's per-image curve (``result.curves[key]``) written into ``field``, or None when the
        row's ``row`` function writes it.
      combine: the rows' ``field`` values of one column -> the plotted ``(x, y)``.
      plot: the :mod:`idgi_tf.viz` function that draws the lines, called as ``plot(xs, {column: y}, **options)``.
      options: its keyword options (SIC: the median per bin; AIC: the mean).
    """

    name: str
    title: str
    xlabel: str
    ylabel: str
    field: str
    key: str | None
    combine: Callable[[list], tuple[np.ndarray, np.ndarray]] = mean_curve
    plot: str = "plot_curves"
    options: Mapping = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Metric:
    """How to compute, store, aggregate and plot one metric.

    Attributes:
      function: the metric (:mod:`idgi_tf.metrics`); called as ``function(maps, masks)`` when it needs masks,
        else ``function(model, images, targets, maps, batch_size=, jit_compile=)``, with ``options``.
      title: as in the paper ("SIC/AIC (MS-SSIM)").
      scores: its headline scores; the first is the callback's scalar.
      curves: the curves the bench keeps and the report plots.
      options: fixed keyword options of ``function`` for this row.
      row: ``(result, image index) -> fields`` written over the others, e.g. SIC/AIC's points in place of the
        per-image areas (the report bins the points of all images).
      needs_masks: region masks (the bench's boxes), e.g. localization.
      image_only: it scores images (N, H, W, C) only (SIC/AIC, localization); the others take inputs of any
        rank (features: docs/metrics.md).
      min_side: the smallest image side it takes.
      pixels_8bit: images must be 8-bit pixels in [0, 255].
      softmax: ``model(x)[target]`` should be a probability.
    """

    function: Callable[..., MetricResult]
    title: str
    scores: tuple[Score, ...]
    curves: tuple[Curve, ...] = ()
    options: Mapping = dataclasses.field(default_factory=dict)
    row: Callable[[MetricResult, int], dict] | None = None
    needs_masks: bool = False
    image_only: bool = False
    min_side: int = 1
    pixels_8bit: bool = False
    softmax: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        """The bench row fields this metric writes."""
        return tuple(dict.fromkeys([s.field for s in self.scores] + [c.field for c in self.curves]))

    def compute(self, model, images, targets, maps, *, masks=None, batch_size=None,
                jit_compile=JIT_AUTO) -> MetricResult:
        """Run the metric with this row's options."""
        if self.needs_masks:
            return self.function(maps, masks, **self.options)
        return self.function(model, images, targets, maps, batch_size=batch_size, jit_compile=jit_compile,
                             **self.options)

    def row_fields(self, result: MetricResult, i: int) -> dict:
        """Image ``i``'s bench row fields: scores as floats, curves as lists rounded to 6 digits, then ``row``'s."""
        fields = {s.field: float(result.scores[s.key][i]) for s in self.scores}
        fields.update({c.field: [round(float(v), 6) for v in result.curves[c.key][i]] for c in self.curves
                       if c.key is not None})
        return {**fields, **(self.row(result, i) if self.row is not None else {})}

    def check(self, name: str, *, side: int, has_masks: bool, images=None) -> None:
        """Refuse inputs this metric cannot score, before any model runs (``name``: its key in :data:`METRICS`;
        ``side``: the shorter image side, ignored for inputs that are not images)."""
        if self.image_only and images is not None and np.ndim(images) != 4:
            raise ValueError(f"metric {name!r} is an image metric: it needs images (N, H, W, C), got inputs of "
                             f"shape {np.shape(images)}; leave {name} out of the metrics")
        if self.needs_masks and not has_masks:
            raise ValueError(f"metric {name!r} needs masks (region masks: masks=, the bench's boxes)")
        if side < self.min_side:
            raise ValueError(f"metric {name!r} needs images of at least {self.min_side} px, got {side}; "
                             f"leave {name} out of the metrics")
        if self.pixels_8bit and images is not None:
            refuse_unit_range(images)
            pixels_uint8(images)


def _points(information: str) -> Callable[[MetricResult, int], dict]:
    """SIC/AIC rows keep each image's points (not its binned curve): the report bins them over all images."""

    def row(result: MetricResult, i: int) -> dict:
        skipped = np.isnan(result.curves["points_sic"][i]).all()  # the protocol skipped this image
        points = None if skipped else {key: result.curves[f"points_{key}"][i].tolist()
                                       for key in ("information", "sic", "aic")}
        return {f"sic_aic_{information}": points}

    return row


def _perturbation(name: str, title: str, verb: str, higher: bool) -> Metric:
    return Metric(
        function=insertion if name == "insertion" else deletion, title=title, softmax=True,
        scores=(Score(name=f"{name}_probability", title=f"{title} score with probability", key="probability",
                      field=f"{name}_probability", higher_is_better=higher, table="1" if higher else None),
                Score(name=f"{name}_ratio", title=f"{title} score with probability ratio", key="ratio",
                      field=f"{name}_ratio", higher_is_better=higher, table="1" if higher else None)),
        curves=(Curve(name=name, title=title, xlabel=f"fraction of pixels {verb}", ylabel="mean f(canvas)",
                      field=f"{name}_curve", key="probability"),),
    )


def _sic_aic(information: str, title: str, table: str, xlabel: str) -> Metric:
    field = f"sic_aic_{information}"
    return Metric(
        function=sic_aic, title=f"SIC/AIC ({title})", options={"information": information}, row=_points(information),
        pixels_8bit=True, softmax=True, image_only=True, min_side=MS_SSIM_MIN_SIDE if information == "msssim" else 1,
        scores=tuple(Score(name=f"{kind}_{information}", title=f"AUC {kind.upper()}, {title}", key=kind, field=field,
                           higher_is_better=True, table=table, aggregate=binned_area(kind)) for kind in ("aic", "sic")),
        curves=tuple(Curve(name=f"{kind}_{information}", title=f"{kind.upper()}, {title}", xlabel=xlabel,
                           ylabel=f"{kind.upper()} (binned)", field=field, key=None, combine=pooled(kind),
                           plot="plot_binned_curves", options={"statistic": "median" if kind == "sic" else "mean",
                                                                        "panels": True})
                     for kind in ("sic", "aic")),
    )


def _localization() -> Metric:
    scores = (("roc_auc", "ROC AUC", True), ("f1", "F1", True), ("mae", "MAE", False))
    return Metric(
        function=localization, title="Localization", needs_masks=True, image_only=True,
        scores=tuple(Score(name=key, title=f"Localization {title}", key=key, field=key, higher_is_better=higher,
                           table="4") for key, title, higher in scores),
    )


def _road() -> Metric:
    """ROAD's row: MoRF (the headline), LeRF and their gap; the MoRF and LeRF curves (docs/metrics.md#road)."""
    scores = (("morf", "ROAD MoRF, mean probability", False), ("lerf", "ROAD LeRF, mean probability", True),
              ("gap", "ROAD gap, LeRF - MoRF", True))
    return Metric(
        function=road, title="ROAD", softmax=True, image_only=True,
        scores=tuple(Score(name=f"road_{key}", title=title, key=key, field=f"road_{key}", higher_is_better=higher)
                     for key, title, higher in scores),
        curves=tuple(Curve(name=f"road_{key}", title=f"ROAD, {order}", ylabel="mean f(imputed image)",
                           xlabel=f"fraction of pixels removed ({order}) and imputed", field=f"road_{key}_curve",
                           key=key, combine=mean_curve_at(PERCENTAGES))
                     for key, order in (("morf", "MoRF"), ("lerf", "LeRF"))),
    )


# The bench's default metrics are the rows with a paper table; the dict order is the report's order.
METRICS: Mapping[str, Metric] = MappingProxyType({
    "insertion": _perturbation("insertion", "Insertion", "inserted", higher=True),
    "deletion": _perturbation("deletion", "Deletion", "deleted", higher=False),
    "sic_aic": _sic_aic("entropy", "normalised entropy", "2", "normalised entropy"),
    "msssim": _sic_aic("msssim", "MS-SSIM", "3", "normalised MS-SSIM"),
    "localization": _localization(),
    "mufidelity": Metric(
        function=mufidelity, title="µFidelity", softmax=True,
        scores=(Score(name="mufidelity", title="µFidelity", key="mufidelity", field="mufidelity",
                      higher_is_better=True),),
    ),
    "sensitivity_n": Metric(
        function=sensitivity_n, title="Sensitivity-n", softmax=True,
        scores=(Score(name="sensitivity_n", title="Sensitivity-n, mean correlation", key="mean_correlation",
                      field="sensitivity_n", higher_is_better=True),),
    ),
    "road": _road(),
})
PAPER_METRICS = tuple(name for name, metric in METRICS.items() if any(s.table for s in metric.scores))
