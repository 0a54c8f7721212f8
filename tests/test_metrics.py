"""Metrics on hand-made cases with known answers, and on a trained model."""

import json

import numpy as np
import pytest
import tensorflow as tf

import idgi_tf
from idgi_tf import metrics
from idgi_tf.metrics.localization import roc_auc


def region_mean_model(region: np.ndarray):
    """A "model" whose class-0 score is the mean of channel 0 over ``region`` / 255 (class 1: 1 - that)."""
    weights = tf.constant(region / region.sum(), tf.float32)

    def model(x):
        score = tf.reduce_sum(x[..., 0] * weights, axis=[1, 2]) / 255.0
        return tf.stack([score, 1.0 - score], axis=1)

    return model


def test_insertion_curve_and_auc_by_hand():
    # 4x4 white image; the model averages the left half (8 pixels). Ranking the
    # left half first, each 25 % step reveals 4 pixels: the curve is 0, .5, 1, 1, 1.
    region = np.zeros((4, 4), bool)
    region[:, :2] = True
    model = region_mean_model(region)
    images = np.full((1, 4, 4, 3), 255.0, np.float32)
    maps = np.where(region, 2.0, 1.0)[None] + np.arange(16).reshape(1, 4, 4) * 1e-3
    result = metrics.insertion(model, images, [0], maps, step=0.25)
    np.testing.assert_allclose(result.x, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(result.curves["probability"][0], [0, 0.5, 1, 1, 1], atol=1e-6)
    # trapezoid, dx = 0.25: 0.25 * (0/2 + .5 + 1 + 1 + 1/2) = 0.75
    np.testing.assert_allclose(result.scores["probability"], [0.75], atol=1e-6)
    np.testing.assert_allclose(result.scores["ratio"], [0.75], atol=1e-6)
    deleted = metrics.deletion(model, images, [0], maps, step=0.25)
    np.testing.assert_allclose(deleted.curves["probability"][0], [1, 0.5, 0, 0, 0], atol=1e-6)


def test_perfect_and_inverted_maps_flip_insertion_and_deletion():
    rng = np.random.default_rng(0)
    region = np.zeros((8, 8), bool)
    region[2:5, 3:7] = True
    model = region_mean_model(region)
    images = rng.uniform(100, 255, (3, 8, 8, 3)).astype(np.float32)
    perfect = np.where(region, 1.0, 0.0)[None].repeat(3, 0) + rng.uniform(0, 1e-3, (3, 8, 8))
    inverted = -perfect
    ins_good = metrics.insertion(model, images, [0, 0, 0], perfect, step=0.125).scores["probability"]
    ins_bad = metrics.insertion(model, images, [0, 0, 0], inverted, step=0.125).scores["probability"]
    del_good = metrics.deletion(model, images, [0, 0, 0], perfect, step=0.125).scores["probability"]
    del_bad = metrics.deletion(model, images, [0, 0, 0], inverted, step=0.125).scores["probability"]
    assert np.all(ins_good > ins_bad) and np.all(del_good < del_bad)


def test_insertion_does_not_depend_on_batching_and_takes_3d_maps(model, images, targets):
    maps = idgi_tf.attribute(model, images, targets, "ig", rule="idgi", steps=16)
    one = metrics.insertion(model, images, targets, maps, batch_size=1)
    many = metrics.insertion(model, images, targets, maps, batch_size=64)
    np.testing.assert_allclose(one.curves["probability"], many.curves["probability"], rtol=1e-5, atol=1e-7)
    assert one.curves["probability"].shape == (3, 21)
    # The last canvas is the image itself: f(original).
    np.testing.assert_allclose(one.curves["probability"][:, -1],
                               idgi_tf.explained_output(model, images, targets), rtol=1e-5)
    as_2d = metrics.insertion(model, images, targets, metrics.reduce_channels(maps, "sum"), batch_size=64)
    np.testing.assert_allclose(as_2d.scores["probability"], many.scores["probability"])


def test_result_serialises_and_summarises(model, images, targets):
    maps = idgi_tf.attribute(model, images, targets, "vg")
    result = metrics.deletion(model, images, targets, maps)
    decoded = json.loads(result.to_json())
    assert decoded["name"] == "deletion" and len(decoded["scores"]["probability"]) == 3
    assert decoded["options"]["step"] == 0.05
    assert "probability:" in result.summary() and "3/3 images" in result.summary()


def test_localization_known_answers():
    mask = np.zeros((2, 10, 10))
    mask[:, 2:6, 3:8] = 1
    perfect = metrics.localization(mask.copy(), mask)
    np.testing.assert_allclose(perfect.scores["roc_auc"], 1.0)
    np.testing.assert_allclose(perfect.scores["f1"], 1.0)
    np.testing.assert_allclose(perfect.scores["mae"], 0.0)
    constant = metrics.localization(np.ones((2, 10, 10)), mask)
    np.testing.assert_allclose(constant.scores["roc_auc"], 0.5)
    # A constant map predicts everything at t = 0: F1 = 2*20 / (100 + 20).
    np.testing.assert_allclose(constant.scores["f1"], 40 / 120)
    np.testing.assert_allclose(constant.scores["mae"], 0.2)  # predict nothing: 20 of 100 wrong
    inverted = metrics.localization(1 - mask, mask)
    np.testing.assert_allclose(inverted.scores["roc_auc"], 0.0)


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    labels = rng.uniform(size=60) < 0.4
    pos, neg = scores[labels], scores[~labels]
    pairwise = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (pos.size * neg.size)
    assert roc_auc(scores, labels) == pytest.approx(pairwise)
    assert np.isnan(roc_auc(scores, np.zeros(60, bool)))


def test_trained_model_attributions_localize_the_deciding_square(trained_model):
    net, x, y = trained_model
    masks = (x.min(axis=-1) == 255.0).astype(np.float32)  # the bright square decides the class
    maps = idgi_tf.attribute(net, x, y, "ig", rule=("plain", "idgi"), steps=32)
    for rule in ("plain", "idgi"):
        result = metrics.localization(maps[rule], masks)
        assert result.means()["roc_auc"] > 0.8, (rule, result.summary())
    inserted = metrics.insertion(net, x, y, maps["idgi"], step=0.1)
    shuffled = metrics.insertion(net, x, y, np.random.default_rng(0).permutation(maps["idgi"].ravel())
                                 .reshape(maps["idgi"].shape), step=0.1)
    assert inserted.means()["probability"] > shuffled.means()["probability"]


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda m, x, t: metrics.insertion(m, x, t, np.zeros((3, 5, 5))), ValueError, "maps must match the images"),
        (lambda m, x, t: metrics.insertion(m, x, t, np.full(x.shape, np.nan)), ValueError, "maps contain NaN"),
        (lambda m, x, t: metrics.insertion(m, x[:0], t[:0], x[:0]), ValueError, "images must not be empty"),
        (lambda m, x, t: metrics.insertion(m, x, t, x, step=0.3), ValueError, "step must divide 1"),
        (lambda m, x, t: metrics.deletion(m, x, t, x, how="max"), ValueError, "how must be one of"),
        (lambda m, x, t: metrics.localization(x, np.ones(x.shape[:3]), thresholds=1), ValueError,
         "thresholds must be at least 2"),
        (lambda m, x, t: metrics.localization(x, np.ones((3, 4, 4))), ValueError, "maps must match box_masks"),
        (lambda m, x, t: metrics.localization(x[:0], np.ones((0, 4, 4))), ValueError, "N >= 1"),
        (lambda m, x, t: metrics.localization(x, np.where(np.eye(32) > 0, np.nan, 1.0)[None].repeat(3, 0)),
         ValueError, "box_masks must hold only 0 and 1"),
        (lambda m, x, t: metrics.localization(x, np.full(x.shape[:3], 2)), ValueError, "got 2"),
        (lambda m, x, t: metrics.mufidelity(m, x, t, x, seed=0.5), TypeError, "seed must be an integer"),
    ],
)
def test_bad_metric_input_is_named(model, images, targets, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(model, images, targets)


def test_a_nan_mask_is_not_read_as_inside_the_box():
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0] = 1.0
    masks = np.zeros((1, 4, 4))
    masks[0, 0, 0] = 1.0
    assert metrics.localization(maps, masks).means()["f1"] == 1.0  # 0/1 and bool masks read the same
    assert metrics.localization(maps, masks.astype(bool)).means()["f1"] == 1.0
    masks[0, 1:] = np.nan  # was taken as "inside", giving F1 = 1 and MAE = 0
    with pytest.raises(ValueError, match="box_masks must hold only 0 and 1"):
        metrics.localization(maps, masks)


def test_numpy_scalars_in_options_serialise(model, images, targets):
    maps = idgi_tf.attribute(model, images, targets, "vg")
    result = metrics.mufidelity(model, images, targets, maps, seed=np.int64(3), samples=8)
    result.counts["extra"] = np.int64(2)
    decoded = json.loads(result.to_json())
    assert decoded["options"]["seed"] == 3 and decoded["counts"]["extra"] == 2
