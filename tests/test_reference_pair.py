"""Agreement with PAIR `saliency` 0.2.1, the implementations the IDGI paper ran."""

import types

import numpy as np
import pytest
import tensorflow as tf
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
