"""Calling the explained model: scores, f(x) and its gradient, checks, compiled-function cache.

``f(x) = model(x)[target]`` is the scalar every method explains and every
metric scores (docs/conventions.md#the-explained-scalar).
"""

from __future__ import annotations

import dataclasses
import functools

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend.common import masking as keras_mask

from . import _checks, graph

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


def repeat_rows(structure, copies: int):
    """Each tensor of ``structure`` (per-example context: targets, and whatever else an explained scalar
    reads per example) repeated ``copies`` times along its first axis, ``[t; t; ...]``: the rows of
    ``copies`` stacked batches of inputs reshaped to ``(copies * n, ...)``."""
    return tf.nest.map_structure(
        lambda tensor: tf.tile(tensor, [copies] + [1] * (tensor.shape.rank - 1)), structure)


def rows_of(structure, index):
    """The rows ``index`` (a slice or an index array) of every array in ``structure``."""
    return tf.nest.map_structure(lambda array: array[index], structure)


def call_padded(fn, arrays, rows: int):
    """``fn`` on ``arrays`` (arrays or structures of them, e.g. a per-example context) padded to ``rows``
    rows (so a compiled function sees one shape).

    Returns ``fn``'s outputs (a tensor or a structure of them) as NumPy, cut back to the real rows.
    """
    count = len(tf.nest.flatten(arrays[0])[0])
    outputs = fn(*(tf.nest.map_structure(lambda value: pad_rows(value, rows), value) for value in arrays))
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


def call_model(model, inputs):
    """The outputs of ``model`` on ``inputs`` (a tensor or the model's input structure), in inference mode."""
    if isinstance(model, keras.layers.Layer):
        return model(inputs, training=False)
    return model(inputs)


# The ``target`` of a model with one output unit (``targets=None``): ``f(x) = outputs[:, 0]``.
SINGLE_OUTPUT = "single output"


@dataclasses.dataclass(frozen=True)
class InputStructure:
    """How a model's several inputs (a list, tuple or dict of arrays (N, ...)) become one flat float row
    ``(N, D)`` and back: paths and rules see one vector per example, the model its structure.

    Attributes:
      keys: the dict keys in ``tf.nest`` order (sorted), or None for a list or tuple.
      kind: ``list``, ``tuple`` or ``dict``; None for a model with one input (one array).
      shapes: each input's per-example shape, in ``tf.nest`` order.
      ids: which inputs are int32 token ids (carried in the float rows, exact below 2**24: for methods that
        only run the model forward, e.g. occlusion), in ``tf.nest`` order; empty when none are.
    """

    keys: tuple | None
    kind: type | None
    shapes: tuple
    ids: tuple = ()

    @property
    def sizes(self) -> list:
        return [int(np.prod(shape)) for shape in self.shapes]

    def pack(self, leaves):
        """The model's input structure from its leaves in ``tf.nest`` order."""
        if self.kind is None:
            return leaves[0]
        return dict(zip(self.keys, leaves)) if self.keys is not None else self.kind(leaves)

    def split(self, flat, as_ids: bool = True):
        """Rows ``(b, D)`` (tensor or array) as the model's input structure of ``(b, *shape)`` parts; the
        token-id inputs as int32 (``as_ids``: maps over them stay float)."""
        module = tf if tf.is_tensor(flat) else np
        parts = module.split(flat, np.cumsum(self.sizes)[:-1].tolist() if module is np else self.sizes, axis=1)
        parts = [module.reshape(part, (-1, *shape)) for part, shape in zip(parts, self.shapes)]
        if as_ids and self.ids:
            parts = [tf.cast(part, tf.int32) if is_id else part for part, is_id in zip(parts, self.ids)]
        return self.pack(parts)


@dataclasses.dataclass(frozen=True)
class Explained:
    """What a method explains: the scalar ``f(x)`` of one example, and how its rows ``x`` reach the model
    (docs/conventions.md#the-explained-scalar). Hashable, so compiled functions are cached per value.

    Method code calls :func:`explained_value` / :func:`explained_value_and_grad` with the rows ``x`` and a
    per-example ``context``: a tuple ``(targets, *model inputs)`` (int32 class indices, zeros when the
    target is not an index; the model's inputs when attributing to a layer), tiled with :func:`repeat_rows`.

    Attributes:
      model: the Keras model or callable.
      target: ``None`` (``f(x) = outputs[i, targets[i]]``), :data:`SINGLE_OUTPUT` (``outputs[:, 0]`` of a
        model with one output unit) or a callable ``outputs -> (b,)`` (any differentiable scalar of the
        model's outputs, in their structure).
      layer: a leaf layer of ``model``, or None. When set, ``x`` are that layer's output activations: the
        model runs on the inputs in the context with the layer's output replaced by ``x`` (Captum's
        ``LayerIntegratedGradients`` semantics).
      inputs: for a model with several inputs (and no layer), how the flat rows ``x (b, D)`` split into them.
    """

    model: object
    target: object = None
    layer: object = None
    inputs: InputStructure | None = None

    def outputs(self, x, context, call_layer=None):
        """The model's outputs for rows ``x``; ``call_layer(layer, *args, **kwargs)`` (see
        :func:`idgi_tf.graph.run`) replaces the model's own call when given (modified gradients)."""
        if self.layer is not None:
            return graph.run(self.model, self.inputs.pack(list(context[1:])),
                             self._replacing(x, call_layer or graph.inference_call))
        model_inputs = x if self.inputs is None or self.inputs.kind is None else self.inputs.split(x)
        if call_layer is None:
            return call_model(self.model, model_inputs)
        return graph.run(self.model, model_inputs, call_layer)

    def _replacing(self, x, call_layer):
        """A ``call_layer`` that gives ``x`` as the attribution layer's output, carrying the mask the layer
        computes from its inputs (an ``Embedding(mask_zero=True)``'s): a Sequential model passes masks on the
        tensors (a functional one records the mask as an operation of its graph, so it applies either way)."""

        def call(layer, *args, **kwargs):
            if layer is not self.layer:
                return call_layer(layer, *args, **kwargs)
            mask = layer.compute_mask(args[0], kwargs.get("mask"))
            if mask is None:
                return x
            output = tf.identity(x)
            keras_mask.set_keras_mask(output, mask)
            return output

        return call

    def pick(self, outputs, context) -> tf.Tensor:
        """The explained scalar (b,) from the model's ``outputs`` for the rows of ``context``."""
        if self.target is None:
            return tf.gather(outputs, context[0], axis=1, batch_dims=1)
        if self.target == SINGLE_OUTPUT:
            return tf.reshape(outputs, [-1])
        return tf.reshape(self.target(outputs), [-1])

    def value(self, x, context) -> tf.Tensor:
        return self.pick(self.outputs(x, context), context)


def _explained(model, targets):
    """``(Explained, context)`` from a model or an :class:`Explained`, and int32 targets or a context."""
    explained = model if isinstance(model, Explained) else Explained(model)
    return explained, targets if isinstance(targets, tuple) else (targets,)


def explained_value_and_grad(model, x: tf.Tensor, targets):
    """The explained scalar ``f(x)`` (b,) and ``grad f(x)`` (shaped like ``x``) for a batch, in one pass.

    ``model``: a model (then ``targets`` are int32 class indices) or an :class:`Explained` (then ``targets``
    is its context). A model that does not depend on its input gets a zero gradient, not ``None``.
    """
    explained, context = _explained(model, targets)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = explained.value(x, context)
    grad = tape.gradient(value, x)
    if grad is None:
        grad = fresh_zeros(tf.shape(x))
    return value, grad


def explained_value(model, x: tf.Tensor, targets) -> tf.Tensor:
    """The explained scalar ``f(x)`` (b,) for a batch (``model`` and ``targets`` as in
    :func:`explained_value_and_grad`)."""
    explained, context = _explained(model, targets)
    return explained.value(x, context)


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


def declared_inputs(model):
    """A Keras model's declared input structure (KerasTensors; a Sequential model never called declares only
    the list ``inputs``), or None."""
    if not isinstance(model, keras.Model):
        return None
    for attribute in ("input", "inputs"):
        try:
            return getattr(model, attribute)
        except (AttributeError, ValueError):
            continue
    return None


def floats_unless_ids(model, leaves: list) -> list:
    """Integer arrays as float32 (pixels, counts), except where the model declares an integer input: those
    are token ids, kept as int32 (a model that declares nothing gets floats). Floats where the model
    declares integers are refused: an embedding would silently truncate them and pass no gradient."""
    declared = declared_inputs(model)
    dtypes = [str(t.dtype) for t in tf.nest.flatten(declared)] if declared is not None else [None] * len(leaves)
    checked = []
    for index, (leaf, dtype) in enumerate(zip(leaves, dtypes)):
        ids = (dtype or "").startswith(("int", "uint"))
        if ids and leaf.dtype != np.int32:
            where = "inputs" if len(leaves) == 1 else f"input {index}"
            raise TypeError(f"{where}: the model takes integers ({dtype}: token ids?) there, got floats; pass the "
                            "ids as integers, and attribute to the embedding's output with layer= (e.g. "
                            "layer='embedding')")
        checked.append(leaf if ids or leaf.dtype != np.int32 else leaf.astype(np.float32))
    return checked


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
            f"inputs have shape {images.shape} but the model expects inputs of shape {expected}"
        )
    for axis, (want, got) in enumerate(zip(expected[1:], images.shape[1:]), start=1):
        if want is not None and want != got:
            raise ValueError(
                f"inputs have per-example shape {images.shape[1:]} but the model expects "
                f"{expected[1:]} (mismatch on axis {axis})"
            )


def structure_text(value, items: str = "outputs") -> str:
    """What a model returned (or was given), for an error message: the kind of structure, or the shape."""
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} {items}"
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
            f"model must return class scores of shape (N, num_classes), one tensor; got {structure_text(scores)}"
        )
    return int(scores.shape[-1])


_CACHE_ATTRIBUTE = "_idgi_tf_compiled"
# Compiled functions kept per model, the least recently used dropped first: a callable target defined anew
# on every call (an inline lambda) is a new key each time, and would otherwise grow the table without bound.
MOST_CACHED = 64


def cached(model, key, build):
    """A compiled function per (model, key), stored on the model so it lives as long.

    (A global table keyed by the model would keep every model alive through the
    functions' references to it.) Objects that take no attributes get a fresh,
    uncached function: still correct, only retraced on every call. For an :class:`Explained` the
    functions live on its model, keyed by the Explained's value too (a new, equal one finds them). At most
    ``MOST_CACHED`` functions are kept per model, the least recently used dropped first.
    """
    if isinstance(model, Explained):
        model, key = model.model, (model, key)
    table = getattr(model, _CACHE_ATTRIBUTE, None)
    if table is None:
        table = {}
        try:
            object.__setattr__(model, _CACHE_ATTRIBUTE, table)
        except (AttributeError, TypeError):
            return build()
    function = table.pop(key) if key in table else build()
    table[key] = function  # the most recently used last
    while len(table) > MOST_CACHED:
        del table[next(iter(table))]
    return function


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
    padded = tf.nest.map_structure(lambda t: pad_rows(t, per_replica * replicas), list(tensors))
    parts = strategy.experimental_distribute_values_from_function(
        lambda context: tuple(tf.nest.map_structure(
            lambda t: t[context.replica_id_in_sync_group * per_replica :][:per_replica], padded))
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


def grouped(run, arrays, batch_size: int, jit: bool) -> np.ndarray:
    """The compiled ``run(*arrays)`` over all rows of ``arrays`` (arrays or per-example structures), in
    groups of ``batch_size`` per replica, concatenated as NumPy. Under XLA the last group is padded to the
    others' size, so one compilation serves all."""
    count = len(tf.nest.flatten(arrays[0])[0])
    group = min(count, batch_size * replica_count())
    split = functools.partial(on_replicas, run)
    return np.concatenate([
        call_padded(split, rows_of(arrays, part), group if jit else part.stop - part.start)
        for part in image_groups(count, group)
    ])


def explained_values(model, images: np.ndarray, targets, batch_size: int, jit_compile=False):
    """``f(x)`` for checked rows ``images`` and ``targets`` (int32 class indices, or the context of an
    :class:`Explained` ``model``), in compiled groups (split over replicas), float32 (N,)."""
    jit = resolve_jit(jit_compile)
    return grouped(compiled_value(model, jit), [images, targets], batch_size, jit).astype(np.float32)
