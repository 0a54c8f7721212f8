"""Shared test helpers: tiny models, real photos, reference gradients (fixtures live in conftest.py)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from skimage import data as skdata
from skimage.transform import resize

SIZE = 32
NUM_CLASSES = 5


def photos(size: int = SIZE) -> np.ndarray:
    """Three real RGB photos shipped by scikit-image, float32 [0, 255], (3, size, size, 3)."""
    pictures = [skdata.astronaut(), skdata.chelsea(), skdata.coffee()]
    return np.stack(
        [resize(p, (size, size), anti_aliasing=True, preserve_range=True) for p in pictures]
    ).astype(np.float32)


def smooth_cnn(size: int = SIZE, seed: int = 0) -> keras.Model:
    """Random-init conv net with tanh units and random biases: nonzero gradients everywhere."""
    keras.utils.set_random_seed(seed)
    biases = keras.initializers.RandomNormal(0.0, 0.5)
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            keras.layers.Conv2D(8, 3, activation="tanh", bias_initializer=biases),
            keras.layers.AveragePooling2D(4),
            keras.layers.Conv2D(8, 3, activation="tanh", bias_initializer=biases),
            keras.layers.Flatten(),
            keras.layers.Dense(NUM_CLASSES, bias_initializer=biases),
            keras.layers.Softmax(),
        ]
    )



def value_and_grad(model, images: np.ndarray, targets: np.ndarray):
    """Reference f and grad f per image, eagerly, one image at a time (float64 out)."""
    values, grads = [], []
    for image, target in zip(images, targets):
        x = tf.constant(image[None], tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = model(x, training=False)[0, int(target)]
        values.append(float(value))
        grads.append(tape.gradient(value, x)[0].numpy().astype(np.float64))
    return np.array(values), np.stack(grads)


class CountingModel:
    """Counts the model inputs evaluated at run time (a variable updated inside the compiled loops too)."""

    def __init__(self, model):
        self.model = model
        self.inputs = tf.Variable(0, dtype=tf.int64, trainable=False)

    def __call__(self, images):
        self.inputs.assign_add(tf.cast(tf.shape(images)[0], tf.int64))
        return self.model(images)


def bias_free_relu_cnn(height: int, width: int, channels: int) -> keras.Model:
    """A ReLU CNN with Keras' default zero biases and max pooling: its gradient vanishes at black."""
    keras.utils.set_random_seed(3)
    return keras.Sequential([
        keras.Input((height, width, channels)),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(6, 3, activation="relu"),  # Keras' default zero biases
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(4),
        keras.layers.Softmax(),
    ])
