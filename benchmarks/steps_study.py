"""How the paper's metrics depend on the number of Riemann steps, on trained networks (issue 20).

For EfficientNet-Lite0/1/2 (trained ImageNet weights, offline) on the 11 shipped photos that each
network classifies correctly: IG, Guided IG and Blur IG, plain and +IDGI (one pass serves both), at
16, 32, 64, 128, 200 and 400 steps. Per (model, method, steps) it records the mean Insertion score
(probability AUC), the mean localization ROC AUC against the official boxes, and the mean relative
completeness gap of each rule (``attribute(..., return_gap=True)``). Rows are appended (atomically) to
``OUT/rows.jsonl`` and skipped when already there, so an interrupted run resumes; ``OUT/steps.png``
(metric vs steps, one line per method and rule, one row of panels per model) and ``OUT/steps.md``
(the table) are written from all rows at the end.

The grid study (issue 33) adds ``--grids uniform,adaptive`` (``attribute(..., grid=...)``) and
``--reference R``: every map is also compared with the uniform-grid map at ``R`` steps of the same method
and rule (computed first, kept in memory): relative L1 distance ``Σ|A - A_R| / Σ|A_R|`` and the Spearman
rank correlation of the per-pixel ``Σ_c |A|``, means over the photos, and the time per photo. Those rows
write ``OUT/grid.md`` and ``OUT/grid.png`` instead. Every row records its settings (grid, batch size,
reference); a resumed run refuses rows of the same cell written with other settings.

Usage::

    python benchmarks/steps_study.py [--models EfficientNetLite0,EfficientNetLite1,EfficientNetLite2]
        [--steps 16,32,64,128,200,400] [--methods ig,gig,blurig] [--out benchmarks/steps_study]
    python benchmarks/steps_study.py --methods ig,blurig --grids uniform,adaptive --steps 16,32,64,200 \
        --reference 200 --out benchmarks/steps_study/grid
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from scipy.stats import spearmanr

import idgi_tf
from idgi_tf import _atomic, data, metrics, models, viz
from idgi_tf._cli import comma_list, positive_ints
from idgi_tf.attribution.grid import ADAPTIVE_METHODS, GRIDS

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = ("plain", "idgi")
TITLES = {"ig": "IG", "gig": "GIG", "blurig": "BlurIG"}
PANELS = (("insertion", "Insertion (probability AUC)", False), ("roc_auc", "localization ROC AUC", False),
          ("gap", "relative completeness gap", True))


def read_rows(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def append_row(path: str, row: dict) -> None:
    """``path`` rewritten atomically with ``row`` as one more JSON line: a kill leaves every finished row and
    no torn one."""
    previous = ""
    if os.path.exists(path):
        with open(path) as handle:
            previous = handle.read()
    _atomic.write_atomically(path, lambda handle: handle.write(previous + json.dumps(row) + "\n"))


def correctly_classified(model, size: int):
    samples = data.sample_images(size)
    predicted = np.argmax(model.predict(samples.images, verbose=0), axis=1)
    keep = predicted == samples.labels
    return samples.images[keep], samples.labels[keep], samples.masks[keep]


def distances(maps: np.ndarray, references: np.ndarray) -> dict:
    """Mean over images of the relative L1 distance of ``maps`` to ``references`` and of the Spearman rank
    correlation of their per-pixel ``Σ_c |A|`` (images (n, H, W, C))."""
    l1 = [np.abs(a - r).sum() / np.abs(r).sum() for a, r in zip(maps, references)]
    rho = [spearmanr(np.abs(a).sum(-1).ravel(), np.abs(r).sum(-1).ravel()).statistic
           for a, r in zip(maps, references)]
    return {"rel_l1": float(np.mean(l1)), "spearman": float(np.mean(rho))}


def measure(model, images, labels, masks, method: str, steps: int, batch_size: int, grid: str = "uniform",
            references: dict | None = None, warm: bool = False) -> tuple[dict, dict]:
    """One cell's row and its maps (``{rule: (n, H, W, C)}``); distances to ``references`` when given. With
    ``warm``, the time is that of a second call (the first traces and compiles the cell's configuration)."""
    def call():
        return idgi_tf.attribute(model, images, labels, method, rule=RULES, steps=steps, return_gap=True,
                                 batch_size=batch_size, grid=grid)

    if warm:
        call()
    start = time.perf_counter()
    maps, gaps = call()
    seconds = time.perf_counter() - start
    row = {"attribute_seconds": seconds, "seconds_per_image": seconds / len(images)}
    for rule in RULES:
        row[f"insertion_{rule}"] = metrics.insertion(model, images, labels, maps[rule],
                                                     batch_size=batch_size).means()["probability"]
        row[f"roc_auc_{rule}"] = metrics.localization(maps[rule], masks).means()["roc_auc"]
        row[f"gap_{rule}"] = float(np.mean(gaps[rule].relative))
        if references is not None:
            row.update({f"{key}_{rule}": value for key, value in distances(maps[rule], references[rule]).items()})
    return row, maps


def plot_against_steps(ax, xs, series: dict, label: str, logy: bool, rows: list[dict]) -> None:
    """One panel: ``series`` against steps on a log axis ticked at the step counts of one model's ``rows``."""
    viz.plot_curves(xs, series, xlabel="steps", ylabel=label, logx=True, logy=logy,
                    title=f"{rows[0]['model']} ({rows[0]['images']} images)", ax=ax)
    ticks = sorted({row["steps"] for row in rows})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def write_report(rows: list[dict], out: str) -> list[str]:
    """``steps.png`` and ``steps.md`` from the rows."""
    names = list(dict.fromkeys(row["model"] for row in rows))
    figure = Figure(figsize=(15, 3.6 * len(names)), layout="constrained")
    axes = figure.subplots(len(names), len(PANELS), squeeze=False)
    lines = ["| model | method | rule | " + " | ".join(f"{s} steps" for s in sorted({r['steps'] for r in rows}))
             + " |"]
    for row_axes, name in zip(axes, names):
        mine = [row for row in rows if row["model"] == name]
        methods = list(dict.fromkeys(row["method"] for row in mine))
        for ax, (key, label, logy) in zip(row_axes, PANELS):
            series, xs = {}, []
            for method in methods:
                for rule in RULES:
                    points = sorted((row["steps"], row[f"{key}_{rule}"]) for row in mine if row["method"] == method)
                    series[f"{TITLES.get(method, method)}{'+IDGI' if rule == 'idgi' else ''}"] = [p[1] for p in points]
                    xs.append([p[0] for p in points])
            plot_against_steps(ax, xs if len(xs) > 1 else xs[0], series, label, logy, mine)
        for method in methods:
            for rule in RULES:
                points = sorted((row["steps"], row) for row in mine if row["method"] == method)
                cells = [f"{r['insertion_' + rule]:.3f} / {r['roc_auc_' + rule]:.3f} / {r['gap_' + rule]:.1e}"
                         for _, r in points]
                lines.append(f"| {name} | {TITLES.get(method, method)} | {rule} | " + " | ".join(cells) + " |")
    header = ("Cells: Insertion (probability AUC) / localization ROC AUC / mean relative completeness gap, "
              "means over the correctly classified shipped photos.\n\n")
    lines.insert(1, "|" + "---|" * (3 + len({r["steps"] for r in rows})))
    table = os.path.join(out, "steps.md")
    with open(table, "w") as handle:
        handle.write(header + "\n".join(lines) + "\n")
    return [viz.save(figure, os.path.join(out, "steps.png")), table]


GRID_PANELS = (("rel_l1", "relative L1 to the reference map", True),
               ("spearman", "Spearman ρ of |A| to the reference map", False),
               ("insertion", "Insertion (probability AUC)", False), ("roc_auc", "localization ROC AUC", False))


def write_grid_report(rows: list[dict], out: str) -> list[str]:
    """``grid.png`` and ``grid.md`` from rows with distances: the IDGI maps of each method on the uniform
    and the adaptive grid against steps, and a table with the plain rule's gap and the time per photo."""
    reference = rows[0]["reference"]
    names = list(dict.fromkeys(row["model"] for row in rows))
    figure = Figure(figsize=(19, 3.6 * len(names)), layout="constrained")
    axes = figure.subplots(len(names), len(GRID_PANELS), squeeze=False)
    lines = [f"| model | method | grid | steps | Insertion | ROC AUC | plain gap | rel. L1 to {reference} | "
             f"Spearman to {reference} | s / photo | × {reference}-step time |", "|---" * 11 + "|"]
    for row_axes, name in zip(axes, names):
        mine = [row for row in rows if row["model"] == name]
        methods = list(dict.fromkeys(row["method"] for row in mine))
        for ax, (key, label, logy) in zip(row_axes, GRID_PANELS):
            series, xs = {}, []
            for method in methods:
                for grid in GRIDS:
                    points = sorted((row["steps"], row[f"{key}_idgi"]) for row in mine
                                    if row["method"] == method and row["grid"] == grid
                                    and not (key in ("rel_l1", "spearman") and row["steps"] == reference
                                             and grid == "uniform"))
                    if points:
                        series[f"{TITLES.get(method, method)}+IDGI, {grid}"] = [p[1] for p in points]
                        xs.append([p[0] for p in points])
            plot_against_steps(ax, xs, series, label, logy, mine)
        for method in methods:
            base = next(row for row in mine if row["method"] == method and row["grid"] == "uniform"
                        and row["steps"] == reference)
            for row in sorted((r for r in mine if r["method"] == method), key=lambda r: (r["grid"], r["steps"])):
                lines.append(
                    f"| {name} | {TITLES.get(method, method)}+IDGI | {row['grid']} | {row['steps']} | "
                    f"{row['insertion_idgi']:.3f} | {row['roc_auc_idgi']:.3f} | {row['gap_plain']:.1e} | "
                    f"{row['rel_l1_idgi']:.3f} | {row['spearman_idgi']:.3f} | {row['seconds_per_image']:.2f} | "
                    f"{row['seconds_per_image'] / base['seconds_per_image']:.2f} |")
    header = ("IDGI maps (the plain rule's relative completeness gap beside them, from the same pass); means over "
              f"the correctly classified shipped photos; distances to the uniform-grid map at {reference} steps "
              "of the same method (relative L1 of the maps; Spearman ρ of per-pixel Σ_c |A|).\n\n")
    table = os.path.join(out, "grid.md")
    _atomic.write_atomically(table, lambda handle: handle.write(header + "\n".join(lines) + "\n"))
    return [_atomic.save_figure_atomically(figure, os.path.join(out, "grid.png")), table]


SUMMARY_CELLS = (("uniform", 32), ("adaptive", 32), ("uniform", 64), ("adaptive", 64), ("uniform", 200))
SUMMARY_ROWS = (("rel_l1_idgi", "relative L1 to uniform 200", "{:.2f}"), ("spearman_idgi", "Spearman ρ", "{:.2f}"),
                ("insertion_idgi", "Insertion", "{:.3f}"), ("roc_auc_idgi", "localization ROC AUC", "{:.3f}"),
                ("time", "time per photo, × uniform 200", "{:.2f}"))


def summary_markdown(rows: list[dict]) -> str:
    """The docs' table: per method and quantity, each summary cell's values on the networks (``a / b / c``)."""
    names = list(dict.fromkeys(row["model"] for row in rows))
    cell = {(r["model"], r["method"], r["grid"], r["steps"]): r for r in rows}
    lines = [" / ".join(name.replace("EfficientNet", "") for name in names) + " | "
             + " | ".join(f"{grid} {steps}" for grid, steps in SUMMARY_CELLS),
             "|".join(["---"] * (len(SUMMARY_CELLS) + 1))]
    for method in dict.fromkeys(row["method"] for row in rows):
        for key, label, form in SUMMARY_ROWS:
            values = []
            for grid, steps in SUMMARY_CELLS:
                found = [cell[(name, method, grid, steps)] for name in names]
                base = [cell[(name, method, "uniform", 200)] for name in names]
                values.append(" / ".join(form.format(r["seconds_per_image"] / b["seconds_per_image"] if key == "time"
                                                     else r[key]) for r, b in zip(found, base)))
            lines.append(f"{TITLES[method]}+IDGI, {label} | " + " | ".join(values))
    return "\n".join(f"| {line} |" for line in lines)


def settings(row: dict) -> tuple:
    """The settings a row was computed with, besides its cell (the rows of issue 20's run, before rows recorded
    them: the uniform grid at the default batch size, no reference)."""
    return row.get("grid", "uniform"), row.get("batch_size", 32), row.get("reference")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=comma_list(models.MODELS),
                        default="EfficientNetLite0,EfficientNetLite1,EfficientNetLite2")
    parser.add_argument("--steps", type=positive_ints, default="16,32,64,128,200,400")
    parser.add_argument("--methods", type=comma_list(TITLES), default="ig,gig,blurig")
    parser.add_argument("--grids", type=comma_list(GRIDS), default="uniform",
                        help="comma list of attribute(grid=...) values")
    parser.add_argument("--reference", type=int, default=0,
                        help="compare every map with the uniform map at this many steps (one of --steps; 0: no)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default=os.path.join(HERE, "steps_study"))
    args = parser.parse_args(argv)
    step_counts, grids = list(args.steps), args.grids
    if "adaptive" in grids and not set(args.methods) <= set(ADAPTIVE_METHODS):
        parser.error(f"--grids adaptive takes the methods {', '.join(ADAPTIVE_METHODS)} only, got --methods "
                     f"{','.join(args.methods)}")
    if args.reference and (args.reference not in step_counts or "uniform" not in grids):
        parser.error(f"--reference {args.reference}: the uniform grid at that many steps must be in the run "
                     f"(--steps {','.join(map(str, step_counts))}, --grids {','.join(grids)})")
    wanted = dict(batch_size=args.batch_size, reference=args.reference or None)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "rows.jsonl")
    done = {}
    for row in read_rows(path):
        done[(row["model"], row["method"], row.get("grid", "uniform"), row["steps"])] = settings(row)
    cells = [(grid, steps) for grid in grids for steps in step_counts]
    for key, found in done.items():  # before any work: a resumed run never mixes settings
        if key[0] in args.models and key[1] in args.methods and key[2:] in cells \
                and found != (key[2], *wanted.values()):
            raise SystemExit(f"{path} holds {key} computed with grid, batch size, reference = {found}; this run "
                             f"asks for {(key[2], *wanted.values())}: use another --out")
    reference = ("uniform", args.reference) if args.reference else None
    for name in args.models:
        missing = {method: [cell for cell in cells if (name, method, *cell) not in done] for method in args.methods}
        if not any(missing.values()):
            continue
        model = models.load(name)
        images, labels, masks = correctly_classified(model, int(model.input_shape[1]))
        for method, todo in missing.items():
            if reference and todo:  # the reference first (again on a resumed run): the others are compared with it
                todo = [reference] + [cell for cell in todo if cell != reference]
            references = None
            for grid, steps in todo:
                row, maps = measure(model, images, labels, masks, method, steps, args.batch_size, grid, references,
                                    warm=bool(args.reference))
                if (grid, steps) == reference:
                    references = maps
                    row.update({f"{k}_{rule}": v for rule in RULES
                                for k, v in distances(maps[rule], maps[rule]).items()})
                    if (name, method, grid, steps) in done:
                        continue
                row = {"model": name, "method": method, "grid": grid, "steps": steps, "images": len(images),
                       **wanted, **row}
                append_row(path, row)
                print(json.dumps(row), flush=True)
    rows = [row for row in read_rows(path) if settings(row)[1:] == tuple(wanted.values())]
    report = write_grid_report if args.reference else write_report
    for written in report(rows if args.reference else [row for row in rows if settings(row)[0] == "uniform"],
                          args.out):
        print(written)


if __name__ == "__main__":
    main()
