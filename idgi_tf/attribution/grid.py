"""The adaptive Riemann grid, ``grid="adaptive"``: the steps go where the explained output changes.

IDGI's sum telescopes on any partition of the path (IDGI paper Eq. 6: segment ``j`` adds
``g_j² (f_{j+1} - f_j) / Σ g_j²``, which sums to ``f_{j+1} - f_j``), so its ``S`` segments need not be
uniform; on a trained classifier most of ``f``'s change along the path happens in a short stretch of ``α``.
The idea of sampling by the output's change is Integrated Decision Gradients' (Walker et al., AAAI 2024).
With ``steps=S``, ``P = max(1, S // 4)`` pilot segments and ``R = S - P`` new points:

1. **Pilot**: one pass over the uniform grid ``α = p / P``, ``p = 0..P``; ``f`` and ``∇f`` at its ``P + 1``
   points are kept (``P + 1`` gradient maps per example: the memory this grid needs beyond the uniform one).
2. **Grid** (:func:`adaptive_grid`): the ``R`` new points go to the pilot segments in proportion to
   ``|f_{p+1} - f_p|`` (:func:`allocation`; equal shares where ``f`` does not change), evenly spaced inside
   each: ``α = (p + k / (n_p + 1)) / P``, ``k = 1..n_p``. The pilot's points stay, so every example has its
   own grid ``0 = α_0 < ... < α_S = 1``, and no segment is wider than the pilot's ``1 / P`` (the floor: a
   segment where ``f`` did not change keeps its pilot width, no extra point).
3. **Second pass**: only the ``R`` new points go through the model, in chunks as in
   :func:`idgi_tf.attribution.integrate.integrate`. Every grid point ``j`` hands its
   ``Step(g_j, s_j, f_{j+1} - f_j, g_{j+1})`` to the rules exactly once, whatever order the points were
   evaluated in: a new point hands in its left neighbour's step (the previous new point's, or that of the
   pilot point opening its segment), and its own where its right neighbour is a pilot point; a pilot point
   whose segment got no new point (and the input) hands in its own step from the pilot alone.

``S + 1`` model inputs per example (``P + 1``, then ``R``); both rules read the same values; ``f`` at the
path's ends (``OUTPUT_AT_START`` / ``OUTPUT_AT_END``) comes from the pilot. Paths: :class:`Parametric`
ones (the straight line, the blur path); Guided IG's path is built from its own gradients step by step, so
there are no fixed points between its steps for a pilot to measure and refine.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import tensorflow as tf

from .. import _checks, runtime
from ..runtime import cached, explained_value_and_grad, fresh_zeros
from . import rules as rules_lib
from .integrate import OUTPUT_AT_END, OUTPUT_AT_START, _apply_rules, points_per_pass
from .paths import Parametric

UNIFORM = "uniform"
ADAPTIVE = "adaptive"
GRIDS = (UNIFORM, ADAPTIVE)
ADAPTIVE_METHODS = ("ig", "blurig")  # the methods whose paths are Parametric (tested against the table)
PILOT_SHARE = 4  # P = S // 4 pilot segments
POWER = 1.0  # new points in proportion to |Δf|**POWER


def checked_grid(grid, method_name: str, make_path, options: dict, steps) -> str:
    """``grid`` checked against the method: ``"uniform"`` for any, ``"adaptive"`` for a :class:`Parametric`
    path with an int number of steps.

    Example:
      >>> checked_grid("adaptive", "ig", METHODS["ig"].path, {}, 32)
      'adaptive'
    """
    grid = _checks.choice(grid, "grid", GRIDS)
    if grid == UNIFORM:
        return grid
    if steps == "auto":
        raise ValueError("grid='adaptive' needs an int steps= (its points are placed for that number of "
                         "steps), not steps='auto'")
    if make_path is None or not isinstance(make_path(1, **options), Parametric):
        why = "it has no path" if make_path is None else "its path has no fixed points between its steps"
        raise ValueError(f"grid='adaptive' needs a path of fixed points x(alpha) ({', '.join(ADAPTIVE_METHODS)}); "
                         f"method {method_name!r} takes only grid='uniform': {why}")
    return grid


def pilot_segments(steps: int) -> int:
    """``P = max(1, steps // 4)``: the uniform segments of the pilot pass out of ``steps``.

    Example:
      >>> pilot_segments(32)
      8
    """
    return max(1, steps // PILOT_SHARE)


def allocation(pilot_f, new_points: int, power: float = POWER) -> tf.Tensor:
    """How many of ``new_points`` go into each pilot segment: (n, P) int32, each row summing to ``new_points``.

    ``pilot_f`` (n, P + 1): ``f`` at the pilot points. Segment ``p`` gets the share
    ``w_p / Σ_q w_q``, ``w_p = |f_{p+1} - f_p|**power`` (0 where not finite; equal shares where every
    ``w_p`` is 0), of ``new_points``, rounded down, and the points left over go to the largest remainders.

    Example:
      >>> allocation([[0.0, 0.0, 0.9, 1.0]], 10).numpy()
      array([[0, 9, 1]], dtype=int32)
    """
    pilot_f = tf.convert_to_tensor(pilot_f, tf.float64)
    weights = tf.abs(pilot_f[:, 1:] - pilot_f[:, :-1]) ** power
    weights = tf.where(tf.math.is_finite(weights), weights, 0.0)
    weights = tf.where(tf.reduce_sum(weights, axis=1, keepdims=True) > 0, weights, 1.0)
    ideal = new_points * weights / tf.reduce_sum(weights, axis=1, keepdims=True)
    floor = tf.floor(ideal)
    left = new_points - tf.reduce_sum(floor, axis=1, keepdims=True)
    rank = tf.argsort(tf.argsort(floor - ideal, axis=1, stable=True), axis=1, stable=True)
    return tf.cast(floor, tf.int32) + tf.cast(tf.cast(rank, tf.float64) < left, tf.int32)


class _Layout(NamedTuple):
    """Where the ``R`` new points of every example lie on its grid; point-major: (R, n), (S + 1, n), (P + 1, n).

    Attributes:
      alpha: each new point's ``α``, increasing along the first axis.
      segment: the pilot segment ``p`` it lies in (between pilot points ``p`` and ``p + 1``).
      first, last: whether it is the first / last new point of its segment.
      index: its index ``j`` on the grid of ``S + 1`` points.
      grid: the grid, ``α_0 = 0 < ... < α_S = 1``.
      pilot_index: each pilot point's index on the grid.
      pilot_own: whether a pilot point hands in its own step (its segment got no new point, or it is the input).
    """

    alpha: tf.Tensor
    segment: tf.Tensor
    first: tf.Tensor
    last: tf.Tensor
    index: tf.Tensor
    grid: tf.Tensor
    pilot_index: tf.Tensor
    pilot_own: tf.Tensor


def _layout(counts, new_points: int) -> _Layout:
    """The :class:`_Layout` of the grids with ``counts`` (n, P) of the ``new_points`` in each pilot segment.

    New point ``m`` lies in segment ``p`` where ``start_p <= m < start_p + n_p`` (``start_p = Σ_{q<p} n_q``),
    at ``α = (p + k / (n_p + 1)) / P`` with ``k = m - start_p + 1``; on the grid it comes after the ``p + 1``
    pilot points up to its segment and the ``m`` new points before it: index ``m + p + 1``.
    """
    counts = tf.convert_to_tensor(counts, tf.int32)
    pilots = counts.shape[1]
    ends = tf.cumsum(counts, axis=1)
    m = tf.range(new_points)[None, :, None]
    segment = tf.reduce_sum(tf.cast(ends[:, None, :] <= m, tf.int32), axis=2)  # (n, R)
    in_segment = tf.gather(counts, segment, batch_dims=1)
    k = m[..., 0] - tf.gather(ends - counts, segment, batch_dims=1) + 1
    alpha = (tf.cast(segment, tf.float64) + tf.cast(k, tf.float64) / tf.cast(in_segment + 1, tf.float64)) / pilots
    pilot_alpha = tf.broadcast_to(tf.range(pilots + 1, dtype=tf.float64)[None] / pilots, [counts.shape[0], pilots + 1])
    pilot_index = tf.range(pilots + 1)[None] + tf.pad(ends, [[0, 0], [1, 0]])
    as_points = tf.transpose
    return _Layout(
        alpha=as_points(alpha), segment=as_points(segment), first=as_points(k == 1),
        last=as_points(k == in_segment), index=as_points(m[..., 0] + segment + 1),
        grid=as_points(tf.sort(tf.concat([pilot_alpha, alpha], axis=1), axis=1)),
        pilot_index=as_points(pilot_index),
        pilot_own=as_points(tf.pad(counts == 0, [[0, 0], [0, 1]], constant_values=True)),
    )


def adaptive_grid(pilot_f, steps: int, power: float = POWER) -> tf.Tensor:
    """Each example's grid of ``steps`` segments from ``f`` at its pilot points: (n, steps + 1) float64.

    ``pilot_f`` (n, P + 1) with ``P = pilot_segments(steps)``: ``f`` at ``α = p / P``. The grid holds those
    ``α`` and ``steps - P`` more, placed by :func:`allocation`, evenly inside each pilot segment.

    Example:
      >>> adaptive_grid([[0.0, 0.0, 1.0, 1.0]], 12).numpy().round(3)  # P = 3: all 9 new points in [1/3, 2/3]
      array([[0.   , 0.333, 0.367, 0.4  , 0.433, 0.467, 0.5  , 0.533, 0.567, 0.6  , 0.633, 0.667, 1.   ]])
    """
    pilot_f = tf.convert_to_tensor(pilot_f, tf.float64)
    pilots = pilot_segments(steps)
    if pilot_f.shape.rank != 2 or pilot_f.shape[1] != pilots + 1:
        raise ValueError(f"pilot_f must be (n, {pilots + 1}): f at the {pilots + 1} pilot points of {steps} steps, "
                         f"got shape {tuple(pilot_f.shape)}")
    return tf.transpose(_layout(allocation(pilot_f, steps - pilots, power), steps - pilots).grid)


def _each(values: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """``values[index[c, i], i]`` for point-major ``values (K, n, ...)`` and ``index (c, n)``: (c, n, ...)."""
    examples = tf.broadcast_to(tf.range(index.shape[1])[None], tf.shape(index))
    return tf.gather_nd(values, tf.stack([index, examples], axis=-1))


def _where(condition: tf.Tensor, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``tf.where`` of a per-(point, example) ``condition (c, n)`` over (c, n, ...) tensors."""
    return tf.where(tf.reshape(condition, condition.shape.as_list() + [1] * (a.shape.rank - 2)), a, b)


def _pilot_pass(model, path, pilots: int, chunk: int, images, baseline, targets):
    """``f`` (P + 1, n) float64 and ``∇f`` (P + 1, n, ...) float32 at the pilot points ``α = p / P``."""
    n = images.shape[0]
    num_chunks = -(-(pilots + 1) // chunk)
    chunk_targets = runtime.repeat_rows(targets, chunk)

    def body(k, values, grads):
        p = tf.minimum(k * chunk + tf.range(chunk), pilots)
        alpha = tf.broadcast_to(tf.cast(p, tf.float64)[:, None] / pilots, [chunk, n])
        points = path.points_at(alpha, images, baseline)
        f, g = explained_value_and_grad(model, tf.reshape(points, [chunk * n, *images.shape[1:]]), chunk_targets)
        return (k + 1, values.write(k, tf.reshape(tf.cast(f, tf.float64), [chunk, n])),
                grads.write(k, tf.reshape(g, [chunk, *images.shape])))

    _, values, grads = tf.while_loop(
        lambda k, *_: k < num_chunks, body,
        (tf.constant(0), tf.TensorArray(tf.float64, num_chunks, element_shape=[chunk, n]),
         tf.TensorArray(tf.float32, num_chunks, element_shape=[chunk, *images.shape])),
        parallel_iterations=runtime.CHUNKS_IN_FLIGHT,
    )
    return (tf.reshape(values.stack(), [num_chunks * chunk, n])[: pilots + 1],
            tf.reshape(grads.stack(), [num_chunks * chunk, *images.shape])[: pilots + 1])


def _pilot_steps(path, rule_names, grid: _Layout, f, g, chunk: int, images, baseline):
    """The rules over the steps the pilot points hand in themselves (``grid.pilot_own``), chunk by chunk."""
    pilots, n = f.shape[0] - 1, images.shape[0]
    num_chunks = -(-(pilots + 1) // chunk)

    def body(k, sums):
        p = k * chunk + tf.range(chunk)
        valid = (p <= pilots)[:, None] & tf.gather(grid.pilot_own, tf.minimum(p, pilots))
        p = tf.minimum(p, pilots)
        after = tf.minimum(p + 1, pilots)
        at_end = tf.broadcast_to((p == pilots)[:, None], [chunk, n])
        alpha = lambda index: tf.broadcast_to(tf.cast(index, tf.float64)[:, None] / pilots, [chunk, n])  # noqa: E731
        step = rules_lib.Step(
            grad=tf.gather(g, p),
            delta_x=path.steps_at(alpha(p), _each(grid.grid, tf.maximum(tf.gather(grid.pilot_index, p) - 1, 0)),
                                  alpha(after), images, baseline),
            delta_f=tf.where(at_end, tf.zeros([chunk, n], tf.float64), tf.gather(f, after) - tf.gather(f, p)),
            next_grad=_where(at_end, fresh_zeros([chunk, *images.shape]), tf.gather(g, after)),
        )
        added = _apply_rules(rule_names, step, valid)
        return k + 1, {name: sums[name] + added[name] for name in rule_names}

    sums = {name: fresh_zeros(images.shape, tf.float64) for name in rule_names}
    return tf.while_loop(lambda k, _: k < num_chunks, body, (tf.constant(0), sums),
                         parallel_iterations=runtime.CHUNKS_IN_FLIGHT)[1]


def _new_points_pass(model, path, rule_names, grid: _Layout, f, g, chunk: int, images, baseline, targets, sums):
    """``sums`` plus the rules over the steps the new points hand in (their left neighbours', and their own
    where a pilot point follows), the new points through the model ``chunk`` at a time."""
    new_points, n = grid.alpha.shape[0], images.shape[0]
    num_chunks = -(-new_points // chunk)
    chunk_targets = runtime.repeat_rows(targets, chunk)

    def chunk_points(k, x, base):
        alpha = tf.gather(grid.alpha, tf.minimum(k * chunk + tf.range(chunk), new_points - 1))
        return tf.reshape(path.points_at(alpha, x, base), [chunk * n, *images.shape[1:]])

    def after_pass(k, sums, last_g, last_f, f_new, g_new, x, base, grid, f, g):
        m = k * chunk + tf.range(chunk)
        valid = tf.broadcast_to((m < new_points)[:, None], [chunk, n])
        m = tf.minimum(m, new_points - 1)
        alpha = tf.gather(grid.alpha, m)
        f_new = tf.reshape(tf.cast(f_new, tf.float64), [chunk, n])
        g_new = tf.reshape(g_new, [chunk, *images.shape])
        segment, first, index = tf.gather(grid.segment, m), tf.gather(grid.first, m), tf.gather(grid.index, m)
        before = _each(grid.grid, index - 1)
        left = rules_lib.Step(  # the step of the point before: the previous new point, or the segment's pilot point
            grad=_where(first, _each(g, segment), tf.concat([last_g[None], g_new[:-1]], axis=0)),
            delta_x=path.steps_at(before, _each(grid.grid, tf.maximum(index - 2, 0)), alpha, x, base),
            delta_f=f_new - tf.where(first, _each(f, segment), tf.concat([last_f[None], f_new[:-1]], axis=0)),
            next_grad=g_new,
        )
        own = rules_lib.Step(  # the point's own step where the next point is the pilot point closing its segment
            grad=g_new,
            delta_x=path.steps_at(alpha, before, _each(grid.grid, index + 1), x, base),
            delta_f=_each(f, segment + 1) - f_new,
            next_grad=_each(g, segment + 1),
        )
        added = _apply_rules(rule_names, left, valid)
        added_own = _apply_rules(rule_names, own, valid & tf.gather(grid.last, m))
        sums = {name: sums[name] + added[name] + added_own[name] for name in rule_names}
        return sums, g_new[-1], f_new[-1]

    # as in integrate.integrate: the arithmetic around each pass compiled with XLA, the pass not
    chunk_points, after_pass = (tf.function(chunk_points, jit_compile=True),
                                tf.function(after_pass, jit_compile=True))

    def body(k, sums, last_g, last_f):
        f_new, g_new = explained_value_and_grad(model, chunk_points(k, images, baseline), chunk_targets)
        return k + 1, *after_pass(k, sums, last_g, last_f, f_new, g_new, images, baseline, grid, f, g)

    return tf.while_loop(
        lambda k, *_: k < num_chunks, body,
        (tf.constant(0), sums, fresh_zeros(images.shape), tf.zeros([n], tf.float64)),
        parallel_iterations=runtime.CHUNKS_IN_FLIGHT,
    )[1]


def integrate_adaptive(model, path, rule_names, chunks, images, baseline, targets):
    """Integrate ``path`` (:class:`Parametric`, ``path.steps = S``) for ``images`` (n, ...) on each one's
    adaptive grid under each rule in ``rule_names``, ``chunks = (pilot points, new points)`` per model pass.

    Returns what :func:`idgi_tf.attribution.integrate.integrate` does: ``{rule: (n, ...) float64}`` and ``f``
    at the path's ends. Meant to run inside ``tf.function``; see :func:`compiled_adaptive`.

    Example:
      >>> out = integrate_adaptive(model, paths.Straight(32), ("idgi",), (9, 24), images, baseline, targets)
      >>> out["idgi"].sum(axis=(1, 2, 3)) - (out[OUTPUT_AT_END] - out[OUTPUT_AT_START])  # ~0
    """
    pilots = pilot_segments(path.steps)
    new_points = path.steps - pilots
    f, g = _pilot_pass(model, path, pilots, chunks[0], images, baseline, targets)
    grid = _layout(allocation(tf.transpose(f), new_points, POWER), new_points)
    sums = tf.function(_pilot_steps, jit_compile=True)(path, rule_names, grid, f, g, chunks[0], images, baseline)
    if new_points:
        sums = _new_points_pass(model, path, rule_names, grid, f, g, chunks[1], images, baseline, targets, sums)
    return {**sums, OUTPUT_AT_START: f[0], OUTPUT_AT_END: f[pilots]}


def compiled_adaptive(model, path, rule_names, images_per_group: int, batch_size: int, jit_compile=False):
    """:func:`integrate_adaptive` bound to its configuration, wrapped in ``tf.function`` and cached per model:
    a group function ``(images, baseline, targets) -> outputs`` like
    :func:`idgi_tf.attribution.integrate.compiled_integrate`'s, at most ``batch_size`` model inputs per pass.

    Example:
      >>> run = compiled_adaptive(model, paths.Straight(32), ("plain", "idgi"), 4, 32)
    """
    pilots = pilot_segments(path.steps)
    chunks = (points_per_pass(pilots + 1, images_per_group, batch_size),
              points_per_pass(max(path.steps - pilots, 1), images_per_group, batch_size))
    key = ("adaptive", path, tuple(rule_names), chunks, pilots, POWER, bool(jit_compile))
    return cached(model, key, lambda: tf.function(
        functools.partial(integrate_adaptive, model, path, tuple(rule_names), chunks), jit_compile=bool(jit_compile)))
