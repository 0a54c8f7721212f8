"""The IDGI paper's Figure 3 for one picture: one row per method, columns image / plain / IDGI."""

from __future__ import annotations

import numpy as np

from .. import data
from ..methods import METHODS, attribute
from . import grid, heatmap

RULE_COLUMNS = ("plain", "idgi")
METHOD_TITLES = {"ig": "IG", "gig": "Guided IG", "blurig": "Blur IG", "vg": "Vanilla Gradient",
                 "gxi": "Gradient x Input", "elrp": "epsilon-LRP", "deeplift": "DeepLIFT", "occlusion": "Occlusion"}


def figure3(model, image, target: int, *, methods=("ig", "gig", "blurig", "vg"), steps: int = 200,
            cmap: str = "gray", how: str = "sum_abs", batch_size: int | None = None, title: str | None = None,
            ) -> np.ndarray:
    """Attribution maps of one image by every method, plain and with IDGI, as one labelled grid.

    Args:
      model: a pixel-space classifier (see :func:`idgi_tf.models.load`).
      image: (H, W, 3) pixels in [0, 255].
      target: the explained class.
      methods: rows, in order; methods without an IDGI rule leave that cell empty.
      steps, batch_size: as for :func:`idgi_tf.attribute`.
      cmap, how: as for :func:`idgi_tf.viz.heatmap` (default: PAIR's grayscale of sum |.|).
      title: a line above the grid (default: the target class).

    Returns:
      RGB uint8 (H', W', 3).
    """
    images = np.asarray(image, np.float32)[None]
    maps = {}
    for method in methods:
        rules = tuple(rule for rule in RULE_COLUMNS if rule in METHODS[method].rules)
        by_rule = attribute(model, images, [target], method, rule=rules, steps=steps, batch_size=batch_size)
        maps.update({(method, rule): value[0] for rule, value in by_rule.items()})
    title = title if title is not None else f"target: {target} {data.class_name(target)}"
    return maps_grid(images[0], maps, methods, cmap=cmap, how=how, title=title)


def maps_grid(image, maps: dict, methods, *, cmap: str = "gray", how: str = "sum_abs", title: str | None = None):
    """The Figure-3 grid from maps already computed: ``{(method, rule): (H, W[, C]) map}``."""
    rows = [[image] + [heatmap(maps[(method, rule)], cmap=cmap, how=how) if (method, rule) in maps else None
                       for rule in RULE_COLUMNS] for method in methods]
    return grid(rows, row_labels=[METHOD_TITLES.get(m, m) for m in methods], col_labels=["image", "plain", "+IDGI"],
                title=title)
