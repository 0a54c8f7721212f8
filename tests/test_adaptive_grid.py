"""grid="adaptive" (idgi_tf/attribution/grid.py): a pilot pass, then the other points where f changes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import CountingModel, bias_free_relu_cnn, photos, smooth_cnn

import idgi_tf
from idgi_tf.attribution import grid
from idgi_tf.attribution.methods import METHODS
from idgi_tf.attribution.paths import Parametric

SIZE = 16


@pytest.fixture(scope="module")
def small():
    """The smooth tanh CNN and the bias-free ReLU CNN on three 16-px photos, with their targets."""
    return photos(SIZE), np.array([1, 3, 4], np.int32), smooth_cnn(SIZE), bias_free_relu_cnn(SIZE, SIZE, 3)


@pytest.mark.parametrize("method", ["ig", "blurig"])
@pytest.mark.parametrize("net", ["tanh", "relu"])
@pytest.mark.parametrize("count", [1, 3])
def test_idgi_is_complete_on_the_adaptive_grid(small, method, net, count):
    """IDGI telescopes on any partition: its maps sum to f(x) - f(start) (recomputed here), and
    return_gap reports that; the bias-free ReLU net's gradient vanishes at black (the rules' fallback)."""
    images, targets, tanh, relu = small
    model, targets = (tanh, targets) if net == "tanh" else (relu, targets % 4)
    images, targets = images[:count], targets[:count]
    maps, gap = idgi_tf.attribute(model, images, targets, method, rule="idgi", steps=24, grid="adaptive",
                                  return_gap=True, batch_size=8)
    change = (idgi_tf.explained_output(model, images, targets)
              - idgi_tf.explained_output(model, idgi_tf.path_start(method, images), targets)).astype(np.float64)
    assert np.all(np.abs(change) > 1e-4), "the test needs an output that changes along the path"
    np.testing.assert_allclose(maps.astype(np.float64).sum(axis=(1, 2, 3)), change, rtol=1e-5)
    np.testing.assert_allclose(gap.output_change, change, rtol=1e-5)
    assert gap.relative.max() <= 1e-5 and np.all(gap.steps == 24)


@pytest.mark.parametrize("method", ["ig", "blurig"])
def test_the_plain_gap_shrinks_as_the_steps_grow(small, method):
    images, targets, model, _ = small
    """The largest of the three images' relative gaps (one image's plain gap need not shrink at every step:
    the Riemann error changes sign along the path)."""
    gaps = [idgi_tf.attribute(model, images, targets, method, steps=steps, grid="adaptive", return_gap=True)[1]
            .relative.max() for steps in (8, 32, 128)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < gaps[0] / 4, gaps


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 8, 33, 200])
def test_the_grid_is_a_partition_nested_around_the_pilot_points(steps):
    pilots = grid.pilot_segments(steps)
    rng = np.random.default_rng(steps)
    pilot_f = np.cumsum(rng.exponential(size=(4, pilots + 1)) ** 3, axis=1)
    pilot_f[1] = 0.0  # f constant: the points spread evenly
    pilot_f[2] = np.nan  # f not finite: the points spread evenly
    alphas = grid.adaptive_grid(pilot_f, steps).numpy()
    assert alphas.shape == (4, steps + 1)
    assert np.all(alphas[:, 0] == 0.0) and np.all(alphas[:, -1] == 1.0) and np.all(np.diff(alphas, axis=1) > 0)
    for row in alphas:  # every pilot point alpha = p / P is on the grid
        assert np.isin(np.arange(pilots + 1) / pilots, row).all()
    if steps % pilots == 0:
        np.testing.assert_allclose(alphas[1], np.linspace(0, 1, steps + 1), atol=1e-15)
        np.testing.assert_allclose(alphas[2], np.linspace(0, 1, steps + 1), atol=1e-15)


def test_new_points_follow_the_output_change():
    """|Δf| of the pilot segments 1 : 0 : 3 : 0 -> 12 new points as 3 : 0 : 9 : 0, evenly inside."""
    counts = grid.allocation([[0.0, 1.0, 1.0, 4.0, 4.0]], 12).numpy()
    np.testing.assert_array_equal(counts, [[3, 0, 9, 0]])
    alphas = grid.adaptive_grid([[0.0, 1.0, 1.0, 4.0, 4.0]], 16).numpy()[0]
    np.testing.assert_allclose(alphas[:5], [0, 1 / 16, 2 / 16, 3 / 16, 0.25])
    np.testing.assert_allclose(alphas[5:15], 0.5 + np.arange(10) / 40)
    np.testing.assert_allclose(grid.allocation([[0.0, 1.0, 1.0, 4.0, 4.0]], 12, power=0.5).numpy(),
                               [[4, 0, 8, 0]])  # sqrt(3) / (1 + sqrt(3)) * 12 = 7.6: the remainder rounds up


class _Window(keras.layers.Layer):
    """``f(x) = clip((x_0 - 0.4) / 0.1, 0, 1)``: on the path from (0, tag) to (scale, tag), f changes only
    while ``alpha * scale`` is in [0.4, 0.5]; every evaluated row is recorded (the path's alpha is
    ``x_0 / scale``, the example is ``x_1``)."""

    def __init__(self, seen):
        super().__init__()
        self.record = seen.append  # (a list attribute would be tracked as a copy)

    def call(self, x):
        record = tf.numpy_function(lambda rows: self.record(rows.copy()) or np.int64(0), [x], tf.int64)
        with tf.control_dependencies([record]):
            return tf.clip_by_value((x[:, :1] - 0.4) / 0.1, 0.0, 1.0)


def test_a_model_whose_output_changes_on_a_short_stretch_gets_most_points_there():
    seen = []
    inputs = keras.Input((2,))
    model = keras.Model(inputs, _Window(seen)(inputs))
    scales = np.array([1.0, 2.0], np.float32)  # f changes on alpha in [0.4, 0.5], resp. [0.2, 0.25]
    x = np.stack([scales, [1.0, 2.0]], axis=1).astype(np.float32)
    baseline = np.array([[0.0, 1.0], [0.0, 2.0]], np.float32)
    steps = 40  # P = 10 pilot segments of 0.1; 30 new points
    maps = idgi_tf.attribute(model, x, None, "ig", rule="idgi", steps=steps, grid="adaptive", baseline=baseline,
                             jit_compile=False)
    np.testing.assert_allclose(maps.sum(axis=1), [1.0, 1.0], rtol=1e-5)
    rows = np.concatenate(seen)
    for example, (scale, window) in enumerate(zip(scales, [(0.4, 0.5), (0.2, 0.3)])):
        alphas = np.unique(np.round(rows[rows[:, 1] == example + 1, 0] / scale, 6))
        assert len(alphas) == steps + 1  # S + 1 distinct points (the pilot's reused)
        inside = (alphas >= window[0] - 1e-6) & (alphas <= window[1] + 1e-6)
        assert inside.sum() == 32, alphas  # the pilot segment's 2 ends and all 30 new points


@pytest.mark.parametrize("method", ["ig", "blurig"])
def test_steps_plus_one_model_inputs_per_image(small, method):
    images, targets, model, _ = small
    steps = 11  # P = 2 pilot segments, 9 new points
    probe = 1  # the one-image call that finds the number of classes
    for batch_size in (1, len(images) * (steps + 1)):  # no chunk is padded at these sizes
        counting = CountingModel(model)
        idgi_tf.attribute(counting, images, targets, method, rule=("plain", "idgi"), steps=steps, grid="adaptive",
                          batch_size=batch_size)
        assert int(counting.inputs.numpy()) == probe + len(images) * (steps + 1)


@pytest.mark.parametrize("method", ["ig", "blurig"])
def test_results_do_not_depend_on_batch_size(small, method):
    images, targets, model, _ = small
    runs = [idgi_tf.attribute(model, images, targets, method, rule=("plain", "idgi"), steps=20, grid="adaptive",
                              batch_size=batch_size) for batch_size in (1, 64)]
    for run in runs[1:]:
        for rule in ("plain", "idgi"):
            np.testing.assert_allclose(run[rule], runs[0][rule], rtol=1e-4, atol=1e-6 * np.abs(runs[0][rule]).max())


@pytest.mark.parametrize(("method", "options"), [("ig", {}), ("blurig", {}), ("blurig", {"sqrt": True})])
def test_evenly_spread_points_give_the_uniform_grids_maps(small, monkeypatch, method, options):
    """With POWER = 0 every pilot segment gets the same share: the grid of 16 steps is the uniform one, so
    both rules must give the uniform integrator's maps (each point's step handed in once, step vectors as
    the uniform path's)."""
    images, targets, _, _ = small
    monkeypatch.setattr(grid, "POWER", 0.0)
    model = smooth_cnn(SIZE, seed=1)
    adaptive = idgi_tf.attribute(model, images, targets, method, rule=("plain", "idgi"), steps=16, grid="adaptive",
                                 batch_size=8, **options)  # 2 points per pass: pilot chunks padded
    uniform = idgi_tf.attribute(model, images, targets, method, rule=("plain", "idgi"), steps=16, batch_size=8,
                                **options)
    for rule in ("plain", "idgi"):
        np.testing.assert_allclose(adaptive[rule], uniform[rule], rtol=1e-5, atol=1e-6 * np.abs(uniform[rule]).max())


def test_the_methods_that_take_an_adaptive_grid_are_those_with_parametric_paths():
    parametric = tuple(name for name, row in METHODS.items()
                       if row.path is not None and isinstance(row.path(1, **row.options), Parametric))
    assert parametric == grid.ADAPTIVE_METHODS


@pytest.mark.parametrize(("method", "arguments", "message"), [
    ("ig", {"grid": "dense"}, r"grid must be one of \['adaptive', 'uniform'\], got 'dense'"),
    ("gig", {"grid": "adaptive"}, r"grid='adaptive' needs a path of fixed points x\(alpha\) \(ig, blurig\); "
                                  r"method 'gig' takes only grid='uniform': its path has no fixed points"),
    ("vg", {"grid": "adaptive"}, r"method 'vg' takes only grid='uniform'"),
    ("smoothgrad", {"grid": "adaptive", "inner": "ig"}, r"method 'smoothgrad' takes only grid='uniform': "
                                                         r"it has no path"),
    ("occlusion", {"grid": "adaptive"}, r"method 'occlusion' takes only grid='uniform': it has no path"),
    ("ig", {"grid": "adaptive", "steps": "auto"}, r"grid='adaptive' needs an int steps=.*not steps='auto'"),
])
def test_clear_errors_before_any_model_pass(small, method, arguments, message):
    images, targets, model, _ = small
    counting = CountingModel(model)
    with pytest.raises(ValueError, match=message):
        idgi_tf.attribute(counting, images, targets, method, **arguments)
    assert int(counting.inputs.numpy()) == 0
