"""Fashion-MNIST (Xiao et al. 2017) from its IDX files, as Debian's dataset-fashion-mnist installs them."""

from __future__ import annotations

import gzip
import os

import numpy as np

from .. import _checks

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
