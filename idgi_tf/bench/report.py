"""Aggregate results rows into the IDGI paper's Tables 1-4, with the paper's values beside ours.

Per (model, method, rule): the mean over images of the Insertion AUCs and of
the localization scores; SIC/AIC as the area under the curve binned over all
images' points (median per bin for SIC, mean for AIC; docs/metrics.md#sic-and-aic).
The paper's values are ``benchmarks/paper_tables.csv`` (shipped in the package).
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys

import numpy as np

from .. import data
from ..metrics.sic_aic import binned_curve
from ..models import ALIASES
from ..viz import plot_curves, save
from ..viz.figure import maps_grid
from .results import merged_rows, readable_npz, write_atomically

# (method, rule) -> the paper's column
COLUMNS = {
    ("ig", "plain"): "IG", ("ig", "idgi"): "IG+IDGI",
    ("gig", "plain"): "GIG", ("gig", "idgi"): "GIG+IDGI",
    ("blurig", "plain"): "BlurIG", ("blurig", "idgi"): "BlurIG+IDGI",
    ("vg", "plain"): "VG",
}
# the same, low-passed (--lowpass); shown only when a run has them
LOWPASS_COLUMNS = {(method, rule + "+lowpass"): name + "+LP" for (method, rule), name in COLUMNS.items()}
ALL_COLUMNS = {**COLUMNS, **LOWPASS_COLUMNS}
# metric key -> (table, title); a row holds it under the field of the same name,
# or for SIC/AIC under sic_aic_<information>
METRICS = {
    "insertion_probability": ("1", "Insertion score with probability (higher is better)"),
    "insertion_ratio": ("1", "Insertion score with probability ratio (higher is better)"),
    "aic_entropy": ("2", "AUC AIC, normalised entropy (higher is better)"),
    "sic_entropy": ("2", "AUC SIC, normalised entropy (higher is better)"),
    "aic_msssim": ("3", "AUC AIC, MS-SSIM (higher is better)"),
    "sic_msssim": ("3", "AUC SIC, MS-SSIM (higher is better)"),
    "f1": ("4", "Localization F1 (higher is better)"),
    "roc_auc": ("4", "Localization ROC AUC (higher is better)"),
    "mae": ("4", "Localization MAE (lower is better)"),
}
BINS = 100
FIGURE_GRIDS = 3  # Figure-3 grids drawn by the report, at most


def paper_values() -> dict:
    """{(metric, model, column): value} from the paper's Tables 1-4 (Keras model names)."""
    text = data._package_file("paper_tables.csv").read_text()
    return {
        (row["metric"], ALIASES.get(row["model"], row["model"]), row["column"]): float(row["value"])
        for row in csv.DictReader(io.StringIO(text))
    }


def _field(metric: str) -> str:
    return f"sic_aic_{metric.split('_')[1]}" if metric[:4] in ("aic_", "sic_") else metric


def _value(rows: list[dict], metric: str) -> tuple[float, int]:
    """Our number for one cell and how many images it rests on."""
    if metric[:4] in ("aic_", "sic_"):
        kind, information = metric.split("_")
        points = [row.get(_field(metric)) for row in rows]
        points = [p for p in points if p is not None]
        if not points:
            return math.nan, 0
        x = np.concatenate([p["information"] for p in points])
        y = np.concatenate([p[kind] for p in points])
        curve = binned_curve(x, y, BINS, np.median if kind == "sic" else np.mean)
        return float(curve.mean()), len(points)
    values = np.array([row[metric] for row in rows if row.get(metric) is not None], np.float64)
    values = values[np.isfinite(values)]
    return (float(values.mean()), int(values.size)) if values.size else (math.nan, 0)


def aggregate(rows: list[dict]) -> list[dict]:
    """One record per (metric, model, column) with ours, the paper's and the difference."""
    paper = paper_values()
    groups: dict = {}
    for row in rows:
        column = ALL_COLUMNS.get((row["method"], row["rule"]))
        if column is not None:
            groups.setdefault((row["model"], column), []).append(row)
    records = []
    for metric, (table, _) in METRICS.items():
        if not any(_field(metric) in row for row in rows):
            continue  # not computed in this run
        for (model, column), members in sorted(groups.items(), key=lambda item: item[0][0]):
            ours, images = _value(members, metric)
            theirs = paper.get((metric, model, column), math.nan)
            records.append({"table": table, "metric": metric, "model": model, "column": column, "ours": ours,
                            "paper": theirs, "difference": ours - theirs, "images": images})
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
    columns = list(COLUMNS.values()) + [c for c in LOWPASS_COLUMNS.values() if c in present]
    for metric, (table, title) in METRICS.items():
        mine = [r for r in records if r["metric"] == metric]
        if not mine:
            continue
        lines += [f"## Table {table}: {title}", "", "| Model | " + " | ".join(columns) + " | images |",
                  "|---" * (len(columns) + 2) + "|"]
        verdicts = []
        for model in sorted({r["model"] for r in mine}):
            cells = {r["column"]: r for r in mine if r["model"] == model}
            images = max(r["images"] for r in cells.values())
            lines.append(f"| {model} | " + " | ".join(_cell(cells.get(c)) for c in columns) + f" | {images} |")
            verdicts.append(f"{model}: {idgi_verdict(cells, lower_is_better=metric == 'mae')}")
        lines += ["", "Does IDGI improve its base path? " + "; ".join(verdicts) + ".", ""]
    return "\n".join(lines)


def idgi_verdict(cells: dict, lower_is_better: bool = False) -> str:
    """``IG yes (+0.041), GIG no (-0.003), ...``: each IDGI column against its plain path, as the paper compares."""
    parts = []
    for base in ("IG", "GIG", "BlurIG"):
        plain, idgi = cells.get(base), cells.get(base + "+IDGI")
        if plain is None or idgi is None or math.isnan(plain["ours"]) or math.isnan(idgi["ours"]):
            continue
        change = idgi["ours"] - plain["ours"]
        better = change < 0 if lower_is_better else change > 0
        parts.append(f"{base} {'yes' if better else 'no'} ({change:+.3f})")
    return ", ".join(parts) or "n/a"


def _mean_curves(rows: list[dict], field: str, kind: str | None = None):
    """Per paper column: the mean insertion curve, or the SIC/AIC curve binned over all images."""
    series = {}
    for key, column in ALL_COLUMNS.items():
        members = [row for row in rows if (row["method"], row["rule"]) == key and row.get(field) is not None]
        if not members:
            continue
        if kind is None:
            series[column] = np.mean([row[field] for row in members], axis=0)
        else:
            x = np.concatenate([row[field]["information"] for row in members])
            y = np.concatenate([row[field][kind] for row in members])
            series[column] = binned_curve(x, y, BINS, np.median if kind == "sic" else np.mean)
    return series


def write_figures(rows: list[dict], directories, to: str) -> list[str]:
    """``to/figures/``: mean Insertion and SIC/AIC curves per column, Figure-3 grids of the kept maps."""
    folder = os.path.join(to, "figures")
    written = []
    smoke = " (SMOKE RUN: random weights)" if any(row.get("smoke") for row in rows) else ""
    plots = [("insertion_curve", None, "insertion", "fraction of pixels inserted", "mean f(canvas)", "Insertion")]
    plots += [(f"sic_aic_{info}", kind, f"{kind}_{info}", f"normalised {info}", f"{kind.upper()} (binned)",
               f"{kind.upper()}, {info}") for info in ("entropy", "msssim") for kind in ("sic", "aic")]
    for field, kind, name, xlabel, ylabel, title in plots:
        series = _mean_curves(rows, field, kind)
        if series:
            length = len(next(iter(series.values())))
            x = np.linspace(0, 1, length) if kind is None else (np.arange(BINS) + 0.5) / BINS
            written.append(_save(plot_curves(x, series, xlabel=xlabel, ylabel=ylabel, title=title + smoke),
                                 os.path.join(folder, f"{name}.png")))
    kept = sorted(os.path.join(d, "maps", f) for d in directories if os.path.isdir(os.path.join(d, "maps"))
                  for f in os.listdir(os.path.join(d, "maps")) if f.endswith(".npz"))
    torn = [path for path in kept if not readable_npz(path)]
    for path in torn:
        print(f"warning: {path} does not load (torn); no Figure-3 grid from it", file=sys.stderr)
    for path in [path for path in kept if path not in torn][:FIGURE_GRIDS]:
        with np.load(path) as stored:
            maps = {tuple(key.split("__")): stored[key].astype(np.float32) for key in stored.files if "__" in key}
            methods = list(dict.fromkeys(method for method, _ in maps))
            label = int(stored["label"])
            image_id = os.path.basename(path)[: -len(".npz")]
            title = f"{image_id}: {label} {data.class_name(label)}{smoke}"
            written.append(_save(maps_grid(stored["image"], maps, methods, title=title),
                                 os.path.join(folder, f"figure3_{image_id}.png")))
    return written


def _save(figure, path: str) -> str:
    """:func:`idgi_tf.viz.save` under a temporary name (same extension), then renamed: never a torn figure."""
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{os.getpid()}.{name}")
    try:
        os.replace(save(figure, temporary), path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


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
