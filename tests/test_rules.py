"""Step rules on hand-made tensors."""

import numpy as np
import tensorflow as tf

from idgi_tf.attribution import rules


def _step(grad, delta_x, delta_f, next_grad=None):
    next_grad = np.zeros_like(grad) if next_grad is None else next_grad
    return rules.Step(*(tf.constant(v, tf.float64) for v in (grad, delta_x, delta_f, next_grad)))


def test_plain_is_the_elementwise_product():
    grad = np.arange(12.0).reshape(1, 2, 2, 3)
    delta = np.full((1, 2, 2, 3), 0.5)
    out = rules.plain(_step(grad, delta, [0.0])).numpy()
    np.testing.assert_array_equal(out, grad * 0.5)


def test_idgi_spreads_delta_f_over_squared_gradient_and_sums_to_it():
    grad = np.array([3.0, 0.0, -4.0]).reshape(1, 1, 3, 1)
    out = rules.idgi(_step(grad, np.zeros_like(grad), [2.0])).numpy()
    # g**2 = [9, 0, 16], sum 25: shares 9/25 and 16/25 of delta_f = 2.
    np.testing.assert_allclose(out.ravel(), [18 / 25, 0.0, 32 / 25])
    assert out.sum() == 2.0


def test_idgi_is_per_image_and_falls_back_when_the_gradient_vanishes():
    grad = np.stack([np.ones((2, 2, 1)), np.zeros((2, 2, 1)), np.zeros((2, 2, 1)), np.zeros((2, 2, 1))])
    next_grad = np.zeros_like(grad)
    next_grad[1, 0, 0, 0] = 2.0  # image 1: the segment's other end has a gradient
    delta_x = np.zeros_like(grad)
    delta_x[2, :, 1, 0] = 3.0  # image 2: neither end has one, the path step does
    out = rules.idgi(_step(grad, delta_x, [1.0, 5.0, 4.0, 7.0], next_grad)).numpy()
    np.testing.assert_allclose(out[0], 0.25)
    np.testing.assert_allclose(out[1].ravel(), [5.0, 0.0, 0.0, 0.0])  # all of delta_f, along g_{j+1}
    np.testing.assert_allclose(out[2].ravel(), [0.0, 2.0, 0.0, 2.0])  # along s_j: its two moving pixels
    assert np.isfinite(out).all() and (out[3] == 0).all()  # nothing moves: nothing to give (never NaN)
    np.testing.assert_allclose(out[:3].sum(axis=(1, 2, 3)), [1.0, 5.0, 4.0])
