"""Completeness gaps (``return_gap``) and ``steps="auto"``: checked against independent recomputation,
direct calls at the final step count, and a count of the model inputs actually evaluated."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
from helpers import CountingModel, bias_free_relu_cnn

import idgi_tf
from idgi_tf.attribution import paths
from idgi_tf.attribution.convergence import auto_grids


@pytest.mark.parametrize("method, baseline", [("ig", 0.0), ("ig", 60.0), ("gig", 0.0), ("gig", 30.0),
                                              ("blurig", None)])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_return_gap_is_the_recomputed_completeness_gap(model, images, targets, method, baseline, batch_size):
    maps, gaps = idgi_tf.attribute(model, images, targets, method, rule=("plain", "idgi"), steps=12,
                                   baseline=baseline, batch_size=batch_size, return_gap=True)
    start = idgi_tf.path_start(method, images, None if baseline is None else baseline)
    change = (idgi_tf.explained_output(model, images, targets).astype(np.float64)
              - idgi_tf.explained_output(model, start, targets))
    for rule in ("plain", "idgi"):
        expected = maps[rule].astype(np.float64).sum(axis=(1, 2, 3)) - change
        np.testing.assert_allclose(gaps[rule].absolute, expected, atol=1e-6 * np.abs(change).max())
        np.testing.assert_allclose(gaps[rule].output_change, change, rtol=1e-6)
        assert (gaps[rule].steps == 12).all()
    assert gaps["idgi"].relative.max() <= 1e-5
    assert gaps["plain"].relative.max() > 1e-4  # 12 steps leave a discretisation error to report


def test_return_gap_on_a_bias_free_relu_net_and_one_channel():
    net = bias_free_relu_cnn(15, 20, 1)
    x = np.random.default_rng(0).uniform(0, 255, (3, 15, 20, 1)).astype(np.float32)
    maps, gap = idgi_tf.attribute(net, x, [0, 1, 2], "ig", rule="idgi", steps=8, return_gap=True)
    change = idgi_tf.explained_output(net, x, [0, 1, 2]) - idgi_tf.explained_output(net, 0 * x, [0, 1, 2])
    np.testing.assert_allclose(gap.output_change, change, rtol=1e-6)
    assert gap.relative.max() <= 1e-5 and np.isfinite(maps).all()


@pytest.mark.parametrize("method, options", [("ig", {}), ("blurig", {}), ("gig", {}), ("blurig", {"sqrt": True})])
def test_auto_gives_the_maps_of_a_direct_call_at_the_steps_each_image_used(model, images, targets, method,
                                                                            options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # some images may stop at max_steps
        maps, gaps = idgi_tf.attribute(model, images, targets, method, rule=("plain", "idgi"), steps="auto",
                                       tol=0.02, max_steps=128, return_gap=True, batch_size=4, **options)
    used = gaps["plain"].steps
    assert set(used) <= set(auto_grids(128))
    for steps in np.unique(used):
        chosen = used == steps
        direct, direct_gaps = idgi_tf.attribute(model, images[chosen], targets[chosen], method,
                                                rule=("plain", "idgi"), steps=int(steps), return_gap=True,
                                                batch_size=4, **options)
        for rule in ("plain", "idgi"):
            scale = np.abs(direct[rule]).max()
            np.testing.assert_allclose(maps[rule][chosen], direct[rule], rtol=0, atol=1e-5 * scale)
        np.testing.assert_allclose(gaps["plain"].relative[chosen], direct_gaps["plain"].relative, rtol=1e-4,
                                   atol=1e-7)
    # Each image stopped at the first grid whose direct relative gap is within tol (or at max_steps).
    for steps in auto_grids(128):
        _, at = idgi_tf.attribute(model, images, targets, method, steps=steps, return_gap=True, batch_size=4,
                                  **options)
        earlier = used > steps
        assert np.all(at.relative[earlier] > 0.02)
        assert np.all(at.relative[used == steps] <= 0.02) or steps == 128


def test_auto_evaluates_every_grid_point_once_and_idgi_takes_one_more_pass(model, images, targets):
    counting = CountingModel(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, gap = idgi_tf.attribute(counting, images[:1], targets[:1], "ig", steps="auto", tol=0.005, max_steps=256,
                                   batch_size=1, return_gap=True)
    final = int(gap.steps[0])
    assert final > 16, "the test needs an image that refines"
    probe = 1  # attribute's one-image call that reads the number of classes of a non-Keras model
    assert int(counting.inputs.numpy()) == probe + final + 1  # 17 + 8 + 16 + ... = the final grid's points
    counting.inputs.assign(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        idgi_tf.attribute(counting, images[:1], targets[:1], "ig", rule=("plain", "idgi"), steps="auto", tol=0.005,
                          max_steps=256, batch_size=1)
    assert int(counting.inputs.numpy()) == probe + 2 * (final + 1)  # IDGI: one more pass over the final grid
    counting.inputs.assign(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, gig = idgi_tf.attribute(counting, images[:1], targets[:1], "gig", steps="auto", tol=0.005,
                                   max_steps=64, batch_size=1, return_gap=True)
    tried = [steps for steps in auto_grids(64) if steps <= gig.steps[0]]
    assert int(counting.inputs.numpy()) == probe + sum(steps + 1 for steps in tried)  # not nested: every grid anew


def test_images_that_converged_are_not_evaluated_again(model, images, targets):
    tol, grids = 0.01, auto_grids(128)
    direct = [idgi_tf.attribute(model, images, targets, "ig", steps=s, return_gap=True)[1].relative for s in grids]
    expected = np.array([next((s for s, g in zip(grids, direct) if g[i] <= tol), grids[-1]) for i in range(3)])
    assert expected.min() == 16 and expected.max() > 16, expected  # the case is really there
    counting = CountingModel(model)
    _, gap = idgi_tf.attribute(counting, images, targets, "ig", steps="auto", tol=tol, max_steps=128,
                               batch_size=3, return_gap=True)
    np.testing.assert_array_equal(gap.steps, expected)
    new_points = sum(sum(s // 2 for s in grids[1:] if s <= steps) for steps in expected)
    assert int(counting.inputs.numpy()) == 1 + 3 * 17 + new_points  # probe, first grid, then each image's own


def test_auto_meets_tol_on_a_trained_network(trained_model):
    net, x, y = trained_model
    maps, gap = idgi_tf.attribute(net, x, y, "ig", rule="plain", steps="auto", tol=0.01, return_gap=True)
    change = idgi_tf.explained_output(net, x, y) - idgi_tf.explained_output(net, 0 * x, y)
    recomputed = np.abs(maps.astype(np.float64).sum(axis=(1, 2, 3)) - change) / np.abs(change)
    assert recomputed.max() <= 0.01 + 1e-6 and gap.relative.max() <= 0.01
    assert gap.steps.max() > 16  # the first grid was not enough for every image


def test_an_unreachable_tol_warns_with_the_gap_reached(model, images, targets):
    with pytest.warns(RuntimeWarning, match=r"3 image\(s\) did not reach tol=1e-09 within max_steps=32 "
                                            r"\(largest relative gap [0-9.e-]+\); their maps use 32 steps"):
        _, gap = idgi_tf.attribute(model, images, targets, "blurig", steps="auto", tol=1e-9, max_steps=32,
                                   return_gap=True)
    assert (gap.steps == 32).all() and gap.relative.min() > 1e-9


def test_refinement_points_are_the_odd_points_of_the_doubled_grid():
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (2, 5, 7, 3)).astype(np.float32))
    base = tf.zeros_like(x)
    for path in (paths.Straight(8), paths.Blur(8, max_sigma=3.0)):
        refinement = paths.Refinement(path)
        assert refinement.num_points == 4
        odd = tf.constant([1, 3, 5, 7])
        np.testing.assert_array_equal(refinement.points(None, tf.range(4), x, base), path.points(None, odd, x, base))
        np.testing.assert_array_equal(refinement.advance(None, tf.range(4), None, x, base)[1],
                                      path.advance(None, odd, None, x, base)[1])
    for path in (paths.Guided(8), paths.Blur(8, sqrt=True), paths.Straight(7)):
        with pytest.raises(ValueError, match="a refinement needs a nested path with an even number of steps"):
            paths.Refinement(path)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"steps": "auto", "tol": 0.0}, ValueError, r"tol must lie in \(0.0, "),
    ({"steps": "auto", "tol": "1%"}, TypeError, "tol must"),
    ({"steps": "auto", "max_steps": 0}, ValueError, "max_steps must be"),
    ({"steps": "auto", "max_steps": 1}, ValueError, "max_steps must be at least 2"),
    ({"steps": "auto", "max_steps": 64.5}, TypeError, "max_steps must be"),
    ({"steps": "many"}, ValueError, "steps must be a positive int or 'auto'"),
    ({"steps": 32, "tol": 0.01}, ValueError, "tol and max_steps apply only with steps='auto'"),
    ({"max_steps": 64}, ValueError, "tol and max_steps apply only with steps='auto'"),
    ({"return_gap": "yes"}, TypeError, "return_gap must be True or False"),
])
def test_bad_auto_options_are_named(model, images, targets, kwargs, error, match):
    with pytest.raises(error, match=match):
        idgi_tf.attribute(model, images, targets, "ig", **kwargs)


@pytest.mark.parametrize("method, options", [("vg", {}), ("occlusion", {}), ("smoothgrad", {"inner": "ig"}),
                                             ("elrp", {})])
@pytest.mark.parametrize("feature", [{"steps": "auto"}, {"return_gap": True}])
def test_auto_and_gaps_need_an_integral_over_a_path(model, images, targets, method, options, feature):
    with pytest.raises(ValueError, match=r"needs an integral over a path \(ig, gig, blurig\), got method"):
        idgi_tf.attribute(model, images, targets, method, **feature, **options)
