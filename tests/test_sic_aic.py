"""SIC/AIC: binning by hand, PAIR pic.py equality, real signal on a trained model, information levels."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import photos

import idgi_tf
from idgi_tf import metrics
from idgi_tf.metrics import information
from idgi_tf.metrics._canvas import canvases, pixel_ranks
from idgi_tf.metrics.sic_aic import binned_curve


def test_binned_curve_by_hand():
    x = np.array([0.05, 0.07, 0.5, 0.95])
    y = np.array([0.0, 1.0, 0.5, 1.0])
    # bins of width .1: bin 0 holds 0 and 1, bin 5 holds .5, bin 9 holds 1; bins 1-4
    # interpolate .5 -> .5, bins 6-8 interpolate .5 -> 1 between centres .55 and .95.
    expected = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.625, 0.75, 0.875, 1.0]
    np.testing.assert_allclose(binned_curve(x, y, 10, np.median), expected)
    np.testing.assert_allclose(binned_curve(x, y, 10, np.mean), expected)
    assert binned_curve(x, y, 10, np.median).mean() == pytest.approx(0.625)
    median_differs = binned_curve([0.01, 0.02, 0.03], [0.0, 0.0, 1.0], 1, np.median)
    np.testing.assert_allclose(median_differs, [0.0])
    assert np.isnan(binned_curve(np.array([np.nan]), np.array([1.0]), 4, np.mean)).all()


def test_pair_mode_equals_pair_compute_pic_metric(trained_model, monkeypatch):
    pic = pytest.importorskip("saliency.metrics.pic")
    if not hasattr(np, "trapz"):  # PAIR calls np.trapz, removed in NumPy 2.4
        monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)
    net, x, y = trained_model
    maps = idgi_tf.attribute(net, x, y, "ig", rule="idgi", steps=32)
    fractions = np.linspace(0, 1, 25)[1:-1]
    ours = metrics.sic_aic(net, x, y, maps, mode="pair", thresholds=fractions, seed=3)
    masks = metrics.pic_pair.draw_random_masks(len(x), *x.shape[1:3], seed=3)
    saliency_maps = metrics.reduce_channels(maps)
    pixels = np.round(x).astype(np.uint8)
    kept = {"sic": [], "aic": []}
    for i, target in enumerate(y):
        def probability(batch, t=int(target)):
            return net(batch.astype(np.float32)).numpy()[:, t]

        def accuracy(batch, t=int(target)):
            return (np.argmax(net(batch.astype(np.float32)).numpy(), axis=1) == t).astype(np.float64)

        for key, pred_func in (("sic", probability), ("aic", accuracy)):
            try:
                theirs = pic.compute_pic_metric(pixels[i], saliency_maps[i], masks[i], pred_func, fractions)
            except pic.ComputePicMetricError:
                assert np.isnan(ours.scores[key][i]), (key, i)
                continue
            kept[key].append(theirs)
            np.testing.assert_allclose(ours.curves[key][i], theirs.curve_y, atol=1e-6)
            assert ours.scores[key][i] == pytest.approx(theirs.auc, abs=1e-6)
    assert kept["sic"] and len(kept["aic"]) < len(x), "the case should keep some images and skip some"
    for key, method in (("sic", "median"), ("aic", "mean")):
        assert ours.counts[f"skipped_{key}"] == len(x) - len(kept[key])
        aggregated = pic.aggregate_individual_pic_results(kept[key], method=method)
        assert ours.aggregate[key] == pytest.approx(aggregated.auc, abs=1e-6)


@pytest.mark.parametrize("base", [{}, {"base_images": 0.0}])
def test_attributions_of_a_trained_model_beat_their_inverse(trained_model, base):
    # The bright square decides the class: revealing it first must give higher curves.
    net, x, y = trained_model
    maps = idgi_tf.attribute(net, x, y, "ig", rule="idgi", steps=32)
    good = metrics.sic_aic(net, x, y, maps, **base)
    bad = metrics.sic_aic(net, x, y, -maps, **base)
    assert good.counts["skipped"] == bad.counts["skipped"] == 0
    for key in ("sic", "aic"):
        assert good.aggregate[key] > bad.aggregate[key] + 0.3, (key, good.summary(), bad.summary())
        assert np.all(good.scores[key] >= bad.scores[key])
    # The curve ends at the original: x = 1, SIC = 1, AIC = 1 (the model is right on these).
    for key in ("points_information", "points_sic", "points_aic"):
        np.testing.assert_allclose(good.curves[key][:, -1], 1.0)
    assert good.curves["sic"].shape == (len(x), 100) and good.x.shape == (100,)
    # The areas re-derived from the points in NumPy: 100 bins of [0, 1] by digitize, median (SIC) or mean
    # (AIC) of each bin, empty bins linear between their occupied neighbours, the area the mean over bins.
    for key, reduce in (("sic", np.median), ("aic", np.mean)):
        assert good.aggregate[key] == pytest.approx(rederived_area(good.curves["points_information"],
                                                                   good.curves[f"points_{key}"], reduce), abs=1e-9)


def rederived_area(x, y, reduce, bins=100):
    x, y = np.ravel(x), np.ravel(y)
    x, y = x[np.isfinite(x) & np.isfinite(y)], y[np.isfinite(x) & np.isfinite(y)]
    which = np.clip(np.digitize(x, np.linspace(0, 1, bins + 1)[1:-1]), 0, bins - 1)
    curve = np.full(bins, np.nan)
    for b in range(bins):
        if (which == b).any():
            curve[b] = reduce(y[which == b])
    occupied = np.flatnonzero(np.isfinite(curve))
    for b in range(bins):
        if np.isnan(curve[b]):
            left, right = occupied[occupied < b], occupied[occupied > b]
            if not left.size or not right.size:
                curve[b] = curve[left[-1] if left.size else right[0]]
            else:
                lo, hi = left[-1], right[0]
                curve[b] = curve[lo] + (curve[hi] - curve[lo]) * (b - lo) / (hi - lo)
    return curve.mean()


def test_each_skip_reason_is_provoked_and_counted():
    """A model 90 % sure of class 0 whatever it sees: a textured image's blurred base is as confident
    (base not less confident), a flat image's base is as informative as the image (base not less
    informative, checked first), and class 1 (10 %) is below the 0.8 confidence floor."""
    def sure_of_class_0(x):
        return tf.tile(tf.constant([[0.9, 0.1]]), [tf.shape(x)[0], 1])

    textured = photos(64)[:2]
    flat = np.full((1, 64, 64, 3), 120.0, np.float32)
    images = np.concatenate([textured, flat])
    maps = np.random.default_rng(0).normal(size=images.shape[:3])
    for measure in ("entropy", "msssim"):
        size = 64 if measure == "entropy" else 176
        pixels = images if size == 64 else np.stack([tf.image.resize(i, (size, size)).numpy() for i in images])
        shaped = maps if size == 64 else np.random.default_rng(0).normal(size=pixels.shape[:3])
        result = metrics.sic_aic(sure_of_class_0, pixels, [0, 0, 0], shaped, information=measure)
        assert (result.counts["skipped_base_not_less_confident"], result.counts["skipped_base_not_less_informative"],
                result.counts["skipped_low_confidence"]) == (2, 1, 0), (measure, result.counts)
        assert np.isnan(result.scores["sic"]).all()
    low = metrics.sic_aic(sure_of_class_0, images, [1, 1, 1], maps)
    assert low.counts["skipped_low_confidence"] == low.counts["skipped"] == 3


def test_paper_mode_does_not_depend_on_batching(trained_model):
    net, x, y = trained_model
    maps = idgi_tf.attribute(net, x, y, "vg")
    one = metrics.sic_aic(net, x, y, maps, batch_size=1, workers=1)
    many = metrics.sic_aic(net, x, y, maps, batch_size=64)
    for key in ("points_information", "points_sic", "points_aic"):
        np.testing.assert_allclose(one.curves[key], many.curves[key], atol=1e-6)


def test_low_confidence_images_are_skipped_and_counted(model, images, targets):
    maps = idgi_tf.attribute(model, images, targets, "vg")
    result = metrics.sic_aic(model, images, targets, maps)  # a random net: f < 0.8 everywhere
    assert result.counts["skipped"] == result.counts["skipped_low_confidence"] == 3
    assert np.isnan(result.scores["sic"]).all() and np.isnan(result.aggregate["aic"])
    assert "skipped_low_confidence=3" in result.summary()
    assert result.to_dict()["aggregate"]["sic"] is None


def test_information_levels_on_natural_photos():
    pixels = information.pixels_uint8(photos(224)).astype(np.float32)
    np.testing.assert_allclose(information.ms_ssim(tf.constant(pixels), tf.constant(pixels)), 1.0, rtol=1e-6)
    base = information.gaussian_blurred(pixels.astype(np.uint8), 20).astype(np.float32)
    rows, cols = np.mgrid[:224, :224]
    bump = np.exp(-((rows - 100) ** 2 + (cols - 120) ** 2) / 3000.0)[None].repeat(3, 0)
    counts = np.round(np.linspace(0, 1, 13) * 224 * 224).astype(np.int32)
    bokeh = canvases(tf.constant(pixels), tf.constant(base), tf.constant(pixel_ranks(bump)), tf.constant(counts))
    sizes = np.array([information.webp_size(image) for image in tf.cast(bokeh, tf.uint8).numpy()])
    similarity = information.ms_ssim(bokeh, tf.tile(pixels, [len(counts), 1, 1, 1])).numpy()
    for level in (sizes, similarity):
        per_image = level.reshape(len(counts), 3).T
        assert np.all(np.diff(per_image, axis=1) > 0), per_image
    assert np.all(similarity.reshape(len(counts), 3)[-1] == pytest.approx(1.0))


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"maps": np.zeros((3, 5, 5))}, ValueError, "maps must match the images"),
        ({"maps": np.full((3, 32, 32), np.nan)}, ValueError, "maps contain NaN"),
        ({"thresholds": 1}, ValueError, "thresholds must be at least 2"),
        ({"thresholds": [0.5, 0.2]}, ValueError, "increasing sequence"),
        ({"mode": "xrai"}, ValueError, "mode must be one of"),
        ({"information": "psnr"}, ValueError, "information must be one of"),
        ({"information": "msssim"}, ValueError, "at least 161x161"),
        ({"mode": "pair", "information": "msssim"}, ValueError, "entropy only"),
        ({"min_pred": 1.5}, ValueError, "min_pred must lie in"),
        ({"bins": 0}, ValueError, "bins must be a positive integer"),
        ({"random_masks": np.ones((3, 32, 32), bool)}, ValueError, "random_masks applies to mode='pair'"),
        ({"scale": 2.0}, ValueError, "8-bit pixel values"),
        ({"seed": 1.5, "mode": "pair"}, TypeError, "seed must be an integer"),
    ],
)
def test_bad_sic_aic_input_is_named(model, images, targets, kwargs, error, pattern):
    kwargs = dict(kwargs)
    x = images * kwargs.pop("scale", 1.0)
    maps = kwargs.pop("maps", np.ones(x.shape[:3]))
    with pytest.raises(error, match=pattern):
        metrics.sic_aic(model, x, targets, maps, **kwargs)


def test_empty_batch_is_an_error(model, images, targets):
    with pytest.raises(ValueError, match="images must not be empty"):
        metrics.sic_aic(model, images[:0], targets[:0], images[:0])


@pytest.mark.parametrize("information", ["entropy", "msssim"])
def test_grayscale_images_score_like_their_rgb_copies(information):
    """One channel is blurred and compressed as PIL's "L" image: the same levels as the gray RGB copy."""
    gray = photos(168).mean(axis=-1, keepdims=True).round()
    weights = np.random.default_rng(0).normal(size=(2,)).astype(np.float32)

    def scores(x):  # class scores from the channel mean, so both copies look the same to the model
        mean = tf.reduce_mean(x, axis=[1, 2, 3]) / 255.0
        return tf.nn.softmax(tf.stack([mean * weights[0] * 8, mean * weights[1] * 8 + 1.0], axis=1))

    rows, cols = np.mgrid[:168, :168]
    maps = np.exp(-((rows - 80) ** 2 + (cols - 90) ** 2) / 2000.0)[None].repeat(3, 0)
    targets = [1, 1, 1]
    one = metrics.sic_aic(scores, gray, targets, maps, information=information, min_pred=0.0, thresholds=9)
    three = metrics.sic_aic(scores, np.repeat(gray, 3, axis=-1), targets, maps, information=information,
                            min_pred=0.0, thresholds=9)
    np.testing.assert_allclose(one.curves["points_information"], three.curves["points_information"], rtol=1e-6,
                               equal_nan=True)
    np.testing.assert_allclose(one.curves["points_sic"], three.curves["points_sic"], rtol=1e-5, equal_nan=True)
    assert np.isfinite(one.curves["points_information"]).any()
    with pytest.raises(ValueError, match="1 \\(grayscale\\) or 3 \\(RGB\\) channels"):
        metrics.sic_aic(scores, np.repeat(gray, 2, axis=-1), targets, maps)
