"""How much of an image is there: the information levels of SIC/AIC, and their blurred base image.

* Normalised entropy (Kapishnikov et al. 2019, XRAI; IDGI paper section 4.4):
  the byte size of the image as lossless WebP at quality 100, exactly PAIR's
  ``estimate_image_entropy``. It runs on the host (PIL releases the GIL, so a
  thread pool overlaps it with the model).
* MS-SSIM (IDGI paper section 4.5): ``tf.image.ssim_multiscale(image, original,
  max_val=255)`` with the default five-scale power factors, on the device.
"""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf
from PIL import Image, ImageFilter

MS_SSIM_MIN_SIDE = 161  # five scales of an 11-tap filter: (11 - 1) * 2**4 + 1 pixels


def pixels_uint8(images: np.ndarray, name: str = "images") -> np.ndarray:
    """``images`` rounded to 8-bit pixels; they must lie in [0, 255] (SIC/AIC compress 8-bit images)."""
    low, high = float(np.min(images)), float(np.max(images))
    if low < -0.5 or high > 255.5:
        raise ValueError(
            f"{name} must hold 8-bit pixel values in [0, 255] (SIC/AIC blur and compress 8-bit "
            f"images; wrap a model that expects other inputs with idgi_tf.models.pixel_model), "
            f"got values in [{low:.3g}, {high:.3g}]"
        )
    return np.clip(np.round(images), 0, 255).astype(np.uint8)


def refuse_unit_range(values, name: str = "images") -> None:
    """Refuse float pixels whose maximum is in (0, 1]: images in [0, 1], which rounding to 8 bits turns into {0, 1}."""
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.floating) or not array.size:
        return
    high = float(np.max(array))
    if 0.0 < high <= 1.0:
        raise ValueError(
            f"{name} are float pixels with maximum {high:.3g}, images in [0, 1]; SIC/AIC blur and compress 8-bit "
            f"pixels in [0, 255], so rounding would turn them into 0s and 1s; convert with {name} * 255"
        )


PIL_CHANNELS = (1, 3)  # grayscale ("L") and RGB


def check_channels(shape) -> None:
    """PIL blurs and compresses grayscale or RGB images only."""
    if shape[-1] not in PIL_CHANNELS:
        raise ValueError(
            f"images must have 1 (grayscale) or 3 (RGB) channels to be blurred and compressed, got {shape[-1]}"
        )


def _pil(image: np.ndarray) -> Image.Image:
    """One (H, W, 1) or (H, W, 3) uint8 image as a PIL image ("L" or "RGB")."""
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def webp_size(image: np.ndarray) -> int:
    """Bytes of one (H, W, C) uint8 image as lossless WebP, quality 100 (PAIR ``estimate_image_entropy``)."""
    buffer = io.BytesIO()
    _pil(image).save(buffer, format="webp", lossless=True, quality=100)
    return buffer.tell()


def gaussian_blurred(images: np.ndarray, radius: float) -> np.ndarray:
    """``PIL.ImageFilter.GaussianBlur(radius)`` of each (N, H, W, C) uint8 image: the SIC/AIC base."""
    blur = ImageFilter.GaussianBlur(radius)
    return np.stack([np.asarray(_pil(image).filter(blur)).reshape(image.shape) for image in images])


def check_ms_ssim_size(shape) -> None:
    """MS-SSIM's five scales need images of at least 161 x 161 pixels."""
    if min(shape[1], shape[2]) < MS_SSIM_MIN_SIDE:
        raise ValueError(
            f"information='msssim' needs images of at least {MS_SSIM_MIN_SIDE}x{MS_SSIM_MIN_SIDE} "
            f"pixels (five MS-SSIM scales), got {shape[1]}x{shape[2]}; use information='entropy'"
        )


def ms_ssim(images: tf.Tensor, references: tf.Tensor) -> tf.Tensor:
    """MS-SSIM of each image against its reference, pixels in [0, 255]: (n,) in [0, 1]."""
    return tf.image.ssim_multiscale(images, references, max_val=255.0)
