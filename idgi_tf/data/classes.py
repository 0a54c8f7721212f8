"""ImageNet class names: Keras' class index (shipped with the package), names and top-k."""

from __future__ import annotations

import functools
import json

import numpy as np

from .. import _checks
from .shipped import package_file


@functools.lru_cache(maxsize=1)
def class_index() -> dict[int, tuple[str, str]]:
    """Keras' ImageNet class index: ``{i: (synset, name)}`` for the 1000 classes."""
    raw = json.loads(package_file("imagenet_class_index.json").read_text())
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
