"""Modified-gradient backpropagation: epsilon-LRP and DeepLIFT-Rescale (Ancona et al. 2018, section 3).

Ancona et al. show that both methods are ``x * g~`` (resp. ``(x - x') * g~``)
where ``g~`` is the gradient of the explained output with every element-wise
nonlinearity ``y = a(z)`` given a modified derivative (docs/attribution.md#modified-gradients):

* epsilon-LRP:      ``dy/dz := a(z) / (z + eps * sign(z))``, ``sign(0) = +1``
* DeepLIFT-Rescale: ``dy/dz := (a(z) - a(z')) / (z - z')`` against the
  activation ``z'`` of the reference input ``x'``; where ``|z - z'| < 1e-5``
  the plain derivative ``a'((z + z') / 2)`` instead.

:func:`modified_model` re-runs a Keras model layer by layer with those
derivatives (``tf.custom_gradient``) on its activations. DeepLIFT runs the
input and the reference as one doubled batch, so every nonlinearity sees ``z``
and ``z'`` side by side. Layers are sorted into: affine ones (dense,
convolutions, batch norm in inference, pooling by averaging, padding, adds,
concatenations, reshapes: the plain gradient is the rule), element-wise
nonlinearities (the modified rule), max pooling (gradient routing, as in
DeepExplain), and anything else, which raises an error naming the layer
rather than silently falling back to the plain gradient.

A final softmax is left out: like DeepExplain and Ancona et al., the two
methods explain the target's **logit**, the rules being defined for
element-wise nonlinearities only. Summation-to-delta then reads
``sum(attribution) = logit(x) - logit(x')`` on piecewise-linear networks.
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from .. import _checks
from ..runtime import cached, fresh_zeros

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
KNOWN_LAYERS = AFFINE_LAYERS | ROUTING_LAYERS | ELEMENTWISE_LAYERS | {"InputLayer", "Activation", "Softmax"}
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


class UnsupportedLayerError(ValueError):
    """A layer the modified-gradient rules cannot pass through."""


def _unsupported(layer, method: str, why: str):
    return UnsupportedLayerError(
        f"method {method!r} cannot pass layer {layer.name!r} ({type(layer).__name__}): {why}. "
        "Supported: affine layers, max pooling and element-wise activations "
        f"({', '.join(sorted(ELEMENTWISE_ACTIVATIONS))})"
    )


def _final_layer(model):
    """The layer that produces ``model``'s output, looking inside nested models."""
    layer = model
    while isinstance(layer, keras.Model):
        if isinstance(layer, keras.Sequential):
            layer = layer.layers[-1]
        else:
            layer = layer.outputs[0]._keras_history.operation
    return layer


class ModifiedModel:
    """A Keras model re-run layer by layer with modified nonlinearity derivatives.

    ``ModifiedModel(model, "elrp", epsilon)(x)`` gives the model's logits with
    epsilon-LRP derivatives; ``ModifiedModel(model, "deeplift")(concat([x, x']))``
    gives the logits of both halves with DeepLIFT-Rescale derivatives.
    """

    def __init__(self, model, method: str, epsilon: float = EPSILON):
        if not isinstance(model, keras.Model) or not (
            isinstance(model, keras.Sequential) or hasattr(model, "_run_through_graph")
        ):
            raise TypeError(
                f"method {method!r} needs a functional or Sequential Keras model, got {type(model).__name__}"
            )
        self.model = model
        self.method = _checks.choice(method, "method", MODIFIED_GRADIENT_METHODS)
        self.wrap = rescale_rule if method == "deeplift" else functools.partial(epsilon_rule, epsilon=epsilon)
        self.final = _final_layer(model)
        self._check(model)

    def _check(self, layer):
        """Raise for any layer or operation the rules cannot pass, before anything runs."""
        if isinstance(layer, keras.Model):
            for inner in getattr(layer, "operations", layer.layers):
                self._check(inner)
            return
        kind = type(layer).__name__
        if not isinstance(layer, keras.layers.Layer):
            raise _unsupported(layer, self.method, "a bare Keras operation; use a layer")
        if kind not in KNOWN_LAYERS:
            raise _unsupported(layer, self.method, "its gradient rule is not known")
        if kind == "Softmax" and layer is not self.final:
            raise _unsupported(layer, self.method, "softmax is supported only as the model's last layer")
        if kind == "Activation" or kind in AFFINE_LAYERS:
            self._activation(layer)

    def _activation(self, layer):
        """``layer.activation`` as None (linear or none), "drop" (the final softmax) or the function."""
        if not hasattr(layer, "activation"):
            return None
        name = _activation_name(layer.activation)
        if name == "linear":
            return None
        if name == "softmax" and layer is self.final:
            return "drop"
        if name == "softmax":
            raise _unsupported(layer, self.method, "softmax is supported only as the model's last layer")
        if name not in ELEMENTWISE_ACTIVATIONS:
            raise _unsupported(layer, self.method, f"activation {name!r} is not a known element-wise function")
        return layer.activation

    def __call__(self, x):
        return self._run(self.model, x)

    def _run(self, layer, *args, **kwargs):
        """Call ``layer`` (a model: layer by layer) with the rule on its nonlinearities."""
        if isinstance(layer, keras.Sequential):
            (x,) = args
            for inner in layer.layers:
                x = self._run(inner, x)
            return x
        if isinstance(layer, keras.Model):
            return layer._run_through_graph(
                args[0] if len(args) == 1 else list(args), operation_fn=lambda op: op, call_fn=self._run
            )
        kind = type(layer).__name__
        if kind in ("InputLayer", "Softmax"):  # a Softmax layer here is the final one (checked)
            return args[0]
        if kind in ELEMENTWISE_LAYERS:
            return self.wrap(functools.partial(layer, training=False))(args[0])
        activation = self._activation(layer)
        if kind == "Activation":
            return args[0] if activation in (None, "drop") else self.wrap(activation)(args[0])
        kwargs = {**kwargs, "training": False}  # inference, whatever the graph recorded (e.g. Dropout's call)
        if activation is None:
            return layer(*args, **kwargs)
        saved = layer.activation
        layer.activation = keras.activations.linear
        try:
            z = layer(*args, **kwargs)
        finally:
            layer.activation = saved
        return z if activation == "drop" else self.wrap(activation)(z)


def modified_model(model, method: str, epsilon: float = EPSILON) -> ModifiedModel:
    """The :class:`ModifiedModel` of ``model`` for ``method`` (elrp or deeplift), built once per model."""
    return cached(model, ("modified", method, float(epsilon)), lambda: ModifiedModel(model, method, epsilon))


def modified_gradient_attribution(modified: ModifiedModel, images, baseline, targets):
    """``x * g~`` (epsilon-LRP) or ``(x - x') * g~`` (DeepLIFT) for a batch, as float64.

    ``g~`` is the modified gradient of the target logit; DeepLIFT runs
    ``[images; baseline]`` as one doubled batch.
    """
    n = images.shape[0]
    doubled = modified.method == "deeplift"
    inputs = tf.concat([images, baseline], axis=0) if doubled else images
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        logits = modified(inputs)[:n]
        value = tf.gather(logits, targets, axis=1, batch_dims=1)
    grad = tape.gradient(value, inputs)
    grad = fresh_zeros(tf.shape(images)) if grad is None else grad[:n]
    difference = images - baseline if doubled else images
    return {"plain": tf.cast(difference * grad, tf.float64)}


def compiled_modified_gradient(model, method: str, epsilon: float, jit_compile: bool = False):
    """:func:`modified_gradient_attribution` for ``model``, as a cached ``tf.function``."""
    modified = modified_model(model, method, epsilon)
    return cached(
        model,
        ("modified_gradient", method, float(epsilon), bool(jit_compile)),
        lambda: tf.function(
            functools.partial(modified_gradient_attribution, modified), jit_compile=bool(jit_compile)
        ),
    )
