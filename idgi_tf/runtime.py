"""Calling the explained model: scores, f(x) and its gradient, checks, compiled-function cache.

``f(x) = model(x)[target]`` is the scalar every method explains and every
metric scores (docs/conventions.md#the-explained-scalar).
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from . import _checks

DEFAULT_BATCH_SIZE = 32
# ``tf.while_loop`` runs up to 10 iterations at once by default. The chunks of a compiled
# loop do not depend on each other's model passes, so they would overlap and hold several
# batches of activations at once: every loop passes ``parallel_iterations=CHUNKS_IN_FLIGHT``
# so that ``batch_size`` bounds memory.
CHUNKS_IN_FLIGHT = 1


JIT_AUTO = "auto"


def fresh_zeros(shape, dtype=tf.float32) -> tf.Tensor:
    """Zeros of ``shape`` (a static shape, or a shape tensor) made at run time, for use inside
    ``tf.function``.

    Grappler's constant folding turns ``tf.zeros``, ``tf.zeros_like`` and ``tf.ones_like`` of a
    fully known shape into a ``Const`` node, and a ``Const`` kernel keeps its tensor for as long as
    the compiled function lives (TensorFlow issue #13221): 77 MB per (64, 224, 224, 3) float64
    buffer, held between calls on top of every call's peak. ``Empty(init=True)`` is never folded,
    so its zeros are an ordinary tensor, freed when no longer used.
    """
    shape = shape if tf.is_tensor(shape) else tf.constant(list(shape), tf.int32)
    return tf.raw_ops.Empty(shape=tf.cast(shape, tf.int32), dtype=dtype, init=True)


def resolve_jit(jit_compile) -> bool:
    """Whether to compile with XLA: ``True``/``False`` as given; ``"auto"`` (the default everywhere) is XLA
    on a GPU and plain ``tf.function`` on a CPU.

    On this project's 2-core CPU, XLA made MobileNetV2's integrator 3.4-3.9x slower and ResNet50V2's
    0.99-1.09x (benchmarks/RESULTS.md); on a GPU it fuses canvases, blurs and MS-SSIM with the model.
    """
    if isinstance(jit_compile, str):
        if jit_compile != JIT_AUTO:
            raise ValueError(f"jit_compile must be True, False or 'auto', got {jit_compile!r}")
        return bool(tf.config.list_physical_devices("GPU"))
    if not isinstance(jit_compile, (bool, np.bool_)):
        raise TypeError(f"jit_compile must be True, False or 'auto', got {jit_compile!r}")
    return bool(jit_compile)


def pad_rows(value, rows: int) -> tf.Tensor:
    """``value`` (array or tensor) as a tensor with its last row repeated until it has ``rows`` rows."""
    tensor = tf.convert_to_tensor(value)
    extra = rows - tensor.shape[0]
    if extra <= 0:
        return tensor
    return tf.concat([tensor, tf.repeat(tensor[-1:], extra, axis=0)], axis=0)


def call_padded(fn, arrays, rows: int):
    """``fn`` on ``arrays`` padded to ``rows`` rows (so a compiled function sees one shape).

    Returns ``fn``'s outputs (a tensor or a structure of them) as NumPy, cut back to the real rows.
    """
    count = len(arrays[0])
    outputs = fn(*(pad_rows(value, rows) for value in arrays))
    return tf.nest.map_structure(lambda tensor: tensor.numpy()[:count], outputs)


def batch_size_or_default(batch_size) -> int:
    """``batch_size`` checked as a positive int, or the default (32) when None."""
    return (
        DEFAULT_BATCH_SIZE
        if batch_size is None
        else _checks.positive_int(batch_size, "batch_size")
    )


def image_groups(count: int, size: int) -> list[slice]:
    """Consecutive slices of at most ``size`` images covering ``count``."""
    return [slice(start, min(start + size, count)) for start in range(0, count, size)]


def call_model(model, images: tf.Tensor) -> tf.Tensor:
    """Class scores (n, K) of ``model`` on float32 ``images``, in inference mode."""
    if isinstance(model, keras.layers.Layer):
        return model(images, training=False)
    return model(images)


def explained_value_and_grad(model, images: tf.Tensor, targets: tf.Tensor):
    """``f(x) = model(x)[target]`` and ``grad f(x)`` for a batch, in one pass.

    Returns (f (b,) float32, g (b, H, W, C) float32). A model that does not
    depend on its input gets a zero gradient, not ``None``.
    """
    with tf.GradientTape() as tape:
        tape.watch(images)
        scores = call_model(model, images)
        value = tf.gather(scores, targets, axis=1, batch_dims=1)
    grad = tape.gradient(value, images)
    if grad is None:
        grad = fresh_zeros(tf.shape(images))
    return value, grad


def explained_value(model, images: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """``f(x) = model(x)[target]`` for a batch (b,)."""
    return tf.gather(call_model(model, images), targets, axis=1, batch_dims=1)


def explained_value_and_correct(model, images: tf.Tensor, targets: tf.Tensor):
    """``f(x) = model(x)[target]`` (b,) and whether ``argmax model(x) == target`` (b,) bool."""
    scores = call_model(model, images)
    value = tf.gather(scores, targets, axis=1, batch_dims=1)
    return value, tf.equal(
        tf.argmax(scores, axis=1, output_type=targets.dtype), targets
    )


def _declared(model, attribute: str):
    """``model.inputs`` / ``model.output`` of a built Keras model, else None."""
    if not isinstance(model, keras.Model):
        return None
    try:
        return getattr(model, attribute)
    except (AttributeError, ValueError):
        return None


def _check_input_shape(model, images: np.ndarray) -> None:
    """Refuse images a Keras model does not take, from its declared input (no model pass)."""
    inputs = _declared(model, "inputs")
    if not inputs:
        return
    if len(inputs) != 1:
        raise ValueError(f"model must take one input, the images (N, H, W, C); it declares {len(inputs)} inputs")
    expected = tuple(inputs[0].shape)
    if len(expected) != images.ndim:
        raise ValueError(
            f"images have shape {images.shape} but the model expects inputs of shape {expected}; "
            "attributions need a model that takes images (N, H, W, C)"
        )
    for axis, (want, got) in enumerate(zip(expected[1:], images.shape[1:]), start=1):
        if want is not None and want != got:
            raise ValueError(
                f"images have per-image shape {images.shape[1:]} but the model expects "
                f"{expected[1:]} (mismatch on axis {axis}{', the channel axis' if axis == 3 else ''})"
            )


def _structure(value) -> str:
    """What a model returned, for an error message: the kind of structure, or the shape."""
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} outputs"
    shape = getattr(value, "shape", None)
    return type(value).__name__ if shape is None else f"shape {tuple(shape)}"


def num_classes(model, images: np.ndarray) -> int:
    """Check ``model`` takes ``images`` and returns (N, K) scores as one tensor; return K.

    Keras models are checked from their declared input and output, before any pass. A model that declares
    no single (N, K) output (a dict, list or tuple of outputs, or no declaration) is called eagerly on one
    image, so a structure it returns is refused here, not inside a compiled loop.
    """
    if not callable(model):
        raise TypeError(
            f"model must be a Keras model or a callable, got {type(model).__name__}"
        )
    _check_input_shape(model, images)
    output = _declared(model, "output")
    if isinstance(output, keras.KerasTensor) and len(output.shape) == 2 and output.shape[-1] is not None:
        return int(output.shape[-1])
    scores = call_model(model, tf.constant(images[:1]))
    if not isinstance(scores, tf.Tensor) or scores.shape.rank != 2:
        raise ValueError(
            f"model must return class scores of shape (N, num_classes), one tensor; got {_structure(scores)}"
        )
    return int(scores.shape[-1])


_CACHE_ATTRIBUTE = "_idgi_tf_compiled"


def cached(model, key, build):
    """A compiled function per (model, key), stored on the model so it lives as long.

    (A global table keyed by the model would keep every model alive through the
    functions' references to it.) Objects that take no attributes get a fresh,
    uncached function: still correct, only retraced on every call.
    """
    table = getattr(model, _CACHE_ATTRIBUTE, None)
    if table is None:
        table = {}
        try:
            object.__setattr__(model, _CACHE_ATTRIBUTE, table)
        except (AttributeError, TypeError):
            return build()
    if key not in table:
        table[key] = build()
    return table[key]


def replica_count() -> int:
    """Replicas of the current ``tf.distribute`` strategy (1 outside any strategy)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def on_replicas(fn, *tensors):
    """``fn(*tensors)``, split along the image axis over the current strategy's replicas.

    Inside ``tf.distribute.MirroredStrategy(...).scope()`` the batch is padded to
    a multiple of the replica count (by repeating its last image), each replica
    runs ``fn`` on its slice (all replicas in one ``tf.function``, so they run in
    parallel), and the per-replica outputs (a tensor or a dict of tensors,
    leading axis = images) are concatenated and unpadded. Outside any strategy,
    or with one replica, it is just ``fn(*tensors)``. Results do not depend on
    the number of replicas: every image is computed on its own.
    """
    replicas = replica_count()
    if replicas == 1:
        return fn(*tensors)
    strategy = tf.distribute.get_strategy()
    count = int(tensors[0].shape[0])
    per_replica = -(-count // replicas)
    padded = [pad_rows(t, per_replica * replicas) for t in tensors]
    parts = strategy.experimental_distribute_values_from_function(
        lambda context: tuple(
            t[context.replica_id_in_sync_group * per_replica :][:per_replica]
            for t in padded
        )
    )
    step = cached(
        fn,
        ("on_replicas", strategy),
        lambda: tf.function(lambda args: strategy.run(fn, args=args)),
    )
    local = strategy.experimental_local_results(step(parts))
    return tf.nest.map_structure(lambda *outs: tf.concat(outs, axis=0)[:count], *local)


def compiled_value(model, jit_compile=False):
    """``explained_value`` for ``model`` wrapped in a cached ``tf.function``."""
    return cached(
        model,
        ("value", bool(jit_compile)),
        lambda: tf.function(
            functools.partial(explained_value, model), jit_compile=bool(jit_compile)
        ),
    )


def explained_values(model, images: np.ndarray, targets: np.ndarray, batch_size: int, jit_compile=False):
    """``f(x)`` for checked ``images`` and ``targets``, in compiled groups (split over replicas), float32 (N,).

    Under XLA the last group is padded to the others' size, so one compilation serves all.
    """
    jit = resolve_jit(jit_compile)
    run = compiled_value(model, jit)
    group = min(len(images), batch_size * replica_count())
    split = functools.partial(on_replicas, run)
    return np.concatenate([
        call_padded(split, [images[part], targets[part]], group if jit else part.stop - part.start)
        for part in image_groups(len(images), group)
    ]).astype(np.float32)
