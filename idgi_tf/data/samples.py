"""Sample photos that run anywhere: 7 shipped ILSVRC2012 validation JPEGs and 4 scikit-image photos."""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from .. import _checks
from .imagenet import read_boxes, val_index, val_labels
from .images import box_mask, load_image
from .shipped import package_file


class Samples(NamedTuple):
    """A labelled set of images: pixels, ImageNet labels (Keras order), box masks, names."""

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    names: list


# scikit-image photo -> (ImageNet class, hand-drawn box (x0, y0, x1, y1) in its pixels)
SAMPLE_PHOTOS = {
    "chelsea": (281, (110, 50, 365, 300)),  # tabby: the cat's face
    "coffee": (967, (172, 18, 410, 290)),  # espresso: the cup
    "rocket": (657, (298, 125, 346, 410)),  # missile: the launch vehicle
    "astronaut": (812, (352, 0, 470, 290)),  # space_shuttle: the shuttle model
}
# The ILSVRC2012 validation photos shipped in the package (BSD licence, see _data/imagenet_val_samples/).
VAL_SAMPLES_DIR = "imagenet_val_samples"
SAMPLE_SETS = ("imagenet", "photos")


def val_sample_files() -> list[str]:
    """Paths of the 7 ILSVRC2012 validation JPEGs shipped with the package, in name order."""
    folder = package_file(VAL_SAMPLES_DIR)
    return sorted(str(folder.joinpath(name)) for name in os.listdir(str(folder)) if name.endswith(".JPEG"))


def sample_images(size: int = 224, which=SAMPLE_SETS) -> Samples:
    """Real photographs that ship with the package and scikit-image, with labels and boxes.

    The default data of the benchmark and the examples: it runs anywhere,
    without downloads.

    Args:
      size: the model's input side (the pinned resize-and-crop policy).
      which: ``"imagenet"``, ``"photos"`` or both (default, in that order):
        ``imagenet`` = 7 ILSVRC2012 validation images with their true labels
        and official boxes (names ``ILSVRC2012_val_…``); ``photos`` = 4
        scikit-image photographs (``chelsea``, ``coffee``, ``rocket``,
        ``astronaut``) with the ImageNet class a person would give and a
        hand-drawn box.
    """
    which = (which,) if isinstance(which, str) else tuple(which)
    for part in which:
        _checks.choice(part, "which", SAMPLE_SETS)
    if not which:
        raise ValueError(f"which must name at least one of {SAMPLE_SETS}, got {which!r}")
    sources = []  # (name, pixels or path, label, boxes)
    if "imagenet" in which:
        boxes, labels = read_boxes(), val_labels()
        for path in val_sample_files():
            number = val_index(path)
            sources.append((os.path.basename(path)[: -len(".JPEG")], path, int(labels[number]), boxes[number]))
    if "photos" in which:
        from skimage import data as skdata

        for name, (label, box) in SAMPLE_PHOTOS.items():
            sources.append((name, getattr(skdata, name)(), label, [box]))
    images, masks = [], []
    for _, source, _, boxes in sources:
        image, moved = load_image(source, size, boxes=boxes)
        images.append(image)
        masks.append(box_mask(moved, size).numpy())
    labels = np.array([label for _, _, label, _ in sources], np.int32)
    return Samples(np.stack(images), labels, np.stack(masks), [name for name, _, _, _ in sources])
