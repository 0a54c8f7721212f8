"""Aggregate results rows into the IDGI paper's Tables 1-4, with the paper's values beside ours.

Per (model, method, rule), each headline score of :data:`idgi_tf.metrics.METRICS` as its row says
(``Score.aggregate``): the mean over images (Insertion, localization), or for SIC/AIC the area under the
curve binned over all images' points (median per bin for SIC, mean for AIC; docs/metrics.md#sic-and-aic).
Columns are titled and ordered by :data:`idgi_tf.METHODS`.
The paper's values are ``benchmarks/paper_tables.csv`` (shipped in the package).
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys

import numpy as np

from .. import data, metrics, viz
from .._atomic import save_figure_atomically, write_atomically
from ..attribution.methods import METHODS
from ..models import ALIASES
from ..viz.figure import maps_grid
from .results import merged_rows, readable_npz
from .run import LOWPASS_SUFFIX

RULE_SUFFIXES = {"plain": "", "idgi": "+IDGI"}
# (method, rule) -> the paper's column: the method's title and rule, in METHODS order
COLUMNS = {(name, rule): method.title + suffix for name, method in METHODS.items()
           for rule, suffix in RULE_SUFFIXES.items() if rule in method.rules}
# the same, low-passed (--lowpass)
LOWPASS_COLUMNS = {(method, rule + LOWPASS_SUFFIX): name + "+LP" for (method, rule), name in COLUMNS.items()}
ALL_COLUMNS = {**COLUMNS, **LOWPASS_COLUMNS}
FIGURE_GRIDS = 3  # Figure-3 grids drawn by the report, at most


def paper_values() -> dict:
    """{(metric, model, column): value} from the paper's Tables 1-4 (Keras model names)."""
    text = data.package_file("paper_tables.csv").read_text()
    return {
        (row["metric"], ALIASES.get(row["model"], row["model"]), row["column"]): float(row["value"])
        for row in csv.DictReader(io.StringIO(text))
    }


def headline_scores() -> list:
    """Every headline score of the metric table, in its order (read at call time: a new row shows at once)."""
    return [score for metric in metrics.METRICS.values() for score in metric.scores]


def _value(rows: list[dict], score) -> tuple[float, int]:
    """Our number for one cell and how many images it rests on."""
    return score.aggregate([row[score.field] for row in rows if row.get(score.field) is not None])


def aggregate(rows: list[dict]) -> list[dict]:
    """One record per (metric, model, column) with ours, the paper's and the difference."""
    paper = paper_values()
    groups: dict = {}
    for row in rows:
        column = ALL_COLUMNS.get((row["method"], row["rule"]))
        if column is not None:
            groups.setdefault((row["model"], column), []).append(row)
    records = []
    for score in headline_scores():
        if not any(score.field in row for row in rows):
            continue  # not computed in this run
        for (model, column), members in sorted(groups.items(), key=lambda item: item[0][0]):
            ours, images = _value(members, score)
            theirs = paper.get((score.name, model, column), math.nan)
            records.append({"table": score.table or "", "metric": score.name, "model": model, "column": column,
                            "ours": ours, "paper": theirs, "difference": ours - theirs, "images": images})
    return records


def _cell(record) -> str:
    if record is None or math.isnan(record["ours"]):
        return "n/a"
    if math.isnan(record["paper"]):
        return f"{record['ours']:.3f}"
    return f"{record['ours']:.3f} / {record['paper']:.3f} ({record['difference']:+.3f})"


def markdown(records: list[dict], smoke: bool, missing=(), dropped=()) -> str:
    lines = ["# IDGI paper Tables 1-4: ours / paper (difference)", ""]
    if smoke:
        lines += ["**SMOKE RUN on random weights: these numbers mean nothing.**", ""]
    if missing:
        lines += ["**INCOMPLETE: no results yet from " + "; ".join(missing) + ".**", ""]
    if dropped:
        lines += ["**INCOMPLETE: blank or torn lines left out: " + "; ".join(dropped) + ".**", ""]
    present = {r["column"] for r in records}
    columns = [c for c in ALL_COLUMNS.values() if c in present]
    for score in headline_scores():
        mine = [r for r in records if r["metric"] == score.name]
        if not mine:
            continue
        heading = f"{score.title} ({'higher' if score.higher_is_better else 'lower'} is better)"
        lines += [f"## Table {score.table}: {heading}" if score.table else f"## {heading}", "",
                  "| Model | " + " | ".join(columns) + " | images |", "|---" * (len(columns) + 2) + "|"]
        verdicts = []
        for model in sorted({r["model"] for r in mine}):
            cells = {r["column"]: r for r in mine if r["model"] == model}
            images = max(r["images"] for r in cells.values())
            lines.append(f"| {model} | " + " | ".join(_cell(cells.get(c)) for c in columns) + f" | {images} |")
            verdicts.append(f"{model}: {idgi_verdict(cells, lower_is_better=not score.higher_is_better)}")
        if any(column.endswith("+IDGI") for column in columns):  # a run without a path method has no verdict
            lines += ["", "Does IDGI improve its base path? " + "; ".join(verdicts) + "."]
        lines.append("")
    return "\n".join(lines)


def idgi_verdict(cells: dict, lower_is_better: bool = False) -> str:
    """``IG yes (+0.041), GIG no (-0.003), ...``: each IDGI column against its plain path, as the paper compares."""
    parts = []
    for base in (method.title for method in METHODS.values() if "idgi" in method.rules):
        plain, idgi = cells.get(base), cells.get(base + "+IDGI")
        if plain is None or idgi is None or math.isnan(plain["ours"]) or math.isnan(idgi["ours"]):
            continue
        change = idgi["ours"] - plain["ours"]
        better = change < 0 if lower_is_better else change > 0
        parts.append(f"{base} {'yes' if better else 'no'} ({change:+.3f})")
    return ", ".join(parts) or "n/a"


def _column_curves(rows: list[dict], curve) -> tuple[list, dict]:
    """Per paper column, ``curve.combine`` of its rows' curves: ([x per column], {column: y})."""
    xs, series = [], {}
    for key, column in ALL_COLUMNS.items():
        values = [row[curve.field] for row in rows if (row["method"], row["rule"]) == key
                  and row.get(curve.field) is not None]
        if values:
            x, series[column] = curve.combine(values)
            xs.append(x)
    return xs, series


def _figure_title(rows: list[dict], curve, smoke: str) -> str:
    """"what: model, N images" (:func:`idgi_tf.viz.figure_title`): the images whose rows hold the curve."""
    images = {(row["model"], row["image"]) for row in rows if row.get(curve.field) is not None}
    models = ", ".join(sorted({model for model, _ in images}))
    return viz.figure_title(curve.title, models, len(images)) + smoke


def write_figures(rows: list[dict], directories, to: str) -> list[str]:
    """``to/figures/``: each metric's curves per column (as its table row says), Figure-3 grids of the kept maps."""
    folder = os.path.join(to, "figures")
    written = []
    smoke = " (SMOKE RUN: random weights)" if any(row.get("smoke") for row in rows) else ""
    for curve in (curve for metric in metrics.METRICS.values() for curve in metric.curves):
        xs, series = _column_curves(rows, curve)
        if series:
            figure = getattr(viz, curve.plot)(xs, series, xlabel=curve.xlabel, ylabel=curve.ylabel,
                                              title=_figure_title(rows, curve, smoke), **curve.options)
            written.append(save_figure_atomically(figure, os.path.join(folder, f"{curve.name}.png")))
    kept = sorted(os.path.join(d, "maps", f) for d in directories if os.path.isdir(os.path.join(d, "maps"))
                  for f in os.listdir(os.path.join(d, "maps")) if f.endswith(".npz"))
    torn = [path for path in kept if not readable_npz(path)]
    for path in torn:
        print(f"warning: {path} does not load (torn); no Figure-3 grid from it", file=sys.stderr)
    for path in [path for path in kept if path not in torn][:FIGURE_GRIDS]:
        with np.load(path) as stored:
            maps = {tuple(key.split("__")): stored[key].astype(np.float32) for key in stored.files if "__" in key}
            methods = [method for method in METHODS if any(key[0] == method for key in maps)]
            label = int(stored["label"])
            image_id = os.path.basename(path)[: -len(".npz")]
            title = f"{image_id}: {label} {data.class_name(label)}{smoke}"
            written.append(save_figure_atomically(maps_grid(stored["image"], maps, methods, title=title),
                                 os.path.join(folder, f"figure3_{image_id}.png")))
    return written


def write_report(directories, to: str | None = None) -> list[str]:
    """Write ``tables.md``, ``tables.csv`` and ``figures/`` for the merged rows of ``directories``.

    Returns the paths written: the two tables first, then the figures.
    """
    merged = merged_rows(directories)
    rows = merged.rows
    if merged.missing:
        print("warning: not every shard has results yet, the tables cover the others: " + "; ".join(merged.missing),
              file=sys.stderr)
    if not rows:
        raise FileNotFoundError(f"no results rows under {', '.join(directories)}")
    records = aggregate(rows)
    to = to or directories[0]
    os.makedirs(to, exist_ok=True)
    md_path, csv_path = os.path.join(to, "tables.md"), os.path.join(to, "tables.csv")
    text = markdown(records, smoke=any(row.get("smoke") for row in rows), missing=merged.missing,
                    dropped=merged.dropped)
    write_atomically(md_path, lambda handle: handle.write(text + "\n"))

    def write_csv(handle):
        writer = csv.DictWriter(handle, fieldnames=list(records[0]) if records else ["table"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)

    write_atomically(csv_path, write_csv)
    return [md_path, csv_path, *write_figures(rows, directories, to)]
