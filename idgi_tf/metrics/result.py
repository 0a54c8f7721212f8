"""The result type every metric returns."""

from __future__ import annotations

import dataclasses
import json

import numpy as np


@dataclasses.dataclass
class MetricResult:
    """Curves, per-image scores, counts and the options of one metric run.

    Attributes:
      name: the metric ("insertion", "deletion", "localization", ...).
      scores: per-image scores ``{score name: (N,) array}``; NaN marks an image
        whose score is undefined (counted in ``counts["undefined_<name>"]``).
      curves: per-image curves ``{curve name: (N, K) array}`` over ``x``.
      x: the curves' abscissa (K,), e.g. the inserted fraction of pixels.
      counts: image counts (``images``, skipped or undefined ones).
      options: the options the metric ran with.
      aggregate: dataset-level scores that are not a mean of per-image ones
        (SIC/AIC: the area under the median/mean curve over all images).
      aggregate_curves: the curves behind ``aggregate``, over ``x``.
    """

    name: str
    scores: dict
    curves: dict = dataclasses.field(default_factory=dict)
    x: np.ndarray | None = None
    counts: dict = dataclasses.field(default_factory=dict)
    options: dict = dataclasses.field(default_factory=dict)
    aggregate: dict = dataclasses.field(default_factory=dict)
    aggregate_curves: dict = dataclasses.field(default_factory=dict)

    def means(self) -> dict:
        """Mean of each score over the images where it is defined."""
        return {
            key: float(np.nanmean(value)) if np.isfinite(value).any() else float("nan")
            for key, value in self.scores.items()
        }

    def summary(self) -> str:
        """One line per score: its mean and on how many images."""
        lines = [f"{self.name} ({', '.join(f'{k}={v}' for k, v in self.options.items())})"]
        for key, mean in self.means().items():
            defined = int(np.isfinite(self.scores[key]).sum())
            lines.append(f"  {key}: {mean:.4f} over {defined}/{len(self.scores[key])} images")
        for key, value in self.aggregate.items():
            lines.append(f"  aggregate {key}: {value:.4f}")
        skipped = {key: value for key, value in self.counts.items() if key != "images" and value}
        if skipped:
            lines.append("  " + ", ".join(f"{key}={value}" for key, value in skipped.items()))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain Python types (lists and floats, NaN as None), ready for ``json.dumps``."""
        return {
            "name": self.name,
            "means": {key: _plain(value) for key, value in self.means().items()},
            "scores": {key: _plain(value) for key, value in self.scores.items()},
            "curves": {key: _plain(value) for key, value in self.curves.items()},
            "x": None if self.x is None else _plain(self.x),
            "counts": {key: _json_safe(value) for key, value in self.counts.items()},
            "options": {key: _json_safe(value) for key, value in self.options.items()},
            "aggregate": {key: _plain(value) for key, value in self.aggregate.items()},
            "aggregate_curves": {key: _plain(value) for key, value in self.aggregate_curves.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def _json_safe(value):
    """NumPy scalars (``np.int64(3)``, ``np.float32(0.5)``) as Python ones; anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def _plain(value):
    """Numbers and arrays as floats and nested lists, with None for NaN/Inf."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return float(array) if np.isfinite(array) else None
    return [_plain(item) for item in array]
