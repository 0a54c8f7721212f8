"""Images, labels and boxes: the pinned loading policy, ImageNet validation, sample photos.

Loading policy (docs/models-and-data.md#image-loading): resize the shorter side to
``round(size * 256 / 224)`` (bilinear, antialiased), then centre-crop to
``size`` x ``size``; pixels stay RGB float32 in [0, 255]. Boxes ``(x0, y0, x1,
y1)`` in original-image pixels go through the same scale and crop, and a box
mask marks the pixels whose centres fall inside any box.

Shipped with the package (offline): Keras' ImageNet class index, and the
labels and boxes of all 50,000 ILSVRC2012 validation images (boxes from
clovaai/wsolevaluation, MIT licence, see ``_data/``).
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
import tempfile
import xml.etree.ElementTree as ElementTree
from importlib import resources
from typing import NamedTuple

import numpy as np
import tensorflow as tf
from PIL import Image

from . import _checks
from ._model import call_model
from .models import PIXEL_RANGE

VAL_TAR = "ILSVRC2012_img_val.tar"
NUM_VAL_IMAGES = 50_000
_VAL_NAME = re.compile(r"ILSVRC2012_val_(\d{8})")


def _package_file(name: str):
    return resources.files("idgi_tf").joinpath("_data", name)


# --------------------------------------------------------------------------- classes


@functools.lru_cache(maxsize=1)
def class_index() -> dict[int, tuple[str, str]]:
    """Keras' ImageNet class index: ``{i: (synset, name)}`` for the 1000 classes."""
    raw = json.loads(_package_file("imagenet_class_index.json").read_text())
    return {int(i): (synset, name) for i, (synset, name) in raw.items()}


def class_name(index: int) -> str:
    """Readable name of ImageNet class ``index`` (Keras order), e.g. 281 -> 'tabby'."""
    index = int(index)
    if not 0 <= index < 1000:
        raise ValueError(f"index must lie in [0, 1000), got {index}")
    return class_index()[index][1]


def top_k(scores, k: int = 5) -> list[list[tuple[int, str, float]]]:
    """Per row of ``scores (N, 1000)``: the ``k`` best ``(class, name, score)``, best first."""
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] != 1000:
        raise ValueError(f"scores must have shape (N, 1000), got {scores.shape}")
    order = np.argsort(-scores, axis=1)[:, : _checks.positive_int(k, "k")]
    return [[(int(i), class_name(i), float(row[i])) for i in best] for row, best in zip(scores, order)]


# --------------------------------------------------------------------------- geometry


def _resize_and_crop(image: tf.Tensor, boxes: tf.Tensor, size: int):
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
    image, moved = _resize_and_crop(tf.constant(array), tf.constant(given), size)
    return image.numpy() if boxes is None else (image.numpy(), moved.numpy())


# --------------------------------------------------------------------------- sample photos


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
    folder = _package_file(VAL_SAMPLES_DIR)
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


# --------------------------------------------------------------------------- ImageNet validation


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
    with gzip.open(_package_file("imagenet_val_labels.txt.gz").open("rb"), "rt") as lines:
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
    with gzip.open(_package_file("imagenet_val_boxes.txt.gz").open("rb"), "rt") as lines:
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
        image, moved = _resize_and_crop(example["image"], boxes[number], size)
        return image, labels[number], box_mask(moved, size), example["file_name"]

    return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)


def correctly_classified(model, dataset: tf.data.Dataset, *, batch_size: int = 32) -> tf.data.Dataset:
    """Keep the examples whose label is the model's top-1 prediction (the paper's protocol).

    ``dataset`` yields ``(image, label, ...)`` tuples, as :func:`imagenet_validation`
    does; the result yields the same tuples, lazily, running the model in
    batches of ``batch_size`` on its own device (not inside tf.data).
    """
    batch_size = _checks.positive_int(batch_size, "batch_size")
    predict = tf.function(lambda images: tf.argmax(call_model(model, images), axis=-1, output_type=tf.int32))

    def kept():
        for batch in dataset.batch(batch_size):
            right = (predict(batch[0]) == tf.cast(batch[1], tf.int32)).numpy()
            for i in np.flatnonzero(right):
                yield tuple(part[i] for part in batch)

    return tf.data.Dataset.from_generator(kept, output_signature=dataset.element_spec)


# --------------------------------------------------------------------------- Fashion-MNIST

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
_FASHION_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                  "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def _read_idx(path: str) -> np.ndarray:
    """An IDX file (the MNIST format, gzipped): big-endian dims, then uint8 data."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    zero, dtype, ndim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00" or dtype != 0x08:
        raise ValueError(f"{path} is not an uint8 IDX file")
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist(split: str = "train", directory: str | None = None, limit: int | None = None):
    """Fashion-MNIST (Xiao et al. 2017): uint8 images (N, 28, 28) and int labels (N,).

    Reads the four ``*-ubyte.gz`` files from ``directory``, by default where
    Debian's ``dataset-fashion-mnist`` package puts them
    (``/usr/share/datasets/fashion-mnist``). Class names: ``FASHION_MNIST_CLASSES``.

    Example:
      >>> images, labels = fashion_mnist("test", limit=100)
    """
    _checks.choice(split, "split", _FASHION_FILES)
    directory = directory or FASHION_MNIST_DIR
    paths = [os.path.join(directory, name) for name in _FASHION_FILES[split]]
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST file {missing[0]} not found; install Debian's dataset-fashion-mnist "
            "(apt-get install dataset-fashion-mnist) or pass directory= holding the four *-ubyte.gz files"
        )
    images, labels = (_read_idx(path) for path in paths)
    if len(images) != len(labels):
        raise ValueError(f"{paths[0]} holds {len(images)} images but {paths[1]} {len(labels)} labels")
    stop = None if limit is None else _checks.positive_int(limit, "limit")
    return images[:stop], labels[:stop].astype(np.int32)
