"""Helpers shared by the benchmark scripts: best-of timing, optional imports, test photos."""

from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np
from skimage import data as skdata
from skimage.transform import resize


def optional(module: str):
    """``module`` imported, or None (with a note on stderr) when it cannot be."""
    try:
        return __import__(module, fromlist=["_"])
    except Exception as error:  # noqa: BLE001 - any import failure means "not available"
        print(f"[skip] {module}: {type(error).__name__}: {error}", file=sys.stderr)
        return None


def timed(function, repeats: int, warm_up: bool = True) -> float:
    """Best wall time of ``repeats`` calls, after one warm-up call (tracing, allocation) unless not ``warm_up``."""
    if warm_up:
        function()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def photo(size: int, count: int) -> np.ndarray:
    """``count`` real scikit-image photos (cycling through four), float32 [0, 255] at ``size``."""
    pictures = [skdata.chelsea(), skdata.astronaut(), skdata.coffee(), skdata.rocket()]
    return np.stack(
        [resize(pictures[i % 4], (size, size), preserve_range=True, anti_aliasing=True) for i in range(count)]
    ).astype(np.float32)


def machine() -> str:
    """One line naming the software and hardware a table was measured on."""
    import keras
    import tensorflow as tf

    return (f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores, "
            f"GPU: {bool(tf.config.list_physical_devices('GPU'))}")


def append_jsonl(path: str | None, rows: list) -> None:
    """Append ``rows`` to the JSON-lines file ``path`` (nothing when None)."""
    if path:
        with open(path, "a") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
