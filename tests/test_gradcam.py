"""Grad-CAM and Grad-CAM++ against a NumPy re-derivation (the model split at the layer), their layer choice and
errors, and on the trained EfficientNet-Lite0: the true class's map covers its box better than chance."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import idgi_tf
from idgi_tf import data, models
from idgi_tf.attribution.gradcam import last_conv_layer


def _split_model(channels: int = 3, seed: int = 0):
    """``(features, head, model)``: model = Sequential([features, head, Softmax]); the head is nonlinear, so
    the gradient at the layer differs per position."""
    keras.utils.set_random_seed(seed)
    features = keras.Sequential([
        keras.Input((13, 10, channels)),
        keras.layers.Conv2D(6, 3, activation="relu", padding="same"),
        keras.layers.Conv2D(5, 3, strides=2, padding="same", activation="relu", name="last_conv"),
    ], name="features")
    head = keras.Sequential([
        keras.Input((7, 5, 5)),
        keras.layers.Flatten(),
        keras.layers.Dense(8, activation="tanh"),
        keras.layers.Dense(3),
    ], name="head")
    model = keras.Sequential([keras.Input((13, 10, channels)), features, head, keras.layers.Softmax()])
    return features, head, model


def _bilinear(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres and clamped edges, (b, h, w) -> (b, height, width)."""

    def weights(size_in, size_out):
        source = np.clip((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0, size_in - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, size_in - 1)
        matrix = np.zeros((size_out, size_in))
        matrix[np.arange(size_out), low] += 1 - (source - low)
        matrix[np.arange(size_out), high] += source - low
        return matrix

    return np.einsum("Hh,bhw,Ww->bHW", weights(maps.shape[1], height), maps, weights(maps.shape[2], width))


def _numpy_cam(features, head, images, targets, plus_plus):
    """Grad-CAM(++) from the activations and the head's gradient, by the papers' formulas in NumPy."""
    activations = features(images)
    with tf.GradientTape() as tape:
        tape.watch(activations)
        logits = head(activations)
        picked = tf.gather(logits, targets, axis=1, batch_dims=1)
    a, g = activations.numpy().astype(np.float64), tape.gradient(picked, activations).numpy().astype(np.float64)
    if plus_plus:
        denominator = 2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3
        alpha = np.where(denominator != 0, g**2 / np.where(denominator != 0, denominator, 1), 0)
        weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    else:
        weights = g.mean(axis=(1, 2))
    cam = np.maximum((a * weights[:, None, None, :]).sum(axis=-1), 0)
    return _bilinear(cam, images.shape[1], images.shape[2])


@pytest.mark.parametrize("method", ["gradcam", "gradcampp"])
@pytest.mark.parametrize("channels", [1, 3])
def test_equals_the_numpy_rederivation(method, channels):
    features, head, model = _split_model(channels)
    images = np.random.default_rng(1).uniform(0, 255, (5, 13, 10, channels)).astype(np.float32)
    targets = np.array([0, 1, 2, 1, 0])
    maps = idgi_tf.attribute(model, images, targets, method, batch_size=2)
    assert maps.shape == images.shape
    expected = _numpy_cam(features, head, images, targets, method == "gradcampp")
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(maps.sum(axis=-1), expected, rtol=2e-4, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_allclose(maps, np.repeat(maps[..., :1], channels, axis=-1))  # spread evenly


def test_the_default_layer_is_the_last_4d_one_and_layer_picks_another():
    features, head, model = _split_model()
    assert last_conv_layer(model) is features.get_layer("last_conv")
    images = np.random.default_rng(2).uniform(0, 255, (2, 13, 10, 3)).astype(np.float32)
    first = features.layers[0]
    at_first = idgi_tf.attribute(model, images, [0, 1], "gradcam", layer=first.name)
    by_object = idgi_tf.attribute(model, images, [0, 1], "gradcam", layer=first)
    np.testing.assert_array_equal(at_first, by_object)
    default = idgi_tf.attribute(model, images, [0, 1], "gradcam")
    assert not np.allclose(at_first, default)
    np.testing.assert_array_equal(default, idgi_tf.attribute(model, images, [0, 1], "gradcam", layer="last_conv"))


def test_a_one_by_one_head_is_not_the_default_and_is_refused_by_name():
    """A (N, 1, 1, K) head (MobileNet's conv_preds) would give a uniform map: the default skips it."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((12, 12, 3), name="pixels")
    hidden = keras.layers.Conv2D(4, 3, activation="relu", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(keepdims=True)(hidden)
    head = keras.layers.Conv2D(3, 1, name="head")(pooled)
    model = keras.Model(inputs, keras.layers.Flatten()(head))
    assert last_conv_layer(model).name == "features"
    images = np.random.default_rng(5).uniform(0, 255, (2, 12, 12, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="layer='head' must output .* more than one position"):
        idgi_tf.attribute(model, images, [0, 1], "gradcam", layer="head")
    with pytest.raises(ValueError, match="layer='pixels' is the model's input layer"):
        idgi_tf.attribute(model, images, [0, 1], "gradcam", layer="pixels")
    with pytest.raises(ValueError, match="layer='pixels' is the model's input layer"):
        idgi_tf.attribute(model, images, [0, 1], "ig", layer="pixels")


def test_a_shared_layer_is_refused_by_both_layer_readers():
    """A layer called twice has no one activation: Grad-CAM and layer attribution refuse it alike."""
    keras.utils.set_random_seed(6)
    inputs = keras.Input((10, 10, 3))
    shared = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="shared")
    hidden = keras.layers.Conv2D(4, 3, name="after")(shared(shared(inputs)))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(hidden)))
    images = np.random.default_rng(6).uniform(0, 255, (1, 10, 10, 3)).astype(np.float32)
    for method in ("gradcam", "ig"):
        with pytest.raises(ValueError, match="layer='shared' is called 2 times in the model \\(a shared layer\\)"):
            idgi_tf.attribute(model, images, [0], method, layer="shared", steps=2)


def test_batch_size_and_compilation_do_not_change_the_maps():
    _, _, model = _split_model()
    images = np.random.default_rng(3).uniform(0, 255, (5, 13, 10, 3)).astype(np.float32)
    one = idgi_tf.attribute(model, images, [0, 1, 2, 0, 1], "gradcampp", batch_size=1)
    many = idgi_tf.attribute(model, images, [0, 1, 2, 0, 1], "gradcampp", batch_size=5, jit_compile=True)
    np.testing.assert_allclose(one, many, rtol=1e-4, atol=1e-6 * np.abs(one).max())


def test_the_explained_scalar_is_the_logit():
    """Grad-CAM of a model ending in Dense(softmax) equals that of its twin ending in Dense(linear)."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((9, 9, 2))
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(hidden)
    softmax = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled))
    linear = keras.Model(inputs, keras.layers.Dense(3)(pooled))
    linear.set_weights(softmax.get_weights())
    images = np.random.default_rng(4).uniform(0, 255, (3, 9, 9, 2)).astype(np.float32)
    np.testing.assert_allclose(idgi_tf.attribute(softmax, images, [0, 1, 2], "gradcam"),
                               idgi_tf.attribute(linear, images, [0, 1, 2], "gradcam"), rtol=1e-5)


def test_clear_errors():
    _, _, model = _split_model()
    images = np.zeros((1, 13, 10, 3), np.float32)
    with pytest.raises(ValueError, match=r"layer='flatten.*must output float \(N, h, w, K\) feature maps"):
        idgi_tf.attribute(model, images, [0], "gradcam", layer=model.layers[1].layers[0].name)
    with pytest.raises(ValueError, match="is a model nested in this one, not a layer: .* its last one, 'last_conv'"):
        idgi_tf.attribute(model, images, [0], "gradcam", layer="features")
    with pytest.raises(ValueError, match="did you mean 'last_conv'"):
        idgi_tf.attribute(model, images, [0], "gradcam", layer="last_cnv")
    with pytest.raises(ValueError, match="takes no baseline"):
        idgi_tf.attribute(model, images, [0], "gradcam", baseline=0.0)
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no layer with a 4-D"):
        idgi_tf.attribute(dense, np.zeros((1, 4), np.float32), [0], "gradcam")
    with pytest.raises(TypeError, match="functional or Sequential Keras model"):
        idgi_tf.attribute(lambda x: x, images, [0], "gradcam")


@pytest.fixture(scope="module")
def lite0_photos():
    model = models.load("EfficientNetLite0")
    samples = data.sample_images(int(model.input_shape[1]))
    return model, samples


@pytest.mark.parametrize("method", ["gradcam", "gradcampp"])
def test_lite0_true_class_map_covers_its_box(lite0_photos, method):
    """On the real photos, the share of the map's mass inside the object's box beats the box's share of the
    image (what a map independent of the object gets on average) on most photos and on the mean."""
    model, samples = lite0_photos
    maps = idgi_tf.attribute(model, samples.images, samples.labels, method, batch_size=4).sum(axis=-1)
    boxes = samples.masks.reshape(maps.shape).astype(bool)
    inside = (maps * boxes).sum(axis=(1, 2)) / maps.sum(axis=(1, 2))
    chance = boxes.mean(axis=(1, 2))
    assert np.isfinite(inside).all()
    assert (inside > chance).sum() >= 0.75 * len(maps), (inside, chance)
    assert inside.mean() > chance.mean() + 0.1, (inside.mean(), chance.mean())
