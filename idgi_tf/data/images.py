"""The pinned loading policy: one image (and its boxes) resized and centre-cropped to the model's side.

Loading policy (docs/models-and-data.md#image-loading): resize the shorter side to
``round(size * 256 / 224)`` (bilinear, antialiased), then centre-crop to
``size`` x ``size``; pixels stay RGB float32 in [0, 255]. Boxes ``(x0, y0, x1,
y1)`` in original-image pixels go through the same scale and crop, and a box
mask marks the pixels whose centres fall inside any box.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from PIL import Image

from .. import _checks
from ..models.pixel import PIXEL_RANGE


def resize_and_crop(image: tf.Tensor, boxes: tf.Tensor, size: int):
    """The pinned policy on one image (H, W, C) and its boxes (k, 4), in TF ops."""
    shape = tf.cast(tf.shape(image)[:2], tf.float64)
    short = float(round(size * 256 / 224))
    scale = short / tf.reduce_min(shape)
    new_shape = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), size)
    resized = tf.image.resize(tf.cast(image, tf.float32), new_shape, method="bilinear", antialias=True)
    top, left = (new_shape[0] - size) // 2, (new_shape[1] - size) // 2
    cropped = tf.clip_by_value(resized[top : top + size, left : left + size], 0.0, 255.0)
    ratio = tf.cast(new_shape, tf.float64) / shape  # (y, x)
    offset = tf.cast(tf.stack([left, top, left, top]), tf.float64)
    factors = tf.stack([ratio[1], ratio[0], ratio[1], ratio[0]])
    moved = tf.clip_by_value(tf.cast(boxes, tf.float64) * factors - offset, 0.0, float(size))
    return tf.ensure_shape(cropped, [size, size, None]), moved


def box_mask(boxes, size: int) -> tf.Tensor:
    """(size, size) float32 mask: 1 where a pixel centre lies inside any box (x0, y0, x1, y1)."""
    boxes = tf.reshape(tf.cast(boxes, tf.float64), [-1, 4])
    centres = tf.range(size, dtype=tf.float64) + 0.5
    inside_x = (centres[None] >= boxes[:, 0:1]) & (centres[None] < boxes[:, 2:3])  # (k, size)
    inside_y = (centres[None] >= boxes[:, 1:2]) & (centres[None] < boxes[:, 3:4])
    union = tf.reduce_any(inside_y[:, :, None] & inside_x[:, None, :], axis=0)
    return tf.cast(union, tf.float32)


def _as_rgb_array(path_or_array) -> np.ndarray:
    if isinstance(path_or_array, (str, os.PathLike)):
        if not os.path.isfile(path_or_array):
            raise FileNotFoundError(f"image file not found: {path_or_array}")
        try:  # TensorFlow's decoder, the one tfds uses: the same pixels as the ImageNet pipeline
            encoded = tf.io.read_file(os.fspath(path_or_array))
            return tf.io.decode_image(encoded, channels=3, expand_animations=False).numpy()
        except tf.errors.InvalidArgumentError:  # formats TF cannot read (TIFF, WebP, ...)
            with Image.open(path_or_array) as picture:
                return np.asarray(picture.convert("RGB"))
    array = np.asarray(path_or_array)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
                                     or array.dtype == bool):
        raise TypeError(f"image must be a path or an array of pixels, got dtype {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"image must be a path or an (H, W, 3) array, got shape {array.shape}")
    if 0 in array.shape:
        raise ValueError(f"image must have at least one pixel, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("image contains NaN or Inf pixels")
    return array


def _boxes(boxes) -> np.ndarray:
    """``boxes`` as a float64 (k, 4) array of (x0, y0, x1, y1); one box may be given flat."""
    if boxes is None:
        return np.zeros((0, 4))
    array = np.asarray(boxes, np.float64)
    if array.shape == (4,):
        array = array[None]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must have shape (k, 4), one (x0, y0, x1, y1) per box, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("boxes contain NaN or Inf values")
    return array


def load_image(path_or_array, size: int, boxes=None):
    """Load one image with the pinned policy: RGB float32 (size, size, 3) in [0, 255].

    Args:
      path_or_array: an image file (any format PIL reads) or an (H, W, 3) array
        of pixels in [0, 255] (a float array in [0, 1] gets a warning).
      size: the model's input side.
      boxes: optional (k, 4) boxes ``(x0, y0, x1, y1)`` in the original pixels.

    Returns:
      The image, or ``(image, boxes)`` with the boxes moved by the same
      resize and crop (clipped to the crop); :func:`box_mask` turns them into
      a mask.

    Example:
      >>> image, moved = load_image("cat.jpg", 224, boxes=[[10, 20, 200, 180]])
      >>> mask = box_mask(moved, 224)
    """
    size = _checks.positive_int(size, "size")
    array = _as_rgb_array(path_or_array)
    _checks.warn_if_unit_range(array, PIXEL_RANGE, "load_image")
    given = _boxes(boxes)
    image, moved = resize_and_crop(tf.constant(array), tf.constant(given), size)
    return image.numpy() if boxes is None else (image.numpy(), moved.numpy())
