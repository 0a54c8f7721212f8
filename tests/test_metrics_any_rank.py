"""Insertion, Deletion, Sensitivity-n and MuFidelity on inputs of any rank: features, not pixels (issue 30, item 5).

Oracles: a NumPy/eager re-derivation of the canvases (rank the features by the map, reveal the top k
positions over their whole last axis), and Ancona et al.'s theorem that Gradient*Input on a linear
model with a zero baseline is sensitivity-n (correlation 1 for every n).
"""

import keras
import numpy as np
import pytest

from idgi_tf import metrics
from idgi_tf.metrics import fidelity

CLASSES = 3


def linear_model(shape, seed=0):
    """``f(x) = W^T flatten(x)`` (no bias), and its weights (prod(shape), CLASSES)."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(CLASSES, use_bias=False)])
    return model, model.layers[-1].get_weights()[0]


def tanh_model(shape, seed=0):
    """A small nonlinear classifier on inputs of ``shape``, so that the order of reveals matters."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(8, activation="tanh"),
                             keras.layers.Dense(CLASSES, activation="softmax")])


def token_model(length=6, vocabulary=10, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((length,), dtype="int32"), keras.layers.Embedding(vocabulary, 4),
                             keras.layers.Flatten(), keras.layers.Dense(CLASSES, activation="softmax")])


class NoPass:
    """A model that must not be called: bad input is refused before any model pass."""

    def __call__(self, x):
        raise AssertionError("the model was called")


class NoPassTokens(keras.Model):
    """A Keras model that declares token ids (int32 (N, 6)) and must not be called (a model that declares
    nothing takes integers as values, e.g. pixels)."""

    def __init__(self):
        ids = keras.Input((6,), dtype="int32")
        super().__init__(ids, keras.layers.Dense(2)(keras.layers.Embedding(10, 2)(ids)[:, 0]))

    def call(self, x):
        raise AssertionError("the model was called")


def expected_curves(model, x, base, feature_maps, targets, counts, reveal):
    """f on the canvases rebuilt in NumPy: the top-k features (stable order) from the input, the rest from the
    baseline (insertion), or the mirror (deletion); a feature's whole last axis moves when maps lack it."""
    curves = np.empty((len(x), len(counts)))
    for i in range(len(x)):
        order = np.argsort(-feature_maps[i].ravel(), kind="stable")
        for j, k in enumerate(counts):
            top = np.zeros(feature_maps[i].size, bool)
            top[order[:k]] = True
            top = top.reshape(feature_maps[i].shape)
            if top.ndim < x[i].ndim:
                top = top[..., None]
            keep = top if reveal else ~top
            canvas = np.where(keep, x[i], base[i])
            curves[i, j] = np.asarray(model(canvas[None]))[0, targets[i]]
    return curves


@pytest.mark.parametrize("shape", [(12,), (5, 3), (5, 7, 1), (2, 3, 4, 2)], ids=["tabular", "sequence",
                                                                                  "gray-odd-image", "volume"])
def test_gradient_x_input_on_a_linear_model_is_sensitivity_n(shape):
    """Ancona et al. 2018, section 4: for f(x) = w.x and R = w*x with baseline 0, f(x) - f(x_S) = sum_S R for
    every subset S, so the correlation is 1 for every n, and for MuFidelity's cells alike."""
    model, weights = linear_model(shape)
    x = np.random.default_rng(1).normal(size=(2, *shape)).astype(np.float32)
    targets = np.array([0, 2])
    maps = weights[:, targets].T.reshape(x.shape) * x
    features = int(np.prod(shape[:-1] if len(shape) > 1 else shape))
    ns = [1, 2, features // 2, features - 1]
    result = metrics.sensitivity_n(model, x, targets, maps, ns=ns, subsets=12, batch_size=64)
    np.testing.assert_allclose(result.curves["correlation"], 1.0, atol=1e-5)
    grid = 2 if features < 9 else 3
    fidelity_result = metrics.mufidelity(model, x, targets, maps, grid=grid, subset=0.5, samples=12, batch_size=64)
    np.testing.assert_allclose(fidelity_result.scores["mufidelity"], 1.0, atol=1e-5)


def test_a_shuffled_map_is_not_sensitivity_n():
    """The theorem's converse check: the same linear model with the masses of a permuted map is below 1."""
    model, weights = linear_model((12,))
    x = np.random.default_rng(1).normal(size=(2, 12)).astype(np.float32)
    maps = (weights[:, [0, 2]].T * x)[:, ::-1]
    result = metrics.sensitivity_n(model, x, [0, 2], maps, ns=[3], subsets=20)
    assert np.all(result.curves["correlation"] < 0.99)


def test_grid_cells_outside_images_are_contiguous_groups():
    np.testing.assert_array_equal(fidelity.grid_cells(2, (10,)), [0, 0, 0, 1, 1, 2, 2, 2, 3, 3])
    np.testing.assert_array_equal(fidelity.grid_cells(2, (2, 2, 2)).ravel(), [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(fidelity.grid_cells(2, (3, 5)), [[0, 0, 0, 1, 1], [0, 0, 0, 1, 1],
                                                                   [2, 2, 2, 3, 3]])


@pytest.mark.parametrize("name, reveal", [("insertion", True), ("deletion", False)])
def test_sequence_curves_equal_a_numpy_rederivation(name, reveal):
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    base = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)  # one baseline for every example
    feature_maps = np.array([[0.3, -1.0, 2.0, 0.3, 0.9], [5.0, 4.0, -3.0, 2.0, 1.0]])  # a tie in the first
    targets = np.array([1, 2])
    model = tanh_model((5, 3))
    result = getattr(metrics, name)(model, x, targets, feature_maps, step=0.2, baseline=base)
    expected = expected_curves(model, x, np.broadcast_to(base, x.shape), feature_maps, targets, range(6), reveal)
    np.testing.assert_allclose(result.curves["probability"], expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(result.scores["probability"], np.trapezoid(expected, dx=0.2, axis=1), rtol=1e-6)


def test_gray_odd_image_insertion_equals_a_numpy_rederivation():
    x = np.random.default_rng(0).uniform(0, 1, (2, 5, 7, 1)).astype(np.float32)
    maps = np.random.default_rng(2).normal(size=x.shape)
    model = tanh_model((5, 7, 1))
    result = metrics.insertion(model, x, [0, 1], maps, step=0.25)
    counts = np.round(np.linspace(0, 1, 5) * 35).astype(int)
    expected = expected_curves(model, x, np.zeros_like(x), maps[..., 0], [0, 1], counts, True)
    np.testing.assert_allclose(result.curves["probability"], expected, rtol=1e-6, atol=1e-7)


def test_maps_without_the_last_axis_equal_their_sums():
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    full = np.random.default_rng(3).normal(size=x.shape)
    model = tanh_model((5, 3))
    for metric, options in [(metrics.deletion, {"step": 0.2}), (metrics.sensitivity_n, {"ns": [1, 2, 4],
                                                                                        "subsets": 8})]:
        summed = metric(model, x, [0, 1], full.sum(-1), **options)
        reduced = metric(model, x, [0, 1], full, how="sum", **options)
        for key, curve in summed.curves.items():
            np.testing.assert_array_equal(reduced.curves[key], curve)


def test_token_ids_with_a_pad_baseline_equal_an_eager_recomputation():
    ids = np.array([[3, 1, 4, 1, 5, 9], [2, 6, 5, 3, 5, 8]])
    pad = 7
    scores = np.random.default_rng(4).normal(size=ids.shape)  # per-token sums of embedding maps: maps.sum(-1)
    targets = np.array([0, 1])
    model = token_model()
    result = metrics.deletion(model, ids, targets, scores, step=0.5, baseline=pad)
    expected = expected_curves(model, ids, np.full_like(ids, pad), scores, targets, [0, 3, 6], False)
    np.testing.assert_allclose(result.curves["probability"], expected, rtol=1e-6, atol=1e-7)
    assert result.options["baseline"] == pad

    subsets, n = 6, 2
    fidelity_result = metrics.sensitivity_n(model, ids, targets, scores, ns=[n], subsets=subsets, baseline=pad)
    masks = fidelity.random_subset_masks(np.random.default_rng(0), subsets, ids.shape[1], n).astype(bool)
    reference = np.asarray(model(ids))[np.arange(2), targets]
    drops = np.array([[reference[i] - np.asarray(model(np.where(m, pad, ids[i])[None]))[0, targets[i]]
                       for m in masks] for i in range(2)])
    masses = scores @ masks.T.astype(np.float64)
    np.testing.assert_allclose(fidelity_result.curves["correlation"][:, 0], fidelity.pearson_rows(masses, drops),
                               rtol=1e-5)


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda m: metrics.insertion(m, np.ones((2, 5, 3)), [0, 1], np.ones((2, 4))), ValueError,
         r"maps must match the images: expected shape \(2, 5, 3\) or \(2, 5\), got \(2, 4\)"),
        (lambda m: metrics.sensitivity_n(m, np.ones((2, 12)), [0, 1], np.ones((2,))), ValueError,
         r"expected shape \(2, 12\), got \(2,\)"),
        (lambda m: metrics.deletion(NoPassTokens(), np.ones((2, 6), np.int64), [0, 1], np.ones((2, 6)), baseline=0.0),
         TypeError, "baseline must hold integer ids"),
        (lambda m: metrics.mufidelity(m, np.ones((2, 12)), [0, 1], np.ones((2, 12)), grid=4), ValueError,
         "grid\\*\\*2 must be at most the number of features 12"),
        (lambda m: metrics.sic_aic(m, np.ones((2, 8, 4)), [0, 1], np.ones((2, 8))), ValueError,
         r"sic_aic is an image metric, needs images of shape \(N, H, W, C\), got shape \(2, 8, 4\)"),
        (lambda m: metrics.sic_aic(m, np.ones((2, 8, 4)), [0, 1], np.ones((2, 8)), information="msssim"), ValueError,
         "sic_aic is an image metric"),
        (lambda m: metrics.localization(np.ones((2, 8)), np.ones((2, 8))), ValueError,
         r"localization is an image metric, needs maps of shape \(N, H, W, C\) or \(N, H, W\), got shape \(2, 8\)"),
    ],
    ids=["sequence-maps", "tabular-maps", "float-baseline-for-ids", "grid-too-fine", "sic-rank-3", "msssim-rank-3",
         "localization-rank-2"],
)
def test_bad_input_is_named_before_any_model_pass(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(NoPass())
