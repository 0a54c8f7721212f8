"""The metric table (idgi_tf.metrics.METRICS): every row runs, and the bench, report and callback read it."""

from __future__ import annotations

import dataclasses
import json
import math
from types import MappingProxyType

import keras
import numpy as np
import pytest

import idgi_tf
from idgi_tf import metrics, viz
from idgi_tf._cli import CommandError
from idgi_tf.bench import main
from idgi_tf.bench.cli import parser
from idgi_tf.callbacks import AttributionCallback
from idgi_tf.metrics import METRICS, Metric, MetricResult
from idgi_tf.metrics.table import PAPER_METRICS, Curve, Score

SMOKE = ["run", "--model", "MobileNetV2", "--weights", "none", "--input-size", "32", "--steps", "2", "--limit", "2",
         "--chunk", "2", "--methods", "vg", "--quiet"]


def tiny_model(side: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((side, side, 3)), keras.layers.Rescaling(1 / 255.0),
                             keras.layers.Conv2D(4, 5, strides=4, activation="relu"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3), keras.layers.Softmax()])


def edge_model(images: np.ndarray) -> keras.Model:
    """Class 0's logit grows with the edges (mean |Laplacian|): sure of the images, unsure of their blur (SIC/AIC)."""
    laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)[:, :, None, None] / 3.0
    net = keras.Sequential([keras.Input(images.shape[1:]), keras.layers.Conv2D(2, 3, use_bias=False),
                            keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3),
                            keras.layers.Softmax()])
    net.layers[0].set_weights([np.concatenate([laplacian, -laplacian], axis=3).repeat(3, axis=2)])
    edges = net.layers[2](net.layers[1](net.layers[0](images))).numpy().sum(axis=1).min()
    net.layers[3].set_weights([np.array([[8.0 / edges, 0, 0]] * 2, np.float32), np.zeros(3, np.float32)])
    return net


def pictures(side: int) -> np.ndarray:
    """Two 8-bit images of noise with a bright square: their blur compresses better (SIC/AIC keep them)."""
    images = np.random.default_rng(0).integers(0, 200, (2, side, side, 3)).astype(np.float32)
    images[0, side // 4: side // 2, side // 4: side // 2] = 255.0
    images[1, side // 2:, side // 2:] = 255.0
    return images


@pytest.mark.parametrize("name", list(METRICS))
def test_every_row_computes_its_declared_fields_and_scores(name):
    metric = METRICS[name]
    side = max(32, metric.min_side)
    images = pictures(side)
    model, targets = edge_model(images), np.array([0, 0], np.int32)
    maps = np.abs(images - images.mean()) + 1.0  # a map that ranks the pixels
    masks = np.zeros(images.shape[:3], bool)
    masks[:, : side // 2] = True
    result = metric.compute(model, images, targets, maps, masks=masks, batch_size=64, jit_compile=False)
    assert isinstance(result, MetricResult)
    assert all(score.key in result.scores and result.scores[score.key].shape == (2,) for score in metric.scores)
    rows = [metric.row_fields(result, i) for i in range(2)]
    assert all(set(row) == set(metric.fields) for row in rows)
    json.dumps(rows)  # a bench row is JSON
    for score in metric.scores:  # the report's cell of each headline score
        value, count = score.aggregate([row[score.field] for row in rows if row[score.field] is not None])
        assert isinstance(value, float) and 0 <= count <= 2
    for curve in metric.curves:  # the report's figure of each curve
        x, y = curve.combine([row[curve.field] for row in rows if row[curve.field] is not None])
        assert len(x) == len(y) and callable(getattr(viz, curve.plot))
        getattr(viz, curve.plot)([x], {"IG": y}, xlabel=curve.xlabel, ylabel=curve.ylabel, **curve.options)


def test_the_table_is_read_only_and_its_titles_are_the_papers():
    assert isinstance(METRICS, MappingProxyType) and metrics.METRICS is METRICS
    with pytest.raises(dataclasses.FrozenInstanceError):
        METRICS["insertion"].title = "x"
    titles = [score.title for metric in METRICS.values() for score in metric.scores]
    assert "AUC SIC, MS-SSIM" in titles and not any("msssim" in title for title in titles)
    directions = {s.name: s.higher_is_better for m in METRICS.values() for s in m.scores}
    assert directions["mae"] is False and directions["deletion_probability"] is False and directions["roc_auc"]
    assert PAPER_METRICS == ("insertion", "sic_aic", "msssim", "localization")


def test_the_bench_metrics_choices_are_the_table():
    run = next(action for action in parser()._subparsers._group_actions[0].choices["run"]._actions
               if action.dest == "metrics")
    assert run.type(",".join(METRICS)) == tuple(METRICS)
    assert parser().parse_args(["run"]).metrics == PAPER_METRICS
    with pytest.raises(CommandError, match="takes a comma-separated subset of " + ",".join(METRICS)):
        parser().parse_args(["run", "--metrics", "nope"])


def spread(model, images, targets, maps, *, batch_size=None, jit_compile=False) -> MetricResult:
    """A made-up metric: each map's largest |value| and its sorted-share curve."""
    flat = np.abs(np.asarray(maps, np.float64)).reshape(len(maps), -1)
    shares = np.sort(flat, axis=1)[:, ::-1].cumsum(axis=1) / flat.sum(axis=1, keepdims=True)
    return MetricResult(name="spread", scores={"top": flat.max(axis=1)}, curves={"share": shares[:, ::64]})


SPREAD = Metric(function=spread, title="Spread",
                scores=(Score(name="spread_top", title="Largest attribution", key="top", field="spread_top",
                              higher_is_better=False),),
                curves=(Curve(name="spread", title="Spread", xlabel="pixels", ylabel="share", field="spread_curve",
                              key="share"),))


@pytest.fixture
def with_spread(monkeypatch):
    """A metric added to the table and nowhere else."""
    monkeypatch.setattr(metrics, "METRICS", MappingProxyType({**METRICS, "spread": SPREAD}))


def test_a_metric_added_to_the_table_is_run_tabled_and_plotted_by_the_bench(with_spread, tmp_path):
    assert main(SMOKE + ["--metrics", "localization,spread", "--out", str(tmp_path)]) == 0
    row = json.loads((tmp_path / "results.jsonl").read_text().splitlines()[0])
    assert {"spread_top", "spread_curve", "roc_auc"} <= set(row)
    table = (tmp_path / "tables.md").read_text()
    assert "## Largest attribution (lower is better)" in table and "Table 4" in table
    assert "spread.png" in {path.name for path in (tmp_path / "figures").iterdir()}


def test_a_metric_added_to_the_table_is_logged_by_the_callback(with_spread):
    model = tiny_model(32)
    callback = AttributionCallback(pictures(32), targets=[0, 1], metrics=("spread", "deletion"), steps=2,
                                   rules=("plain",), jit_compile=False)
    callback.set_model(model)
    scalars = callback.log_epoch(1)["scalars"]
    maps = idgi_tf.attribute(model, pictures(32), np.array([0, 1], np.int32), "ig", steps=2, jit_compile=False)
    assert math.isclose(scalars["spread/ig_plain"], float(np.abs(maps).reshape(2, -1).max(axis=1).mean()),
                        rel_tol=1e-5)
    assert "deletion/ig_plain" in scalars


@pytest.mark.parametrize("name, kwargs, message", [
    ("localization", {}, "metric 'localization' needs masks"),
    ("msssim", {"masks": None}, "metric 'msssim' needs images of at least 161 px, got 32"),
    ("sic_aic", {"images": pictures(32) / 255.0}, "images are float pixels with maximum 1"),
])
def test_the_callback_checks_what_a_row_needs_before_training(name, kwargs, message):
    images = kwargs.pop("images", pictures(32))
    with pytest.raises(ValueError, match=message):
        AttributionCallback(images, metrics=(name,), **kwargs)
