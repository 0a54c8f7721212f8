"""Shared fixtures: tiny models and real photos, all available offline (helpers: tests/helpers.py)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from helpers import photos, smooth_cnn  # noqa: E402


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
