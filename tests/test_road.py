"""ROAD (idgi_tf.metrics.road): the noisy linear imputation against a dense re-derivation, its maximum
principle and noise, MoRF/LeRF on a model that reads one pixel, batching and seeds, errors, the table row."""

from __future__ import annotations

import importlib
import itertools

import keras
import numpy as np
import pytest

from idgi_tf.metrics import METRICS, MetricResult, road
from idgi_tf.metrics.road import PERCENTAGES, noisy_linear_imputation

road_module = importlib.import_module("idgi_tf.metrics.road")  # the name road is the function


def dense_imputation(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """The authors' imputation re-derived with loops: each removed pixel is the mean of its neighbours inside
    the image, weighted 1/6 (direct) and 1/12 (diagonal), one dense system solved with np.linalg.solve."""
    height, width, _ = image.shape
    unknowns = [(r, c) for r in range(height) for c in range(width) if removed[r, c]]
    number = {pixel: k for k, pixel in enumerate(unknowns)}
    a = np.zeros((len(unknowns), len(unknowns)))
    b = np.zeros((len(unknowns), image.shape[2]))
    for k, (r, c) in enumerate(unknowns):
        for dr, dc in itertools.product((-1, 0, 1), repeat=2):
            rr, cc = r + dr, c + dc
            if (dr, dc) == (0, 0) or not (0 <= rr < height and 0 <= cc < width):
                continue
            weight = 1 / 6 if abs(dr) + abs(dc) == 1 else 1 / 12
            a[k, k] += weight
            if removed[rr, cc]:
                a[k, number[(rr, cc)]] -= weight
            else:
                b[k] += weight * image[rr, cc]
    out = image.astype(np.float64).copy()
    for (r, c), value in zip(unknowns, np.linalg.solve(a, b)):
        out[r, c] = value
    return out


def neighbour_values(image: np.ndarray, r: int, c: int) -> np.ndarray:
    """The values (k, C) of the neighbours of pixel (r, c) inside the image."""
    return np.array([image[r + dr, c + dc] for dr, dc in itertools.product((-1, 0, 1), repeat=2)
                     if (dr, dc) != (0, 0) and 0 <= r + dr < image.shape[0] and 0 <= c + dc < image.shape[1]])


def linear_model(shape, seed=0) -> keras.Model:
    """f = w . x + b for class 0 (class 1: the opposite), no softmax: f reads the imputed values linearly."""
    rng = np.random.default_rng(seed)
    net = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(2)])
    w = rng.normal(size=(int(np.prod(shape)), 1)).astype(np.float32) / 100
    net.layers[-1].set_weights([np.concatenate([w, -w], axis=1), np.zeros(2, np.float32)])
    return net


def one_pixel_model(shape, row: int, col: int) -> keras.Model:
    """Class 0's probability is sigmoid((x[row, col] - 128) / 8): it reads one pixel and nothing else."""
    pick = np.zeros((int(np.prod(shape)), 2), np.float32)
    pick[row * shape[1] + col, 0] = 1 / 8
    net = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(2),
                            keras.layers.Softmax()])
    net.layers[1].set_weights([pick, np.array([-16.0, 0.0], np.float32)])
    return net


@pytest.fixture
def small():
    """A random 5x7 2-channel image, 15 removed pixels (borders and corners included)."""
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, (5, 7, 2))
    removed = np.zeros((5, 7), bool)
    removed.flat[rng.choice(35, 15, replace=False)] = True
    removed[0, 0] = removed[4, 6] = removed[2, 3] = True
    return image, removed


def test_the_imputation_equals_the_dense_re_derivation(small):
    image, removed = small
    np.testing.assert_allclose(noisy_linear_imputation(image, removed), dense_imputation(image, removed),
                               rtol=1e-12, atol=1e-9)


def test_each_imputed_pixel_is_a_mean_of_its_neighbours_and_a_constant_stays_constant(small):
    image, removed = small
    out = noisy_linear_imputation(image, removed)
    np.testing.assert_array_equal(out[~removed], image[~removed])  # kept pixels unchanged
    for r, c in zip(*np.nonzero(removed)):  # maximum principle, per pixel and channel
        around = neighbour_values(out, r, c)
        assert np.all(around.min(axis=0) - 1e-9 <= out[r, c]) and np.all(out[r, c] <= around.max(axis=0) + 1e-9)
    assert image[~removed].min() <= out.min() and out.max() <= image[~removed].max()
    np.testing.assert_allclose(noisy_linear_imputation(np.full((5, 7, 2), 42.0), removed), 42.0, rtol=1e-12)


def test_the_noise_is_the_authors_001_of_the_pixel_range_on_imputed_pixels_only():
    removed = np.zeros((64, 64), bool)
    removed[4:60, 4:60] = True
    out = noisy_linear_imputation(np.full((64, 64, 3), 100.0), removed, std=0.01 * 255,
                                  rng=np.random.default_rng(0))
    assert abs((out[removed] - 100.0).std() - 2.55) < 0.05 and abs((out[removed] - 100.0).mean()) < 0.05
    assert np.all(out[~removed] == 100.0)


def test_road_scales_the_authors_noise_to_pixels_in_0_255(monkeypatch):
    stds = []

    def recording(image, removed, *, std, rng):
        stds.append(std)
        return image.astype(np.float64)

    monkeypatch.setattr(road_module, "noisy_linear_imputation", recording)
    road(linear_model((6, 5, 1)), np.ones((1, 6, 5, 1)), [0], np.ones((1, 6, 5)), jit_compile=False)
    road(linear_model((6, 5, 1)), np.ones((1, 6, 5, 1)), [0], np.ones((1, 6, 5)), noise=0.1, jit_compile=False)
    assert stds == [0.01 * 255] * 2 * len(PERCENTAGES) + [0.1 * 255] * 2 * len(PERCENTAGES)


def test_road_curves_are_f_on_the_re_derived_imputations():
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, (2, 5, 7, 2)).astype(np.float32)
    maps = rng.normal(size=(2, 5, 7))
    model = linear_model((5, 7, 2))
    percentages = (0.2, 0.5, 0.8)
    result = road(model, images, [0, 1], maps, percentages=percentages, noise=0, jit_compile=False)
    w = model.layers[-1].get_weights()[0]
    for i, target in enumerate((0, 1)):
        order = np.argsort(-maps[i].ravel(), kind="stable")
        for column, p in enumerate(percentages):
            k = int(np.floor(p * 35))
            for name, chosen in (("morf", order[:k]), ("lerf", order[35 - k:])):
                removed = np.isin(np.arange(35), chosen).reshape(5, 7)
                want = dense_imputation(images[i].astype(np.float64), removed).ravel() @ w[:, target]
                np.testing.assert_allclose(result.curves[name][i, column], want, rtol=1e-4, atol=1e-4)
    for name in ("morf", "lerf"):
        np.testing.assert_allclose(result.scores[name], result.curves[name].mean(axis=1))
    np.testing.assert_allclose(result.scores["gap"], result.scores["lerf"] - result.scores["morf"])
    np.testing.assert_array_equal(result.x, percentages)


@pytest.mark.parametrize("first", [True, False])
def test_morf_drops_a_pixel_the_map_ranks_first_and_lerf_keeps_it(first):
    shape, row, col = (9, 11, 1), 4, 6  # odd, not square, one channel
    images = np.zeros((1, *shape), np.float32)
    images[0, row, col] = 255.0
    maps = np.random.default_rng(3).uniform(0, 1, (1, 9, 11))
    maps[0, row, col] = 2.0 if first else -1.0
    result = road(one_pixel_model(shape, row, col), images, [0], maps, jit_compile=False)
    removed, kept = ("morf", "lerf") if first else ("lerf", "morf")
    assert np.all(result.curves[removed] < 1e-3)  # removed and imputed from black neighbours at every p
    assert np.all(result.curves[kept] > 0.999)  # never removed: count < H * W
    assert (result.scores["gap"][0] > 0.99) == first and (result.scores["gap"][0] < -0.99) == (not first)


def test_results_do_not_depend_on_batch_size_and_the_noise_on_the_seed():
    rng = np.random.default_rng(4)
    images = rng.uniform(0, 255, (3, 6, 5, 3)).astype(np.float32)
    maps = rng.normal(size=(3, 6, 5, 3))
    model = linear_model((6, 5, 3))
    kwargs = {"percentages": (0.3, 0.6), "jit_compile": False}
    one = road(model, images, [0, 1, 0], maps, batch_size=1, **kwargs)
    many = road(model, images, [0, 1, 0], maps, batch_size=64, **kwargs)
    pairs = road(model, images, [0, 1, 0], maps, batch_size=8, **kwargs)  # two images a pass, then one
    padded = road(model, images, [0, 1, 0], maps, batch_size=8, **{**kwargs, "jit_compile": True})  # XLA: padded
    for key in ("morf", "lerf"):
        for other in (one, pairs, padded):
            np.testing.assert_allclose(other.curves[key], many.curves[key], rtol=1e-5, atol=1e-5)
    again = road(model, images, [0, 1, 0], maps, **kwargs)
    np.testing.assert_array_equal(again.curves["morf"], many.curves["morf"])
    other = road(model, images, [0, 1, 0], maps, seed=1, **kwargs)
    assert np.abs(other.curves["morf"] - many.curves["morf"]).min() > 1e-6
    quiet = road(model, images, [0, 1, 0], maps, noise=0, **kwargs)
    assert np.abs(quiet.curves["lerf"] - many.curves["lerf"]).min() > 1e-6


@pytest.mark.parametrize("kwargs, error, message", [
    ({"maps": np.zeros((1, 5, 6))}, ValueError, r"maps must match the images: expected shape \(1, 6, 5, 1\)"),
    ({"percentages": (0.0, 0.5)}, ValueError, "percentages must be a non-empty increasing list of fractions in"),
    ({"percentages": (0.5, 1.0)}, ValueError, r"in \(0, 1\)"),
    ({"percentages": (0.5, 0.2)}, ValueError, "increasing"),
    ({"percentages": ()}, ValueError, "non-empty"),
    ({"percentages": 0.5}, ValueError, "percentages must be"),
    ({"percentages": (1 - 1e-12,)}, ValueError, "removes all 30 pixels of an image; one must stay"),
    ({"noise": -0.1}, ValueError, r"noise must lie in \[0.0, 1.0\]"),
    ({"images": np.zeros((1, 30, 1))}, ValueError, r"images must have rank 4 \(N, H, W, C\)"),
    ({"targets": [3]}, ValueError, r"targets must lie in \[0, 2\)"),
])
def test_bad_inputs_are_refused_with_clear_errors(kwargs, error, message):
    args = {"images": np.zeros((1, 6, 5, 1), np.float32), "targets": [0], "maps": np.zeros((1, 6, 5))}
    args.update({key: kwargs.pop(key) for key in list(kwargs) if key in args})
    with pytest.raises(error, match=message):
        road(linear_model((6, 5, 1)), args["images"], args["targets"], args["maps"], jit_compile=False, **kwargs)


def test_the_imputation_refuses_a_mask_that_keeps_nothing_and_noise_without_a_generator():
    with pytest.raises(ValueError, match=r"removed must be an \(H, W\) = \(3, 4\) mask that keeps one pixel"):
        noisy_linear_imputation(np.zeros((3, 4, 1)), np.ones((3, 4), bool))
    with pytest.raises(ValueError, match=r"got shape \(4, 3\)"):
        noisy_linear_imputation(np.zeros((3, 4, 1)), np.zeros((4, 3), bool))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator when std > 0"):
        noisy_linear_imputation(np.zeros((3, 4, 1)), np.eye(3, 4, dtype=bool), std=1.0)


def test_the_metric_row_runs_and_reads_its_scores():
    metric = METRICS["road"]
    assert metric.softmax and metric.image_only and [s.key for s in metric.scores] == ["morf", "lerf", "gap"]
    assert [s.higher_is_better for s in metric.scores] == [False, True, True]
    images = np.random.default_rng(5).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255.0), keras.layers.Flatten(),
                              keras.layers.Dense(3), keras.layers.Softmax()])
    result = metric.compute(model, images, np.array([0, 2]), images, batch_size=4, jit_compile=False)
    assert isinstance(result, MetricResult) and result.curves["morf"].shape == (2, len(PERCENTAGES))
    row = metric.row_fields(result, 1)
    assert row["road_gap"] == pytest.approx(row["road_lerf"] - row["road_morf"])
    assert np.all((np.array(row["road_morf_curve"]) > 0) & (np.array(row["road_morf_curve"]) < 1))
    x, y = metric.curves[1].combine([row["road_lerf_curve"], metric.row_fields(result, 0)["road_lerf_curve"]])
    np.testing.assert_allclose(x, PERCENTAGES)
    np.testing.assert_allclose(y, result.curves["lerf"].mean(axis=0), atol=1e-6)
