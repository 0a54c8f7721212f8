"""The method ranking before and after FORGrad (Muzellec et al., ICML 2024).

See docs/spectral.md#ranking-methods-before-and-after-forgrad.

Every method of :data:`RANK_METHODS` explains the same photos; every metric
of :data:`RANK_METRICS` scores the maps; then each white-box method's maps are
low-passed (:func:`idgi_tf.spectral.lowpass`) at a cutoff tuned on the *other*
photos (leave-one-out, :func:`held_out_cutoffs`) and scored again. The ranks
before filtering rank the methods as they are; the ranks after rank the
filtered white-box methods beside the unchanged black-box ones.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import sys
import time
from collections.abc import Mapping
from types import MappingProxyType

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from .. import metrics as metrics_lib
from .._atomic import save_figure_atomically, write_atomically
from ..attribution.methods import attribute
from ..viz import figure_title
from . import METRICS as TUNE_METRICS
from . import lowpass, tune_cutoff

# Cutoffs tried by the tuning, as fractions of the side: 1 ... 112 cycles at 224 px, doubling, with the
# paper's 15 and the Nyquist radius (112: the map is only channel-averaged and |.|'d)
CUTOFF_GRID = tuple(c / 224 for c in (1, 2, 4, 8, 15, 30, 60, 112))


@dataclasses.dataclass(frozen=True)
class RankMethod:
    """One row of the ranking: how :func:`idgi_tf.attribute` computes it.

    Attributes:
      key: its name on the command line and in the files ("ig_idgi").
      method: the :data:`idgi_tf.attribution.methods.METHODS` name ("ig").
      rule: the step rule ("plain" or "idgi"); rows of one method share one call with both rules.
      title: its name in tables and figures ("IG+IDGI").
      white_box: it reads the model's gradients or activations, so FORGrad filters it.
      references: expected IG: ``attribute(..., references=R)`` with R the other photos
        (:func:`expected_references`).
    """

    key: str
    method: str
    rule: str
    title: str
    white_box: bool = True
    references: bool = False

    @property
    def call(self) -> tuple:
        """Rows with the same call (method, references or not) come from one :func:`idgi_tf.attribute` call."""
        return self.method, self.references

RANK_METHODS: Mapping[str, RankMethod] = MappingProxyType({row.key: row for row in (
    RankMethod("vg", "vg", "plain", "VG"),
    RankMethod("gxi", "gxi", "plain", "Gradient×Input"),
    RankMethod("smoothgrad", "smoothgrad", "plain", "SmoothGrad"),
    RankMethod("ig", "ig", "plain", "IG"),
    RankMethod("ig_idgi", "ig", "idgi", "IG+IDGI"),
    RankMethod("gig", "gig", "plain", "GIG"),
    RankMethod("gig_idgi", "gig", "idgi", "GIG+IDGI"),
    RankMethod("blurig", "blurig", "plain", "BlurIG"),
    RankMethod("blurig_idgi", "blurig", "idgi", "BlurIG+IDGI"),
    RankMethod("eig", "ig", "plain", "Expected IG", references=True),
    RankMethod("eig_idgi", "ig", "idgi", "Expected IG+IDGI", references=True),
    RankMethod("gradcam", "gradcam", "plain", "Grad-CAM"),
    RankMethod("gradcampp", "gradcampp", "plain", "Grad-CAM++"),
    RankMethod("rise", "rise", "plain", "RISE", white_box=False),
    RankMethod("occlusion", "occlusion", "plain", "Occlusion", white_box=False),
)})


@dataclasses.dataclass(frozen=True)
class RankMetric:
    """One metric of the ranking: a row of :data:`idgi_tf.metrics.METRICS`, its scores and its options here.

    Attributes:
      key: the metrics table's name ("deletion").
      scores: the per-image scores ranked (``result.scores[key]``); each is one ranking, its direction that of
        the metrics table's :class:`idgi_tf.metrics.table.Score` with that key.
      options: keyword options of the metric (the budget:
        docs/spectral.md#ranking-methods-before-and-after-forgrad).
    """

    key: str
    scores: tuple
    options: Mapping = dataclasses.field(default_factory=dict)


RANK_METRICS: Mapping[str, RankMetric] = MappingProxyType({row.key: row for row in (
    RankMetric("deletion", ("probability",), {"step": 0.1}),
    RankMetric("insertion", ("probability",), {"step": 0.1}),
    RankMetric("mufidelity", ("mufidelity",), {"samples": 32}),
    RankMetric("road", ("morf", "lerf"), {"percentages": (0.1, 0.3, 0.5, 0.7, 0.9)}),
)})


# The tuning metric's options: coarser than the scoring (insertion and deletion on 6 canvases, not 11) to halve
# the cost of the cutoff grid; it only has to order the cutoffs
TUNE_OPTIONS: Mapping[str, Mapping] = MappingProxyType({
    "insertion": {"step": 0.2}, "deletion": {"step": 0.2}, "mufidelity": {"samples": 32},
})


def score_name(metric: str, key: str) -> str:
    """A ranking's column name: the metric, and the score when it has several (``road_morf``)."""
    return metric if len(RANK_METRICS[metric].scores) == 1 else f"{metric}_{key}"


def higher_is_better(metric: str, key: str) -> bool:
    """The direction of score ``key`` of ``metric``, read from the metrics table.

    Example:
      >>> higher_is_better("deletion", "probability")
      False
    """
    for score in metrics_lib.METRICS[metric].scores:
        if score.key == key:
            return score.higher_is_better
    raise ValueError(f"metric {metric!r} has no score {key!r} in idgi_tf.metrics.METRICS")


def expected_references(photos: np.ndarray, index: int) -> np.ndarray:
    """Expected IG's references for photo ``index``: every other photo of the set, (K - 1, H, W, C).

    Expected Gradients (Erion et al. 2021) average IG over baselines drawn from the data; leave-one-out keeps
    the explained photo out of its own references (its IG from itself would be zero).

    Example:
      >>> expected_references(samples.images, 0).shape  # (10, 224, 224, 3) for the 11 shipped photos
    """
    if not 0 <= index < len(photos):
        raise ValueError(f"index must be in [0, {len(photos)}), got {index}")
    return np.delete(np.asarray(photos), index, axis=0)


def held_out_cutoffs(scores: np.ndarray, higher: bool = True) -> np.ndarray:
    """Leave-one-out pick: for each photo ``i``, the grid index maximising the mean score of the *other* photos.

    ``pick_i = argmax_c mean_{j != i} S[j, c]`` (argmin when lower is better), over the finite scores; ties go
    to the smaller cutoff. Photo ``i``'s own row never enters its pick, as the paper tunes the cutoff on
    validation images and reports on others.

    Args:
      scores: S (N photos, C cutoffs) of the tuning metric (``CutoffSearch.per_image``).
      higher: whether higher scores are better.

    Returns:
      (N,) indices into the cutoff grid.

    Example:
      >>> held_out_cutoffs(np.array([[0.1, 0.9], [0.5, 0.2], [0.4, 0.3]]))
      array([0, 1, 1])
    """
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 2 or len(scores) < 2:
        raise ValueError(f"scores must be (photos >= 2, cutoffs), got shape {scores.shape}")
    finite = np.isfinite(scores)
    values, counts = np.where(finite, scores, 0.0), finite.astype(np.float64)
    # the others' mean: (column total - own value) / (column count - own count)
    others = values.sum(axis=0) - values
    number = counts.sum(axis=0) - counts
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(number > 0, others / number, np.nan)
    if np.isnan(means).all(axis=1).any():
        raise ValueError("the tuning metric is undefined on every other photo at every cutoff for some photo; "
                         "choose another --tune-metric")
    filled = np.where(np.isnan(means), -np.inf if higher else np.inf, means)
    return np.argmax(filled, axis=1) if higher else np.argmin(filled, axis=1)


def ranks(means: np.ndarray, higher: bool) -> np.ndarray:
    """Rank 1 = best of ``means`` (N,); NaN last; ties in table order, so the ranks are a permutation of 1..N.

    Example:
      >>> ranks(np.array([0.2, 0.5, np.nan, 0.3]), higher=True)
      array([3, 1, 4, 2])
    """
    means = np.asarray(means, np.float64)
    key = np.where(np.isnan(means), np.inf, -means if higher else means)
    order = np.argsort(key, kind="stable")
    result = np.empty(len(means), int)
    result[order] = np.arange(1, len(means) + 1)
    return result


STARTED = time.perf_counter()


def log(message: str) -> None:
    """A progress line on stderr, after the seconds since the module loaded (differences time each stage)."""
    print(f"[{time.perf_counter() - STARTED:.0f} s] {message}", file=sys.stderr, flush=True)


def call_options(row: RankMethod, steps: int, nmasks: int, side: int, nreferences: int) -> dict:
    """The options each method runs with here: ``steps`` for the path methods (expected IG: per reference),
    RISE's masks, Occlusion's windows of 1/14 of the side without overlap, expected IG's subsample."""
    if row.method in ("ig", "gig", "blurig"):
        return {"steps": steps, **({"nreferences": nreferences} if row.references else {})}
    if row.method == "rise":
        return {"nmasks": nmasks}
    if row.method == "occlusion":
        patch = max(1, side // 14)
        return {"patch": patch, "stride": patch}
    return {}


def attribution_maps(model, photos, labels, count: int, rows, *, steps: int, nmasks: int, nreferences: int,
                     batch_size: int) -> dict:
    """The maps of every row for the first ``count`` photos: ``{key: (count, H, W, C)}``; one call per
    :attr:`RankMethod.call` with all its rules; expected IG one photo at a time (its references are the
    other photos of ``photos``)."""
    calls = {}
    for row in rows:
        calls.setdefault(row.call, []).append(row)
    maps = {}
    for number, group in enumerate(calls.values(), start=1):
        first = group[0]
        rules = tuple(row.rule for row in group)
        options = call_options(first, steps, nmasks, photos.shape[1], nreferences)
        log(f"method {number}/{len(calls)}: {' & '.join(row.title for row in group)}: {count} images")
        if first.references:
            parts = [attribute(model, photos[i:i + 1], labels[i:i + 1], first.method, rule=rules,
                               references=expected_references(photos, i), batch_size=batch_size, **options)
                     for i in range(count)]
            result = {rule: np.concatenate([part[rule] for part in parts]) for rule in rules}
        else:
            result = attribute(model, photos[:count], labels[:count], first.method, rule=rules,
                               batch_size=batch_size, **options)
        maps.update({row.key: result[row.rule] for row in group})
    return maps


def filtered_maps(model, images, labels, maps, rows, *, tune_metric: str, batch_size: int):
    """FORGrad at a leave-one-out cutoff: each white-box row's maps low-passed, each photo at the cutoff that
    is best on the other photos. Returns ``({key: (N, H, W)}, {key: cutoffs in cycles (N,)},
    {key: S (N, grid)})``."""
    better = TUNE_METRICS[tune_metric][1]
    options = dict(TUNE_OPTIONS[tune_metric])
    smooth, cutoffs, matrices = {}, {}, {}
    white = [row for row in rows if row.white_box]
    for number, row in enumerate(white, start=1):
        log(f"tuning {number}/{len(white)}: {row.title}: {tune_metric} at {len(CUTOFF_GRID)} cutoffs")
        search = tune_cutoff(model, images, labels, maps[row.key], metric=tune_metric, grid=CUTOFF_GRID,
                             batch_size=batch_size, options=options)
        picks = held_out_cutoffs(search.per_image, better == "higher")
        cutoffs[row.key] = search.cutoffs[picks]
        matrices[row.key] = search.per_image
        smooth[row.key] = np.concatenate([lowpass(maps[row.key][i:i + 1], cutoffs[row.key][i])
                                          for i in range(len(images))])
    return smooth, cutoffs, matrices


def entries(rows) -> list:
    """The scored (row, filtered) pairs: every row as it is, and every white-box row filtered."""
    return [(row, False) for row in rows] + [(row, True) for row in rows if row.white_box]


def score_entries(model, images, labels, maps, smooth, rows, metrics, *, batch_size: int) -> dict:
    """Per-image scores ``{(key, filtered): {score name: (N,)}}`` of every entry under every metric."""
    scored = {(row.key, filtered): {} for row, filtered in entries(rows)}
    for number, metric in enumerate(metrics, start=1):
        spec = RANK_METRICS[metric]
        log(f"metric {number}/{len(metrics)}: {metric}: {len(scored)} maps x {len(images)} images")
        function = metrics_lib.METRICS[metric].function
        for row, filtered in entries(rows):
            result = function(model, images, labels, (smooth if filtered else maps)[row.key],
                              batch_size=batch_size, **spec.options)
            for key in spec.scores:
                scored[(row.key, filtered)][score_name(metric, key)] = np.asarray(result.scores[key], np.float64)
    return scored


def finite_mean(values: np.ndarray) -> float:
    """The mean over the images where the score is defined (NaN if none)."""
    values = np.asarray(values, np.float64)
    return float(values[np.isfinite(values)].mean()) if np.isfinite(values).any() else float("nan")


def ranking(scored: dict, rows, metrics) -> dict:
    """Ranks before and after FORGrad per score: ``{score name: {"before": {key: rank}, "after": {key: rank},
    "higher": whether higher is better}}``.

    Before: every row unfiltered. After: white-box rows filtered, black-box rows as they are.

    Example:
      >>> ranking(scored, [RANK_METHODS["vg"], RANK_METHODS["rise"]], ["deletion"])["deletion"]["after"]
    """
    result = {}
    for metric in metrics:
        for key in RANK_METRICS[metric].scores:
            name, higher = score_name(metric, key), higher_is_better(metric, key)
            result[name] = {"higher": higher}
            for stage in ("before", "after"):
                picked = [(row.key, stage == "after" and row.white_box) for row in rows]
                order = ranks(np.array([finite_mean(scored[entry][name]) for entry in picked]), higher)
                result[name][stage] = dict(zip([method for method, _ in picked], order.tolist()))
    return result


def write_text(path: str, text: str) -> None:
    """``text`` at ``path``, atomically (:func:`idgi_tf._atomic.write_atomically`)."""
    write_atomically(path, lambda handle: handle.write(text))


def summary_rows(model_name: str, scored: dict, ranked: dict, cutoffs: dict, rows) -> list:
    """One dict per (method, filtered): each score's mean, its spread (std over images, count) and rank."""
    table = []
    for row, filtered in entries(rows):
        values = scored[(row.key, filtered)]
        line = {"model": model_name, "method": row.key, "title": row.title, "white_box": row.white_box,
                "filtered": filtered}
        chosen = cutoffs.get(row.key) if filtered else None
        line.update({"cutoff_median": "" if chosen is None else float(np.median(chosen)),
                     "cutoff_min": "" if chosen is None else float(np.min(chosen)),
                     "cutoff_max": "" if chosen is None else float(np.max(chosen))})
        for name, stages in ranked.items():
            finite = values[name][np.isfinite(values[name])]
            line[f"{name}_mean"] = finite_mean(values[name])
            line[f"{name}_std"] = float(finite.std()) if finite.size else float("nan")
            line[f"{name}_images"] = int(finite.size)
            before = not filtered
            after = filtered or not row.white_box
            line[f"{name}_rank_before"] = stages["before"][row.key] if before else ""
            line[f"{name}_rank_after"] = stages["after"][row.key] if after else ""
        table.append(line)
    return table


def csv_text(table: list) -> str:
    """Dicts with the same keys as CSV text."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(table[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return buffer.getvalue()


def image_rows(model_name: str, names, scored: dict, cutoffs: dict) -> list:
    """Per-image scores, one dict per (method, filtered, image, score): the spread behind every mean."""
    table = []
    for (key, filtered), values in scored.items():
        for name, per_image in values.items():
            for index, score in enumerate(per_image):
                table.append({"model": model_name, "method": key, "filtered": filtered, "image": names[index],
                              "score": name, "value": float(score),
                              "cutoff": float(cutoffs[key][index]) if filtered else ""})
    return table


def arrow(higher: bool) -> str:
    """↑ for a score where higher is better, ↓ otherwise."""
    return "↑" if higher else "↓"


def markdown(model_name: str, table: list, ranked: dict, rows, count: int) -> str:
    """The ranking as a markdown table: per method, each score and rank before -> after FORGrad."""
    by_entry = {(line["method"], line["filtered"]): line for line in table}
    names = list(ranked)
    header = ["method", "cutoff (cycles, median [min–max])"] + [
        f"{name} {arrow(ranked[name]['higher'])} before → after" for name in names]
    lines = [f"**{model_name}**, {count} photos; cell: mean score (rank) before → after FORGrad "
             "(black-box methods are not filtered)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        before = by_entry[(row.key, False)]
        after = by_entry[(row.key, True)] if row.white_box else before
        cutoff = (f"{after['cutoff_median']:.1f} [{after['cutoff_min']:.1f}–{after['cutoff_max']:.1f}]"
                  if row.white_box else "—")
        cells = [f"{before[f'{n}_mean']:.3f} ({before[f'{n}_rank_before']}) → "
                 f"{after[f'{n}_mean']:.3f} ({after[f'{n}_rank_after']})" for n in names]
        lines.append("| " + " | ".join([row.title, cutoff, *cells]) + " |")
    return "\n".join(lines) + "\n"


def slope_chart(model_name: str, ranked: dict, rows, count: int):
    """Ranks before -> after FORGrad, one panel per score: a line per method (dashed: black-box)."""
    names = list(ranked)
    figure = Figure(figsize=(3.2 * len(names), 0.32 * len(rows) + 1.6), layout="constrained")
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    colours = matplotlib.colormaps["tab20"].colors
    for axis, name in zip(axes, names):
        for number, row in enumerate(rows):
            before, after = ranked[name]["before"][row.key], ranked[name]["after"][row.key]
            axis.plot([0, 1], [before, after], marker="o", linestyle="-" if row.white_box else "--",
                      color=colours[number % len(colours)])
            axis.text(-0.05, before, row.title, ha="right", va="center", fontsize=7)
            axis.text(1.05, after, row.title, ha="left", va="center", fontsize=7)
        axis.set_xlim(-1.1, 2.1)
        axis.set_ylim(len(rows) + 0.5, 0.5)
        axis.set_xticks([0, 1], ["before", "after FORGrad"])
        axis.set_yticks(range(1, len(rows) + 1))
        axis.set_title(f"{name} {arrow(ranked[name]['higher'])}")
    axes[0].set_ylabel("rank (1 = best)")
    figure.suptitle(figure_title("Method ranks before and after FORGrad", model_name, count))
    return figure


@dataclasses.dataclass(frozen=True)
class Settings:
    """What one ranking run computes (the command's options)."""

    methods: tuple
    metrics: tuple
    limit: int
    steps: int
    nmasks: int
    nreferences: int
    batch_size: int
    tune_metric: str


def check_settings(settings: Settings, photos: int) -> None:
    """Refuse bad settings before any model runs: unknown or missing rows, too few photos for leave-one-out.

    Example:
      >>> check_settings(Settings(("vg",), ("deletion",), 1, 32, 1000, 4, 32, "insertion"), 11)  # ValueError
    """
    if not 2 <= settings.limit <= photos:
        raise ValueError(f"--limit must be between 2 and {photos} (each photo's cutoff is tuned on the other "
                         f"photos: leave-one-out needs two), got {settings.limit}")
    if settings.tune_metric not in TUNE_METRICS:
        raise ValueError(f"--tune-metric must be one of {', '.join(TUNE_METRICS)}, got {settings.tune_metric!r}")
    if not any(RANK_METHODS[key].white_box for key in settings.methods):
        raise ValueError("--methods must name at least one white-box method (FORGrad filters those), got "
                         f"{','.join(settings.methods)}")


def run(model, model_name: str, samples, settings: Settings, out: str) -> dict:
    """Rank the methods before and after FORGrad on the first ``settings.limit`` photos of ``samples`` and write
    ``ranking.csv``, ``ranking.md``, ``scores.csv`` (per image), ``ranking.json`` and ``ranks.png`` to ``out``.

    Returns the JSON's content: settings, the leave-one-out cutoffs and S matrices, the summary, the ranks and
    the seconds each stage took.

    Example:
      >>> run(model, "EfficientNetLite0", data.sample_images(224), Settings(...), "ranking_out")
    """
    check_settings(settings, len(samples.images))
    rows = [RANK_METHODS[key] for key in RANK_METHODS if key in settings.methods]
    metrics = [key for key in RANK_METRICS if key in settings.metrics]
    count = settings.limit
    photos, labels = np.asarray(samples.images, np.float32), np.asarray(samples.labels)
    images, targets = photos[:count], labels[:count]
    os.makedirs(out, exist_ok=True)
    seconds, start = {}, time.perf_counter()
    maps = attribution_maps(model, photos, labels, count, rows, steps=settings.steps, nmasks=settings.nmasks,
                            nreferences=settings.nreferences, batch_size=settings.batch_size)
    seconds["attributions"], start = time.perf_counter() - start, time.perf_counter()
    smooth, cutoffs, matrices = filtered_maps(model, images, targets, maps, rows, tune_metric=settings.tune_metric,
                                              batch_size=settings.batch_size)
    seconds["tuning"], start = time.perf_counter() - start, time.perf_counter()
    scored = score_entries(model, images, targets, maps, smooth, rows, metrics, batch_size=settings.batch_size)
    seconds["metrics"] = time.perf_counter() - start
    ranked = ranking(scored, rows, metrics)
    table = summary_rows(model_name, scored, ranked, cutoffs, rows)
    names = list(samples.names[:count])
    write_text(os.path.join(out, "ranking.csv"), csv_text(table))
    write_text(os.path.join(out, "scores.csv"), csv_text(image_rows(model_name, names, scored, cutoffs)))
    write_text(os.path.join(out, "ranking.md"), markdown(model_name, table, ranked, rows, count))
    save_figure_atomically(slope_chart(model_name, ranked, rows, count), os.path.join(out, "ranks.png"))
    report = {
        "model": model_name, "images": names, "settings": dataclasses.asdict(settings),
        "metric_options": {key: dict(RANK_METRICS[key].options) for key in metrics},
        "tune_options": dict(TUNE_OPTIONS[settings.tune_metric]),
        "cutoff_grid_cycles": [float(c * min(images.shape[1:3])) for c in CUTOFF_GRID],
        "cutoffs": {key: value.tolist() for key, value in cutoffs.items()},
        "tuning_scores": {key: m.tolist() for key, m in matrices.items()},
        "ranks": ranked, "summary": table, "seconds": seconds,
    }
    write_text(os.path.join(out, "ranking.json"), json.dumps(json_safe(report), indent=1, allow_nan=False))
    return report


def json_safe(value):
    """``value`` with NaN and infinities as ``None`` and NumPy scalars as Python numbers (strict JSON)."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def summary_markdown(tables: dict) -> str:
    """The rankings of several models in one markdown table: per score and model, the first method before and
    after FORGrad, how many of the top three are white-box before and after, and how many white-box methods
    score better after FORGrad than before.

    Args:
      tables: ``{model: rows of its ranking.csv}`` (``csv.DictReader`` rows, as :func:`run` writes them).

    Example:
      >>> summary_markdown({"EfficientNetLite0": list(csv.DictReader(open("ranking.csv")))})
    """
    models = list(tables)
    scores = [key[: -len("_rank_before")] for key in next(iter(tables.values()))[0] if key.endswith("_rank_before")]
    directions = {score_name(metric, key): higher_is_better(metric, key)
                  for metric, row in RANK_METRICS.items() for key in row.scores}
    lines = ["| score | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for score in scores:
        cells = []
        for model in models:
            stages = {}
            for stage in ("before", "after"):
                ranked = sorted((int(row[f"{score}_rank_{stage}"]), row["title"], row["white_box"] == "True")
                                for row in tables[model] if row[f"{score}_rank_{stage}"])
                stages[stage] = (ranked[0][1], sum(white for _, _, white in ranked[:3]))
            (first_before, white_before), (first_after, white_after) = stages["before"], stages["after"]
            means = {(row["method"], row["filtered"] == "True"): float(row[f"{score}_mean"]) for row in tables[model]}
            sign = 1.0 if directions[score] else -1.0
            white = [row["method"] for row in tables[model] if row["white_box"] == "True" and row["filtered"] == "True"]
            better = sum(sign * (means[(key, True)] - means[(key, False)]) > 0 for key in white)
            cells.append(f"{first_before} → {first_after} ({white_before} → {white_after}); "
                         f"{better} of {len(white)} better")
        lines.append(f"| {score} {arrow(directions[score])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
