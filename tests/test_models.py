"""The pixel-space wrapper puts Keras preprocessing inside the differentiated model."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import photos

import idgi_tf
from idgi_tf.models import Preprocess, pixel_model, preprocess


@pytest.mark.parametrize("mode", ["tf", "torch", "caffe"])
def test_preprocess_equals_keras_preprocess_input(mode):
    x = photos(16)
    want = keras.applications.imagenet_utils.preprocess_input(x.copy(), mode=mode)
    np.testing.assert_allclose(preprocess(tf.constant(x), mode).numpy(), want, rtol=1e-5, atol=1e-4)


def _tiny_net():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="tanh"),
         keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3), keras.layers.Softmax()]
    )


@pytest.mark.parametrize("mode", ["tf", "torch", "caffe"])
def test_pixel_model_equals_net_on_preprocessed_input_and_black_is_zero(mode):
    net = _tiny_net()
    wrapped = pixel_model(net, mode)
    x = photos(16)
    np.testing.assert_allclose(wrapped(x).numpy(), net(preprocess(tf.constant(x), mode)).numpy(), rtol=1e-5)
    black = np.zeros((1, 16, 16, 3), np.float32)
    np.testing.assert_allclose(
        wrapped(black).numpy(),
        net(keras.applications.imagenet_utils.preprocess_input(black.copy(), mode=mode)).numpy(), rtol=1e-5
    )


def test_gradient_flows_through_preprocessing_chain_rule():
    net = _tiny_net()
    x = photos(16)
    in_pixels = idgi_tf.attribute(pixel_model(net, "tf"), x, [0, 1, 2], "vg")
    in_net_space = idgi_tf.attribute(net, x / 127.5 - 1.0, [0, 1, 2], "vg")
    np.testing.assert_allclose(in_pixels, in_net_space / 127.5, rtol=1e-4, atol=1e-9)


def test_pixel_model_accepts_a_callable_and_saves_with_a_mode(tmp_path):
    net = _tiny_net()
    x = photos(16)
    by_function = pixel_model(net, keras.applications.mobilenet_v2.preprocess_input)
    by_mode = pixel_model(net, "tf")
    np.testing.assert_allclose(by_function(x).numpy(), by_mode(x).numpy(), rtol=1e-6)
    path = tmp_path / "model.keras"
    by_mode.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(restored(x).numpy(), by_mode(x).numpy())
    assert isinstance(restored.get_layer("preprocess"), Preprocess)


def test_pixel_model_rejects_bad_arguments():
    with pytest.raises(TypeError, match="keras_model must be a keras.Model"):
        pixel_model(lambda x: x)
    with pytest.raises(ValueError, match="preprocess must be one of"):
        pixel_model(_tiny_net(), "bgr")


@pytest.mark.parametrize("mode", ["torch", "caffe"])
def test_rgb_statistics_modes_need_three_channels_when_the_wrapper_is_built(mode):
    gray = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=f"preprocess='{mode}' .* needs a model taking 3 channels; this one takes 1"):
        pixel_model(gray, mode)
    for fine in ("tf", "lite", "none"):  # scalar statistics work on any channel count
        assert pixel_model(gray, fine)(np.zeros((1, 8, 8, 1), np.float32)).shape == (1, 2)
