"""The compiled Riemann loop: path points through the model, step rules applied, streaming sum.

One ``tf.while_loop`` walks the path in chunks of ``c`` points for ``n`` examples of any shape (``c
* n`` model inputs per forward/backward pass, the memory bound). For every point it gets ``f_j`` and
``g_j`` from one pass, asks the path for the step vector ``s_j``, and once ``f_{j+1}`` is known
hands ``Step(g_j, s_j, f_{j+1} - f_j, g_{j+1})`` to every requested rule. The work before each pass
(the chunk's points) and after it (the path's next state and step vectors, the rules, the sums) is
two functions compiled with XLA, whatever ``jit_compile`` says of the model pass: elementwise
arithmetic over the chunk, which XLA fuses (one 224 px image at 32 steps spent 0.13 s in it beside a
trivial model, 0.07 s compiled; issue 33). Only the running sums (one float64 tensor shaped like the
inputs per rule) and the last point's record live across chunks, and one chunk is in flight at a
time (``parallel_iterations=1``), so memory does not grow with the number of steps. Everything after
the model pass (the path's step vectors and next state, the rules) waits for the pass's gradient, so
none of it is held alongside the model's activations; during the pass only the inputs, the running
sums, the carried record and the chunk's points are alive besides the model's own tensors. Per-point
tensors (points, gradients, step vectors, rule contributions) are float32 like the model's
gradients; paths compute in float64 where precision needs it and hand back float32; each chunk's
contributions are summed in float32 and added to the running sums in float64, and ``f`` is float64.
No image-sized zeros are constants (see :func:`idgi_tf.runtime.fresh_zeros`), so nothing outlives a
call.

Besides the sums, the loop returns ``f`` at the path's first and last points (``OUTPUT_AT_START``,
``OUTPUT_AT_END``): the values that completeness compares a map's sum with, at no extra pass.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from .. import runtime
from ..runtime import (
    cached,
    call_padded,
    explained_value_and_grad,
    fresh_zeros,
    image_groups,
    on_replicas,
    replica_count,
    rows_of,
)
from . import rules as rules_lib

OUTPUT_AT_START = "output_at_start"
OUTPUT_AT_END = "output_at_end"


def _apply_rules(rule_names, step: rules_lib.Step, valid: tf.Tensor):
    """Sum each rule's float32 contribution over the leading (point) axis, masking invalid points (``valid``:
    (c,) per point, or (c, n) per point and example); float64."""
    mask = tf.reshape(valid, valid.shape.as_list() + [1] * (step.grad.shape.rank - valid.shape.rank))
    return {
        name: tf.cast(tf.reduce_sum(tf.where(mask, rules_lib.RULES[name](step), 0.0), axis=0), tf.float64)
        for name in rule_names
    }


def integrate(model, path, rule_names, points_per_chunk, images, baseline, targets):
    """Integrate ``path`` for ``images`` (n, ...) under each rule in ``rule_names``.

    Returns ``{rule: attribution (n, ...) float64}`` and ``f`` (n,) float64 at
    the path's first and last points under ``OUTPUT_AT_START`` / ``OUTPUT_AT_END``.
    ``model`` is a :class:`idgi_tf.runtime.Explained` (or a model), ``targets`` its per-example context
    (the int32 class indices, ...). Meant to run inside ``tf.function``; see :func:`compiled_integrate`.
    """
    n = images.shape[0]
    chunk = points_per_chunk
    num_chunks = -(-path.num_points // chunk)
    chunk_targets = runtime.repeat_rows(targets, chunk)

    def chunk_points(k, state, x, base):
        j = k * chunk + tf.range(chunk)
        return tf.reshape(path.points(state, j, x, base), [chunk * n, *images.shape[1:]])

    def after_pass(k, state, sums, last, first_f, f, g, x, base):
        """Everything of one chunk that needs its pass: the path's next state and step vectors, the rules,
        the running sums."""
        j = k * chunk + tf.range(chunk)
        valid = j < path.num_points
        f = tf.reshape(tf.cast(f, tf.float64), [chunk, n])
        first_f = tf.where(k == 0, f[0], first_f)
        g = tf.reshape(g, [chunk, *images.shape])
        state, delta_x = path.advance(state, j, g, x, base)

        last_g, last_dx, last_f, last_valid = last
        start_valid = tf.concat([last_valid[None], valid[:-1]], axis=0)
        step = rules_lib.Step(
            grad=tf.concat([last_g[None], g[:-1]], axis=0),
            delta_x=tf.concat([last_dx[None], delta_x[:-1]], axis=0),
            delta_f=tf.where(
                valid[:, None], f - tf.concat([last_f[None], f[:-1]], axis=0), 0.0
            ),
            next_grad=g,
        )
        added = _apply_rules(rule_names, step, start_valid)
        sums = {name: sums[name] + added[name] for name in rule_names}
        return state, sums, (g[-1], delta_x[-1], f[-1], valid[-1]), first_f

    # The work before and after each pass is elementwise arithmetic over the chunk's points (float64
    # points, step vectors, rules): compiled with XLA whatever ``jit_compile`` says of the model pass,
    # which fuses it (at one 224 px image and 32 steps it took 2.4x the time otherwise).
    chunk_points, after_pass = (tf.function(chunk_points, jit_compile=True),
                                tf.function(after_pass, jit_compile=True))

    def body(k, state, sums, last, first_f):
        f, g = explained_value_and_grad(model, chunk_points(k, state, images, baseline), chunk_targets)
        return k + 1, *after_pass(k, state, sums, last, first_f, f, g, images, baseline)

    zeros32 = fresh_zeros(images.shape)
    last = (zeros32, zeros32, tf.zeros([n], tf.float64), tf.constant(False))
    sums = {name: fresh_zeros(images.shape, tf.float64) for name in rule_names}
    _, _, sums, last, first_f = tf.while_loop(
        lambda k, *_: k < num_chunks,
        body,
        (tf.constant(0), path.init_state(images, baseline), sums, last, tf.zeros([n], tf.float64)),
        parallel_iterations=runtime.CHUNKS_IN_FLIGHT,
    )
    # The path's last point has no segment after it: delta_f = 0. Padding past it repeats it, so the
    # last chunk's last f is f at the path's end.
    last_g, last_dx, last_f, last_valid = last
    final = rules_lib.Step(last_g[None], last_dx[None], tf.zeros([1, n], tf.float64), zeros32[None])
    added = _apply_rules(rule_names, final, last_valid[None])
    return {**{name: sums[name] + added[name] for name in rule_names},
            OUTPUT_AT_START: first_f, OUTPUT_AT_END: last_f}


def compiled_integrate(model, path, rule_names, points_per_chunk, jit_compile=False):
    """``integrate`` bound to its static configuration and wrapped in ``tf.function``.

    The wrapped function takes ``(images, baseline, targets)`` tensors. It is
    cached per model and configuration, so repeated calls do not retrace.
    """
    key = ("integrate", path, tuple(rule_names), points_per_chunk, bool(jit_compile))
    return cached(
        model,
        key,
        lambda: tf.function(
            functools.partial(integrate, model, path, tuple(rule_names), points_per_chunk),
            jit_compile=bool(jit_compile),
        ),
    )


# --------------------------------------------------------------------------- groups of images


def chunk_size(path, images_per_group: int, batch_size: int) -> int:
    """Points per image per model pass: fill ``batch_size``, pad as little as possible."""
    return 1 if path.sequential else points_per_pass(path.num_points, images_per_group, batch_size)


def points_per_pass(num_points: int, images_per_group: int, batch_size: int) -> int:
    """Of ``num_points`` points per image, how many go through the model at once: at most ``batch_size``
    model inputs (at least one point), in as few passes as possible, padding the last as little as possible.

    Example:
      >>> points_per_pass(201, 1, 32)  # 7 passes of 29 points (203 inputs)
      29
    """
    chunk = min(max(1, batch_size // images_per_group), num_points)
    num_chunks = -(-num_points // chunk)
    return -(-num_points // num_chunks)


def in_groups(run, arrays, group: int, jit: bool):
    """``(slice, outputs)`` of the group function ``run`` over consecutive groups of the rows of ``arrays``.

    Each group is split over the replicas. Under XLA the last group is padded to the others' size (one
    compilation serves all). Otherwise a lone last image still runs as a pair: a batch of one can get
    other kernels than any larger batch (oneDNN on CPU), which Guided IG's feature selection amplifies.
    """
    split = functools.partial(on_replicas, run)
    for part in image_groups(len(arrays[0]), group):
        count = part.stop - part.start
        yield part, call_padded(split, rows_of(arrays, part),
                                group if jit else (2 if count == 1 < group else count))


def stitched(run, arrays, group: int, jit: bool, on_done=None) -> tuple[dict, dict]:
    """``run``'s outputs over all rows of ``arrays``, group by group: ``(outputs, sums)``.

    ``outputs``: each image-shaped output as float32 (stored per group, so no float64 copy of every map
    lives at once), each per-image value as float64; ``sums``: each image-shaped output's per-image sum,
    taken in float64 before the cast (completeness compares it). ``on_done(count)`` after each group.
    """
    outputs, sums = {}, {}
    for part, results in in_groups(run, arrays, group, jit):
        for key, value in results.items():
            if key not in outputs:
                outputs[key] = np.empty((len(arrays[0]), *value.shape[1:]), np.float32 if value.ndim > 1 else float)
                if value.ndim > 1:
                    sums[key] = np.empty(len(arrays[0]))
            outputs[key][part] = value
            if value.ndim > 1:
                sums[key][part] = value.sum(axis=tuple(range(1, value.ndim)))
        if on_done is not None:
            on_done(part.stop - part.start)
    return outputs, sums


def integrate_subset(model, images, baseline, targets, batch_size: int, jit: bool, path, rule_names, index):
    """The integral of ``path`` under ``rule_names`` for ``images[index]``, with ``f`` at the path's ends,
    in groups of ``batch_size`` per replica (as ``attribute``): ``{key: float64 array}``."""
    replicas = replica_count()
    group = min(len(index), batch_size * replicas)
    chunk = chunk_size(path, -(-group // replicas), batch_size)
    run = compiled_integrate(model, path, tuple(rule_names), chunk, jit)
    parts = list(in_groups(run, rows_of([images, baseline, targets], index), group, jit))
    return {key: np.concatenate([outputs[key] for _, outputs in parts]) for key in parts[0][1]}
