"""A Keras model re-run layer by layer with a hook on every layer call.

Functional and Sequential models (nested ones included) are graphs of layers; :func:`run` walks the graph
as Keras does (``Functional._run_through_graph``) but calls ``call_layer(layer, *args, **kwargs)`` for
every layer that is not itself a model. Layer attribution (``layer=`` of :func:`idgi_tf.attribute`,
:class:`idgi_tf.runtime.Explained`) uses it to read one layer's output and to replace it; the
modified-gradient methods (:mod:`idgi_tf.attribution.modified_gradients`) to give nonlinearities other
derivatives. Keras masks (``Embedding(mask_zero=True)``) travel as in Keras' own call: as operations of a
functional graph, as attributes of the tensors in a Sequential model.
"""

from __future__ import annotations

import difflib

import keras


def runnable(model) -> bool:
    """Whether :func:`run` can walk ``model``: a functional or Sequential Keras model."""
    return isinstance(model, keras.Model) and (
        isinstance(model, keras.Sequential) or hasattr(model, "_run_through_graph"))


def leaf_layers(model):
    """Every layer of ``model`` that is not a model, depth first, nested models included."""
    for layer in getattr(model, "operations", None) or model.layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        else:
            yield layer


def find_layer(model, layer, argument: str = "layer"):
    """The leaf layer of ``model`` that ``layer`` names (a name or the layer itself); a missing name gets
    the close names among the model's layers."""
    if not runnable(model):
        raise TypeError(f"{argument}= needs a functional or Sequential Keras model, got {type(model).__name__}")
    layers = list(leaf_layers(model))
    if isinstance(layer, keras.layers.Layer):
        if any(candidate is layer for candidate in layers):
            return _leaf_to_attribute(layer, argument)
        if isinstance(layer, keras.Model) and any(inner is layer for inner in _nested_models(model)):
            raise _nested_refusal(layer, argument)
        raise ValueError(f"{argument}={layer.name!r} is a layer, but not one of this model's")
    if not isinstance(layer, str):
        raise TypeError(f"{argument} must be a layer of the model or its name, got {type(layer).__name__}")
    for candidate in layers:
        if candidate.name == layer:
            return _leaf_to_attribute(candidate, argument)
    for inner in _nested_models(model):
        if inner.name == layer:
            raise _nested_refusal(inner, argument)
    names = [candidate.name for candidate in layers]
    close = difflib.get_close_matches(layer, names)
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    raise ValueError(f"{argument}={layer!r} is not a layer of model {model.name!r}{hint}; its layers: "
                     f"{', '.join(names[:12])}{', ...' if len(names) > 12 else ''}")


def called_once(layer, argument: str = "layer"):
    """``layer``, refusing a layer called more than once in the model (a shared layer): its output is not one
    activation to read or replace."""
    calls = len(getattr(layer, "_inbound_nodes", ()))
    if calls > 1:
        raise ValueError(f"{argument}={layer.name!r} is called {calls} times in the model (a shared layer); its "
                         "output is not one activation: pick a layer called once")
    return layer


def _nested_models(model):
    """Every model nested inside ``model``, depth first."""
    for layer in getattr(model, "operations", None) or model.layers:
        if isinstance(layer, keras.Model):
            yield layer
            yield from _nested_models(layer)


def _nested_refusal(nested, argument: str) -> ValueError:
    last = list(leaf_layers(nested))[-1].name
    return ValueError(f"{argument}={nested.name!r} is a model nested in this one, not a layer: pick one of its "
                      f"layers (by name or object), e.g. its last one, {last!r}")


def _leaf_to_attribute(layer, argument: str):
    """``layer``, refusing an ``InputLayer`` (its output is the inputs themselves)."""
    if type(layer).__name__ == "InputLayer":
        raise ValueError(f"{argument}={layer.name!r} is the model's input layer: its output is the inputs "
                         f"themselves; leave {argument}= out to attribute to them")
    return layer


def run(model, inputs, call_layer):
    """``model``'s outputs on ``inputs`` (its input structure), with every leaf layer called as
    ``call_layer(layer, *args, **kwargs)``; an ``InputLayer`` passes its input through."""

    def walk(layer, *args, **kwargs):
        if isinstance(layer, keras.Sequential):
            (x,) = args
            for inner in layer.layers:
                x = walk(inner, x)
            return x
        if isinstance(layer, keras.Model):
            given = args[0] if len(args) == 1 else list(args)
            outputs = layer._run_through_graph(layer._standardize_inputs(given), operation_fn=lambda op: op,
                                               call_fn=walk)
            return outputs[0] if isinstance(outputs, list) and len(outputs) == 1 else outputs
        if type(layer).__name__ == "InputLayer":
            return args[0]
        return call_layer(layer, *args, **kwargs)

    return walk(model, inputs)


def inference_call(layer, *args, **kwargs):
    """The layer's own call, in inference mode whatever the graph recorded (Dropout, BatchNormalization);
    a bare Keras operation in the graph (``keras.ops.not_equal`` of a mask) takes no ``training``."""
    if isinstance(layer, keras.layers.Layer):
        kwargs = {**kwargs, "training": False}
    return layer(*args, **kwargs)


def output_layers(model) -> list:
    """The leaf layers that produce ``model``'s outputs (every output of a multi-output model), looking inside
    nested models."""
    if not isinstance(model, keras.Model):
        return [model]
    if isinstance(model, keras.Sequential):
        return output_layers(model.layers[-1])
    return [layer for output in model.outputs for layer in output_layers(output._keras_history.operation)]


def without_activation(layer, *args, **kwargs):
    """``layer``'s inference call with its ``activation`` linear: the pre-activation ``z`` of a Dense or
    convolution."""
    saved = layer.activation
    layer.activation = keras.activations.linear
    try:
        return inference_call(layer, *args, **kwargs)
    finally:
        layer.activation = saved


def _is_softmax(layer) -> bool:
    activation = getattr(layer, "activation", None)
    return type(layer).__name__ == "Softmax" or getattr(activation, "__name__", None) == "softmax"


def without_final_softmax(model):
    """A ``call_layer`` for :func:`run` giving ``model``'s logits: a softmax that produces a model output (a
    ``Softmax`` layer, or the ``activation`` of a Dense or Activation layer) is left out; every other layer runs
    as :func:`inference_call`."""
    final = frozenset(id(layer) for layer in output_layers(model) if _is_softmax(layer))

    def call(layer, *args, **kwargs):
        if id(layer) not in final:
            return inference_call(layer, *args, **kwargs)
        if type(layer).__name__ in ("Softmax", "Activation"):
            return args[0]
        return without_activation(layer, *args, **kwargs)

    return call
