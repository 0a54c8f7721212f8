"""Modified-gradient backpropagation: epsilon-LRP and DeepLIFT-Rescale (Ancona et al. 2018, section 3).

Ancona et al. show that both methods are ``x * g~`` (resp. ``(x - x') * g~``)
where ``g~`` is the gradient of the explained output with every element-wise
nonlinearity ``y = a(z)`` given a modified derivative (docs/attribution.md#modified-gradients):

* epsilon-LRP:      ``dy/dz := a(z) / (z + eps * sign(z))``, ``sign(0) = +1``
* DeepLIFT-Rescale: ``dy/dz := (a(z) - a(z')) / (z - z')`` against the
  activation ``z'`` of the reference input ``x'``; where ``|z - z'| < 1e-5``
  the plain derivative ``a'((z + z') / 2)`` instead.

:class:`ModifiedModel` re-runs a Keras model layer by layer (:func:`idgi_tf.graph.run`, its
:meth:`~ModifiedModel.call_layer` as the hook) with those derivatives (``tf.custom_gradient``) on its
activations, at any input rank, for several inputs, and from a layer's output (``layer=``: that layer
and the ones upstream of it run plainly). DeepLIFT runs the
input and the reference as one doubled batch, so every nonlinearity sees ``z``
and ``z'`` side by side. Layers are sorted into: affine ones (dense,
convolutions, batch norm in inference, pooling by averaging, padding, adds,
concatenations, reshapes: the plain gradient is the rule), element-wise
nonlinearities (the modified rule), max pooling (gradient routing, as in
DeepExplain), LSTM and GRU (re-run step by step from their weights: the rule on every gate
activation, the ordinary product rule on the gates' products, as DeepExplain), and anything else,
which raises an error naming the layer
rather than silently falling back to the plain gradient.

A softmax that produces a model output is left out: like DeepExplain and Ancona et al., the two
methods explain the target's **logit**, the rules being defined for
element-wise nonlinearities only. Summation-to-delta then reads
``sum(attribution) = logit(x) - logit(x')`` on piecewise-linear networks.
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from .. import _checks, graph
from ..runtime import cached, fresh_zeros, repeat_rows

EPSILON = 1e-4
RESCALE_TOLERANCE = 1e-5

# Keras layers whose output is affine in their input (at inference): the plain gradient is exact.
AFFINE_LAYERS = frozenset({
    "Dense", "EinsumDense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D",
    "SeparableConv1D", "SeparableConv2D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "BatchNormalization", "Add", "Subtract", "Average", "Concatenate",
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D", "Reshape", "Flatten", "Permute", "RepeatVector",
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "Identity", "Rescaling", "Normalization", "Preprocess",
})
# Max pooling keeps its gradient (it routes the signal to the winning input), as in DeepExplain.
ROUTING_LAYERS = frozenset({
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
})
# Layers that apply one element-wise function.
ELEMENTWISE_LAYERS = frozenset({"ReLU", "LeakyReLU", "ELU", "PReLU"})
ELEMENTWISE_ACTIVATIONS = frozenset({
    "relu", "relu6", "elu", "selu", "sigmoid", "tanh", "softplus", "softsign", "silu", "swish",
    "gelu", "leaky_relu", "hard_sigmoid", "hard_silu", "hard_swish", "mish", "exponential",
    "log_sigmoid",
})
# Recurrent layers: re-run step by step from their weights, the rule on every gate nonlinearity (rerun_recurrent).
RECURRENT_LAYERS = frozenset({"LSTM", "GRU", "Bidirectional"})
KNOWN_LAYERS = (AFFINE_LAYERS | ROUTING_LAYERS | ELEMENTWISE_LAYERS | RECURRENT_LAYERS
                | {"InputLayer", "Activation", "Softmax"})
MODIFIED_GRADIENT_METHODS = ("elrp", "deeplift")  # methods, not step rules: see rules.RULES


def _sign(z):
    """``sign(z)`` with ``sign(0) = +1``."""
    return tf.where(z >= 0, tf.constant(1, z.dtype), tf.constant(-1, z.dtype))


def _input_gradient_only(grad_z):
    """A ``tf.custom_gradient`` grad_fn from ``upstream -> d/dz``; an activation's own variables
    (PReLU's slopes) get zero gradients: only the input's gradient is explained."""

    def grad(upstream, variables=None):
        if variables is None:
            return grad_z(upstream)
        return grad_z(upstream), [fresh_zeros(tf.shape(v), v.dtype) for v in variables]

    return grad


def epsilon_rule(activation, epsilon: float):
    """``activation`` with the epsilon-LRP derivative ``a(z) / (z + eps * sign(z))``."""

    @tf.custom_gradient
    def apply(z):
        y = activation(z)
        return y, _input_gradient_only(lambda upstream: upstream * y / (z + epsilon * _sign(z)))

    return apply


def rescale_rule(activation):
    """``activation`` with the DeepLIFT-Rescale derivative on a doubled batch ``[z; z']``.

    The first half is the input, the second the reference; the reference half
    gets no gradient (the explained output is the input half's).
    """

    @tf.custom_gradient
    def apply(z):
        y = activation(z)

        def grad_z(upstream):
            z_in, z_ref = tf.split(z, 2)
            y_in, y_ref = tf.split(y, 2)
            delta = z_in - z_ref
            midpoint = 0.5 * (z_in + z_ref)
            with tf.GradientTape() as tape:
                tape.watch(midpoint)
                at_mid = activation(midpoint)
            plain = tape.gradient(at_mid, midpoint)
            far = tf.abs(delta) >= RESCALE_TOLERANCE
            multiplier = tf.where(far, (y_in - y_ref) / tf.where(far, delta, 1.0), plain)
            up_in, up_ref = tf.split(upstream, 2)
            return tf.concat([up_in * multiplier, fresh_zeros(tf.shape(up_ref), up_ref.dtype)], axis=0)

        return y, _input_gradient_only(grad_z)

    return apply


def _activation_name(function) -> str | None:
    try:
        name = keras.activations.serialize(function)
    except (ValueError, TypeError):
        return None
    return name if isinstance(name, str) else None


def _lstm_step(cell, gate, activation):
    """Keras' LSTM cell ``(x_t, [h, c]) -> (h', [h', c'])``, gates in Keras' order i, f, c, o:
    ``c' = f * c + i * activation(z_c)``, ``h' = o * activation(c')``; ``gate`` and ``activation`` are the
    (rule-wrapped) recurrent and cell activations, the products keep the ordinary product rule."""
    kernel, recurrent = tf.convert_to_tensor(cell.kernel), tf.convert_to_tensor(cell.recurrent_kernel)
    bias = tf.convert_to_tensor(cell.bias) if cell.use_bias else 0.0

    def step(x_t, states):
        h, c = states
        z_i, z_f, z_c, z_o = tf.split(tf.matmul(x_t, kernel) + tf.matmul(h, recurrent) + bias, 4, axis=-1)
        c = gate(z_f) * c + gate(z_i) * activation(z_c)
        h = gate(z_o) * activation(c)
        return h, [h, c]

    return step


def _gru_step(cell, gate, activation):
    """Keras' GRU cell ``(x_t, [h]) -> (h', [h'])``, gates in Keras' order z, r, h:
    ``h' = z * h + (1 - z) * activation(x_h + r * (h R_h + b_h))`` (``reset_after``, the default) or
    ``activation(x_h + (r * h) R_h)`` (the reset gate before the matrix)."""
    kernel, recurrent = tf.convert_to_tensor(cell.kernel), tf.convert_to_tensor(cell.recurrent_kernel)
    if not cell.use_bias:
        input_bias = recurrent_bias = 0.0
    elif cell.reset_after:  # (2, 3 units): the input's bias, the recurrent one
        input_bias, recurrent_bias = tf.unstack(tf.convert_to_tensor(cell.bias))
    else:
        input_bias, recurrent_bias = tf.convert_to_tensor(cell.bias), 0.0
    units = cell.units

    def step(x_t, states):
        (h,) = states
        x_z, x_r, x_h = tf.split(tf.matmul(x_t, kernel) + input_bias, 3, axis=-1)
        if cell.reset_after:
            h_z, h_r, h_h = tf.split(tf.matmul(h, recurrent) + recurrent_bias, 3, axis=-1)
            candidate = activation(x_h + gate(x_r + h_r) * h_h)
        else:
            h_z, h_r = tf.split(tf.matmul(h, recurrent[:, : 2 * units]), 2, axis=-1)
            candidate = activation(x_h + tf.matmul(gate(x_r + h_r) * h, recurrent[:, 2 * units:]))
        z = gate(x_z + h_z)
        h = z * h + (1 - z) * candidate
        return h, [h]

    return step


def rerun_recurrent(layer, sequences, nonlinear, mask=None, initial_state=None):
    """Keras ``LSTM`` or ``GRU`` ``layer`` on ``(N, T, D)`` ``sequences``, re-run step by step from its weights.

    ``nonlinear(function)`` gives the function to apply for each of the cell's activations (the modified rule, or
    the function itself). A Python loop over the static ``T``: every step's gate activations are separate ops
    of the graph (each with its own ``tf.custom_gradient``), with no ``tf.while_loop`` state to thread the rule
    through. As Keras' ``backend.rnn``: ``go_backwards`` reads the steps in reverse (and returns them in that
    order), a masked step keeps the previous states and repeats the previous output (zeros with
    ``zero_output_for_mask``), ``return_sequences`` and ``return_state`` select the outputs.
    """
    cell = layer.cell
    make_step = _lstm_step if type(layer).__name__ == "LSTM" else _gru_step
    step = make_step(cell, nonlinear(cell.recurrent_activation), nonlinear(cell.activation))
    if initial_state is None:
        zeros = tf.zeros((tf.shape(sequences)[0], cell.units), sequences.dtype)
        states = [zeros] * (2 if type(layer).__name__ == "LSTM" else 1)
    else:
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
    mask = mask[0] if isinstance(mask, (list, tuple)) else mask
    inputs = tf.unstack(sequences, axis=1)
    keeps = [None] * len(inputs) if mask is None else tf.unstack(tf.cast(mask, tf.bool)[:, :, None], axis=1)
    if layer.go_backwards:
        inputs, keeps = inputs[::-1], keeps[::-1]
    output, outputs = tf.zeros_like(states[0]), []
    for x_t, keep in zip(inputs, keeps):
        h, new_states = step(x_t, states)
        if keep is None:
            output, states = h, new_states
        else:
            output = tf.where(keep, h, tf.zeros_like(h) if layer.zero_output_for_mask else output)
            states = [tf.where(keep, new, old) for new, old in zip(new_states, states)]
        outputs.append(output)
    result = tf.stack(outputs, axis=1) if layer.return_sequences else outputs[-1]
    return (result, *states) if layer.return_state else result


def _merge_directions(layer, forward, backward):
    """A ``Bidirectional`` layer's output from its two directions' outputs, as Keras merges them."""
    states = ()
    if layer.return_state:
        states, forward, backward = (*forward[1:], *backward[1:]), forward[0], backward[0]
    if layer.return_sequences:
        backward = tf.reverse(backward, [1])
    merged = {"concat": lambda: tf.concat([forward, backward], axis=-1), "sum": lambda: forward + backward,
              "ave": lambda: (forward + backward) / 2, "mul": lambda: forward * backward,
              None: lambda: (forward, backward)}[layer.merge_mode]()
    if not layer.return_state:
        return merged
    return (*merged, *states) if layer.merge_mode is None else (merged, *states)


def _directions(layer) -> tuple:
    """The recurrent layers ``layer`` runs: its two directions for a Bidirectional, else itself."""
    if type(layer).__name__ == "Bidirectional":
        return layer.forward_layer, layer.backward_layer
    return (layer,)


def _computes_a_mask(operation) -> bool:
    """Whether a bare Keras operation has only boolean or integer outputs (``Embedding(mask_zero=True)``'s
    ``not_equal(ids, 0)``): no derivative passes it, so it runs as it is."""
    outputs = [tensor for node in operation._inbound_nodes for tensor in node.output_tensors]
    return bool(outputs) and not any(keras.backend.is_float_dtype(tensor.dtype) for tensor in outputs)


class UnsupportedLayerError(ValueError):
    """A layer the modified-gradient rules cannot pass through."""


def _unsupported(layer, method: str, why: str):
    return UnsupportedLayerError(
        f"method {method!r} cannot pass layer {layer.name!r} ({type(layer).__name__}): {why}. "
        "Supported: affine layers, max pooling, LSTM, GRU (and Bidirectional of them) and element-wise activations "
        f"({', '.join(sorted(ELEMENTWISE_ACTIVATIONS))})"
    )


def _parents(operation) -> list:
    """The operations whose outputs ``operation`` is called on, in every graph it belongs to."""
    return [parent.operation for node in operation._inbound_nodes for parent in node.parent_nodes]


def _upstream(model, layer) -> frozenset:
    """The ids of ``layer`` and of every leaf layer that runs before it (its ancestors in ``model``'s graph,
    through nested models): once ``layer``'s output is replaced, no derivative reaches them, so no rule
    applies to them."""
    if layer is None:
        return frozenset()
    found = {id(layer)}

    def add_ancestors(operation):
        stack = _parents(operation)
        while stack:
            ancestor = stack.pop()
            if id(ancestor) not in found:
                found.add(id(ancestor))
                stack += _parents(ancestor) + (list(graph.leaf_layers(ancestor))
                                              if isinstance(ancestor, keras.Model) else [])

    def holds(container) -> bool:  # ``layer`` is in ``container``: add its ancestors at every nesting level
        for operation in getattr(container, "operations", None) or container.layers:
            if operation is layer or (isinstance(operation, keras.Model) and holds(operation)):
                add_ancestors(operation)
                return True
        return False

    holds(model)
    return frozenset(found)


class ModifiedModel:
    """A Keras model re-run layer by layer (:func:`idgi_tf.attribution.graph.run`) with modified
    nonlinearity derivatives.

    ``ModifiedModel(model, "elrp", epsilon)(x)`` gives the model's logits with
    epsilon-LRP derivatives; ``ModifiedModel(model, "deeplift")(concat([x, x']))``
    gives the logits of both halves with DeepLIFT-Rescale derivatives. :meth:`call_layer`
    is the rule of one layer call, the hook ``graph.run`` takes. With ``layer`` (a leaf layer whose
    output is replaced by the attributed activations), that layer and the ones upstream of it run plainly
    and are not checked: any layer (an ``Embedding``) may precede the attribution layer.
    """

    def __init__(self, model, method: str, epsilon: float = EPSILON, layer=None):
        if not graph.runnable(model):
            raise TypeError(
                f"method {method!r} needs a functional or Sequential Keras model, got {type(model).__name__}"
            )
        self.model = model
        self.method = _checks.choice(method, "method", MODIFIED_GRADIENT_METHODS)
        self.wrap = rescale_rule if method == "deeplift" else functools.partial(epsilon_rule, epsilon=epsilon)
        self.final = frozenset(map(id, graph.output_layers(model)))
        self.upstream = _upstream(model, layer)
        for inner in graph.leaf_layers(model):
            if id(inner) not in self.upstream:
                self._check(inner)

    def _check(self, layer):
        """Raise for a layer or operation the rules cannot pass, before anything runs."""
        kind = type(layer).__name__
        if not isinstance(layer, keras.layers.Layer):
            if _computes_a_mask(layer):
                return
            raise _unsupported(layer, self.method, "a bare Keras operation; use a layer")
        if kind == "Embedding":
            raise _unsupported(layer, self.method, "it takes integer ids; attribute at it or after it with layer=")
        if kind not in KNOWN_LAYERS:
            raise _unsupported(layer, self.method, "its gradient rule is not known")
        if kind == "Softmax" and id(layer) not in self.final:
            raise _unsupported(layer, self.method, "softmax is supported only as the model's last layer")
        if kind == "Activation" or kind in AFFINE_LAYERS:
            self._activation(layer)
        if kind in RECURRENT_LAYERS:
            self._check_recurrent(layer)

    def _check_recurrent(self, layer):
        """An LSTM or GRU (or a Bidirectional of them) over a static number of steps, not stateful, with
        element-wise cell activations."""
        if any(node.input_tensors[0].shape[1] is None for node in layer._inbound_nodes):
            raise _unsupported(layer, self.method, "its number of steps is not static; give Input a fixed length")
        for direction in _directions(layer):
            if type(direction).__name__ not in ("LSTM", "GRU"):
                raise _unsupported(layer, self.method,
                                   f"Bidirectional is supported around LSTM or GRU, not {type(direction).__name__}")
            if direction.stateful:
                raise _unsupported(layer, self.method, "a stateful layer carries its states between calls")
            for function in (direction.cell.activation, direction.cell.recurrent_activation):
                name = _activation_name(function)
                if name != "linear" and name not in ELEMENTWISE_ACTIVATIONS:
                    raise _unsupported(layer, self.method, f"activation {name!r} is not a known element-wise function")

    def _activation(self, layer):
        """``layer.activation`` as None (linear or none), "drop" (the final softmax) or the function."""
        if not hasattr(layer, "activation"):
            return None
        name = _activation_name(layer.activation)
        if name == "linear":
            return None
        if name == "softmax" and id(layer) in self.final:
            return "drop"
        if name == "softmax":
            raise _unsupported(layer, self.method, "softmax is supported only as the model's last layer")
        if name not in ELEMENTWISE_ACTIVATIONS:
            raise _unsupported(layer, self.method, f"activation {name!r} is not a known element-wise function")
        return layer.activation

    def __call__(self, inputs):
        """The model's outputs on ``inputs`` (its input structure) with the modified derivatives."""
        return graph.run(self.model, inputs, self.call_layer)

    def call_layer(self, layer, *args, **kwargs):
        """One leaf layer call with the rule: affine layers and max pooling plain, element-wise nonlinearities
        wrapped, the final softmax dropped; layers upstream of the attribution layer plain."""
        kind = type(layer).__name__
        if id(layer) in self.upstream:
            return graph.inference_call(layer, *args, **kwargs)
        if kind == "Softmax":  # the final one (checked)
            return args[0]
        if kind in RECURRENT_LAYERS:
            return self._recurrent(layer, *args, **kwargs)
        if kind in ELEMENTWISE_LAYERS:
            return self.wrap(functools.partial(layer, training=False))(args[0])
        activation = self._activation(layer)
        if kind == "Activation":
            return args[0] if activation in (None, "drop") else self.wrap(activation)(args[0])
        if activation is None:
            return graph.inference_call(layer, *args, **kwargs)
        z = graph.without_activation(layer, *args, **kwargs)
        return z if activation == "drop" else self.wrap(activation)(z)

    def _nonlinear(self, function):
        """``function`` with the rule (the function itself where it is linear)."""
        return function if _activation_name(function) == "linear" else self.wrap(function)

    def _recurrent(self, layer, sequences, initial_state=None, mask=None, training=None):
        """An LSTM or GRU re-run step by step with the rule on its gate activations (:func:`rerun_recurrent`);
        a Bidirectional one runs its two directions so and merges them as Keras does. ``training`` is ignored:
        the rules explain the model at inference (no dropout)."""
        if type(layer).__name__ != "Bidirectional":
            return rerun_recurrent(layer, sequences, self._nonlinear, mask, initial_state)
        if initial_state is None:
            parts = (None, None)
        else:  # the forward direction's states, then the backward one's (Keras' order)
            half = len(initial_state) // 2
            parts = (initial_state[:half], initial_state[half:])
        forward, backward = (rerun_recurrent(direction, sequences, self._nonlinear, mask, part)
                             for direction, part in zip(_directions(layer), parts))
        return _merge_directions(layer, forward, backward)


def modified_model(model, method: str, epsilon: float = EPSILON, layer=None) -> ModifiedModel:
    """The :class:`ModifiedModel` of ``model`` for ``method`` (elrp or deeplift) and attribution ``layer``
    (None: the inputs), built once per model."""
    return cached(model, ("modified", method, float(epsilon), layer),
                  lambda: ModifiedModel(model, method, epsilon, layer))


def modified_gradient_attribution(explained, modified: ModifiedModel, x, baseline, context):
    """``x * g~`` (epsilon-LRP) or ``(x - x') * g~`` (DeepLIFT) for a batch, as float64.

    ``g~`` is the gradient of ``explained.pick(explained.outputs(x))`` with ``modified``'s rules on every layer
    call. ``x`` are the inputs (flat for several inputs) or, with ``explained.layer``, that layer's output
    activations (then ``baseline`` holds its activations for the baseline inputs). DeepLIFT runs
    ``[x; x']`` (and the context twice) as one doubled batch: the Rescale rule needs ``z`` and ``z'`` side by side.
    """
    n = x.shape[0]
    doubled = modified.method == "deeplift"
    points = tf.concat([x, baseline], axis=0) if doubled else x
    rows = repeat_rows(context, 2) if doubled else context
    with tf.GradientTape() as tape:
        tape.watch(points)
        value = explained.pick(explained.outputs(points, rows, call_layer=modified.call_layer), rows)[:n]
    grad = tape.gradient(value, points)
    grad = fresh_zeros(tf.shape(x)) if grad is None else grad[:n]
    difference = x - baseline if doubled else x
    return {"plain": tf.cast(difference * grad, tf.float64)}


def compiled_modified_gradient(explained, method: str, epsilon: float, jit_compile: bool = False):
    """:func:`modified_gradient_attribution` of ``(x, baseline, context)`` for ``explained``, as a ``tf.function``
    cached on ``explained.model``; the model's layers are checked here, before its first pass."""
    modified = modified_model(explained.model, method, epsilon, explained.layer)
    return cached(
        explained.model,
        ("modified_gradient", method, float(epsilon), bool(jit_compile), explained),
        lambda: tf.function(
            functools.partial(modified_gradient_attribution, explained, modified), jit_compile=bool(jit_compile)
        ),
    )
