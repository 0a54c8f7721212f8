"""Pictures of attributions and metric curves, drawn with PIL and NumPy only.

* :func:`heatmap`: a 2-D (or 3-D, reduced over channels) map as an RGB image.
  ``cmap="diverging"`` uses a symmetric scale, ``v / percentile(|v|, p)``
  clipped to [-1, 1], blue (negative) - white - red (positive), as PAIR's
  ``VisualizeImageDiverging``; ``cmap="magma"`` or ``"gray"`` use PAIR's
  ``VisualizeImageGrayscale`` scale, ``(v - min) / (percentile(v, p) - min)``
  clipped to [0, 1]. Where the percentile leaves nothing to scale by (a map
  with fewer hot pixels than ``100 - p`` percent), the maximum is used, so a
  single hot pixel is still the brightest one.
* :func:`overlay`: the heatmap blended onto the photo.
* :func:`grid`: images in rows and columns with labels and a title (the IDGI
  paper's Figure 3 layout: one row per method, one column per rule).
* :func:`curves`: a line plot with axes, ticks and a legend.
* :func:`save`: any of them as a PNG.

Every function returns an RGB ``uint8`` array (H, W, 3). Text uses PIL's
built-in font, so nothing is fetched.
"""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .. import _checks
from ..metrics._maps import finite_maps

# matplotlib's magma at 9 evenly spaced points (RGB 0-255), interpolated linearly.
_MAGMA = np.array([
    (0, 0, 4), (28, 16, 68), (79, 18, 123), (129, 37, 129), (181, 54, 122),
    (229, 80, 100), (251, 135, 97), (254, 194, 135), (252, 253, 191),
], np.float64)
_GRAY = np.array([(0, 0, 0), (255, 255, 255)], np.float64)
_DIVERGING = np.array([(33, 102, 172), (255, 255, 255), (178, 24, 43)], np.float64)  # -1, 0, +1
# Tableau's 10 colours, the usual line-plot cycle.
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
CMAPS = ("magma", "gray", "diverging")
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


def _font(size: int = 13):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _colorize(values: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB uint8 by linear interpolation between ``anchors``."""
    position = np.clip(values, 0.0, 1.0) * (len(anchors) - 1)
    low = np.minimum(np.floor(position).astype(int), len(anchors) - 2)
    frac = (position - low)[..., None]
    return np.round(anchors[low] * (1 - frac) + anchors[low + 1] * frac).astype(np.uint8)


def _map_2d(attribution, how: str) -> np.ndarray:
    array = np.asarray(attribution, dtype=np.float64)
    if array.ndim not in (2, 3):
        raise ValueError(f"map must have shape (H, W) or (H, W, C), got {array.shape}")
    return finite_maps(array[None], how)[0]


def heatmap(attribution, *, how: str = "sum_abs", clip_percentile: float = 99.0, cmap: str = "magma"):
    """An attribution map as an RGB uint8 image (H, W, 3).

    Args:
      attribution: (H, W) or (H, W, C); 3-D maps are reduced over channels with ``how``.
      how: ``"sum_abs"`` (default), ``"sum"`` or ``"abs_sum"`` (see ``metrics.reduce_channels``).
      clip_percentile: values beyond this percentile saturate (PAIR: 99).
      cmap: ``"magma"`` / ``"gray"`` (PAIR's grayscale scale) or ``"diverging"``
        (symmetric around zero; use it with ``how="sum"``).

    Example:
      >>> save(heatmap(maps[0], cmap="diverging", how="sum"), "map.png")
    """
    _checks.choice(cmap, "cmap", CMAPS)
    clip_percentile = _checks.number_in(clip_percentile, "clip_percentile", 0.0, 100.0, low_open=True)
    flat = _map_2d(attribution, how)
    if cmap == "diverging":
        scale = np.percentile(np.abs(flat), clip_percentile)
        if scale == 0:  # a sparse map: fewer nonzero values than the percentile leaves out
            scale = np.abs(flat).max()
        signed = np.clip(flat / scale, -1.0, 1.0) if scale > 0 else np.zeros_like(flat)
        return _colorize((signed + 1.0) / 2.0, _DIVERGING)
    low, high = flat.min(), np.percentile(flat, clip_percentile)
    if high == low:  # a sparse map: the percentile is the minimum, so scale to the maximum
        high = flat.max()
    scaled = np.clip((flat - low) / (high - low), 0.0, 1.0) if high > low else np.zeros_like(flat)
    return _colorize(scaled, _MAGMA if cmap == "magma" else _GRAY)


def as_rgb8(image) -> np.ndarray:
    """An image as RGB uint8: floats in [0, 255] are rounded, gray is repeated."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise ValueError(f"image must have shape (H, W), (H, W, 1) or (H, W, 3), got {array.shape}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if array.dtype == np.uint8:
        return array
    return np.clip(np.round(array.astype(np.float64)), 0, 255).astype(np.uint8)


def overlay(image, attribution, *, alpha: float = 0.5, **heatmap_options) -> np.ndarray:
    """The heatmap of ``attribution`` blended onto ``image``: ``(1 - alpha) image + alpha heat``."""
    alpha = _checks.number_in(alpha, "alpha", 0.0, 1.0)
    photo = as_rgb8(image)
    heat = heatmap(attribution, **heatmap_options)
    if heat.shape != photo.shape:
        raise ValueError(f"map {heat.shape[:2]} and image {photo.shape[:2]} must have the same height and width")
    return np.round((1 - alpha) * photo + alpha * heat.astype(np.float64)).astype(np.uint8)


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def grid(rows, *, row_labels=None, col_labels=None, title=None, pad: int = 4, font_size: int = 13) -> np.ndarray:
    """Images in a labelled grid, as one RGB uint8 image.

    Args:
      rows: list of rows, each a list of images (H, W[, 3]) or None (an empty cell).
      row_labels: one text per row, drawn left of it.
      col_labels: one text per column, drawn above it.
      title: a line above everything.
      pad: pixels between cells.

    Column widths and row heights are the largest cell in them; the result is
    their sum plus ``pad`` between cells and the label margins.

    Example:
      >>> grid([[photo, heat_plain, heat_idgi]], row_labels=["IG"], col_labels=["image", "plain", "IDGI"])
    """
    cells = [[None if cell is None else as_rgb8(cell) for cell in row] for row in rows]
    if not cells or not any(cells):
        raise ValueError("rows must hold at least one row of images")
    columns = max(len(row) for row in cells)
    if row_labels is not None and len(row_labels) != len(cells):
        raise ValueError(f"row_labels must have one text per row ({len(cells)}), got {len(row_labels)}")
    if col_labels is not None and len(col_labels) != columns:
        raise ValueError(f"col_labels must have one text per column ({columns}), got {len(col_labels)}")
    widths = [max((row[c].shape[1] for row in cells if c < len(row) and row[c] is not None), default=0)
              for c in range(columns)]
    heights = [max((cell.shape[0] for cell in row if cell is not None), default=0) for row in cells]
    font = _font(font_size)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line = _text_size(probe, "Ag", font)[1] + 2 * pad
    left = max((_text_size(probe, str(t), font)[0] for t in row_labels), default=0) + 2 * pad if row_labels else 0
    top = (line if title else 0) + (line if col_labels else 0)
    title_width = _text_size(probe, str(title), font)[0] + 2 * pad if title else 0
    width = max(left + sum(widths) + pad * (columns + 1), title_width)
    height = top + sum(heights) + pad * (len(cells) + 1)
    canvas = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, pad), str(title), fill=BLACK, font=font)
    xs = np.cumsum([left + pad] + [w + pad for w in widths])[:-1]
    ys = np.cumsum([top + pad] + [h + pad for h in heights])[:-1]
    for c, label in enumerate(col_labels or []):
        text_width = _text_size(draw, str(label), font)[0]
        draw.text((int(xs[c] + (widths[c] - text_width) / 2), top - line + pad), str(label), fill=BLACK, font=font)
    for r, row in enumerate(cells):
        if row_labels:
            text_height = _text_size(draw, str(row_labels[r]), font)[1]
            draw.text((pad, int(ys[r] + (heights[r] - text_height) / 2)), str(row_labels[r]), fill=BLACK, font=font)
        for c, cell in enumerate(row):
            if cell is not None:
                canvas.paste(Image.fromarray(cell), (int(xs[c]), int(ys[r])))
    return np.asarray(canvas)


def nice_ticks(low: float, high: float, count: int = 5) -> np.ndarray:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10) if m * power >= raw), default=10 * power)
    first = math.ceil(low / step - 1e-9) * step
    return np.arange(first, high + step * 1e-6, step)


def _label(value: float) -> str:
    return f"{value:.4g}"


def curves(xs, ys, *, labels=None, xlabel: str = "", ylabel: str = "", title: str = "", log: bool = False,
           logy: bool = False, size: tuple = (640, 420), ylim=None) -> np.ndarray:
    """A line plot of one or more series, with axes, ticks and a legend, as RGB uint8.

    Args:
      xs: one abscissa for all series (K,), or one per series.
      ys: series (S, K) or a list of (K,) arrays; NaN points are skipped.
      labels: legend text per series.
      xlabel, ylabel, title: axis and plot titles.
      log: logarithmic x axis (x must be positive).
      logy: logarithmic y axis (points with y <= 0 are skipped), e.g. for power spectra.
      size: (width, height) in pixels.
      ylim: (low, high) of the y axis (default: the data's range).

    Series take the colours of :data:`PALETTE` in order.

    Example:
      >>> save(curves(result.x, [result.aggregate_curves["correlation"]], labels=["IG"], log=True), "sens.png")
    """
    series = [np.asarray(y, np.float64).ravel() for y in (ys if isinstance(ys, (list, tuple)) else list(ys))]
    if not series:
        raise ValueError("ys must hold at least one series")
    x_list = [np.asarray(x, np.float64).ravel() for x in xs] if (
        isinstance(xs, (list, tuple)) and len(xs) == len(series) and np.ndim(xs[0]) == 1) else [
        np.asarray(xs, np.float64).ravel()] * len(series)
    for i, (x, y) in enumerate(zip(x_list, series)):
        if x.shape != y.shape:
            raise ValueError(f"series {i} has {y.size} points but its x has {x.size}")
    if labels is not None and len(labels) != len(series):
        raise ValueError(f"labels must have one text per series ({len(series)}), got {len(labels)}")
    if log and min(x.min() for x in x_list) <= 0:
        raise ValueError("log=True needs positive x values")
    fx = np.log10 if log else (lambda v: v)
    if logy:
        with np.errstate(divide="ignore", invalid="ignore"):
            series = [np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan) for y in series]
    all_x = np.concatenate([fx(x) for x in x_list])
    finite_y = np.concatenate([y[np.isfinite(y)] for y in series])
    x_low, x_high = float(all_x.min()), float(all_x.max())
    if x_high == x_low:
        x_low, x_high = x_low - 0.5, x_high + 0.5
    if ylim is not None:
        y_low, y_high = (math.log10(v) if logy else float(v) for v in ylim)
    elif finite_y.size:
        y_low, y_high = float(finite_y.min()), float(finite_y.max())
    else:
        y_low, y_high = 0.0, 1.0
    if y_high == y_low:
        y_low, y_high = y_low - 0.5, y_high + 0.5
    x_margin, y_margin = 0.03 * (x_high - x_low), (0.04 * (y_high - y_low) if ylim is None else 0.0)
    x_low, x_high, y_low, y_high = x_low - x_margin, x_high + x_margin, y_low - y_margin, y_high + y_margin

    width, height = size
    font = _font(12)
    canvas = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(canvas)
    y_ticks = (np.arange(math.ceil(y_low), math.floor(y_high) + 1.0) if logy and y_high - y_low >= 1
               else nice_ticks(y_low, y_high, 8))
    tick_width = max(_text_size(draw, _label(v), font)[0] for v in y_ticks)
    line = _text_size(draw, "Ag", font)[1]
    box_left, box_right = tick_width + line + 22, width - 24
    box_top, box_bottom = (line + 14) if title else 10, height - 2 * line - 18

    def px(x, y):
        u = (fx(x) - x_low) / (x_high - x_low)
        v = (y - y_low) / (y_high - y_low)
        return box_left + u * (box_right - box_left), box_bottom - v * (box_bottom - box_top)

    if ylabel:
        label = Image.new("RGB", (_text_size(draw, ylabel, font)[0] + 4, line + 4), WHITE)
        ImageDraw.Draw(label).text((2, 0), ylabel, fill=BLACK, font=font)
        rotated = label.rotate(90, expand=True)
        canvas.paste(rotated, (2, int((box_top + box_bottom - rotated.height) / 2)))

    draw.rectangle([box_left, box_top, box_right, box_bottom], outline=BLACK)
    for value in y_ticks:
        if y_low - 1e-12 <= value <= y_high + 1e-12:
            _, y = px(10 ** x_low if log else x_low, value)
            draw.line([box_left - 4, y, box_left, y], fill=BLACK)
            text = _label(10.0**value if logy else value)
            draw.text((box_left - 6 - _text_size(draw, text, font)[0], y - line / 2 - 1), text, fill=BLACK, font=font)
    x_ticks = 10.0 ** np.arange(math.floor(x_low), math.ceil(x_high) + 1) if log else nice_ticks(x_low, x_high)
    for value in x_ticks:
        if x_low - 1e-9 <= fx(value) <= x_high + 1e-9:
            x, _ = px(value, y_low)
            draw.line([x, box_bottom, x, box_bottom + 4], fill=BLACK)
            text = _label(value)
            draw.text((x - _text_size(draw, text, font)[0] / 2, box_bottom + 6), text, fill=BLACK, font=font)
    if title:
        draw.text(((width - _text_size(draw, title, font)[0]) / 2, 6), title, fill=BLACK, font=font)
    if xlabel:
        draw.text(((box_left + box_right - _text_size(draw, xlabel, font)[0]) / 2, height - line - 6), xlabel,
                  fill=BLACK, font=font)
    # Series are drawn on their own layer and only its inside of the axes box is kept.
    plot = Image.new("RGB", (width, height), WHITE)
    plot_draw = ImageDraw.Draw(plot)
    for i, (x, y) in enumerate(zip(x_list, series)):
        color = PALETTE[i % len(PALETTE)]
        points = [px(a, b) for a, b in zip(x, y) if np.isfinite(b)]
        if len(points) > 1:
            plot_draw.line(points, fill=color, width=2, joint="curve")
        for u, v in points:
            plot_draw.ellipse([u - 2, v - 2, u + 2, v + 2], fill=color)
    inside = (box_left + 1, box_top + 1, box_right, box_bottom)
    canvas.paste(plot.crop(inside), inside[:2])

    if labels:
        swatch = 18
        entry_width = max(_text_size(draw, str(t), font)[0] for t in labels) + swatch + 10
        box_height = len(labels) * (line + 6) + 4
        plotted = np.array([px(a, b) for x, y in zip(x_list, series) for a, b in zip(x, y) if np.isfinite(b)],
                           np.float64).reshape(-1, 2)
        right, low = box_right - entry_width - 8, box_bottom - box_height - 6
        corners = [(right, box_top + 6), (box_left + 10, box_top + 6), (right, low), (box_left + 10, low)]

        def covered(corner):  # how many plotted points the legend would hide there
            u, v = plotted[:, 0], plotted[:, 1]
            return int(((u >= corner[0] - 4) & (u <= corner[0] + entry_width + 2) & (v >= corner[1] - 4)
                        & (v <= corner[1] + box_height)).sum())

        x0, y0 = min(corners, key=covered)
        draw.rectangle([x0 - 4, y0 - 4, x0 + entry_width + 2, y0 + box_height - 4], fill=WHITE,
                       outline=(160, 160, 160))
        for i, text in enumerate(labels):
            y = y0 + i * (line + 6) + line / 2 + 1
            draw.line([x0, y, x0 + swatch, y], fill=PALETTE[i % len(PALETTE)], width=3)
            draw.text((x0 + swatch + 6, y - line / 2 - 1), str(text), fill=BLACK, font=font)
    return np.asarray(canvas)


def save(image, path) -> str:
    """Write an RGB image (any of this module's outputs) as a PNG; returns the path."""
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    Image.fromarray(as_rgb8(image)).save(path, format="PNG")
    return os.fspath(path)
