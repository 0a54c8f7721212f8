"""The FORGrad ranking of the three Lite networks in one table (README, docs/spectral.md).

    python benchmarks/ranking_summary.py        # reads benchmarks/ranking/*/ranking.csv

Each cell: the first method before → after FORGrad, (in brackets) how many of the top three are
white-box methods before → after, and how many of the 13 white-box methods score better after FORGrad
than before. A second table says how far 11 photos carry the "after" ranking: per score and model,
the best white-box method after FORGrad against the best black-box one, photo by photo. The runs:
``python -m idgi_tf.spectral rank --model EfficientNetLite0|1|2 --out benchmarks/ranking/efficientnetlite0|1|2``.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from idgi_tf.spectral.rank import RANK_METRICS, higher_is_better, score_name, summary_markdown

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ranking")
MODELS = ("EfficientNetLite0", "EfficientNetLite1", "EfficientNetLite2")
HIGHER_IS_BETTER = {score_name(metric, key): higher_is_better(metric, key)
                    for metric, row in RANK_METRICS.items() for key in row.scores}


def tables() -> dict:
    """``{model: its ranking.csv rows}`` for the recorded runs that exist."""
    found = {}
    for model in MODELS:
        path = os.path.join(ROOT, model.lower(), "ranking.csv")
        if os.path.exists(path):
            with open(path, newline="") as handle:
                found[model] = list(csv.DictReader(handle))
    return found


def photo_scores(model: str) -> dict:
    """``{(method, filtered, score): per-photo values}`` from the run's scores.csv."""
    values = {}
    with open(os.path.join(ROOT, model.lower(), "scores.csv"), newline="") as handle:
        for row in csv.DictReader(handle):
            values.setdefault((row["method"], row["filtered"] == "True", row["score"]), []).append(float(row["value"]))
    return {key: np.array(value) for key, value in values.items()}


def paired_markdown(found: dict) -> str:
    """Per score and model: the best white-box method after FORGrad (by rank) against the best black-box one,
    the mean of their per-photo difference oriented so that positive means the white-box one is better, ± its
    standard error, and on how many photos the white-box one is better."""
    models = list(found)
    scores = [key[: -len("_rank_after")] for key in found[models[0]][0] if key.endswith("_rank_after")]
    lines = ["| score | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for score in scores:
        cells = []
        for model in models:
            after = [row for row in found[model] if row[f"{score}_rank_after"]]
            best = {white: min((row for row in after if (row["white_box"] == "True") == white),
                               key=lambda row: int(row[f"{score}_rank_after"])) for white in (True, False)}
            per_photo = photo_scores(model)
            white, black = (per_photo[(best[w]["method"], w, score)] for w in (True, False))
            better = white - black if HIGHER_IS_BETTER[score] else black - white
            cells.append(f"{best[True]['title']} vs {best[False]['title']}: {better.mean():+.3f} ± "
                         f"{better.std(ddof=1) / np.sqrt(len(better)):.3f}, {int((better > 0).sum())} of {len(better)}")
        lines.append(f"| {score} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    found = tables()
    print(summary_markdown(found))
    print(paired_markdown(found), end="")
