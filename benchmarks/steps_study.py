"""How the paper's metrics depend on the number of Riemann steps, on trained networks (issue 20).

For EfficientNet-Lite0/1/2 (trained ImageNet weights, offline) on the 11 shipped photos that each
network classifies correctly: IG, Guided IG and Blur IG, plain and +IDGI (one pass serves both), at
16, 32, 64, 128, 200 and 400 steps. Per (model, method, steps) it records the mean Insertion score
(probability AUC), the mean localization ROC AUC against the official boxes, and the mean relative
completeness gap of each rule (``attribute(..., return_gap=True)``). Rows are appended to
``OUT/rows.jsonl`` and skipped when already there, so an interrupted run resumes; ``OUT/steps.png``
(metric vs steps, one line per method and rule, one row of panels per model) and ``OUT/steps.md``
(the table) are written from all rows at the end.

Usage::

    python benchmarks/steps_study.py [--models EfficientNetLite0,EfficientNetLite1,EfficientNetLite2]
        [--steps 16,32,64,128,200,400] [--methods ig,gig,blurig] [--out benchmarks/steps_study]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

import idgi_tf
from idgi_tf import data, metrics, models, viz

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


def correctly_classified(model, size: int):
    samples = data.sample_images(size)
    predicted = np.argmax(model.predict(samples.images, verbose=0), axis=1)
    keep = predicted == samples.labels
    return samples.images[keep], samples.labels[keep], samples.masks[keep]


def measure(model, images, labels, masks, method: str, steps: int, batch_size: int) -> dict:
    start = time.perf_counter()
    maps, gaps = idgi_tf.attribute(model, images, labels, method, rule=RULES, steps=steps, return_gap=True,
                                   batch_size=batch_size)
    seconds = time.perf_counter() - start
    row = {"attribute_seconds": seconds}
    for rule in RULES:
        row[f"insertion_{rule}"] = metrics.insertion(model, images, labels, maps[rule],
                                                     batch_size=batch_size).means()["probability"]
        row[f"roc_auc_{rule}"] = metrics.localization(maps[rule], masks).means()["roc_auc"]
        row[f"gap_{rule}"] = float(np.mean(gaps[rule].relative))
    return row


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
            viz.plot_curves(xs if len(xs) > 1 else xs[0], series, xlabel="steps", ylabel=label, logx=True, logy=logy,
                            title=f"{name} ({mine[0]['images']} images)", ax=ax)
            grid = sorted({row["steps"] for row in mine})
            ax.set_xticks(grid, [str(s) for s in grid])
            ax.xaxis.set_minor_formatter(NullFormatter())
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="EfficientNetLite0,EfficientNetLite1,EfficientNetLite2")
    parser.add_argument("--steps", default="16,32,64,128,200,400")
    parser.add_argument("--methods", default="ig,gig,blurig")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default=os.path.join(HERE, "steps_study"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "rows.jsonl")
    done = {(row["model"], row["method"], row["steps"]) for row in read_rows(path)}
    for name in args.models.split(","):
        model = models.load(name)
        images, labels, masks = correctly_classified(model, int(model.input_shape[1]))
        for method in args.methods.split(","):
            for steps in (int(s) for s in args.steps.split(",")):
                if (name, method, steps) in done:
                    continue
                row = {"model": name, "method": method, "steps": steps, "images": len(images),
                       **measure(model, images, labels, masks, method, steps, args.batch_size)}
                with open(path, "a") as handle:
                    handle.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    for written in write_report(read_rows(path), args.out):
        print(written)


if __name__ == "__main__":
    main()
