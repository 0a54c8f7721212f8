"""What :func:`idgi_tf.attribute` is given, checked and turned into rows: inputs of any rank or structure,
``targets`` of every form, ``layer=``.

:func:`prepare` returns an :class:`idgi_tf.runtime.Explained` (the scalar and how rows reach the model),
the rows ``x`` the methods integrate over (the inputs; their flat concatenation for a model with several
inputs; a layer's output activations with ``layer=``), the baseline rows and the per-example context.
Every check runs before any long computation; the few that need the model's outputs (a callable target, a
model that declares no single output) run it eagerly on one example.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from .. import _checks, graph
from ..runtime import (
    SINGLE_OUTPUT,
    Explained,
    InputStructure,
    cached,
    declared_inputs,
    explained_values,
    floats_unless_ids,
    grouped,
    resolve_jit,
    rows_of,
    structure_text,
)


class Needs(NamedTuple):
    """What a computation needs of its arguments (a :class:`idgi_tf.attribution.methods.Method` row has
    the same fields)."""

    takes_baseline: bool
    forward_only: bool
    image_only: bool


# f(x) alone (``explained_output``): no baseline, no gradient, any rank.
FORWARD_PASS = Needs(takes_baseline=False, forward_only=True, image_only=False)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """``attribute``'s arguments as the methods take them.

    Attributes:
      explained: what is explained, and how rows reach the model.
      rows: ``x`` (N, ...) float32 (int32 token ids only for a forward-only method on integer inputs).
      baseline: rows like ``rows`` (zeros for a method that takes none).
      context: ``(targets int32 (N,), *model inputs)``, the per-example context of ``explained``.
      baseline_context: with ``layer=``, the context of the baseline inputs (their layer activations are
        ``baseline``), so ``f(baseline)`` is ``explained``'s value there; else None.
    """

    explained: Explained
    rows: np.ndarray
    baseline: np.ndarray
    context: tuple
    baseline_context: tuple | None = None

    def maps(self, array: np.ndarray):
        """Maps over ``rows`` in the caller's structure: split per input for a model with several."""
        structure = self.explained.inputs
        if self.explained.layer is not None or structure.kind is None:
            return array
        return structure.split(array, as_ids=False)


def input_leaves(inputs, name: str) -> tuple[list, InputStructure]:
    """The arrays of ``inputs`` (one array, or a list, tuple or dict of them) in ``tf.nest`` order, checked
    (any rank >= 2, integers kept as int32 ids), with their structure (``kind=None`` for one array)."""
    if isinstance(inputs, dict):
        keys = tuple(sorted(inputs))
        leaves = [_checks.inputs(inputs[key], f"{name}[{key!r}]", integers=True) for key in keys]
        structure = InputStructure(keys, dict, tuple(leaf.shape[1:] for leaf in leaves))
    elif isinstance(inputs, (list, tuple)):
        if not inputs:
            raise ValueError(f"{name} must hold at least one array, got an empty {type(inputs).__name__}")
        leaves = [_checks.inputs(leaf, f"{name}[{i}]", integers=True) for i, leaf in enumerate(inputs)]
        structure = InputStructure(None, type(inputs), tuple(leaf.shape[1:] for leaf in leaves))
    else:
        leaves = [_checks.inputs(inputs, name, integers=True)]
        return leaves, InputStructure(None, None, (leaves[0].shape[1:],))
    counts = {len(leaf) for leaf in leaves}
    if len(counts) > 1:
        raise ValueError(f"{name} must have the same number of examples in every input, got {sorted(counts)}")
    return leaves, structure


def _check_against_model(model, leaves: list, structure: InputStructure) -> None:
    """Refuse inputs whose count, names or per-example shapes the model's declaration does not take."""
    declared = declared_inputs(model)
    if declared is None:
        return
    expected = tf.nest.flatten(declared)
    if len(expected) != len(leaves):
        kind = "one array" if len(expected) == 1 else f"a list or dict of {len(expected)} arrays"
        raise ValueError(f"the model takes {len(expected)} input(s), so inputs must be {kind}; got "
                         f"{len(leaves)} array(s)")
    if structure.keys is not None and isinstance(declared, dict) and set(declared) != set(structure.keys):
        raise ValueError(f"inputs must have the model's input names {sorted(declared)}, got {list(structure.keys)}")
    for leaf, tensor, index in zip(leaves, expected, range(len(leaves))):
        want = tuple(tensor.shape)
        where = "inputs have" if len(leaves) == 1 else f"input {index} ({tensor.name!r}) has"
        if len(want) != leaf.ndim or any(w is not None and w != g for w, g in zip(want[1:], leaf.shape[1:])):
            raise ValueError(f"{where} shape {leaf.shape} but the model expects inputs of shape {want} "
                             "(None: any size)")


def _checked_targets(targets, explained: Explained, rows, context, count: int):
    """``(explained with its target, int32 targets (count,))``, checked against the model's outputs."""
    if callable(targets):
        explained = dataclasses.replace(explained, target=targets)
        value = targets(_first_outputs(explained, rows, context))
        shape = tuple(getattr(value, "shape", ()))
        if shape not in ((1,),):
            raise ValueError(f"targets, a callable, must return one scalar per example, shape (N,): on one "
                             f"example it returned {structure_text(value) if shape else repr(value)}, expected (1,)")
        return explained, np.zeros(count, np.int32)
    classes = _output_units(explained, rows, context)
    if targets is None:
        if classes != 1:
            raise ValueError(f"targets=None needs a model with one output unit (a regression or a sigmoid); this "
                             f"one has {classes} outputs: pass a class index per example, or a callable")
        return dataclasses.replace(explained, target=SINGLE_OUTPUT), np.zeros(count, np.int32)
    return explained, _checks.targets(targets, count, classes)


def _first_outputs(explained: Explained, rows, context):
    """The model's outputs for the first example, eagerly: the one pass that checks a target against them."""
    return explained.outputs(tf.constant(rows[:1]), rows_of(context, slice(0, 1)))


def _output_units(explained: Explained, rows, context) -> int:
    """K of a model returning one (N, K) or (N,) tensor, from its declaration or else one example's outputs;
    structured outputs need a callable target."""
    declared = getattr(explained.model, "output", None) if isinstance(explained.model, keras.Model) else None
    if isinstance(declared, keras.KerasTensor) and len(declared.shape) in (1, 2) and declared.shape[-1] is not None:
        return 1 if len(declared.shape) == 1 else int(declared.shape[-1])
    sample = _first_outputs(explained, rows, context)
    if not isinstance(sample, tf.Tensor) or sample.shape.rank not in (1, 2):
        raise ValueError(f"model returns {structure_text(sample)}, not one tensor of class scores (N, K) to pick "
                         "class indices from; pass targets as a callable that picks the explained scalar, e.g. "
                         "lambda out: out['head'][:, 0]")
    return 1 if sample.shape.rank == 1 else int(sample.shape[-1])


def _layer_output(explained: Explained, context):
    """The attribution layer's output for the model inputs in ``context`` (one run of the graph)."""
    captured = []

    def call(layer, *args, **kwargs):
        output = graph.inference_call(layer, *args, **kwargs)
        if layer is explained.layer:
            captured.append(output)
        return output

    graph.run(explained.model, explained.inputs.pack(list(context[1:])), call)
    return captured[0]


def _activations(explained: Explained, leaves: list, batch_size: int, jit: bool) -> np.ndarray:
    """The layer's output activations (N, ...) float32 for the model inputs ``leaves``."""
    run = cached(explained, ("layer_output", jit),
                 lambda: tf.function(lambda *context: _layer_output(explained, context), jit_compile=jit))
    count = len(leaves[0])
    output = grouped(run, [np.zeros(count, np.int32), *leaves], batch_size, jit)
    return output.astype(np.float32)


def _checked_layer(model, layer):
    """The leaf layer ``layer`` names, called once in the model and giving one float tensor."""
    found = graph.called_once(graph.find_layer(model, layer))
    output = found.output
    if not isinstance(output, keras.KerasTensor):
        raise TypeError(f"layer={found.name!r} must output one tensor to attribute to, got {structure_text(output)}")
    if not output.dtype.startswith("float"):
        raise ValueError(f"layer={found.name!r} must output floats to attribute to, got {output.dtype}")
    return found


def _integer_refusal(method_name: str) -> ValueError:
    return ValueError(
        f"inputs hold integers (token ids?): method {method_name!r} needs gradients, which integer inputs do not "
        "have; attribute to the embedding's output with layer= (e.g. layer='embedding', baseline=pad_ids)")


def prepare(model, inputs, targets, baseline, layer, *, method_name: str, method, batch_size: int,
            jit_compile) -> Prepared:
    """Check ``attribute``'s arguments and make the rows, baseline rows and context (see :class:`Prepared`).

    ``method``: what the method needs (``takes_baseline``, ``forward_only``, ``image_only``: a
    :class:`idgi_tf.attribution.methods.Method` row).
    """
    if not callable(model):
        raise TypeError(f"model must be a Keras model or a callable, got {type(model).__name__}")
    leaves, structure = input_leaves(inputs, "inputs")
    _check_against_model(model, leaves, structure)
    leaves = floats_unless_ids(model, leaves)
    count = len(leaves[0])
    given = 0 if baseline is None else baseline
    if baseline is not None and not method.takes_baseline:
        raise ValueError(f"method {method_name!r} takes no baseline (baseline must be None)")
    base_leaves = baseline_leaves(given, leaves, structure)
    jit = resolve_jit(jit_compile)
    if layer is not None:
        if method.image_only:
            raise ValueError(f"method {method_name!r} is an image method: it needs one input of images (N, H, W, C), "
                             "not a layer's activations (layer=)")
        explained = Explained(model, layer=_checked_layer(model, layer), inputs=structure)
        context = (np.zeros(count, np.int32), *leaves)
        rows = _activations(explained, leaves, batch_size, jit)
        explained, context_targets = _checked_targets(targets, explained, rows, context, count)
        base = (_activations(explained, base_leaves, batch_size, jit) if method.takes_baseline
                else np.zeros_like(rows))
        return Prepared(explained, rows, base, (context_targets, *leaves), (context_targets, *base_leaves))
    integers = [leaf.dtype == np.int32 for leaf in leaves]
    if any(integers) and not method.forward_only:
        raise _integer_refusal(method_name)
    if structure.kind is None:
        explained, rows, base = Explained(model, inputs=structure), leaves[0], base_leaves[0]
    else:
        if any(integers):  # ids ride in the float rows of a forward-only method
            if max(int(np.abs(leaf).max()) for leaf in (*leaves, *base_leaves) if leaf.dtype == np.int32) >= 2**24:
                raise ValueError("inputs: token ids of several inputs must lie below 2**24 (they ride in float32 rows)")
            structure = dataclasses.replace(structure, ids=tuple(integers))
        explained = Explained(model, inputs=structure)
        rows = np.concatenate([leaf.reshape(count, -1).astype(np.float32) for leaf in leaves], axis=1)
        base = np.concatenate([leaf.reshape(count, -1).astype(np.float32) for leaf in base_leaves], axis=1)
    if method.image_only and rows.ndim != 4:
        raise ValueError(f"method {method_name!r} is an image method: it needs one input of images (N, H, W, C), "
                         f"got {'inputs of shape ' + str(rows.shape) if structure.kind is None else 'several inputs'}")
    context = (np.zeros(count, np.int32),)
    explained, context_targets = _checked_targets(targets, explained, rows, context, count)
    return Prepared(explained, rows, base if method.takes_baseline else np.zeros_like(rows), (context_targets,))


def baseline_leaves(baseline, leaves: list, structure: InputStructure) -> list:
    """The baseline like each input: a scalar for all, or the inputs' structure of scalars or arrays."""
    if isinstance(baseline, (dict, list, tuple)) and structure.kind is not None:
        given = _structure_of(baseline, structure)
        return [_checks.like_inputs(b, leaf, f"baseline[{i}]") for i, (b, leaf) in enumerate(zip(given, leaves))]
    return [_checks.like_inputs(baseline, leaf, "baseline") for leaf in leaves]


def reference_baselines(model, references, nreferences, seed, inputs) -> list:
    """Expected IG's baselines: the K references ``(K, ...)`` shared by every input (for several inputs, the
    inputs' structure of such arrays), one baseline each, in their order; ``nreferences`` of them drawn without
    replacement by ``numpy.random.default_rng(seed)`` (kept in their order), else all."""
    leaves, structure = input_leaves(inputs, "inputs")
    leaves = floats_unless_ids(model, leaves)
    given = _structure_of(references, structure, "references") if structure.kind is not None else [references]
    arrays = [np.asarray(value) for value in given]
    keys = structure.keys or range(len(arrays))
    for key, array, leaf in zip(keys, arrays, leaves):
        name = "references" if structure.kind is None else f"references[{key!r}]"
        if array.ndim != leaf.ndim or array.shape[1:] != leaf.shape[1:] or not len(array):
            raise ValueError(f"{name} must have shape (K, *one example's shape) = (K, "
                             f"{', '.join(map(str, leaf.shape[1:]))}) with K >= 1, got shape {array.shape}")
        for reference in array:  # each reference is checked as the baseline it becomes, under its own name
            _checks.like_inputs(reference, leaf[:1], name)
    count = len(arrays[0])
    if any(len(array) != count for array in arrays):
        raise ValueError(f"references: every input needs the same number K of references, got "
                         f"{[len(array) for array in arrays]}")
    chosen = np.arange(count)
    if nreferences is not None:
        drawn = _checks.positive_int(nreferences, "nreferences")
        if drawn > count:
            raise ValueError(f"nreferences must be at most the {count} references given, got {drawn}")
        rng = np.random.default_rng(_checks.seed(seed, "references_seed"))
        chosen = np.sort(rng.choice(count, drawn, replace=False))
    if structure.kind is None:
        return [arrays[0][k] for k in chosen]
    parts = [[array[k] for array in arrays] for k in chosen]
    return [dict(zip(structure.keys, part)) if structure.keys is not None else part for part in parts]


def _structure_of(baseline, structure: InputStructure, name: str = "baseline") -> list:
    """The parts of ``baseline`` (or another argument ``name``) in the inputs' ``tf.nest`` order, refusing
    another structure."""
    if isinstance(baseline, dict):
        if structure.keys is None or set(baseline) != set(structure.keys):
            raise ValueError(f"{name} must have the inputs' structure ({_structure_kind(structure)}), got a dict "
                             f"with keys {sorted(baseline)}")
        return [baseline[key] for key in structure.keys]
    if structure.keys is not None or len(baseline) != len(structure.shapes):
        raise ValueError(f"{name} must have the inputs' structure ({_structure_kind(structure)}), got a "
                         f"{type(baseline).__name__} of {len(baseline)}")
    return list(baseline)


def _structure_kind(structure: InputStructure) -> str:
    if structure.keys is not None:
        return f"a dict with keys {list(structure.keys)}"
    return f"a {structure.kind.__name__} of {len(structure.shapes)} arrays"


def warn_if_start_is_not_the_baseline(prepared: Prepared, start: np.ndarray, batch_size: int, jit: bool) -> None:
    """Warn when a path at a layer started elsewhere than ``f(baseline)``: the model reads the inputs by a way
    that bypasses the layer (a Keras mask, e.g. ``Embedding(mask_zero=True)``'s, or a skip branch), which
    keeps the inputs' values along the path, so the maps sum to ``f(x) - start``, not ``f(x) - f(baseline)``."""
    value = explained_values(prepared.explained, prepared.baseline, prepared.baseline_context, batch_size, jit)
    moved = ~np.isclose(start, value, rtol=1e-4, atol=1e-6 * max(1.0, float(np.abs(value).max())))
    if moved.any():
        first = int(np.argmax(moved))
        warnings.warn(
            f"layer={prepared.explained.layer.name!r}: for {int(moved.sum())} of {len(moved)} examples the path "
            f"starts at f = {start[first]:.6g} where f(baseline) = {value[first]:.6g} (example {first}): the model "
            "reads its inputs by a way that bypasses the layer (a Keras mask such as Embedding(mask_zero=True)'s, "
            "or a skip branch), which keeps the inputs along the path; the maps sum to f(x) - that start, not "
            "f(x) - f(baseline) (return_gap=True reports it; docs/attribution.md, 'Inputs, several inputs, layers')",
            RuntimeWarning, stacklevel=3)
