"""How far two bench runs of the same settings agree, cell by cell.

    python benchmarks/compare_runs.py RUN_A RUN_B [--model EfficientNetLite0]

Each RUN is a bench output folder (or its ``tables.csv``). For every table cell
present in both (metric x model x column), prints ``a``, ``b`` and ``|a - b|``,
then the largest difference per metric and per column family (GIG, the other
paths, VG). This is how the README's reproducibility spreads were measured:
two runs that differ only in the machine, the thread count or the libraries
(``run.json`` records the versions).
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path


def read_cells(run: Path, model: str | None) -> dict[tuple[str, str, str], float]:
    """``{(metric, model, column): ours}`` from a run folder's (or a file's) tables.csv."""
    path = run / "tables.csv" if run.is_dir() else run
    if not path.is_file():
        raise SystemExit(f"compare_runs: no tables.csv in {run} (run `python -m idgi_tf.bench report {run}` first)")
    cells = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if model and row["model"] != model:
                continue
            value = float(row["ours"])
            if not math.isnan(value):
                cells[(row["metric"], row["model"], row["column"])] = value
    return cells


def family(column: str) -> str:
    """GIG's cells move with float rounding (its feature selection); the others should not."""
    return "GIG" if column.startswith("GIG") else "VG" if column == "VG" else "IG/BlurIG"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--model", default=None, help="compare this model's cells only")
    args = parser.parse_args(argv)
    a, b = read_cells(args.run_a, args.model), read_cells(args.run_b, args.model)
    common = sorted(a.keys() & b.keys())
    if not common:
        raise SystemExit("compare_runs: the two runs share no table cell (other models or metrics?)")
    print("| metric | model | column | A | B | abs. difference |\n|---|---|---|---|---|---|")
    largest: dict[tuple[str, str], float] = {}
    for key in common:
        metric, model, column = key
        difference = abs(a[key] - b[key])
        print(f"| {metric} | {model} | {column} | {a[key]:.4f} | {b[key]:.4f} | {difference:.4f} |")
        group = (metric, family(column))
        largest[group] = max(largest.get(group, 0.0), difference)
    print("\n| metric | columns | largest abs. difference |\n|---|---|---|")
    for (metric, columns), difference in sorted(largest.items()):
        print(f"| {metric} | {columns} | {difference:.4f} |")


if __name__ == "__main__":
    main()
