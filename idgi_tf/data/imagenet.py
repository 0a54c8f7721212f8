"""ImageNet validation: labels and boxes of the 50,000 images (shipped), and the tfds dataset.

Shipped with the package (offline): the labels and boxes of all 50,000 ILSVRC2012
validation images (boxes from clovaai/wsolevaluation, MIT licence, see ``_data/``).
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import tempfile
import xml.etree.ElementTree as ElementTree

import numpy as np
import tensorflow as tf

from .. import _checks
from .images import box_mask, resize_and_crop
from .shipped import package_file

VAL_TAR = "ILSVRC2012_img_val.tar"
NUM_VAL_IMAGES = 50_000
_VAL_NAME = re.compile(r"ILSVRC2012_val_(\d{8})")


def val_index(file_name: str) -> int:
    """1-based index of an ILSVRC2012 validation file name, e.g. '..._val_00000042.JPEG' -> 42."""
    match = _VAL_NAME.search(os.path.basename(str(file_name)))
    if not match:
        raise ValueError(f"not an ILSVRC2012 validation file name: {file_name!r}")
    return int(match.group(1))


@functools.lru_cache(maxsize=1)
def val_labels() -> np.ndarray:
    """Keras-order labels of the validation images, indexed by :func:`val_index` (entry 0 unused)."""
    labels = np.full(NUM_VAL_IMAGES + 1, -1, np.int32)
    with gzip.open(package_file("imagenet_val_labels.txt.gz").open("rb"), "rt") as lines:
        for line in lines:
            name, label = line.strip().split(",")
            labels[val_index(name)] = int(label)
    return labels


def _boxes_from_text(lines) -> dict[int, list]:
    boxes: dict[int, list] = {}
    for line in lines:
        if line.strip():
            name, *coordinates = line.strip().split(",")
            boxes.setdefault(val_index(name), []).append([float(c) for c in coordinates])
    return boxes


def _boxes_from_xml(folder: str) -> dict[int, list]:
    boxes: dict[int, list] = {}
    for file_name in sorted(os.listdir(folder)):
        if file_name.endswith(".xml") and _VAL_NAME.search(file_name):
            root = ElementTree.parse(os.path.join(folder, file_name)).getroot()
            boxes[val_index(file_name)] = [
                [float(box.findtext(tag)) for tag in ("xmin", "ymin", "xmax", "ymax")]
                for box in root.iter("bndbox")
            ]
    return boxes


@functools.lru_cache(maxsize=1)
def _shipped_boxes() -> dict[int, list]:
    with gzip.open(package_file("imagenet_val_boxes.txt.gz").open("rb"), "rt") as lines:
        return _boxes_from_text(lines)


def read_boxes(boxes_dir: str | None = None) -> dict[int, list]:
    """Validation boxes ``{val_index: [[x0, y0, x1, y1], ...]}`` in original pixels.

    ``boxes_dir`` may hold the official ILSVRC2012 validation XML annotations
    (``ILSVRC2012_val_XXXXXXXX.xml``) or a ``localization.txt`` in the
    wsolevaluation format (``val/ILSVRC2012_val_XXXXXXXX.JPEG,x0,y0,x1,y1``);
    ``None`` reads the copy shipped with the package (parsed once and shared:
    treat it as read-only).
    """
    if boxes_dir is None:
        return _shipped_boxes()
    if not os.path.isdir(boxes_dir):
        raise FileNotFoundError(f"boxes_dir is not a folder: {boxes_dir}")
    text = os.path.join(boxes_dir, "localization.txt")
    if os.path.isfile(text):
        with open(text) as lines:
            return _boxes_from_text(lines)
    boxes = _boxes_from_xml(boxes_dir)
    if not boxes:
        raise FileNotFoundError(
            f"boxes_dir {boxes_dir} holds neither localization.txt nor ILSVRC2012_val_*.xml annotations "
            "(get them from the ILSVRC2012 devkit's bounding-box archive for the validation set)"
        )
    return boxes


def _ragged_boxes(boxes: dict[int, list]) -> tf.RaggedTensor:
    """Boxes as a ragged (NUM_VAL_IMAGES + 1, None, 4) tensor indexed by val_index."""
    lengths = np.array([len(boxes.get(i, ())) for i in range(NUM_VAL_IMAGES + 1)])
    flat = [box for i in range(NUM_VAL_IMAGES + 1) for box in boxes.get(i, ())]
    values = np.asarray(flat, np.float64).reshape(-1, 4)
    return tf.RaggedTensor.from_row_lengths(values, lengths)


def imagenet_validation(
    manual_dir: str,
    size: int,
    *,
    boxes_dir: str | None = None,
    limit: int | None = None,
    data_dir: str | None = None,
) -> tf.data.Dataset:
    """The ILSVRC2012 validation set as ``(image, label, box_mask, file_name)`` examples.

    Built on ``tensorflow_datasets``' ``imagenet2012`` (validation split only),
    which needs the manual download: put ``ILSVRC2012_img_val.tar`` (6.3 GB,
    from image-net.org after registering) into ``manual_dir``. The first call
    prepares the tfds copy under ``data_dir`` (default tfds' own); later calls
    reuse it. Images follow the pinned loading policy at ``size``; labels are
    Keras' class order (read from the package, by file name); ``box_mask`` is
    the union of the image's boxes (:func:`read_boxes` of ``boxes_dir``).
    ``limit`` keeps the first examples, in tfds' deterministic order.
    """
    import tensorflow_datasets as tfds

    size = _checks.positive_int(size, "size")
    tar = os.path.join(os.fspath(manual_dir), VAL_TAR)
    if not os.path.isfile(tar):
        raise FileNotFoundError(
            f"{VAL_TAR} not found in manual_dir={manual_dir!r}: download it from image-net.org "
            "(ILSVRC2012 validation images, after registering) and put it there"
        )
    # tfds prepares every split whose tar is in manual_dir; show it only the validation tar.
    staging = tempfile.mkdtemp(prefix="idgi_tf_manual_")
    os.symlink(os.path.abspath(tar), os.path.join(staging, VAL_TAR))
    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=staging, try_download_gcs=False)
    )
    dataset = builder.as_dataset(split="validation", shuffle_files=False)
    if limit is not None:
        dataset = dataset.take(_checks.positive_int(limit, "limit"))

    labels = tf.constant(val_labels())
    boxes = _ragged_boxes(read_boxes(boxes_dir))

    def prepare(example):
        number = tf.strings.to_number(tf.strings.regex_replace(
            example["file_name"], r".*ILSVRC2012_val_(\d{8}).*", r"\1"), tf.int32)
        image, moved = resize_and_crop(example["image"], boxes[number], size)
        return image, labels[number], box_mask(moved, size), example["file_name"]

    return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
