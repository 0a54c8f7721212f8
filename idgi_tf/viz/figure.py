"""The IDGI paper's Figure 3 for one picture: one row per method, columns image / plain / +IDGI."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .. import data
from ..attribution.methods import METHODS, attribute
from .plots import figure_title, plot_attributions

RULE_COLUMNS = {"plain": "plain", "idgi": "+IDGI"}


def figure3(model, image, target: int, *, methods=("ig", "gig", "blurig", "vg"), steps: int = 200,
            cmap="gray", how: str = "sum_abs", batch_size: int | None = None, title: str | None = None,
            axes=None, on_method=None) -> Figure:
    """Attribution maps of one image by every method, plain and with IDGI, as one labelled grid.

    Args:
      model: a pixel-space classifier (see :func:`idgi_tf.models.load`).
      image: (H, W, 3) pixels in [0, 255].
      target: the explained class.
      methods: rows, in order, labelled with each method's title (:data:`idgi_tf.METHODS`); methods without an
        IDGI rule leave that cell empty.
      steps, batch_size: as for :func:`idgi_tf.attribute`.
      cmap, how: as for :func:`idgi_tf.viz.heatmap` (default: PAIR's grayscale of sum |.|).
      title: the figure's title (default: the target class, the model's name and "1 image").
      axes: draw into these (methods x 3) Axes.
      on_method: called with each method's name once its maps are done (progress of a long figure).

    Returns:
      the ``Figure``.

    Example:
      >>> samples = idgi_tf.data.sample_images(224)
      >>> save(figure3(model, samples.images[0], samples.labels[0], steps=64), "figure3.pdf")
    """
    images = np.asarray(image, np.float32)[None]
    maps = {}
    for method in methods:
        rules = tuple(rule for rule in RULE_COLUMNS if rule in METHODS[method].rules)
        by_rule = attribute(model, images, [target], method, rule=rules, steps=steps, batch_size=batch_size)
        maps.update({(method, rule): value[0] for rule, value in by_rule.items()})
        if on_method is not None:
            on_method(method)
    if title is None:
        title = figure_title(f"target {target} {data.class_name(target)}", getattr(model, "name", None), 1)
    return maps_grid(images[0], maps, methods, cmap=cmap, how=how, title=title, axes=axes)


def maps_grid(image, maps: dict, methods, *, cmap="gray", how: str = "sum_abs", title: str | None = None,
              axes=None) -> Figure:
    """The Figure-3 grid from maps already computed: ``{(method, rule): (H, W[, C]) map}``, with a colour bar
    that says what the gray levels mean."""
    columns = {label: [maps.get((method, rule)) for method in methods] for rule, label in RULE_COLUMNS.items()}
    return plot_attributions(image, columns, row_labels=[METHODS[m].title for m in methods], title=title,
                             cmap=cmap, how=how, colorbar=True, axes=axes)
