"""idgi_tf.attribute: the official IDGI formula, invariances, edge cases (per-row specs: test_method_table.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import CountingModel, bias_free_relu_cnn, value_and_grad
from scipy import ndimage

import idgi_tf


def official_idgi(gradients, predictions):
    """The IDGI authors' NumPy function (github.com/yangruo1226/IDGI), verbatim in substance."""
    result = np.zeros_like(gradients[0])
    for i in range(len(gradients) - 1):
        d = predictions[i + 1] - predictions[i]
        element_product = gradients[i] ** 2
        result += element_product * d / np.sum(element_product)
    return result


def test_path_start_is_the_baseline_or_the_most_blurred_image(images):
    np.testing.assert_array_equal(idgi_tf.path_start("ig", images), np.zeros_like(images))
    np.testing.assert_array_equal(idgi_tf.path_start("gig", images, baseline=7.0), np.full_like(images, 7.0))
    blurred = ndimage.gaussian_filter(images[0].astype(np.float64), [3.0, 3.0, 0], mode="constant")
    np.testing.assert_allclose(idgi_tf.path_start("blurig", images, max_sigma=3.0)[0], blurred, atol=1e-3)
    with pytest.raises(ValueError, match="method must be one of"):
        idgi_tf.path_start("vg", images)
    with pytest.raises(ValueError, match="takes no baseline"):
        idgi_tf.path_start("blurig", images, baseline=1.0)


def test_ig_approaches_completeness_as_steps_grow(model, images, targets):
    gap = idgi_tf.explained_output(model, images, targets) - idgi_tf.explained_output(
        model, np.zeros_like(images), targets
    )
    errors = {}
    for steps in (25, 400):
        maps = idgi_tf.attribute(model, images, targets, "ig", steps=steps)
        errors[steps] = np.abs(maps.sum(axis=(1, 2, 3)) - gap)
    # A left Riemann sum's error is first order in 1/steps: 25/400 = 1/16 of it remains (measured
    # 0.043-0.063 per image); a second-order rule would leave ~1/256, a wrong step size would not shrink it.
    ratio = errors[400] / errors[25]
    assert np.all((ratio > 0.03) & (ratio < 0.09)), errors


def test_idgi_over_ig_equals_official_formula(model, images, targets):
    steps = 16
    ours = idgi_tf.attribute(model, images, targets, "ig", rule="idgi", steps=steps)
    for image, target, got in zip(images, targets, ours):
        points = np.stack([image * (j / steps) for j in range(steps + 1)])
        values, grads = value_and_grad(model, points, np.full(steps + 1, target))
        np.testing.assert_allclose(got, official_idgi(grads, values), rtol=1e-4, atol=1e-9)


def test_idgi_over_blurig_equals_official_formula_on_scipy_blurs(model, images, targets):
    steps, max_sigma = 12, 6.0
    ours = idgi_tf.attribute(model, images, targets, "blurig", rule="idgi", steps=steps, max_sigma=max_sigma)
    sigmas = [i * max_sigma / steps for i in range(steps, -1, -1)]  # most blurred first
    for image, target, got in zip(images, targets, ours):
        points = np.stack(
            [image if s == 0 else ndimage.gaussian_filter(image, [s, s, 0], mode="constant") for s in sigmas]
        )
        values, grads = value_and_grad(model, points, np.full(steps + 1, target))
        np.testing.assert_allclose(got, official_idgi(grads, values), rtol=1e-3, atol=1e-8)


def test_rule_tuple_is_one_pass_with_the_same_results(model, images, targets):
    both = idgi_tf.attribute(model, images, targets, "blurig", rule=("plain", "idgi"), steps=10)
    assert set(both) == {"plain", "idgi"}
    for rule in ("plain", "idgi"):
        alone = idgi_tf.attribute(model, images, targets, "blurig", rule=rule, steps=10)
        np.testing.assert_allclose(both[rule], alone, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("method", ["ig", "gig", "blurig"])
def test_both_rules_cost_steps_plus_one_model_passes_per_image(model, images, targets, method):
    """One pass serves both rules: ``steps + 1`` path points per image (Guided IG: its ``steps`` outer
    points and the input), whether one rule is asked for or two. 12 points = 3 chunks of 4 points."""
    steps, n = 11, len(images)
    counted = {}
    for rule in ("plain", ("plain", "idgi")):
        wrapped = CountingModel(model)
        idgi_tf.attribute(wrapped, images, targets, method, rule=rule, steps=steps, batch_size=4 * n)
        counted[rule] = int(wrapped.inputs.numpy())
    probe = 1  # the one-image call that finds the number of classes
    assert counted == {"plain": probe + n * (steps + 1), ("plain", "idgi"): probe + n * (steps + 1)}


def test_vanilla_gradient_and_gradient_times_input(model, images, targets):
    _, grads = value_and_grad(model, images, targets)
    vg = idgi_tf.attribute(model, images, targets, "vg")
    gxi = idgi_tf.attribute(model, images, targets, "gxi")
    np.testing.assert_allclose(vg, grads, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(gxi, images * grads, rtol=1e-5, atol=1e-7)


def test_explained_output_is_the_target_score(model, images, targets):
    scores = model(images).numpy()
    np.testing.assert_allclose(
        idgi_tf.explained_output(model, images, targets), scores[np.arange(3), targets], rtol=1e-6
    )


def test_custom_baseline_is_where_the_path_starts(model, images, targets):
    grey = np.full(images.shape[1:], 128.0, np.float32)
    maps = idgi_tf.attribute(model, images, targets, "gig", rule="idgi", steps=20, baseline=grey)
    gap = idgi_tf.explained_output(model, images, targets) - idgi_tf.explained_output(
        model, np.broadcast_to(grey, images.shape), targets
    )
    np.testing.assert_allclose(maps.sum(axis=(1, 2, 3)), gap, rtol=1e-5, atol=1e-7)


def test_zero_gradient_gives_finite_attributions(images):
    # ReLU without biases: the gradient is exactly zero at the black baseline,
    # and a constant model has zero gradient everywhere.
    relu = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu", use_bias=False),
         keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, use_bias=False), keras.layers.Softmax()]
    )
    constant = lambda x: tf.ones([tf.shape(x)[0], 3]) / 3.0  # noqa: E731
    for net in (relu, constant):
        for method in ("ig", "gig", "blurig"):
            maps = idgi_tf.attribute(net, images, [0, 1, 2], method, rule=("plain", "idgi"), steps=8)
            assert all(np.isfinite(m).all() for m in maps.values()), method
    flat = idgi_tf.attribute(constant, images, [0, 1, 2], "ig", rule="idgi", steps=8)
    assert (flat == 0).all()


def test_trained_model_idgi_is_complete_and_points_at_the_square(trained_model):
    net, x, y = trained_model
    maps = idgi_tf.attribute(net, x, y, "ig", rule=("plain", "idgi"), steps=64)
    gap = idgi_tf.explained_output(net, x, y) - idgi_tf.explained_output(net, np.zeros_like(x), y)
    np.testing.assert_allclose(maps["idgi"].sum(axis=(1, 2, 3)), gap, rtol=1e-5, atol=1e-6)
    # The bright 6x6 square is what decides the class: it carries the largest attributions.
    for image, attribution in zip(x, maps["idgi"]):
        square = image.min(axis=-1) == 255.0
        saliency = attribution.sum(axis=-1)
        assert saliency[square].mean() > 5 * np.abs(saliency[~square]).mean()


@pytest.mark.parametrize("method", ["ig", "gig"])
@pytest.mark.parametrize("steps", [1, 16, 64])
def test_idgi_is_complete_where_the_gradient_vanishes_at_black(method, steps):
    # Zero biases: every pre-activation at x = 0 is 0, so g_0 = 0 and the official
    # formula would drop segment 0's f_1 - f_0; the pinned fallback keeps it.
    model = bias_free_relu_cnn(16, 16, 3)
    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    targets = np.array([0, 2], np.int32)
    _, grad_at_black = value_and_grad(model, np.zeros_like(images), targets)
    assert np.all(grad_at_black == 0)  # the hard case is really there
    maps = idgi_tf.attribute(model, images, targets, method, rule="idgi", steps=steps)
    gap = idgi_tf.explained_output(model, images, targets) - idgi_tf.explained_output(model, 0 * images, targets)
    assert np.isfinite(maps).all()
    np.testing.assert_allclose(maps.astype(np.float64).sum(axis=(1, 2, 3)), gap, rtol=1e-5)


@pytest.mark.parametrize("method", ["ig", "gig", "blurig", "vg", "gxi", "occlusion"])
def test_maps_are_float32_like_the_images_and_verbose_only_adds_a_progress_bar(model, images, targets, method,
                                                                                 capsys):
    options = {"patch": 8} if method == "occlusion" else {"steps": 6}
    quiet = idgi_tf.attribute(model, images, targets, method, **options)
    capsys.readouterr()
    loud = idgi_tf.attribute(model, images, targets, method, verbose=True, **options)
    shown = capsys.readouterr().out
    assert quiet.dtype == np.float32 and quiet.shape == images.shape
    np.testing.assert_array_equal(loud, quiet)
    assert f"{len(images)}/{len(images)}" in shown  # the progress bar counted every image
    if method in ("ig", "gig", "blurig"):
        both = idgi_tf.attribute(model, images, targets, method, rule=("plain", "idgi"), **options)
        assert all(value.dtype == np.float32 for value in both.values())
