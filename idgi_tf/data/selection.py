"""The paper's protocol: explain only the images the model classifies correctly."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .. import _checks
from ..runtime import cached, call_model


def _top1(model):
    """The model's top-1 class of a batch of images, compiled once per model."""
    return cached(model, ("top1",), lambda: tf.function(
        lambda images: tf.argmax(call_model(model, images), axis=-1, output_type=tf.int32), reduce_retracing=True))


def correct_predictions(model, images, labels, *, batch_size: int = 32) -> np.ndarray:
    """Per image, whether its label is the model's top-1 class: bool (N,).

    ``images`` (N, H, W, C) and ``labels`` (N,) are arrays; the model runs in
    batches of at most ``batch_size`` images.
    """
    batch_size = _checks.positive_int(batch_size, "batch_size")
    images, labels = np.asarray(images, np.float32), np.asarray(labels)
    if labels.shape != images.shape[:1]:
        raise ValueError(f"labels must have shape ({len(images)},), one per image, got {labels.shape}")
    predict = _top1(model)
    top = [predict(tf.constant(images[i : i + batch_size])).numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(top or [np.zeros(0, np.int32)]) == labels


def correctly_classified(model, dataset: tf.data.Dataset, *, batch_size: int = 32) -> tf.data.Dataset:
    """Keep the examples whose label is the model's top-1 prediction (the paper's protocol).

    ``dataset`` yields ``(image, label, ...)`` tuples, as :func:`idgi_tf.data.imagenet_validation`
    does; the result yields the same tuples, lazily, running the model in
    batches of ``batch_size`` on its own device (not inside tf.data).
    """
    batch_size = _checks.positive_int(batch_size, "batch_size")
    predict = _top1(model)

    def kept():
        for batch in dataset.batch(batch_size):
            right = (predict(batch[0]) == tf.cast(batch[1], tf.int32)).numpy()
            for i in np.flatnonzero(right):
                yield tuple(part[i] for part in batch)

    return tf.data.Dataset.from_generator(kept, output_signature=dataset.element_spec)
