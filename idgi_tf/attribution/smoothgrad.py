"""SmoothGrad (Smilkov et al. 2017) around any method's group function.

``SG(x) = (1/S) sum_s A(x + e_s)``, ``e_s ~ N(0, sigma^2)`` element-wise with
``sigma = noise * (max(x) - min(x))`` per example (docs/attribution.md#other-methods; PAIR's
``stdev_spread``). The baseline is not perturbed. Samples go through the
wrapped method ``samples_per_pass`` at a time as one batch, and only the
running sum (one float64 tensor shaped like the inputs per rule) lives across passes.
The noise of sample ``s`` of the image at index ``i`` of the call is
``tf.random.stateless_normal`` from the key ``fold_in((seed, i), s)``: it
depends on nothing else, so results are the same for any ``batch_size``,
``samples_per_pass`` or number of replicas, and two images never share noise.
"""

from __future__ import annotations

import tensorflow as tf

from .. import runtime
from ..runtime import fresh_zeros


def sample_noise(seed, image_index, sample, shape):
    """Standard normal noise (``shape``) of ``sample`` for the image at ``image_index``."""
    key = tf.random.experimental.stateless_fold_in(tf.stack([seed, image_index]), sample)
    return tf.random.stateless_normal(shape, seed=key)


def smoothgrad(inner, rule_names, nsamples, noise, seed, samples_per_pass, images, baseline, targets, indices):
    """Mean of ``inner(images + noise)`` over ``nsamples`` draws, ``{rule: (n, ...) float64}``.

    ``inner(images, baseline, targets) -> {rule: attribution}`` (for every rule
    in ``rule_names``) is the wrapped method's group function, built for
    ``samples_per_pass * n`` images; ``indices`` (n,) int32 are the images'
    indices in the whole call, which key their noise.
    """
    n = images.shape[0]
    k = samples_per_pass
    shape = images.shape[1:]
    axes = list(range(1, len(images.shape)))
    value_range = tf.reduce_max(images, axis=axes, keepdims=True) - tf.reduce_min(images, axis=axes, keepdims=True)
    spread = noise * value_range
    tiled_baseline = runtime.repeat_rows(baseline, k)
    tiled_targets = runtime.repeat_rows(targets, k)
    seed = tf.constant(seed, tf.int32)
    # (sample, image) pairs of one pass, sample-major like the tiled batch.
    pass_images = tf.tile(indices, [k])
    pass_offsets = tf.repeat(tf.range(k), n)

    def body(r, sums):
        samples = r * k + pass_offsets
        draws = tf.map_fn(
            lambda pair: sample_noise(seed, pair[0], pair[1], shape),
            (pass_images, samples), fn_output_signature=tf.float32, parallel_iterations=runtime.CHUNKS_IN_FLIGHT,
        )
        noisy = tf.reshape(images[None] + spread[None] * tf.reshape(draws, [k, n, *shape]), [k * n, *shape])
        out = inner(noisy, tiled_baseline, tiled_targets)
        valid = tf.reshape(r * k + tf.range(k) < nsamples, [k] + [1] * len(images.shape))
        added = {rule: tf.reshape(tf.cast(out[rule], tf.float64), [k, n, *shape]) for rule in rule_names}
        return r + 1, {rule: sums[rule] + tf.reduce_sum(tf.where(valid, added[rule], 0.0), axis=0) for rule in sums}

    zeros = {rule: fresh_zeros([n, *shape], tf.float64) for rule in rule_names}
    _, sums = tf.while_loop(lambda r, _: r < -(-nsamples // k), body, (tf.constant(0), zeros),
                            parallel_iterations=runtime.CHUNKS_IN_FLIGHT)
    return {rule: value / nsamples for rule, value in sums.items()}
