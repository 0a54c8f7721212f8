"""The FORGrad ranking the README and docs/spectral.md state, against the recorded runs.

The tables are generated from the runs' files (benchmarks/ranking/<model>/ranking.csv and scores.csv, written by
``python -m idgi_tf.spectral rank``) by benchmarks/ranking_summary.py and must appear as written, so a stated
rank that drifts from its run fails.
"""

import csv
import importlib.util
import os

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)


@pytest.fixture(scope="module")
def summary():
    spec = importlib.util.spec_from_file_location("ranking_summary",
                                                  os.path.join(ROOT, "benchmarks", "ranking_summary.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def text(*parts) -> str:
    with open(os.path.join(ROOT, *parts)) as handle:
        return handle.read()


def test_every_lite_network_was_ranked_on_the_eleven_photos(summary):
    found = summary.tables()
    assert list(found) == list(summary.MODELS)
    for model, rows in found.items():
        assert len(rows) == 15 + 13  # every method, and every white-box one filtered
        for column in [key for key in rows[0] if key.endswith(("_rank_before", "_rank_after"))]:
            ranks = sorted(int(row[column]) for row in rows if row[column])
            assert ranks == list(range(1, 16)), (model, column)
        assert all(int(row[key]) == 11 for row in rows for key in row if key.endswith("_images")), model


def test_the_readme_and_the_docs_state_the_recorded_ranking(summary):
    found = summary.tables()
    table = summary.summary_markdown(found)
    assert table in text("README.md")
    assert table in text("docs", "spectral.md")
    assert summary.paired_markdown(found) in text("docs", "spectral.md")


def test_the_per_photo_scores_average_to_the_ranked_means(summary):
    for model, rows in summary.tables().items():
        per_photo = summary.photo_scores(model)
        for row in rows:
            for name in [key[: -len("_mean")] for key in row if key.endswith("_mean")]:
                values = per_photo[(row["method"], row["filtered"] == "True", name)]
                assert np.mean(values) == pytest.approx(float(row[f"{name}_mean"]), rel=1e-9), (model, row["method"])
    with open(os.path.join(ROOT, "benchmarks", "ranking", "efficientnetlite0", "ranking.csv"), newline="") as handle:
        assert next(csv.DictReader(handle))["model"] == "EfficientNetLite0"
