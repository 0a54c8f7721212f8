"""Agreement with PAIR `saliency` 0.2.1, the implementations the IDGI paper ran."""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import value_and_grad
from saliency.core import blur_ig, guided_ig, integrated_gradients
from test_attribute import official_idgi

import idgi_tf


def _numpy_with_old_quantile():
    """NumPy as `guided_ig.py` expects it: `np.quantile(..., interpolation=...)` (removed in 2.4)."""
    shim = types.ModuleType("numpy_shim")
    shim.__dict__.update(np.__dict__)

    def quantile(a, q, interpolation=None, **kwargs):
        return np.quantile(a, q, method=interpolation or kwargs.pop("method", "linear"), **kwargs)

    shim.quantile = quantile
    return shim


@pytest.fixture(autouse=True)
def _patch_guided_ig(monkeypatch):
    monkeypatch.setattr(guided_ig, "np", _numpy_with_old_quantile())


def call_model_function(model, target, record=None):
    """PAIR's model interface: input-output gradients for one class."""

    def call(batch, call_model_args=None, expected_keys=None):
        batch = tf.constant(np.asarray(batch, np.float32))
        if record is not None:
            record.extend(np.asarray(batch))
        with tf.GradientTape() as tape:
            tape.watch(batch)
            value = model(batch, training=False)[:, target]
        return {integrated_gradients.INPUT_OUTPUT_GRADIENTS: tape.gradient(value, batch).numpy()}

    return call


def test_plain_guided_ig_matches_pair(model, images, targets):
    # batch_size=1 gives the model the same one-image batches PAIR uses, so the
    # float32 gradients are bit-identical and so is every feature selection.
    ours = idgi_tf.attribute(model, images, targets, "gig", steps=50, batch_size=1)
    batched = idgi_tf.attribute(model, images, targets, "gig", steps=50)
    for image, target, got, got_batched in zip(images, targets, ours, batched):
        want = guided_ig.GuidedIG().GetMask(image, call_model_function(model, target), x_steps=50)
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * scale)
        # Batched convolutions round differently in float32, which may flip a
        # near-threshold selection; the path, and so the map, barely moves.
        assert np.abs(got_batched - want).max() < 1e-3 * scale


def test_plain_blur_ig_matches_pair(model, images, targets):
    ours = idgi_tf.attribute(model, images, targets, "blurig", steps=40, max_sigma=20)
    for image, target, got in zip(images, targets, ours):
        want = blur_ig.BlurIG().GetMask(
            image, call_model_function(model, target), steps=40, max_sigma=20, batch_size=1
        )
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())


def test_ig_matches_pair_on_the_same_interpolation_points(model, images, targets):
    # PAIR evaluates alphas linspace(0, 1, N) and divides by N; ours j/M, j < M.
    # With N = M + 1 the point sets differ only by alpha = 1, so
    # N * PAIR(N) = M * ours(M) + grad f(x) * x (black baseline), exactly.
    m = 30
    ours = idgi_tf.attribute(model, images, targets, "ig", steps=m)
    gxi = idgi_tf.attribute(model, images, targets, "gxi")
    for image, target, got, at_input in zip(images, targets, ours, gxi):
        want = integrated_gradients.IntegratedGradients().GetMask(
            image, call_model_function(model, target), x_steps=m + 1, batch_size=8
        )
        scale = np.abs(want).max()
        np.testing.assert_allclose(m * got + at_input, (m + 1) * want, rtol=1e-4, atol=1e-5 * scale)


def test_idgi_over_guided_ig_uses_pair_path_points(model, images, targets):
    # The GIG+IDGI points are the positions where PAIR evaluates gradients, plus the input.
    steps = 30
    ours = idgi_tf.attribute(model, images, targets, "gig", rule="idgi", steps=steps)
    for image, target, got in zip(images, targets, ours):
        visited = []
        guided_ig.GuidedIG().GetMask(image, call_model_function(model, target, visited), x_steps=steps)
        points = np.concatenate([np.stack(visited), image[None]])
        batch = tf.constant(points.astype(np.float32))
        with tf.GradientTape() as tape:
            tape.watch(batch)
            values = model(batch)[:, target]
        grads = tape.gradient(values, batch).numpy().astype(np.float64)
        np.testing.assert_allclose(got, official_idgi(grads, values.numpy().astype(np.float64)),
                                   rtol=1e-4, atol=1e-9)


def relu_pool_net():
    """A bias-free ReLU CNN with max pooling on non-square 20 x 28 images: the gradient vanishes at black
    (every pre-activation is 0 there) and max pooling routes it; the hardest case for path methods."""
    keras.utils.set_random_seed(4)
    relu = dict(activation="relu", use_bias=False)
    return keras.Sequential([keras.Input((20, 28, 3)), keras.layers.Rescaling(1 / 255.0),
                             keras.layers.Conv2D(6, 3, **relu), keras.layers.MaxPooling2D(),
                             keras.layers.Conv2D(8, 3, **relu), keras.layers.Flatten(),
                             keras.layers.Dense(4, use_bias=False), keras.layers.Softmax()])


@pytest.fixture(scope="module")
def relu_case():
    rng = np.random.default_rng(11)
    images = rng.uniform(0, 255, (2, 20, 28, 3)).astype(np.float32)
    baseline = rng.uniform(0, 80, (20, 28, 3)).astype(np.float32)  # not black
    return relu_pool_net(), images, np.array([1, 3], np.int32), baseline


@pytest.mark.parametrize("baseline", [False, True], ids=["black", "grey-noise-baseline"])
def test_ig_matches_pair_on_a_bias_free_relu_pooling_net(relu_case, baseline):
    model, images, targets, base = relu_case
    base = base if baseline else np.zeros_like(base)
    m = 24
    ours = idgi_tf.attribute(model, images, targets, "ig", steps=m, baseline=base)
    _, grads = value_and_grad(model, images, targets)
    for image, target, got, at_input in zip(images, targets, ours, grads * (images - base)):
        want = integrated_gradients.IntegratedGradients().GetMask(
            image, call_model_function(model, target), x_baseline=base, x_steps=m + 1, batch_size=5)
        scale = np.abs(want).max()
        assert scale > 0
        np.testing.assert_allclose(m * got + at_input, (m + 1) * want, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("options", [{"fraction": 0.25, "max_dist": 0.02}, {"fraction": 0.1, "max_dist": 0.1},
                                     {"fraction": 0.5, "max_dist": 1.0}])
def test_guided_ig_matches_pair_with_a_baseline_and_other_parameters(relu_case, options):
    model, images, targets, base = relu_case
    steps = 20
    ours = idgi_tf.attribute(model, images, targets, "gig", steps=steps, baseline=base, batch_size=1, **options)
    for image, target, got in zip(images, targets, ours):
        want = guided_ig.GuidedIG().GetMask(image, call_model_function(model, target), x_baseline=base,
                                            x_steps=steps, **options)
        scale = np.abs(want).max()
        assert scale > 0
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("options", [{"sqrt": True, "max_sigma": 10.0, "grad_step": 0.01},
                                     {"sqrt": False, "max_sigma": 10.0, "grad_step": 0.05},
                                     {"sqrt": False, "max_sigma": 50.0, "grad_step": 0.01}])
def test_blur_ig_matches_pair_at_other_settings(relu_case, options):
    model, images, targets, _ = relu_case
    steps = 16
    ours = idgi_tf.attribute(model, images, targets, "blurig", steps=steps, **options)
    for image, target, got in zip(images, targets, ours):
        want = blur_ig.BlurIG().GetMask(image, call_model_function(model, target), steps=steps, batch_size=1,
                                        **options)
        scale = np.abs(want).max()
        assert scale > 0
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * scale)


@pytest.mark.parametrize("options", [{}, {"fraction": 0.05, "max_dist": 0.5}, {"fraction": 1.0, "max_dist": 0.0}])
def test_guided_ig_is_ig_on_a_linear_model_whatever_its_parameters(options):
    """PAIR's own check: a constant gradient makes every path's integral g * (x - x')."""
    keras.utils.set_random_seed(2)
    linear = keras.Sequential([keras.Input((6, 5, 3)), keras.layers.Flatten(), keras.layers.Dense(3)])
    x = np.random.default_rng(2).uniform(0, 255, (3, 6, 5, 3)).astype(np.float32)
    targets = np.array([0, 1, 2], np.int32)
    guided = idgi_tf.attribute(linear, x, targets, "gig", steps=12, **options)
    straight = idgi_tf.attribute(linear, x, targets, "ig", steps=12)
    scale = np.abs(straight).max()
    np.testing.assert_allclose(guided, straight, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(straight, idgi_tf.attribute(linear, x, targets, "gxi"), rtol=1e-5, atol=1e-6 * scale)
