"""Shared fixtures: tiny models and real photos, all available offline."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from skimage import data as skdata  # noqa: E402
from skimage.transform import resize  # noqa: E402

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


@pytest.fixture(scope="session")
def images() -> np.ndarray:
    return photos()


@pytest.fixture(scope="session")
def model() -> keras.Model:
    return smooth_cnn()


@pytest.fixture(scope="session")
def targets() -> np.ndarray:
    return np.array([1, 3, 4], np.int32)


@pytest.fixture(scope="session")
def trained_model() -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """A small ReLU CNN trained here to tell which image quadrant holds a bright square.

    Returns (model, images, labels) on held-out images it classifies.
    """
    rng = np.random.default_rng(0)
    count, size = 600, 24
    x = rng.uniform(0, 80, (count, size, size, 3)).astype(np.float32)
    y = rng.integers(0, 4, count)
    for image, label in zip(x, y):
        row, col = divmod(int(label), 2)
        top, left = 2 + row * 12 + rng.integers(0, 4), 2 + col * 12 + rng.integers(0, 4)
        image[top : top + 6, left : left + 6] = 255.0
    keras.utils.set_random_seed(1)
    net = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(8, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(4),
            keras.layers.Softmax(),
        ]
    )
    net.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    net.fit(x[:500], y[:500], epochs=8, batch_size=50, verbose=0)
    held_x, held_y = x[500:], y[500:]
    correct = np.argmax(net.predict(held_x, verbose=0), axis=1) == held_y
    assert correct.mean() > 0.9, f"the test model failed to train (accuracy {correct.mean():.2f})"
    return net, held_x[correct][:4], held_y[correct][:4].astype(np.int32)


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
