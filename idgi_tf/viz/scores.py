"""Pictures of scores that are not images: per-token scores as coloured text, per-feature scores as bars.

* :func:`plot_tokens`: each token on a box coloured by its score (Captum's ``visualize_text``, as a Figure);
* :func:`plot_features`: the largest |scores| as horizontal bars (SHAP's bar plot).

Both colour by a diverging colormap centred at 0 (red positive, blue negative with ``RdBu_r``). Token
boxes are laid out in points (1/72 inch) on axes whose data units are points, so each box holds its
text at any figure width and long rows wrap instead of running off the figure.
"""

from __future__ import annotations

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.textpath import text_to_path

from .. import _checks
from .maps import DIVERGING, DIVERGING_CMAP, colormap
from .plots import CURVE_SIZE, _figure_and_axes

# in units of the font size: a box's margin around its text, the space between boxes, a box's and a line's height
PAD, GAP, BOX, LINE = 0.3, 0.25, 1.4, 1.75
# the figure's margins in inches: the sides, the top (and a title's line), the colour bar's strip at the bottom
SIDE, TOP, TITLE, BAR_STRIP = 0.15, 0.15, 0.35, 0.8
# where signed bars sit on the colormap: 0.5 ± SIGN_SHADE (a mid red, a mid blue: the extremes are near black)
SIGN_SHADE = 0.35
# WCAG relative luminance above which black text contrasts more than white: sqrt(1.05 * 0.05) - 0.05
DARK_TEXT_ABOVE = 0.179


def _diverging(cmap):
    """The colormap ``cmap`` (``"diverging"`` is short for RdBu_r, as elsewhere in viz)."""
    return colormap(DIVERGING_CMAP if isinstance(cmap, str) and cmap == DIVERGING else cmap)


def _token_rows(tokens) -> tuple[list, bool]:
    """``(rows of token strings, several examples?)`` from a list of strings or a list of such lists."""
    if isinstance(tokens, np.ndarray):
        tokens = tokens.tolist()
    expected = "a non-empty list of strings (one example) or a list of such lists (one per example)"
    if not isinstance(tokens, (list, tuple)) or not tokens:
        raise ValueError(f"tokens must be {expected}, got {tokens!r:.80}")
    if all(isinstance(token, str) for token in tokens):
        return [list(tokens)], False
    rows = [row.tolist() if isinstance(row, np.ndarray) else row for row in tokens]
    if not all(isinstance(row, (list, tuple)) and all(isinstance(t, str) for t in row) for row in rows):
        raise TypeError(f"tokens must be {expected}, got a list holding {type(tokens[0]).__name__}")
    for r, row in enumerate(rows):
        if not row:
            raise ValueError(f"tokens row {r} is empty: every example needs at least one token")
    return [list(row) for row in rows], True


def _not_a_dict(scores) -> None:
    """``attribute(..., rule=(...))`` returns ``{rule: maps}``: name the way to one array."""
    if isinstance(scores, dict):
        raise TypeError(f"scores must be an array, got a dict with keys {sorted(map(str, scores))[:4]}: "
                        "attribute(..., rule=(...)) returns {rule: maps}; pass one of its values, e.g. maps['idgi']")


def _score_rows(scores, rows: list, several: bool) -> list:
    """One finite float64 (T_r,) array per row of tokens, checked against the row's length."""
    _not_a_dict(scores)
    if not several:
        items = [scores]
    elif isinstance(scores, (list, tuple)):
        items = list(scores)
    else:
        array = np.asarray(scores, np.float64)
        if array.ndim < 2:
            raise ValueError(f"scores must hold one row per example ({len(rows)}), got shape {array.shape}")
        items = list(array)
    if len(items) != len(rows):
        raise ValueError(f"scores has {len(items)} rows but tokens has {len(rows)} examples")
    checked = []
    for r, (item, row) in enumerate(zip(items, rows)):
        values = np.asarray(item, np.float64)
        if values.ndim != 1:
            raise ValueError(f"scores of row {r} must be one score per token, got shape {values.shape}; for "
                             f"per-embedding scores (T, D) sum over the embedding axis first: maps.sum(-1)")
        if values.size != len(row):
            raise ValueError(f"row {r} has {len(row)} tokens but {values.size} scores")
        if not np.isfinite(values).all():
            raise ValueError(f"scores of row {r} contain NaN or Inf (token {int(np.argmin(np.isfinite(values)))})")
        checked.append(values)
    return checked


def _scale(rows: list, vmax) -> float:
    """The colour scale's end: ``vmax``, or max |score| over every row; 1 when all are 0 (all draw the centre)."""
    if vmax is not None:
        if isinstance(vmax, bool) or not isinstance(vmax, (int, float, np.number)) or not 0 < vmax < np.inf:
            raise ValueError(f"vmax must be a positive finite number (or None), got {vmax!r}")
        return float(vmax)
    largest = max(float(np.abs(row).max()) for row in rows)
    return largest if largest > 0 else 1.0


def text_colour(rgba) -> str:
    """``"black"`` or ``"white"``, whichever contrasts more with the background ``rgba`` (WCAG luminance)."""
    channels = np.asarray(rgba, np.float64)[:3]
    linear = np.where(channels <= 0.04045, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)
    return "black" if linear @ np.array([0.2126, 0.7152, 0.0722]) > DARK_TEXT_ABOVE else "white"


def _shown(token: str) -> str:
    """A token as drawn: line breaks and tabs visible, so that a box stays one line high."""
    return token.replace("\n", "\\n").replace("\t", "\\t")


def _width(text: str, font: FontProperties) -> float:
    """The width of ``text`` in points (no mathtext: a ``$`` is a dollar)."""
    return text_to_path.get_text_width_height_descent(text, font, ismath=False)[0]


def _fitted(text: str, font: FontProperties, room: float) -> str:
    """``text``, or its longest prefix + "…" that is at most ``room`` points wide (a binary search)."""
    if _width(text, font) <= room:
        return text
    low, high = 0, len(text)  # the prefix of length low fits, that of length high does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if _width(text[:middle] + "…", font) <= room else (low, middle)
    return text[:low] + "…"


def _layout(rows: list, labels, line_width: float, size: float) -> tuple[list, list, float]:
    """Boxes ``(x, y, width, text)`` per token and ``(y, label)`` per row, in points from the top left.

    Boxes go left to right and a box that would cross ``line_width`` starts the next line; each row
    starts on a new line, under its label (cut with "…" as a token when wider than a line). Returns the
    boxes, the label positions and the height.
    """
    font, bold = FontProperties(size=size), FontProperties(size=size, weight="bold")
    boxes, heads, y = [], [], 0.0
    for r, row in enumerate(rows):
        if labels is not None:
            heads.append((y, _fitted(_shown(str(labels[r])), bold, line_width)))
            y += LINE * size
        x = 0.0
        for token in row:
            text = _fitted(_shown(token), font, line_width - 2 * PAD * size)
            width = _width(text, font) + 2 * PAD * size
            if x > 0 and x + width > line_width:
                x, y = 0.0, y + LINE * size
            boxes.append((x, y, width, text))
            x += width + GAP * size
        y += LINE * size * (1.5 if r < len(rows) - 1 else 1.0)  # half a line between examples
    return boxes, heads, y


def _token_figure(width: float, line_width: float, height: float, title: bool, colorbar: bool):
    """A new figure as tall as the lines need: the text's axes (data units: points) and the colour bar's."""
    top, bottom = TOP + (TITLE if title else 0.0), BAR_STRIP if colorbar else SIDE
    figure = Figure(figsize=(width, top + height / 72 + bottom))
    across, up = figure.get_size_inches()
    ax = figure.add_axes([SIDE / across, bottom / up, line_width / 72 / across, height / 72 / up])
    cax = figure.add_axes([0.3, 0.45 / up, 0.4, 0.12 / up]) if colorbar else None
    return figure, ax, cax


def _fit_into(ax, rows: list, labels, size: float):
    """The layout in ``ax`` as sized now: ``(boxes, heads, axes height, line width)``, in points; refused
    when the lines would not fit the axes' height (rather than text too small to read)."""
    position, inches = ax.get_position(), ax.figure.get_size_inches()
    line_width, room = position.width * inches[0] * 72, position.height * inches[1] * 72
    boxes, heads, height = _layout(rows, labels, line_width, size)
    if height > room:
        raise ValueError(f"the tokens need {height:.0f} pt of height at fontsize {size:g} but ax is {room:.0f} pt "
                         f"tall: give a taller ax, a smaller fontsize, or ax=None (a figure as tall as the text)")
    return boxes, heads, room, line_width


def _colorbar(figure, mappable, values: list, **where):
    """The colour bar, with arrows when some |score| exceeds the scale's end (saturated boxes)."""
    saturated = max(float(np.abs(row).max()) for row in values) > mappable.norm.vmax
    return figure.colorbar(mappable, extend="both" if saturated else "neither", label="score", **where)


def plot_tokens(tokens, scores, *, cmap="RdBu_r", vmax: float | None = None, title: str | None = None,
                row_labels=None, colorbar: bool = True, fontsize: float = 11.0, width: float = 8.0,
                ax=None) -> Figure:
    """Text with each token on a box coloured by its score: red positive, blue negative, white 0.

    Args:
      tokens: a list of strings (one example), or a list of such lists (one row each; rows may differ
        in length). Long rows wrap onto several lines; a token wider than a line is cut with "…".
      scores: one score per token: a (T,) array-like for one example, a list of (T_r,) array-likes or an
        (N, T) array for several. For maps at an embedding layer (N, T, D), sum over the embedding axis
        first: ``maps.sum(-1)``. NaN and Inf are refused.
      cmap: a diverging colormap (name or ``Colormap``); its centre is score 0.
      vmax: the colour scale runs over [-vmax, vmax] (default max |score| over every row drawn, one scale
        for all rows so they compare; all-zero scores draw the centre colour). Larger |scores| saturate.
      title: the axes' title. row_labels: one text per example, drawn above its row.
      colorbar: a horizontal colour bar under the text. fontsize: in points. width: the new figure's
        width in inches (its height follows from the lines).
      ax: draw into this Axes (its size when called sets the line width; a ``ValueError`` says so when the
        lines would not fit its height).

    A box's colour is ``cmap(Normalize(-vmax, vmax)(score))``; its text is black on light boxes and
    white on dark ones. ``ax.patches`` are the token boxes in reading order (rows one after another)
    and ``ax.texts[:len(ax.patches)]`` their texts; the row labels follow.

    Example:
      >>> maps = idgi_tf.attribute(text_model, ids, labels, "ig", layer="embedding", rule="idgi")
      >>> plot_tokens([["a", "great", "film"]], maps[:1, :3].sum(-1), row_labels=["positive"])
    """
    rows, several = _token_rows(tokens)
    values = _score_rows(scores, rows, several)
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"row_labels must have one text per example ({len(rows)}), got {len(row_labels)}")
    size = _checks.number_in(fontsize, "fontsize", 0.0, 100.0, low_open=True)
    width = _checks.number_in(width, "width", 2 * SIDE, 100.0, low_open=True)
    scale = _scale(values, vmax)
    mappable = ScalarMappable(Normalize(-scale, scale), _diverging(cmap))
    if ax is None:
        line_width = (width - 2 * SIDE) * 72
        boxes, heads, height = _layout(rows, row_labels, line_width, size)
        figure, ax, cax = _token_figure(width, line_width, height, bool(title), colorbar)
        if colorbar:
            _colorbar(figure, mappable, values, cax=cax, orientation="horizontal")
    else:
        figure, ax = _figure_and_axes(ax, CURVE_SIZE)
        bar = _colorbar(figure, mappable, values, ax=ax, location="bottom", shrink=0.6) if colorbar else None
        try:  # after the colour bar, which takes its room from ax
            boxes, heads, height, line_width = _fit_into(ax, rows, row_labels, size)
        except ValueError:
            if bar is not None:
                bar.remove()
            raise
    colours = mappable.to_rgba(np.concatenate(values))
    for (x, y, box_width, text), colour in zip(boxes, colours):
        ax.add_patch(Rectangle((x, y + (LINE - BOX) * size / 2), box_width, BOX * size, facecolor=colour,
                               edgecolor="none"))
        ax.text(x + box_width / 2, y + LINE * size / 2, text, ha="center", va="center_baseline", fontsize=size,
                color=text_colour(colour), parse_math=False)
    for y, label in heads:
        ax.text(0, y + LINE * size / 2, label, va="center_baseline", fontsize=size, fontweight="bold",
                parse_math=False)
    ax.set_xlim(0, line_width)
    ax.set_ylim(height, 0)  # in points, as x; y grows downwards: the first line at the top
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return figure


def _feature_values(names, scores) -> tuple[list, np.ndarray, int | None]:
    """``(names, bar lengths, examples)``: the scores of one example, or the mean |score| over N (None, N)."""
    _not_a_dict(scores)
    array = np.asarray(scores, np.float64)
    if array.ndim not in (1, 2):
        raise ValueError(f"scores must be (D,) for one example or (N, D) for several, got shape {array.shape}")
    names = [str(name) for name in names]
    if len(names) != array.shape[-1]:
        raise ValueError(f"names has {len(names)} entries but scores has {array.shape[-1]} features "
                         f"(its last axis, shape {array.shape})")
    if array.size == 0 or not np.isfinite(array).all():
        raise ValueError(f"scores must be finite and non-empty, got shape {array.shape}"
                         + ("" if array.size == 0 else " with NaN or Inf"))
    if array.ndim == 1:
        return names, array, None
    return names, np.abs(array).mean(axis=0), len(array)


def plot_features(names, scores, *, top: int = 20, cmap="RdBu_r", title: str | None = None, ax=None,
                  figsize=None) -> Figure:
    """The ``top`` largest |scores| as horizontal bars, the largest at the top (SHAP's bar plot).

    Args:
      names: one name per feature (D).
      scores: (D,) for one example: signed bars; or (N, D) for several: the mean |score| over the N
        examples (SHAP's global bar plot: every bar positive).
      top: how many features to show (all D when fewer). cmap: the diverging colormap of the signs.
      title: the axes' title (default says what the bars are: top k of D features by |score| or by mean
        |score|; the x axis then says over how many examples).
      ax: draw into this Axes. figsize: the new figure's size (default 6.4 inches wide, 0.3 per bar).

    Bars are coloured by sign as SHAP's are: ``cmap(0.5 ± 0.35)``, a mid red for positive values and a
    mid blue for negative ones with ``RdBu_r`` (0 the centre colour). Ties keep the features' order.
    ``ax.patches`` are the bars from the top (largest) down, each labelled with its value.

    Example:
      >>> maps = idgi_tf.attribute(mlp, table, None, "ig", rule="idgi")   # (N, D)
      >>> plot_features(columns, maps)                       # mean |score| per feature over the N rows
      >>> plot_features(columns, maps[0], top=10)            # one row's signed scores
    """
    names, lengths, examples = _feature_values(names, scores)
    top = _checks.positive_int(top, "top")
    order = np.argsort(-np.abs(lengths), kind="stable")[:top]
    shown = len(order)
    figure, ax = _figure_and_axes(ax, figsize or (CURVE_SIZE[0], 1.0 + 0.3 * shown))
    colours = _diverging(cmap)(0.5 + SIGN_SHADE * np.sign(lengths[order]))
    heights = np.arange(shown)[::-1]  # the largest at the top
    bars = ax.barh(heights, lengths[order], color=colours)
    ax.set_yticks(heights, [names[i] for i in order])
    ax.bar_label(bars, labels=[f"{value:.3g}" for value in lengths[order]], padding=3)
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    low, high = min(0.0, lengths[order].min()), max(0.0, lengths[order].max())
    margin = 0.2 * (high - low) if high > low else 1.0  # room for the value labels
    ax.set_xlim(low - (margin if low < 0 else 0.0), high + (margin if high > 0 or low == 0 else 0.0))
    what = "|score|" if examples is None else "mean |score|"
    ax.set(xlabel="score" if examples is None else f"mean |score| over {examples} examples",
           title=f"top {shown} of {len(names)} features by {what}" if title is None else title)
    return figure
