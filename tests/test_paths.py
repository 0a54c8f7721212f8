"""Paths on their own: the blur matches SciPy, the straight path is IG's."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from idgi_tf.attribution import paths


@pytest.mark.parametrize("shape", [(2, 16, 16, 3), (1, 13, 20, 2)])
@pytest.mark.parametrize("sigma", [0.0, 0.01, 0.3, 1.7, 6.0, 50.0])
def test_gaussian_blur_matches_scipy_zero_padding(shape, sigma):
    x = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    ours = paths.gaussian_blur(x, sigma)
    for image, blurred in zip(x, ours):
        expected = image if sigma == 0 else ndimage.gaussian_filter(
            image.astype(np.float64), sigma=[sigma, sigma, 0], mode="constant"
        )
        np.testing.assert_allclose(blurred, expected, rtol=1e-5, atol=1e-4)
    assert ours.shape == x.shape and ours.dtype == np.float32


def test_gaussian_blur_rejects_negative_sigma_and_single_images():
    with pytest.raises(ValueError, match="sigma"):
        paths.gaussian_blur(np.zeros((1, 4, 4, 1)), -1.0)
    with pytest.raises(ValueError, match="images must have rank 4"):
        paths.gaussian_blur(np.zeros((4, 4, 3)), 1.0)


def test_straight_path_points_and_steps():
    path = paths.Straight(steps=4)
    x = tf.constant(np.full((1, 2, 2, 1), 8.0, np.float32))
    base = tf.constant(np.zeros((1, 2, 2, 1), np.float32))
    j = tf.range(6)  # one index of padding past M = 4
    points = path.points(None, j, x, base)
    assert points.dtype == tf.float32
    np.testing.assert_array_equal(points.numpy()[:, 0, 0, 0, 0], [0, 2, 4, 6, 8, 8])
    _, steps = path.advance(None, j, None, x, base)
    assert steps.dtype == tf.float32
    np.testing.assert_array_equal(steps.numpy()[:, 0, 0, 0, 0], [2, 2, 2, 2, 0, 0])


def test_blur_path_runs_from_most_blurred_to_input():
    path = paths.Blur(steps=4, max_sigma=2.0)
    x = tf.constant(np.random.default_rng(1).uniform(0, 1, (1, 9, 9, 1)).astype(np.float32))
    points = path.points(None, tf.range(5), x, None).numpy()
    np.testing.assert_array_equal(points[-1], x.numpy())
    np.testing.assert_allclose(points[0][0], paths.gaussian_blur(x.numpy(), 2.0)[0], atol=1e-6)


@pytest.mark.parametrize("sqrt, grad_step", [(False, 0.01), (True, 0.01), (False, 0.3)])
def test_blur_step_vectors_equal_the_float64_finite_difference(sqrt, grad_step):
    """The step vectors, formed from blur-matrix differences and applied in float32, equal PAIR's finite
    difference ``-(G(x, sigma + h) - G(x, sigma)) / h * (sigma_{i+1} - sigma_i)`` of SciPy blurs in float64."""
    path = paths.Blur(steps=6, max_sigma=50.0, grad_step=grad_step, sqrt=sqrt)
    x = np.random.default_rng(2).uniform(0, 255, (2, 13, 20, 3)).astype(np.float32)
    _, steps = path.advance(None, tf.range(7), None, tf.constant(x), None)
    assert steps.dtype == tf.float32
    sigmas = path.sigmas()

    def blur(image, sigma):
        return ndimage.gaussian_filter(image.astype(np.float64), sigma=[sigma, sigma, 0], mode="constant")

    for j in range(7):
        i = 6 - j
        width = sigmas[i + 1] - sigmas[i] if i < 6 else 0.0
        for n in range(2):
            expected = -(blur(x[n], sigmas[i] + grad_step) - blur(x[n], sigmas[i])) / grad_step * width
            scale = max(np.abs(expected).max(), 1e-12)
            np.testing.assert_allclose(steps.numpy()[j, n], expected, rtol=0, atol=2e-6 * scale)


def test_every_path_satisfies_the_path_protocol():
    from idgi_tf.attribution.methods import METHODS

    made = [paths.AtInput(), paths.Straight(8), paths.Guided(8, 0.25, 0.02), paths.Blur(8, 10.0, 0.01, False),
            paths.Blur(8, 10.0, 0.01, True), paths.Refinement(paths.Straight(8))]
    made += [method.path(8, **method.options) for method in METHODS.values() if method.path is not None]
    for path in made:
        assert isinstance(path, paths.Path), type(path).__name__
        assert isinstance(path.num_points, int) and isinstance(path.nested, bool)
    assert not isinstance(object(), paths.Path)


# ------------------------------------------------------------------ Guided IG's selection (issue 33)

SPECIAL = np.array([0.0, 1e-45, 1e-38, 1e-30, 0.5, 1.0, 1.5, 3e38, np.inf], np.float32)


@pytest.mark.parametrize("compiled", ["eager", "graph", "xla"])
def test_lower_quantile_is_numpys_lower_quantile_exactly(compiled):
    """The radix selection that replaced ``top_k`` finds PAIR's threshold (``np.quantile(method='lower')``, the
    ``index``-th smallest: ``np.partition``) bit for bit: ties, zeros, subnormals, the largest floats and inf
    (features at their bound), rows that differ, and ranks past the finite values."""
    rng = np.random.default_rng(0)
    for _ in range(60):
        rows, size = int(rng.integers(1, 4)), int(rng.integers(1, 80))
        values = np.where(rng.random((rows, size)) < 0.5, rng.choice(SPECIAL, (rows, size)),
                          rng.random((rows, size)).astype(np.float32) * 10.0 ** rng.integers(-40, 39, (rows, 1)))
        values = values.astype(np.float32)
        index = int(rng.integers(0, size))
        select = {"eager": paths._lower_quantile,
                  "graph": tf.function(paths._lower_quantile),
                  "xla": tf.function(paths._lower_quantile, jit_compile=True)}[compiled]
        found = np.asarray(select(tf.constant(values), index))
        np.testing.assert_array_equal(found[:, 0], np.partition(values, index, axis=1)[:, index])


def test_lower_quantile_at_guided_igs_size():
    """One 224 px image's |g| and a quarter of its features: the rank Guided IG asks for."""
    values = np.abs(np.random.default_rng(1).standard_normal((2, 224 * 224 * 3))).astype(np.float32)
    values[1, ::3] = np.inf
    index = paths._quantile_index(values.shape[1], 0.25)
    np.testing.assert_array_equal(np.asarray(paths._lower_quantile(tf.constant(values), index))[:, 0],
                                  np.partition(values, index, axis=1)[:, index])
