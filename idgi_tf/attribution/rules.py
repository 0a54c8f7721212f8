"""Riemann step rules: what one path point adds to the attribution.

A rule is a pure tensor function of a :class:`Step`; it never sees the model.
The integrator (:mod:`idgi_tf.attribution.integrate`) evaluates the model once per path
point and hands the same :class:`Step` to every requested rule, so computing
IG and IG+IDGI costs one pass over the path, not two.

For path points ``x_0 = baseline, ..., x_M = input`` (IDGI paper, Eq. 6):

* ``plain``: ``A += g_j * s_j`` where ``s_j`` is the path's step vector at
  point ``j`` (``x_{j+1} - x_j`` on the straight and guided paths).
* ``idgi``: ``A += g_j**2 * (f_{j+1} - f_j) / sum(g_j**2)`` (IDGI paper,
  Algorithm 1; the official code, exactly). The sum runs over every feature of
  one example (every pixel and channel of an image; with several inputs, all of
  them), so ``sum(A) = f(x_M) - f(x_0)`` exactly. Where
  ``g_j`` vanishes (a ReLU net with zero biases at the black baseline) the
  segment takes the direction of ``g_{j+1}``, then of ``s_j``
  (docs/attribution.md#vanishing-gradient-our-rule), so completeness holds there too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import tensorflow as tf


class Step(NamedTuple):
    """What the integrator knows about path point ``j`` once ``f_{j+1}`` is known.

    All tensors have a leading batch shape ``B`` (any rank) followed by one example's
    shape (``(D,)``, ``(T, D)``, ``(H, W, C)``, ...); ``delta_f`` has shape ``B``.

    Attributes:
      grad: ``g_j``, the gradient of the explained output at ``x_j``.
      delta_x: ``s_j``, the step vector the plain rule multiplies with ``g_j``.
      delta_f: ``f_{j+1} - f_j`` (zero at the path's last point); the
        integrator passes it in float64 and the per-point tensors in float32.
      next_grad: ``g_{j+1}``, the gradient at the segment's other end (zeros
        after the path's last point).
    """

    grad: tf.Tensor
    delta_x: tf.Tensor
    delta_f: tf.Tensor
    next_grad: tf.Tensor


def _feature_axes(step: Step) -> list:
    """The axes of one example's features: those of ``grad`` after the batch shape ``B`` of ``delta_f``."""
    return list(range(step.delta_f.shape.rank, step.grad.shape.rank))


def plain(step: Step) -> tf.Tensor:
    """Riemann product ``g_j * s_j`` (IDGI paper Eq. 6)."""
    return step.grad * step.delta_x


def idgi(step: Step) -> tf.Tensor:
    """IDGI projection ``g_j**2 * (f_{j+1} - f_j) / sum(g_j**2)`` (Algorithm 1).

    Vanishing gradient (docs/attribution.md#vanishing-gradient-our-rule): where ``g_j`` is all zero
    the formula takes ``g_{j+1}`` in place of ``g_j``, and if that vanishes too
    the path step ``s_j``; only a segment where all three vanish adds nothing
    (``divide_no_nan``). The formula does not change when ``g_j`` is scaled, so
    ``g_j`` is divided by its largest ``|g_j|`` before squaring: ``sum`` then lies
    in [1, number of features] and float32 neither overflows (logits ~1e22: NaN or zero maps
    otherwise) nor underflows (gradients ~1e-30 would look vanished). Finite
    wherever ``g``, ``s`` and ``delta_f`` are, and ``sum(A) = f(x_M) - f(x_0)``
    whenever the path moves.
    """
    axes = _feature_axes(step)

    def peak(vector):
        return tf.reduce_max(tf.abs(vector), axis=axes, keepdims=True)

    direction = tf.where(peak(step.grad) > 0, step.grad,
                         tf.where(peak(step.next_grad) > 0, step.next_grad, step.delta_x))
    squared = tf.square(tf.math.divide_no_nan(direction, peak(direction)))
    delta_f = tf.reshape(step.delta_f, tf.concat([tf.shape(step.delta_f), tf.ones([len(axes)], tf.int32)], 0))
    scale = tf.math.divide_no_nan(delta_f, tf.cast(tf.reduce_sum(squared, axis=axes, keepdims=True), delta_f.dtype))
    return squared * tf.cast(scale, squared.dtype)


RULES: Mapping[str, Callable[[Step], tf.Tensor]] = MappingProxyType({"plain": plain, "idgi": idgi})  # closed
