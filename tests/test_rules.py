"""Step rules on hand-made tensors."""

import numpy as np
import tensorflow as tf

from idgi_tf import rules


def _step(grad, delta_x, delta_f):
    return rules.Step(
        tf.constant(grad, tf.float64), tf.constant(delta_x, tf.float64), tf.constant(delta_f, tf.float64)
    )


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


def test_idgi_is_per_image_and_guards_zero_gradient():
    grad = np.stack([np.ones((2, 2, 1)), np.zeros((2, 2, 1))])
    out = rules.idgi(_step(grad, np.zeros_like(grad), [1.0, 5.0])).numpy()
    np.testing.assert_allclose(out[0], 0.25)
    assert np.isfinite(out).all() and (out[1] == 0).all()
