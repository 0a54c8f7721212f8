"""Grad-CAM and Grad-CAM++: a convolutional layer's activations weighted by the gradient of the target's logit.

For the activations ``A`` (h, w, K) of a convolutional layer and the gradient ``g = dy/dA`` of the target's
logit ``y`` (a final softmax is left out, as for elrp and deeplift):

* Grad-CAM (Selvaraju et al. 2017, eq. 1-2): ``w_k = mean_ij g_ijk``, ``L = ReLU(sum_k w_k A_k)``;
* Grad-CAM++ (Chattopadhay et al. 2018, eq. 19 with ``exp(y)``'s derivatives written by ``g``):
  ``a_ijk = g_ijk^2 / (2 g_ijk^2 + sum_ab A_abk g_ijk^3)`` (0 where the denominator is 0),
  ``w_k = sum_ij a_ijk ReLU(g_ijk)``, ``L = ReLU(sum_k w_k A_k)``, as pytorch-grad-cam (Xplique's ``GradCAMPP``
  takes means where the paper sums).

``L`` (h, w) is upsampled bilinearly to the images' (H, W) (``tf.image.resize``: half-pixel centres, as
PyTorch's ``align_corners=False``) and spread evenly over the C channels, so the maps are shaped like the
images and their channel sum is ``L``. One forward and one backward pass per image: the layer's output is
read and differentiated inside the same pass (:func:`idgi_tf.graph.run`).
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from .. import graph
from ..runtime import cached


def _feature_maps(layer) -> bool:
    """Whether ``layer`` outputs float feature maps ``(N, h, w, K)`` of more than one position."""
    output = getattr(layer, "output", None)
    return (isinstance(output, keras.KerasTensor) and len(output.shape) == 4 and output.dtype.startswith("float")
            and type(layer).__name__ != "InputLayer" and (output.shape[1] or 2) * (output.shape[2] or 2) > 1)


def last_conv_layer(model):
    """The default layer: the last leaf layer of ``model`` (nested models included) whose output is a float
    ``(N, h, w, K)`` tensor with more than one position, e.g. EfficientNet-Lite's ``bn1_relu6`` before its
    global pooling (a ``(N, 1, 1, K)`` head, as MobileNet's ``conv_preds``, would give a uniform map).

    Example:
      >>> last_conv_layer(models.load("EfficientNetLite0")).name
      'bn1_relu6'
    """
    if not graph.runnable(model):
        raise TypeError(f"Grad-CAM needs a functional or Sequential Keras model to find its layer, got "
                        f"{type(model).__name__}")
    found = [layer for layer in graph.leaf_layers(model) if _feature_maps(layer)]
    if not found:
        raise ValueError(f"model {model.name!r} has no layer with a 4-D (N, h, w, K) float output of more than one "
                         "position for Grad-CAM; pass layer= (a convolutional layer's name)")
    return found[-1]


def checked_conv_layer(model, layer):
    """``layer`` (a name or a layer of ``model``; None: :func:`last_conv_layer`), called once, with a float
    ``(N, h, w, K)`` output of more than one position.

    Example:
      >>> checked_conv_layer(model, "conv_head").name
      'conv_head'
    """
    found = graph.called_once(last_conv_layer(model) if layer is None else graph.find_layer(model, layer))
    if not _feature_maps(found):
        output = getattr(found, "output", None)
        shape = output.shape if isinstance(output, keras.KerasTensor) else type(output).__name__
        raise ValueError(f"layer={found.name!r} must output float (N, h, w, K) feature maps of more than one position "
                         f"for Grad-CAM (not the model's input; a 1 x 1 map gives a uniform picture), got {shape}")
    return found


def cam_weights(activations: tf.Tensor, gradients: tf.Tensor, plus_plus: bool) -> tf.Tensor:
    """The channel weights ``w`` (b, K) from the activations ``A`` and the gradient ``g`` (b, h, w, K): Grad-CAM's
    ``w_k = mean_ij g_ijk`` (Selvaraju et al. 2017, Eq. 1) or Grad-CAM++'s ``w_k = sum_ij a_ijk ReLU(g_ijk)``,
    ``a_ijk = g_ijk^2 / (2 g_ijk^2 + sum_ab A_abk g_ijk^3)`` (Chattopadhay et al. 2018, Eq. 19).

    Example:
      >>> cam = tf.nn.relu(tf.einsum("bhwk,bk->bhw", a, cam_weights(a, g, plus_plus=False)))
    """
    if not plus_plus:
        return tf.reduce_mean(gradients, axis=(1, 2))
    squared = tf.square(gradients)
    denominator = 2.0 * squared + tf.reduce_sum(activations, axis=(1, 2), keepdims=True) * squared * gradients
    alphas = tf.math.divide_no_nan(squared, denominator)
    return tf.reduce_sum(alphas * tf.nn.relu(gradients), axis=(1, 2))


def gradcam_maps(explained, layer, plus_plus: bool, images, baseline, context) -> dict:
    """``{"plain": maps}`` shaped like ``images`` (b, H, W, C): the upsampled ``ReLU(sum_k w_k A_k) / C`` per
    channel. ``baseline`` is unused (the group-function signature of :func:`idgi_tf.attribute`)."""
    captured = []
    logits = graph.without_final_softmax(explained.model)

    def call(called, *args, **kwargs):
        output = logits(called, *args, **kwargs)
        if called is layer:
            tape.watch(output)
            captured.append(output)
        return output

    with tf.GradientTape() as tape:
        value = explained.pick(explained.outputs(images, context, call), context)
    (activations,) = captured
    gradients = tape.gradient(value, activations)
    weights = cam_weights(activations, gradients, plus_plus)
    cam = tf.nn.relu(tf.einsum("bhwk,bk->bhw", activations, weights))
    upsampled = tf.image.resize(cam[..., None], tf.shape(images)[1:3], method="bilinear")
    channels = images.shape[-1]
    return {"plain": tf.repeat(upsampled / channels, channels, axis=-1)}


def compiled_gradcam(explained, layer, plus_plus: bool, jit_compile: bool):
    """:func:`gradcam_maps` for ``explained`` at ``layer`` as a ``tf.function`` cached on the model."""
    return cached(explained, ("gradcam", layer, bool(plus_plus), bool(jit_compile)),
                  lambda: tf.function(functools.partial(gradcam_maps, explained, layer, bool(plus_plus)),
                                      jit_compile=bool(jit_compile)))
