"""The layout's promises: one place per helper (the bench classifies with the data package's), no old formats."""

import json

import keras
import numpy as np
import pytest

from idgi_tf import data
from idgi_tf._cli import CommandError
from idgi_tf.bench import main
from idgi_tf.bench.results import merged_rows

OLD_ROW = {"model": "MobileNetV2", "image": "ILSVRC2012_val_00000001", "method": "ig", "rule": "plain",
           "metric": "localization", "value": 0.5}  # written before rows carried their settings


def test_a_row_without_settings_is_refused_by_report_naming_the_way_out(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps(OLD_ROW) + "\n")
    with pytest.raises(CommandError, match=r"results.jsonl holds a row without its settings .*--overwrite"):
        merged_rows([str(tmp_path)])


def test_a_row_without_settings_is_refused_on_resume_before_the_model_loads(tmp_path, capsys):
    (tmp_path / "results.jsonl").write_text(json.dumps(OLD_ROW) + "\n")
    args = ["run", "--model", "MobileNetV2", "--weights", "none", "--input-size", "32", "--steps", "4",
            "--limit", "1", "--methods", "ig", "--metrics", "localization", "--quiet", "--out", str(tmp_path)]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "holds a row without its settings" in error and "--overwrite" in error


def _net():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((6, 5, 3)), keras.layers.Flatten(), keras.layers.Dense(4)])


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_correct_predictions_are_the_top1_matches_in_any_batching(batch_size):
    net = _net()
    images = np.random.default_rng(0).uniform(0, 255, (7, 6, 5, 3)).astype(np.float32)
    top = np.argmax(net.predict(images, verbose=0), axis=1)
    labels = np.where(np.arange(7) % 2 == 0, top, (top + 1) % 4)
    right = data.correct_predictions(net, images, labels, batch_size=batch_size)
    np.testing.assert_array_equal(right, np.arange(7) % 2 == 0)


def test_correct_predictions_refuses_a_label_count_that_is_not_the_image_count():
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        data.correct_predictions(_net(), np.zeros((3, 6, 5, 3), np.float32), [0, 1])

