"""Sensitivity-n and MuFidelity: hand-made cases and bad input."""

import keras
import numpy as np
import pytest

import idgi_tf
from idgi_tf.metrics import fidelity, mufidelity, sensitivity_n

SIZE = 10


@pytest.fixture(scope="module")
def linear():
    keras.utils.set_random_seed(4)
    return keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Flatten(), keras.layers.Dense(3)])


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(5).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)


def test_pearson_rows_by_hand():
    a = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    b = np.array([[2.0, 4.0, 6.5], [3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    r = fidelity.pearson_rows(a, b)
    assert r[0] == pytest.approx(np.corrcoef(a[0], b[0])[0, 1]) and r[0] > 0.99
    assert r[1] == pytest.approx(-1.0)
    assert np.isnan(r[2])  # a constant row: undefined, not 0 and not a warning


def test_subset_masks_have_exactly_the_asked_size():
    rng = np.random.default_rng(0)
    masks = fidelity.random_subset_masks(rng, 50, 100, 7)
    assert masks.shape == (50, 100) and set(np.unique(masks)) == {0.0, 1.0}
    assert (masks.sum(axis=1) == 7).all() and len({m.tobytes() for m in masks}) > 40
    cells = fidelity.grid_cell_masks(rng, 4, 3, 2, 9, 12)  # 3x3 cells of 3x4 pixels
    assert cells.shape == (4, 9, 12) and (cells.sum(axis=(1, 2)) == 2 * 12).all()
    np.testing.assert_array_equal(cells[:, ::3, ::4].sum(axis=(1, 2)), 2)  # whole cells


def test_on_a_linear_model_gradient_times_input_is_perfect_and_its_negation_anti(linear, x):
    gxi = idgi_tf.attribute(linear, x, [0, 2], "gxi")
    for metric, kwargs in ((sensitivity_n, {"ns": [1, 3, 50], "subsets": 30}), (mufidelity, {"grid": 5})):
        good = metric(linear, x, [0, 2], gxi, **kwargs)
        bad = metric(linear, x, [0, 2], -gxi, **kwargs)
        score = next(iter(good.scores))
        np.testing.assert_allclose(good.scores[score], 1.0, atol=1e-5)
        np.testing.assert_allclose(bad.scores[score], -1.0, atol=1e-5)


def test_sensitivity_n_curve_shape_defaults_and_a_random_map(linear, x):
    random_map = np.random.default_rng(0).normal(size=x.shape[:3])
    result = sensitivity_n(linear, x, [0, 2], random_map, subsets=20)
    ns = fidelity.default_ns(SIZE * SIZE)
    assert ns[0] == 1 and ns[-1] == 80 and (np.diff(ns) > 0).all()
    np.testing.assert_array_equal(result.x, ns)
    assert result.curves["correlation"].shape == (2, len(ns))
    assert result.aggregate_curves["correlation"].shape == (len(ns),)
    # A random map explains nothing: each correlation over 20 subsets is ~N(0, 1/sqrt(20)), so the mean |.| of
    # the 32 values is ~0.18 +- 0.03; a map that carried the model's weights would give ~1.
    assert np.abs(result.curves["correlation"]).mean() < 0.3
    assert "sensitivity_n" in result.summary() and result.to_json()


def test_a_model_that_ignores_its_input_gives_undefined_not_fake_correlations(x):
    constant = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Flatten(),
                                 keras.layers.Dense(3, kernel_initializer="zeros")])
    result = sensitivity_n(constant, x, [0, 1], np.ones(x.shape[:3]), ns=[2, 5], subsets=5)
    assert np.isnan(result.curves["correlation"]).all()
    assert result.counts["undefined_correlations"] == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"ns": [0, 3]}, "ns must be a non-empty list of integers in \\[1, 100\\]"),
        ({"ns": [101]}, "ns must be"),
        ({"ns": [1.5]}, "ns must be"),
        ({"subsets": 1}, "subsets must be at least 2"),
        ({"baseline": np.zeros((3, 3))}, "baseline"),
    ],
)
def test_sensitivity_n_bad_input(linear, x, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sensitivity_n(linear, x, [0, 1], np.ones(x.shape[:3]), **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"grid": 11}, "grid must be at most the image side 10"),
        ({"subset": 0.001}, "must remove at least one cell"),
        ({"samples": 1}, "samples must be at least 2"),
        ({"subset": 1.5}, "subset"),
    ],
)
def test_mufidelity_bad_input(linear, x, kwargs, message):
    with pytest.raises(ValueError, match=message):
        mufidelity(linear, x, [0, 1], np.ones(x.shape[:3]), **kwargs)


def test_maps_must_match_the_images(linear, x):
    with pytest.raises(ValueError, match="maps must match the images"):
        sensitivity_n(linear, x, [0, 1], np.ones((2, 5, 5)))
    with pytest.raises(ValueError, match="NaN"):
        mufidelity(linear, x, [0, 1], np.full(x.shape[:3], np.nan))
